//go:build amd64 && !noasm && gc

package kernels

import (
	"testing"

	"golang.org/x/sys/cpu"
)

// TestImplementationSelected fails when a normal amd64 build on an AVX2 or
// AVX-512 machine would quietly cross-check the generic kernels against
// themselves, or leave the faster kernels unused.
func TestImplementationSelected(t *testing.T) {
	want := "generic"
	switch {
	case cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW && cpu.X86.HasAVX512VL && cpu.X86.HasAVX2:
		want = "avx512"
	case cpu.X86.HasAVX2:
		want = "avx2"
	}
	if got := Implementation(); got != want {
		t.Fatalf("Implementation() = %q, want %q for this CPU", got, want)
	}
	t.Logf("kernels: %s", want)
}

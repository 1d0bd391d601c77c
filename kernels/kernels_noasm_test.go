//go:build noasm

package kernels

import "testing"

// TestNoasmIsGeneric checks that the noasm build tag really keeps the
// assembly out.
func TestNoasmIsGeneric(t *testing.T) {
	if got := Implementation(); got != "generic" {
		t.Fatalf("Implementation() = %q with -tags noasm, want generic", got)
	}
	if impls := archImpls(); len(impls) != 0 {
		t.Fatalf("archImpls() = %v with -tags noasm, want none", impls)
	}
}

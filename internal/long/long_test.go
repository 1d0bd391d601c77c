package long

import (
	"fmt"
	"testing"
)

type fakeTB struct{ skipped []string }

func (*fakeTB) Helper() {}
func (f *fakeTB) Skipf(format string, args ...any) {
	f.skipped = append(f.skipped, fmt.Sprintf(format, args...))
}

func TestSkip(t *testing.T) {
	t.Setenv(Env, "")
	f := &fakeTB{}
	Skip(f, "three more seeds, 90 s")
	if len(f.skipped) != 1 || f.skipped[0] != "long case (three more seeds, 90 s): runs with WEBINSPECT_LONG=1 (make test-long)" {
		t.Errorf("without %s: skips %q", Env, f.skipped)
	}
	t.Setenv(Env, "1")
	f = &fakeTB{}
	Skip(f, "x")
	if len(f.skipped) != 0 || !Enabled() {
		t.Errorf("with %s=1: skips %q, Enabled %v", Env, f.skipped, Enabled())
	}
}

package poll

import (
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

// fakeTB records Fatalf instead of ending the goroutine.
type fakeTB struct{ fatal []string }

func (*fakeTB) Helper() {}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.fatal = append(f.fatal, fmt.Sprintf(format, args...))
}

func TestUntilReturnsWhenTheConditionHolds(t *testing.T) {
	var n atomic.Int32
	go func() {
		for i := 0; i < 3; i++ {
			n.Add(1)
		}
	}()
	f := &fakeTB{}
	calls := 0
	Until(f, time.Minute, "three increments", func() bool { calls++; return n.Load() == 3 })
	if len(f.fatal) != 0 || calls == 0 {
		t.Fatalf("Until failed the test (%q) or never called cond (%d calls)", f.fatal, calls)
	}
}

func TestUntilFailsAtTheDeadline(t *testing.T) {
	f := &fakeTB{}
	calls := 0
	start := time.Now()
	Until(f, 20*time.Millisecond, "a condition that never holds", func() bool { calls++; return false })
	if len(f.fatal) != 1 || f.fatal[0] != "timed out after 20ms waiting for a condition that never holds" {
		t.Fatalf("Fatalf calls = %q", f.fatal)
	}
	if el := time.Since(start); el < 20*time.Millisecond {
		t.Errorf("gave up after %v, before the 20ms deadline", el)
	}
	if calls < 2 {
		t.Errorf("cond called %d times: Until must re-check before giving up", calls)
	}
}

func TestWait(t *testing.T) {
	if err := Wait(0, func() bool { return true }); err != nil {
		t.Errorf("Wait with a true condition and no time: %v", err)
	}
	if err := Wait(time.Millisecond, func() bool { return false }); !errors.Is(err, ErrTimeout) {
		t.Errorf("Wait with a false condition: %v, want ErrTimeout", err)
	}
}

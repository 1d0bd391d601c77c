// Package poll waits, in tests, for a condition that another goroutine
// makes true, and fails the test when it does not become true in time.
//
// # Why one helper
//
// A test that waits for a background goroutine (a server that starts, a
// mark that is acknowledged, a file that appears) must neither wait forever
// when the code under test is broken nor depend on how fast a quiet machine
// is. Until polls with a short, growing interval and gives up only at a
// deadline that is generous on purpose: a busy machine makes the wait
// longer, never the test red. Tests do not sleep to show that something did
// not happen; they wait for a hook (an event, a log line, an idle signal)
// that says the code under test has had its chance, and then assert.
package poll

import (
	"errors"
	"time"
)

// ErrTimeout is returned by Wait when the condition did not hold before
// the deadline.
var ErrTimeout = errors.New("poll: condition did not hold before the deadline")

// TB is the part of testing.TB that Until uses.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
}

// Interval bounds: the first re-check comes after MinInterval, and the
// interval doubles up to MaxInterval.
const (
	MinInterval = 50 * time.Microsecond
	MaxInterval = 20 * time.Millisecond
)

// Until calls cond, in the calling goroutine, until it returns true. It
// fails t (Fatalf, naming what it waited for) when timeout has passed
// since the call and cond still returns false. cond may itself call
// t.Fatalf, and may do work between checks (advance a simulated encoder).
func Until(t TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	if err := Wait(timeout, cond); err != nil {
		t.Fatalf("timed out after %v waiting for %s", timeout, what)
	}
}

// Wait calls cond until it returns true and returns nil, or returns
// ErrTimeout once timeout has passed with cond false. It is Until for code
// that is not a test's own goroutine (a helper process, a fixture that
// reports errors itself).
func Wait(timeout time.Duration, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	interval := MinInterval
	for !cond() {
		if !time.Now().Before(deadline) {
			return ErrTimeout
		}
		time.Sleep(min(interval, time.Until(deadline)+time.Microsecond))
		interval = min(2*interval, MaxInterval)
	}
	return nil
}

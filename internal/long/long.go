// Package long tells the tests of the long suite from the default one.
//
// # Suites
//
//	make test-short   go test -short: the slow tests skip themselves
//	                  (testing.Short), for a quick check while editing
//	make test         the default suite, under 5 minutes on a quiet
//	                  2-core machine: what CI and the README run; every
//	                  test without -race, the concurrent core under it
//	make test-long    every package under -race with WEBINSPECT_LONG=1:
//	                  the extra seeds, materials and taught models that
//	                  take minutes under -race
//
// A long case calls Skip first; it runs only when the environment variable
// WEBINSPECT_LONG is 1. CI runs both make test and make test-long.
package long

import (
	"os"
)

// Env is the environment variable that enables the long cases.
const Env = "WEBINSPECT_LONG"

// Enabled reports whether the long cases run (WEBINSPECT_LONG=1).
func Enabled() bool { return os.Getenv(Env) == "1" }

// TB is the part of testing.TB that Skip uses.
type TB interface {
	Helper()
	Skipf(format string, args ...any)
}

// Skip skips the calling test or subtest unless the long cases run. why
// says what the case adds and what it costs, for the skip message.
func Skip(t TB, why string) {
	t.Helper()
	if !Enabled() {
		t.Skipf("long case (%s): runs with %s=1 (make test-long)", why, Env)
	}
}

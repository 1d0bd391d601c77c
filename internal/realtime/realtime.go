// Package realtime marks the tests that only mean something at line
// speed: a camera emulator and our GigE Vision client streaming at their
// real rates, the whole engine on emulated cameras, Aravis's client
// against ours. The race detector slows Go code five to ten times, so
// under it such a test measures the detector, not the code: frames whose
// packets arrive after their millisecond deadlines are lost, and the
// test fails on a busy machine however correct the code is.
//
// # Two passes
//
// A real-time test calls Skip first, directly in its Test function. Under
// -race it skips itself; make test then runs every test that calls Skip
// again, without -race, in its real-time pass (the Makefile finds them
// with grep and awk, hence "directly in its Test function", which this
// package's test checks over the repository). The code those tests drive
// is race-checked by the other tests of the same packages, which do not
// depend on timing. make test-long does the same for the long cases.
package realtime

// TB is the part of testing.TB that Skip uses.
type TB interface {
	Helper()
	Skipf(format string, args ...any)
}

// Skip skips the calling test under the race detector. why says what the
// test measures at real speed, for the skip message.
func Skip(t TB, why string) {
	t.Helper()
	if Race {
		t.Skipf("real-time test (%s): skipped under the race detector; make test runs it again without -race", why)
	}
}

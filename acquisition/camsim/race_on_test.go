//go:build race

package camsim

// raceEnabled is true when the tests run under the race detector, which
// slows the simulator's rendering far below real time.
const raceEnabled = true

//go:build race

package main

// raceEnabled: the race detector slows the GVSP receiver several times
// over, below the emulated cameras' real-time rate.
const raceEnabled = true

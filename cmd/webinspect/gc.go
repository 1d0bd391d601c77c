package main

import (
	"math"
	"os"
	"runtime/debug"
)

// # Garbage-collector headroom
//
// Most of a running engine's heap is the buffers it preallocates (rings,
// crop history, region queues: engine.EstimateMemory), which live as long
// as the process and hold no pointers. Go's default GOGC=100 lets garbage
// grow to as much again as the live heap before collecting, so an engine
// with 200 MB of rings would climb to 400 MB of heap between collections
// and its resident size would wander by a fifth over minutes (the 1-hour
// soak, bench/RESULTS.md). run therefore sizes GOGC so the garbage between
// collections is about gcHeadroom over the preallocated buffers: the
// resident size stays flat, and collecting pointer-free buffers costs
// little. A GOGC set in the environment wins.
const gcHeadroom = 64 << 20

// gcPercent is the GOGC for an engine preallocating prealloc bytes: the
// percentage of it that gcHeadroom is, between 10 and 100.
func gcPercent(prealloc float64) int {
	if prealloc <= gcHeadroom {
		return 100
	}
	return int(min(100, max(10, math.Ceil(100*gcHeadroom/prealloc))))
}

// tuneGC applies gcPercent unless GOGC is set; it returns the percentage
// in force and whether it was set here.
func tuneGC(prealloc float64) (int, bool) {
	if os.Getenv("GOGC") != "" {
		return -1, false
	}
	p := gcPercent(prealloc)
	debug.SetGCPercent(p)
	return p, true
}

//go:build race

package bench

// raceEnabled: the race detector slows the simulator's Go code about
// tenfold, too slow to generate even fabric-2m live.
const raceEnabled = true

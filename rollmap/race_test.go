//go:build race

package rollmap

// raceEnabled: the race detector slows byte-by-byte tests about tenfold;
// they sample fewer offsets under it.
const raceEnabled = true

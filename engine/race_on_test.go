//go:build race

package engine

// raceEnabled: the race detector slows the simulator and the pipeline
// five to twenty times; the long accuracy and real-time tests run under it
// only with WEBINSPECT_LONG=1 (internal/long).
const raceEnabled = true

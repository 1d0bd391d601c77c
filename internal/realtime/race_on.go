//go:build race

package realtime

// Race is true when the binary is built with the race detector.
const Race = true

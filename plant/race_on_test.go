//go:build race

package plant

// raceEnabled: under the race detector the embedded NATS servers run
// several times slower; the many-line and cluster cases then go to the
// long suite.
const raceEnabled = true

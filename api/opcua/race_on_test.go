//go:build race

package opcua

// raceEnabled: under the race detector gopcua's server takes about 9 s to
// build and the engine runs several times slower.
const raceEnabled = true

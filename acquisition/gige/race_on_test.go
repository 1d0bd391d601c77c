//go:build race

package gige

// raceEnabled is true when the tests run under the race detector, which
// slows the receiver: at the fake camera's top rate a busy machine then loses frames to late packets.
const raceEnabled = true

//go:build !race

package opcua

const raceEnabled = false

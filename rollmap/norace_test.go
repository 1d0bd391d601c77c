//go:build !race

package rollmap

const raceEnabled = false

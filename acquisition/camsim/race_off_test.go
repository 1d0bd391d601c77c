//go:build !race

package camsim

const raceEnabled = false

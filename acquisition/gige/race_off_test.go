//go:build !race

package gige

const raceEnabled = false

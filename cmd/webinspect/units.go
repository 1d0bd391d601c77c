package main

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// parseQuantity parses a number with an optional unit suffix from units
// (suffix → factor to the base unit). A bare number takes bareFactor.
func parseQuantity(flag, s string, bareFactor float64, units map[string]float64) (float64, error) {
	t := strings.TrimSpace(strings.ToLower(s))
	num, unit := t, ""
	if i := strings.IndexFunc(t, func(r rune) bool { return (r < '0' || r > '9') && r != '.' && r != '-' && r != '+' && r != 'e' }); i >= 0 {
		num, unit = t[:i], strings.TrimSpace(t[i:])
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, usageError{fmt.Sprintf("--%s %q: not a number with a unit", flag, s)}
	}
	if unit == "" {
		return v * bareFactor, nil
	}
	f, ok := units[unit]
	if !ok {
		var names []string
		for u := range units {
			names = append(names, u)
		}
		return 0, usageError{fmt.Sprintf("--%s %q: unknown unit %q (use one of %s)", flag, s, unit, strings.Join(sortedStrings(names), ", "))}
	}
	return v * f, nil
}

// parseLengthM parses a length such as "200m", "1.5km" or "500mm" into metres.
func parseLengthM(flag, s string) (float64, error) {
	return parseQuantity(flag, s, 1, map[string]float64{"m": 1, "km": 1000, "mm": 0.001, "cm": 0.01})
}

// parseWidthMM parses a width such as "2000mm" or "2m" into millimetres.
func parseWidthMM(flag, s string) (float64, error) {
	return parseQuantity(flag, s, 1, map[string]float64{"mm": 1, "cm": 10, "m": 1000})
}

// parseSpeed parses a line speed such as "100m/min" or "2m/s" into m/min.
func parseSpeed(flag, s string) (float64, error) {
	return parseQuantity(flag, s, 1, map[string]float64{"m/min": 1, "m/s": 60, "mpm": 1})
}

func sortedStrings(s []string) []string {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
	return s
}

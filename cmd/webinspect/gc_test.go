package main

import "testing"

// TestGCPercent: an engine with large preallocated rings collects garbage
// after about 64 MiB, not after as much again as its rings; a small engine
// keeps Go's default.
func TestGCPercent(t *testing.T) {
	for _, c := range []struct {
		prealloc float64
		want     int
	}{
		{0, 100},
		{32 << 20, 100},
		{64 << 20, 100},
		{128 << 20, 50},
		{200 << 20, 32},
		{1 << 30, 10},
		{8 << 30, 10},
	} {
		if got := gcPercent(c.prealloc); got != c.want {
			t.Errorf("gcPercent(%.0f MiB) = %d, want %d", c.prealloc/(1<<20), got, c.want)
		}
	}
}

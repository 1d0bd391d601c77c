package sim

import (
	"math"
	"strings"
	"testing"
)

// A yarn lot changes the true texture only over its stretch: nothing
// before or after it, the full shift and contrast in its middle, half of
// them half-way up its ramp; it adds no truth.
func TestLot(t *testing.T) {
	base := smallConfig()
	base.LengthM = 2
	lot := base
	lot.Lot = &Lot{AtM: 0.5, LengthM: 1, Shift: 6, Contrast: 1.3, RampM: 0.2}
	a, err := New(base)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := New(lot)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if len(a.Truth()) != len(b.Truth()) {
		t.Errorf("the lot changed the truth: %d defects, want %d", len(b.Truth()), len(a.Truth()))
	}
	sa, sb := a.streams[0], b.streams[0]
	w := len(sa.tex.col)
	va, vb := make([]int32, w), make([]int32, w)
	// stats returns the mean difference and the ratio of spreads (lot
	// over base) of line y's texture.
	stats := func(y int64) (shift, contrast float64) {
		sa.tex.line(y, va)
		sb.tex.line(y, vb)
		var ma, mb float64
		for x := range w {
			ma += float64(va[x])
			mb += float64(vb[x])
		}
		ma, mb = ma/float64(w), mb/float64(w)
		var da, db float64
		for x := range w {
			da += (float64(va[x]) - ma) * (float64(va[x]) - ma)
			db += (float64(vb[x]) - mb) * (float64(vb[x]) - mb)
		}
		return mb - ma, math.Sqrt(db / da)
	}
	line := func(m float64) int64 { return int64(m * 1000 / base.LineMM) }
	for _, c := range []struct {
		atM             float64
		shift, contrast float64
		tolS, tolC      float64
	}{
		{0.3, 0, 1, 0, 0},       // before: unchanged
		{0.6, 3, 1.15, 1, 0.05}, // half-way up the ramp
		{1.0, 6, 1.3, 1, 0.05},  // the lot itself
		{1.6, 0, 1, 0, 0},       // after: unchanged
	} {
		s, k := stats(line(c.atM))
		if math.Abs(s-c.shift) > c.tolS+1e-9 || math.Abs(k-c.contrast) > c.tolC+1e-9 {
			t.Errorf("at %.1f m: shift %.2f contrast %.3f, want %.1f±%.1f and %.2f±%.2f", c.atM, s, k, c.shift, c.tolS, c.contrast, c.tolC)
		}
	}
	for _, c := range []struct {
		lot  Lot
		want string
	}{
		{Lot{AtM: 2, LengthM: 1}, "Lot.AtM"},
		{Lot{AtM: 0.5, LengthM: 0}, "Lot.LengthM"},
		{Lot{AtM: 0.5, LengthM: 1, Shift: 41}, "Lot.Shift"},
		{Lot{AtM: 0.5, LengthM: 1, Contrast: 3.5}, "Lot.Contrast"},
		{Lot{AtM: 0.5, LengthM: 1, RampM: 0.6}, "Lot.RampM"},
	} {
		cfg := base
		cfg.Lot = &c.lot
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Lot %+v: error %v, want one naming %s", c.lot, err, c.want)
		}
	}
}

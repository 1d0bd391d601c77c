package acquisition

import (
	"math"
	"testing"
)

func TestGate(t *testing.T) {
	var g Gate
	if hw := g.HighWater(); hw != math.MinInt64 {
		t.Fatalf("fresh gate HighWater = %d, want MinInt64", hw)
	}
	steps := []struct {
		count int64
		want  bool
	}{
		{-8, true}, // the first call always accepts, even below zero
		{0, true},
		{4, true},
		{4, false}, // stopped: same count again
		{0, false}, // jogging back
		{-4, false},
		{0, false}, // forward again over inspected web
		{4, false},
		{8, true}, // past the high-water mark
		{7, false},
		{100, true},
	}
	for i, s := range steps {
		if got := g.Accept(s.count); got != s.want {
			t.Fatalf("step %d: Accept(%d) = %v, want %v", i, s.count, got, s.want)
		}
	}
	if hw := g.HighWater(); hw != 100 {
		t.Fatalf("HighWater = %d, want 100", hw)
	}
	g.Reset()
	if hw := g.HighWater(); hw != math.MinInt64 {
		t.Fatalf("after Reset HighWater = %d, want MinInt64", hw)
	}
	if !g.Accept(3) {
		t.Fatal("after Reset Accept(3) = false, want true")
	}
}

func TestMotionConstantSpeed(t *testing.T) {
	// 60 m/min = 1000 mm/s; 0.0625 mm/count, k = 4: one line per 0.25 mm,
	// 4000 lines/s.
	m, err := NewMotion(ConstantSpeed(60), 0.0625, 4)
	if err != nil {
		t.Fatal(err)
	}
	for i := int64(0); i < 10000; i++ {
		c, tt := m.Next()
		if c != 4*i {
			t.Fatalf("line %d: count %d, want %d", i, c, 4*i)
		}
		if want := float64(i) / 4000; math.Abs(tt-want) > 1e-9 {
			t.Fatalf("line %d: t = %v, want %v", i, tt, want)
		}
	}
}

func TestMotionStopAndJog(t *testing.T) {
	// Run 100 mm (1600 counts, 400 lines), stop 0.2 s, jog back 10 mm
	// (160 counts) at 250 mm/s, stop 0.5 s, then forwards again.
	phases := StopAndJog(60, 0.1, 0.2, 0.01)
	m, err := NewMotion(phases, 0.0625, 4)
	if err != nil {
		t.Fatal(err)
	}
	type ev struct {
		c int64
		t float64
	}
	var evs []ev
	for i := 0; i < 1000; i++ {
		c, tt := m.Next()
		evs = append(evs, ev{c, tt})
	}
	// Forward run: 0..1600 inclusive.
	for i := 0; i <= 400; i++ {
		if evs[i].c != int64(4*i) {
			t.Fatalf("forward event %d: count %d, want %d", i, evs[i].c, 4*i)
		}
	}
	if math.Abs(evs[400].t-0.1) > 1e-9 {
		t.Fatalf("count 1600 at t=%v, want 0.1", evs[400].t)
	}
	// Backward: 1596 down to 1440 (40 lines), after the 0.2 s stop.
	for j := 0; j < 40; j++ {
		e := evs[401+j]
		if want := int64(1596 - 4*j); e.c != want {
			t.Fatalf("backward event %d: count %d, want %d", j, e.c, want)
		}
		if e.t < 0.3 || e.t > 0.34+1e-9 {
			t.Fatalf("backward event %d at t=%v, want within [0.3, 0.34]", j, e.t)
		}
	}
	// Forward again from 1444 after the 0.5 s pause.
	for j := 0; j < 100; j++ {
		e := evs[441+j]
		if want := int64(1444 + 4*j); e.c != want {
			t.Fatalf("re-forward event %d: count %d, want %d", j, e.c, want)
		}
		if e.t < 0.84 {
			t.Fatalf("re-forward event %d at t=%v, want >= 0.84", j, e.t)
		}
	}
	for i := 1; i < len(evs); i++ {
		if evs[i].t < evs[i-1].t {
			t.Fatalf("time goes backwards at event %d: %v < %v", i, evs[i].t, evs[i-1].t)
		}
	}

	// The gate rejects every re-imaged line: 40 backwards and 40 forwards
	// up to and including 1600, and accepts a gap-free sequence.
	var g Gate
	rejected := 0
	next := int64(0)
	for _, e := range evs {
		if !g.Accept(e.c) {
			rejected++
			continue
		}
		if e.c != next {
			t.Fatalf("accepted count %d, want %d", e.c, next)
		}
		next += 4
	}
	if rejected != 80 {
		t.Fatalf("gate rejected %d lines, want 80", rejected)
	}
}

func TestMotionReversalBetweenTriggers(t *testing.T) {
	// Forward 6 counts: triggers at 0 and 4. Back 7 counts to -1: the count
	// had moved on to 6, so arriving at 4 again triggers, then 0. Forward
	// again: the count is -1, so arriving at 0 triggers, then 4 and 8.
	phases := []Phase{
		{Seconds: 6, SpeedMPerMin: 0.06},  // 1 count/s at 1 mm/count
		{Seconds: 7, SpeedMPerMin: -0.06}, // back to -1
		{SpeedMPerMin: 0.06},
	}
	m, err := NewMotion(phases, 1, 4)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		c int64
		t float64
	}{{0, 0}, {4, 4}, {4, 8}, {0, 12}, {0, 14}, {4, 18}, {8, 22}}
	for i, w := range want {
		c, tt := m.Next()
		if c != w.c || math.Abs(tt-w.t) > 1e-9 {
			t.Fatalf("event %d: (%d, %v), want (%d, %v)", i, c, tt, w.c, w.t)
		}
	}
	// A clone starts over.
	c := m.Clone()
	if n, tt := c.Next(); n != 0 || tt != 0 {
		t.Fatalf("clone first event (%d, %v), want (0, 0)", n, tt)
	}
	if n, _ := c.Next(); n != 4 {
		t.Fatalf("clone second event %d, want 4", n)
	}
}

func TestMotionValidate(t *testing.T) {
	cases := []struct {
		name   string
		phases []Phase
	}{
		{"empty", nil},
		{"negative seconds", []Phase{{Seconds: -1, SpeedMPerMin: 10}, {SpeedMPerMin: 10}}},
		{"nan speed", []Phase{{SpeedMPerMin: math.NaN()}}},
		{"stopped forever", []Phase{{Seconds: 1, SpeedMPerMin: 10}, {SpeedMPerMin: 0}}},
		{"backwards forever", []Phase{{SpeedMPerMin: -10}}},
	}
	for _, c := range cases {
		if _, err := NewMotion(c.phases, 0.1, 4); err == nil {
			t.Errorf("%s: NewMotion accepted %v", c.name, c.phases)
		}
	}
	if _, err := NewMotion(ConstantSpeed(10), 0, 4); err == nil {
		t.Error("NewMotion accepted mmPerCount 0")
	}
	if _, err := NewMotion(ConstantSpeed(10), 0.1, 0); err == nil {
		t.Error("NewMotion accepted countsPerLine 0")
	}
}

func BenchmarkMotionNext(b *testing.B) {
	m, err := NewMotion(StopAndJog(100, 1, 0.1, 0.2), 0.0625, 4)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		m.Next()
	}
}

package rollmap

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

func TestAssignLane(t *testing.T) {
	lanes := []Lane{{"A", 0, 1000}, {"B", 1000, 2000}, {"C", 2100, 3000}} // 2000-2100: a gap
	for _, c := range []struct {
		from, to float64
		want     int
	}{
		{100, 200, 0},
		{990, 1030, 1},  // across the slit, 10 mm in A and 30 in B
		{970, 1030, 1},  // 30/30: the centre 1000 is in B
		{1030, 990, 1},  // CD given in reverse
		{1990, 2050, 1}, // half in B, half in the gap
		{2040, 2060, NoLane},
		{2050, 2150, 2},
		{3000, 3100, NoLane},
		{1000, 1000, 1}, // zero width on the slit: the lane starting there
		{3000, 3000, 2}, // the last lane's end edge
		{2000, 2000, 1}, // B's end edge, the gap beyond
		{-5, -1, NoLane},
		{0, 3000, 1}, // 1000 in A, 1000 in B, 900 in C: tie, centre 1500 in B
		{0, 1900, 0}, // 1000 in A, 900 in B
	} {
		if got := AssignLane(lanes, Defect{CDStartMM: c.from, CDEndMM: c.to}); got != c.want {
			t.Errorf("AssignLane(CD %v-%v mm) = %d, want %d", c.from, c.to, got, c.want)
		}
	}
	if got := AssignLane(nil, Defect{CDStartMM: 1, CDEndMM: 2}); got != NoLane {
		t.Errorf("no lanes: %d, want NoLane", got)
	}
}

func TestLanesValidate(t *testing.T) {
	if err := DefaultLanesOptions().Validate(); err != nil {
		t.Errorf("default: %v", err)
	}
	if err := (LanesOptions{Lanes: EqualLanes(4, 50, 1950)}).Validate(); err != nil {
		t.Errorf("EqualLanes: %v", err)
	}
	eq := EqualLanes(3, 0, 300)
	if len(eq) != 3 || eq[1] != (Lane{"2", 100, 200}) || eq[2].CDEndMM != 300 {
		t.Errorf("EqualLanes(3, 0, 300) = %+v", eq)
	}
	if EqualLanes(0, 0, 1) != nil || EqualLanes(2, 5, 5) != nil {
		t.Error("EqualLanes of nothing is not nil")
	}
	for _, lanes := range [][]Lane{
		{{"", 0, 10}},
		{{"a", -1, 10}},
		{{"a", 0, 0}},
		{{"a", 0, math.NaN()}},
		{{"a", 0, math.Inf(1)}},
		{{"a", 0, 10}, {"b", 9, 20}},
		{{"a", 10, 20}, {"b", 0, 5}},
		{{"a", 0, 10}, {"a", 10, 20}},
		make([]Lane, maxLanes+1),
	} {
		if err := (LanesOptions{Lanes: lanes}).Validate(); !errors.Is(err, ErrInvalid) {
			t.Errorf("Validate(%v) = %v, want ErrInvalid", lanes, err)
		}
	}
}

func TestDefectPoints(t *testing.T) {
	for _, c := range []struct {
		mdM, cdMM float64 // extents
		hole      bool
		want      int
	}{
		{0, 10, false, 1},
		{0, 76.2, false, 1},   // exactly 3 in
		{0, 76.3, false, 2},   // just over
		{0.1524, 0, false, 2}, // 6 in along MD
		{0, 152.5, false, 3},
		{0, 228.6, false, 3}, // 9 in
		{0, 228.7, false, 4},
		{5, 0, false, 4},
		{0, 25.4, true, 4}, // a 1 in hole
		{0, 25.3, true, 1}, // a smaller hole scores by length
		{0.0254, 3, true, 4},
	} {
		d := Defect{MDStartM: 7, MDEndM: 7 + c.mdM, CDStartMM: 100, CDEndMM: 100 + c.cdMM}
		if got := DefectPoints(d, c.hole); got != c.want {
			t.Errorf("DefectPoints(MD %v m, CD %v mm, hole %v) = %d, want %d", c.mdM, c.cdMM, c.hole, got, c.want)
		}
	}
}

// gradingRoll is a hand-scored roll: two lanes of 36 in (1 yd) each, 100 yd
// long, so each lane is 100 yd² and its points per 100 yd² equal its points.
func gradingRoll() ([]Lane, float64, []Defect) {
	lanes := []Lane{{"L1", 0, 914.4}, {"L2", 914.4, 1828.8}}
	const lengthM = 91.44
	mk := func(md0, md1, cd0, cd1 float64, class string, decision Decision) Defect {
		return Defect{MDStartM: md0, MDEndM: md1, CDStartMM: cd0, CDEndMM: cd1, Class: class, Decision: decision}
	}
	ds := []Defect{
		// L1: yard 1 (0.9144-1.8288 m): 1 + 2 + 3 = 6, capped at 4.
		mk(1.0, 1.0254, 100, 110, "slub", DecisionMark), // 1 in: 1 point
		mk(1.2, 1.3, 200, 210, "slub", DecisionMark),    // 100 mm = 3.9 in: 2
		mk(1.5, 1.5, 300, 460, "slub", DecisionReview),  // 160 mm = 6.3 in: 3
		// yard 10: 260 mm = 10.2 in: 4.
		mk(10.0, 10.0, 500, 760, "stain", DecisionMark),
		// yard 21: a 30 mm hole: 4.
		mk(20.0, 20.03, 100, 110, "hole", DecisionMark),
		// yard 32: a 10 mm hole: 1.
		mk(30.0, 30.01, 100, 105, "hole", DecisionMark),
		// not counted: decision pass; reviewed as a false alarm; in the trim.
		mk(40, 41, 100, 900, "stain", DecisionPass),
		{MDStartM: 45, MDEndM: 46, CDStartMM: 100, CDEndMM: 900, Class: "stain", Decision: DecisionMark, ReviewStatus: "false_alarm"},
		mk(60, 60.1, 1900, 1950, "stain", DecisionMark),
		// a running defect 2 m long: yards 54, 55, 56 score 4 each = 12.
		mk(50.0, 52.0, 10, 12, "streak", DecisionMark),
	}
	// L1 total: 4 + 4 + 4 + 1 + 12 = 25 points, 7 defects.
	// L2: eleven 300 mm (11.8 in) defects a metre apart, each in its own
	// yard (5-15 m: yards 5, 6, 7, 8, 9, 10, 12, 13, 14, 15, 16): 44
	// points; and one across the slit, 14.4 mm in L1 and 85.6 mm in L2,
	// 100 mm long: 2 points in L2. L2: 46 points, 12 defects.
	for k := range 11 {
		ds = append(ds, mk(5+float64(k), 5+float64(k), 1000, 1300, "knot", DecisionMark))
	}
	ds = append(ds, mk(70, 70, 900, 1000, "knot", DecisionMark))
	return lanes, lengthM, ds
}

func TestGradeFourPoint(t *testing.T) {
	lanes, lengthM, ds := gradingRoll()
	g := DefaultGradingScheme()
	g.Grades = []GradeBand{{"A", 20}, {"B", 40}}
	g.FailGrade = "C"
	got, err := GradeRoll(g, lanes, lengthM, ds)
	if err != nil {
		t.Fatal(err)
	}
	area := 0.9144 * 91.44
	want := []LaneGrade{
		{Lane: 0, Name: "L1", WidthMM: 914.4, AreaM2: area, Defects: 7, Points: 25, Density: 25,
			Unit: UnitPoints100yd2, Limit: 40, Grade: "B", Pass: true},
		{Lane: 1, Name: "L2", WidthMM: 914.4, AreaM2: area, Defects: 12, Points: 46, Density: 46,
			Unit: UnitPoints100yd2, Limit: 40, Grade: "C", Pass: false},
	}
	checkGrades(t, got, want)

	// Metric: points per 100 m² of the same points.
	g.Metric, g.Grades, g.FailGrade = true, nil, ""
	got, err = GradeRoll(g, lanes, lengthM, ds)
	if err != nil {
		t.Fatal(err)
	}
	want[0].Density, want[0].Unit, want[0].Grade = 2500/area, UnitPoints100m2, "pass"
	want[1].Density, want[1].Unit, want[1].Grade = 4600/area, UnitPoints100m2, "fail"
	checkGrades(t, got, want)

	// Only the knots count; a slub reviewed as a knot counts too.
	g = DefaultGradingScheme()
	g.Classes = []string{"knot"}
	ds[0].ReviewStatus, ds[0].ReviewLabel = "reclassified", "knot"
	got, err = GradeRoll(g, lanes, lengthM, ds)
	if err != nil {
		t.Fatal(err)
	}
	if got[0].Defects != 1 || got[0].Points != 1 || got[1].Points != 46 {
		t.Errorf("knots only: L1 %d defects %d points, L2 %d points; want 1, 1, 46", got[0].Defects, got[0].Points, got[1].Points)
	}

	// Half the length doubles the density (points per area).
	got, _ = GradeRoll(DefaultGradingScheme(), lanes, lengthM/2, ds)
	if math.Abs(got[1].Density-92) > 1e-9 {
		t.Errorf("half length: density %v, want 92", got[1].Density)
	}
}

func TestGradeCountPerArea(t *testing.T) {
	lanes, lengthM, ds := gradingRoll()
	g := GradingScheme{Kind: SchemeCountPerArea, PerM2: 100, PassLimit: 10, Decisions: []Decision{DecisionMark, DecisionReview}}
	got, err := GradeRoll(g, lanes, lengthM, ds)
	if err != nil {
		t.Fatal(err)
	}
	area := 0.9144 * 91.44
	want := []LaneGrade{
		{Lane: 0, Name: "L1", WidthMM: 914.4, AreaM2: area, Defects: 7, Density: 700 / area,
			Unit: "defects/100m2", Limit: 10, Grade: "pass", Pass: true},
		{Lane: 1, Name: "L2", WidthMM: 914.4, AreaM2: area, Defects: 12, Density: 1200 / area,
			Unit: "defects/100m2", Limit: 10, Grade: "fail", Pass: false},
	}
	checkGrades(t, got, want)

	// Counting only "review" decisions: one defect in L1.
	g.Decisions = []Decision{DecisionReview}
	got, _ = GradeRoll(g, lanes, lengthM, ds)
	if got[0].Defects != 1 || got[1].Defects != 0 {
		t.Errorf("review only: %d and %d defects, want 1 and 0", got[0].Defects, got[1].Defects)
	}
}

func checkGrades(t *testing.T, got, want []LaneGrade) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d lane grades, want %d", len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if math.Abs(g.Density-w.Density) > 1e-9*max(1, w.Density) || math.Abs(g.AreaM2-w.AreaM2) > 1e-9 {
			t.Errorf("lane %d: density %v area %v, want %v and %v", i, g.Density, g.AreaM2, w.Density, w.AreaM2)
		}
		g.Density, g.AreaM2 = w.Density, w.AreaM2
		if g != w {
			t.Errorf("lane %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
}

func TestGradeRollInvalid(t *testing.T) {
	lanes, lengthM, ds := gradingRoll()
	ok := DefaultGradingScheme()
	for name, c := range map[string]struct {
		g       GradingScheme
		lanes   []Lane
		lengthM float64
	}{
		"kind":        {GradingScheme{Kind: "six-point"}, lanes, lengthM},
		"per_m2":      {GradingScheme{Kind: SchemeCountPerArea}, lanes, lengthM},
		"pass limit":  {GradingScheme{Kind: SchemeFourPoint, PassLimit: -1}, lanes, lengthM},
		"band order":  {GradingScheme{Kind: SchemeFourPoint, Grades: []GradeBand{{"A", 40}, {"B", 20}}}, lanes, lengthM},
		"band name":   {GradingScheme{Kind: SchemeFourPoint, Grades: []GradeBand{{"", 40}}}, lanes, lengthM},
		"no lanes":    {ok, nil, lengthM},
		"bad lanes":   {ok, []Lane{{"a", 10, 5}}, lengthM},
		"zero length": {ok, lanes, 0},
		"NaN length":  {ok, lanes, math.NaN()},
	} {
		if _, err := GradeRoll(c.g, c.lanes, c.lengthM, ds); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
}

// TestAssignLaneRandom cross-checks AssignLane with its definition on
// random layouts: the lane of largest overlap (ties: the lane holding the
// centre, then the lowest), else the lane holding the centre.
func TestAssignLaneRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		var lanes []Lane
		x := float64(rng.IntN(50))
		for i := range 1 + rng.IntN(6) {
			w := float64(1 + rng.IntN(300))
			lanes = append(lanes, Lane{Name: fmt.Sprint(i), CDStartMM: x, CDEndMM: x + w})
			x += w + float64(rng.IntN(3)*rng.IntN(20)) // often adjacent, sometimes a gap
		}
		a := float64(rng.IntN(int(x) + 100))
		d := Defect{CDStartMM: a, CDEndMM: a + float64(rng.IntN(3)*rng.IntN(400))}
		want, bestW := NoLane, 0.0
		centre := (d.CDStartMM + d.CDEndMM) / 2
		holds := func(i int) bool { return laneHolds(lanes, i, centre) }
		for i, l := range lanes {
			w := min(d.CDEndMM, l.CDEndMM) - max(d.CDStartMM, l.CDStartMM)
			if w > bestW || w > 0 && w == bestW && holds(i) && !holds(want) {
				want, bestW = i, w
			}
		}
		if want == NoLane {
			for i := range lanes {
				if holds(i) {
					want = i
					break
				}
			}
		}
		if got := AssignLane(lanes, d); got != want {
			t.Fatalf("lanes %+v, CD %v-%v: AssignLane = %d, want %d", lanes, d.CDStartMM, d.CDEndMM, got, want)
		}
	}
}

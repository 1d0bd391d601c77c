package rollmap

import (
	"bytes"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestDensity(t *testing.T) {
	s := openStore(t)
	lanes := []Lane{{"A", 0, 1000}, {"B", 1000, 2000}}
	r, err := s.StartRoll(RollMeta{ID: "DN", Lanes: lanes})
	if err != nil {
		t.Fatal(err)
	}
	mk := func(md, cd, area float64) Defect {
		return Defect{MDStartM: md, MDEndM: md + 0.01, CDStartMM: cd, CDEndMM: cd + 10, AreaMM2: area}
	}
	if err := r.AddDefects(mk(0.5, 100, 1), mk(1.9, 1500, 2), mk(2.0, 100, 4), mk(9.99, 100, 8), mk(10, 1500, 16)); err != nil {
		t.Fatal(err)
	}
	// 3-5 m over lane A, 4-4.5 m over both (overlap counts once), 6.5-7 m over B.
	if err := r.AddUninspected(
		Uninspected{MDStartM: 3, MDEndM: 5, CDStartMM: 0, CDEndMM: 1000},
		Uninspected{MDStartM: 4, MDEndM: 4.5, CDStartMM: 0, CDEndMM: 2000},
		Uninspected{MDStartM: 6.5, MDEndM: 7, CDStartMM: 1000, CDEndMM: 2000},
	); err != nil {
		t.Fatal(err)
	}
	r.SetLength(10)
	bin := func(from, to float64, n int, area, un float64) DensityBin {
		return DensityBin{MDStartM: from, MDEndM: to, Defects: n, AreaMM2: area, UninspectedM: un}
	}
	wantAll := []DensityBin{
		bin(0, 2, 2, 3, 0), bin(2, 4, 1, 4, 1), bin(4, 6, 0, 0, 1), bin(6, 8, 0, 0, 0.5), bin(8, 10, 1, 8, 0),
		bin(10, 12, 1, 16, 0), // the defect at exactly 10 m needs a bin of its own
	}
	wantA := []DensityBin{
		bin(0, 2, 1, 1, 0), bin(2, 4, 1, 4, 1), bin(4, 6, 0, 0, 1), bin(6, 8, 0, 0, 0), bin(8, 10, 1, 8, 0),
	}
	wantB := []DensityBin{
		bin(0, 2, 1, 2, 0), bin(2, 4, 0, 0, 0), bin(4, 6, 0, 0, 0.5), bin(6, 8, 0, 0, 0.5), bin(8, 10, 0, 0, 0),
		bin(10, 12, 1, 16, 0),
	}
	check := func(where string) {
		for _, c := range []struct {
			lane int
			want []DensityBin
		}{{AllLanes, wantAll}, {0, wantA}, {1, wantB}} {
			got, err := s.Density("DN", 2, c.lane)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("%s lane %d:\n got %+v\nwant %+v", where, c.lane, got, c.want)
			}
		}
		got, err := s.Density("DN", 2, NoLane)
		if err != nil || len(got) != 5 || got[0].Defects+got[4].Defects != 0 || got[2].UninspectedM != 1 {
			t.Errorf("%s NoLane: %+v, %v", where, got, err)
		}
	}
	check("open")
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	check("closed")
	for _, c := range []struct {
		bin  float64
		lane int
	}{{0, AllLanes}, {-1, 0}, {math.NaN(), 0}, {math.Inf(1), 0}, {1e-9, 0}, {1, -3}} {
		if _, err := s.Density("DN", c.bin, c.lane); !errors.Is(err, ErrInvalid) {
			t.Errorf("Density(bin %v, lane %d) = %v, want ErrInvalid", c.bin, c.lane, err)
		}
	}
	if _, err := s.Density("nope", 1, AllLanes); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing roll: %v", err)
	}
	// An empty roll of length 0 has no bins.
	writeRoll(t, s, "DE", nil, nil, 1)
	if got, err := s.Density("DE", 1, AllLanes); err != nil || len(got) != 0 {
		t.Errorf("empty roll: %+v, %v", got, err)
	}
}

// TestSummary closes a roll with lanes and a grading scheme and checks
// summary.json against counts made here and GradeRoll.
func TestSummary(t *testing.T) {
	s := openStore(t)
	lanes, lengthM, ds := gradingRoll()
	for i := range ds {
		ds[i].ID = int64(i + 1)
		ds[i].Lane = 42 // replaced by AssignLane: the roll has lanes
	}
	g := DefaultGradingScheme()
	meta := RollMeta{ID: "SUM", Recipe: "denim", WebWidthMM: 1900, Started: time.Date(2025, 3, 14, 6, 0, 0, 0, time.UTC),
		Lanes: lanes, Grading: &g}
	r, err := s.StartRoll(meta)
	if err != nil {
		t.Fatal(err)
	}
	lanes[0].Name = "changed by the caller" // the roll keeps its own copy
	g.PassLimit = 1
	if err := r.AddDefects(ds...); err != nil {
		t.Fatal(err)
	}
	us := []Uninspected{{MDStartM: 1, MDEndM: 2, Reason: ReasonDropped}, {MDStartM: 1.5, MDEndM: 3, Reason: ReasonDropped},
		{MDStartM: 80, MDEndM: 80.5, Reason: ReasonRestart}}
	if err := r.AddUninspected(us...); err != nil {
		t.Fatal(err)
	}
	r.SetLength(lengthM)
	live, err := s.Summary("SUM")
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	lanes, _, _ = gradingRoll()
	sum, err := ReadSummary(filepath.Join(s.Root(), "SUM"))
	if err != nil {
		t.Fatal(err)
	}
	byClass, byDecision := map[string]int64{}, map[Decision]int64{}
	byLane := map[int]int64{}
	for _, d := range ds {
		byClass[d.Class]++
		byDecision[d.Decision]++
		byLane[AssignLane(lanes, d)]++
	}
	if sum.ID != "SUM" || sum.Recipe != "denim" || sum.LengthM != lengthM || sum.Defects != int64(len(ds)) || sum.Ended.IsZero() {
		t.Errorf("summary header: %+v", sum)
	}
	if !reflect.DeepEqual(sum.ByClass, byClass) || !reflect.DeepEqual(sum.ByDecision, byDecision) {
		t.Errorf("by class %v / decision %v, want %v / %v", sum.ByClass, sum.ByDecision, byClass, byDecision)
	}
	if len(sum.ByLane) != 3 || sum.ByLane[0].Lane != NoLane || sum.ByLane[1].Name != "L1" || sum.ByLane[2].Name != "L2" {
		t.Fatalf("by lane: %+v", sum.ByLane)
	}
	for _, lc := range sum.ByLane {
		if lc.Defects != byLane[lc.Lane] {
			t.Errorf("lane %d: %d defects, want %d", lc.Lane, lc.Defects, byLane[lc.Lane])
		}
	}
	if sum.UninspectedRanges != 3 || sum.UninspectedM != 2.5 ||
		!reflect.DeepEqual(sum.UninspectedReason, map[Reason]int64{ReasonDropped: 2, ReasonRestart: 1}) {
		t.Errorf("uninspected: %d ranges, %v m, %v", sum.UninspectedRanges, sum.UninspectedM, sum.UninspectedReason)
	}
	wantGrades, err := GradeRoll(DefaultGradingScheme(), lanes, lengthM, ds)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(sum.Grades, wantGrades) || sum.GradingError != "" {
		t.Errorf("grades:\n got %+v\nwant %+v (%s)", sum.Grades, wantGrades, sum.GradingError)
	}
	if sum.Grades[0].Points != 25 || !sum.Grades[0].Pass || sum.Grades[1].Pass {
		t.Errorf("grades differ from the hand-scored roll: %+v", sum.Grades)
	}
	if !reflect.DeepEqual(sum.Lanes, lanes) || sum.Grading == nil || sum.Grading.PassLimit != 40 {
		t.Errorf("lanes %+v grading %+v: not the ones the roll started with", sum.Lanes, sum.Grading)
	}
	// The live summary of the open roll said the same, bar the end time.
	live.Ended = sum.Ended
	if !reflect.DeepEqual(live, sum) {
		t.Errorf("live summary differs:\n got %+v\nwant %+v", live, sum)
	}
	if got, err := s.Summary("SUM"); err != nil || !reflect.DeepEqual(got, sum) {
		t.Errorf("Store.Summary = %+v, %v", got, err)
	}
	// Stored lanes are the assigned ones, and the lane query uses them.
	got, err := s.Defects("SUM", Query{ByLane: true, Lane: 1})
	if err != nil || int64(len(got)) != byLane[1] {
		t.Errorf("lane 1: %d defects, %v; want %d", len(got), err, byLane[1])
	}
	// roll.json carries the lanes and grading and reads back.
	m, _, _, err := ReadRoll(filepath.Join(s.Root(), "SUM"))
	if err != nil || !reflect.DeepEqual(m.Lanes, lanes) || m.Grading == nil || m.Grading.Kind != SchemeFourPoint {
		t.Errorf("roll.json lanes %+v grading %+v, %v", m.Lanes, m.Grading, err)
	}

	// A roll without summary.json (an older roll) is summarised from its
	// files; no lanes: counts by stored lane, no grades.
	r = writeRoll(t, s, "OLD", makeDefects(300, 9), makeUninspected(4, 9), 2)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(s.Root(), "OLD", SummaryFile)); err != nil {
		t.Fatal(err)
	}
	old, err := s.Summary("OLD")
	if err != nil || old.Defects != 300 || old.Grades != nil || len(old.ByLane) == 0 {
		t.Errorf("summary of an old roll: %+v, %v", old, err)
	}
	if _, err := ReadSummary(filepath.Join(s.Root(), "OLD")); !errors.Is(err, ErrNotFound) {
		t.Errorf("ReadSummary without the file: %v, want ErrNotFound", err)
	}

	// Grading a roll of length 0 fails; the summary says why.
	zero := RollMeta{ID: "Z", Lanes: lanes, Grading: &g}
	sz := Summarize(zero, ds, nil)
	if sz.Grades != nil || !strings.Contains(sz.GradingError, "length") {
		t.Errorf("length 0: grades %+v, error %q", sz.Grades, sz.GradingError)
	}
	// Bad lanes or grading are refused at the start.
	for _, m := range []RollMeta{{ID: "BL", Lanes: []Lane{{"a", 5, 1}}}, {ID: "BG", Grading: &GradingScheme{Kind: "x"}}} {
		if _, err := s.StartRoll(m); !errors.Is(err, ErrInvalid) {
			t.Errorf("StartRoll(%+v) = %v, want ErrInvalid", m, err)
		}
	}
}

func TestRollMetaJSONCompatible(t *testing.T) {
	// A roll.json without lanes or grading, as version 1 wrote it, still
	// reads (TestFormatFixtureV1), and one written without them has no
	// such keys.
	s := openStore(t)
	r := writeRoll(t, s, "J", nil, nil, 1)
	r.Close()
	b, err := os.ReadFile(filepath.Join(s.Root(), "J", MetaFile))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b, []byte(`"lanes"`)) || bytes.Contains(b, []byte(`"grading"`)) {
		t.Errorf("roll.json without lanes names them:\n%s", b)
	}
}

func TestExportMarkingList(t *testing.T) {
	lanes := []Lane{{"L1", 0, 1000}, {"L 2, drive", 1000, 2000}}
	ds := []Defect{
		{ID: 1, MDStartM: 5, MDEndM: 5.1, CDStartMM: 1500, CDEndMM: 1510, Class: "stain", Decision: DecisionMark},
		{ID: 2, MDStartM: 3, MDEndM: 3.25, CDStartMM: 990, CDEndMM: 1030, Class: "knot", Decision: DecisionMark}, // across the slit: L2
		{ID: 3, MDStartM: 1, MDEndM: 1.5, CDStartMM: 10, CDEndMM: 20, Class: "hole", Decision: DecisionReview},
		{ID: 4, MDStartM: 2, MDEndM: 2.1, CDStartMM: 10, CDEndMM: 20, Class: "hole", Decision: DecisionPass},
		{ID: 5, MDStartM: 2, MDEndM: 2.1, CDStartMM: 10, CDEndMM: 20, Class: "hole", Decision: DecisionMark, ReviewStatus: "false_alarm"},
		{ID: 6, MDStartM: 4, MDEndM: 4.1, CDStartMM: 2010, CDEndMM: 2020, Class: "edge", Decision: DecisionMark}, // trim
		{ID: 7, MDStartM: 0.5, MDEndM: 0.6, CDStartMM: 1200, CDEndMM: 1210, Class: "slub", Decision: DecisionMark,
			ReviewStatus: "reclassified", ReviewLabel: "fly"},
	}
	var b bytes.Buffer
	if err := ExportMarkingList(&b, lanes, ds, nil); err != nil {
		t.Fatal(err)
	}
	want := MarkingListHeader + "\n" +
		"0,L1,0.000,1000.000,3,1.000000,1.500000,10.000,20.000,hole,review\n" +
		`1,"L 2, drive",1000.000,2000.000,7,0.500000,0.600000,1200.000,1210.000,fly,mark` + "\n" +
		`1,"L 2, drive",1000.000,2000.000,2,3.000000,3.250000,990.000,1030.000,knot,mark` + "\n" +
		`1,"L 2, drive",1000.000,2000.000,1,5.000000,5.100000,1500.000,1510.000,stain,mark` + "\n"
	if b.String() != want {
		t.Errorf("marking list:\n%s\nwant\n%s", b.String(), want)
	}
	b.Reset()
	if err := ExportMarkingList(&b, nil, ds, []Decision{DecisionPass, DecisionReview}); err != nil {
		t.Fatal(err)
	}
	want = MarkingListHeader + "\n" +
		"-1,,,,3,1.000000,1.500000,10.000,20.000,hole,review\n" +
		"-1,,,,4,2.000000,2.100000,10.000,20.000,hole,pass\n"
	if b.String() != want {
		t.Errorf("marking list without lanes:\n%s\nwant\n%s", b.String(), want)
	}
	if err := ExportMarkingList(&b, []Lane{{"x", 2, 1}}, ds, nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad lanes: %v, want ErrInvalid", err)
	}
	if err := ExportMarkingList(failWriter{}, lanes, ds, nil); !errors.Is(err, errInjected) {
		t.Errorf("failing writer: %v", err)
	}
}

// TestDensityRandom cross-checks Density, open and closed, with a brute
// force count per bin and per-bin clipping of the uninspected ranges.
func TestDensityRandom(t *testing.T) {
	s := openStore(t)
	ds, us := makeDefects(2500, 70), makeUninspected(40, 71)
	r := writeRoll(t, s, "DR", ds, us, 2)
	r.SetLength(300)
	all := stored("DR", ds)
	check := func(where string, bin float64, lane int) {
		got, err := s.Density("DR", bin, lane)
		if err != nil {
			t.Fatal(err)
		}
		total := 0
		for k, b := range got {
			lo, hi := float64(k)*bin, float64(k+1)*bin
			if b.MDStartM != lo || b.MDEndM != hi {
				t.Fatalf("%s bin %d: [%v, %v), want [%v, %v)", where, k, b.MDStartM, b.MDEndM, lo, hi)
			}
			n, area := 0, 0.0
			for _, d := range all {
				if (lane == AllLanes || d.Lane == lane) && int(d.MDStartM/bin) == k {
					n++
					area += d.AreaMM2
				}
			}
			var clipped []Uninspected
			for _, u := range us {
				if u.MDEndM > lo && u.MDStartM < hi {
					clipped = append(clipped, Uninspected{MDStartM: max(lo, u.MDStartM), MDEndM: min(hi, u.MDEndM)})
				}
			}
			if b.Defects != n || math.Abs(b.AreaMM2-area) > 1e-6 || math.Abs(b.UninspectedM-uninspectedMetres(clipped)) > 1e-9 {
				t.Fatalf("%s bin %v lane %d #%d: %+v, want %d defects, area %v, uninspected %v",
					where, bin, lane, k, b, n, area, uninspectedMetres(clipped))
			}
			total += n
		}
		want := 0
		for _, d := range all {
			if lane == AllLanes || d.Lane == lane {
				want++
			}
		}
		if total != want {
			t.Fatalf("%s: bins hold %d defects, want %d", where, total, want)
		}
	}
	for _, where := range []string{"open", "closed"} {
		if where == "closed" {
			if err := r.Close(); err != nil {
				t.Fatal(err)
			}
		}
		for _, bin := range []float64{1, 7.5, 100} {
			for _, lane := range []int{AllLanes, NoLane, 0, 3} {
				check(where, bin, lane)
			}
		}
	}
}

package score

import (
	"math"
	"testing"

	"github.com/webinspect/webinspect/acquisition/sim"
	"github.com/webinspect/webinspect/rollmap"
)

// run1 is a 50 m run: two eligible truth defects (one found where it is,
// one missed), one below the size limit, and one false detection.
func run1() ([]sim.Truth, []rollmap.Defect) {
	truth := []sim.Truth{
		{ID: 1, Class: "hole", MDStartM: 1, MDEndM: 1.004, CDStartMM: 100, CDEndMM: 104, SizeMM: 4},
		{ID: 2, Class: "stain", MDStartM: 20, MDEndM: 20.01, CDStartMM: 500, CDEndMM: 510, SizeMM: 10},
		{ID: 3, Class: "gel", MDStartM: 30, MDEndM: 30.0005, CDStartMM: 900, CDEndMM: 900.5, SizeMM: 0.5},
	}
	found := []rollmap.Defect{
		// on the roll 40 mm from the web edge, which ran 60 mm into the view
		{ID: 1, Class: "hole", MDStartM: 1.0005, MDEndM: 1.004, CDStartMM: 40.5, CDEndMM: 44, WebEdgeMM: 60},
		{ID: 2, Class: "knot", MDStartM: 40, MDEndM: 40.002, CDStartMM: 1500, CDEndMM: 1502},
	}
	return truth, found
}

func TestDetectionsAtTheMachineCD(t *testing.T) {
	truth, found := run1()
	s := Detections(truth, found, Options{MinSizeMM: 1, LineMM: 0.25, PixelMM: 0.25, LengthM: 50})
	if s.Eligible != 2 || s.Found != 1 || s.False != 1 || len(s.Missed) != 1 || s.Missed[0].ID != 2 {
		t.Fatalf("eligible %d found %d false %d missed %v, want 2 1 1 [stain]", s.Eligible, s.Found, s.False, s.Missed)
	}
	if s.SubLimitTotal != 1 || s.SubLimitFound != 0 {
		t.Errorf("below the limit: %d of %d found, want 0 of 1", s.SubLimitFound, s.SubLimitTotal)
	}
	if s.FalsePer100M != 2 || s.LengthM != 50 {
		t.Errorf("false per 100 m %v over %v m, want 2 over 50", s.FalsePer100M, s.LengthM)
	}
	// Compared at CD + web edge: 100.5 against 100 is 0.5 mm off.
	if math.Abs(s.MaxCDErrMM-0.5) > 1e-9 || s.ClassRight != 1 {
		t.Errorf("CD error %v mm, class right %d, want 0.5 and 1", s.MaxCDErrMM, s.ClassRight)
	}
	found[0].WebEdgeMM = 0 // compared on the roll, it is 60 mm away: missed and false
	if s := Detections(truth, found, Options{MinSizeMM: 1, LengthM: 50}); s.Found != 0 || s.False != 2 {
		t.Errorf("without the web edge: found %d false %d, want 0 and 2", s.Found, s.False)
	}
}

// Pooled runs report the pooled rates: a 50 m run with one false defect
// and a 150 m run with none are 0.5 false per 100 m, not the first run's 2.
func TestAddPoolsRates(t *testing.T) {
	truth, found := run1()
	var all Score
	all.Add(Detections(truth, found, Options{MinSizeMM: 1, LengthM: 50}))
	clean := []rollmap.Defect{{ID: 1, Class: "stain", MDStartM: 20, MDEndM: 20.01, CDStartMM: 500, CDEndMM: 510}}
	all.Add(Detections(truth[1:2], clean, Options{MinSizeMM: 1, LengthM: 150}))
	if all.Eligible != 3 || all.Found != 2 || math.Abs(all.Recall-2.0/3) > 1e-12 {
		t.Errorf("pooled recall %d/%d = %v, want 2/3", all.Found, all.Eligible, all.Recall)
	}
	if all.False != 1 || all.LengthM != 200 || all.FalsePer100M != 0.5 || len(all.FalseDefects) != 1 {
		t.Errorf("pooled false %d over %v m = %v per 100 m (%d listed), want 1 over 200 = 0.5 (1)",
			all.False, all.LengthM, all.FalsePer100M, len(all.FalseDefects))
	}
	if all.SubLimitTotal != 1 || all.DetectedTotal != 3 || all.Confusion["stain"]["stain"] != 1 {
		t.Errorf("pooled sub-limit %d, detections %d, confusion %v", all.SubLimitTotal, all.DetectedTotal, all.Confusion)
	}
}

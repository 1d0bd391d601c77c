package calibrate

import (
	"errors"
	"strings"
	"testing"

	"github.com/webinspect/webinspect/rollmap"
)

func settings() Settings {
	return Settings{
		Recipe: "fabric-default", RecipeVersion: "v1",
		Severities:  []string{"minor", "major", "critical"},
		MinSeverity: map[string]string{"hole": "minor", "*": "major"},
		Detectors: []DetectorSettings{
			{Name: DetectorThreshold, Field: "threshold.min_peak_contrast", Current: 10, Target: 1.5, TargetField: "threshold.false_alarms_per_100m"},
			{Name: DetectorModel, Field: "model.min_peak_score", Current: 0, Target: 10, TargetField: "model.false_alarms_per_100m"},
		},
	}
}

func def(id int64, score float64, review, class, severity string) rollmap.Defect {
	return rollmap.Defect{ID: id, PeakScore: score, Detector: rollmap.DetectorThreshold, ReviewStatus: review,
		Class: class, Severity: severity, RecipeVersion: "v1"}
}

// TestCurveAndProposal: the points count what each threshold keeps and
// removes, the proposal is the lowest threshold meeting the target placed
// between two reviewed scores, and a defect the model saw too is never
// removed by the threshold detector's floor.
func TestCurveAndProposal(t *testing.T) {
	c, f := rollmap.ReviewConfirmed, rollmap.ReviewFalseAlarm
	ds := []rollmap.Defect{
		def(1, 12, f, "knot", "minor"), def(2, 13, f, "knot", "minor"), def(3, 14, f, "knot", "minor"),
		def(4, 15, f, "knot", "minor"), def(5, 16, f, "knot", "minor"), def(6, 17, f, "knot", "minor"),
		def(7, 18, c, "knot", "minor"), // confirmed, but the recipe passes minor knots: may go
		def(8, 30, c, "knot", "major"), def(9, 40, c, "hole", "minor"), def(10, 50, c, "stain", "critical"),
		def(11, 60, c, "knot", "major"),
		def(12, 11, "", "knot", "minor"), // not reviewed
		def(13, 20, f, "stain", "major"),
	}
	ds[12].Detector = rollmap.CombineDetectors(rollmap.DetectorThreshold, rollmap.ModelDetector("m")) // the model saw it too
	ds[12].ModelScore = 3
	rolls := []Roll{{Info: rollmap.RollInfo{ID: "A", Recipe: "fabric-default", LengthM: 100}, Defects: ds},
		{Info: rollmap.RollInfo{ID: "B", Recipe: "other", LengthM: 50}, Defects: []rollmap.Defect{{ID: 1, RecipeVersion: "v2", PeakScore: 99, Detector: rollmap.DetectorThreshold}}}}
	rep, err := Compute(rolls, settings())
	if !errors.Is(err, nil) {
		// The model detector has one defect: too few, but the threshold one has a proposal.
		t.Fatal(err)
	}
	if rep.LengthM != 100 || rep.OtherRecipes != 1 || len(rep.Rolls) != 1 {
		t.Errorf("report %+v: want roll A only, 100 m, one defect of another recipe", rep)
	}
	if len(rep.Curves) != 2 || rep.Curves[1].Proposal != nil || !strings.Contains(rep.Curves[1].Error, "model detector") {
		t.Fatalf("curves %+v", rep.Curves)
	}
	cv := rep.Curves[0]
	if cv.Reviewed != 12 || cv.Confirmed != 5 || cv.FalseAlarms != 7 || cv.MustKeep != 4 || cv.Defects != 13 {
		t.Errorf("counts %+v", cv)
	}
	first := cv.Points[0]
	if first.Threshold != 10 || first.FalseKept != 7 || first.ConfirmedKept != 5 || first.DefectsKept != 13 {
		t.Errorf("first point %+v", first)
	}
	// 7 false alarms kept among 12 reviewed, 13 defects, 100 m.
	if want := 7.0 * 13 / 12; abs(first.FalsePer100M-want) > 1e-9 {
		t.Errorf("estimate %v, want %v", first.FalsePer100M, want)
	}
	p := cv.Proposal
	// At 18 the kept are 18 (confirmed), 20 (false, but the model saw it)
	// and 30..60: 1 false alarm of 6 reviewed, 6 defects: 1 per 100 m.
	if p == nil || !p.Change || !p.TargetMet || p.Threshold != 17.5 {
		t.Fatalf("proposal %+v", p)
	}
	if p.Point.FalseRemoved != 6 || p.Point.FalseKept != 1 || p.Point.ConfirmedLost != 0 || p.Point.DefectsKept != 6 {
		t.Errorf("proposal point %+v", p.Point)
	}

	// A stricter target cannot be met: the false alarm the model saw stays
	// whatever the floor, and above 30 a major knot would be lost. The
	// lowest threshold with the lowest estimate is proposed.
	s := settings()
	s.Detectors[0].Target = 0.5
	rep, _ = Compute(rolls, s)
	p = rep.Curves[0].Proposal
	if p.TargetMet || p.Threshold != 17.5 || p.Point.ConfirmedLost != 0 || p.Point.FalseKept != 1 ||
		!strings.Contains(p.Reason, "not met") || !strings.Contains(p.Reason, "no higher threshold removes more") {
		t.Errorf("strict target: %+v", p)
	}
	// Without the model's help the false alarm at 20 can go, with the
	// minor knot at 18 (the recipe passes minor knots), but no further.
	rolls[0].Defects[12].Detector, rolls[0].Defects[12].ModelScore = rollmap.DetectorThreshold, 0
	rep, _ = Compute(rolls, s)
	p = rep.Curves[0].Proposal
	if !p.TargetMet || p.Threshold != 25 || p.Point.ConfirmedLost != 1 || p.Point.MustKeepLost != 0 || p.Point.FalseKept != 0 {
		t.Errorf("strict target without the model: %+v", p)
	}
}

func abs(v float64) float64 {
	if v < 0 {
		return -v
	}
	return v
}

// TestBadInput: no reviews or too few name how many are needed; rolls of
// another recipe are named.
func TestBadInput(t *testing.T) {
	ds := []rollmap.Defect{def(1, 12, "", "knot", "minor"), def(2, 30, rollmap.ReviewConfirmed, "knot", "major")}
	_, err := Compute([]Roll{{Info: rollmap.RollInfo{ID: "A", LengthM: 10}, Defects: ds}}, settings())
	if !errors.Is(err, ErrTooFewReviews) || !strings.Contains(err.Error(), "4 more confirmed defects and 5 more false alarms") {
		t.Errorf("too few: %v", err)
	}
	s := settings()
	s.RecipeVersion = "v9"
	_, err = Compute([]Roll{{Info: rollmap.RollInfo{ID: "A", LengthM: 10}, Defects: ds}}, s)
	if !errors.Is(err, ErrNoDefects) || !strings.Contains(err.Error(), "rolls A hold no defect") || !strings.Contains(err.Error(), "v9") {
		t.Errorf("other recipe: %v", err)
	}
}

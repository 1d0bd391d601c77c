package engine

import (
	"strings"
	"testing"

	"github.com/webinspect/webinspect/rollmap"
)

// TestRescore: a stored defect is decided again by a candidate recipe from
// its record: dropped below the new detection limits it can check,
// re-classed by the new rules, and overridden by its recorded learned
// class when the candidate's confidence bar allows.
func TestRescore(t *testing.T) {
	r, err := DefaultRecipe("fabric")
	if err != nil {
		t.Fatal(err)
	}
	// A 2 × 2 mm dark blob of contrast 60: a knot, minor, passed.
	knot := rollmap.Defect{ID: 1, MDStartM: 1, MDEndM: 1.002, CDStartMM: 10, CDEndMM: 12, AreaMM2: 3.2, PeakScore: 60, MeanScore: 50,
		Polarity: "dark", Class: "knot", Severity: "minor", Decision: DecisionPass, Detector: rollmap.DetectorThreshold}
	if d, why := r.Rescore(knot); why != "" || d.Class != "knot" || d.Severity != "minor" || d.Decision != DecisionPass {
		t.Fatalf("the recipe that decided it: %+v (%q), want it unchanged", d, why)
	}
	strict := *r
	strict.Threshold.MinSizeMM = 3
	if _, why := strict.Rescore(knot); !strings.Contains(why, "threshold.min_size_mm 3") {
		t.Errorf("3 mm detection limit: %q", why)
	}
	// A defect exactly at the size limit, as stored: 0.001 m of MD comes
	// back from the metres as 0.99999… mm; the engine measured 1 mm from
	// its lines and kept it, so Rescore keeps it too.
	atLimit := knot
	atLimit.MDStartM, atLimit.MDEndM, atLimit.CDStartMM, atLimit.CDEndMM = 26.79575, 26.79675, 370.75, 371.25
	limit := *r
	limit.Threshold.MinSizeMM = 1
	if _, why := limit.Rescore(atLimit); why != "" {
		t.Errorf("a 1 mm defect at a 1 mm limit: %q", why)
	}
	strict = *r
	strict.Threshold.MinContrast = 70
	if _, why := strict.Rescore(knot); !strings.Contains(why, "threshold.min_contrast 70") {
		t.Errorf("contrast 70: %q", why)
	}
	model := knot
	model.Detector = rollmap.ModelDetector("m")
	if _, why := strict.Rescore(model); why != "" {
		t.Errorf("a defect the model saw is not dropped by the threshold's contrast: %q", why)
	}
	strict = *r
	strict.Decisions = append([]DecisionRule{{Class: "knot", Severity: "minor", Decision: DecisionReview}}, r.Decisions...)
	if d, _ := strict.Rescore(knot); d.Decision != DecisionReview || knot.Decision != DecisionPass {
		t.Errorf("knots to review: decision %s (stored defect %s)", d.Decision, knot.Decision)
	}
	learned := knot
	learned.LearnedClass, learned.LearnedConfidence = "hole", 0.95
	if d, _ := r.Rescore(learned); d.Class != "hole" || d.RuleClass != "knot" {
		t.Errorf("learned hole at 0.95 over a 0.9 bar: class %s, rule class %s", d.Class, d.RuleClass)
	}
	strict = *r
	strict.Classifier.OverrideMinConfidence = 0.99
	if d, _ := strict.Rescore(learned); d.Class != "knot" {
		t.Errorf("learned hole at 0.95 under a 0.99 bar: class %s", d.Class)
	}
}

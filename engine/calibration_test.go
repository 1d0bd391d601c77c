package engine

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/webinspect/webinspect/acquisition/sim"
	"github.com/webinspect/webinspect/bench/score"
	"github.com/webinspect/webinspect/internal/long"
	"github.com/webinspect/webinspect/rollmap"
	"github.com/webinspect/webinspect/rollmap/calibrate"
)

// lowThresholdRecipe is the built-in fabric recipe with its pixel
// threshold deliberately too low: the weave's noise flags false defects.
func lowThresholdRecipe(t *testing.T) *Recipe {
	t.Helper()
	r, err := DefaultRecipe("fabric")
	if err != nil {
		t.Fatal(err)
	}
	r.Threshold.KSigma, r.Threshold.MinContrast = 2.5, 5
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	return r
}

// reviewFromTruth is the scripted reviewer: every defect that matches a
// truth defect is confirmed, every other one is a false alarm.
func reviewFromTruth(sc score.Score, ds []rollmap.Defect) []rollmap.Defect {
	out := slices.Clone(ds)
	for i := range out {
		out[i].ReviewStatus = rollmap.ReviewConfirmed
		if slices.ContainsFunc(sc.FalseDefects, func(f rollmap.Defect) bool { return f.ID == out[i].ID }) {
			out[i].ReviewStatus = rollmap.ReviewFalseAlarm
		}
	}
	return out
}

// TestCalibrationFromReviewsOnUnseenRoll is the acceptance of threshold
// re-calibration: on a simulated roll inspected with a threshold that is
// too low, a reviewer who knows the truth marks the false alarms; the
// threshold proposed from those reviews removes at least half the false
// alarms of a second roll it never saw (another seed), and finds the same
// real defects there, give or take one.
//
// make test runs it on two 8 m rolls 200 mm wide; make test-long (WEBINSPECT_LONG=1)
// on two 30 m rolls as well.
func TestCalibrationFromReviewsOnUnseenRoll(t *testing.T) {
	t.Run("length=8m", func(t *testing.T) { calibrationOnUnseenRoll(t, 8, 200, 8) })
	t.Run("length=30m", func(t *testing.T) {
		long.Skip(t, "two 30 m rolls")
		calibrationOnUnseenRoll(t, 30, 400, 14)
	})
}

func calibrationOnUnseenRoll(t *testing.T, lengthM, widthMM float64, defects int) {
	low := lowThresholdRecipe(t)
	cfg := func(seed int64) sim.Config {
		c := testSimConfig("fabric", seed)
		c.LengthM, c.WidthMM, c.Defects = lengthM, widthMM, defects
		return c
	}
	cfgA := cfg(21)
	rollA, sA, err := runSim(t, cfgA, low, Options{})
	if err != nil {
		t.Fatal(err)
	}
	scA := scoreRoll(t, cfgA, low, rollA, sA.Truth())
	reviewed := reviewFromTruth(scA, rollA.defects)
	rep, err := calibrate.Compute([]calibrate.Roll{{
		Info:    rollmap.RollInfo{ID: "A", Recipe: low.Name, LengthM: cfgA.LengthM},
		Defects: reviewed,
	}}, low.CalibrationSettings(""))
	if err != nil {
		t.Fatalf("calibrate: %v (roll A: %v)", err, scA)
	}
	if len(rep.Curves) != 1 || rep.Curves[0].Name != calibrate.DetectorThreshold || rep.Curves[0].Proposal == nil {
		t.Fatalf("want one proposal for the threshold detector, got %+v", rep.Curves)
	}
	c := rep.Curves[0]
	p := c.Proposal
	t.Logf("roll A: %v; %d reviewed: %d confirmed, %d false alarms; proposal %s = %g (%s)",
		scA, c.Reviewed, c.Confirmed, c.FalseAlarms, c.Field, p.Threshold, p.Reason)
	if !p.Change || p.Point.MustKeepLost != 0 {
		t.Fatalf("proposal %+v: want a higher threshold that loses no must-keep defect", p)
	}
	tuned, err := low.WithThreshold(calibrate.DetectorThreshold, p.Threshold)
	if err != nil {
		t.Fatal(err)
	}

	// The floor drops exactly the defects below it: on the reviewed roll
	// the new recipe gives what the curve said.
	againA, _, err := runSim(t, cfgA, tuned, Options{})
	if err != nil {
		t.Fatal(err)
	}
	scAgain := scoreRoll(t, cfgA, tuned, againA, sA.Truth())
	if len(againA.defects) != p.Point.DefectsKept || scAgain.False != p.Point.FalseKept {
		t.Errorf("roll A again with the proposal: %d defects, %d false alarms; the curve said %d and %d",
			len(againA.defects), scAgain.False, p.Point.DefectsKept, p.Point.FalseKept)
	}

	// compare's re-scoring from the roll map alone agrees.
	rescored := 0
	for _, d := range rollA.defects {
		if _, why := tuned.Rescore(d); why == "" {
			rescored++
		}
	}
	if rescored != p.Point.DefectsKept {
		t.Errorf("Rescore with the proposal keeps %d of roll A's defects, the curve %d", rescored, p.Point.DefectsKept)
	}

	cfgB := cfg(22)
	before, sB, err := runSim(t, cfgB, low, Options{})
	if err != nil {
		t.Fatal(err)
	}
	after, _, err := runSim(t, cfgB, tuned, Options{})
	if err != nil {
		t.Fatal(err)
	}
	truthB := sB.Truth()
	scBefore := scoreRoll(t, cfgB, low, before, truthB)
	scAfter := scoreRoll(t, cfgB, tuned, after, truthB)
	// Recall of the classes the reviewer confirmed on roll A.
	// (The reviewer knows the truth: the confirmed classes are the true
	// classes of the defects it confirmed.)
	confirmed := map[string]bool{}
	for class := range scA.Confusion {
		confirmed[class] = true
	}
	foundBefore, foundAfter := foundOfClasses(scBefore, confirmed), foundOfClasses(scAfter, confirmed)
	removed := 1 - float64(scAfter.False)/float64(max(scBefore.False, 1))
	t.Logf("roll B before: %v", scBefore)
	t.Logf("roll B after:  %v", scAfter)
	t.Logf("roll B: false alarms %d -> %d (%.0f %% removed); real defects of the confirmed classes found %d -> %d (of all classes %d -> %d of %d)",
		scBefore.False, scAfter.False, 100*removed, foundBefore, foundAfter, scBefore.Found, scAfter.Found, scBefore.Eligible)
	if scBefore.False < 4 {
		t.Fatalf("the low threshold gave only %d false alarms on roll B: the setup does not test anything", scBefore.False)
	}
	if removed < 0.5 {
		t.Errorf("the proposed threshold removed %.0f %% of roll B's false alarms, want at least 50 %%", 100*removed)
	}
	if foundAfter < foundBefore-1 {
		t.Errorf("recall of the confirmed classes fell from %d to %d real defects (more than one)", foundBefore, foundAfter)
	}
}

// foundOfClasses counts the found truth defects whose true class is one of
// classes.
func foundOfClasses(s score.Score, classes map[string]bool) int {
	n := 0
	for truth, by := range s.Confusion {
		if classes[truth] {
			for _, k := range by {
				n += k
			}
		}
	}
	return n
}

// TestCalibrationTooFewReviews: without reviews, or with too few, the
// error says how many are needed.
func TestCalibrationTooFewReviews(t *testing.T) {
	r, err := DefaultRecipe("fabric")
	if err != nil {
		t.Fatal(err)
	}
	ds := make([]rollmap.Defect, 8)
	for i := range ds {
		ds[i] = rollmap.Defect{ID: int64(i + 1), PeakScore: float64(20 + i), Detector: rollmap.DetectorThreshold, Class: "knot", Severity: "minor"}
	}
	roll := calibrate.Roll{Info: rollmap.RollInfo{ID: "R1", Recipe: r.Name, LengthM: 100}, Defects: ds}
	_, err = calibrate.Compute([]calibrate.Roll{roll}, r.CalibrationSettings(""))
	if !errors.Is(err, calibrate.ErrTooFewReviews) || !strings.Contains(err.Error(), "at least 5") || !strings.Contains(err.Error(), "5 more false alarms") {
		t.Errorf("no reviews: %v", err)
	}
	for i := range 3 {
		ds[i].ReviewStatus = rollmap.ReviewFalseAlarm
	}
	for i := 3; i < 8; i++ {
		ds[i].ReviewStatus = rollmap.ReviewConfirmed
	}
	_, err = calibrate.Compute([]calibrate.Roll{roll}, r.CalibrationSettings(""))
	if !errors.Is(err, calibrate.ErrTooFewReviews) || !strings.Contains(err.Error(), "2 more false alarms") || strings.Contains(err.Error(), "more confirmed") {
		t.Errorf("3 false alarms: %v", err)
	}
	_, err = calibrate.Compute([]calibrate.Roll{roll}, r.CalibrationSettings("0123456789abcdef"))
	if err != nil && !errors.Is(err, calibrate.ErrTooFewReviews) {
		t.Errorf("a roll without versions is matched by the recipe's name: %v", err)
	}
	roll.Info.Recipe = "film-default"
	_, err = calibrate.Compute([]calibrate.Roll{roll}, r.CalibrationSettings(""))
	if !errors.Is(err, calibrate.ErrNoDefects) || !strings.Contains(err.Error(), "R1") {
		t.Errorf("a roll of another recipe: %v", err)
	}
}

// TestScoreFloors: a defect is dropped only when every detector that saw
// it scored it below its floor; floors of 0 keep everything.
func TestScoreFloors(t *testing.T) {
	r, err := DefaultRecipe("fabric")
	if err != nil {
		t.Fatal(err)
	}
	a := &merger{recipe: r}
	thr := &pendingDefect{bright: 5, peak: 30}
	mod := &pendingDefect{scoreN: 4, score: 2.5}
	both := &pendingDefect{dark: 3, peak: 30, scoreN: 4, score: 2.5}
	for _, c := range []struct {
		tFloor, mFloor float64
		thr, mod, both bool
	}{
		{0, 0, true, true, true},
		{25, 0, true, true, true},
		{31, 0, false, true, true},
		{31, 2, false, true, true},
		{31, 3, false, false, false},
		{0, 3, true, false, true},
	} {
		r.Threshold.MinPeakContrast, r.Model.MinPeakScore = c.tFloor, c.mFloor
		if got := [3]bool{a.aboveFloors(thr), a.aboveFloors(mod), a.aboveFloors(both)}; got != [3]bool{c.thr, c.mod, c.both} {
			t.Errorf("floors %g/%g: threshold-only, model-only, both kept = %v, want %v", c.tFloor, c.mFloor, got, [3]bool{c.thr, c.mod, c.both})
		}
	}
	// The recipe refuses floors out of range, naming the field.
	for field, set := range map[string]func(*Recipe){
		"threshold.min_peak_contrast":     func(r *Recipe) { r.Threshold.MinPeakContrast = 300 },
		"threshold.false_alarms_per_100m": func(r *Recipe) { r.Threshold.FalseAlarmsPer100M = 0 },
		"model.min_peak_score":            func(r *Recipe) { r.Model.MinPeakScore = -1 },
	} {
		bad, _ := DefaultRecipe("fabric")
		set(bad)
		if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("%s out of range: %v", field, err)
		}
	}
	if _, err := ParseRecipe("r.json", []byte(`{"material":"fabric","threshold":{"false_alarms_per_100m":500},"classes":[{"name":"x"}]}`)); err == nil ||
		!strings.Contains(err.Error(), "threshold.false_alarms_per_100m = 500: must be between") {
		t.Errorf("loading a recipe with a target out of range: %v", err)
	}
}

package engine

import (
	"fmt"

	"github.com/webinspect/webinspect/rollmap"
)

// # Re-scoring a stored defect without its recording
//
// When a roll has no recording, `webinspect compare` can only decide the
// defects the roll map already holds again: Rescore applies a candidate
// recipe to what the record says of a defect (its box, area, polarity and
// peak contrast: the Measure the assembly classified it with). It checks
// the detection limits that can be checked from the record
// (threshold.min_size_mm, threshold.min_contrast for a defect the
// threshold detector saw alone, and the score floors exactly as the
// assembly applies them), then the class rules, severity and
// decision rules, and the learned class the record holds (the recipe's
// classifier.override_min_confidence). What it cannot see: defects the
// candidate would newly find, and every other detection setting (k_sigma,
// the background model, min_area_px, merge_gap_mm, a model's threshold);
// RescoreLimits names them.

// RescoreLimits says what Rescore cannot tell from a stored defect.
const RescoreLimits = "from the roll map alone, newly flagged defects cannot be found, and only threshold.min_size_mm, " +
	"threshold.min_contrast and the score floors (threshold.min_peak_contrast, model.min_peak_score) can drop a defect (k_sigma, the background model, min_area_px, merge_gap_mm and a model's " +
	"detections need the recording)"

// Rescore returns stored defect d as recipe r would decide it, or a
// reason ("" when kept) why r would not record it at all. d is not
// changed.
func (r *Recipe) Rescore(d rollmap.Defect) (rollmap.Defect, string) {
	m := measureOf(&d)
	if s := m.SizeMM(); s < r.Threshold.MinSizeMM {
		return d, fmt.Sprintf("its size %.2f mm is below threshold.min_size_mm %g mm", s, r.Threshold.MinSizeMM)
	}
	if d.Detector == rollmap.DetectorThreshold && d.PeakScore < r.Threshold.MinContrast {
		return d, fmt.Sprintf("its peak contrast %.1f is below threshold.min_contrast %g", d.PeakScore, r.Threshold.MinContrast)
	}
	if why := r.belowFloors(&d); why != "" {
		return d, why
	}
	class, severity, decision := r.Classify(m)
	if d.LearnedClass != "" {
		d.RuleClass = class
		if min := r.Classifier.OverrideMinConfidence; min > 0 && d.LearnedConfidence >= min && d.LearnedClass != class {
			class = d.LearnedClass
			severity, decision = r.SeverityDecision(class, m)
		}
	}
	d.Class, d.Severity, d.Decision = class, severity, decision
	if len(r.Lanes) > 0 {
		d.Lane = rollmap.AssignLane(r.Lanes, d)
	} else {
		d.Lane = -1
	}
	return d, ""
}

// belowFloors says why the score floors (threshold.min_peak_contrast,
// model.min_peak_score) would drop stored defect d, as the assembly's
// aboveFloors does: every detector that saw it scored it below its floor.
// "" when kept. A defect both detectors saw in a roll written before
// model_score was stored has no model score: it is kept.
func (r *Recipe) belowFloors(d *rollmap.Defect) string {
	hasT := d.Detector.Has(rollmap.DetectorThreshold)
	hasM := false
	for _, p := range d.Detector.Parts() {
		if _, ok := p.Model(); ok {
			hasM = true
		}
	}
	mScore := d.ModelScore
	switch {
	case hasM && hasT && mScore == 0:
		return "" // written before model_score: the model's score is unknown
	case hasM && !hasT && mScore == 0:
		mScore = d.PeakScore // the model's alone: its score is the peak
	}
	if r.aboveFloors(hasT, d.PeakScore, hasM, mScore) {
		return ""
	}
	return fmt.Sprintf("every detector that saw it scored it below its floor (peak %.1f, threshold.min_peak_contrast %g, model.min_peak_score %g)",
		d.PeakScore, r.Threshold.MinPeakContrast, r.Model.MinPeakScore)
}

// aboveFloors is the score-floor rule the assembly applies to a new
// defect and Rescore to a stored one: a defect is dropped only when every
// detector that saw it scored it below its floor in the recipe
// (threshold.min_peak_contrast for the threshold detector's peak
// |contrast|, model.min_peak_score for the model's peak anomaly score).
// Floors of 0 keep everything.
func (r *Recipe) aboveFloors(tSeen bool, tPeak float64, mSeen bool, mScore float64) bool {
	tFloor, mFloor := r.Threshold.MinPeakContrast, r.Model.MinPeakScore
	if tFloor <= 0 && mFloor <= 0 {
		return true
	}
	return tSeen && tPeak >= tFloor || mSeen && mScore >= mFloor
}

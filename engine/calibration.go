package engine

import (
	"fmt"
	"slices"

	"github.com/webinspect/webinspect/rollmap"
	"github.com/webinspect/webinspect/rollmap/calibrate"
)

// Recipe fields that hold the detectors' score floors and false-alarm
// targets (rollmap/calibrate).
const (
	FieldThresholdFloor  = "threshold.min_peak_contrast"
	FieldThresholdTarget = "threshold.false_alarms_per_100m"
	FieldModelFloor      = "model.min_peak_score"
	FieldModelTarget     = "model.false_alarms_per_100m"
)

// CalibrationSettings returns what rollmap/calibrate needs of the recipe,
// whose version ID is version: each detector's threshold in force and its
// false-alarm target, and each class's minimum severity (the lowest
// severity the decision rules do not pass for it).
func (r *Recipe) CalibrationSettings(version string) calibrate.Settings {
	s := calibrate.Settings{
		Recipe: r.Name, RecipeVersion: version, Severities: slices.Clone(Severities),
		MinSeverity: map[string]string{},
		Detectors: []calibrate.DetectorSettings{
			{Name: calibrate.DetectorThreshold, Field: FieldThresholdFloor,
				Current: max(r.Threshold.MinContrast, r.Threshold.MinPeakContrast),
				Target:  r.Threshold.FalseAlarmsPer100M, TargetField: FieldThresholdTarget},
			{Name: calibrate.DetectorModel, Field: FieldModelFloor,
				Current: r.Model.MinPeakScore,
				Target:  r.Model.FalseAlarmsPer100M, TargetField: FieldModelTarget},
		},
	}
	// "*" stands for a class the rules do not name (a reviewer's new
	// label): only the "*" decision rules apply to it.
	for _, class := range append(r.producibleClasses(), "*") {
		for _, sev := range Severities {
			if r.decide(class, sev) != DecisionPass {
				s.MinSeverity[class] = sev
				break
			}
		}
	}
	return s
}

// decide is the decision of a defect of class with severity: the first
// matching decision rule's, DecisionPass when none matches.
func (r *Recipe) decide(class, severity string) rollmap.Decision {
	if i := r.decisionRule(class, severity); i >= 0 {
		return r.Decisions[i].Decision
	}
	return DecisionPass
}

// decisionRule is the index of the first decision rule matching class and
// severity, -1 when none does.
func (r *Recipe) decisionRule(class, severity string) int {
	return slices.IndexFunc(r.Decisions, func(d DecisionRule) bool {
		return (d.Class == "*" || d.Class == class) && (d.Severity == "*" || d.Severity == severity)
	})
}

// WithThreshold returns a copy of the recipe with a detector's score floor
// (calibrate.DetectorThreshold or DetectorModel) set to t, validated.
func (r *Recipe) WithThreshold(detector string, t float64) (*Recipe, error) {
	c := *r
	switch detector {
	case calibrate.DetectorThreshold:
		c.Threshold.MinPeakContrast = t
	case calibrate.DetectorModel:
		c.Model.MinPeakScore = t
	default:
		return nil, fmt.Errorf("%w %s: no detector %q to calibrate (threshold or model)", ErrRecipe, r.Name, detector)
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("%w %s: %v", ErrRecipe, r.Name, err)
	}
	return &c, nil
}

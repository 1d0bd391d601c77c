package engine

import (
	"math"

	"github.com/webinspect/webinspect/rollmap"
)

// Measure is what classification looks at: the defect's extent and contrast
// in physical units.
type Measure struct {
	LengthMM float64 // MD extent
	WidthMM  float64 // CD extent
	AreaMM2  float64
	Polarity string  // bright, dark, mixed
	PeakAbs  float64 // peak |contrast|, grey levels
}

// SizeMM is the largest dimension.
func (m Measure) SizeMM() float64 { return math.Max(m.LengthMM, m.WidthMM) }

// Aspect is MD length over CD width (>1: along the machine direction).
func (m Measure) Aspect() float64 {
	if m.WidthMM <= 0 {
		return math.Inf(1)
	}
	return m.LengthMM / m.WidthMM
}

func (c *ClassRule) matches(m Measure) bool {
	within := func(v, lo, hi float64) bool {
		return (lo == 0 || v >= lo) && (hi == 0 || v <= hi)
	}
	return (c.Polarity == "" || c.Polarity == m.Polarity) &&
		within(m.LengthMM, c.MinLengthMM, c.MaxLengthMM) &&
		within(m.WidthMM, c.MinWidthMM, c.MaxWidthMM) &&
		within(m.Aspect(), c.MinAspect, c.MaxAspect) &&
		within(m.AreaMM2, c.MinAreaMM2, c.MaxAreaMM2) &&
		within(m.SizeMM(), c.MinSizeMM, c.MaxSizeMM)
}

// Classify returns the class, severity and decision the recipe gives a
// defect with measure m.
func (r *Recipe) Classify(m Measure) (class, severity string, decision rollmap.Decision) {
	class = "other"
	for i := range r.Classes {
		if r.Classes[i].matches(m) {
			class = r.Classes[i].Name
			break
		}
	}
	severity = "minor"
	for _, s := range r.Severity {
		if (s.Class == "*" || s.Class == class) && m.SizeMM() >= s.MinSizeMM && m.PeakAbs >= s.MinContrast {
			severity = s.Severity
			break
		}
	}
	decision = DecisionPass
	for _, d := range r.Decisions {
		if (d.Class == "*" || d.Class == class) && (d.Severity == "*" || d.Severity == severity) {
			decision = d.Decision
			break
		}
	}
	return class, severity, decision
}

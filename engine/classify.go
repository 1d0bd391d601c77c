package engine

import (
	"math"

	"github.com/webinspect/webinspect/internal/fieldcheck"
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
	MeanAbs  float64 // mean |contrast| over the flagged pixels, grey levels (0: only the model saw it)
}

// Fill is the share of the bounding box the defect's pixels cover: about
// 0.8 for an ellipse, 1 for a rectangle along MD or CD, small for a thin
// line at an angle.
func (m Measure) Fill() float64 {
	if m.LengthMM <= 0 || m.WidthMM <= 0 {
		return 0
	}
	return math.Min(1, m.AreaMM2/(m.LengthMM*m.WidthMM))
}

// Uniformity is the mean over the peak contrast: about 0.9 for a defect of
// even contrast, lower for one with a weaker rim (a gel's halo); 0 when
// only the model saw it.
func (m Measure) Uniformity() float64 {
	if m.PeakAbs <= 0 {
		return 0
	}
	return m.MeanAbs / m.PeakAbs
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

// ClassRule names a class for defects that satisfy every set condition.
// Zero-valued conditions are not checked. Length is along MD, width across
// (CD), aspect is length/width, size is max(length, width).
type ClassRule struct {
	Name        string  `json:"name"`
	Polarity    string  `json:"polarity,omitempty"` // bright, dark, mixed or "" for any
	MinLengthMM float64 `json:"min_length_mm,omitempty"`
	MaxLengthMM float64 `json:"max_length_mm,omitempty"`
	MinWidthMM  float64 `json:"min_width_mm,omitempty"`
	MaxWidthMM  float64 `json:"max_width_mm,omitempty"`
	MinAspect   float64 `json:"min_aspect,omitempty"`
	MaxAspect   float64 `json:"max_aspect,omitempty"`
	MinAreaMM2  float64 `json:"min_area_mm2,omitempty"`
	MaxAreaMM2  float64 `json:"max_area_mm2,omitempty"`
	MinSizeMM   float64 `json:"min_size_mm,omitempty"`
	MaxSizeMM   float64 `json:"max_size_mm,omitempty"`
	// Fill is the share of the bounding box the defect covers (Measure.Fill,
	// 0 to 1): about 0.8 for a blob, 1 for a line along MD or CD, small
	// for a thin line at an angle.
	MinFill float64 `json:"min_fill,omitempty"`
	MaxFill float64 `json:"max_fill,omitempty"`
	// Uniformity is mean over peak contrast (Measure.Uniformity, 0 to 1):
	// about 0.8 for a defect of even contrast, 0.6 for one with a faint
	// rim (a gel's halo). A defect only the model saw has 0.
	MinUniformity float64 `json:"min_uniformity,omitempty"`
	MaxUniformity float64 `json:"max_uniformity,omitempty"`
	// Contrast bounds the peak |contrast| in grey levels.
	MinContrast float64 `json:"min_contrast,omitempty"`
	MaxContrast float64 `json:"max_contrast,omitempty"`
}

// validate checks the rule, f naming it (classes[i]).
func (c *ClassRule) validate(f string) error {
	return firstErr([]error{
		nonEmpty(f+".name", c.Name),
		orEmpty(oneOf(f+".polarity", c.Polarity, "bright", "dark", "mixed"), c.Polarity),
		minMax(f, "length_mm", c.MinLengthMM, c.MaxLengthMM),
		minMax(f, "width_mm", c.MinWidthMM, c.MaxWidthMM),
		minMax(f, "aspect", c.MinAspect, c.MaxAspect),
		minMax(f, "area_mm2", c.MinAreaMM2, c.MaxAreaMM2),
		minMax(f, "size_mm", c.MinSizeMM, c.MaxSizeMM),
		minMax(f, "fill", c.MinFill, c.MaxFill),
		fieldcheck.Float(f+".max_fill", c.MaxFill, 0, 1),
		minMax(f, "uniformity", c.MinUniformity, c.MaxUniformity),
		fieldcheck.Float(f+".max_uniformity", c.MaxUniformity, 0, 1),
		minMax(f, "contrast", c.MinContrast, c.MaxContrast),
		fieldcheck.Float(f+".max_contrast", c.MaxContrast, 0, 255),
	})
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
		within(m.SizeMM(), c.MinSizeMM, c.MaxSizeMM) &&
		within(m.Fill(), c.MinFill, c.MaxFill) &&
		within(m.Uniformity(), c.MinUniformity, c.MaxUniformity) &&
		within(m.PeakAbs, c.MinContrast, c.MaxContrast)
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
	severity, decision = r.SeverityDecision(class, m)
	return class, severity, decision
}

// SeverityDecision returns the severity and decision the recipe gives a
// defect of class class with measure m.
func (r *Recipe) SeverityDecision(class string, m Measure) (severity string, decision rollmap.Decision) {
	severity = "minor"
	for _, s := range r.Severity {
		if (s.Class == "*" || s.Class == class) && m.SizeMM() >= s.MinSizeMM && m.PeakAbs >= s.MinContrast {
			severity = s.Severity
			break
		}
	}
	return severity, r.decide(class, severity)
}

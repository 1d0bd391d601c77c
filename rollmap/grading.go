package rollmap

import (
	"fmt"
	"math"
	"slices"
	"strconv"
)

// Grading scheme kinds (GradingScheme.Kind).
const (
	// SchemeFourPoint is the textile 4-point system (ASTM D5430): each
	// defect scores 1 to 4 points by its length, at most 4 points are
	// counted per linear yard, and the roll (lane) is graded by its points
	// per 100 square yards (or, with Metric, per 100 m²).
	SchemeFourPoint = "four-point"
	// SchemeCountPerArea counts defects per reference area (e.g. per m² or
	// per 100 m²) against a maximum, as film and nonwoven lines do.
	SchemeCountPerArea = "count-per-area"
)

// Units of LaneGrade.Density.
const (
	UnitPoints100yd2 = "points/100yd2"
	UnitPoints100m2  = "points/100m2"
)

// Conversion factors of the 4-point system.
const (
	mmPerInch = 25.4
	mPerYard  = 0.9144
)

// GradingScheme says how the lanes of a roll are graded. It is part of a
// recipe and of RollMeta; DefaultGradingScheme gives the common 4-point
// setting.
type GradingScheme struct {
	// Kind is SchemeFourPoint or SchemeCountPerArea.
	Kind string `json:"kind"`

	// Decisions lists the decisions of the defects that count. Empty:
	// every decision except DecisionPass. Defects reviewed as
	// "false_alarm" never count.
	Decisions []Decision `json:"decisions,omitempty"`
	// Classes lists the classes that count. Empty: every class. A defect
	// reviewed as "reclassified" with a ReviewLabel counts under that label.
	Classes []string `json:"classes,omitempty"`

	// Metric (4-point only) grades by points per 100 m² instead of points
	// per 100 square yards.
	Metric bool `json:"metric,omitempty"`
	// HoleClasses (4-point only) are the classes that are holes or
	// openings: one 1 inch (25.4 mm) or larger scores 4 points whatever its
	// length.
	HoleClasses []string `json:"hole_classes,omitempty"`

	// PerM2 (count-per-area only) is the reference area in m² of the
	// density: 1 gives defects per m², 100 defects per 100 m². > 0.
	PerM2 float64 `json:"per_m2,omitempty"`

	// PassLimit is the largest density (points per 100 yd² or 100 m², or
	// defects per PerM2 m²) with which a lane passes. >= 0.
	PassLimit float64 `json:"pass_limit"`
	// Grades are named density bands in increasing Max order: a lane's
	// grade is the Name of the first band whose Max its density does not
	// exceed, else FailGrade. Empty: the grade is "pass" or "fail" by
	// PassLimit.
	Grades []GradeBand `json:"grades,omitempty"`
	// FailGrade is the grade of a lane above every band; empty: "fail".
	FailGrade string `json:"fail_grade,omitempty"`
}

// GradeBand is one named density band of a GradingScheme.
type GradeBand struct {
	Name string  `json:"name"`
	Max  float64 `json:"max"`
}

// DefaultGradingScheme returns the 4-point system as commonly agreed for
// woven fabric: points per 100 yd², pass at 40 or less, no named bands.
func DefaultGradingScheme() GradingScheme {
	return GradingScheme{Kind: SchemeFourPoint, PassLimit: 40, HoleClasses: []string{"hole"}}
}

// Validate checks the scheme: a known Kind, PerM2 > 0 for count-per-area,
// known Decisions,
// PassLimit finite and >= 0, bands named, finite, >= 0 and in increasing
// Max order. The error wraps ErrInvalid and names the field.
func (g GradingScheme) Validate() error {
	switch g.Kind {
	case SchemeFourPoint:
	case SchemeCountPerArea:
		if !finite(g.PerM2) || g.PerM2 <= 0 {
			return fmt.Errorf("%w: grading PerM2 %v, want finite and > 0 (1: per m², 100: per 100 m²)", ErrInvalid, g.PerM2)
		}
	default:
		return fmt.Errorf("%w: grading Kind %q, want %q or %q", ErrInvalid, g.Kind, SchemeFourPoint, SchemeCountPerArea)
	}
	for i, d := range g.Decisions {
		if !d.Valid() {
			return fmt.Errorf("%w: grading Decisions[%d] %q, want one of %s", ErrInvalid, i, d, joinTerms(decisions))
		}
	}
	if !finite(g.PassLimit) || g.PassLimit < 0 {
		return fmt.Errorf("%w: grading PassLimit %v, want finite and >= 0", ErrInvalid, g.PassLimit)
	}
	for i, b := range g.Grades {
		switch {
		case b.Name == "":
			return fmt.Errorf("%w: grading Grades[%d].Name is empty", ErrInvalid, i)
		case !finite(b.Max) || b.Max < 0:
			return fmt.Errorf("%w: grading Grades[%d] (%s).Max %v, want finite and >= 0", ErrInvalid, i, b.Name, b.Max)
		case i > 0 && b.Max <= g.Grades[i-1].Max:
			return fmt.Errorf("%w: grading Grades[%d] (%s).Max %v, want > %v (bands in increasing Max order)", ErrInvalid, i, b.Name, b.Max, g.Grades[i-1].Max)
		}
	}
	return nil
}

// clone returns a deep copy of g (nil for nil).
func (g *GradingScheme) clone() *GradingScheme {
	if g == nil {
		return nil
	}
	c := *g
	c.Decisions, c.Classes = slices.Clone(g.Decisions), slices.Clone(g.Classes)
	c.HoleClasses, c.Grades = slices.Clone(g.HoleClasses), slices.Clone(g.Grades)
	return &c
}

// unit returns the unit of the scheme's density.
func (g *GradingScheme) unit() string {
	switch {
	case g.Kind == SchemeCountPerArea:
		return "defects/" + strconv.FormatFloat(g.PerM2, 'f', -1, 64) + "m2"
	case g.Metric:
		return UnitPoints100m2
	}
	return UnitPoints100yd2
}

// counts reports whether defect d counts under the scheme.
func (g *GradingScheme) counts(d *Defect) bool {
	if d.ReviewStatus == "false_alarm" {
		return false
	}
	if len(g.Decisions) == 0 {
		if d.Decision == DecisionPass {
			return false
		}
	} else if !slices.Contains(g.Decisions, d.Decision) {
		return false
	}
	return len(g.Classes) == 0 || slices.Contains(g.Classes, effectiveClass(d))
}

// effectiveClass is the defect's class after review (Defect.ClassAfterReview).
func effectiveClass(d *Defect) string { return d.ClassAfterReview() }

// grade returns the grade name and pass of a density.
func (g *GradingScheme) grade(density float64) (string, bool) {
	pass := density <= g.PassLimit
	if len(g.Grades) == 0 {
		if pass {
			return "pass", true
		}
		return "fail", false
	}
	for _, b := range g.Grades {
		if density <= b.Max {
			return b.Name, pass
		}
	}
	if g.FailGrade != "" {
		return g.FailGrade, pass
	}
	return "fail", pass
}

// DefectPoints returns the 4-point score of one defect: by its length, the
// larger of its MD and CD extents, in inches: up to 3 in 1 point, over 3 up
// to 6 in 2, over 6 up to 9 in 3, over 9 in 4; a hole (hole true) of 1 in
// or more scores 4.
//
// Lengths are compared in millimetres with a tolerance of 1 µm, so that a
// defect measured at exactly 76.2 mm (3 in) scores 1 despite rounding.
func DefectPoints(d Defect, hole bool) int {
	const tol = 1e-3 // mm
	lengthMM := max(math.Abs(d.MDEndM-d.MDStartM)*1000, math.Abs(d.CDEndMM-d.CDStartMM))
	switch {
	case hole && lengthMM >= 1*mmPerInch-tol:
		return 4
	case lengthMM <= 3*mmPerInch+tol:
		return 1
	case lengthMM <= 6*mmPerInch+tol:
		return 2
	case lengthMM <= 9*mmPerInch+tol:
		return 3
	}
	return 4
}

// LaneGrade is the grade of one lane of a roll.
type LaneGrade struct {
	Lane    int     `json:"lane"`     // index in the lanes
	Name    string  `json:"name"`     // lane name
	WidthMM float64 `json:"width_mm"` // lane width
	AreaM2  float64 `json:"area_m2"`  // lane width × roll length
	Defects int     `json:"defects"`  // defects that counted
	Points  int     `json:"points"`   // 4-point: points after the 4-per-yard cap; count-per-area: 0
	Density float64 `json:"density"`  // in Unit
	Unit    string  `json:"unit"`     // points/100yd2, points/100m2 or defects/<PerM2>m2
	Limit   float64 `json:"limit"`    // the scheme's PassLimit
	Grade   string  `json:"grade"`
	Pass    bool    `json:"pass"`
}

// GradeRoll grades every lane of a roll of length lengthM metres from its
// defects. Each defect is put in a lane with AssignLane (its stored Lane is
// not used); defects outside every lane, and those the scheme does not
// count (see GradingScheme.Decisions and Classes), are ignored.
//
// 4-point: each defect scores DefectPoints. The points of a lane are summed
// per linear yard of MD (yard k is [k, k+1) × 0.9144 m from the roll
// start), a defect counting in the yard of its MD start, and each yard's
// sum is capped at 4. A defect longer in MD than one yard (a running
// defect) scores 4 in every yard it touches. The density is
//
//	points per 100 yd² = points × 3600 / (lane width in × length yd)
//	points per 100 m²  = points × 100 / (lane width m × length m)   (Metric)
//
// Count-per-area: density = defects × PerM2 / (lane width m × length m).
//
// A lane passes when its density is at most PassLimit. The error wraps
// ErrInvalid for an invalid scheme or lanes, no lanes, or a lengthM that is
// not finite and > 0.
func GradeRoll(scheme GradingScheme, lanes []Lane, lengthM float64, ds []Defect) ([]LaneGrade, error) {
	if err := scheme.Validate(); err != nil {
		return nil, fmt.Errorf("rollmap: grade roll: %w", err)
	}
	if len(lanes) == 0 {
		return nil, fmt.Errorf("rollmap: grade roll: %w: no lanes (grade the whole web as one lane)", ErrInvalid)
	}
	if err := validateLanes(lanes); err != nil {
		return nil, fmt.Errorf("rollmap: grade roll: %w", err)
	}
	if !finite(lengthM) || lengthM <= 0 {
		return nil, fmt.Errorf("rollmap: grade roll: %w: length %v m, want finite and > 0", ErrInvalid, lengthM)
	}
	grades := make([]LaneGrade, len(lanes))
	fourPoint := scheme.Kind == SchemeFourPoint
	var yards []map[int64]int // per lane: points per linear yard, before the cap
	if fourPoint {
		yards = make([]map[int64]int, len(lanes))
	}
	for i := range ds {
		d := &ds[i]
		if !scheme.counts(d) {
			continue
		}
		lane := AssignLane(lanes, *d)
		if lane == NoLane {
			continue
		}
		grades[lane].Defects++
		if !fourPoint {
			continue
		}
		if yards[lane] == nil {
			yards[lane] = make(map[int64]int)
		}
		y := yards[lane]
		lo, hi := min(d.MDStartM, d.MDEndM), max(d.MDStartM, d.MDEndM)
		first := int64(math.Floor(lo / mPerYard))
		if hi-lo > mPerYard {
			for k, last := first, int64(math.Floor(hi/mPerYard)); k <= last; k++ {
				y[k] = 4
			}
			continue
		}
		y[first] += DefectPoints(*d, slices.Contains(scheme.HoleClasses, effectiveClass(d)))
	}
	unit := scheme.unit()
	for i, l := range lanes {
		g := &grades[i]
		g.Lane, g.Name, g.WidthMM, g.Unit, g.Limit = i, l.Name, l.WidthMM(), unit, scheme.PassLimit
		widthM := l.WidthMM() / 1000
		g.AreaM2 = widthM * lengthM
		if fourPoint {
			for _, p := range yards[i] {
				g.Points += min(p, 4)
			}
			if scheme.Metric {
				g.Density = float64(g.Points) * 100 / g.AreaM2
			} else {
				g.Density = float64(g.Points) * 3600 / (l.WidthMM() / mmPerInch * lengthM / mPerYard)
			}
		} else {
			g.Density = float64(g.Defects) * scheme.PerM2 / g.AreaM2
		}
		g.Grade, g.Pass = scheme.grade(g.Density)
	}
	return grades, nil
}

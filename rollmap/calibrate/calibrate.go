// Package calibrate re-calibrates a detector's threshold from reviews: over
// the reviewed defects of one or more stored rolls, it computes how the
// detector's score threshold trades the confirmed defects kept against the
// false alarms removed, and proposes the threshold that meets the recipe's
// false-alarm target without losing a confirmed defect the recipe acts on.
//
// # The curve
//
// Each defect record carries the score its detector gave it: the threshold
// detector's peak |contrast| (peak_score, grey levels) and the model
// detector's peak anomaly score (model_score, or peak_score for a defect
// only the model saw). A detector's threshold T (its score floor in the
// recipe: threshold.min_peak_contrast, model.min_peak_score) keeps a defect
// when the detector scored it at least T, or when the other detector saw
// it too (raising one detector's floor does not remove what the other
// reports). For each candidate T, from the threshold in force up to the
// highest reviewed score, a Point counts the reviewed defects of the
// detector: confirmed ones (review confirmed or reclassified) kept and
// lost, false alarms kept and removed, the must-keep defects lost, all
// defects kept, and the estimated false alarms per 100 m of the rolls.
//
// The estimate assumes the reviewed defects at or above T are a fair
// sample of all defects at or above T: false alarms kept × defects kept /
// reviewed defects kept × 100 / metres of the rolls. With every defect
// reviewed it is the count.
//
// # The proposal
//
// A confirmed defect must be kept when its severity reaches its class's
// minimum severity (Settings.MinSeverity: the lowest severity the recipe
// does not pass for that class). The proposal is the lowest threshold
// whose estimate meets the target and that loses no must-keep defect;
// when none meets the target, the one with the lowest estimate that loses
// none, and TargetMet is false. It is placed halfway between the score of
// the last reviewed defect it removes and the first it keeps, so that it
// does not sit on one roll's defect. A detector with fewer than
// MinPerLabel confirmed defects or false alarms reviewed gets its curve
// but no proposal, and the reason says how many more are needed.
package calibrate

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"

	"github.com/webinspect/webinspect/rollmap"
)

// MinPerLabel is how many reviewed confirmed defects, and how many
// reviewed false alarms, a detector needs for a proposal (as
// `webinspect learn` needs five reviewed defects per class).
const MinPerLabel = 5

// Detector names used in curves.
const (
	DetectorThreshold = "threshold"
	DetectorModel     = "model"
)

// Errors returned by Compute.
var (
	// ErrTooFewReviews is returned when no detector has enough reviewed
	// defects for a proposal; the message says how many more are needed.
	ErrTooFewReviews = errors.New("too few reviews")
	// ErrNoDefects is returned when the rolls hold no defect decided by
	// the recipe.
	ErrNoDefects = errors.New("no defects of the recipe")
)

// DetectorSettings is one detector's threshold in the recipe.
type DetectorSettings struct {
	Name string `json:"detector"` // DetectorThreshold or DetectorModel
	// Field is the recipe field that holds the threshold
	// ("threshold.min_peak_contrast").
	Field string `json:"field"`
	// Current is the threshold in force: the largest score below which
	// the detector reports nothing (the floor, or the pixel threshold
	// when that is higher). Defects below it were never recorded.
	Current float64 `json:"current"`
	// Target is the recipe's false-alarm target in false alarms per 100 m,
	// held in TargetField.
	Target      float64 `json:"target_per_100m"`
	TargetField string  `json:"target_field"`
}

// Settings is what calibration needs of a recipe.
type Settings struct {
	Recipe        string             `json:"recipe"`         // its name
	RecipeVersion string             `json:"recipe_version"` // its version ID (rollmap/versions)
	Detectors     []DetectorSettings `json:"detectors"`
	// Severities lists the recipe's severities, least severe first.
	Severities []string `json:"severities"`
	// MinSeverity maps a class to the lowest severity the recipe acts on
	// (a decision other than pass); "*" is for classes not listed. A class
	// with no entry (and no "*") is passed at every severity: none of its
	// confirmed defects must be kept.
	MinSeverity map[string]string `json:"min_severity"`
}

// Roll is one stored roll: its listing and its defects with their reviews
// merged (rollmap.Store.Defects, rollmap.ReadRoll).
type Roll struct {
	Info    rollmap.RollInfo
	Defects []rollmap.Defect
}

// Point is the outcome of one threshold on the reviewed defects.
type Point struct {
	Threshold     float64 `json:"threshold"`
	ConfirmedKept int     `json:"confirmed_kept"`
	ConfirmedLost int     `json:"confirmed_lost"`
	MustKeepLost  int     `json:"must_keep_lost"`
	FalseKept     int     `json:"false_alarms_kept"`
	FalseRemoved  int     `json:"false_alarms_removed"`
	DefectsKept   int     `json:"defects_kept"`
	// FalsePer100M is the estimated false alarms per 100 m (package doc).
	FalsePer100M float64 `json:"false_alarms_per_100m"`
}

// Proposal is the threshold proposed for one detector.
type Proposal struct {
	Threshold float64 `json:"threshold"`
	Point     Point   `json:"point"` // the outcome at Threshold
	// Change is false when the threshold in force is already the answer.
	Change    bool `json:"change"`
	TargetMet bool `json:"target_met"`
	// Reason says in one sentence why this threshold.
	Reason string `json:"reason"`
}

// Curve is one detector's trade-off curve over the rolls.
type Curve struct {
	DetectorSettings
	Defects     int     `json:"defects"`  // defects the detector saw
	Reviewed    int     `json:"reviewed"` // of them, reviewed
	Confirmed   int     `json:"confirmed"`
	FalseAlarms int     `json:"false_alarms"`
	MustKeep    int     `json:"must_keep"` // confirmed defects at or above their class's minimum severity
	Points      []Point `json:"points"`
	// Proposal is nil when the detector has too few reviews; Error says
	// how many more are needed.
	Proposal *Proposal `json:"proposal"`
	Error    string    `json:"error,omitempty"`
}

// Report is the calibration of one recipe over some rolls.
type Report struct {
	Recipe        string   `json:"recipe"`
	RecipeVersion string   `json:"recipe_version"`
	Rolls         []string `json:"rolls"`
	LengthM       float64  `json:"length_m"` // metres of the rolls inspected with the recipe
	// OtherRecipes counts the defects of the rolls decided by other
	// recipes (left out).
	OtherRecipes int     `json:"other_recipes"`
	Curves       []Curve `json:"curves"`
}

// sample is one defect as one detector saw it.
type sample struct {
	score     float64
	other     bool // the other detector saw it too: a floor cannot remove it
	confirmed bool
	falseA    bool
	mustKeep  bool
}

// Compute calibrates s's detectors over rolls. Only defects decided by
// the recipe (recipe_version = s.RecipeVersion; in rolls written before
// versions were recorded, the roll's recipe name = s.Recipe) count, and
// only the lengths of rolls holding any. It returns the report with an
// error wrapping ErrNoDefects when no defect counts, or ErrTooFewReviews
// when no detector has enough reviews for a proposal (the report then
// still has the curves).
func Compute(rolls []Roll, s Settings) (Report, error) {
	rep := Report{Recipe: s.Recipe, RecipeVersion: s.RecipeVersion}
	per := make([][]sample, len(s.Detectors))
	counts := make([]int, len(s.Detectors))
	var names []string
	for _, r := range rolls {
		names = append(names, r.Info.ID)
		ours := 0
		for i := range r.Defects {
			d := &r.Defects[i]
			if !s.decidedBy(d, r.Info) {
				rep.OtherRecipes++
				continue
			}
			ours++
			for k, det := range s.Detectors {
				score, other, ok := scoreOf(d, det.Name)
				if !ok {
					continue
				}
				counts[k]++
				per[k] = append(per[k], s.sampleOf(d, score, other))
			}
		}
		if ours > 0 || len(r.Defects) == 0 && r.Info.Recipe == s.Recipe {
			rep.Rolls = append(rep.Rolls, r.Info.ID)
			rep.LengthM += r.Info.LengthM
		}
	}
	if len(rep.Rolls) == 0 || slices.Max(append(counts, 0)) == 0 {
		return rep, fmt.Errorf("%w: rolls %s hold no defect decided by recipe %s (version %s)",
			ErrNoDefects, strings.Join(names, ", "), s.Recipe, s.RecipeVersion)
	}
	var short []string
	for k, det := range s.Detectors {
		if counts[k] == 0 {
			continue // the detector did not run on these rolls
		}
		c := curve(det, per[k], rep.LengthM)
		if c.Proposal == nil {
			short = append(short, c.Error)
		}
		rep.Curves = append(rep.Curves, c)
	}
	if len(short) == len(rep.Curves) {
		return rep, fmt.Errorf("%w: %s", ErrTooFewReviews, strings.Join(short, "; "))
	}
	return rep, nil
}

func (s Settings) decidedBy(d *rollmap.Defect, info rollmap.RollInfo) bool {
	if d.RecipeVersion != "" {
		return d.RecipeVersion == s.RecipeVersion
	}
	return info.Recipe == s.Recipe
}

// scoreOf returns the score detector gave d, whether the other detector
// saw d too, and whether detector saw it at all.
func scoreOf(d *rollmap.Defect, detector string) (score float64, other, ok bool) {
	hasT := d.Detector.Has(rollmap.DetectorThreshold)
	hasM := slices.ContainsFunc(d.Detector.Parts(), func(p rollmap.Detector) bool {
		return strings.HasPrefix(string(p), rollmap.ModelDetectorPrefix)
	})
	switch detector {
	case DetectorThreshold:
		return d.PeakScore, hasM, hasT
	case DetectorModel:
		score = d.ModelScore
		if score == 0 && !hasT {
			score = d.PeakScore
		}
		return score, hasT, hasM
	}
	return 0, false, false
}

func (s Settings) sampleOf(d *rollmap.Defect, score float64, other bool) sample {
	sm := sample{score: score, other: other}
	switch d.ReviewStatus {
	case rollmap.ReviewFalseAlarm:
		sm.falseA = true
	case rollmap.ReviewConfirmed, rollmap.ReviewReclassified:
		sm.confirmed = true
		sm.mustKeep = s.mustKeep(d.ClassAfterReview(), d.Severity)
	}
	return sm
}

// mustKeep reports whether a confirmed defect of class with severity
// reaches the class's minimum severity.
func (s Settings) mustKeep(class, severity string) bool {
	minSev, ok := s.MinSeverity[class]
	if !ok {
		if minSev, ok = s.MinSeverity["*"]; !ok {
			return false
		}
	}
	i, j := slices.Index(s.Severities, severity), slices.Index(s.Severities, minSev)
	if i < 0 {
		return true // a severity the recipe does not know: keep it, to be safe
	}
	return i >= j
}

// curve computes one detector's points and proposal.
func curve(det DetectorSettings, ss []sample, lengthM float64) Curve {
	c := Curve{DetectorSettings: det, Defects: len(ss)}
	var cuts []float64 // candidate thresholds: the threshold in force, then reviewed scores above it
	for _, sm := range ss {
		switch {
		case sm.confirmed:
			c.Confirmed++
		case sm.falseA:
			c.FalseAlarms++
		default:
			continue
		}
		c.Reviewed++
		if sm.mustKeep {
			c.MustKeep++
		}
		if sm.score > det.Current {
			cuts = append(cuts, sm.score)
		}
	}
	sort.Float64s(cuts)
	cuts = slices.Compact(append([]float64{det.Current}, cuts...))
	for _, t := range cuts {
		c.Points = append(c.Points, pointAt(t, ss, lengthM))
	}
	var need []string
	if c.Confirmed < MinPerLabel {
		need = append(need, fmt.Sprintf("%d more confirmed defects", MinPerLabel-c.Confirmed))
	}
	if c.FalseAlarms < MinPerLabel {
		need = append(need, fmt.Sprintf("%d more false alarms", MinPerLabel-c.FalseAlarms))
	}
	if len(need) > 0 {
		c.Error = fmt.Sprintf("%s detector: %d confirmed defects and %d false alarms reviewed; a proposal needs at least %d of each (review %s)",
			det.Name, c.Confirmed, c.FalseAlarms, MinPerLabel, strings.Join(need, " and "))
		return c
	}
	c.Proposal = propose(det, c.Points, cuts, ss, lengthM)
	return c
}

func pointAt(t float64, ss []sample, lengthM float64) Point {
	p := Point{Threshold: t}
	reviewedKept := 0
	for _, sm := range ss {
		kept := sm.other || sm.score >= t
		if kept {
			p.DefectsKept++
		}
		switch {
		case sm.confirmed && kept:
			p.ConfirmedKept++
			reviewedKept++
		case sm.confirmed:
			p.ConfirmedLost++
			if sm.mustKeep {
				p.MustKeepLost++
			}
		case sm.falseA && kept:
			p.FalseKept++
			reviewedKept++
		case sm.falseA:
			p.FalseRemoved++
		}
	}
	if reviewedKept > 0 && lengthM > 0 {
		p.FalsePer100M = float64(p.FalseKept) * float64(p.DefectsKept) / float64(reviewedKept) * 100 / lengthM
	}
	return p
}

func propose(det DetectorSettings, pts []Point, cuts []float64, ss []sample, lengthM float64) *Proposal {
	best, blocked := -1, len(pts)
	for i, p := range pts {
		if p.MustKeepLost > 0 {
			blocked = i // higher thresholds lose it too
			break
		}
		if p.FalsePer100M <= det.Target {
			best = i
			break
		}
		if best < 0 || p.FalsePer100M < pts[best].FalsePer100M {
			best = i
		}
	}
	if best < 0 {
		best = 0 // the threshold in force already loses a must-keep defect (a review after the fact): change nothing
	}
	p := pts[best]
	prop := &Proposal{Threshold: p.Threshold, Point: p, TargetMet: p.FalsePer100M <= det.Target, Change: best > 0}
	if best > 0 {
		// Halfway between the last reviewed score removed and the first kept.
		t := round2((cuts[best-1] + cuts[best]) / 2)
		if !(t > cuts[best-1] && t <= cuts[best]) {
			t = cuts[best]
		}
		prop.Threshold = t
		prop.Point = pointAt(t, ss, lengthM)
	}
	cur := pts[0]
	switch {
	case !prop.Change && prop.TargetMet:
		prop.Reason = fmt.Sprintf("%s %g already meets the target of %g false alarms per 100 m (estimated %.2f)",
			det.Field, det.Current, det.Target, cur.FalsePer100M)
	case !prop.Change:
		prop.Reason = fmt.Sprintf("no threshold above %s %g removes false alarms without losing a confirmed defect the recipe acts on", det.Field, det.Current)
	case prop.TargetMet:
		prop.Reason = fmt.Sprintf("the lowest %s that meets %g false alarms per 100 m (estimated %.2f, from %.2f): removes %d of %d reviewed false alarms, loses %d of %d confirmed defects (none the recipe acts on)",
			det.Field, det.Target, prop.Point.FalsePer100M, cur.FalsePer100M,
			prop.Point.FalseRemoved, prop.Point.FalseRemoved+prop.Point.FalseKept,
			prop.Point.ConfirmedLost, prop.Point.ConfirmedLost+prop.Point.ConfirmedKept)
	default:
		lim := "no higher threshold removes more"
		for _, q := range pts[blocked:] {
			if q.FalseKept < p.FalseKept {
				lim = "a higher one that removes more would lose a confirmed defect the recipe acts on"
				break
			}
		}
		prop.Reason = fmt.Sprintf("the target of %g false alarms per 100 m is not met (estimated %.2f, from %.2f): %s; removes %d of %d reviewed false alarms, loses %d of %d confirmed defects",
			det.Target, prop.Point.FalsePer100M, cur.FalsePer100M, lim,
			prop.Point.FalseRemoved, prop.Point.FalseRemoved+prop.Point.FalseKept,
			prop.Point.ConfirmedLost, prop.Point.ConfirmedLost+prop.Point.ConfirmedKept)
	}
	return prop
}

func round2(v float64) float64 { return math.Round(v*100) / 100 }

// Store is what LoadRolls reads: *rollmap.Store (and the API's RollStore).
type Store interface {
	List() ([]rollmap.RollInfo, error)
	Roll(id string) (rollmap.RollInfo, error)
	Defects(id string, q rollmap.Query) ([]rollmap.Defect, error)
}

// LoadRolls reads the rolls ids of st with their defects (reviews
// merged), or every roll of st when ids is empty, oldest first. An
// unknown roll is an error naming it (wrapping rollmap.ErrNotFound).
func LoadRolls(st Store, ids []string) ([]Roll, error) {
	if len(ids) == 0 {
		infos, err := st.List()
		if err != nil && len(infos) == 0 {
			return nil, err
		}
		for _, in := range infos {
			ids = append(ids, in.ID)
		}
		slices.Sort(ids)
	}
	var out []Roll
	for _, id := range ids {
		info, err := st.Roll(id)
		if err != nil {
			return nil, fmt.Errorf("roll %s: %w", id, err)
		}
		ds, err := st.Defects(id, rollmap.Query{})
		if err != nil {
			return nil, fmt.Errorf("roll %s: %w", id, err)
		}
		out = append(out, Roll{Info: info, Defects: ds})
	}
	return out, nil
}

// ReviewedRecipe returns the recipe version that decided the most
// reviewed defects of rolls, or when none is reviewed the most defects
// ("" when no defect names one): the recipe to calibrate when none is
// asked for.
func ReviewedRecipe(rolls []Roll) string {
	for _, reviewed := range []bool{true, false} {
		n := map[string]int{}
		best := ""
		for _, r := range rolls {
			for i := range r.Defects {
				d := &r.Defects[i]
				if reviewed && d.ReviewStatus == "" || d.RecipeVersion == "" {
					continue
				}
				n[d.RecipeVersion]++
				if v := d.RecipeVersion; n[v] > n[best] || n[v] == n[best] && v < best {
					best = v
				}
			}
		}
		if best != "" {
			return best
		}
	}
	return ""
}

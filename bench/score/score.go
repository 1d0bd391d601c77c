// Package score matches detections on a roll map against the simulator's
// ground truth: recall, false alarms per 100 m and the worst MD and CD
// position errors. Tests and benchmarks use it; the engine does not.
package score

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"

	"github.com/webinspect/webinspect/acquisition/sim"
	"github.com/webinspect/webinspect/rollmap"
)

// Options sets the tolerances for scoring detections against ground truth.
type Options struct {
	MinSizeMM float64 // truth defects smaller than this are not required to be found
	LineMM    float64 // MD size of one line
	PixelMM   float64 // CD size of one pixel
	MDTolMM   float64 // allowed MD error on top of one line (default 2)
	CDTolMM   float64 // allowed CD error on top of one pixel (default 1)
	LengthM   float64 // inspected length, for the false-alarm rate
}

// Score is the outcome of matching detections to ground truth.
type Score struct {
	Eligible      int     // truth defects at or above MinSizeMM
	Found         int     // eligible truth defects with a detection within tolerance
	Recall        float64 // Found / Eligible
	False         int     // detections that match no truth defect (of any size)
	FalsePer100M  float64 // False per 100 m of LengthM
	LengthM       float64 // inspected length scored (Options.LengthM; summed by Add)
	MaxMDErrMM    float64 // worst MD start/end error over found defects
	MaxCDErrMM    float64 // worst CD start/end error over found defects
	Missed        []sim.Truth
	Misplaced     []string // found but outside the position tolerance
	FalseDefects  []rollmap.Defect
	MDLimitMM     float64
	CDLimitMM     float64
	DetectedTotal int
	SubLimitFound int // truth defects below MinSizeMM that were detected anyway
	SubLimitTotal int
	// Confusion counts the found defects by true class, then by the class
	// the roll map gives them; ClassRight those whose classes agree.
	Confusion  map[string]map[string]int
	ClassRight int
}

// ClassAccuracy is the share of found defects whose class is the true one.
func (s Score) ClassAccuracy() float64 {
	if s.Found == 0 {
		return 0
	}
	return float64(s.ClassRight) / float64(s.Found)
}

// Add adds o's counts to s (several runs scored as one): found, eligible,
// false, the defects below the size limit, the inspected length and the
// class confusion, so that recall and false alarms per 100 m are the
// pooled runs'; the worst errors and the widest limits are kept.
func (s *Score) Add(o Score) {
	s.Eligible += o.Eligible
	s.Found += o.Found
	s.False += o.False
	s.DetectedTotal += o.DetectedTotal
	s.ClassRight += o.ClassRight
	s.SubLimitFound += o.SubLimitFound
	s.SubLimitTotal += o.SubLimitTotal
	s.LengthM += o.LengthM
	s.MaxMDErrMM = math.Max(s.MaxMDErrMM, o.MaxMDErrMM)
	s.MaxCDErrMM = math.Max(s.MaxCDErrMM, o.MaxCDErrMM)
	s.MDLimitMM = math.Max(s.MDLimitMM, o.MDLimitMM)
	s.CDLimitMM = math.Max(s.CDLimitMM, o.CDLimitMM)
	s.Missed = append(s.Missed, o.Missed...)
	s.Misplaced = append(s.Misplaced, o.Misplaced...)
	s.FalseDefects = append(s.FalseDefects, o.FalseDefects...)
	if s.Eligible > 0 {
		s.Recall = float64(s.Found) / float64(s.Eligible)
	}
	if s.LengthM > 0 {
		s.FalsePer100M = float64(s.False) / s.LengthM * 100
	}
	for t, row := range o.Confusion {
		for c, n := range row {
			s.confuse(t, c, n)
		}
	}
}

func (s *Score) confuse(truth, class string, n int) {
	if s.Confusion == nil {
		s.Confusion = map[string]map[string]int{}
	}
	if s.Confusion[truth] == nil {
		s.Confusion[truth] = map[string]int{}
	}
	s.Confusion[truth][class] += n
}

// ConfusionTable is the class confusion as a Markdown table: one row per
// true class, one column per class given, the row's share right.
func (s Score) ConfusionTable() string {
	var truths []string
	cols := map[string]bool{}
	for t, row := range s.Confusion {
		truths = append(truths, t)
		cols[t] = true
		for c := range row {
			cols[c] = true
		}
	}
	slices.Sort(truths)
	given := slices.Sorted(maps.Keys(cols))
	var b strings.Builder
	b.WriteString("| true \\ given |")
	for _, c := range given {
		b.WriteString(" " + c + " |")
	}
	b.WriteString(" right |\n|---|")
	for range given {
		b.WriteString("---:|")
	}
	b.WriteString("---:|\n")
	for _, t := range truths {
		row := s.Confusion[t]
		total := 0
		fmt.Fprintf(&b, "| %s |", t)
		for _, c := range given {
			total += row[c]
			if row[c] == 0 {
				b.WriteString(" · |")
			} else {
				fmt.Fprintf(&b, " %d |", row[c])
			}
		}
		fmt.Fprintf(&b, " %d/%d |\n", row[t], total)
	}
	fmt.Fprintf(&b, "\n%d of %d found defects get their true class (%.1f %%).\n", s.ClassRight, s.Found, 100*s.ClassAccuracy())
	return b.String()
}

func (s Score) String() string {
	return fmt.Sprintf("recall %d/%d = %.3f, false %d (%.2f per 100 m), max MD error %.3f mm (limit %.3f), max CD error %.3f mm (limit %.3f), %d detections",
		s.Found, s.Eligible, s.Recall, s.False, s.FalsePer100M, s.MaxMDErrMM, s.MDLimitMM, s.MaxCDErrMM, s.CDLimitMM, s.DetectedTotal)
}

// Detections matches each truth defect to the nearest detection whose
// box overlaps it (boxes grown by the tolerance), and counts detections
// that overlap no truth defect as false. Truth is in the machine's CD
// frame (the simulator's web fills the cameras' view; the frames source
// gives its masks' camera columns), so each detection is compared at its
// machine CD, CD + WebEdgeMM (the same as its roll CD when no web edge
// was found).
func Detections(truth []sim.Truth, found []rollmap.Defect, o Options) Score {
	if len(found) > 0 {
		m := make([]rollmap.Defect, len(found))
		for i, d := range found {
			d.CDStartMM, d.CDEndMM = d.CDStartMM+d.WebEdgeMM, d.CDEndMM+d.WebEdgeMM
			m[i] = d
		}
		found = m
	}
	if o.MDTolMM == 0 {
		o.MDTolMM = 2
	}
	if o.CDTolMM == 0 {
		o.CDTolMM = 1
	}
	s := Score{MDLimitMM: o.MDTolMM + o.LineMM, CDLimitMM: o.CDTolMM + o.PixelMM, DetectedTotal: len(found)}
	grow := math.Max(s.MDLimitMM, s.CDLimitMM)
	overlaps := func(t sim.Truth, d rollmap.Defect) bool {
		return d.MDStartM*1000 <= t.MDEndM*1000+grow && t.MDStartM*1000 <= d.MDEndM*1000+grow &&
			d.CDStartMM <= t.CDEndMM+grow && t.CDStartMM <= d.CDEndMM+grow
	}
	used := make([]bool, len(found))
	for _, t := range truth {
		best, bestDist := -1, math.Inf(1)
		for j, d := range found {
			if !overlaps(t, d) {
				continue
			}
			used[j] = true
			dist := math.Abs((t.MDStartM+t.MDEndM)/2*1000-(d.MDStartM+d.MDEndM)/2*1000) +
				math.Abs((t.CDStartMM+t.CDEndMM)/2-(d.CDStartMM+d.CDEndMM)/2)
			if dist < bestDist {
				best, bestDist = j, dist
			}
		}
		if t.SizeMM < o.MinSizeMM {
			s.SubLimitTotal++
			if best >= 0 {
				s.SubLimitFound++
			}
			continue
		}
		s.Eligible++
		if best < 0 {
			s.Missed = append(s.Missed, t)
			continue
		}
		d := found[best]
		mdErr := math.Max(math.Abs(d.MDStartM-t.MDStartM), math.Abs(d.MDEndM-t.MDEndM)) * 1000
		cdErr := math.Max(math.Abs(d.CDStartMM-t.CDStartMM), math.Abs(d.CDEndMM-t.CDEndMM))
		s.MaxMDErrMM = math.Max(s.MaxMDErrMM, mdErr)
		s.MaxCDErrMM = math.Max(s.MaxCDErrMM, cdErr)
		if mdErr > s.MDLimitMM || cdErr > s.CDLimitMM {
			s.Misplaced = append(s.Misplaced, fmt.Sprintf("truth %d %s md %.4f-%.4f cd %.2f-%.2f: detected md %.4f-%.4f cd %.2f-%.2f (MD err %.2f mm, CD err %.2f mm)",
				t.ID, t.Class, t.MDStartM, t.MDEndM, t.CDStartMM, t.CDEndMM, d.MDStartM, d.MDEndM, d.CDStartMM, d.CDEndMM, mdErr, cdErr))
			continue
		}
		s.Found++
		s.confuse(t.Class, d.Class, 1)
		if d.Class == t.Class {
			s.ClassRight++
		}
	}
	for j, d := range found {
		if !used[j] {
			s.False++
			s.FalseDefects = append(s.FalseDefects, d)
		}
	}
	if s.Eligible > 0 {
		s.Recall = float64(s.Found) / float64(s.Eligible)
	}
	if o.LengthM > 0 {
		s.LengthM = o.LengthM
		s.FalsePer100M = float64(s.False) / o.LengthM * 100
	}
	return s
}

package rollmap

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strconv"
)

// # Comparing two inspections of one roll
//
// CompareDefects lines up the defects a roll was recorded with (old) and
// the defects a re-run of the same web with another recipe or model found
// (new), as `webinspect compare` does. The rule that pairs them:
//
//   - An old and a new defect are the same defect when their boxes on
//     the web overlap: their MD ranges and their CD ranges both
//     intersect (closed intervals, so boxes that touch overlap). MD and
//     CD are web coordinates, so the camera is not compared: a defect in
//     the cameras' overlap may be credited to either camera.
//   - Each defect is paired at most once. Among overlapping pairs, the
//     one whose boxes overlap most (intersection over union, each box
//     taken one pixel (0.25 mm) larger in MD and CD so that a defect one
//     line long still has an area) is paired first; ties go to the lower
//     old ID, then the lower new ID.
//   - An old defect left without a pair is no longer flagged; a new one
//     left without a pair is newly flagged. When a stricter recipe splits
//     one old defect into two, one of the two is paired with it and the
//     other is newly flagged; its note names the old defect it overlaps.
//
// A pair is listed when the class, the decision or the severity differs
// (in that order of precedence for its kind); pairs that differ in none
// are counted as unchanged. Scores and exact boxes are not compared.

// ChangeKind says how a defect changes between two inspections of a roll.
type ChangeKind string

// Kinds of change, in the order a comparison lists them.
const (
	// ChangeNew: the new inspection flags a defect the old one did not.
	ChangeNew ChangeKind = "newly_flagged"
	// ChangeGone: the old inspection's defect is not flagged any more.
	ChangeGone ChangeKind = "no_longer_flagged"
	// ChangeClass: both flag it, with different classes.
	ChangeClass ChangeKind = "reclassified"
	// ChangeDecision: both flag it with the same class, different decisions.
	ChangeDecision ChangeKind = "decision_changed"
	// ChangeSeverity: same class and decision, different severity.
	ChangeSeverity ChangeKind = "severity_changed"
)

// Change is one defect that differs between two inspections of a roll.
type Change struct {
	Kind ChangeKind
	// Old is the defect as the roll records it; nil when newly flagged.
	Old *Defect
	// New is the defect as the other inspection decides it; nil when no
	// longer flagged.
	New *Defect
	// Note says more: why a defect is no longer flagged, which defect a
	// newly flagged one overlaps, what could not be re-scored.
	Note string
}

// OldDecision and NewDecision are the decisions on either side; "" where
// that side has no defect.
func (c *Change) OldDecision() Decision {
	if c.Old == nil {
		return ""
	}
	return c.Old.Decision
}

// NewDecision: see OldDecision.
func (c *Change) NewDecision() Decision {
	if c.New == nil {
		return ""
	}
	return c.New.Decision
}

// DecisionChanged reports whether the decision differs, a defect that
// appears or disappears counting as a change (from or to no decision).
func (c *Change) DecisionChanged() bool { return c.OldDecision() != c.NewDecision() }

// At is the defect the change is placed by: the new one, else the old.
func (c *Change) At() *Defect {
	if c.New != nil {
		return c.New
	}
	return c.Old
}

// Comparison is the result of CompareDefects.
type Comparison struct {
	// Changes in MD order (then CD, then old and new ID).
	Changes []Change
	// Old and New count the defects on each side; Unchanged the pairs
	// that differ in neither class, severity nor decision.
	Old, New, Unchanged int
}

// Count returns how many changes are of kind k.
func (c *Comparison) Count(k ChangeKind) int {
	n := 0
	for i := range c.Changes {
		if c.Changes[i].Kind == k {
			n++
		}
	}
	return n
}

// DecisionChanges returns how many changes change the decision.
func (c *Comparison) DecisionChanges() int {
	n := 0
	for i := range c.Changes {
		if c.Changes[i].DecisionChanged() {
			n++
		}
	}
	return n
}

// Overlaps reports whether the boxes of a and b on the web intersect
// (closed intervals in MD and CD): the pairing rule of CompareDefects.
func Overlaps(a, b *Defect) bool {
	return a.MDStartM <= b.MDEndM && b.MDStartM <= a.MDEndM &&
		a.CDStartMM <= b.CDEndMM && b.CDStartMM <= a.CDEndMM
}

// matchPadMM is how much larger each box is taken when pairs are ranked
// by their overlap: one pixel of the default resolution.
const matchPadMM = 0.25

// boxIoU is the intersection over union of the boxes of a and b, each
// padded by matchPadMM in MD and CD.
func boxIoU(a, b *Defect) float64 {
	span := func(a0, a1, b0, b1 float64) (inter, la, lb float64) {
		a1 += matchPadMM
		b1 += matchPadMM
		return max(0, min(a1, b1)-max(a0, b0)), a1 - a0, b1 - b0
	}
	im, lam, lbm := span(a.MDStartM*1000, a.MDEndM*1000, b.MDStartM*1000, b.MDEndM*1000)
	ic, lac, lbc := span(a.CDStartMM, a.CDEndMM, b.CDStartMM, b.CDEndMM)
	inter := im * ic
	union := lam*lac + lbm*lbc - inter
	if union <= 0 {
		return 0
	}
	return inter / union
}

// CompareDefects pairs the old and new defects of one roll by the rule in
// the comment above and lists what differs. The Changes point into old
// and newer, which the caller keeps unchanged.
func CompareDefects(old, newer []Defect) Comparison {
	type pair struct {
		i, j int
		iou  float64
	}
	// Both sides sorted by MD start: the candidates of an old defect are
	// the new ones starting before it ends.
	oi := sortedByMD(old)
	ni := sortedByMD(newer)
	var pairs []pair
	lo := 0 // new defects before lo end before every old defect still to come
	for _, i := range oi {
		a := &old[i]
		for lo < len(ni) && newer[ni[lo]].MDEndM < a.MDStartM {
			lo++
		}
		for k := lo; k < len(ni) && newer[ni[k]].MDStartM <= a.MDEndM; k++ {
			if b := &newer[ni[k]]; Overlaps(a, b) {
				pairs = append(pairs, pair{i, ni[k], boxIoU(a, b)})
			}
		}
	}
	slices.SortFunc(pairs, func(p, q pair) int {
		if c := cmp.Compare(q.iou, p.iou); c != 0 {
			return c
		}
		if c := cmp.Compare(old[p.i].ID, old[q.i].ID); c != 0 {
			return c
		}
		return cmp.Compare(newer[p.j].ID, newer[q.j].ID)
	})
	oldTo := make([]int, len(old))
	newTo := make([]int, len(newer))
	for i := range oldTo {
		oldTo[i] = -1
	}
	for j := range newTo {
		newTo[j] = -1
	}
	for _, p := range pairs {
		if oldTo[p.i] < 0 && newTo[p.j] < 0 {
			oldTo[p.i], newTo[p.j] = p.j, p.i
		}
	}
	res := Comparison{Old: len(old), New: len(newer)}
	for i := range old {
		a := &old[i]
		j := oldTo[i]
		if j < 0 {
			res.Changes = append(res.Changes, Change{Kind: ChangeGone, Old: a})
			continue
		}
		b := &newer[j]
		k := PairChange(a, b)
		if k == "" {
			res.Unchanged++
			continue
		}
		res.Changes = append(res.Changes, Change{Kind: k, Old: a, New: b})
	}
	for j := range newer {
		if newTo[j] >= 0 {
			continue
		}
		c := Change{Kind: ChangeNew, New: &newer[j]}
		for _, p := range pairs {
			if p.j == j {
				c.Note = fmt.Sprintf("overlaps recorded defect %d, which is paired with another", old[p.i].ID)
				break
			}
		}
		res.Changes = append(res.Changes, c)
	}
	SortChanges(res.Changes)
	return res
}

// PairChange is how paired defects a (old) and b (new) differ: by class,
// else decision, else severity; "" when in none of them.
func PairChange(a, b *Defect) ChangeKind {
	switch {
	case a.Class != b.Class:
		return ChangeClass
	case a.Decision != b.Decision:
		return ChangeDecision
	case a.Severity != b.Severity:
		return ChangeSeverity
	}
	return ""
}

// SortChanges sorts changes in MD order, then CD, then old defect ID.
func SortChanges(cs []Change) {
	slices.SortStableFunc(cs, func(x, y Change) int {
		a, b := x.At(), y.At()
		if c := cmp.Compare(a.MDStartM, b.MDStartM); c != 0 {
			return c
		}
		if c := cmp.Compare(a.CDStartMM, b.CDStartMM); c != 0 {
			return c
		}
		return cmp.Compare(idOf(x.Old), idOf(y.Old))
	})
}

func idOf(d *Defect) int64 {
	if d == nil {
		return 0
	}
	return d.ID
}

// sortedByMD returns the indices of ds in MD start order.
func sortedByMD(ds []Defect) []int {
	idx := make([]int, len(ds))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return cmp.Compare(ds[a].MDStartM, ds[b].MDStartM) })
	return idx
}

// ChangesCSVHeader is the header line of ExportChangesCSV.
const ChangesCSVHeader = "change,decision_change,md_start_m,md_end_m,cd_start_mm,cd_end_mm,camera," +
	"old_defect_id,new_defect_id,old_class,new_class,old_severity,new_severity,old_decision,new_decision," +
	"old_score,new_score,old_detector,new_detector,review_status,review_label,old_crop,new_crop,note"

// ExportChangesCSV writes the changes of c as CSV (ChangesCSVHeader): one
// row per change, placed by the new defect where there is one. crop turns
// a defect's image_ref into what the crop columns hold (a path relative
// to the CSV file); nil writes the image_ref itself. decision_change is
// "old>new" with "none" for a side without the defect, empty when the
// decision is the same.
func ExportChangesCSV(w io.Writer, c *Comparison, crop func(ref string) string) error {
	if crop == nil {
		crop = func(ref string) string { return ref }
	}
	side := func(b []byte, d *Defect, f func(b []byte, d *Defect) []byte) []byte {
		if d != nil {
			b = f(b, d)
		}
		return append(b, ',')
	}
	str := func(s func(d *Defect) string) func(b []byte, d *Defect) []byte {
		return func(b []byte, d *Defect) []byte { return appendCSVString(b, s(d)) }
	}
	return writeCSV(w, "changes csv", ChangesCSVHeader, len(c.Changes), func(b []byte, i int) []byte {
		ch := &c.Changes[i]
		at := ch.At()
		b = appendCSVString(b, string(ch.Kind))
		b = append(b, ',')
		if ch.DecisionChanged() {
			b = appendCSVString(b, string(cmp.Or(ch.OldDecision(), "none"))+">"+string(cmp.Or(ch.NewDecision(), "none")))
		}
		b = append(b, ',')
		b = strconv.AppendFloat(b, at.MDStartM, 'f', 6, 64)
		b = append(b, ',')
		b = strconv.AppendFloat(b, at.MDEndM, 'f', 6, 64)
		b = append(b, ',')
		b = strconv.AppendFloat(b, at.CDStartMM, 'f', 3, 64)
		b = append(b, ',')
		b = strconv.AppendFloat(b, at.CDEndMM, 'f', 3, 64)
		b = append(b, ',')
		b = strconv.AppendInt(b, int64(at.Camera), 10)
		b = append(b, ',')
		id := func(b []byte, d *Defect) []byte { return strconv.AppendInt(b, d.ID, 10) }
		b = side(b, ch.Old, id)
		b = side(b, ch.New, id)
		class := str(func(d *Defect) string { return d.Class })
		b = side(b, ch.Old, class)
		b = side(b, ch.New, class)
		sev := str(func(d *Defect) string { return d.Severity })
		b = side(b, ch.Old, sev)
		b = side(b, ch.New, sev)
		dec := str(func(d *Defect) string { return string(d.Decision) })
		b = side(b, ch.Old, dec)
		b = side(b, ch.New, dec)
		score := func(b []byte, d *Defect) []byte { return strconv.AppendFloat(b, d.PeakScore, 'f', -1, 64) }
		b = side(b, ch.Old, score)
		b = side(b, ch.New, score)
		det := str(func(d *Defect) string { return string(d.Detector) })
		b = side(b, ch.Old, det)
		b = side(b, ch.New, det)
		b = side(b, ch.Old, str(func(d *Defect) string { return d.ReviewStatus }))
		b = side(b, ch.Old, str(func(d *Defect) string { return d.ReviewLabel }))
		cropOf := str(func(d *Defect) string {
			if d.ImageRef == "" {
				return ""
			}
			return crop(d.ImageRef)
		})
		b = side(b, ch.Old, cropOf)
		b = side(b, ch.New, cropOf)
		b = appendCSVString(b, ch.Note)
		return append(b, '\n')
	})
}

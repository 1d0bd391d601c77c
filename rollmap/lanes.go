package rollmap

import (
	"fmt"
)

// Lane is a CD band of the web that the roll is later slit into. Positions
// are millimetres from the operator-side web edge, like a defect's CD.
type Lane struct {
	Name      string  `json:"name"`
	CDStartMM float64 `json:"cd_start_mm"`
	CDEndMM   float64 `json:"cd_end_mm"`
}

// WidthMM returns the lane's width.
func (l Lane) WidthMM() float64 { return l.CDEndMM - l.CDStartMM }

// NoLane is the lane index of a defect outside every lane (in the edge
// trim or a gap between lanes), and of every defect when no lanes are
// defined.
const NoLane = -1

// LanesOptions is the lane layout of a recipe: the lanes in CD order,
// operator side first. A lane's index in Lanes is the lane number stored
// in Defect.Lane.
type LanesOptions struct {
	// Lanes, in increasing CD order, not overlapping (adjacent lanes may
	// share an edge; gaps between them are trim). Empty: no lanes.
	Lanes []Lane `json:"lanes"`
}

// DefaultLanesOptions returns no lanes: every defect gets lane NoLane.
func DefaultLanesOptions() LanesOptions { return LanesOptions{} }

// maxLanes is the most lanes a layout may have.
const maxLanes = 1024

// Validate checks the layout: at most 1024 lanes, each with a name unique
// in the layout, finite 0 <= CDStartMM < CDEndMM, lanes in increasing CD
// order without overlap. The error wraps ErrInvalid and names the lane.
func (o LanesOptions) Validate() error { return validateLanes(o.Lanes) }

func validateLanes(lanes []Lane) error {
	if len(lanes) > maxLanes {
		return fmt.Errorf("%w: %d lanes, want at most %d", ErrInvalid, len(lanes), maxLanes)
	}
	names := make(map[string]int, len(lanes))
	for i, l := range lanes {
		switch {
		case l.Name == "":
			return fmt.Errorf("%w: lanes[%d].Name is empty, want a name", ErrInvalid, i)
		case !finite(l.CDStartMM) || l.CDStartMM < 0:
			return fmt.Errorf("%w: lanes[%d] (%s).CDStartMM %v, want finite and >= 0", ErrInvalid, i, l.Name, l.CDStartMM)
		case !finite(l.CDEndMM) || l.CDEndMM <= l.CDStartMM:
			return fmt.Errorf("%w: lanes[%d] (%s).CDEndMM %v, want finite and > CDStartMM %v", ErrInvalid, i, l.Name, l.CDEndMM, l.CDStartMM)
		case i > 0 && l.CDStartMM < lanes[i-1].CDEndMM:
			return fmt.Errorf("%w: lanes[%d] (%s).CDStartMM %v, want >= %v, the end of lanes[%d] (%s): lanes must be in CD order without overlap",
				ErrInvalid, i, l.Name, l.CDStartMM, lanes[i-1].CDEndMM, i-1, lanes[i-1].Name)
		}
		if j, dup := names[l.Name]; dup {
			return fmt.Errorf("%w: lanes[%d].Name %q is also the name of lanes[%d]", ErrInvalid, i, l.Name, j)
		}
		names[l.Name] = i
	}
	return nil
}

// EqualLanes returns n lanes of equal width covering [fromMM, toMM), named
// "1" to "n" from the operator side. It returns nil unless n > 0 and
// fromMM < toMM.
func EqualLanes(n int, fromMM, toMM float64) []Lane {
	if n <= 0 || !(fromMM < toMM) {
		return nil
	}
	lanes := make([]Lane, n)
	w := (toMM - fromMM) / float64(n)
	for i := range lanes {
		lanes[i] = Lane{Name: fmt.Sprint(i + 1), CDStartMM: fromMM + float64(i)*w, CDEndMM: fromMM + float64(i+1)*w}
	}
	lanes[n-1].CDEndMM = toMM
	return lanes
}

// AssignLane returns the index in lanes of the lane a defect belongs to, or
// NoLane (-1). lanes must be valid (see LanesOptions.Validate).
//
// A defect belongs to the lane that holds most of its CD width [CDStartMM,
// CDEndMM]: when it spans two lanes (it lies across a slit), the lane it
// must be cut out of is the one holding most of it. Equal shares go to the
// lane holding the defect's CD centre, then to the lane nearer the
// operator side. A defect of zero width, or one touching no lane with any
// width, belongs to the lane containing its CD centre, where a lane holds
// [CDStartMM, CDEndMM) and the last lane also its CDEndMM; a centre in the
// trim or a gap gives NoLane.
func AssignLane(lanes []Lane, d Defect) int {
	lo, hi := min(d.CDStartMM, d.CDEndMM), max(d.CDStartMM, d.CDEndMM)
	centre := (lo + hi) / 2
	best, bestW := NoLane, 0.0
	for i, l := range lanes {
		if l.CDStartMM >= hi && hi > lo {
			break // lanes are in CD order: none further overlaps
		}
		w := min(hi, l.CDEndMM) - max(lo, l.CDStartMM)
		if w <= 0 {
			continue
		}
		if w > bestW || w == bestW && laneHolds(lanes, i, centre) {
			best, bestW = i, w
		}
	}
	if best != NoLane {
		return best
	}
	for i := range lanes {
		if laneHolds(lanes, i, centre) {
			return i
		}
	}
	return NoLane
}

// laneHolds reports whether the point x (mm) is in lanes[i]: [start, end),
// and end itself for the last lane or when the next lane does not start
// there.
func laneHolds(lanes []Lane, i int, x float64) bool {
	l := lanes[i]
	if x >= l.CDStartMM && x < l.CDEndMM {
		return true
	}
	return x == l.CDEndMM && (i == len(lanes)-1 || lanes[i+1].CDStartMM > x)
}

// laneName returns the name of lane i, or "" for NoLane or an index
// outside lanes.
func laneName(lanes []Lane, i int) string {
	if i < 0 || i >= len(lanes) {
		return ""
	}
	return lanes[i].Name
}

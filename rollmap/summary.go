package rollmap

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/webinspect/webinspect/internal/atomicfile"
)

// SummaryFile is the roll summary written beside the IPC streams when a
// roll is closed.
const SummaryFile = "summary.json"

// Summary is the end-of-roll report: counts per class, decision and lane,
// how much was not inspected, and the grade of each lane.
type Summary struct {
	FormatVersion     string             `json:"format_version"`
	ID                string             `json:"id"`
	Recipe            string             `json:"recipe"`
	Material          string             `json:"material"`
	Started           time.Time          `json:"started"`
	Ended             time.Time          `json:"ended,omitzero"`
	LengthM           float64            `json:"length_m"`
	WebWidthMM        float64            `json:"web_width_mm"`
	Defects           int64              `json:"defects"`
	ByClass           map[string]int64   `json:"by_class"`        // class (as stored, before review) → defects
	ByDecision        map[Decision]int64 `json:"by_decision"`     // decision → defects
	ByLane            []LaneCount        `json:"by_lane"`         // in lane order, NoLane first if any
	Marks             map[string]int64   `json:"marks,omitempty"` // merged mark status → defects; defects without mark events are not counted
	UninspectedRanges int64              `json:"uninspected_ranges"`
	UninspectedM      float64            `json:"uninspected_m"` // MD metres with any uninspected band
	UninspectedReason map[Reason]int64   `json:"uninspected_by_reason"`
	Lanes             []Lane             `json:"lanes,omitempty"`
	Grading           *GradingScheme     `json:"grading,omitempty"`
	Grades            []LaneGrade        `json:"grades,omitempty"`        // one per lane, with Lanes and Grading
	GradingError      string             `json:"grading_error,omitempty"` // why Grades is missing though Grading is set
}

// LaneCount is the number of defects of one lane, by decision.
type LaneCount struct {
	Lane       int                `json:"lane"` // index in Lanes, or NoLane
	Name       string             `json:"name"` // "" for NoLane
	Defects    int64              `json:"defects"`
	ByDecision map[Decision]int64 `json:"by_decision"`
}

// Summarize computes the summary of a roll from its rows. Lane counts use
// each defect's stored Lane; every lane of meta.Lanes is listed, with zero
// counts if it has no defect. Grades are computed when meta has both Lanes
// and Grading; if grading fails (a roll of length 0, say), GradingError
// says why. Marks counts the defects by d.Mark.Status (as ReadRoll and
// Store.Defects fill it).
func Summarize(meta RollMeta, ds []Defect, us []Uninspected) Summary {
	return summarize(meta, [][]Defect{ds}, [][]Uninspected{us}, nil)
}

// summarize computes the summary; marks, if not nil, gives the defects'
// mark states (else their Mark field does).
func summarize(meta RollMeta, dparts [][]Defect, uparts [][]Uninspected, marks map[int64]MarkState) Summary {
	s := Summary{
		FormatVersion: FormatVersion, ID: meta.ID, Recipe: meta.Recipe, Material: meta.Material,
		Started: meta.Started, Ended: meta.Ended, LengthM: meta.LengthM, WebWidthMM: meta.WebWidthMM,
		ByClass: map[string]int64{}, ByDecision: map[Decision]int64{}, UninspectedReason: map[Reason]int64{},
		Lanes: slices.Clone(meta.Lanes), ByLane: []LaneCount{},
	}
	s.Grading = meta.Grading.clone() // the summary's own copy, as for Lanes
	lanes := map[int]*LaneCount{}
	lane := func(i int) *LaneCount {
		lc := lanes[i]
		if lc == nil {
			lc = &LaneCount{Lane: i, Name: laneName(meta.Lanes, i), ByDecision: map[Decision]int64{}}
			lanes[i] = lc
		}
		return lc
	}
	for i := range meta.Lanes {
		lane(i)
	}
	for _, p := range dparts {
		for i := range p {
			d := &p[i]
			s.Defects++
			s.ByClass[d.Class]++
			s.ByDecision[d.Decision]++
			lc := lane(d.Lane)
			lc.Defects++
			lc.ByDecision[d.Decision]++
			st := d.Mark.Status
			if marks != nil {
				st = marks[d.ID].Status
			}
			if st != "" {
				if s.Marks == nil {
					s.Marks = map[string]int64{}
				}
				s.Marks[st]++
			}
		}
	}
	for _, lc := range lanes {
		s.ByLane = append(s.ByLane, *lc)
	}
	slices.SortFunc(s.ByLane, func(a, b LaneCount) int { return cmp.Compare(a.Lane, b.Lane) })
	for _, p := range uparts {
		s.UninspectedRanges += int64(len(p))
		for _, u := range p {
			s.UninspectedReason[u.Reason]++
		}
	}
	s.UninspectedM = uninspectedMetres(uparts...)
	if meta.Grading != nil && len(meta.Lanes) > 0 {
		var all []Defect
		if len(dparts) == 1 {
			all = dparts[0]
		} else {
			for _, p := range dparts {
				all = append(all, p...)
			}
		}
		g, err := GradeRoll(*meta.Grading, meta.Lanes, meta.LengthM, all)
		if err != nil {
			s.GradingError = err.Error()
		}
		s.Grades = g
	}
	return s
}

// writeSummaryFile writes dir/summary.json atomically.
func writeSummaryFile(dir string, s *Summary) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", SummaryFile, err)
	}
	return writeFileAtomic(filepath.Join(dir, SummaryFile), append(b, '\n'))
}

// writeFileAtomic replaces path with b: write path.tmp, sync, rename, sync
// the directory.
func writeFileAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err == nil {
		err = atomicfile.SyncDir(filepath.Dir(path))
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// ReadSummary reads the summary.json of a closed roll directory. A roll
// without one (still open, written before summaries existed, or whose
// Close failed to write it) gives ErrNotFound; Store.Summary computes it
// then.
func ReadSummary(dir string) (Summary, error) {
	var s Summary
	path := filepath.Join(dir, SummaryFile)
	err := readVersionedJSON(path, &s, &s.FormatVersion)
	if errors.Is(err, fs.ErrNotExist) {
		return s, fmt.Errorf("rollmap: %s: %w", path, ErrNotFound)
	}
	return s, err
}

// Summary returns the summary of roll id: computed from memory for an open
// roll, read from summary.json for a closed one, or computed from its files
// when it has no summary.json (with the read error, if the files are
// damaged).
func (s *Store) Summary(id string) (Summary, error) {
	r, dir, err := s.lookup(id)
	if err != nil {
		return Summary{}, err
	}
	if r != nil {
		parts, _, meta, uv, err := s.openRows(r)
		if err != nil {
			err = fmt.Errorf("rollmap: roll %s: %w", id, err)
		}
		return summarize(meta, parts, uv.slices(0), r.copyMarkStates()), err
	}
	sum, err := ReadSummary(dir)
	if !errors.Is(err, ErrNotFound) {
		return sum, err
	}
	meta, ds, us, err := ReadRoll(dir)
	if errors.Is(err, ErrNotFound) {
		return Summary{}, err
	}
	return Summarize(meta, ds, us), err
}

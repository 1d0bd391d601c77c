package rollmap

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// markRank orders the mark statuses by precedence: a defect's MarkState
// has the status of highest rank among its events. Failures rank above
// successes, because a mark that did not land where it should is what the
// people downstream must act on (find the defect by hand), whatever else
// happened to it; among successes, the furthest step reached wins (an
// acknowledged mark was fired, and the acknowledgement confirms it).
func markRank(status string) int {
	switch status {
	case MarkScheduled:
		return 1
	case MarkFired:
		return 2
	case MarkAcknowledged:
		return 3
	case MarkLate:
		return 4
	case MarkMissed:
		return 5
	}
	return 0
}

// mergeMark folds event e into state m. Events are folded in the order
// they were recorded.
func mergeMark(m *MarkState, e *MarkEvent) {
	r := markRank(e.Status)
	switch e.Status {
	case MarkScheduled:
		m.Scheduled = true
	case MarkFired:
		m.Fired = true
		m.FireCount, m.FireTime = e.FireCount, e.Time
	case MarkAcknowledged:
		m.Acknowledged = true
	case MarkLate:
		m.Late = true
	case MarkMissed:
		m.Missed = true
	}
	if r >= markRank(m.Status) {
		m.Status, m.Head = e.Status, e.Head
	}
	if e.TargetCount != 0 {
		m.TargetCount = e.TargetCount
	}
}

// MergeMarkEvents returns the merged mark state of each defect named by
// evs, folded in the order given (the order recorded): the flags of every
// status seen, Status the one of highest precedence (missed > late >
// acknowledged > fired > scheduled) and Head that of the last event with
// that status, FireCount and FireTime those of the last fired event,
// TargetCount the last non-zero one. Events of unknown status are
// ignored.
func MergeMarkEvents(evs []MarkEvent) map[int64]MarkState {
	m := make(map[int64]MarkState)
	mergeMarksInto(m, evs)
	return m
}

func mergeMarksInto(m map[int64]MarkState, evs []MarkEvent) {
	for i := range evs {
		e := &evs[i]
		if markRank(e.Status) == 0 {
			continue
		}
		st := m[e.DefectID]
		mergeMark(&st, e)
		m[e.DefectID] = st
	}
}

// markMatches reports whether mark status status passes filter want (a
// Query.MarkStatus).
func markMatches(want, status string) bool {
	return want == "" || status == want || want == MarkNone && status == ""
}

func checkMarkEvent(e *MarkEvent) error {
	if markRank(e.Status) == 0 {
		return fmt.Errorf("%w: mark event of defect %d: status %q, want %s, %s, %s, %s or %s", ErrInvalid,
			e.DefectID, e.Status, MarkScheduled, MarkFired, MarkAcknowledged, MarkLate, MarkMissed)
	}
	if e.DefectID < 1 {
		return fmt.Errorf("%w: mark event: defect ID %d, want >= 1", ErrInvalid, e.DefectID)
	}
	for _, f := range [...]struct {
		name string
		v    float64
	}{{"md_m", e.MDM}, {"cd_mm", e.CDMM}, {"passed_by_mm", e.PassedByMM}} {
		if !finite(f.v) {
			return fmt.Errorf("%w: mark event of defect %d: %s is %v, want a finite number", ErrInvalid, e.DefectID, f.name, f.v)
		}
	}
	return nil
}

// AddMarkEvents records mark events of the roll's defects. Each gets the
// roll's ID as RollID and its Time in UTC truncated to the microsecond. A
// status other than the five Mark statuses, a defect ID below 1 or a
// non-finite position rejects the whole call with ErrInvalid. The defect
// need not have been added yet. The events are visible to queries at once
// (in Defect.Mark) and written to marks.arrows by the next Flush, like
// defects; every event of an open roll stays in memory (about 150 bytes
// each, a few per marked defect).
func (r *Roll) AddMarkEvents(evs ...MarkEvent) error {
	for i := range evs {
		if err := checkMarkEvent(&evs[i]); err != nil {
			return fmt.Errorf("rollmap: roll %s: %w", r.id, err)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return fmt.Errorf("rollmap: roll %s: add mark events: %w", r.id, ErrClosed)
	}
	for _, e := range evs {
		e.RollID = r.id
		e.Time = e.Time.UTC().Truncate(time.Microsecond)
		r.marks.append(e)
		st := r.mstate[e.DefectID]
		mergeMark(&st, &e)
		r.mstate[e.DefectID] = st
	}
	return nil
}

// markLookup returns the mark state of a roll's defects: either a map
// read from disk (or a copy of an open roll's) or a lookup under an open
// roll's lock.
type markLookup struct {
	m map[int64]MarkState
	r *Roll // with m nil: look up r.mstate under r.mu
}

// fill sets the Mark of every defect of ds.
func (l markLookup) fill(ds []Defect) {
	if l.r != nil && l.m == nil {
		l.r.mu.Lock()
		defer l.r.mu.Unlock()
		for i := range ds {
			ds[i].Mark = l.r.mstate[ds[i].ID]
		}
		return
	}
	for i := range ds {
		ds[i].Mark = l.m[ds[i].ID]
	}
}

// copyMarkStates returns a copy of open roll r's merged mark states.
func (r *Roll) copyMarkStates() map[int64]MarkState {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := make(map[int64]MarkState, len(r.mstate))
	for k, v := range r.mstate {
		m[k] = v
	}
	return m
}

// readMarks reads the mark events of the roll in dir. A missing
// marks.arrows (a roll written before marks existed) holds no events.
func readMarks(dir string) ([]MarkEvent, error) {
	evs, err := readStream(nil, filepath.Join(dir, MarksFile), markEventColumns)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return evs, err
}

// markCache is the merged marks of the disk roll read last.
type markCache struct {
	id     string
	fi     os.FileInfo
	states map[int64]MarkState
	err    error
}

// diskMarks returns the merged mark states of the roll id in dir, shared
// with the Store's cache (the caller must not modify the map). A damaged
// file gives the states of the events before the damage, with the error.
func (s *Store) diskMarks(id, dir string) (map[int64]MarkState, error) {
	path := filepath.Join(dir, MarksFile)
	st, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	s.cmu.Lock()
	defer s.cmu.Unlock()
	if c := s.mcache; c != nil && c.id == id && os.SameFile(c.fi, st) &&
		c.fi.Size() == st.Size() && c.fi.ModTime().Equal(st.ModTime()) {
		return c.states, c.err
	}
	evs, err := readStream(nil, path, markEventColumns)
	m := MergeMarkEvents(evs)
	if err == nil || errors.Is(err, ErrTruncated) {
		s.mcache = &markCache{id: id, fi: st, states: m, err: err}
	}
	return m, err
}

// MarkEvents returns the mark events of roll id in the order recorded: an
// open roll's from memory (including events not yet flushed), others from
// marks.arrows (none for a roll written before marks existed). A damaged
// file gives the events before the damage with the error.
func (s *Store) MarkEvents(id string) ([]MarkEvent, error) {
	r, dir, err := s.lookup(id)
	if err != nil {
		return nil, err
	}
	if r != nil {
		r.mu.Lock()
		v := r.marks.view()
		r.mu.Unlock()
		return v.appendTo(nil, 0), nil
	}
	if _, err := readMetaFile(dir); err != nil {
		return nil, err
	}
	evs, err := readMarks(dir)
	if err != nil {
		err = fmt.Errorf("rollmap: roll %s: %w", id, err)
	}
	return evs, err
}

// ReadMarkEvents reads the mark events of a roll directory without a
// Store, in the order recorded. A roll without marks.arrows (written
// before marks existed) has none. Errors are as for ReadRoll.
func ReadMarkEvents(dir string) ([]MarkEvent, error) {
	m, err := readMetaFile(dir)
	if err != nil {
		return nil, err
	}
	evs, err := readMarks(dir)
	if err != nil {
		err = fmt.Errorf("rollmap: read roll %s: %w", m.ID, err)
	}
	return evs, err
}

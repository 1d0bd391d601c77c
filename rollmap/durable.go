package rollmap

import "math"

// Durable says how much of a roll is on disk, synced: what a reader that
// must never report a row the roll map could still lose (the plant
// publisher) may read. Rows beyond it are visible to queries but would be
// lost if the process died before the next Flush.
type Durable struct {
	// Meta is the roll's metadata as in roll.json on disk (splices,
	// context, length; Meta.Open false once the roll is closed: a roll
	// left open by a killed writer still says open, it may be resumed).
	Meta RollMeta
	// Open is true while this Store writes the roll.
	Open bool
	// DefectTop: every defect of the roll with ID <= DefectTop is on disk.
	DefectTop int64
	// Uninspected and MarkEvents: the first so many uninspected ranges
	// and mark events, in the order added, are on disk.
	Uninspected int
	MarkEvents  int
}

// Durable returns what of roll id is on disk; with flush, an open roll is
// flushed first (Roll.Flush), so that everything added before the call is.
// A roll this Store does not write is all on disk.
func (s *Store) Durable(id string, flush bool) (Durable, error) {
	r, dir, err := s.lookup(id)
	if err != nil {
		return Durable{}, err
	}
	if r != nil {
		if flush {
			r.Flush() // a failure leaves the rows pending: the counts below say what is on disk
		}
		r.wmu.Lock()
		if !r.done {
			d := Durable{Meta: r.written.RollMeta, Open: true, Uninspected: r.flushedU, MarkEvents: r.flushedM}
			r.mu.Lock()
			d.DefectTop = r.flushedTop
			r.mu.Unlock()
			r.wmu.Unlock()
			return d, nil
		}
		r.wmu.Unlock() // closed meanwhile: read it from disk
	}
	m, err := readMetaFile(dir)
	if err != nil {
		return Durable{}, err
	}
	return Durable{Meta: m.RollMeta, DefectTop: math.MaxInt64, Uninspected: math.MaxInt, MarkEvents: math.MaxInt}, nil
}

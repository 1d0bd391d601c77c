package engine

import (
	"errors"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/webinspect/webinspect/engine/status"
	"github.com/webinspect/webinspect/rollmap"
)

// # Roll changes
//
// The web runs on while rolls change: a roll change (doff) ends the
// current roll at the line the cameras see at that moment (count D) and
// starts the next roll there, at MD 0. Each roll the assembly writes is a
// rollSeg: the web from its first count on, up to the next roll's first
// count.
//
// A defect belongs to the roll its first line is on. A defect that is
// still growing at the doff (it started before D and goes on past it) is
// not split: it stays whole on the ending roll, with an MD end beyond that
// roll's length. The ending roll is therefore kept open until nothing can
// still be added to it: every camera's frontier has passed D (no region
// that starts before D can come any more), no pending defect starts before
// D, and, when a marking unit is fitted, the web has run on far enough for
// the roll's last marks to fire (marker distance plus tolerance plus 1 m).
// Then it is given its length (D on its own MD scale), flushed and closed.
// Uninspected ranges that straddle D are split at D.

// ErrNotRunning is returned by ChangeRoll and Splice when the engine is not
// inspecting (before Run, or after it returned).
var ErrNotRunning = errors.New("engine is not running")

// RollChange is the result of ChangeRoll.
type RollChange struct {
	Ended   string  `json:"ended"`    // the roll that was doffed
	EndedM  float64 `json:"ended_m"`  // its length at the doff, m
	Started string  `json:"started"`  // the roll that starts at the doff
	AtCount int64   `json:"at_count"` // encoder count of the doff (the new roll's MD 0)
}

// splicer is implemented by roll writers that record splices
// (*rollmap.Roll does).
type splicer interface {
	AddSplice(mdM float64, note string, t time.Time) error
}

// rollSeg is one roll the assembly writes.
type rollSeg struct {
	w      RollWriter
	from   int64   // first encoder count on this roll (math.MinInt64: the session's first roll)
	zero   int64   // encoder count at MD startM
	startM float64 // MD of zero, m (non-zero when a roll is resumed)
	nextID int64   // last defect ID given on this roll
	closed bool
}

// mdM is the position in metres on this roll of encoder count c.
func (s *rollSeg) mdM(c int64, mpc float64) float64 {
	return s.startM + float64(c-s.zero)*mpc/1000
}

// rollZero is the count at which this roll's MD would be 0.
func (s *rollSeg) rollZero(mpc float64) int64 {
	return s.zero - int64(math.Round(s.startM*1000/mpc))
}

// rollEnv is what the roll list needs from the engine, and no more.
type rollEnv struct {
	log        zerolog.Logger
	rollErrors prometheus.Counter
	// newRoll opens the roll that starts at a roll change (Options.NewRoll);
	// nil refuses roll changes.
	newRoll func(id string) (RollWriter, error)
	// onRoll is told of every roll started and closed (Options.OnRoll); may
	// be nil.
	onRoll func(status.RollEvent)
	// current is told the roll that becomes current at a roll change,
	// before its start event (the status and Engine.Roll); may be nil.
	current func(RollWriter)
}

func (env *rollEnv) event(ev status.RollEvent) {
	if env.onRoll != nil {
		env.onRoll(ev)
	}
}

// rollSegs is the assembly's list of rolls: every roll still open, oldest
// first; the last one is the current roll.
type rollSegs struct {
	env  rollEnv
	mpc  float64 // mm per count
	k    int64   // counts per line
	segs []*rollSeg
	// startsBefore reports whether a defect still pending starts before
	// count c (merger.startsBefore): such a roll cannot be closed yet.
	startsBefore func(c int64) bool
	pendingN     int // pending rolls so far (their provisional IDs)
}

func newRollSegs(env rollEnv, mpc float64, k int64, first *rollSeg, startsBefore func(int64) bool) *rollSegs {
	return &rollSegs{env: env, mpc: mpc, k: k, segs: []*rollSeg{first}, startsBefore: startsBefore}
}

func (rs *rollSegs) cur() *rollSeg { return rs.segs[len(rs.segs)-1] }

// segFor returns the roll encoder count c is on.
func (rs *rollSegs) segFor(c int64) *rollSeg {
	for i := len(rs.segs) - 1; i > 0; i-- {
		if c >= rs.segs[i].from {
			return rs.segs[i]
		}
	}
	return rs.segs[0]
}

// byID returns the open roll with this ID, or nil.
func (rs *rollSegs) byID(id string) *rollSeg {
	for _, s := range rs.segs {
		if p, ok := s.w.(*pendingRoll); ok && p.is(id) || s.w.ID() == id {
			return s
		}
	}
	return nil
}

// change starts a new roll at count d (the doff). Without a line seen yet
// (haveLine false) the current roll is empty: it is ended at once and the
// new roll takes the whole session.
func (rs *rollSegs) change(id string, d int64, haveLine bool) (RollChange, error) {
	if p := pendingOf(rs.cur()); p != nil {
		return rs.openPending(p, id) // a start after an end takes the pending roll's place
	}
	if rs.env.newRoll == nil {
		return RollChange{}, fmt.Errorf("%w: roll changes need Options.NewRoll", ErrConfig)
	}
	old := rs.cur()
	w, err := rs.env.newRoll(id)
	if err != nil {
		return RollChange{}, fmt.Errorf("start roll %q: %w", id, err)
	}
	ch := rs.follow(old, w, d, haveLine)
	rs.env.log.Info().Str("ended", ch.Ended).Float64("ended_m", ch.EndedM).Str("started", ch.Started).
		Int64("at_count", d).Msg("roll change")
	rs.env.event(status.RollEvent{Kind: status.RollStart, RollID: w.ID(), Time: time.Now().UTC()})
	return ch, nil
}

// end ends the current roll at count d and puts a pending roll after it
// (pending.go). It fails with ErrNoRoll when the current roll is pending.
func (rs *rollSegs) end(d int64, haveLine bool) (RollChange, error) {
	old := rs.cur()
	if p := pendingOf(old); p != nil {
		return RollChange{}, fmt.Errorf("%w: roll %s was ended at %.3f m and no other has started", ErrNoRoll, p.endedID, p.endedM)
	}
	if rs.env.newRoll == nil {
		return RollChange{}, fmt.Errorf("%w: roll changes need Options.NewRoll", ErrConfig)
	}
	rs.pendingN++
	p := newPendingRoll(rs.pendingN, time.Now())
	ch := rs.follow(old, p, d, haveLine)
	p.endedID, p.endedM = ch.Ended, ch.EndedM
	ch.Started = ""
	rs.env.log.Info().Str("ended", ch.Ended).Float64("ended_m", ch.EndedM).Int64("at_count", d).
		Msgf("roll ended; the next roll opens when the web has run %g m, or at the next roll start", pendingRollM)
	return ch, nil
}

// openPending opens pending roll p as roll id ("" = generated), writing
// everything recorded on it so far, and makes it the current roll's
// writer. On error p stays pending.
func (rs *rollSegs) openPending(p *pendingRoll, id string) (RollChange, error) {
	seg := rs.cur()
	w, err := rs.env.newRoll(id)
	if err != nil {
		return RollChange{}, fmt.Errorf("start roll %q: %w", id, err)
	}
	werr := p.open(w)
	if rs.env.current != nil {
		rs.env.current(p)
	}
	at := seg.from
	if at == math.MinInt64 { // ended before the first line: the session's origin
		at = seg.zero
	}
	ch := RollChange{Ended: p.endedID, EndedM: p.endedM, Started: w.ID(), AtCount: at}
	rs.env.log.Info().Str("roll", w.ID()).Str("after", p.endedID).Int("defects", int(seg.nextID)).
		Float64("md_m", p.lengthM).Msg("roll started where the ended roll stopped")
	rs.env.event(status.RollEvent{Kind: status.RollStart, RollID: w.ID(), Time: time.Now().UTC()})
	if werr != nil {
		return ch, fmt.Errorf("roll %s: write the records kept while it was pending: %w", w.ID(), werr)
	}
	return ch, nil
}

// follow makes w the current roll, from count d on, after old.
func (rs *rollSegs) follow(old *rollSeg, w RollWriter, d int64, haveLine bool) RollChange {
	mpc := rs.mpc
	ch := RollChange{Ended: old.w.ID(), Started: w.ID(), AtCount: d}
	if !haveLine {
		ch.EndedM = old.startM
		rs.segs = append(rs.segs, &rollSeg{w: w, from: old.from, zero: old.zero})
		if err := rs.retire(old, old.startM); err != nil {
			rs.env.rollErrors.Inc()
			rs.env.log.Error().Err(err).Msg("roll change")
		}
	} else {
		ch.EndedM = old.mdM(d, mpc)
		// Its length is known now; it reaches roll.json with the next
		// flush, so a crash before the roll is closed leaves it right.
		old.w.SetLength(ch.EndedM)
		rs.segs = append(rs.segs, &rollSeg{w: w, from: d, zero: d})
	}
	if rs.env.current != nil {
		rs.env.current(w)
	}
	return ch
}

// retireReady closes every ended roll that can receive nothing more and
// returns the errors closing them met. frontier is the lowest count any
// camera can still report a region at, position the count the web (as
// the marking unit sees it) has reached, lag the counts the web must run
// past a roll's end before its marks have all fired.
func (rs *rollSegs) retireReady(frontier, position, lag int64, final bool) error {
	var errs []error
	for i := 0; i < len(rs.segs)-1; i++ {
		s, next := rs.segs[i], rs.segs[i+1]
		if s.closed {
			continue
		}
		if !final {
			if frontier < next.from || position < next.from+lag {
				break
			}
			if rs.startsBefore != nil && rs.startsBefore(next.from) {
				break
			}
		}
		errs = append(errs, rs.retire(s, s.mdM(next.from, rs.mpc)))
	}
	n := 0
	for _, s := range rs.segs {
		if !s.closed {
			rs.segs[n] = s
			n++
		}
	}
	clear(rs.segs[n:])
	rs.segs = rs.segs[:n]
	return errors.Join(errs...)
}

// retire gives an ended roll its length, flushes and closes it.
func (rs *rollSegs) retire(s *rollSeg, lengthM float64) error {
	s.closed = true
	s.w.SetLength(lengthM)
	err := s.w.Flush()
	if c, ok := s.w.(io.Closer); ok {
		err = errors.Join(err, c.Close())
	}
	if err != nil {
		err = fmt.Errorf("close ended roll %s: %w", s.w.ID(), err)
	} else {
		rs.env.log.Info().Str("roll", s.w.ID()).Float64("length_m", lengthM).Int64("last_defect_id", s.nextID).Msg("roll closed")
	}
	rs.env.event(status.RollEvent{Kind: status.RollEnd, RollID: s.w.ID(), MDM: lengthM, Time: time.Now().UTC()})
	return err
}

// splitGap cuts a gap at roll boundaries and calls f with each piece and
// the roll it is on.
func (rs *rollSegs) splitGap(g gapRange, f func(gapRange, *rollSeg)) {
	for i, s := range rs.segs {
		lo, hi := g.c0, g.c1
		if i > 0 {
			lo = max(lo, s.from)
		}
		if i+1 < len(rs.segs) {
			hi = min(hi, rs.segs[i+1].from)
		}
		if lo >= hi {
			continue
		}
		p := g
		p.c0, p.c1 = lo, hi
		if lo != g.c0 || hi != g.c1 {
			p.lines = (hi - lo + rs.k - 1) / rs.k
		}
		if lo != g.c0 {
			p.blocks = 0 // counted once, on the roll the drop started on
		}
		f(p, s)
	}
}

// defectsForSeg is a helper for emitDefects: the run of ds (sorted by roll) on
// the same roll as ds[0].
func defectsForSeg(ds []rollmap.Defect) int {
	n := 1
	for n < len(ds) && ds[n].RollID == ds[0].RollID {
		n++
	}
	return n
}

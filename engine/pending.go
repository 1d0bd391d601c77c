package engine

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/webinspect/webinspect/rollmap"
)

// # Ending a roll without starting one
//
// EndRoll (the operator's "End roll") ends the current roll at the doff
// but does not open the next roll at once: the web under the cameras goes
// onto a pending roll, whose records the engine keeps in memory (at most
// pendingRollM of web, or pendingRollWait). The pending roll becomes a
// roll of the store, with a generated ID, only once the web has run
// pendingRollM under the cameras, or has moved at all and pendingRollWait
// has passed. A ChangeRoll (the operator's "Start roll") that comes before
// that takes its place: the new roll starts at the doff and gets every
// record of the pending one. So an end followed at once by a start leaves
// no near-empty auto-named roll (issue 15 #10: rolls of 1.7 m and 0 m),
// and an end with the line stopped creates no roll until the web moves.
// When the run ends while a roll is pending, the roll is kept if anything
// was recorded on it (a defect, a gap, a mark event, a splice) or the web
// ran pendingRollM; otherwise there is no roll to keep and none is made.
//
// Decided for a mill: the grace is measured in web (10 m, a few seconds
// at production speed) so that an operator who ends and then types the
// next roll's ID while the line runs gets one roll, and bounded in time
// (30 s) so that a slow line does not keep records only in memory for
// long; records of the pending roll are as durable as the roll map's last
// unflushed batch until then.

const (
	// pendingRollM is how much web a pending roll takes before it is
	// opened with a generated ID.
	pendingRollM = 10.0
	// pendingRollWait is how long a pending roll the web has moved onto
	// waits for a start before it is opened with a generated ID.
	pendingRollWait = 30 * time.Second
)

// ErrNoRoll is returned by EndRoll when no roll is open (the last one was
// ended and no other started yet).
var ErrNoRoll = errors.New("no roll is open")

// pendingRoll is the RollWriter of a roll ended by EndRoll and not yet
// opened: it keeps what the assembly writes until open gives it the
// store's roll, then passes everything through (and gives the records the
// roll's ID). All calls come from the assembly goroutine, except ID, Close
// and the status board's reads through Engine.Roll, which only read w
// under the engine's own ordering (Close is the caller's after Run).
type pendingRoll struct {
	provisional string    // the ID its records carry until it is opened
	since       time.Time // when the roll before it ended
	endedID     string    // the roll before it, and its length
	endedM      float64
	retryAt     time.Time // after a failed open with a generated ID
	w           RollWriter

	defects []rollmap.Defect
	gaps    []rollmap.Uninspected
	marks   []rollmap.MarkEvent
	splices []pendingSplice
	lengthM float64
}

type pendingSplice struct {
	mdM  float64
	note string
	t    time.Time
}

func newPendingRoll(n int, since time.Time) *pendingRoll {
	return &pendingRoll{provisional: fmt.Sprintf("(pending-%d)", n), since: since}
}

func (p *pendingRoll) opened() bool { return p.w != nil }

// records reports whether anything was recorded on the pending roll.
func (p *pendingRoll) records() bool {
	return len(p.defects)+len(p.gaps)+len(p.marks)+len(p.splices) > 0
}

// open gives the pending roll its store roll w and writes everything kept
// for it there.
func (p *pendingRoll) open(w RollWriter) error {
	p.w = w
	id := w.ID()
	var errs []error
	if len(p.defects) > 0 {
		for i := range p.defects {
			p.defects[i].RollID = id
		}
		errs = append(errs, w.AddDefects(p.defects...))
	}
	if len(p.gaps) > 0 {
		for i := range p.gaps {
			p.gaps[i].RollID = id
		}
		errs = append(errs, w.AddUninspected(p.gaps...))
	}
	if mw, ok := w.(markWriter); ok && len(p.marks) > 0 {
		for i := range p.marks {
			p.marks[i].RollID = id
		}
		errs = append(errs, mw.AddMarkEvents(p.marks...))
	}
	if sp, ok := w.(splicer); ok {
		for _, s := range p.splices {
			errs = append(errs, sp.AddSplice(s.mdM, s.note, s.t))
		}
	}
	w.SetLength(p.lengthM)
	p.defects, p.gaps, p.marks, p.splices = nil, nil, nil, nil
	return errors.Join(errs...)
}

// is reports whether id names this roll (its store ID, or the provisional
// one its early records carry).
func (p *pendingRoll) is(id string) bool {
	return id == p.provisional || p.w != nil && id == p.w.ID()
}

func (p *pendingRoll) ID() string {
	if p.w != nil {
		return p.w.ID()
	}
	return p.provisional
}

func (p *pendingRoll) AddDefects(ds ...rollmap.Defect) error {
	if p.w == nil {
		p.defects = append(p.defects, ds...)
		return nil
	}
	for i := range ds {
		ds[i].RollID = p.w.ID()
	}
	return p.w.AddDefects(ds...)
}

func (p *pendingRoll) AddUninspected(us ...rollmap.Uninspected) error {
	if p.w == nil {
		p.gaps = append(p.gaps, us...)
		return nil
	}
	for i := range us {
		us[i].RollID = p.w.ID()
	}
	return p.w.AddUninspected(us...)
}

func (p *pendingRoll) AddMarkEvents(evs ...rollmap.MarkEvent) error {
	if p.w == nil {
		p.marks = append(p.marks, evs...)
		return nil
	}
	mw, ok := p.w.(markWriter)
	if !ok {
		return nil
	}
	for i := range evs {
		evs[i].RollID = p.w.ID()
	}
	return mw.AddMarkEvents(evs...)
}

func (p *pendingRoll) AddSplice(mdM float64, note string, t time.Time) error {
	if p.w == nil {
		p.splices = append(p.splices, pendingSplice{mdM, note, t})
		return nil
	}
	sp, ok := p.w.(splicer)
	if !ok {
		return fmt.Errorf("%w: roll %s cannot record splices", ErrConfig, p.w.ID())
	}
	return sp.AddSplice(mdM, note, t)
}

func (p *pendingRoll) SetLength(m float64) {
	p.lengthM = m
	if p.w != nil {
		p.w.SetLength(m)
	}
}

// Flush flushes the opened roll; a pending roll has nothing on disk yet.
func (p *pendingRoll) Flush() error {
	if p.w == nil {
		return nil
	}
	return p.w.Flush()
}

// Close closes the opened roll; a roll never opened has nothing to close.
func (p *pendingRoll) Close() error {
	if c, ok := p.w.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

// pendingOf returns s's pending roll, or nil when s is an ordinary roll or
// its pending roll was opened.
func pendingOf(s *rollSeg) *pendingRoll {
	if p, ok := s.w.(*pendingRoll); ok && !p.opened() {
		return p
	}
	return nil
}

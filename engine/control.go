package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/webinspect/webinspect/engine/status"
	"github.com/webinspect/webinspect/rollmap"
)

// controlKind is what a control request asks of the assembly.
type controlKind int

const (
	// controlChangeRoll ends the current roll and starts another (ChangeRoll).
	controlChangeRoll controlKind = iota + 1
	// controlSplice records a splice on the current roll (Splice).
	controlSplice
	// controlEndRoll ends the current roll without starting one (EndRoll).
	controlEndRoll
)

func (k controlKind) String() string {
	switch k {
	case controlChangeRoll:
		return "change-roll"
	case controlSplice:
		return "splice"
	case controlEndRoll:
		return "end-roll"
	}
	return fmt.Sprintf("controlKind(%d)", int(k))
}

// control is a request to the assembly. The assembly answers every request
// it receives on reply (capacity 1).
type control struct {
	kind  controlKind
	id    string // controlChangeRoll: the new roll's ID ("" = generated)
	note  string // controlSplice
	reply chan controlReply
}

type controlReply struct {
	change RollChange // controlChangeRoll
	rollID string     // controlSplice: the roll and position of the splice
	mdM    float64
	err    error
}

// ChangeRoll ends the current roll at the web position the cameras see now
// and starts roll id there ("" lets the roll store generate an ID). It
// needs Options.NewRoll. The ended roll is closed as soon as every defect
// that started on it is decided (see "Roll changes" in rolls.go).
func (e *Engine) ChangeRoll(ctx context.Context, id string) (RollChange, error) {
	r, err := e.request(ctx, control{kind: controlChangeRoll, id: id})
	return r.change, err
}

// EndRoll ends the current roll at the web position the cameras see now
// without starting the next: the web goes onto a pending roll that opens
// (with a generated ID) once the web has run 10 m, or that the next
// ChangeRoll opens with its ID (see pending.go). RollChange.Started is
// empty. It returns an error wrapping ErrNoRoll when the current roll is
// already pending.
func (e *Engine) EndRoll(ctx context.Context) (RollChange, error) {
	r, err := e.request(ctx, control{kind: controlEndRoll})
	return r.change, err
}

// Splice records a splice on the current roll at the web position the
// cameras see now, and returns the roll and the splice's MD position.
func (e *Engine) Splice(ctx context.Context, note string) (rollID string, mdM float64, err error) {
	r, err := e.request(ctx, control{kind: controlSplice, note: note})
	return r.rollID, r.mdM, err
}

// Roll returns the roll the engine is writing now (the one Options.Roll
// gave, or the newest started by ChangeRoll). When Run has returned, the
// caller closes it; the engine closes every roll a roll change ended.
func (e *Engine) Roll() RollWriter { return e.board.roll() }

func (e *Engine) request(ctx context.Context, c control) (controlReply, error) {
	if !e.started.Load() {
		return controlReply{}, ErrNotRunning
	}
	c.reply = make(chan controlReply, 1)
	select {
	case e.ctl <- c:
	case <-e.assembled:
		return controlReply{}, ErrNotRunning
	case <-ctx.Done():
		return controlReply{}, ctx.Err()
	}
	// Once the assembly has the request it will carry it out (it never
	// blocks on it): wait for the answer rather than report a failure for
	// a change that then happens anyway.
	r := <-c.reply
	return r, r.err
}

// control carries out one control request and answers it.
func (a *assembly) control(c control) {
	var r controlReply
	switch c.kind {
	case controlChangeRoll:
		r.change, r.err = a.changeRoll(c.id)
	case controlSplice:
		r.rollID, r.mdM, r.err = a.splice(c.note)
	case controlEndRoll:
		r.change, r.err = a.endRoll()
	default:
		r.err = fmt.Errorf("%w: unknown control request %v", ErrConfig, c.kind)
	}
	c.reply <- r
}

// changeRoll ends the current roll at the line the cameras see next, or
// opens the pending roll after an EndRoll as roll id.
func (a *assembly) changeRoll(id string) (RollChange, error) {
	old := a.rolls.cur()
	if p := pendingOf(old); p != nil {
		ch, err := a.rolls.openPending(p, id)
		if ch.Started != "" {
			a.board.progress(a.lengthM(), a.uninspectedM, nil)
		}
		return ch, err
	}
	ch, err := a.rolls.change(id, a.pos.next(), a.pos.haveNewest)
	if err != nil {
		return ch, err
	}
	if old.closed {
		a.note(a.rolls.retireReady(0, 0, 0, false), old.w, "close ended roll") // drops it from the list
	}
	a.newRollFigures()
	return ch, nil
}

// endRoll ends the current roll at the line the cameras see next; the
// web goes onto a pending roll.
func (a *assembly) endRoll() (RollChange, error) {
	old := a.rolls.cur()
	ch, err := a.rolls.end(a.pos.next(), a.pos.haveNewest)
	if err != nil {
		return ch, err
	}
	if old.closed {
		a.note(a.rolls.retireReady(0, 0, 0, false), old.w, "close ended roll")
	}
	a.newRollFigures()
	return ch, nil
}

// openPending opens the pending roll with a generated ID once the web has
// run pendingRollM onto it, or has moved and pendingRollWait has passed
// (final: at the end of the run, when anything was recorded on it). A
// pending roll never opened at the end of the run is no roll: the status
// and Engine.Roll go back to the roll that was ended.
func (a *assembly) openPending(final bool) {
	p := pendingOf(a.rolls.cur())
	if p == nil {
		return
	}
	moved := 0.0
	if a.pos.haveNewest {
		moved = a.lengthM()
	}
	now := time.Now()
	switch {
	case final && (p.records() || moved >= pendingRollM):
	case final:
		a.log.Info().Str("ended", p.endedID).Float64("md_m", moved).
			Msg("no roll after the ended one: nothing was recorded on the web that ran on, and it is not kept as a roll")
		a.board.rollStarted(endedRoll{id: p.endedID})
		return
	case now.Before(p.retryAt):
		return
	case moved >= pendingRollM, moved > 0 && now.Sub(p.since) >= pendingRollWait:
	default:
		return
	}
	if _, err := a.rolls.openPending(p, ""); err != nil {
		p.retryAt = now.Add(5 * time.Second)
		a.note(err, p, "open the roll after an end")
	}
}

// endedRoll stands for a roll the engine already closed (Engine.Roll when
// the run ended with no roll after it): closing it again does nothing.
type endedRoll struct{ id string }

func (r endedRoll) ID() string                                { return r.id }
func (endedRoll) AddDefects(...rollmap.Defect) error          { return ErrNoRoll }
func (endedRoll) AddUninspected(...rollmap.Uninspected) error { return ErrNoRoll }
func (endedRoll) SetLength(float64)                           {}
func (endedRoll) Flush() error                                { return nil }
func (endedRoll) Close() error                                { return nil }

// splice records a splice on the current roll at its length now.
func (a *assembly) splice(note string) (rollID string, mdM float64, err error) {
	cur := a.rolls.cur()
	rollID, mdM = cur.w.ID(), a.lengthM()
	sp, ok := cur.w.(splicer)
	if !ok {
		return rollID, mdM, fmt.Errorf("%w: roll %s cannot record splices", ErrConfig, cur.w.ID())
	}
	now := time.Now().UTC()
	if err := sp.AddSplice(mdM, note, now); err != nil {
		return rollID, mdM, err
	}
	a.log.Info().Str("roll", rollID).Float64("md_m", mdM).Str("note", note).Msg("splice")
	a.rolls.env.event(status.RollEvent{Kind: status.RollSplice, RollID: rollID, MDM: mdM, Time: now})
	return rollID, mdM, nil
}

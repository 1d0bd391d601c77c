package engine

import (
	"fmt"
	"math"
	"time"

	"github.com/rs/zerolog"

	"github.com/webinspect/webinspect/acquisition"
	"github.com/webinspect/webinspect/marking"
	"github.com/webinspect/webinspect/rollmap"
)

// assembly is the single consumer of all cameras' detect stages: it merges
// their regions into defects (merger), tracks the web position
// (mdPosition), records gaps, carries out roll changes and splices
// (rollSegs, control.go), writes and flushes the roll map, feeds the
// marking unit and keeps the status. It runs on one goroutine, in run;
// nothing in it is shared except through statusBoard.
type assembly struct {
	info  acquisition.Info
	k     int64   // counts per line
	mpc   float64 // mm per count
	log   zerolog.Logger
	m     *metrics
	board *statusBoard

	merge *merger
	rolls *rollSegs
	pos   mdPosition
	crops *cropper // nil when crops are off

	feed     markFeed
	marks    *marking.Scheduler // nil without a marking unit
	markEvts <-chan marking.MarkEvent
	markLost func() int64 // mark events that did not fit in markEvts
	markLag  int64        // counts the web runs past a roll's end before its marks have fired

	ctl         <-chan control
	freeRegions []chan []region // per camera, back to its detect stage
	onDefects   func([]rollmap.Defect)
	// recipeVersion and modelVersion are stamped on every defect.
	recipeVersion, modelVersion string
	learned                     *learnedStage // nil in tests that build an assembly by hand
	flushEvery                  time.Duration

	err error // the first roll-map error
	// The current roll's uninspected ranges (their union is uninspectedM,
	// as the roll map counts it) and the blocks and lines dropped on it.
	curGaps                 []rollmap.Uninspected
	uninspectedM            float64
	rollBlocks, rollDropped int64
	speedT                  time.Time
	speedC                  int64
}

// run consumes msgs until every detect stage has ended, then finishes the
// rolls. It returns the first roll-map error (the assembly keeps going
// after one, so nothing else is lost). srcErrs are the cameras' stream
// errors, final once msgs is closed.
func (a *assembly) run(msgs <-chan detMsg, srcErrs []error) error {
	tick := time.NewTicker(a.flushEvery)
	defer tick.Stop()
	for {
		select {
		case m, ok := <-msgs:
			if !ok {
				a.finish(srcErrs)
				return a.err
			}
			a.handle(&m)
		case ev := <-a.markEvts: // nil channel when marking is off
			a.markEvent(ev)
		case c := <-a.ctl:
			a.control(c)
		case <-tick.C:
			a.flushAll("flush")
			if a.pos.haveNewest && len(a.rolls.segs) > 1 {
				a.retireRolls(a.pos.slowestCamera())
			}
		}
	}
}

// handle takes in one detect stage's message.
func (a *assembly) handle(m *detMsg) {
	if a.pos.observe(m) {
		for _, s := range []*rollSeg{a.rolls.segs[0], a.rolls.cur()} {
			if s.from == math.MinInt64 {
				s.zero = a.pos.origin // also a roll change before the first line
			}
		}
	}
	if m.cam == 0 && m.nEdges > 0 {
		a.merge.edges.add(m.edges[:m.nEdges])
	}
	a.recordGaps(m.gaps)
	for _, r := range m.regions {
		a.merge.add(r)
	}
	if cap(m.regions) > 0 {
		select {
		case a.freeRegions[m.cam] <- m.regions[:0]:
		default:
		}
	}
	a.merge.setFrontier(m.cam, m.frontier)
	a.emitDefects()
	slowest := a.pos.slowestCamera()
	if len(a.rolls.segs) > 1 {
		a.retireRolls(slowest)
	}
	a.feed.inspected(m.counts, m.blockTime, slowest)
	if !m.arrived.IsZero() {
		a.m.latency.Observe(time.Since(m.arrived).Seconds())
	}
	a.progress(m)
}

// progress updates the status: position, and speed from the encoder on
// the source clock (camera 0, measured over at least a second).
func (a *assembly) progress(m *detMsg) {
	var speed *float64
	if m.hasCount && !m.blockTime.IsZero() && m.cam == 0 {
		if a.speedT.IsZero() {
			a.speedT, a.speedC = m.blockTime, m.lastCount
		} else if dt := m.blockTime.Sub(a.speedT); dt >= time.Second {
			v := float64(m.lastCount-a.speedC) * a.mpc / 1000 / dt.Minutes()
			speed = &v
			a.speedT, a.speedC = m.blockTime, m.lastCount
		}
	}
	a.board.progress(a.lengthM(), a.uninspectedM, speed)
	a.openPending(false)
}

// retireRolls closes every ended roll that can receive nothing more;
// slowest is mdPosition.slowestCamera.
func (a *assembly) retireRolls(slowest int64) {
	web := a.feed.webPosition(a.pos.newest, slowest)
	a.note(a.rolls.retireReady(a.merge.minFrontier(), web, a.markLag, false), a.rolls.segs[0].w, "close ended roll")
}

// newRollFigures resets the current roll's figures at a roll change.
func (a *assembly) newRollFigures() {
	a.curGaps, a.uninspectedM, a.rollBlocks, a.rollDropped = nil, 0, 0, 0
	a.board.rollDrops(0, 0)
	a.board.progress(0, 0, nil)
}

// lengthM is the current roll's length so far.
func (a *assembly) lengthM() float64 {
	c := a.rolls.cur()
	if !a.pos.haveNewest {
		return c.startM
	}
	return c.mdM(a.pos.next(), a.mpc)
}

// note records a roll-map error: counted, logged, and the first one kept
// for Run to return.
func (a *assembly) note(err error, roll RollWriter, what string) {
	if err == nil {
		return
	}
	a.m.rollErrors.Inc()
	a.log.Error().Err(err).Str("roll", roll.ID()).Msg(what)
	if a.err == nil {
		a.err = fmt.Errorf("roll map %s: %s: %w", roll.ID(), what, err)
	}
}

// flushAll gives the current roll its length so far and flushes every
// open roll.
func (a *assembly) flushAll(what string) {
	a.rolls.cur().w.SetLength(a.lengthM())
	for _, s := range a.rolls.segs {
		a.note(s.w.Flush(), s.w, what)
	}
}

// finish runs once every camera has ended: a camera that stopped early
// (its stream failed or ran out) leaves the rest of the roll uninspected
// in its band; marks still pending can no longer be placed; rolls ended
// by a roll change are closed (the current roll is the caller's to
// close, see Roll) and everything is flushed.
func (a *assembly) finish(srcErrs []error) {
	a.recordGaps(a.pos.endGaps(srcErrs))
	if a.marks != nil {
		if err := a.marks.Close(); err != nil { // reports pending marks missed
			a.log.Error().Err(err).Msg("close marking")
		}
		a.drainMarks()
		if n := a.markLost(); n > 0 {
			a.log.Error().Int64("events", n).Msg("mark events lost: the event queue was full")
		}
	}
	a.openPending(true)
	if len(a.rolls.segs) > 1 {
		a.note(a.rolls.retireReady(0, 0, 0, true), a.rolls.segs[0].w, "close ended roll")
	}
	a.flushAll("final flush")
	a.board.progress(a.lengthM(), a.uninspectedM, nil)
}

// emitDefects decides every defect that can no longer grow: crops, the
// roll map, marks, status, metrics and Options.OnDefects.
func (a *assembly) emitDefects() {
	ds := a.merge.finalize()
	if len(ds) == 0 {
		return
	}
	for i := range ds {
		ds[i].RecipeVersion, ds[i].ModelVersion = a.recipeVersion, a.modelVersion
	}
	if a.crops != nil {
		for i := range ds {
			d := &ds[i]
			c1 := d.EncoderCount + int64(math.Round((d.MDEndM-d.MDStartM)*1000/a.mpc)) - a.k
			a.crops.attach(d, c1)
			if a.learned != nil {
				pix, w, h := a.crops.last()
				a.learned.apply(d, pix, w, h)
			}
		}
	} else {
		for i := range ds {
			ds[i].ImageError = ImageArchiveDisabled
		}
		a.m.skipReasons.add(ImageArchiveDisabled, len(ds))
	}
	for rest := ds; len(rest) > 0; {
		n := defectsForSeg(rest)
		a.writeDefects(rest[:n])
		rest = rest[n:]
	}
	a.board.countDefects(ds, a.rolls.cur().w.ID())
	for _, d := range ds {
		a.m.defect(d.Class)
	}
	if a.onDefects != nil {
		a.onDefects(ds)
	}
}

// writeDefects writes defects of one roll and schedules their marks.
func (a *assembly) writeDefects(ds []rollmap.Defect) {
	seg := a.rolls.byID(ds[0].RollID)
	if seg == nil {
		// Cannot happen: a roll is closed only once no defect can start on
		// it any more (see rolls.go). Say so loudly.
		a.m.rollErrors.Inc()
		a.log.Error().Str("roll", ds[0].RollID).Int("defects", len(ds)).Msg("defects decided for a roll that is already closed; not recorded")
		return
	}
	a.note(seg.w.AddDefects(ds...), seg.w, "add defects")
	if a.marks == nil {
		return
	}
	zero := seg.rollZero(a.mpc)
	for i := range ds {
		if _, err := a.marks.Schedule(ds[i], ds[i].EncoderCount, zero, a.mpc); err != nil {
			a.log.Error().Err(err).Int64("defect", ds[i].ID).Msg("schedule mark")
		}
	}
}

// recordGaps records uninspected ranges, cut at roll boundaries.
func (a *assembly) recordGaps(gs []gapRange) {
	for _, g := range gs {
		a.rolls.splitGap(g, a.recordGap)
	}
}

// recordGap records one uninspected range on roll seg.
func (a *assembly) recordGap(g gapRange, seg *rollSeg) {
	u := a.uninspected(g, seg)
	a.note(seg.w.AddUninspected(u), seg.w, "add uninspected range")
	if seg == a.rolls.cur() {
		a.curGaps = append(a.curGaps, u)
		a.uninspectedM = rollmap.UninspectedMetres(a.curGaps)
		if g.reason == reasonDropped {
			a.rollBlocks += g.blocks
			a.rollDropped += g.lines
			a.board.rollDrops(a.rollBlocks, a.rollDropped)
		}
	}
	a.m.uninspectedM.Add(u.MDEndM - u.MDStartM)
	a.log.Warn().Str("roll", seg.w.ID()).Int("camera", g.cam).Float64("md_start_m", u.MDStartM).Float64("md_end_m", u.MDEndM).
		Int64("lines", g.lines).Str("reason", string(g.reason)).Msg("uninspected range")
}

// uninspected converts a gap of one camera on roll seg into a roll-map range.
func (a *assembly) uninspected(g gapRange, seg *rollSeg) rollmap.Uninspected {
	return uninspectedRange(a.info, a.mpc, g, seg, a.merge.edges.edgeAt(g.c0))
}

// uninspectedRange is gap g of roll seg as a roll-map range; edgeMM is the
// web edge's machine CD (webedge.go).
func uninspectedRange(info acquisition.Info, mpc float64, g gapRange, seg *rollSeg, edgeMM float64) rollmap.Uninspected {
	u := rollmap.Uninspected{
		RollID:   seg.w.ID(),
		MDStartM: seg.mdM(g.c0, mpc),
		MDEndM:   seg.mdM(g.c1, mpc),
		Camera:   g.cam,
		Lines:    g.lines,
		Reason:   g.reason,
	}
	if g.cam >= 0 && g.cam < len(info.Cameras) {
		c := info.Cameras[g.cam]
		// On the roll: from the web edge found last before the gap.
		u.CDStartMM = math.Max(c.OffsetMM-edgeMM, 0)
		u.CDEndMM = math.Max(c.OffsetMM+float64(c.Width)*c.PixelMM-edgeMM, u.CDStartMM)
		if info.WebWidthMM > 0 {
			u.CDEndMM = math.Min(u.CDEndMM, info.WebWidthMM)
		}
	} else {
		u.Camera = -1
		u.CDEndMM = info.WebWidthMM
	}
	return u
}

// markEvent records one mark status change. Late and missed marks are
// logged; they mean a defect left the line unmarked.
func (a *assembly) markEvent(ev marking.MarkEvent) {
	a.board.markEvent(ev.Status.String())
	seg := a.rolls.byID(ev.RollID)
	if seg == nil {
		a.m.rollErrors.Inc()
		a.log.Error().Str("roll", ev.RollID).Int64("defect", ev.DefectID).Str("status", ev.Status.String()).
			Msg("mark event for a roll that is already closed; not recorded")
	} else if mw, ok := seg.w.(markWriter); ok {
		if err := mw.AddMarkEvents(rollMarkEvent(ev)); err != nil {
			a.m.rollErrors.Inc()
			a.log.Error().Err(err).Int64("defect", ev.DefectID).Msg("record mark event")
		}
	}
	switch ev.Status {
	case marking.StatusLate, marking.StatusMissed:
		a.log.Warn().Int64("defect", ev.DefectID).Str("head", ev.HeadName).Str("status", ev.Status.String()).
			Float64("md_m", ev.MDM).Float64("passed_by_mm", ev.PassedByMM).AnErr("cause", ev.Err).Msg("defect not marked")
	}
}

// rollMarkEvent is the roll-map record of a mark event.
func rollMarkEvent(ev marking.MarkEvent) rollmap.MarkEvent {
	re := rollmap.MarkEvent{
		RollID: ev.RollID, DefectID: ev.DefectID, MarkID: ev.MarkID, Head: ev.HeadName,
		Status: ev.Status.String(), TargetCount: ev.Target, FireCount: ev.FireCount,
		MDM: ev.MDM, CDMM: ev.CDMM, PassedByMM: ev.PassedByMM, Time: ev.Time.UTC(),
	}
	if re.Time.IsZero() {
		re.Time = time.Now().UTC()
	}
	if ev.Err != nil {
		re.Error = ev.Err.Error()
	}
	return re
}

// drainMarks records the mark events waiting in the queue.
func (a *assembly) drainMarks() {
	for {
		select {
		case ev := <-a.markEvts:
			a.markEvent(ev)
		default:
			return
		}
	}
}

package engine

import (
	"time"

	"github.com/webinspect/webinspect/acquisition"
)

// encoderFeed passes every line's encoder count to the marking scheduler
// (and to a simulated marker).
//
// From a live source the feed comes from camera 0's acquisition loop: the
// encoder moves whether or not the block is later dropped, and how far the
// web has run while a defect was being decided is exactly what makes a mark
// late. A source that is not live (a replay as fast as possible) has no
// real time: the assembler feeds each block's counts after deciding what
// the block closed, so the web "moves" as inspection proceeds.
//
// A block carries the trigger time of its first line only, so line times
// are interpolated with the line period measured over the previous block.
type encoderFeed struct {
	prevTime  time.Time
	prevLines int
	period    time.Duration
}

func (f *encoderFeed) observe(e *Engine, b *acquisition.Block) {
	f.observeCounts(e, b.Counts[:b.Lines], b.Time)
}

func (f *encoderFeed) observeCounts(e *Engine, counts []int64, t0 time.Time) {
	if !f.prevTime.IsZero() && f.prevLines > 0 {
		if d := t0.Sub(f.prevTime); d > 0 {
			f.period = d / time.Duration(f.prevLines)
		}
	}
	f.prevTime, f.prevLines = t0, len(counts)
	for i, c := range counts {
		t := t0.Add(time.Duration(i) * f.period)
		if e.simMarker != nil {
			e.simMarker.Observe(c, t)
		}
		e.marks.Observe(c, t)
	}
}

// countChunk is one block's encoder counts waiting to be fed offline.
type countChunk struct {
	counts []int64
	t0     time.Time
}

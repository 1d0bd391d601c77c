package engine

import (
	"context"
	"math"
	"sync/atomic"
	"time"
)

// Cameras of a source that is not live (a replay as fast as possible) are
// read as fast as each one's detector goes, and nothing else ties them
// together: on a busy machine one camera could run tens of thousands of
// lines ahead of another. A defect is decided only once every camera has
// passed it, and its crop comes from its camera's line history, so a
// camera that ran too far ahead would have overwritten the lines of its
// own defects by then (replays losing crops). waitForSlowest keeps every
// camera within maxSkew lines of the slowest one still running; a live
// source is paced by the line and never waits.

// setSkew sizes the per-camera read positions and the largest lead.
func (e *Engine) setSkew(historyLines, linesPerBlock int) {
	e.read = make([]atomic.Int64, len(e.streams))
	lead := int64(historyLines) / 2
	if lead <= 0 {
		lead = 64 * int64(linesPerBlock)
	}
	e.maxSkew = max(lead, 2*int64(linesPerBlock))
}

// waitForSlowest blocks camera i while it is more than maxSkew lines ahead
// of the slowest camera that has not ended.
func (e *Engine) waitForSlowest(ctx context.Context, i int) error {
	for {
		slowest := int64(math.MaxInt64)
		for k := range e.read {
			if k != i {
				slowest = min(slowest, e.read[k].Load())
			}
		}
		if slowest == math.MaxInt64 || e.read[i].Load()-slowest <= e.maxSkew {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		time.Sleep(200 * time.Microsecond)
	}
}

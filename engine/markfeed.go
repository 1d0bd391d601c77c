package engine

import (
	"slices"
	"time"

	"github.com/webinspect/webinspect/acquisition"
	"github.com/webinspect/webinspect/marking"
)

// # The marking unit's encoder
//
// The mark scheduler fires marks by encoder count, so it must see every
// line's count (and a simulated marker with it). Where the counts come
// from depends on whether the source is live, and is chosen once, in New,
// as a markFeed:
//
//   - liveFeed: from camera 0's acquisition loop. The encoder moves
//     whether or not the block is later dropped, and how far the web has
//     run while a defect was being decided is exactly what makes a mark
//     late.
//   - offlineFeed: a source that is not live (a replay as fast as
//     possible) has no real time. Camera 0's detector passes each block's
//     counts to the assembly, which feeds them only as far as every camera
//     has been inspected, and only once the marks decided so far have
//     reached the device: the web "moves" as inspection proceeds.
//
// Without a marking unit the feed observes nothing, but still says how
// far the web has run for closing ended rolls (webPosition).
//
// A block carries the trigger time of its first line only, so line times
// are interpolated with the line period measured over the previous block.
type markFeed interface {
	// acquired is called by camera 0's acquire goroutine with every block
	// read, dropped or not.
	acquired(b *acquisition.Block)
	// keepsCounts reports whether camera 0's detector must pass each
	// block's counts to the assembly (detMsg.counts).
	keepsCounts() bool
	// inspected is called by the assembly after each detector message,
	// with camera 0's counts from it (nil for other cameras) and the
	// slowest camera's position (mdPosition.slowestCamera).
	inspected(counts []int64, t0 time.Time, slowest int64)
	// webPosition is how far the web has run as the marking unit sees it,
	// given the newest count any camera reported and the slowest camera.
	webPosition(newest, slowest int64) int64
}

// newMarkFeed chooses the feed for a source; marks and sim are nil when
// the recipe has no marking output. free recycles count slices to camera
// 0's detector.
func newMarkFeed(live bool, marks *marking.Scheduler, sim *marking.SimMarker, free chan []int64) markFeed {
	var s *encoderSink
	if marks != nil {
		s = &encoderSink{marks: marks, sim: sim}
	}
	if live {
		return &liveFeed{sink: s}
	}
	return &offlineFeed{sink: s, free: free}
}

// encoderSink is what observes the encoder: the scheduler and, when the
// output is simulated, the simulated marker.
type encoderSink struct {
	marks *marking.Scheduler
	sim   *marking.SimMarker
}

// encoderFeed interpolates line times and passes counts to a sink.
type encoderFeed struct {
	prevTime  time.Time
	prevLines int
	period    time.Duration
}

func (f *encoderFeed) observeCounts(s *encoderSink, counts []int64, t0 time.Time) {
	if !f.prevTime.IsZero() && f.prevLines > 0 {
		if d := t0.Sub(f.prevTime); d > 0 {
			f.period = d / time.Duration(f.prevLines)
		}
	}
	f.prevTime, f.prevLines = t0, len(counts)
	for i, c := range counts {
		t := t0.Add(time.Duration(i) * f.period)
		if s.sim != nil {
			s.sim.Observe(c, t)
		}
		s.marks.Observe(c, t)
	}
}

// liveFeed feeds the encoder from camera 0's acquisition loop.
type liveFeed struct {
	sink *encoderSink // nil: no marking unit
	enc  encoderFeed  // camera 0's acquire goroutine only
}

func (f *liveFeed) acquired(b *acquisition.Block) {
	if f.sink != nil {
		f.enc.observeCounts(f.sink, b.Counts[:b.Lines], b.Time)
	}
}

func (f *liveFeed) keepsCounts() bool                     { return false }
func (f *liveFeed) inspected([]int64, time.Time, int64)   {}
func (f *liveFeed) webPosition(newest, _ int64) int64     { return newest }
func (f *offlineFeed) acquired(*acquisition.Block)        {}
func (f *offlineFeed) keepsCounts() bool                  { return f.sink != nil }
func (f *offlineFeed) webPosition(_, slowest int64) int64 { return slowest }

// offlineFeed feeds the encoder from the assembly, as far as every camera
// has been inspected.
type offlineFeed struct {
	sink   *encoderSink // nil: no marking unit
	enc    encoderFeed
	chunks []countChunk // counts not fed yet, oldest first
	free   chan []int64 // back to camera 0's detector
}

// countChunk is one block's encoder counts waiting to be fed offline.
type countChunk struct {
	counts []int64
	t0     time.Time
}

func (f *offlineFeed) inspected(counts []int64, t0 time.Time, slowest int64) {
	if len(counts) > 0 {
		f.chunks = append(f.chunks, countChunk{counts, t0})
	}
	if len(f.chunks) == 0 {
		return
	}
	f.sink.marks.WaitIdle(time.Second)
	for len(f.chunks) > 0 && slices.Max(f.chunks[0].counts) <= slowest {
		f.enc.observeCounts(f.sink, f.chunks[0].counts, f.chunks[0].t0)
		select {
		case f.free <- f.chunks[0].counts[:0]:
		default:
		}
		f.chunks[0] = countChunk{}
		f.chunks = f.chunks[1:]
	}
}

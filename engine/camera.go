package engine

import (
	"context"
	"errors"
	"io"
	"math"
	"time"

	"github.com/webinspect/webinspect/acquisition"
	"github.com/webinspect/webinspect/acquisition/ring"
	"github.com/webinspect/webinspect/rollmap"
)

// detMsg is what a camera's detect stage tells the assembly after each
// block.
type detMsg struct {
	cam       int
	regions   []region
	gaps      []gapRange
	frontier  int64 // math.MaxInt64 when the camera has ended
	firstSeen int64 // lowest count in this message (for the roll origin)
	lastCount int64 // highest accepted count so far
	hasCount  bool
	blockTime time.Time // source time of the block
	arrived   time.Time // wall time the block left the source
	end       bool
	err       error
	// counts are the block's encoder counts, for the marking feed of a
	// source that is not live (camera 0 only; see markFeed).
	counts []int64
	// edges[:nEdges] are the operator-side web edge's samples over the
	// block (camera 0 only; see webedge.go).
	edges  [maxEdgeSamples]edgeSample
	nEdges int
}

// acquire is camera i's producer: it never blocks on the pipeline.
func (e *Engine) acquire(ctx context.Context, i int) error {
	r, s := e.rings[i], e.streams[i]
	scratch := acquisition.NewBlock(e.info.LinesPerBlock, s.Camera().Width)
	var pending ring.Dropped
	var dl dropLog
	defer func() { dl.flush(e, i) }()
	for {
		slot := r.Reserve()
		if !e.info.Live {
			// Offline source: wait for the detector instead of dropping.
			for slot == nil {
				if err := ctx.Err(); err != nil {
					r.Close(pending)
					return err
				}
				time.Sleep(200 * time.Microsecond)
				slot = r.Reserve()
			}
		}
		dst := slot
		if dst == nil {
			dst = scratch
		}
		if !e.info.Live {
			if err := e.waitForSlowest(ctx, i); err != nil {
				r.Close(pending)
				return err
			}
		}
		err := s.ReadBlock(ctx, dst)
		if err == nil {
			e.read[i].Store(dst.FirstLine + int64(dst.Lines))
		} else {
			e.read[i].Store(math.MaxInt64)
			r.Close(pending)
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		dst.Arrived = time.Now()
		if i == 0 {
			e.feed.acquired(dst)
		}
		e.m.linesIn[i].Add(float64(dst.Lines))
		e.linesIn.Add(int64(dst.Lines))
		if slot == nil {
			pending.Add(dst)
			e.m.blocksDropped[i].Inc()
			e.m.linesDropped[i].Add(float64(dst.Lines))
			e.blocksDropped.Add(1)
			e.linesDropped.Add(int64(dst.Lines))
			dl.add(e, i, dst)
			continue
		}
		r.Commit(pending)
		pending = ring.Dropped{}
	}
}

// dropLog logs blocks dropped at the ring as they are dropped, from the
// acquire goroutine, rather than when the next block that got through
// reaches the assembly (which records the uninspected range with its roll
// position, and which may be many seconds behind when the pipeline is):
// the first drop at once, then at most one line per dropLogEvery per
// camera, each counting the drops since the line before; the drops not
// yet logged when the camera stops are logged then.
type dropLog struct {
	last          time.Time // when a line was logged
	blocks, lines int64     // dropped since then
	c0, c1        int64     // their encoder counts
	firstT        time.Time // when the first of them was dropped
}

const dropLogEvery = time.Second

func (d *dropLog) add(e *Engine, cam int, b *acquisition.Block) {
	now := time.Now()
	if b.Lines > 0 {
		if d.lines == 0 {
			d.c0 = b.Counts[0]
		}
		d.c1 = b.Counts[b.Lines-1]
	}
	if d.blocks == 0 {
		d.firstT = now
	}
	d.blocks++
	d.lines += int64(b.Lines)
	if now.Sub(d.last) >= dropLogEvery {
		d.flush(e, cam)
		d.last = now
	}
}

// flush logs the drops not logged yet.
func (d *dropLog) flush(e *Engine, cam int) {
	if d.blocks == 0 {
		return
	}
	mpc := e.info.MMPerCount
	e.log.Warn().Int("camera", cam).Int64("blocks", d.blocks).Int64("lines", d.lines).
		Int64("first_count", d.c0).Int64("last_count", d.c1).
		Float64("web_start_m", float64(d.c0)*mpc/1000).Float64("web_end_m", float64(d.c1)*mpc/1000).
		Time("first_drop", d.firstT).
		Msg("blocks dropped at the ring: the pipeline is behind; the range will be recorded as uninspected")
	d.blocks, d.lines = 0, 0
}

// cameraWorker is one camera's detect stage, the ring's consumer: it
// prepares each block's lines (linePrep), runs the camera's detectors over
// them and reports regions, gaps and its frontier to the assembly. It runs
// on its own goroutine and may block on the assembly's queue: that
// back-pressure fills the ring, which drops, so the camera never stalls.
type cameraWorker struct {
	cam   int // index in the source's streams
	info  acquisition.CameraInfo
	ring  *ring.Ring
	prep  *linePrep
	dets  []lineDetector // the threshold detector, then the model's
	model *modelDetector // nil without a model
	hist  *lineHistory   // nil when crops are off
	out   chan<- detMsg
	// freeRegions and freeCounts come back from the assembly, so the
	// steady state allocates nothing per block.
	freeRegions chan []region
	freeCounts  chan []int64
	keepCounts  bool        // pass each block's counts (offline marking feed)
	beforeBlock func(int)   // Options.BeforeBlock
	modelFailed func(error) // told once when the model detector stops
	failSeen    bool
	edgeBuf     [maxEdgeSamples]edgeSample // the web edge's samples, on their way into a detMsg
}

// run pops blocks until the producer has closed the ring and it is empty.
func (w *cameraWorker) run() {
	for {
		b, dropped, ok := w.ring.Pop()
		if ok {
			w.block(b, dropped)
			continue
		}
		// Wait for the producer, not for ctx: when inspection is stopped,
		// acquire closes the ring and every block already in it is still
		// inspected, so nothing read is silently lost.
		if err := w.ring.Wait(context.Background()); err != nil {
			w.end(err)
			return
		}
	}
}

// block inspects one block, after the gap of the blocks dropped before it.
func (w *cameraWorker) block(b *acquisition.Block, dropped ring.Dropped) {
	if w.beforeBlock != nil {
		w.beforeBlock(w.cam)
	}
	m := detMsg{firstSeen: math.MaxInt64, blockTime: b.Time, arrived: b.Arrived}
	select {
	case m.regions = <-w.freeRegions:
	default:
	}
	w.dropped(&m, dropped)
	if l := b.Lost; !l.Empty() {
		// Lines the camera itself lost (frames that never arrived whole)
		// just before this block.
		reason := reasonFrameLost
		if r, err := rollmap.ParseReason(l.Reason); err == nil {
			reason = r // e.g. source-error: the camera was gone and came back
		}
		w.gap(&m, l.FirstCount, l.LastCount, l.Lines, reason)
	}
	if b.Seam {
		// A joint between separately captured frames: the image is not
		// continuous across it, so no region or model run spans it.
		m.regions = w.flush(m.regions)
		for _, d := range w.dets {
			if s, ok := d.(seamer); ok {
				s.seam()
			}
		}
	}
	if b.Lines > 0 {
		m.firstSeen = min(m.firstSeen, b.Counts[0])
	}
	p := w.prep.prepare(b)
	for _, d := range w.dets {
		m.regions = d.process(m.regions, p)
	}
	w.checkModel()
	if w.cam == 0 {
		for _, d := range w.dets {
			if er, ok := d.(edgeReporter); ok {
				// Through the worker's buffer: &m.edges passed to an
				// interface method would move m to the heap.
				n := er.takeEdges(&w.edgeBuf)
				m.nEdges = copy(m.edges[:], w.edgeBuf[:n])
			}
		}
	}
	if w.hist != nil {
		w.hist.put(b)
	}
	if w.keepCounts {
		var buf []int64
		select {
		case buf = <-w.freeCounts:
		default:
		}
		m.counts = append(buf, b.Counts[:b.Lines]...)
	}
	w.ring.Release()
	m.frontier = w.frontier()
	w.send(m)
}

// edgeReporter is a detector that finds the web's operator-side edge (the
// threshold detector's edge search): camera 0 passes its samples on.
type edgeReporter interface {
	takeEdges(dst *[maxEdgeSamples]edgeSample) int
}

// seamer is a detector that keeps state across lines which a seam
// (acquisition.Block.Seam) invalidates: the threshold detector's background.
type seamer interface{ seam() }

// end reports the end of the camera's stream (err nil: it ran out).
func (w *cameraWorker) end(err error) {
	m := detMsg{firstSeen: math.MaxInt64, frontier: math.MaxInt64, end: true, err: err}
	if errors.Is(err, io.EOF) {
		m.err = nil
		w.dropped(&m, w.ring.Final())
	}
	m.regions = w.flush(m.regions)
	w.send(m)
}

// dropped records the blocks the ring dropped as a gap.
func (w *cameraWorker) dropped(m *detMsg, dr ring.Dropped) {
	if !dr.Empty() {
		w.gap(m, dr.FirstCount, dr.LastCount, dr.Lines, reasonDropped)
		if n := len(m.gaps); n > 0 && m.gaps[n-1].reason == reasonDropped {
			m.gaps[n-1].blocks = dr.Blocks
		}
	}
}

// gap is the one path for lines that never reach the detectors, whatever
// the cause: the image is not continuous across them, so every open
// region is closed; the gate moves past them; and the MD range they leave
// uninspected (what was not inspected before) goes to the assembly, which
// records it on the roll map with reason. first and last are the encoder
// counts of the first and the last line not inspected.
func (w *cameraWorker) gap(m *detMsg, first, last, lines int64, reason rollmap.Reason) {
	m.regions = w.flush(m.regions)
	if c0, c1, ok := w.prep.gap(first, last); ok {
		m.gaps = append(m.gaps, gapRange{cam: w.info.Index, c0: c0, c1: c1, lines: lines, reason: reason})
	}
	m.firstSeen = min(m.firstSeen, first, last)
}

// flush closes every detector's open regions.
func (w *cameraWorker) flush(dst []region) []region {
	for _, d := range w.dets {
		dst = d.flush(dst)
	}
	w.checkModel()
	return dst
}

// frontier is the smallest encoder count a region the camera reports
// later can start at.
func (w *cameraWorker) frontier() int64 {
	f := w.prep.frontier()
	for _, d := range w.dets {
		f = min(f, d.frontier())
	}
	return f
}

func (w *cameraWorker) send(m detMsg) {
	m.cam = w.cam
	m.lastCount, m.hasCount = w.prep.lastCount, w.prep.haveLast
	w.out <- m // may block: back-pressure lands on the ring, never on the camera
}

// checkModel tells of a model detector that stopped, once; the threshold
// detector goes on alone.
func (w *cameraWorker) checkModel() {
	if w.model == nil || w.failSeen || w.model.failure() == nil {
		return
	}
	w.failSeen = true
	w.modelFailed(w.model.failure())
}

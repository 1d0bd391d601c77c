// Package engine wires the inspection pipeline together: acquisition rings,
// detectors, defect assembly, classification and decisions, and the roll
// map sink.
//
// # Pipeline
//
//	stream ─▶ acquire ─▶ ring (SPSC, preallocated) ─▶ detect ─┐
//	stream ─▶ acquire ─▶ ring (SPSC, preallocated) ─▶ detect ─┼─▶ assemble ─▶ roll map, status, metrics
//	                                                            ┘  (bounded queue)
//
// One acquire and one detect goroutine run per camera. Acquire never blocks
// on the rest of the pipeline: it needs a free ring slot before the camera
// starts a block (as a frame grabber needs a free buffer before a frame),
// and when there is none the block is read into a scratch block and
// dropped. Drops are attached to the next block that gets through, so the
// detector learns of every gap in order and the assembler records it on the
// roll map as uninspected. Detect may block on the assembler's queue; that
// back-pressure fills the ring, which drops, so the camera is never stalled.
package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/webinspect/webinspect/engine/status"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/webinspect/webinspect/acquisition"
	"github.com/webinspect/webinspect/acquisition/ring"
	"github.com/webinspect/webinspect/marking"
	"github.com/webinspect/webinspect/model/infer"
	"github.com/webinspect/webinspect/model/onnx"
	"github.com/webinspect/webinspect/rollmap"
)

const maxCameras = 16

// regionsPerBlock is the room each recycled region slice starts with; a
// block with more regions grows its slice once, and it stays grown.
const regionsPerBlock = 32

// Errors returned by the engine.
var (
	// ErrConfig is wrapped by New when the options or the source are unusable.
	ErrConfig = errors.New("engine configuration")
	// ErrSource is wrapped by Run when a camera stream failed; everything
	// read before the failure has been inspected and recorded.
	ErrSource = errors.New("source failed")
)

// RollWriter receives the engine's results. *rollmap.Roll implements it.
// All calls come from one goroutine.
type RollWriter interface {
	ID() string
	AddDefects(ds ...rollmap.Defect) error
	AddUninspected(us ...rollmap.Uninspected) error
	SetLength(m float64)
	Flush() error
}

// markWriter is implemented by roll writers that keep mark events
// (*rollmap.Roll does); the engine records every mark status change there.
type markWriter interface {
	AddMarkEvents(evs ...rollmap.MarkEvent) error
}

// Options configures an Engine.
type Options struct {
	Recipe     *Recipe
	Source     acquisition.Source
	Roll       RollWriter
	Registerer prometheus.Registerer // may be nil
	Logger     zerolog.Logger
	// BeforeBlock, when set, is called by a camera's detector before each
	// block. Tests use it to slow the detector down on purpose.
	BeforeBlock func(camera int)
	// StartMDM is the roll position, in metres, of this session's first
	// line: 0 for a new roll, the restart position when a roll that was
	// open when the engine stopped is resumed.
	StartMDM float64
	// FirstDefectID is the highest defect ID already on the roll; new
	// defects are numbered after it.
	FirstDefectID int64
	// OnDefects, when set, is called from the assembler with each batch of
	// decided defects (already written to the roll). It must not keep the
	// slice, and must not block.
	OnDefects func([]rollmap.Defect)
	// NewRoll opens the roll that starts at a roll change (ChangeRoll),
	// with the requested ID ("" = generate one). Without it roll changes
	// are refused. The engine closes the ended roll itself (through
	// io.Closer when the writer has it).
	NewRoll func(id string) (RollWriter, error)
	// Model, when set, runs the ONNX anomaly detector beside the threshold
	// detector with the recipe's model options (see modeldet.go); the
	// engine does not close it. ModelName names it in each defect's
	// detector ("onnx:<name>").
	Model     *onnx.Model
	ModelName string
	// Images, when set and the recipe's images are enabled, archives a
	// crop of every defect (see images.go); the defect's ImageRef names it.
	Images ImageSink
	// OnRoll, when set, is called from the assembler when a roll is started
	// or closed by a roll change, or spliced. It must not block.
	OnRoll func(status.RollEvent)
}

// Engine runs one inspection from one source into one roll.
type Engine struct {
	opts    Options
	info    acquisition.Info
	streams []acquisition.Stream
	rings   []*ring.Ring
	m       *metrics
	log     zerolog.Logger

	linesIn, blocksDropped, linesDropped atomic.Int64

	// Marking: nil when the recipe's marking output is "none".
	marks     *marking.Scheduler
	simMarker *marking.SimMarker
	markEvts  chan marking.MarkEvent // from the scheduler to the assembler; never blocks the scheduler
	markLost  atomic.Int64           // mark events that did not fit in markEvts

	hist []*lineHistory // per camera, when crops are kept
	pool *infer.Pool    // the model detector's sessions, with Options.Model
	// Buffers going back from the assembler to camera i's detector, so the
	// steady state allocates nothing per block: region slices, and encoder
	// count copies (offline marking only).
	freeRegions []chan []region
	freeCounts  []chan []int64
	mdet        []*modelDetector

	// Roll changes and splices reach the assembler through ctl; assembled
	// is closed when the assembler has stopped.
	ctl       chan control
	assembled chan struct{}
	started   atomic.Bool

	mu      sync.Mutex
	status  status.Status
	current RollWriter // the roll being written
}

// detMsg is what a detector tells the assembler after each block.
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
	// source that is not live (camera 0 only).
	counts []int64
}

// New checks the options and prepares the rings.
func New(o Options) (*Engine, error) {
	if o.Recipe == nil || o.Source == nil || o.Roll == nil {
		return nil, fmt.Errorf("%w: recipe, source and roll are required", ErrConfig)
	}
	if err := o.Recipe.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	info := o.Source.Info()
	streams := o.Source.Streams()
	switch {
	case len(streams) == 0 || len(streams) != len(info.Cameras):
		return nil, fmt.Errorf("%w: source %s has %d streams for %d cameras", ErrConfig, info.Name, len(streams), len(info.Cameras))
	case len(streams) > maxCameras:
		return nil, fmt.Errorf("%w: source %s has %d cameras, at most %d are supported", ErrConfig, info.Name, len(streams), maxCameras)
	case info.MMPerCount <= 0 || info.CountsPerLine <= 0 || info.LinesPerBlock <= 0:
		return nil, fmt.Errorf("%w: source %s: mm_per_count (%g), counts_per_line (%d) and lines_per_block (%d) must be positive",
			ErrConfig, info.Name, info.MMPerCount, info.CountsPerLine, info.LinesPerBlock)
	}
	if o.StartMDM < 0 || o.FirstDefectID < 0 {
		return nil, fmt.Errorf("%w: start position %g m and first defect ID %d must not be negative", ErrConfig, o.StartMDM, o.FirstDefectID)
	}
	e := &Engine{opts: o, info: info, streams: streams, log: o.Logger,
		ctl: make(chan control), assembled: make(chan struct{}), current: o.Roll}
	for i, s := range streams {
		c := s.Camera()
		if c.Width <= 0 || c.PixelMM <= 0 {
			return nil, fmt.Errorf("%w: camera %d: width (%d px) and pixel_mm (%g) must be positive", ErrConfig, i, c.Width, c.PixelMM)
		}
		e.rings = append(e.rings, ring.New(o.Recipe.Pipeline.RingBlocks, info.LinesPerBlock, c.Width))
		nbuf := o.Recipe.Pipeline.ResultQueue + 2
		fr := make(chan []region, nbuf)
		for range nbuf {
			fr <- make([]region, 0, regionsPerBlock)
		}
		e.freeRegions = append(e.freeRegions, fr)
		e.freeCounts = append(e.freeCounts, make(chan []int64, nbuf))
		if o.Images != nil && o.Recipe.Images.Enabled {
			e.hist = append(e.hist, newLineHistory(historyLines(o.Recipe, info.LinesPerBlock), c.Width, int64(info.CountsPerLine)))
		}
	}
	var err error
	if e.m, err = newMetrics(o.Registerer, len(streams)); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	if o.Recipe.Marking.Output.Kind != marking.OutputNone {
		out, err := marking.NewOutput(o.Recipe.Marking, info.MMPerCount, o.Logger)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrConfig, err)
		}
		e.simMarker, _ = out.(*marking.SimMarker)
		e.markEvts = make(chan marking.MarkEvent, 4096)
		e.marks, err = marking.NewScheduler(o.Recipe.Marking, out, o.Registerer, o.Logger, func(ev marking.MarkEvent) {
			select {
			case e.markEvts <- ev:
			default:
				e.markLost.Add(1)
			}
		})
		if err != nil {
			if out != nil {
				out.Close()
			}
			return nil, fmt.Errorf("%w: %v", ErrConfig, err)
		}
	}
	if o.Model != nil {
		io, err := modelInferOptions(o.Recipe.Model, o.Model)
		if err != nil {
			e.closeMarking()
			return nil, fmt.Errorf("%w: %v", ErrConfig, err)
		}
		p, err := infer.NewPool(o.Model, io)
		if err != nil {
			e.closeMarking()
			return nil, fmt.Errorf("%w: model: %v", ErrConfig, err)
		}
		if o.Registerer != nil {
			_ = o.Registerer.Register(p.Collector())
		}
		name := o.ModelName
		if name == "" {
			name = "model"
		}
		e.pool = p
		for i, s := range streams {
			d, err := newModelDetector(p, s.Camera(), int64(info.CountsPerLine), "onnx:"+name)
			if err != nil {
				p.Close()
				e.closeMarking()
				return nil, fmt.Errorf("%w: model detector for camera %d: %v", ErrConfig, i, err)
			}
			e.mdet = append(e.mdet, d)
		}
	}
	e.status = status.Status{
		State: "starting", Source: info.Name, Recipe: o.Recipe.Name, Material: info.Material,
		RollID: o.Roll.ID(), Started: time.Now().UTC(), WebWidthMM: info.WebWidthMM,
		Cameras: len(streams), DefectsByClass: map[string]int64{}, Marks: map[string]int64{},
	}
	return e, nil
}

// Close releases what New set up when Run is never called (the model
// detector's ONNX Runtime sessions, the marking unit); Run releases them
// itself, and Close after Run does nothing.
func (e *Engine) Close() error {
	if e.started.Swap(true) {
		return nil
	}
	close(e.assembled) // ChangeRoll and Splice answer ErrNotRunning
	e.closeMarking()
	if e.pool != nil {
		return e.pool.Close()
	}
	return nil
}

// closeMarking releases the marking unit when New fails after setting it up.
func (e *Engine) closeMarking() {
	if e.marks != nil {
		e.marks.Close()
	}
}

// Status returns a snapshot of the engine's state.
func (e *Engine) Status() status.Status {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.status
	s.LinesIn, s.BlocksDropped, s.LinesDropped = e.linesIn.Load(), e.blocksDropped.Load(), e.linesDropped.Load()
	s.DefectsByClass = make(map[string]int64, len(e.status.DefectsByClass))
	for k, v := range e.status.DefectsByClass {
		s.DefectsByClass[k] = v
	}
	s.Marks = make(map[string]int64, len(e.status.Marks))
	for k, v := range e.status.Marks {
		s.Marks[k] = v
	}
	return s
}

// Run inspects until every stream has ended or ctx is cancelled. It
// returns nil when all streams ended cleanly, ctx.Err() when cancelled, and
// an error wrapping ErrSource naming each failed camera otherwise. In every
// case all data read before the end has been inspected, written to the roll
// and flushed.
func (e *Engine) Run(ctx context.Context) error {
	if e.started.Swap(true) {
		return fmt.Errorf("%w: Run was called twice", ErrConfig)
	}
	e.setState("running", "")
	msgs := make(chan detMsg, e.opts.Recipe.Pipeline.ResultQueue)
	srcErrs := make([]error, len(e.streams))
	var wg sync.WaitGroup
	for i := range e.streams {
		wg.Add(2)
		go func() { defer wg.Done(); srcErrs[i] = e.acquire(ctx, i) }()
		go func() { defer wg.Done(); e.detect(i, msgs) }()
	}
	go func() { wg.Wait(); close(msgs) }()
	rollErr := e.assemble(msgs, srcErrs)
	if e.pool != nil {
		if err := e.pool.Close(); err != nil {
			rollErr = errors.Join(rollErr, fmt.Errorf("model: %w", err))
		}
		for i, d := range e.mdet {
			if d.err != nil {
				rollErr = errors.Join(rollErr, fmt.Errorf("model detector, camera %d: %w", i, d.err))
			}
		}
	}

	var errs []error
	for i, err := range srcErrs {
		if err != nil && !errors.Is(err, context.Canceled) {
			errs = append(errs, fmt.Errorf("%w: camera %d: %w", ErrSource, i, err))
		}
	}
	if rollErr != nil {
		errs = append(errs, rollErr)
	}
	err := errors.Join(errs...)
	if err == nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		e.setState("failed", err.Error())
	} else {
		e.setState("stopped", "")
	}
	return err
}

func (e *Engine) setState(state, msg string) {
	e.mu.Lock()
	e.status.State, e.status.Error = state, msg
	e.mu.Unlock()
}

// acquire is camera i's producer: it never blocks on the pipeline.
func (e *Engine) acquire(ctx context.Context, i int) error {
	r, s := e.rings[i], e.streams[i]
	scratch := acquisition.NewBlock(e.info.LinesPerBlock, s.Camera().Width)
	var pending ring.Dropped
	var enc encoderFeed
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
		err := s.ReadBlock(ctx, dst)
		if err != nil {
			r.Close(pending)
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		dst.Arrived = time.Now()
		if i == 0 && e.marks != nil && e.info.Live {
			enc.observe(e, dst)
		}
		e.m.linesIn[i].Add(float64(dst.Lines))
		e.linesIn.Add(int64(dst.Lines))
		if slot == nil {
			pending.Add(dst)
			e.m.blocksDropped[i].Inc()
			e.m.linesDropped[i].Add(float64(dst.Lines))
			e.blocksDropped.Add(1)
			e.linesDropped.Add(int64(dst.Lines))
			continue
		}
		r.Commit(pending)
		pending = ring.Dropped{}
	}
}

// detect is camera i's consumer: it runs the threshold detector over each
// block and reports regions, gaps and its frontier to the assembler.
func (e *Engine) detect(i int, out chan<- detMsg) {
	r := e.rings[i]
	cam := e.streams[i].Camera()
	det := newThresholdDetector(cam, e.info, e.opts.Recipe.Threshold, e.ownedBand(i))
	var md *modelDetector
	if e.mdet != nil {
		md = e.mdet[i]
	}
	modelFailed := false
	checkModel := func() {
		if md == nil || md.err == nil || modelFailed {
			return
		}
		modelFailed = true
		msg := fmt.Sprintf("model detector on camera %d stopped: %v; the threshold detector goes on alone", i, md.err)
		e.log.Error().Err(md.err).Int("camera", i).Msg("model detector stopped; the threshold detector goes on alone")
		e.m.modelFailures.Inc()
		e.mu.Lock()
		e.status.Error = msg
		e.mu.Unlock()
	}
	frontier := func() int64 {
		f := det.frontier()
		if md != nil {
			f = min(f, md.frontier())
		}
		return f
	}
	send := func(m detMsg) {
		m.cam = i
		m.lastCount, m.hasCount = det.lastCount, det.haveLast
		out <- m // may block: back-pressure lands on the ring, never on the camera
	}
	handleDrop := func(m *detMsg, dr ring.Dropped) {
		if dr.Empty() {
			return
		}
		var g gapRange
		var ok bool
		if md != nil {
			m.regions = md.flush(m.regions)
		}
		m.regions, g, ok = det.gap(m.regions, dr)
		if ok {
			m.gaps = append(m.gaps, g)
		}
		m.firstSeen = min(m.firstSeen, dr.FirstCount, dr.LastCount)
	}
	for {
		b, dropped, ok := r.Pop()
		if !ok {
			// Wait for the producer, not for ctx: when inspection is
			// stopped, acquire closes the ring and every block already in
			// it is still inspected, so nothing read is silently lost.
			err := r.Wait(context.Background())
			if err == nil {
				continue
			}
			m := detMsg{firstSeen: math.MaxInt64, frontier: math.MaxInt64, end: true, err: err}
			if errors.Is(err, io.EOF) {
				m.err = nil
				handleDrop(&m, r.Final())
			}
			m.regions = det.flush(m.regions)
			if md != nil {
				m.regions = md.flush(m.regions)
				checkModel()
			}
			send(m)
			return
		}
		if e.opts.BeforeBlock != nil {
			e.opts.BeforeBlock(i)
		}
		m := detMsg{firstSeen: math.MaxInt64, blockTime: b.Time, arrived: b.Arrived}
		select {
		case m.regions = <-e.freeRegions[i]:
		default:
		}
		handleDrop(&m, dropped)
		if b.Lines > 0 {
			m.firstSeen = min(m.firstSeen, b.Counts[0])
		}
		m.regions = det.process(m.regions, b)
		if md != nil {
			m.regions = md.process(m.regions, b, det.corr, det.acc)
			checkModel()
		}
		if e.hist != nil {
			e.hist[i].put(b)
		}
		if i == 0 && e.marks != nil && !e.info.Live {
			var buf []int64
			select {
			case buf = <-e.freeCounts[i]:
			default:
			}
			m.counts = append(buf, b.Counts[:b.Lines]...)
		}
		r.Release()
		m.frontier = frontier()
		send(m)
	}
}

// markEvent records one mark status change. Late and missed marks are
// logged; they mean a defect left the line unmarked.
func (e *Engine) markEvent(rolls *rollSegs, ev marking.MarkEvent) {
	e.mu.Lock()
	e.status.Marks[ev.Status.String()]++
	e.mu.Unlock()
	seg := rolls.byID(ev.RollID)
	if seg == nil {
		e.m.rollErrors.Inc()
		e.log.Error().Str("roll", ev.RollID).Int64("defect", ev.DefectID).Str("status", ev.Status.String()).
			Msg("mark event for a roll that is already closed; not recorded")
	} else if mw, ok := seg.w.(markWriter); ok {
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
		if err := mw.AddMarkEvents(re); err != nil {
			e.m.rollErrors.Inc()
			e.log.Error().Err(err).Int64("defect", ev.DefectID).Msg("record mark event")
		}
	}
	switch ev.Status {
	case marking.StatusLate, marking.StatusMissed:
		e.log.Warn().Int64("defect", ev.DefectID).Str("head", ev.HeadName).Str("status", ev.Status.String()).
			Float64("md_m", ev.MDM).Float64("passed_by_mm", ev.PassedByMM).AnErr("cause", ev.Err).Msg("defect not marked")
	}
}

// ownedBand is the CD band camera i is counted for: its own span, with the
// overlap to each neighbour split in the middle.
func (e *Engine) ownedBand(i int) [2]float64 {
	cams := e.info.Cameras
	c := cams[i]
	lo, hi := c.OffsetMM, c.OffsetMM+float64(c.Width)*c.PixelMM
	if i > 0 {
		p := cams[i-1]
		pEnd := p.OffsetMM + float64(p.Width)*p.PixelMM
		if pEnd > lo {
			lo = (lo + pEnd) / 2
		}
	}
	if i+1 < len(cams) {
		n := cams[i+1]
		if n.OffsetMM < hi {
			hi = (hi + n.OffsetMM) / 2
		}
	}
	return [2]float64{lo, hi}
}

// assemble is the single consumer of all detectors: it builds defects,
// writes the roll map and keeps the status. It returns the first roll-map
// error (the engine keeps going after one, so nothing else is lost).
func (e *Engine) assemble(msgs <-chan detMsg, srcErrs []error) error {
	defer close(e.assembled)
	a := newAssembler(e.opts.Recipe, e.info)
	rolls := &rollSegs{e: e, a: a, segs: []*rollSeg{{
		w: e.opts.Roll, from: math.MinInt64, startM: e.opts.StartMDM, nextID: e.opts.FirstDefectID,
	}}}
	a.rolls = rolls
	flushEvery := time.Duration(e.opts.Recipe.Pipeline.FlushMillis) * time.Millisecond
	tick := time.NewTicker(flushEvery)
	defer tick.Stop()
	markLag := e.markLagCounts()

	var rollErr error
	note := func(err error, roll RollWriter, what string) {
		if err == nil {
			return
		}
		e.m.rollErrors.Inc()
		e.log.Error().Err(err).Str("roll", roll.ID()).Msg(what)
		if rollErr == nil {
			rollErr = fmt.Errorf("roll map %s: %s: %w", roll.ID(), what, err)
		}
	}
	var offlineEnc encoderFeed
	var offlineChunks []countChunk
	originSet := false
	var maxCount int64
	haveMax := false
	lastCount := make([]int64, len(e.streams))
	haveCam := make([]bool, len(e.streams))
	ended := make([]bool, len(e.streams))
	var speedT time.Time
	var speedC int64
	var uninspectedM float64

	// position is the count of the line the cameras see next.
	position := func() int64 { return maxCount + a.k }
	// markPosition is how far the web has run as the marking unit sees
	// it: the newest line on a live line; offline, where the encoder is
	// fed only as far as every camera has been inspected, the slowest
	// camera still running.
	markPosition := func() int64 {
		if e.info.Live {
			return maxCount
		}
		p := int64(math.MaxInt64)
		for c := range e.streams {
			switch {
			case ended[c]:
			case !haveCam[c]:
				return math.MinInt64
			default:
				p = min(p, lastCount[c])
			}
		}
		return p
	}
	lengthM := func() float64 {
		c := rolls.cur()
		if !haveMax {
			return c.startM
		}
		return c.mdM(position(), a.mpc)
	}
	crops := &cropper{e: e, hist: e.hist}
	emit := func() {
		ds := a.finalize()
		if len(ds) == 0 {
			return
		}
		if e.hist != nil {
			for i := range ds {
				d := &ds[i]
				c1 := d.EncoderCount + int64(math.Round((d.MDEndM-d.MDStartM)*1000/a.mpc)) - a.k
				crops.attach(d, c1)
			}
		}
		for rest := ds; len(rest) > 0; {
			n := defectsForSeg(rest)
			seg := rolls.byID(rest[0].RollID)
			if seg == nil {
				// Cannot happen: a roll is closed only once no defect can
				// start on it any more (see rolls.go). Say so loudly.
				e.m.rollErrors.Inc()
				e.log.Error().Str("roll", rest[0].RollID).Int("defects", n).Msg("defects decided for a roll that is already closed; not recorded")
				rest = rest[n:]
				continue
			}
			note(seg.w.AddDefects(rest[:n]...), seg.w, "add defects")
			if e.marks != nil {
				zero := seg.rollZero(a.mpc)
				for i := range rest[:n] {
					if _, err := e.marks.Schedule(rest[i], rest[i].EncoderCount, zero, a.mpc); err != nil {
						e.log.Error().Err(err).Int64("defect", rest[i].ID).Msg("schedule mark")
					}
				}
			}
			rest = rest[n:]
		}
		e.mu.Lock()
		cur := rolls.cur().w.ID()
		for _, d := range ds {
			if d.RollID == cur {
				e.status.Defects++
				e.status.DefectsByClass[d.Class]++
			}
		}
		e.mu.Unlock()
		for _, d := range ds {
			e.m.defect(d.Class)
		}
		if e.opts.OnDefects != nil {
			e.opts.OnDefects(ds)
		}
	}
	addGaps := func(gs []gapRange) {
		for _, g := range gs {
			rolls.splitGap(g, func(g gapRange, seg *rollSeg) {
				u := a.uninspected(g, seg)
				note(seg.w.AddUninspected(u), seg.w, "add uninspected range")
				if seg == rolls.cur() {
					uninspectedM += u.MDEndM - u.MDStartM
				}
				e.m.uninspectedM.Add(u.MDEndM - u.MDStartM)
				e.log.Warn().Str("roll", seg.w.ID()).Int("camera", g.cam).Float64("md_start_m", u.MDStartM).Float64("md_end_m", u.MDEndM).
					Int64("lines", g.lines).Str("reason", g.reason).Msg("uninspected range")
			})
		}
	}
	control := func(c control) {
		var r controlReply
		switch c.kind {
		case "change":
			old := rolls.cur()
			r.change, r.err = rolls.change(c.id, position(), haveMax)
			if r.err == nil {
				if old.closed {
					note(rolls.retireReady(0, 0, 0, false), old.w, "close ended roll") // drops it from the list
				}
				e.mu.Lock()
				e.status.UninspectedM, uninspectedM = 0, 0
				e.status.MDM = 0
				e.mu.Unlock()
			}
		case "splice":
			cur := rolls.cur()
			r.rollID, r.mdM = cur.w.ID(), lengthM()
			sp, ok := cur.w.(splicer)
			if !ok {
				r.err = fmt.Errorf("%w: roll %s cannot record splices", ErrConfig, cur.w.ID())
				break
			}
			now := time.Now().UTC()
			if r.err = sp.AddSplice(r.mdM, c.note, now); r.err == nil {
				e.log.Info().Str("roll", r.rollID).Float64("md_m", r.mdM).Str("note", c.note).Msg("splice")
				e.rollEvent(status.RollEvent{Kind: status.RollSplice, RollID: r.rollID, MDM: r.mdM, Time: now, Note: c.note})
			}
		}
		c.reply <- r
	}
	flushAll := func(what string) {
		cur := rolls.cur()
		cur.w.SetLength(lengthM())
		for _, s := range rolls.segs {
			note(s.w.Flush(), s.w, what)
		}
	}

	drainMarks := func() {
		for {
			select {
			case ev := <-e.markEvts:
				e.markEvent(rolls, ev)
			default:
				return
			}
		}
	}
	for {
		var m detMsg
		var ok bool
		select {
		case m, ok = <-msgs:
		case ev := <-e.markEvts: // nil channel when marking is off
			e.markEvent(rolls, ev)
			continue
		case c := <-e.ctl:
			control(c)
			continue
		case <-tick.C:
			flushAll("flush")
			if haveMax && len(rolls.segs) > 1 {
				note(rolls.retireReady(a.minFrontier(), markPosition(), markLag, false), rolls.segs[0].w, "close ended roll")
			}
			continue
		}
		if !ok {
			break
		}
		if !originSet && m.firstSeen != math.MaxInt64 {
			a.origin, originSet = m.firstSeen, true
			if s := rolls.segs[0]; s.from == math.MinInt64 {
				s.zero = a.origin
			}
			if s := rolls.cur(); s.from == math.MinInt64 {
				s.zero = a.origin // a roll change before the first line
			}
		}
		if m.hasCount && (!haveCam[m.cam] || m.lastCount > lastCount[m.cam]) {
			lastCount[m.cam], haveCam[m.cam] = m.lastCount, true
			if !haveMax || m.lastCount > maxCount {
				maxCount, haveMax = m.lastCount, true
			}
		}
		for _, g := range m.gaps {
			end := g.c1 - a.k
			if !haveMax || end > maxCount {
				maxCount, haveMax = end, true
			}
			if !haveCam[m.cam] || end > lastCount[m.cam] {
				lastCount[m.cam], haveCam[m.cam] = end, true
			}
		}
		addGaps(m.gaps)
		for _, r := range m.regions {
			a.add(r)
		}
		if cap(m.regions) > 0 {
			select {
			case e.freeRegions[m.cam] <- m.regions[:0]:
			default:
			}
		}
		a.setFrontier(m.cam, m.frontier)
		if m.end {
			ended[m.cam] = true
		}
		emit()
		if len(rolls.segs) > 1 {
			note(rolls.retireReady(a.minFrontier(), markPosition(), markLag, false), rolls.segs[0].w, "close ended roll")
		}
		if len(m.counts) > 0 {
			offlineChunks = append(offlineChunks, countChunk{m.counts, m.blockTime})
		}
		if len(offlineChunks) > 0 {
			// Not live: the web "moves" only as far as every camera has
			// been inspected, and only once the marks decided so far have
			// reached the device (see encoderFeed).
			limit := int64(math.MaxInt64)
			for c := range e.streams {
				switch {
				case ended[c]:
				case !haveCam[c]:
					limit = math.MinInt64
				default:
					limit = min(limit, lastCount[c])
				}
			}
			e.marks.WaitIdle(time.Second)
			for len(offlineChunks) > 0 && slices.Max(offlineChunks[0].counts) <= limit {
				offlineEnc.observeCounts(e, offlineChunks[0].counts, offlineChunks[0].t0)
				select {
				case e.freeCounts[0] <- offlineChunks[0].counts[:0]:
				default:
				}
				offlineChunks[0] = countChunk{}
				offlineChunks = offlineChunks[1:]
			}
		}
		if !m.arrived.IsZero() {
			e.m.latency.Observe(time.Since(m.arrived).Seconds())
		}
		// Status: position and speed from the encoder, on the source clock.
		e.mu.Lock()
		e.status.MDM = lengthM()
		if m.hasCount && !m.blockTime.IsZero() && m.cam == 0 {
			if speedT.IsZero() {
				speedT, speedC = m.blockTime, m.lastCount
			} else if dt := m.blockTime.Sub(speedT); dt >= time.Second {
				e.status.SpeedMPerMin = float64(m.lastCount-speedC) * a.mpc / 1000 / dt.Minutes()
				speedT, speedC = m.blockTime, m.lastCount
			}
		}
		e.status.UninspectedM = uninspectedM
		e.mu.Unlock()
	}

	// Every camera has ended: a camera that stopped early (its stream
	// failed or ran out) leaves the rest of the roll uninspected in its band.
	if haveMax {
		var gs []gapRange
		for i := range e.streams {
			start := a.origin
			if haveCam[i] {
				start = lastCount[i] + a.k
			}
			if start > maxCount {
				continue
			}
			reason := "camera-ended"
			if srcErrs[i] != nil {
				reason = string(rollmap.ReasonSourceError)
			}
			gs = append(gs, gapRange{cam: i, c0: start, c1: maxCount + a.k, lines: (maxCount + a.k - start) / a.k, reason: reason})
		}
		addGaps(gs)
	}
	if e.marks != nil {
		// Marks still pending when inspection ends can no longer be placed:
		// Close reports them missed.
		if err := e.marks.Close(); err != nil {
			e.log.Error().Err(err).Msg("close marking")
		}
		drainMarks()
		if n := e.markLost.Load(); n > 0 {
			e.log.Error().Int64("events", n).Msg("mark events lost: the event queue was full")
		}
	}
	// Rolls ended by a roll change are complete now: close them. The
	// current roll is the caller's to close (see Roll).
	if len(rolls.segs) > 1 {
		note(rolls.retireReady(0, 0, 0, true), rolls.segs[0].w, "close ended roll")
	}
	flushAll("final flush")
	e.mu.Lock()
	e.status.MDM = lengthM()
	e.status.UninspectedM = uninspectedM
	e.mu.Unlock()
	return rollErr
}

// SimMarker returns the simulated marker when the recipe's marking output
// is "sim", for tests and the demo; nil otherwise.
func (e *Engine) SimMarker() *marking.SimMarker { return e.simMarker }

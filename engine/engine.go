// Package engine is the inspection pipeline: acquisition rings, per-camera
// line preparation and detectors, defect assembly, classification and
// decisions, and the roll map sink. engine/DESIGN.md draws the stages and
// who owns which buffer.
//
// # Pipeline
//
//	stream ─▶ acquire ─▶ ring (SPSC, preallocated) ─▶ detect (prepare ─▶ detectors) ─┐
//	stream ─▶ acquire ─▶ ring (SPSC, preallocated) ─▶ detect (prepare ─▶ detectors) ─┼─▶ assembly ─▶ roll map, marks, status, metrics
//	                                                                                   ┘  (bounded queue)
//
// One acquire and one detect goroutine run per camera. Acquire never blocks
// on the rest of the pipeline: it needs a free ring slot before the camera
// starts a block (as a frame grabber needs a free buffer before a frame),
// and when there is none the block is read into a scratch block and
// dropped. Drops are attached to the next block that gets through, so the
// detect stage learns of every gap in order and the assembly records it on
// the roll map as uninspected. Detect may block on the assembly's queue;
// that back-pressure fills the ring, which drops, so the camera is never
// stalled.
package engine

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/webinspect/webinspect/engine/status"
	"github.com/webinspect/webinspect/internal/metricsreg"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/webinspect/webinspect/acquisition"
	"github.com/webinspect/webinspect/acquisition/ring"
	"github.com/webinspect/webinspect/marking"
	"github.com/webinspect/webinspect/model/classify"
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
	// OnDefects, when set, is called from the assembly with each batch of
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
	// RecipeVersion and ModelVersion are the version IDs of Recipe and
	// Model (rollmap/versions), stamped on every defect the engine
	// decides ("" leaves them empty, e.g. no model).
	RecipeVersion string
	ModelVersion  string
	// Classifier, when set, is the defect classifier learned from reviews
	// (learned.go); SetClassifier swaps it while the engine runs. One
	// trained on the taught model's scores needs Model, of version
	// ModelVersion (ErrConfig otherwise).
	Classifier *Classifier
	// OnRoll, when set, is called from the assembly when a roll is started
	// or closed by a roll change, or spliced. It must not block.
	OnRoll func(status.RollEvent)
}

// Engine runs one inspection from one source into one roll.
// Engine runs one inspection from one source into one roll.
type Engine struct {
	opts    Options
	info    acquisition.Info
	streams []acquisition.Stream
	rings   []*ring.Ring
	m       *metrics
	log     zerolog.Logger
	board   statusBoard
	learned learnedStage // the learned defect classifier, run by the assembly

	linesIn, blocksDropped, linesDropped atomic.Int64
	// read is the line sequence each camera has read up to (math.MaxInt64
	// once it ended); a source that is not live is read no more than
	// maxSkew lines ahead of its slowest camera (skew.go).
	read    []atomic.Int64
	maxSkew int64

	// Marking: marks and simMarker are nil when the recipe's marking
	// output is "none". feed is chosen once, by whether the source is live.
	marks     *marking.Scheduler
	simMarker *marking.SimMarker
	feed      markFeed
	markEvts  chan marking.MarkEvent // from the scheduler to the assembly; never blocks the scheduler
	markLost  atomic.Int64           // mark events that did not fit in markEvts

	hist []*lineHistory // per camera, when crops are kept
	pool *infer.Pool    // the model detector's sessions, with Options.Model
	mdet []*modelDetector
	// Buffers going back from the assembly to camera i's detect stage, so
	// the steady state allocates nothing per block: region slices, and
	// encoder count copies (offline marking only).
	freeRegions []chan []region
	freeCounts  []chan []int64

	// Roll changes and splices reach the assembly through ctl; assembled
	// is closed when the assembly has stopped.
	ctl       chan control
	assembled chan struct{}
	started   atomic.Bool
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
	if err := checkSource(info, streams); err != nil {
		return nil, err
	}
	// Before anything is allocated (see memory.go).
	if err := checkMemory(o.Recipe, info, o.Images != nil && o.Recipe.Images.Enabled); err != nil {
		return nil, err
	}
	if o.StartMDM < 0 || o.FirstDefectID < 0 {
		return nil, fmt.Errorf("%w: start position %g m and first defect ID %d must not be negative", ErrConfig, o.StartMDM, o.FirstDefectID)
	}
	e := &Engine{opts: o, info: info, streams: streams, log: o.Logger,
		ctl: make(chan control), assembled: make(chan struct{})}
	for i, s := range streams {
		if err := e.addCamera(i, s.Camera()); err != nil {
			return nil, err
		}
	}
	e.setSkew(historyLines(o.Recipe, info.LinesPerBlock), info.LinesPerBlock)
	var err error
	if e.m, err = newMetrics(o.Registerer, len(streams)); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	if err := e.newMarking(); err != nil {
		return nil, err
	}
	e.feed = newMarkFeed(info.Live, e.marks, e.simMarker, e.freeCounts[0])
	e.learned = learnedStage{recipe: o.Recipe, webWidthMM: info.WebWidthMM, log: o.Logger,
		seconds: e.m.classifySeconds, errors: e.m.classifyFailures, feats: make([]float32, 0, classify.NumFeatures)}
	if _, err := e.SetClassifier(o.Classifier); err != nil {
		e.closeMarking()
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if o.Model != nil {
		if err := e.newModel(); err != nil {
			e.closeMarking()
			return nil, err
		}
	}
	e.board.current = o.Roll
	e.board.s = status.Status{
		State: "starting", Source: info.Name, Recipe: o.Recipe.Name, Material: info.Material,
		RollID: o.Roll.ID(), Started: time.Now().UTC(), WebWidthMM: info.WebWidthMM,
		Cameras: len(streams), DefectsByClass: map[string]int64{}, Marks: map[string]int64{},
	}
	return e, nil
}

// checkSource checks the source's streams and geometry.
func checkSource(info acquisition.Info, streams []acquisition.Stream) error {
	if len(streams) != len(info.Cameras) {
		return fmt.Errorf("%w: source %s has %d streams for %d cameras", ErrConfig, info.Name, len(streams), len(info.Cameras))
	}
	return checkGeometry(info)
}

// checkGeometry checks the source's cameras and encoder.
func checkGeometry(info acquisition.Info) error {
	switch {
	case len(info.Cameras) == 0:
		return fmt.Errorf("%w: source %s has no cameras", ErrConfig, info.Name)
	case len(info.Cameras) > maxCameras:
		return fmt.Errorf("%w: source %s has %d cameras, at most %d are supported", ErrConfig, info.Name, len(info.Cameras), maxCameras)
	case info.MMPerCount <= 0 || info.CountsPerLine <= 0 || info.LinesPerBlock <= 0:
		return fmt.Errorf("%w: source %s: mm_per_count (%g), counts_per_line (%d) and lines_per_block (%d) must be positive",
			ErrConfig, info.Name, info.MMPerCount, info.CountsPerLine, info.LinesPerBlock)
	}
	for i, c := range info.Cameras {
		if c.Width <= 0 || c.PixelMM <= 0 {
			return fmt.Errorf("%w: camera %d: width (%d px) and pixel_mm (%g) must be positive", ErrConfig, i, c.Width, c.PixelMM)
		}
	}
	return nil
}

// addCamera sets up camera i's ring, recycled buffers and line history.
func (e *Engine) addCamera(i int, c acquisition.CameraInfo) error {
	if c.Width <= 0 || c.PixelMM <= 0 {
		return fmt.Errorf("%w: camera %d: width (%d px) and pixel_mm (%g) must be positive", ErrConfig, i, c.Width, c.PixelMM)
	}
	r := e.opts.Recipe
	e.rings = append(e.rings, ring.New(r.Pipeline.RingBlocks, e.info.LinesPerBlock, c.Width))
	nbuf := r.Pipeline.ResultQueue + 2
	fr := make(chan []region, nbuf)
	for range nbuf {
		fr <- make([]region, 0, regionsPerBlock)
	}
	e.freeRegions = append(e.freeRegions, fr)
	e.freeCounts = append(e.freeCounts, make(chan []int64, nbuf))
	if e.opts.Images != nil && r.Images.Enabled {
		e.hist = append(e.hist, newLineHistory(historyLines(r, e.info.LinesPerBlock), c.Width, int64(e.info.CountsPerLine)))
	}
	return nil
}

// newMarking sets up the marking unit, unless the recipe's output is "none".
func (e *Engine) newMarking() error {
	mo := e.opts.Recipe.Marking
	if mo.Output.Kind == marking.OutputNone {
		return nil
	}
	out, err := marking.NewOutput(mo, e.info.MMPerCount, e.log)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrConfig, err)
	}
	e.simMarker, _ = out.(*marking.SimMarker)
	e.markEvts = make(chan marking.MarkEvent, 4096)
	e.marks, err = marking.NewScheduler(mo, out, e.opts.Registerer, e.log, func(ev marking.MarkEvent) {
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
		return fmt.Errorf("%w: %v", ErrConfig, err)
	}
	return nil
}

// newModel sets up the model detector's pool and one detector per camera.
func (e *Engine) newModel() error {
	io, err := modelInferOptions(e.opts.Recipe.Model, e.opts.Model)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrConfig, err)
	}
	p, err := infer.NewPool(e.opts.Model, io)
	if err != nil {
		return fmt.Errorf("%w: model: %v", ErrConfig, err)
	}
	// The pool's collector reports this engine's model: a new engine on
	// the same registry (a roll resumed in-process) replaces the old one.
	if err := metricsreg.Replace(e.opts.Registerer, p.Collector()); err != nil {
		p.Close()
		return fmt.Errorf("%w: model metrics: %v", ErrConfig, err)
	}
	name := e.opts.ModelName
	if name == "" {
		name = "model"
	}
	e.pool = p
	for i, s := range e.streams {
		strip := cameraStrip(e.info.Cameras, i)
		d, err := newModelDetector(p, s.Camera(), int64(e.info.CountsPerLine), rollmap.ModelDetector(name), strip)
		if err != nil {
			p.Close()
			return fmt.Errorf("%w: model detector for camera %d: %v", ErrConfig, i, err)
		}
		e.mdet = append(e.mdet, d)
	}
	return nil
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
	s := e.board.snapshot()
	s.LinesIn, s.BlocksDropped, s.LinesDropped = e.linesIn.Load(), e.blocksDropped.Load(), e.linesDropped.Load()
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
	e.board.setState("running", "")
	msgs := make(chan detMsg, e.opts.Recipe.Pipeline.ResultQueue)
	srcErrs := make([]error, len(e.streams))
	var wg sync.WaitGroup
	for i := range e.streams {
		w := e.newCameraWorker(i, msgs)
		wg.Add(2)
		go func() { defer wg.Done(); srcErrs[i] = e.acquire(ctx, i) }()
		go func() { defer wg.Done(); w.run() }()
	}
	go func() { wg.Wait(); close(msgs) }()
	rollErr := func() error {
		defer close(e.assembled)
		return e.newAssembly().run(msgs, srcErrs)
	}()
	rollErr = errors.Join(rollErr, e.closeModel())
	err := runError(srcErrs, rollErr)
	if err == nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		e.board.setState("failed", err.Error())
	} else {
		e.board.setState("stopped", "")
	}
	return err
}

// closeModel closes the model detector's pool and returns its errors and
// the errors that stopped a camera's model detector.
func (e *Engine) closeModel() error {
	if e.pool == nil {
		return nil
	}
	var errs []error
	if err := e.pool.Close(); err != nil {
		errs = append(errs, fmt.Errorf("model: %w", err))
	}
	for i, d := range e.mdet {
		if d.err != nil {
			errs = append(errs, fmt.Errorf("model detector, camera %d: %w", i, d.err))
		}
	}
	return errors.Join(errs...)
}

// runError is Run's error: each failed camera's, then the roll map's.
func runError(srcErrs []error, rollErr error) error {
	var errs []error
	for i, err := range srcErrs {
		if err != nil && !errors.Is(err, context.Canceled) {
			errs = append(errs, fmt.Errorf("%w: camera %d: %w", ErrSource, i, err))
		}
	}
	if rollErr != nil {
		errs = append(errs, rollErr)
	}
	return errors.Join(errs...)
}

// newCameraWorker sets up camera i's detect stage.
func (e *Engine) newCameraWorker(i int, out chan<- detMsg) *cameraWorker {
	cam := e.streams[i].Camera()
	strip := cameraStrip(e.info.Cameras, i)
	w := &cameraWorker{
		cam: i, info: cam, ring: e.rings[i], out: out,
		prep:        newLinePrep(cam, e.info, e.opts.Recipe.Threshold.FlatFieldTarget, strip),
		dets:        []lineDetector{newThresholdDetector(cam, e.info, e.opts.Recipe.Threshold, strip)},
		freeRegions: e.freeRegions[i], freeCounts: e.freeCounts[i],
		keepCounts:  i == 0 && e.feed.keepsCounts(),
		beforeBlock: e.opts.BeforeBlock,
		modelFailed: func(err error) { e.modelFailed(i, err) },
	}
	if e.mdet != nil {
		w.model = e.mdet[i]
		w.dets = append(w.dets, w.model)
	}
	if e.hist != nil {
		w.hist = e.hist[i]
	}
	return w
}

// modelFailed tells of camera i's model detector stopping.
func (e *Engine) modelFailed(i int, err error) {
	e.log.Error().Err(err).Int("camera", i).Msg("model detector stopped; the threshold detector goes on alone")
	e.m.modelFailures.Inc()
	e.board.setError(fmt.Sprintf("model detector on camera %d stopped: %v; the threshold detector goes on alone", i, err))
}

// newAssembly sets up the assembly stage for Run.
func (e *Engine) newAssembly() *assembly {
	r := e.opts.Recipe
	mg := newMerger(r, e.info).withModelReach(e.opts.Model)
	a := &assembly{
		info: e.info, k: mg.k, mpc: mg.mpc, log: e.log, m: e.m, board: &e.board,
		merge: mg, pos: newMDPosition(len(e.streams), mg.k),
		feed: e.feed, marks: e.marks, markEvts: e.markEvts, markLost: e.markLost.Load, markLag: e.markLagCounts(),
		ctl: e.ctl, freeRegions: e.freeRegions, onDefects: e.opts.OnDefects,
		recipeVersion: e.opts.RecipeVersion, modelVersion: e.opts.ModelVersion, learned: &e.learned,
		flushEvery: time.Duration(r.Pipeline.FlushMillis) * time.Millisecond,
	}
	env := rollEnv{log: e.log, rollErrors: e.m.rollErrors, newRoll: e.opts.NewRoll, onRoll: e.opts.OnRoll, current: e.board.rollStarted}
	a.rolls = newRollSegs(env, mg.mpc, mg.k, &rollSeg{
		w: e.opts.Roll, from: math.MinInt64, startM: e.opts.StartMDM, nextID: e.opts.FirstDefectID,
	}, mg.startsBefore)
	mg.rolls = a.rolls
	if e.hist != nil {
		a.crops = &cropper{hist: e.hist, cameras: e.info.Cameras, opts: r.Images, sink: e.opts.Images,
			linesMissing: e.m.cropLinesMissing, skipped: e.m.imagesSkipped, reasons: e.m.skipReasons}
	}
	return a
}

// markLagCounts is how far the web must run past a roll's end before the
// roll's last marks have fired: marker distance + tolerance + 1 m.
func (e *Engine) markLagCounts() int64 {
	if e.marks == nil {
		return 0
	}
	mk := e.opts.Recipe.Marking
	return int64(math.Ceil((mk.MarkerDistanceMM + mk.ToleranceMM + 1000) / e.info.MMPerCount))
}

// SimMarker returns the simulated marker when the recipe's marking output
// is "sim", for tests and the demo; nil otherwise.
func (e *Engine) SimMarker() *marking.SimMarker { return e.simMarker }

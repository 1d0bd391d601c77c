package engine

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/webinspect/webinspect/bench/score"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"

	"github.com/webinspect/webinspect/acquisition"
	"github.com/webinspect/webinspect/acquisition/sim"
	"github.com/webinspect/webinspect/internal/long"
	"github.com/webinspect/webinspect/rollmap"
)

// memRoll is an in-memory RollWriter.
type memRoll struct {
	id      string // "" = "test-roll"
	closed  bool
	splices []spliceRec
	mu      sync.Mutex
	defects []rollmap.Defect
	unins   []rollmap.Uninspected
	lengthM float64
	flushes int
}

func (m *memRoll) ID() string {
	if m.id == "" {
		return "test-roll"
	}
	return m.id
}
func (m *memRoll) Close() error { m.mu.Lock(); m.closed = true; m.mu.Unlock(); return nil }
func (m *memRoll) AddDefects(ds ...rollmap.Defect) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.defects = append(m.defects, ds...)
	return nil
}
func (m *memRoll) AddUninspected(us ...rollmap.Uninspected) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.unins = append(m.unins, us...)
	return nil
}
func (m *memRoll) SetLength(v float64) { m.mu.Lock(); m.lengthM = v; m.mu.Unlock() }
func (m *memRoll) Flush() error        { m.mu.Lock(); m.flushes++; m.mu.Unlock(); return nil }

// testSimConfig is a narrow, short web so that the race-enabled test suite
// stays fast; it keeps two cameras with an overlap and the default resolution.
func testSimConfig(material string, seed int64) sim.Config {
	cfg := sim.DefaultConfig()
	cfg.Material = material
	cfg.Seed = seed
	cfg.WidthMM = 400
	cfg.LengthM = 30
	cfg.Defects = 14
	return cfg
}

func runSim(t *testing.T, cfg sim.Config, recipe *Recipe, o Options) (*memRoll, *sim.Sim, error) {
	t.Helper()
	return runSimWith(t, cfg, recipe, o, nil)
}

// runSimEngine is runSim for tests that need the engine afterwards.
func runSimEngine(t *testing.T, cfg sim.Config, recipe *Recipe, got func(*Engine)) (*memRoll, *sim.Sim, error) {
	t.Helper()
	return runSimWith(t, cfg, recipe, Options{}, got)
}

func runSimWith(t *testing.T, cfg sim.Config, recipe *Recipe, o Options, got func(*Engine)) (*memRoll, *sim.Sim, error) {
	t.Helper()
	s, err := sim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if recipe == nil {
		if recipe, err = DefaultRecipe(cfg.Material); err != nil {
			t.Fatal(err)
		}
	}
	roll := &memRoll{}
	o.Recipe, o.Source, o.Roll = recipe, s, roll
	o.Logger = zerolog.Nop()
	e, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	if got != nil {
		got(e)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute) // a hang guard, not a speed budget
	defer cancel()
	err = e.Run(ctx)
	return roll, s, err
}

func scoreRoll(t *testing.T, cfg sim.Config, recipe *Recipe, roll *memRoll, truth []sim.Truth) score.Score {
	t.Helper()
	if recipe == nil {
		recipe, _ = DefaultRecipe(cfg.Material)
	}
	return score.Detections(truth, roll.defects, score.Options{
		MinSizeMM: recipe.Threshold.MinSizeMM, LineMM: cfg.LineMM, PixelMM: cfg.PixelMM, LengthM: cfg.LengthM,
	})
}

func assertAccuracy(t *testing.T, s score.Score, lengthM float64) {
	t.Helper()
	t.Log(s.String())
	if s.Eligible == 0 {
		t.Fatal("no truth defects at or above the minimum size: the test proves nothing")
	}
	if s.Recall < 0.98 {
		for _, m := range s.Missed {
			t.Errorf("missed truth %d %s %s size %.2f mm contrast %.0f md %.4f-%.4f cd %.1f-%.1f", m.ID, m.Class, m.Polarity, m.SizeMM, m.Contrast, m.MDStartM, m.MDEndM, m.CDStartMM, m.CDEndMM)
		}
		for _, m := range s.Misplaced {
			t.Errorf("misplaced: %s", m)
		}
		t.Errorf("recall %.3f < 0.98", s.Recall)
	}
	// At most 1 false defect per 100 m, counted on this run's length.
	if allowed := math.Max(1, lengthM/100); float64(s.False) > allowed {
		for _, d := range s.FalseDefects {
			t.Errorf("false defect %d %s md %.4f-%.4f cd %.1f-%.1f peak %.0f area %.2f", d.ID, d.Class, d.MDStartM, d.MDEndM, d.CDStartMM, d.CDEndMM, d.PeakScore, d.AreaMM2)
		}
		t.Errorf("%d false defects in %.0f m (allowed %.0f)", s.False, lengthM, allowed)
	}
	if s.MaxMDErrMM > s.MDLimitMM || s.MaxCDErrMM > s.CDLimitMM {
		t.Errorf("position error MD %.3f mm (limit %.3f), CD %.3f mm (limit %.3f)", s.MaxMDErrMM, s.MDLimitMM, s.MaxCDErrMM, s.CDLimitMM)
	}
}

func TestDetectionAccuracyAllMaterials(t *testing.T) {
	for _, material := range []string{"fabric", "leather", "film"} {
		for _, seed := range []int64{7, 11} {
			t.Run(fmt.Sprintf("material=%s/seed=%d", material, seed), func(t *testing.T) {
				if seed != 7 {
					long.Skip(t, "a second seed per material")
				}
				if testing.Short() && material != "fabric" {
					t.Skip("-short: fabric only")
				}
				t.Parallel()
				cfg := testSimConfig(material, seed)
				roll, s, err := runSim(t, cfg, nil, Options{})
				if err != nil {
					t.Fatal(err)
				}
				assertAccuracy(t, scoreRoll(t, cfg, nil, roll, s.Truth()), cfg.LengthM)
				if len(roll.unins) != 0 {
					t.Errorf("offline run recorded uninspected ranges: %+v", roll.unins)
				}
				if math.Abs(roll.lengthM-cfg.LengthM) > 0.01 {
					t.Errorf("roll length %.4f m, simulated %.4f m", roll.lengthM, cfg.LengthM)
				}
			})
		}
	}
}

func TestDetectionAccuracyWithStopAndJogBack(t *testing.T) {
	for _, material := range []string{"fabric", "leather", "film"} {
		t.Run("material="+material, func(t *testing.T) {
			if testing.Short() && material != "fabric" {
				t.Skip("-short: fabric only")
			}
			t.Parallel()
			cfg := testSimConfig(material, 5)
			cfg.Motion = acquisition.StopAndJog(cfg.SpeedMPerMin, cfg.LengthM/2, 2, 0.5)
			roll, s, err := runSim(t, cfg, nil, Options{})
			if err != nil {
				t.Fatal(err)
			}
			assertAccuracy(t, scoreRoll(t, cfg, nil, roll, s.Truth()), cfg.LengthM)
			// The jog must not make a defect appear twice.
			ids := map[string]int{}
			for _, d := range roll.defects {
				ids[fmt.Sprintf("%.4f/%.1f", d.MDStartM, d.CDStartMM)]++
			}
			for k, n := range ids {
				if n > 1 {
					t.Errorf("defect at %s reported %d times after the jog", k, n)
				}
			}
		})
	}
}

// blockLog wraps a source and records the count range of every block each
// camera delivered.
type blockLog struct {
	acquisition.Source
	mu     sync.Mutex
	blocks map[int][][2]int64
}

type loggedStream struct {
	acquisition.Stream
	log *blockLog
}

func (l *blockLog) Streams() []acquisition.Stream {
	var out []acquisition.Stream
	for _, s := range l.Source.Streams() {
		out = append(out, loggedStream{s, l})
	}
	return out
}

func (s loggedStream) ReadBlock(ctx context.Context, dst *acquisition.Block) error {
	err := s.Stream.ReadBlock(ctx, dst)
	if err == nil && dst.Lines > 0 {
		s.log.mu.Lock()
		s.log.blocks[dst.Camera] = append(s.log.blocks[dst.Camera], [2]int64{dst.Counts[0], dst.Counts[dst.Lines-1]})
		s.log.mu.Unlock()
	}
	return err
}

// liveFilm is a real-time simulated film line of lengthM at 600 m/min,
// closed at the end of the test.
func liveFilm(t *testing.T, lengthM float64) (sim.Config, *sim.Sim) {
	t.Helper()
	cfg := testSimConfig("film", 3)
	cfg.LengthM = lengthM
	cfg.SpeedMPerMin = 600
	cfg.Realtime = true
	s, err := sim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return cfg, s
}

func TestDroppedBlocksBecomeExactUninspectedRanges(t *testing.T) {
	cfg, s := liveFilm(t, 12)
	if !s.Info().Live {
		t.Fatal("a real-time simulator must be a live source")
	}
	src := &blockLog{Source: s, blocks: map[int][][2]int64{}}
	recipe, _ := DefaultRecipe("film")
	recipe.Pipeline.RingBlocks = 2
	reg := prometheus.NewRegistry()
	roll := &memRoll{}
	var mu sync.Mutex
	seen := map[int]int{}
	e, err := New(Options{Recipe: recipe, Source: src, Roll: roll, Registerer: reg, Logger: zerolog.Nop(),
		BeforeBlock: func(cam int) {
			mu.Lock()
			seen[cam]++
			n := seen[cam]
			mu.Unlock()
			if n%20 == 10 { // stall the detector now and then, much longer than a block takes
				time.Sleep(60 * time.Millisecond)
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	dropped := testutil.ToFloat64(mustCounterSum(t, reg, "webinspect_blocks_dropped_total"))
	droppedLines := testutil.ToFloat64(mustCounterSum(t, reg, "webinspect_lines_dropped_total"))
	if dropped == 0 {
		t.Fatal("the slowed detector dropped nothing: the test proves nothing")
	}
	if st := e.Status(); float64(st.BlocksDropped) != dropped {
		t.Errorf("status says %d blocks dropped, metrics %v", st.BlocksDropped, dropped)
	}
	lineMM := cfg.LineMM
	k := int64(cfg.CountsPerLine)
	mpc := cfg.LineMM / float64(cfg.CountsPerLine)
	var unLines int64
	for _, u := range roll.unins {
		if u.Reason != rollmap.ReasonDropped {
			t.Errorf("unexpected uninspected range %+v", u)
			continue
		}
		unLines += u.Lines
		// Each range must start at a block's first line and end at a block's last line.
		c0 := int64(math.Round(u.MDStartM * 1000 / mpc))
		c1 := int64(math.Round(u.MDEndM*1000/mpc)) - k
		starts, ends := false, false
		for _, b := range src.blocks[u.Camera] {
			starts = starts || b[0] == c0
			ends = ends || b[1] == c1
		}
		if !starts || !ends {
			t.Errorf("uninspected range %+v does not align with dropped block boundaries", u)
		}
		if got := (u.MDEndM - u.MDStartM) * 1000 / lineMM; math.Abs(got-float64(u.Lines)) > 0.01 {
			t.Errorf("uninspected range %+v spans %.2f lines but claims %d", u, got, u.Lines)
		}
		cam := s.Info().Cameras[u.Camera]
		if u.CDStartMM > cam.OffsetMM+0.001 || u.CDEndMM < math.Min(cam.OffsetMM+float64(cam.Width)*cam.PixelMM, cfg.WidthMM)-0.001 {
			t.Errorf("uninspected range %+v does not cover camera %d's band", u, u.Camera)
		}
	}
	if float64(unLines) != droppedLines {
		t.Errorf("uninspected ranges cover %d lines, metrics count %v dropped lines", unLines, droppedLines)
	}
	// Nothing inspected may be claimed uninspected and vice versa: the
	// uninspected lines plus the inspected ones make up every line read.
	var readLines int64
	for cam := range src.blocks {
		for _, b := range src.blocks[cam] {
			readLines += (b[1]-b[0])/k + 1
		}
	}
	if st := e.Status(); st.LinesIn != readLines {
		t.Errorf("status lines in %d, source delivered %d", st.LinesIn, readLines)
	}
	t.Logf("%v blocks (%v lines) dropped in %d ranges", dropped, droppedLines, len(roll.unins))
}

func mustCounterSum(t *testing.T, reg *prometheus.Registry, name string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	found := false
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		found = true
		for _, m := range mf.GetMetric() {
			sum += m.GetCounter().GetValue()
		}
	}
	if !found {
		t.Fatalf("metric %s not registered", name)
	}
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "sum"})
	c.Add(sum)
	return c
}

func TestDefectsComeOutInMDOrderWithUniqueIDs(t *testing.T) {
	cfg := testSimConfig("fabric", 21)
	roll, _, err := runSim(t, cfg, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(roll.defects) == 0 {
		t.Fatal("no defects")
	}
	ids := map[int64]bool{}
	for _, d := range roll.defects {
		if ids[d.ID] {
			t.Errorf("duplicate defect ID %d", d.ID)
		}
		ids[d.ID] = true
		if d.RollID != "test-roll" || d.Class == "" || d.Decision == "" || d.Severity == "" || d.Detector != "threshold" {
			t.Errorf("incomplete defect record %+v", d)
		}
		if d.MDEndM <= d.MDStartM || d.CDEndMM <= d.CDStartMM || d.AreaMM2 <= 0 {
			t.Errorf("degenerate defect %+v", d)
		}
	}
	sorted := sort.SliceIsSorted(roll.defects, func(i, j int) bool { return roll.defects[i].ID < roll.defects[j].ID })
	if !sorted {
		t.Error("defects not appended in ID order")
	}
}

// failingStream ends with an error after n blocks.
type failingSource struct {
	acquisition.Source
	n   int
	err error
}
type failingStream struct {
	acquisition.Stream
	left *int
	err  error
}

func (f *failingSource) Streams() []acquisition.Stream {
	var out []acquisition.Stream
	for i, s := range f.Source.Streams() {
		left := f.n
		if i > 0 {
			left = 1 << 30
		}
		out = append(out, failingStream{s, &left, f.err})
	}
	return out
}

func (s failingStream) ReadBlock(ctx context.Context, dst *acquisition.Block) error {
	if *s.left == 0 {
		return s.err
	}
	*s.left--
	return s.Stream.ReadBlock(ctx, dst)
}

func TestSourceFailureKeepsEverythingBeforeAndMarksTheRestUninspected(t *testing.T) {
	cfg := testSimConfig("fabric", 9)
	cfg.LengthM = 10
	s, err := sim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	boom := fmt.Errorf("camera 0 unplugged: %w", acquisition.ErrTruncated)
	src := &failingSource{Source: s, n: 40, err: boom}
	recipe, _ := DefaultRecipe("fabric")
	roll := &memRoll{}
	e, err := New(Options{Recipe: recipe, Source: src, Roll: roll, Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	err = e.Run(context.Background())
	if !errors.Is(err, ErrSource) || !errors.Is(err, acquisition.ErrTruncated) {
		t.Fatalf("Run error %v does not report the source failure", err)
	}
	var gap *rollmap.Uninspected
	for i := range roll.unins {
		if roll.unins[i].Camera == 0 && roll.unins[i].Reason == rollmap.ReasonSourceError {
			gap = &roll.unins[i]
		}
	}
	if gap == nil {
		t.Fatalf("no uninspected range for the failed camera: %+v", roll.unins)
	}
	failM := float64(40*cfg.LinesPerBlock) * cfg.LineMM / 1000
	if math.Abs(gap.MDStartM-failM) > 1e-6 || math.Abs(gap.MDEndM-cfg.LengthM) > 0.01 {
		t.Errorf("gap %.4f-%.4f m, want %.4f-%.4f", gap.MDStartM, gap.MDEndM, failM, cfg.LengthM)
	}
	if e.Status().State != "failed" {
		t.Errorf("state %q after a source failure", e.Status().State)
	}
}

package infer

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/webinspect/webinspect/acquisition"
	"github.com/webinspect/webinspect/kernels"
	"github.com/webinspect/webinspect/model/onnx"
	"github.com/webinspect/webinspect/model/onnx/ortest"
)

// loadModel builds the scoring graph for th×tw tiles with the given box
// smoothing, writes it with an optional sidecar threshold and loads it
// for batches up to batch.
func loadModel(tb testing.TB, th, tw, smooth, batch int, thr *float64) *onnx.Model {
	tb.Helper()
	ortest.Require(tb)
	spec := onnx.DefaultScoringModelSpec()
	spec.Height, spec.Width, spec.Smooth = th, tw, smooth
	b, err := onnx.BuildScoringModel(spec)
	if err != nil {
		tb.Fatal(err)
	}
	sc := spec.Sidecar()
	sc.Threshold = thr
	dir := tb.TempDir()
	if err := onnx.WriteModelDir(dir, b, sc); err != nil {
		tb.Fatal(err)
	}
	mo := onnx.DefaultModelOptions()
	mo.Batch = batch
	m, err := onnx.Load(dir, mo)
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

func newPool(tb testing.TB, m *onnx.Model, o Options) *Pool {
	tb.Helper()
	p, err := NewPool(m, o)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := p.Close(); err != nil {
			tb.Error(err)
		}
	})
	return p
}

func newDetector(tb testing.TB, p *Pool, width int) *Detector {
	tb.Helper()
	d, err := p.NewDetector(width)
	if err != nil {
		tb.Fatal(err)
	}
	return d
}

// fabric returns h lines of w pixels of faint texture (118..138): the
// scoring graph (mean 0.5, std 0.1, 3×3 box) scores it below 0.5.
func fabric(rng *rand.Rand, w, h int) []uint8 {
	f := make([]uint8, w*h)
	for i := range f {
		f[i] = uint8(118 + rng.IntN(21))
	}
	return f
}

// paint sets the rectangle [x0,x1)×[y0,y1) of a w-wide frame to v.
func paint(f []uint8, w, x0, y0, x1, y1 int, v uint8) {
	for y := y0; y < y1; y++ {
		for x := x0; x < x1; x++ {
			f[y*w+x] = v
		}
	}
}

// feed runs a frame through d in blocks of random sizes 1..maxBlock
// (strided copies every other block), then flushes.
func feed(t testing.TB, d *Detector, rng *rand.Rand, f []uint8, w int, firstLine int64, maxBlock int) []Component {
	t.Helper()
	h := len(f) / w
	var comps []Component
	var err error
	for y := 0; y < h; {
		n := min(1+rng.IntN(maxBlock), h-y)
		pix, stride := f[y*w:(y+n)*w], w
		if rng.IntN(2) == 0 {
			stride = w + 5
			buf := make([]uint8, n*stride)
			for i := range n {
				copy(buf[i*stride:], f[(y+i)*w:(y+i+1)*w])
			}
			pix = buf
		}
		comps, err = d.Process(comps, pix, stride, n, firstLine+int64(y), nil)
		if err != nil {
			t.Fatal(err)
		}
		y += n
	}
	comps, err = d.Flush(comps)
	if err != nil {
		t.Fatal(err)
	}
	return comps
}

// TestOptionsValidate checks every field's range from both sides: the
// error is a *FieldError wrapping ErrOptions that names the field by its
// JSON path (the recipe's, under "model.").
func TestOptionsValidate(t *testing.T) {
	o := DefaultOptions()
	if err := o.Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	for _, tc := range []struct {
		field string
		mod   func(*Options)
		ok    bool // the edge of the range: valid
	}{
		{"bin", func(o *Options) { o.Bin = 0 }, false},
		{"bin", func(o *Options) { o.Bin = 1 }, true},
		{"bin", func(o *Options) { o.Bin = 3 }, false},
		{"overlap_cd", func(o *Options) { o.OverlapCD = -1 }, false},
		{"overlap_cd", func(o *Options) { o.OverlapCD = MaxOverlap }, true},
		{"overlap_cd", func(o *Options) { o.OverlapCD = MaxOverlap + 1 }, false},
		{"overlap_md", func(o *Options) { o.OverlapMD = -1 }, false},
		{"overlap_md", func(o *Options) { o.OverlapMD = MaxOverlap + 1 }, false},
		{"workers", func(o *Options) { o.Workers = 0 }, false},
		{"workers", func(o *Options) { o.Workers = 64 }, true},
		{"workers", func(o *Options) { o.Workers = 65 }, false},
		{"batch", func(o *Options) { o.Batch = -1 }, false},
		{"batch", func(o *Options) { o.Batch = MaxBatch }, true},
		{"batch", func(o *Options) { o.Batch = MaxBatch + 1 }, false},
		{"max_wait_ms", func(o *Options) { o.MaxWaitMS = -0.001 }, false},
		{"max_wait_ms", func(o *Options) { o.MaxWaitMS = 0 }, true},
		{"max_wait_ms", func(o *Options) { o.MaxWaitMS = 1000.5 }, false},
		{"max_wait_ms", func(o *Options) { o.MaxWaitMS = math.NaN() }, false},
		{"in_flight", func(o *Options) { o.InFlight = 1 }, false},
		{"in_flight", func(o *Options) { o.InFlight = 16 }, true},
		{"in_flight", func(o *Options) { o.InFlight = 17 }, false},
		{"threshold", func(o *Options) { o.Threshold = -1 }, false},
		{"threshold", func(o *Options) { o.Threshold = MaxThreshold }, true},
		{"threshold", func(o *Options) { o.Threshold = 2 * MaxThreshold }, false},
		{"threshold", func(o *Options) { o.Threshold = math.Inf(1) }, false},
		{"min_area_px", func(o *Options) { o.MinAreaPx = -1 }, false},
		{"min_area_px", func(o *Options) { o.MinAreaPx = MaxMinAreaPx + 1 }, false},
		{"stitch", func(o *Options) { o.Stitch = "median" }, false},
		{"stitch", func(o *Options) { o.Stitch = "" }, false},
		{"stitch", func(o *Options) { o.Stitch = StitchMax }, true},
		{"off_web.mode", func(o *Options) { o.OffWeb.Mode = "grey" }, false},
		{"off_web.level", func(o *Options) { o.OffWeb.Level = 255 }, true},
		{"off_web.level", func(o *Options) { o.OffWeb.Level = -1 }, false},
		{"off_web.level", func(o *Options) { o.OffWeb.Level = 256 }, false},
		// Off-web fields are checked with the search off as well.
		{"off_web.min_band", func(o *Options) { o.OffWeb.MinBand = 0 }, false},
		{"off_web.min_band", func(o *Options) { o.OffWeb.Mode, o.OffWeb.MinBand = OffWebBright, 0 }, false},
		{"off_web.min_band", func(o *Options) { o.OffWeb.MinBand = 4096 }, true},
		{"off_web.min_band", func(o *Options) { o.OffWeb.MinBand = 5000 }, false},
		{"off_web.guard", func(o *Options) { o.OffWeb.Guard = -1 }, false},
		{"off_web.guard", func(o *Options) { o.OffWeb.Mode, o.OffWeb.Guard = OffWebDark, 65 }, false},
	} {
		o := DefaultOptions()
		tc.mod(&o)
		err := o.Validate()
		if tc.ok {
			if err != nil {
				t.Errorf("%s at the edge of its range: %v", tc.field, err)
			}
			continue
		}
		var fe *FieldError
		if !errors.Is(err, ErrOptions) || !errors.As(err, &fe) || fe.Field != tc.field ||
			!strings.HasPrefix(err.Error(), "infer: bad options: "+tc.field+" = ") ||
			!strings.HasPrefix(fe.At("model."), "model."+tc.field+" = ") {
			t.Errorf("%s: got %v, want a *FieldError wrapping ErrOptions naming %s", tc.field, err, tc.field)
		}
	}
}

func TestNewPoolChecksModel(t *testing.T) {
	m := loadModel(t, 16, 16, 3, 4, nil)
	o := DefaultOptions()
	if _, err := NewPool(m, o); !errors.Is(err, ErrNoThreshold) {
		t.Errorf("no threshold anywhere: got %v, want ErrNoThreshold", err)
	}
	o.Threshold = 1
	for _, mod := range []func(*Options){
		func(o *Options) { o.OverlapCD = 16 },
		func(o *Options) { o.OverlapMD = 16 },
		func(o *Options) { o.Batch = 5 },
	} {
		o2 := o
		mod(&o2)
		if _, err := NewPool(m, o2); !errors.Is(err, ErrOptions) {
			t.Errorf("%+v: got %v, want ErrOptions", o2, err)
		}
	}
	thr := 0.75
	p := newPool(t, loadModel(t, 16, 16, 3, 4, &thr), DefaultOptions())
	if p.Threshold() != 0.75 {
		t.Errorf("threshold %v, want the sidecar's 0.75", p.Threshold())
	}
}

// TestTiledEqualsWhole compares the stitched map of a frame with the map
// of one tile as large as the (binned) frame: with overlaps of at least
// twice the smoothing radius they agree everywhere, edges and the last
// (aligned) strip included.
func TestTiledEqualsWhole(t *testing.T) {
	for _, tc := range []struct {
		bin, smooth, ocd, omd int
		w, h                  int
		differ                bool // overlap below 2×radius: seams must show
	}{
		{1, 3, 2, 2, 150, 97, false},
		{2, 3, 4, 6, 301, 181, false},
		{2, 5, 4, 4, 260, 150, false},
		{1, 5, 5, 7, 40, 33, false},
		{2, 3, 4, 4, 41, 41, false}, // binned frame smaller than a tile: padded both ways
		{1, 5, 2, 2, 150, 97, true},
	} {
		t.Run(fmt.Sprintf("bin=%d/smooth=%d/overlap=%d/w=%d/h=%d", tc.bin, tc.smooth, tc.ocd, tc.w, tc.h), func(t *testing.T) {
			const th, tw = 24, 32
			rng := rand.New(rand.NewPCG(uint64(tc.w), uint64(tc.h)))
			f := fabric(rng, tc.w, tc.h)
			for range 6 { // defects, some on tile borders
				x, y := rng.IntN(tc.w-4), rng.IntN(tc.h-4)
				paint(f, tc.w, x, y, x+4, y+3, uint8(rng.IntN(2)*255))
			}
			o := DefaultOptions()
			o.Bin, o.OverlapCD, o.OverlapMD, o.Threshold = tc.bin, tc.ocd, tc.omd, 2.5
			p := newPool(t, loadModel(t, th, tw, tc.smooth, 4, nil), o)
			d := newDetector(t, p, tc.w)
			bw, bh := tc.w/tc.bin, tc.h/tc.bin
			got := make([]float32, 0, bw*bh)
			d.mapHook = func(row, line int64, m []float32) {
				if int(row) != len(got)/bw || line != int64(tc.bin)*row {
					t.Fatalf("map row %d (line %d) after %d rows", row, line, len(got)/bw)
				}
				got = append(got, m...)
			}
			feed(t, d, rng, f, tc.w, 0, 13)
			if len(got) != bw*bh {
				t.Fatalf("stitched %d rows, want %d", len(got)/bw, bh)
			}
			// The reference: the binned frame as one tile.
			in := f
			if tc.bin == 2 {
				in = make([]uint8, bw*bh)
				kernels.Bin2(in, f, tc.w)
			}
			whole := loadModel(t, bh, bw, tc.smooth, 1, nil)
			s, err := whole.NewSession()
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			res, err := s.Run([][]uint8{in})
			if err != nil {
				t.Fatal(err)
			}
			want := res.Map(0)
			// A frame smaller than a tile is padded by replication, which
			// changes the last smoothing radius of rows and columns.
			cw, ch := bw, bh
			if bw < tw {
				cw -= tc.smooth / 2
			}
			if bh < th {
				ch -= tc.smooth / 2
			}
			bad := 0
			for i := range want {
				if i%bw >= cw || i/bw >= ch {
					continue
				}
				if d := math.Abs(float64(got[i] - want[i])); d > 1e-4*max(1, math.Abs(float64(want[i]))) {
					if bad++; bad < 5 && !tc.differ {
						t.Errorf("row %d col %d: tiled %v, whole %v", i/bw, i%bw, got[i], want[i])
					}
				}
			}
			if bad > 0 && !tc.differ {
				t.Errorf("%d of %d map pixels differ", bad, len(want))
			}
			if bad == 0 && tc.differ {
				t.Errorf("overlap %d < 2×radius %d, yet tiled and whole maps agree: the comparison sees nothing", tc.ocd, tc.smooth/2)
			}
		})
	}
}

// TestStitchModes checks that mean and max stitching agree with centre
// stitching away from tile borders (the scoring graph is local) and that
// max is never below mean.
func TestStitchModes(t *testing.T) {
	const w, h, th, tw = 200, 120, 24, 32
	rng := rand.New(rand.NewPCG(3, 4))
	f := fabric(rng, w, h)
	paint(f, w, 60, 30, 70, 40, 255)
	maps := map[Stitch][]float32{}
	for _, st := range []Stitch{StitchCentre, StitchMean, StitchMax} {
		o := DefaultOptions()
		o.Bin, o.OverlapCD, o.OverlapMD, o.Threshold, o.Stitch = 1, 6, 6, 2.5, st
		p := newPool(t, loadModel(t, th, tw, 3, 4, nil), o)
		d := newDetector(t, p, w)
		var got []float32
		d.mapHook = func(_, _ int64, m []float32) { got = append(got, m...) }
		comps := feed(t, d, rng, f, w, 0, 17)
		if len(got) != w*h {
			t.Fatalf("%s: %d map pixels, want %d", st, len(got), w*h)
		}
		if len(comps) != 1 || comps[0].Col0 != 60 || comps[0].Line1 != 40 {
			t.Errorf("%s: components %+v, want one at [60,70)×[30,40)", st, comps)
		}
		maps[st] = got
	}
	var maxDiff float64
	for i, c := range maps[StitchCentre] {
		mean, mx := maps[StitchMean][i], maps[StitchMax][i]
		if mx < mean-1e-6 {
			t.Fatalf("pixel %d: max %v < mean %v", i, mx, mean)
		}
		maxDiff = max(maxDiff, math.Abs(float64(mx-c)), math.Abs(float64(mean-c)))
	}
	// Border pixels average fewer neighbours, so modes differ a little.
	if maxDiff == 0 || maxDiff > 1 {
		t.Errorf("largest difference between modes %v, want small but non-zero", maxDiff)
	}
}

// TestDefectsOnBorders puts defects across CD tile borders, across the MD
// strip border and across the last, partial strip, and a scratch through
// many strips and blocks; each must be one component with its exact
// extent in camera pixels.
func TestDefectsOnBorders(t *testing.T) {
	for _, bin := range []int{1, 2} {
		t.Run(fmt.Sprintf("bin=%d", bin), func(t *testing.T) {
			const th, tw, ocd, omd = 16, 16, 4, 4
			s := bin // scale: coordinates below are in model pixels
			w, h := 100*s, 75*s
			rng := rand.New(rand.NewPCG(5, uint64(bin)))
			f := fabric(rng, w, h)
			// cut is the corners the 3×3 box leaves below threshold (4 of 9
			// pixels are defect; 4 of 6 on the frame's border are enough).
			type rect struct{ x0, y0, x1, y1, cut int }
			// Tiles start every 12 model columns, strips every 12 model rows.
			defects := []rect{
				{10, 3, 16, 6, 4},   // across tiles 0|1 (overlap 12..16)
				{22, 9, 27, 15, 4},  // across the strip 0|1 overlap (rows 12..16) and tile 1|2
				{40, 20, 44, 60, 4}, // a scratch through strips 1..4
				{90, 66, 96, 72, 4}, // in the last, end-aligned strip
				{0, 62, 3, 70, 2},   // on the left edge
			}
			for _, r := range defects {
				paint(f, w, r.x0*s, r.y0*s, r.x1*s, r.y1*s, 255)
			}
			o := DefaultOptions()
			o.Bin, o.OverlapCD, o.OverlapMD, o.Threshold = bin, ocd, omd, 2.5
			p := newPool(t, loadModel(t, th, tw, 3, 4, nil), o)
			d := newDetector(t, p, w)
			const first = 1000
			comps := feed(t, d, rng, f, w, first, 9)
			if len(comps) != len(defects) {
				t.Fatalf("%d components, want %d: %+v", len(comps), len(defects), comps)
			}
		next:
			for _, r := range defects {
				want := Component{Line0: first + int64(r.y0*s), Line1: first + int64(r.y1*s),
					Col0: r.x0 * s, Col1: r.x1 * s, Area: int64(((r.x1-r.x0)*(r.y1-r.y0) - r.cut) * s * s)}
				want.Count0, want.Count1 = want.Line0, want.Line1-1
				for _, c := range comps {
					if c.Line0 == want.Line0 && c.Col0 == want.Col0 {
						if c.Line1 != want.Line1 || c.Col1 != want.Col1 || c.Area != want.Area ||
							c.Count0 != want.Count0 || c.Count1 != want.Count1 {
							t.Errorf("got %+v, want %+v", c, want)
						}
						if c.Peak < 4.9 || c.Mean < 2.5 || c.Mean > c.Peak {
							t.Errorf("%+v: peak %v mean %v, want peak ≈ 5 and threshold < mean ≤ peak", r, c.Peak, c.Mean)
						}
						continue next
					}
				}
				t.Errorf("defect %+v not found as %+v in %+v", r, want, comps)
			}
		})
	}
}

// TestGapSplits checks that a jump in line numbers ends the run: a defect
// across the gap is two components, the odd line before the gap is
// dropped (Bin 2) and counts are reported.
func TestGapSplits(t *testing.T) {
	const w = 64
	rng := rand.New(rand.NewPCG(9, 9))
	o := DefaultOptions()
	o.OverlapCD, o.OverlapMD, o.Threshold = 4, 4, 2.5
	p := newPool(t, loadModel(t, 16, 16, 3, 4, nil), o)
	d := newDetector(t, p, w)
	a := fabric(rng, w, 41)
	paint(a, w, 20, 30, 30, 40, 255)
	counts := make([]int64, 41)
	for i := range counts {
		counts[i] = 7 * int64(i)
	}
	comps, err := d.Process(nil, a, w, 41, 0, counts)
	if err != nil {
		t.Fatal(err)
	}
	b := fabric(rng, w, 20)
	paint(b, w, 20, 0, 30, 6, 255)
	if comps, err = d.Process(comps, b, w, 20, 100, nil); err != nil {
		t.Fatal(err)
	}
	if comps, err = d.Flush(comps); err != nil {
		t.Fatal(err)
	}
	want := []Component{
		// 5×5 and 5×3 model pixels on the frame's border: 2 corners cut.
		{Line0: 30, Line1: 40, Count0: 210, Count1: 273, Col0: 20, Col1: 30, Area: 23 * 4},
		{Line0: 100, Line1: 106, Count0: 100, Count1: 105, Col0: 20, Col1: 30, Area: 13 * 4},
	}
	if len(comps) != 2 {
		t.Fatalf("components %+v, want %+v", comps, want)
	}
	for i := range want {
		c := comps[i]
		c.Peak, c.Mean = 0, 0
		if c != want[i] {
			t.Errorf("component %d: %+v, want %+v", i, c, want[i])
		}
	}
	if d.Dropped() != 1 {
		t.Errorf("dropped %d lines, want the odd line 40", d.Dropped())
	}
}

// TestShortRun flushes a run shorter than one strip: the tile is filled by
// replicating the last row and only real rows are reported.
func TestShortRun(t *testing.T) {
	const w = 50
	rng := rand.New(rand.NewPCG(1, 2))
	o := DefaultOptions()
	o.Bin, o.OverlapCD, o.OverlapMD, o.Threshold = 1, 4, 4, 2.5
	p := newPool(t, loadModel(t, 16, 16, 3, 4, nil), o)
	d := newDetector(t, p, w)
	f := fabric(rng, w, 7)
	paint(f, w, 40, 3, 50, 7, 0)
	rows := 0
	d.mapHook = func(_, _ int64, _ []float32) { rows++ }
	comps := feed(t, d, rng, f, w, 500, 3)
	if rows != 7 {
		t.Errorf("%d map rows, want 7", rows)
	}
	if len(comps) != 1 || comps[0].Line0 != 503 || comps[0].Line1 != 507 || comps[0].Col0 != 40 || comps[0].Col1 != 50 {
		t.Errorf("components %+v, want one at lines [503,507) columns [40,50)", comps)
	}
}

// TestBatchingWaits counts how workers batch: a lone tile waits MaxWait
// once and runs alone; a full batch's worth of queued tiles runs at once
// without waiting; MaxWait 0 never waits.
func TestBatchingWaits(t *testing.T) {
	const th, tw = 16, 16
	m := loadModel(t, th, tw, 3, 8, nil)
	rng := rand.New(rand.NewPCG(4, 4))
	run := func(maxWait time.Duration, width int) (PoolStats, time.Duration) {
		o := DefaultOptions()
		o.Bin, o.OverlapCD, o.OverlapMD, o.Workers, o.Threshold = 1, 0, 0, 1, 2.5
		o.MaxWaitMS = float64(maxWait) / float64(time.Millisecond)
		p := newPool(t, m, o)
		d := newDetector(t, p, width)
		f := fabric(rng, width, th)
		start := time.Now()
		if _, err := d.Process(nil, f, width, th, 0, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := d.Flush(nil); err != nil {
			t.Fatal(err)
		}
		return p.Stats(), time.Since(start)
	}
	// One tile, batch 8: the worker waits once, then runs one tile.
	st, took := run(50*time.Millisecond, tw)
	if st != (PoolStats{Batches: 1, Tiles: 1, Timeouts: 1}) {
		t.Errorf("lone tile: %+v, want 1 batch of 1 tile after 1 timeout", st)
	}
	if took < 50*time.Millisecond {
		t.Errorf("lone tile took %v, want MaxWait (50ms) plus a run", took)
	}
	// Eight tiles queued at once, batch 8: one full run, no timeout, even
	// with a long MaxWait. The pool's own counts say it did not wait (how
	// long the run took depends on how busy the machine is).
	st, took = run(time.Second, 8*tw)
	if st != (PoolStats{Batches: 1, Tiles: 8, Full: 1}) {
		t.Errorf("full batch: %+v (in %v), want 1 full batch of 8 tiles, no timeout", st, took)
	}
	// MaxWait 0: never a timeout, whatever arrives when.
	st, _ = run(0, 5*tw)
	if st.Timeouts != 0 || st.Tiles != 5 {
		t.Errorf("MaxWait 0: %+v, want 5 tiles and no timeout", st)
	}
}

// TestOffWeb runs a frame with a bright off-web band of wandering width at
// the left, a narrower one at the right and a dark defect touching the
// left web edge: with off-web search the defect is the only component;
// without it the band edges are flagged.
func TestOffWeb(t *testing.T) {
	const w, h = 400, 300
	rng := rand.New(rand.NewPCG(6, 6))
	f := fabric(rng, w, h)
	edge := make([]int, h)
	for y := range h {
		edge[y] = 60 + int(25*math.Sin(float64(y)/23)) + rng.IntN(3)
		paint(f, w, 0, y, edge[y], y+1, uint8(245+rng.IntN(11)))
		paint(f, w, w-21-y%4, y, w, y+1, 252)
	}
	const y0, y1 = 150, 166
	for y := y0; y < y1; y++ {
		paint(f, w, edge[y], y, edge[y]+12, y+1, 10) // a cut at the selvage
	}
	run := func(mode OffWebMode) []Component {
		o := DefaultOptions()
		o.OverlapCD, o.OverlapMD, o.Threshold = 6, 6, 2.5
		o.OffWeb = OffWebOptions{Mode: mode, Level: 230, MinBand: 4, Guard: 1}
		p := newPool(t, loadModel(t, 32, 32, 3, 4, nil), o)
		d := newDetector(t, p, w)
		return feed(t, d, rng, f, w, 0, 20)
	}
	comps := run(OffWebBright)
	if len(comps) != 1 {
		t.Fatalf("bright off-web: %d components, want the edge defect only: %+v", len(comps), comps)
	}
	c := comps[0]
	lo, hi := w, 0
	for y := y0; y < y1; y++ {
		lo, hi = min(lo, edge[y]), max(hi, edge[y]+12)
	}
	if c.Line0 < y0-2 || c.Line1 > y1+2 || c.Line1-c.Line0 < y1-y0-4 || c.Col0 < lo-2 || c.Col1 > hi+2 || c.Area < 100 {
		t.Errorf("edge defect found as %+v, want lines ≈[%d,%d) columns within [%d,%d)", c, y0, y1, lo, hi)
	}
	comps = run(OffWebNone)
	var band int64
	for _, c := range comps {
		if c.Line1-c.Line0 > h/2 {
			band += c.Area
		}
	}
	if band == 0 {
		t.Errorf("without off-web search the band edges should be flagged, got %+v", comps)
	}
}

func TestOffWebRow(t *testing.T) {
	o := OffWebOptions{Mode: OffWebDark, Level: 20, MinBand: 3, Guard: 1}
	row := []uint8{5, 5, 5, 5, 100, 101, 102, 103, 104, 105, 0, 0}
	e0, e1 := offWeb(row, &o)
	// Left band 4 ≥ 3 plus guard 1; right band 2 < MinBand is web.
	if e0 != 5 || e1 != 12 {
		t.Fatalf("extent [%d,%d), want [5,12)", e0, e1)
	}
	want := []uint8{105, 104, 103, 102, 101, 101, 102, 103, 104, 105, 0, 0}
	if string(row) != string(want) {
		t.Errorf("filled row %v, want %v", row, want)
	}
	all := []uint8{1, 2, 3}
	if e0, e1 := offWeb(all, &o); e0 != 0 || e1 != 0 {
		t.Errorf("all off-web: [%d,%d), want empty", e0, e1)
	}
}

// TestNoAllocs shows that Process allocates nothing per block once warm,
// workers and sessions included (AllocsPerRun counts every goroutine).
func TestNoAllocs(t *testing.T) {
	const w = 512
	o := DefaultOptions()
	o.Threshold = 2.5
	p := newPool(t, loadModel(t, 32, 32, 3, 8, nil), o)
	d := newDetector(t, p, w)
	rng := rand.New(rand.NewPCG(8, 8))
	blk := fabric(rng, w, 64)
	paint(blk, w, 100, 10, 110, 20, 255)
	comps := make([]Component, 0, 64)
	line := int64(0)
	step := func() {
		var err error
		comps, err = d.Process(comps[:0], blk, w, 64, line, nil)
		if err != nil {
			t.Fatal(err)
		}
		line += 64
	}
	for range 20 {
		step()
	}
	if a := testing.AllocsPerRun(50, step); a != 0 {
		t.Errorf("Process allocates %v times per block", a)
	}
}

func TestClosedPool(t *testing.T) {
	o := DefaultOptions()
	o.Bin, o.OverlapCD, o.OverlapMD, o.Threshold = 1, 0, 0, 1
	m := loadModel(t, 8, 8, 3, 1, nil)
	p, err := NewPool(m, o)
	if err != nil {
		t.Fatal(err)
	}
	d := newDetector(t, p, 8)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Process(nil, make([]uint8, 64), 8, 8, 0, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("after Close: %v, want ErrClosed", err)
	}
	if _, err := d.Process(nil, make([]uint8, 7), 8, 1, 0, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("failed detector: %v, want ErrClosed again", err)
	}
}

// TestCamerasShareOnePool runs three cameras of different widths through
// one pool from three goroutines, as the engine's detect goroutines do,
// each fed acquisition blocks: every camera finds its own defects, the
// ones Process returns before Flush included, and the pool's collector
// reports the tiles scored.
func TestCamerasShareOnePool(t *testing.T) {
	o := DefaultOptions()
	o.Threshold, o.OverlapCD, o.OverlapMD = 2.5, 4, 4
	p := newPool(t, loadModel(t, 16, 16, 3, 4, nil), o)
	widths := []int{128, 96, 200}
	errs := make(chan error, len(widths))
	for cam, w := range widths {
		d := newDetector(t, p, w)
		go func() {
			errs <- func() error {
				rng := rand.New(rand.NewPCG(uint64(cam), 1))
				const blockLines, blocks = 32, 20
				var comps []Component
				var early int
				front, haveFront := int64(0), false
				blk := acquisition.NewBlock(blockLines, w)
				blk.Camera = cam
				for i := range blocks {
					copy(blk.Pix, fabric(rng, w, blockLines))
					x := 4 + (10*(i+cam))%(w-16) // clear of the frame border
					paint(blk.Pix, w, x, 8, x+8, 16, 255)
					blk.FirstLine, blk.Lines = int64(i*blockLines), blockLines
					for k := range blockLines {
						blk.Counts[k] = 3 * (blk.FirstLine + int64(k))
					}
					n := len(comps)
					var err error
					if comps, err = d.ProcessBlock(comps, blk); err != nil {
						return err
					}
					for _, c := range comps[n:] {
						if haveFront && c.Line0 < front {
							return fmt.Errorf("camera %d: component at line %d returned after the frontier was %d", cam, c.Line0, front)
						}
					}
					early = len(comps)
					if front, haveFront = d.Frontier(); !haveFront {
						return fmt.Errorf("camera %d: no frontier with lines in flight", cam)
					}
				}
				comps, err := d.Flush(comps)
				if err != nil {
					return err
				}
				if f, ok := d.Frontier(); ok {
					return fmt.Errorf("camera %d: frontier %d after Flush, want none", cam, f)
				}
				if early < blocks-4 {
					return fmt.Errorf("camera %d: only %d of %d components before Flush", cam, early, blocks)
				}
				if len(comps) != blocks {
					return fmt.Errorf("camera %d: %d components, want %d", cam, len(comps), blocks)
				}
				for i, c := range comps {
					x := 4 + (10*(i+cam))%(w-16) // clear of the frame border
					if l := int64(i*blockLines + 8); c.Line0 != l || c.Line1 != l+8 || c.Count0 != 3*l || c.Count1 != 3*(l+7) || c.Col0 != x || c.Col1 != x+8 {
						return fmt.Errorf("camera %d component %d: %+v, want lines [%d,%d) columns [%d,%d)", cam, i, c, l, l+8, x, x+8)
					}
				}
				return nil
			}()
		}()
	}
	for range widths {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(p.Collector())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var tiles float64
	for _, mf := range mfs {
		if mf.GetName() == "webinspect_onnx_tiles_total" {
			tiles = mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	if st := p.Stats(); tiles == 0 || tiles != float64(st.Tiles) {
		t.Errorf("collector says %v tiles, Stats %d", tiles, st.Tiles)
	}
}

package teach

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/webinspect/webinspect/model/onnx/ortest"

	"github.com/webinspect/webinspect/acquisition"
	"github.com/webinspect/webinspect/acquisition/recording"
	"github.com/webinspect/webinspect/model/onnx"
)

// texture is a woven-looking good image: a periodic pattern with noise and
// a slow brightness drift.
func texture(rng *rand.Rand, w, h int) Image {
	im := Image{W: w, H: h, Pix: make([]uint8, w*h)}
	ph := rng.Float64() * 6
	for y := range h {
		for x := range w {
			v := 120 + 30*math.Sin(2*math.Pi*(float64(x)+ph)/6)*math.Sin(2*math.Pi*float64(y)/6) +
				5*math.Sin(float64(y)/40) + rng.NormFloat64()*4
			im.Pix[y*w+x] = clamp8(v)
		}
	}
	return im
}

// withSpot returns a copy of im with a dark s×s spot at (x0, y0).
func withSpot(im Image, x0, y0, s int) Image {
	out := Image{W: im.W, H: im.H, Pix: append([]uint8(nil), im.Pix...)}
	for y := y0; y < y0+s; y++ {
		for x := x0; x < x0+s; x++ {
			out.Pix[y*im.W+x] = 40
		}
	}
	return out
}

func smallOptions() Options {
	o := DefaultOptions()
	o.TileH, o.TileW, o.Bin = 32, 64, 1
	o.Patch, o.Scales, o.Components, o.Clusters, o.EdgeClusters, o.Smooth = 5, 2, 4, 2, 0, 3
	o.MaxPatches, o.Folds, o.TargetFAR = 20000, 3, 0.01
	return o
}

func TestTeachScoresDefectAboveThreshold(t *testing.T) {
	ortest.Require(t)
	rng := rand.New(rand.NewPCG(1, 2))
	var good []Image
	for range 6 {
		good = append(good, texture(rng, 96, 48))
	}
	o := smallOptions()
	o.Source = "generated texture"
	taught, err := Teach(good, o)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := taught.WriteModel(dir); err != nil {
		t.Fatal(err)
	}
	m, err := onnx.Load(dir, onnx.DefaultModelOptions())
	if err != nil {
		t.Fatal(err)
	}
	sc := m.Sidecar()
	if sc.Threshold == nil || *sc.Threshold != taught.Threshold || !(taught.Threshold > 0) {
		t.Fatalf("sidecar threshold %v, taught %v; want the same positive value", sc.Threshold, taught.Threshold)
	}
	if h, w := m.TileSize(); h != 32 || w != 64 {
		t.Errorf("model tile %dx%d, want 32x64", h, w)
	}
	mb := sc.MadeBy
	if mb.Tool != "webinspect teach" || mb.Source != "generated texture" || mb.Created == "" || mb.Runtime == "" || mb.Method == "" {
		t.Errorf("made_by incomplete: %+v", mb)
	}
	for k, want := range map[string]string{"tile": "32x64", "bin": "1", "scales": "2", "components": "4",
		"clusters": "2", "patch": "5", "target_far": "0.01", "images": "6", "calibration": "3-fold held out"} {
		if got := mb.Params[k]; got != want {
			t.Errorf("made_by.params[%q] = %q, want %q", k, got, want)
		}
	}
	s, err := NewScorer(m)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	th := float32(taught.Threshold)
	for i := range 5 {
		g := texture(rng, 96, 48)
		gs, _, err := s.Score(g, nil)
		if err != nil {
			t.Fatal(err)
		}
		if gs >= th {
			t.Errorf("good image %d scores %.3f, at or above the threshold %.3f", i, gs, th)
		}
		bad := withSpot(g, 20+10*i, 10+4*i, 5)
		bs, amap, err := s.Score(bad, make([]float32, 0, 16))
		if err != nil {
			t.Fatal(err)
		}
		if bs < th {
			t.Errorf("image %d with a dark spot scores %.3f, below the threshold %.3f (good %.3f)", i, bs, th, gs)
		}
		if len(amap) != 96*48 {
			t.Fatalf("map has %d values, want %d", len(amap), 96*48)
		}
		peak := 0
		for j, v := range amap {
			if v > amap[peak] {
				peak = j
			}
		}
		px, py := peak%96, peak/96
		if cx, cy := 22+10*i, 12+4*i; abs(px-cx) > 6 || abs(py-cy) > 6 {
			t.Errorf("image %d: map peaks at (%d,%d), the spot is at (%d,%d)", i, px, py, cx, cy)
		}
	}
}

func abs(v int) int { return max(v, -v) }

// withBand returns a copy of im whose first w columns are saturated
// off-web background (255), with a jagged edge.
func withBand(im Image, w int, rng *rand.Rand) Image {
	out := Image{W: im.W, H: im.H, Pix: append([]uint8(nil), im.Pix...)}
	for y := range im.H {
		e := w + rng.IntN(3) - 1
		for x := 0; x < e; x++ {
			out.Pix[y*im.W+x] = 255
		}
	}
	return out
}

// TestTeachGraphMatchesReference compares ONNX Runtime's map for one tile
// with a plain-Go computation of the same model (one scale): several
// clusters, web-edge clusters, saturation fill, likelihood weights.
func TestTeachGraphMatchesReference(t *testing.T) {
	ortest.Require(t)
	for _, c := range []struct {
		name string
		edit func(*Options)
	}{
		{"clusters=2", func(o *Options) {}},
		{"edge=2", func(o *Options) { o.EdgeClusters, o.EdgeBand = 2, 3 }},
		{"edge=2/likelihood", func(o *Options) { o.EdgeClusters, o.EdgeBand, o.Likelihood = 2, 3, true }},
		{"satfill", func(o *Options) { o.SatFill, o.EdgeClusters = true, 0 }},
		{"memory=24", func(o *Options) { o.Memory = 24 }},
		{"memory=24/edge=2", func(o *Options) { o.Memory, o.EdgeClusters, o.EdgeBand = 24, 2, 3 }},
		{"discriminator", func(o *Options) { o.Discriminator = true }},
	} {
		t.Run(c.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(3, 4))
			var good []Image
			for range 4 {
				good = append(good, withBand(texture(rng, 64, 48), 12, rng))
			}
			o := smallOptions()
			o.TileH, o.TileW, o.Scales, o.Clusters, o.Smooth = 24, 40, 1, 2, 3
			c.edit(&o)
			prepared := make([]Image, len(good))
			for i, im := range good {
				prepared[i] = o.prep().Apply(im)
			}
			f, err := fit(prepared, nil, &o)
			if err != nil {
				t.Fatal(err)
			}
			if o.EdgeClusters > 0 && len(f.spec.Scales[0].Edge) == 0 {
				t.Fatal("no edge clusters fitted")
			}
			if o.Discriminator && len(f.spec.Scales[0].Disc) == 0 {
				t.Fatal("no discriminator fitted")
			}
			if k := len(f.spec.Scales[0].Clusters[0].Lambda); o.Memory > 0 && len(f.spec.Scales[0].Memory) != o.Memory*k {
				t.Fatalf("memory holds %d values, want %d patches × K %d", len(f.spec.Scales[0].Memory), o.Memory, k)
			}
			sess := fittedSession(t, f, &o)
			tile := withSpot(withBand(texture(rng, 40, 24), 8, rng), 20, 8, 4)
			res, err := sess.Run([][]uint8{tile.Pix})
			if err != nil {
				t.Fatal(err)
			}
			want := referenceMap(f, &o, tile)
			var mx float64
			for i, v := range want {
				mx = max(mx, v)
				if d := math.Abs(float64(res.Maps[i]) - v); d > 1e-3*math.Max(1, math.Abs(v)) {
					t.Fatalf("map[%d] (x %d, y %d) = %v, plain Go says %v", i, i%40, i/40, res.Maps[i], v)
				}
			}
			if d := math.Abs(float64(res.Scores[0]) - mx); d > 1e-3*mx {
				t.Fatalf("score %v, plain Go max %v", res.Scores[0], mx)
			}
		})
	}
}

// fittedSession builds f's graph, writes and loads it, and opens a
// session that is closed when the test ends.
func fittedSession(tb testing.TB, f *fitted, o *Options) *onnx.Session {
	tb.Helper()
	b, sc, err := build(f, o)
	if err != nil {
		tb.Fatal(err)
	}
	dir := tb.TempDir()
	if err := onnx.WriteModelDir(dir, b, sc); err != nil {
		tb.Fatal(err)
	}
	m, err := onnx.Load(dir, onnx.DefaultModelOptions())
	if err != nil {
		tb.Fatal(err)
	}
	sess, err := m.NewSession()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { sess.Close() })
	return sess
}

// referenceMap scores one tile at one scale in float64.
func referenceMap(f *fitted, o *Options, im Image) []float64 {
	spec := f.spec
	P, r := spec.Patch, spec.Patch/2
	pp := P * P
	x := make([]float64, im.W*im.H)
	pl := plane{w: im.W, h: im.H, v: make([]float32, im.W*im.H)}
	for i, p := range im.Pix {
		v := float32((float64(p)/255 - f.mean) / f.std)
		if spec.SatFill && v > spec.SatLevel {
			v = spec.FillValue
		}
		x[i], pl.v[i] = float64(v), v
	}
	near := satWindow(pl, spec.SatLevel, spec.EdgeBand, P)
	w, h := im.W, im.H
	raw := make([]float64, w*h)
	patch := make([]float32, pp)
	for y := r; y < h-r; y++ {
		for xx := r; xx < w-r; xx++ {
			for dy := range P {
				for dx := range P {
					patch[dy*P+dx] = float32(x[(y-r+dy)*w+xx-r+dx])
				}
			}
			cl := spec.Scales[0].Clusters
			if len(spec.Scales[0].Edge) > 0 && near(xx-r, y-r) {
				cl = spec.Scales[0].Edge
			}
			sc0 := spec.Scales[0]
			var v float64
			if len(sc0.Memory) > 0 && &cl[0] == &sc0.Clusters[0] {
				v = memoryScore(sc0.Clusters[0], sc0.Memory, sc0.MemoryD, patch)
			} else {
				v = patchScore(cl, patch)
			}
			if len(sc0.Disc) > 0 {
				v += discTerm(sc0.Clusters[0], sc0.Disc, sc0.DiscBias, patch)
			}
			raw[y*w+xx] = max(v, 0)
		}
	}
	return padSmooth(raw, w, h, r, spec.Smooth)
}

// padSmooth finishes a reference map from its raw patch scores (centres
// r from the border) as the graph does: the border takes its nearest whole
// patch's value, then a box of side sm averages (edges counting only the
// pixels inside).
func padSmooth(raw []float64, w, h, r, sm int) []float64 {
	full := make([]float64, w*h)
	for y := range h {
		for xx := range w {
			full[y*w+xx] = raw[min(max(y, r), h-1-r)*w+min(max(xx, r), w-1-r)]
		}
	}
	s := sm / 2
	out := make([]float64, w*h)
	for y := range h {
		for xx := range w {
			var sum float64
			var n int
			for yy := max(0, y-s); yy <= min(h-1, y+s); yy++ {
				for xxx := max(0, xx-s); xxx <= min(w-1, xx+s); xxx++ {
					sum += full[yy*w+xxx]
					n++
				}
			}
			out[y*w+xx] = sum / float64(n)
		}
	}
	return out
}

func TestOptionsValidate(t *testing.T) {
	d := DefaultOptions()
	if err := d.Validate(); err != nil {
		t.Fatalf("DefaultOptions: %v", err)
	}
	for _, c := range []struct {
		field string
		edit  func(*Options)
	}{
		{"TileH", func(o *Options) { o.TileH = 129 }},
		{"TileW", func(o *Options) { o.TileW = 4 }},
		{"Bin", func(o *Options) { o.Bin = 3 }},
		{"Patch", func(o *Options) { o.Patch = 6 }},
		{"Components", func(o *Options) { o.Components = 50 }},
		{"Clusters", func(o *Options) { o.Clusters = 0 }},
		{"EdgeComponents", func(o *Options) { o.EdgeClusters, o.EdgeComponents = 6, 0 }},
		{"EdgeBand", func(o *Options) { o.EdgeBand = -1 }},
		{"SatLevel", func(o *Options) { o.SatLevel = 0 }},
		{"RareClusters", func(o *Options) { o.RareClusters = 5 }},
		{"Scales", func(o *Options) { o.Scales = 5 }},
		{"Smooth", func(o *Options) { o.Smooth = 4 }},
		{"TargetFAR", func(o *Options) { o.TargetFAR = 0 }},
		{"Folds", func(o *Options) { o.Folds = 1 }},
		{"Normalize", func(o *Options) { o.Normalize = "global" }},
		{"ResizeW/ResizeH", func(o *Options) { o.ResizeW = 10 }},
		{"TileH/TileW", func(o *Options) { o.TileH, o.TileW, o.Scales = 16, 16, 3 }},
		{"Memory", func(o *Options) { o.Memory = 5000 }},
		{"EnsembleSpread", func(o *Options) { o.EnsembleSpread = -1 }},
	} {
		o := DefaultOptions()
		c.edit(&o)
		err := o.Validate()
		if !errors.Is(err, ErrOptions) || !strings.Contains(err.Error(), "Options."+c.field) {
			t.Errorf("%s: err = %v, want ErrOptions naming Options.%s", c.field, err, c.field)
		}
	}
}

func TestTeachBadInputs(t *testing.T) {
	o := smallOptions()
	if _, err := Teach(nil, o); !errors.Is(err, ErrNoImages) {
		t.Errorf("no images: err = %v, want ErrNoImages", err)
	}
	if _, err := Teach([]Image{{W: 10, H: 10, Pix: make([]uint8, 50)}}, o); !errors.Is(err, ErrImage) {
		t.Errorf("short Pix: err = %v, want ErrImage", err)
	}
	flat := Image{W: 64, H: 32, Pix: make([]uint8, 64*32)}
	for i := range flat.Pix {
		flat.Pix[i] = 90
	}
	if _, err := Teach([]Image{flat, flat}, o); !errors.Is(err, ErrDegenerate) {
		t.Errorf("constant images: err = %v, want ErrDegenerate", err)
	}
}

func TestFromLines(t *testing.T) {
	n := 0
	next := func() ([]uint8, bool) {
		if n == 25 {
			return nil, false
		}
		l := make([]uint8, 12)
		for i := range l {
			l[i] = uint8(n)
		}
		n++
		return l, true
	}
	frames, err := FromLines(next, 10, 8, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(frames) != 3 {
		t.Fatalf("%d frames from 25 lines of 8, want 3 (partial dropped)", len(frames))
	}
	if f := frames[2]; f.W != 10 || f.H != 8 || f.Pix[0] != 16 || f.Pix[7*10+9] != 23 {
		t.Errorf("frame 2 is %dx%d starting %d ending %d, want 10x8 lines 16..23", f.W, f.H, f.Pix[0], f.Pix[len(f.Pix)-1])
	}
	n = 0
	if frames, _ := FromLines(next, 10, 8, 2); len(frames) != 2 {
		t.Errorf("maxFrames 2 gave %d frames", len(frames))
	}
	n = 20
	if _, err := FromLines(next, 10, 8, 0); !errors.Is(err, ErrNoImages) {
		t.Errorf("5 lines for frames of 8: err = %v, want ErrNoImages", err)
	}
}

func TestReadRecording(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "rec")
	info := acquisition.Info{Name: "test", Material: "fabric", WebWidthMM: 64, MMPerCount: 0.5, CountsPerLine: 1,
		LinesPerBlock: 16, SpeedMPerMin: 10,
		Cameras: []acquisition.CameraInfo{{Index: 0, Width: 64, PixelMM: 1}}}
	w, err := recording.Create(dir, info, nil)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	tex := texture(rng, 64, 160)
	for b := range 10 {
		blk := acquisition.NewBlock(16, 64)
		blk.Lines, blk.FirstLine = 16, int64(16*b)
		copy(blk.Pix, tex.Pix[b*16*64:(b+1)*16*64])
		for i := range blk.Counts {
			blk.Counts[i] = int64(16*b + i)
		}
		if err := w.WriteBlock(blk); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if !IsRecording(dir) || IsRecording(t.TempDir()) {
		t.Fatal("IsRecording does not tell a recording from an empty directory")
	}
	// 0.5 mm per line: 0.05 m = 100 lines = 3 frames of 32.
	frames, _, err := ReadRecording(context.Background(), dir, 0, 0.05, 32, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(frames) != 3 || frames[1].W != 64 || frames[1].H != 32 {
		t.Fatalf("got %d frames, want 3 of 64x32", len(frames))
	}
	if got, want := frames[1].Pix[5*64+7], tex.Pix[(32+5)*64+7]; got != want {
		t.Errorf("frame 1 pixel (7,5) = %d, want %d", got, want)
	}
	if _, _, err := ReadRecording(context.Background(), dir, 1, 0, 32, 0); !errors.Is(err, ErrOptions) {
		t.Errorf("camera 1 of 1: err = %v, want ErrOptions", err)
	}
}

func TestThreshold(t *testing.T) {
	s := []float64{1, 2, 3, 4, 5}
	if q := Quantile(s, 0.5); q != 3 {
		t.Errorf("median %v, want 3", q)
	}
	if q := Quantile(s, 0.9); math.Abs(q-4.6) > 1e-12 {
		t.Errorf("0.9 quantile %v, want 4.6", q)
	}
	lo, hi := Threshold(s, 0.2), Threshold(s, 0.001)
	if !(lo >= Quantile(s, 0.8)) || !(hi > lo) || !(hi > 5) {
		t.Errorf("thresholds %v (FAR 0.2) and %v (FAR 0.001): want ≥ the empirical quantile and growing as FAR falls, beyond the max", lo, hi)
	}
}

func TestPrep(t *testing.T) {
	im := Image{W: 5, H: 3, Pix: []uint8{
		10, 20, 30, 40, 50,
		10, 20, 30, 40, 50,
		0, 0, 0, 0, 0}}
	p := Prep{Normalize: "none", Bin: 2, TileH: 8, TileW: 8}
	b := p.Apply(im)
	if b.W != 2 || b.H != 1 || b.Pix[0] != 15 || b.Pix[1] != 35 {
		t.Errorf("binned %dx%d %v, want 2x1 [15 35]", b.W, b.H, b.Pix)
	}
	if im.Pix[0] != 10 {
		t.Error("Apply modified its input")
	}
	r := Prep{Normalize: "none", Bin: 1, ResizeW: 10, ResizeH: 3}.Apply(im)
	if r.W != 10 || r.Pix[0] != 10 || r.Pix[9] != 50 {
		t.Errorf("resized %dx%d row 0 %v, want 10 wide from 10 to 50", r.W, r.H, r.Pix[:10])
	}
	pad := padReflect(Image{W: 3, H: 1, Pix: []uint8{1, 2, 3}}, 6, 2)
	if got := pad.Pix[:6]; string(got) != string([]uint8{1, 2, 3, 2, 1, 2}) {
		t.Errorf("reflect pad %v, want [1 2 3 2 1 2]", got)
	}
	if o := tileOrigins(100, 40, 5); len(o) != 3 || o[0] != 0 || o[1] != 30 || o[2] != 60 {
		t.Errorf("tile origins %v, want [0 30 60]", o)
	}
}

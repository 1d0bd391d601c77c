package eval

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/webinspect/webinspect/internal/pngtest"
	"github.com/webinspect/webinspect/model/onnx/ortest"

	"github.com/webinspect/webinspect/model/teach"
)

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestAUROCHandComputed(t *testing.T) {
	for _, c := range []struct {
		name   string
		scores []float64
		labels []bool
		want   float64
	}{
		{"textbook", []float64{0.1, 0.4, 0.35, 0.8}, []bool{false, false, true, true}, 0.75},
		// pos {2,3} vs neg {1,2}: 1 + ½ + 1 + 1 = 3.5 of 4 pairs.
		{"ties", []float64{1, 2, 2, 3}, []bool{false, true, false, true}, 0.875},
		{"all tied", []float64{5, 5, 5}, []bool{true, false, false}, 0.5},
		{"perfect", []float64{0, 1, 2, 3}, []bool{false, false, true, true}, 1},
		{"inverted", []float64{3, 2, 1}, []bool{false, true, true}, 0},
	} {
		if got := AUROC(c.scores, c.labels); !near(got, c.want) {
			t.Errorf("%s: AUROC = %v, want %v", c.name, got, c.want)
		}
		// The pixel curves give the same (exact: few distinct values).
		f := make([]float32, len(c.scores))
		lab := make([]int32, len(c.scores))
		for i, s := range c.scores {
			f[i] = float32(s)
			if c.labels[i] {
				lab[i] = 1
			}
		}
		pc := NewPixelCurves(f)
		pc.Add(f, lab, 1)
		if got := pc.AUROC(); !near(got, c.want) {
			t.Errorf("%s: pixel AUROC = %v, want %v", c.name, got, c.want)
		}
	}
	if v := AUROC([]float64{1, 2}, []bool{true, true}); !math.IsNaN(v) {
		t.Errorf("one class only: %v, want NaN", v)
	}
}

func TestPROHandComputed(t *testing.T) {
	// One row of 10 pixels: region A = pixels 0,1; region B = pixel 5.
	mask := []uint8{255, 255, 0, 0, 0, 255, 0, 0, 0, 0}
	amap := []float32{0.9, 0.2, 0.95, 0.1, 0.1, 0.8, 0.1, 0.1, 0.1, 0.1}
	lab, n := Regions(nil, mask, 10, 1)
	if n != 2 || lab[0] != 1 || lab[1] != 1 || lab[5] != 2 || lab[2] != 0 {
		t.Fatalf("regions %v (n=%d), want A = {0,1}, B = {5}", lab, n)
	}
	pc := NewPixelCurves(amap)
	pc.Add(amap, lab, n)
	// Thresholds from the top: 0.95 → FPR 1/7, PRO 0; 0.9 → A ½; 0.8 → B 1;
	// 0.2 → A 1 (PRO 1, FPR still 1/7); 0.1 → FPR 1. Area to 0.3 is
	// (0.3 - 1/7)·1, divided by 0.3.
	want := (0.3 - 1.0/7) / 0.3
	if got := pc.PRO(0.3); !near(got, want) {
		t.Errorf("PRO = %v, want %v", got, want)
	}
	// A limit inside a sloped segment interpolates: one region, scores
	// make the curve (0,0) → (0.5, 1) linearly in two steps.
	m2 := []uint8{255, 0, 0}
	a2 := []float32{0.5, 0.6, 0.1}
	lab2, n2 := Regions(nil, m2, 3, 1)
	pc2 := NewPixelCurves(a2)
	pc2.Add(a2, lab2, n2)
	// 0.6 → (FPR ½, PRO 0); 0.5 → (½, 1); 0.1 → (1, 1). Area to 0.3 = 0.
	if got := pc2.PRO(0.3); !near(got, 0) {
		t.Errorf("PRO with the first region pixel beyond FPR 0.5 = %v, want 0", got)
	}
	// Up to 0.75: 0.25 at PRO 1 → 0.25/0.75.
	if got := pc2.PRO(0.75); !near(got, 1.0/3) {
		t.Errorf("PRO(0.75) = %v, want 1/3", got)
	}
}

func TestRegionsEightConnected(t *testing.T) {
	mask := []uint8{
		1, 0, 0, 1,
		0, 1, 0, 1,
		0, 0, 0, 0,
		1, 1, 0, 0}
	lab, n := Regions(nil, mask, 4, 4)
	if n != 3 {
		t.Fatalf("%d regions, want 3 (diagonal pixels join)", n)
	}
	if lab[0] != lab[5] || lab[3] != lab[7] || lab[12] != lab[13] || lab[0] == lab[3] {
		t.Errorf("labels %v", lab)
	}
}

func TestPixelCurvesBinned(t *testing.T) {
	// Many distinct values: binned AUROC stays close to the exact one.
	rng := rand.New(rand.NewPCG(1, 1))
	n := 60000
	f := make([]float32, n)
	lab := make([]int32, n)
	s := make([]float64, n)
	l := make([]bool, n)
	for i := range f {
		pos := i%10 == 0
		v := rng.NormFloat64()
		if pos {
			v += 1
			lab[i] = 1
		}
		f[i], s[i], l[i] = float32(v), float64(float32(v)), pos
	}
	pc := NewPixelCurves(f)
	pc.Add(f, lab, 1)
	if got, want := pc.AUROC(), AUROC(s, l); math.Abs(got-want) > 1e-3 {
		t.Errorf("binned AUROC %v, exact %v", got, want)
	}
}

func texture(rng *rand.Rand, w, h int) teach.Image {
	im := teach.Image{W: w, H: h, Pix: make([]uint8, w*h)}
	ph := rng.Float64() * 6
	for y := range h {
		for x := range w {
			v := 120 + 30*math.Sin(2*math.Pi*(float64(x)+ph)/6)*math.Sin(2*math.Pi*float64(y)/6) + rng.NormFloat64()*4
			im.Pix[y*w+x] = uint8(min(max(v, 0), 255))
		}
	}
	return im
}

// MakeDataset writes a tiny MVTec-layout set: textured good images and
// defective ones with a dark square and its mask.
func makeDataset(t *testing.T, masks bool) string {
	t.Helper()
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(7, 7))
	const w, h = 80, 48
	for i := range 5 {
		writePNG(t, filepath.Join(dir, "train", "good", string(rune('a'+i))+".png"), texture(rng, w, h))
	}
	for i := range 4 {
		writePNG(t, filepath.Join(dir, "test", "good", string(rune('a'+i))+".png"), texture(rng, w, h))
	}
	for i := range 4 {
		im := texture(rng, w, h)
		mask := teach.Image{W: w, H: h, Pix: make([]uint8, w*h)}
		x0, y0 := 10+12*i, 8+6*i
		for y := y0; y < y0+7; y++ {
			for x := x0; x < x0+7; x++ {
				im.Pix[y*w+x] = 30
				mask.Pix[y*w+x] = 255
			}
		}
		name := string(rune('a' + i))
		writePNG(t, filepath.Join(dir, "test", "spot", name+".png"), im)
		if masks {
			writePNG(t, filepath.Join(dir, "ground_truth", "spot", name+"_mask.png"), mask)
		}
	}
	return dir
}

func testOptions() Options {
	o := DefaultOptions()
	to := &o.Teach
	to.TileH, to.TileW, to.Bin = 32, 64, 1
	to.Patch, to.Scales, to.Components, to.Clusters, to.EdgeClusters, to.Smooth = 5, 2, 4, 1, 0, 3
	to.MaxPatches, to.Folds = 20000, 3
	return o
}

func TestRunOnGeneratedDataset(t *testing.T) {
	ortest.Require(t)
	dir := makeDataset(t, true)
	o := testOptions()
	o.Heatmaps = filepath.Join(t.TempDir(), "heat")
	o.SaveModel = filepath.Join(t.TempDir(), "model")
	o.PerImage = true
	rep, err := Run(context.Background(), dir, o)
	if err != nil {
		t.Fatal(err)
	}
	if rep.TestGood != 4 || rep.TestDefective != 4 || rep.TrainImages != 5 || !rep.Taught {
		t.Fatalf("counts: %+v", rep)
	}
	if rep.ImageAUROC == nil || *rep.ImageAUROC < 0.999 {
		t.Errorf("image AUROC %v, want 1 for obvious spots", rep.ImageAUROC)
	}
	if rep.PixelAUROC == nil || *rep.PixelAUROC < 0.95 {
		t.Errorf("pixel AUROC %v, want ≥ 0.95", rep.PixelAUROC)
	}
	if rep.PRO == nil || *rep.PRO < 0.7 {
		t.Errorf("PRO %v, want ≥ 0.7", rep.PRO)
	}
	if rep.Threshold == nil || rep.FalseAlarmRate == nil || rep.RecallAtThreshold == nil {
		t.Fatalf("threshold metrics missing: %+v", rep)
	}
	if *rep.RecallAtThreshold != 1 || *rep.FalseAlarmRate != 0 {
		t.Errorf("recall %v, false alarms %v at the threshold, want 1 and 0", *rep.RecallAtThreshold, *rep.FalseAlarmRate)
	}
	if !(rep.MpxPerS > 0) {
		t.Errorf("mpx_per_s %v", rep.MpxPerS)
	}
	if ts := rep.Types["spot"]; ts.N != 4 || ts.Flagged != 4 {
		t.Errorf("spot stats %+v", ts)
	}
	for _, im := range rep.Images {
		if im.Type == "spot" && (im.PeakX < 5 || im.PeakX > 70) {
			t.Errorf("%s peaks at x %d", im.Path, im.PeakX)
		}
	}
	heat, _ := os.ReadDir(o.Heatmaps)
	if len(heat) != 8 {
		t.Errorf("%d heat maps, want 8", len(heat))
	}
	// The saved model scores the same set again via Options.Model.
	o2 := testOptions()
	o2.Model = o.SaveModel
	rep2, err := Run(context.Background(), dir, o2)
	if err != nil {
		t.Fatal(err)
	}
	if rep2.Taught || *rep2.ImageAUROC != *rep.ImageAUROC {
		t.Errorf("saved model: taught %v AUROC %v, want false and %v", rep2.Taught, rep2.ImageAUROC, *rep.ImageAUROC)
	}
}

func TestRunWithoutMasks(t *testing.T) {
	ortest.Require(t)
	dir := makeDataset(t, false)
	rep, err := Run(context.Background(), dir, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	if rep.PixelAUROC != nil || rep.PRO != nil {
		t.Errorf("pixel metrics %v %v without ground_truth, want nil", rep.PixelAUROC, rep.PRO)
	}
	if rep.ImageAUROC == nil || *rep.ImageAUROC < 0.999 {
		t.Errorf("image AUROC %v", rep.ImageAUROC)
	}
}

func TestRunBadDatasets(t *testing.T) {
	ctx := context.Background()
	o := testOptions()
	if _, err := Run(ctx, t.TempDir(), o); !errors.Is(err, ErrDataset) {
		t.Errorf("empty dir: err = %v, want ErrDataset", err)
	}
	if _, err := Run(ctx, filepath.Join(t.TempDir(), "missing"), o); !errors.Is(err, ErrDataset) {
		t.Errorf("missing dir: err = %v, want ErrDataset", err)
	}
	dir := makeDataset(t, true)
	if err := os.RemoveAll(filepath.Join(dir, "train")); err != nil {
		t.Fatal(err)
	}
	if _, err := Run(ctx, dir, o); !errors.Is(err, ErrDataset) {
		t.Errorf("no train/good: err = %v, want ErrDataset", err)
	}
	dir = makeDataset(t, true)
	writePNG(t, filepath.Join(dir, "ground_truth", "spot", "b_mask.png"), teach.Image{W: 10, H: 10, Pix: make([]uint8, 100)})
	if _, err := Run(ctx, dir, o); !errors.Is(err, ErrMask) {
		t.Errorf("mask of the wrong size: err = %v, want ErrMask", err)
	}
	bad := o
	bad.Workers = 0
	if _, err := Run(ctx, dir, bad); !errors.Is(err, ErrOptions) {
		t.Errorf("Workers 0: err = %v, want ErrOptions", err)
	}
}

func writePNG(t *testing.T, path string, im teach.Image) { pngtest.Write(t, path, im.W, im.H, im.Pix) }

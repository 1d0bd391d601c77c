package main

import (
	"context"
	"flag"
	"image"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/webinspect/webinspect/engine"
	"github.com/webinspect/webinspect/internal/pngtest"
	"github.com/webinspect/webinspect/model/onnx/ortest"
	"github.com/webinspect/webinspect/model/teach"
	"github.com/webinspect/webinspect/rollmap"
)

// litSet writes an MVTec-layout set of woven frames captured one by one,
// the way AITEX's are: every frame has one of two lightings (mean 118 or
// 96) and its own weave phase, so frame joints jump in brightness and
// texture. train/good holds frames of both lightings. Defect frames hold
// one defect each inside their mask's box: a float (the weave shifted by
// half a period: a texture defect with no change of mean brightness,
// which the threshold detector cannot see) or a dark knot 22 grey levels
// deep, just beyond the threshold detector's minimum contrast. It returns
// SET/test.
func litSet(t *testing.T, train, good int, defects map[string][]image.Rectangle) string {
	t.Helper()
	const w, h = 512, 256
	root := t.TempDir()
	rng := rand.New(rand.NewPCG(5, 6))
	frame := func(path string, k int, defect string, box image.Rectangle) {
		mean, px, py := 118.0, rng.Float64()*6, rng.Float64()*6
		if k%2 == 1 {
			mean = 96
		}
		pngtest.WriteFunc(t, path, w, h, func(x, y int) uint8 {
			fx, fy := float64(x)+px, float64(y)+py
			in := image.Pt(x, y).In(box)
			if in && defect == "float" {
				fx += 3 // half the weave's period
			}
			v := mean + 14*math.Sin(fx*2*math.Pi/6)*math.Sin(fy*2*math.Pi/6) + rng.NormFloat64()*3
			if in && defect == "knot" {
				v -= 22
			}
			return uint8(max(0, min(255, math.Round(v))))
		})
	}
	for i := range train {
		frame(filepath.Join(root, "train", "good", frameName(i)), i, "", image.Rectangle{})
	}
	for i := range good {
		frame(filepath.Join(root, "test", "good", frameName(i)), i, "", image.Rectangle{})
	}
	for class, boxes := range defects {
		for i, b := range boxes {
			frame(filepath.Join(root, "test", class, frameName(i)), i+1, class, b)
			writeMask(t, root, class, i, w, h, b)
		}
	}
	return filepath.Join(root, "test")
}

// TestFramesSourceTaughtModel is issue 13's "a real-texture web through
// the whole engine" on a short run: a model taught (default options) on
// train/good, then `run --source frames:DIR --model` over frames whose
// lighting and weave jump at every joint. Every defect frame must be
// flagged inside its MD range at its mask's CD position (within one
// frame), a texture defect the threshold detector cannot see must be
// found by the model, and the good frames must give no false defect —
// not even at the joints, which without Block.Seam the model flags.
func TestFramesSourceTaughtModel(t *testing.T) {
	ortest.Require(t)
	t.Parallel()
	dir := litSet(t, 8, 12, map[string][]image.Rectangle{
		"float": {image.Rect(180, 70, 230, 130), image.Rect(40, 150, 90, 220)},
		"knot":  {image.Rect(300, 100, 316, 114)},
	})
	imgs, err := teach.ReadDir(filepath.Join(filepath.Dir(dir), "train", "good"))
	if err != nil {
		t.Fatal(err)
	}
	taught, err := teach.Teach(imgs, teach.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	mdir := t.TempDir()
	if err := taught.WriteModel(mdir); err != nil {
		t.Fatal(err)
	}
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	sf := addSimFlags(fs, "10km", -1)
	ff := addFramesFlags(fs)
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	src, err := ff.open("frames:"+dir, "", sf)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	truth := src.Truth()
	if len(truth) != 3 {
		t.Fatalf("truth has %d defects, want 3 (one per defect frame)", len(truth))
	}
	recipe, err := loadRecipe("", src.Info())
	if err != nil {
		t.Fatal(err)
	}
	model, err := engine.LoadModel(mdir, recipe)
	if err != nil {
		t.Fatal(err)
	}
	rolls := t.TempDir()
	store, err := openStore(rolls, recipe)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Unlock() })
	s, err := startSession(src, recipe, store, "", nil, func(o *engine.Options) { o.Model, o.ModelName = model, "taught" })
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := s.run(ctx); err != nil {
		t.Fatalf("run: %v", err)
	}
	_, defects, _, err := rollmap.ReadRoll(filepath.Join(rolls, s.roll.ID()))
	if err != nil {
		t.Fatal(err)
	}
	// A defect is at its frame's truth when its box meets the mask's box
	// grown by 16 lines along and 16 pixels across (the model's patch and
	// smoothing widen a box): much tighter than the acceptance's one
	// frame, so a false defect at a neighbouring joint is not excused.
	frameM := float64(256) * src.Info().LineMM() / 1000
	mdTol := 16 * src.Info().LineMM() / 1000
	cdTol := 16 * src.Info().Cameras[0].PixelMM
	found := make([]string, len(truth))
	var falseDefects int
	for _, d := range defects {
		hit := false
		for i, tr := range truth {
			if d.MDStartM < tr.MDEndM+mdTol && d.MDEndM > tr.MDStartM-mdTol &&
				d.CDStartMM < tr.CDEndMM+cdTol && d.CDEndMM > tr.CDStartMM-cdTol {
				hit = true
				found[i] += " " + string(d.Detector)
			}
		}
		if !hit {
			falseDefects++
			t.Errorf("false defect %d at MD %.4f–%.4f m, CD %.1f–%.1f mm, score %.2f (%s, %s)", d.ID, d.MDStartM, d.MDEndM, d.CDStartMM, d.CDEndMM, d.PeakScore, d.Class, d.Detector)
		}
	}
	for i, tr := range truth {
		switch {
		case found[i] == "":
			t.Errorf("defect frame %s (MD %.4f–%.4f m, CD %.1f–%.1f mm) not flagged at its position", tr.Class, tr.MDStartM, tr.MDEndM, tr.CDStartMM, tr.CDEndMM)
		case tr.Class == "float" && !strings.Contains(found[i], "onnx"):
			t.Errorf("float at MD %.4f m found only by%s: the taught model must see a texture defect", tr.MDStartM, found[i])
		}
	}
	goodM := 12 * frameM
	t.Logf("taught threshold %.3f; %d defects; defect frames found by:%q; %d false over %.2f m of good frames and %d joints",
		taught.Threshold, len(defects), found, falseDefects, goodM, 14)
}

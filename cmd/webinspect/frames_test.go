package main

import (
	"context"
	"flag"
	"image"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/webinspect/webinspect/acquisition"
	"github.com/webinspect/webinspect/acquisition/sim"
	"github.com/webinspect/webinspect/engine"
	"github.com/webinspect/webinspect/internal/pngtest"
	"github.com/webinspect/webinspect/rollmap"
)

// wovenSet writes an MVTec-layout set of woven-looking frames (a weave
// of two sinusoids plus noise, as line-scan fabric frames look): good
// frames, and frames of two defect types with a dark knot or a bright
// streak whose masks are in ground_truth. It returns SET/test.
func wovenSet(t *testing.T, good int, defects map[string][]image.Rectangle) string {
	t.Helper()
	const w, h = 512, 256
	root := t.TempDir()
	rng := rand.New(rand.NewPCG(3, 4))
	weave := func(x, y int) float64 {
		return 120 + 14*math.Sin(float64(x)*2*math.Pi/6)*math.Sin(float64(y)*2*math.Pi/6) + rng.NormFloat64()*3
	}
	clamp := func(v float64) uint8 { return uint8(max(0, min(255, math.Round(v)))) }
	for i := range good {
		pngtest.WriteFunc(t, filepath.Join(root, "test", "good", frameName(i)), w, h, func(x, y int) uint8 { return clamp(weave(x, y)) })
	}
	for class, boxes := range defects {
		for i, b := range boxes {
			shift := -80.0 // a dark knot
			if class == "streak" {
				shift = 90 // a bright streak
			}
			pngtest.WriteFunc(t, filepath.Join(root, "test", class, frameName(i)), w, h, func(x, y int) uint8 {
				v := weave(x, y)
				if image.Pt(x, y).In(b) {
					v += shift
				}
				return clamp(v)
			})
			writeMask(t, root, class, i, w, h, b)
		}
	}
	return filepath.Join(root, "test")
}

// writeMask writes the 0/255 mask of box b for defect frame i of class
// in an MVTec-layout set at root.
func writeMask(t *testing.T, root, class string, i, w, h int, b image.Rectangle) {
	t.Helper()
	pngtest.WriteFunc(t, filepath.Join(root, "ground_truth", class, strings.TrimSuffix(frameName(i), ".png")+"_mask.png"), w, h, func(x, y int) uint8 {
		if image.Pt(x, y).In(b) {
			return 255
		}
		return 0
	})
}

func frameName(i int) string { return string(rune('a'+i/26)) + string(rune('a'+i%26)) + ".png" }

// TestFramesSourceThroughTheEngine plays a folder of frames as one web
// through `run --source frames:DIR`'s code path (the same recipe, engine
// and roll map a mill uses) and checks the roll map against the frames'
// truth: every defect frame is flagged inside its MD range, at its mask's
// CD position, and the good frames give no false defect.
func TestFramesSourceThroughTheEngine(t *testing.T) {
	t.Parallel()
	dir := wovenSet(t, 24, map[string][]image.Rectangle{
		"knot":   {image.Rect(100, 90, 112, 104), image.Rect(400, 20, 414, 36)},
		"streak": {image.Rect(250, 60, 254, 200)},
	})
	truthPath := filepath.Join(t.TempDir(), "truth.csv")
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	sf := addSimFlags(fs, "10km", -1)
	ff := addFramesFlags(fs)
	if err := fs.Parse([]string{"--truth-out", truthPath}); err != nil {
		t.Fatal(err)
	}
	src, err := ff.open("frames:"+dir, "", sf)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if src.Info().Live {
		t.Fatal("a frames source must not be live: nothing may be dropped")
	}
	tf, err := os.Open(truthPath)
	if err != nil {
		t.Fatal(err)
	}
	truth, err := sim.ReadTruthCSV(tf)
	tf.Close()
	if err != nil {
		t.Fatal(err)
	}
	if len(truth) != 3 {
		t.Fatalf("truth.csv has %d defects, want 3 (one per defect frame)", len(truth))
	}
	recipe, err := loadRecipe("", src.Info())
	if err != nil {
		t.Fatal(err)
	}
	s, rolls := testSession(t, src, recipe)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := s.run(ctx); err != nil {
		t.Fatalf("run: %v", err)
	}
	info, defects, unins, err := rollmap.ReadRoll(filepath.Join(rolls, s.roll.ID()))
	if err != nil {
		t.Fatal(err)
	}
	if len(unins) != 0 {
		t.Errorf("uninspected ranges on a frames web: %+v", unins)
	}
	lineM := src.Info().LineMM() / 1000
	if want := float64(src.Lines()) * lineM; math.Abs(info.LengthM-want) > 1e-9 {
		t.Errorf("roll length %.4f m, the frames hold %.4f m", info.LengthM, want)
	}
	// Tolerance: one line along, one pixel across (the positions come
	// from the encoder and the geometry, not from a guess).
	pxMM := src.Info().Cameras[0].PixelMM
	found := make([]bool, len(truth))
	for _, d := range defects {
		hit := false
		for i, tr := range truth {
			if d.MDStartM >= tr.MDStartM-lineM && d.MDEndM <= tr.MDEndM+lineM &&
				d.CDStartMM >= tr.CDStartMM-pxMM && d.CDEndMM <= tr.CDEndMM+pxMM {
				found[i], hit = true, true
			}
		}
		if !hit {
			t.Errorf("false defect %d at MD %.4f–%.4f m, CD %.1f–%.1f mm (%s)", d.ID, d.MDStartM, d.MDEndM, d.CDStartMM, d.CDEndMM, d.Class)
		}
	}
	for i, ok := range found {
		if !ok {
			t.Errorf("defect frame %s (MD %.4f–%.4f m, CD %.1f–%.1f mm) not flagged at its position",
				truth[i].Class, truth[i].MDStartM, truth[i].MDEndM, truth[i].CDStartMM, truth[i].CDEndMM)
		}
	}
}

// TestFramesSourceBadInput: what is wrong with a frames source is named.
func TestFramesSourceBadInput(t *testing.T) {
	t.Parallel()
	dir := wovenSet(t, 1, nil)
	geo := filepath.Join(t.TempDir(), "geometry.json")
	if err := os.WriteFile(geo, []byte(`{"source":{"mm_per_count":0.1,"counts_per_line":2,"web_width_mm":200,"cameras":[{"width":1024,"pixel_mm":0.2}]}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		args []string
		src  string
		geo  string
		want string
	}{
		{"no folder", nil, "frames:", "", "needs the folder"},
		{"missing folder", nil, "frames:" + filepath.Join(dir, "nosuch"), "", "not a directory"},
		{"bad order", []string{"--frames-order", "random"}, "frames:" + dir, "", "Order"},
		{"bad repeat", []string{"--frames-repeat", "0"}, "frames:" + dir, "", "Repeat"},
		{"geometry width", nil, "frames:" + dir, geo, "camera width 1024, but the frames are 512 pixels wide"},
	} {
		fs := flag.NewFlagSet("run", flag.ContinueOnError)
		sf := addSimFlags(fs, "10km", -1)
		ff := addFramesFlags(fs)
		if err := fs.Parse(c.args); err != nil {
			t.Fatal(err)
		}
		s, err := ff.open(c.src, c.geo, sf)
		if err == nil {
			s.Close()
			t.Errorf("%s: opened", c.name)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %q does not say %q", c.name, err, c.want)
		}
	}
	// A geometry file of the frames' width sets the encoder and pixel size.
	if err := os.WriteFile(geo, []byte(`{"source":{"mm_per_count":0.1,"counts_per_line":2,"lines_per_block":64,"web_width_mm":200,"cameras":[{"width":512,"pixel_mm":0.2,"offset_mm":5}]}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	sf := addSimFlags(fs, "10km", -1)
	ff := addFramesFlags(fs)
	s, err := ff.open("frames:"+dir, geo, sf)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	in := s.Info()
	if in.LineMM() != 0.2 || in.LinesPerBlock != 64 || in.Cameras[0].PixelMM != 0.2 || in.Cameras[0].OffsetMM != 5 {
		t.Errorf("geometry not applied: %+v", in)
	}
}

// testSession opens a store in a fresh folder and starts a session on src
// with recipe, as run does with a new roll; the store is unlocked when
// the test ends. It returns the session and the store's folder.
func testSession(t *testing.T, src acquisition.Source, recipe *engine.Recipe) (*session, string) {
	t.Helper()
	rolls := t.TempDir()
	store, err := openStore(rolls, recipe)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Unlock() })
	s, err := startSession(src, recipe, store, "", prometheus.NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return s, rolls
}

package main

import (
	"bytes"
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/webinspect/webinspect/internal/pngtest"
	"github.com/webinspect/webinspect/model/onnx/ortest"

	"github.com/webinspect/webinspect/acquisition"
	"github.com/webinspect/webinspect/acquisition/recording"
	"github.com/webinspect/webinspect/model/onnx"
)

// weave returns a w×h woven-looking texture.
func weave(rng *rand.Rand, w, h int) []uint8 {
	pix := make([]uint8, w*h)
	ph := rng.Float64() * 6
	for y := range h {
		for x := range w {
			v := 120 + 30*math.Sin(2*math.Pi*(float64(x)+ph)/6)*math.Sin(2*math.Pi*float64(y)/6) + rng.NormFloat64()*4
			pix[y*w+x] = uint8(min(max(v, 0), 255))
		}
	}
	return pix
}

// smallTeachFlags keep the tests fast.
var smallTeachFlags = []string{"--tile-h", "32", "--tile-w", "64", "--bin", "1", "--patch", "5",
	"--components", "4", "--clusters", "1", "--edge-clusters", "0", "--smooth", "3", "--max-patches", "20000", "--folds", "3"}

func TestTeachFromPNGDir(t *testing.T) {
	ortest.Require(t)
	rng := rand.New(rand.NewPCG(1, 1))
	src := t.TempDir()
	for i := range 4 {
		pngtest.Write(t, filepath.Join(src, string(rune('a'+i))+".png"), 80, 40, weave(rng, 80, 40))
	}
	out := filepath.Join(t.TempDir(), "model")
	var buf bytes.Buffer
	args := append([]string{"--from", src, "--out", out, "--far", "0.02"}, smallTeachFlags...)
	if err := cmdTeach(context.Background(), args, &buf); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "threshold") {
		t.Errorf("output %q does not report the threshold", buf.String())
	}
	sc, err := onnx.ReadSidecar(filepath.Join(out, onnx.SidecarFileName))
	if err != nil {
		t.Fatal(err)
	}
	if sc.Threshold == nil || sc.MadeBy.Params["target_far"] != "0.02" || sc.MadeBy.Source != src || sc.MadeBy.Params["images"] != "4" {
		t.Errorf("sidecar %+v", sc)
	}
	if _, err := onnx.Load(out, onnx.DefaultModelOptions()); err != nil {
		t.Fatal(err)
	}
}

func TestTeachFromRecording(t *testing.T) {
	ortest.Require(t)
	dir := filepath.Join(t.TempDir(), "rec")
	info := acquisition.Info{Name: "test", Material: "fabric", WebWidthMM: 96, MMPerCount: 1, CountsPerLine: 1,
		LinesPerBlock: 32, SpeedMPerMin: 10, Cameras: []acquisition.CameraInfo{{Index: 0, Width: 96, PixelMM: 1}}}
	w, err := recording.Create(dir, info, nil)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(2, 2))
	tex := weave(rng, 96, 32*12)
	for b := range 12 {
		blk := acquisition.NewBlock(32, 96)
		blk.Lines, blk.FirstLine = 32, int64(32*b)
		copy(blk.Pix, tex[b*32*96:(b+1)*32*96])
		for i := range blk.Counts {
			blk.Counts[i] = int64(32*b + i)
		}
		if err := w.WriteBlock(blk); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "model")
	var buf bytes.Buffer
	// 1 mm per line: 0.2 m = 200 lines = 6 frames of 32 lines.
	args := append([]string{"--from", dir, "--out", out, "--metres", "0.2"}, smallTeachFlags...)
	if err := cmdTeach(context.Background(), args, &buf); err != nil {
		t.Fatal(err)
	}
	sc, err := onnx.ReadSidecar(filepath.Join(out, onnx.SidecarFileName))
	if err != nil {
		t.Fatal(err)
	}
	if got := sc.MadeBy.Params["images"]; got != "6" {
		t.Errorf("taught on %s frames, want 6 (0.2 m of 1 mm lines in frames of 32)", got)
	}
	if !strings.Contains(sc.MadeBy.Source, "first 0.2 m") {
		t.Errorf("made_by.source %q does not say how much was read", sc.MadeBy.Source)
	}
}

func TestTeachUsageErrors(t *testing.T) {
	ctx := context.Background()
	var buf bytes.Buffer
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--out", "x"}, "--from"},
		{[]string{"--from", "x"}, "--out"},
		{[]string{"--from", "x", "--out", "y", "--bin", "3"}, "Bin"},
		{[]string{"--from", "x", "--out", "y", "stray"}, "stray"},
	} {
		err := cmdTeach(ctx, c.args, &buf)
		if !errors.As(err, new(usageError)) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("teach %v: err = %v, want a usage error naming %s", c.args, err, c.want)
		}
	}
	err := cmdTeach(ctx, []string{"--from", t.TempDir(), "--out", t.TempDir()}, &buf)
	if err == nil || !strings.Contains(err.Error(), "no .png files") {
		t.Errorf("empty --from: err = %v, want one naming the missing images", err)
	}
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/webinspect/webinspect/internal/pngtest"
	"github.com/webinspect/webinspect/model/onnx/ortest"
)

// evalSet writes a tiny MVTec-layout dataset with a dark square on each
// defective image, with masks when masks is true.
func evalSet(t *testing.T, masks bool) string {
	t.Helper()
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(3, 3))
	const w, h = 80, 48
	for i := range 4 {
		n := string(rune('a'+i)) + ".png"
		pngtest.Write(t, filepath.Join(dir, "train", "good", n), w, h, weave(rng, w, h))
		pngtest.Write(t, filepath.Join(dir, "test", "good", n), w, h, weave(rng, w, h))
		pix, mask := weave(rng, w, h), make([]uint8, w*h)
		for y := 10 + 5*i; y < 17+5*i; y++ {
			for x := 12 + 10*i; x < 19+10*i; x++ {
				pix[y*w+x], mask[y*w+x] = 25, 255
			}
		}
		pngtest.Write(t, filepath.Join(dir, "test", "hole", n), w, h, pix)
		if masks {
			pngtest.Write(t, filepath.Join(dir, "ground_truth", "hole", string(rune('a'+i))+"_mask.png"), w, h, mask)
		}
	}
	return dir
}

func TestEvalJSONContract(t *testing.T) {
	ortest.Require(t)
	dir := evalSet(t, true)
	heat := filepath.Join(t.TempDir(), "heat")
	var buf bytes.Buffer
	args := append([]string{dir, "--json", "--heatmaps", heat}, smallTeachFlags...)
	if err := cmdEval(context.Background(), args, &buf); err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("output is not one JSON object: %v\n%s", err, buf.String())
	}
	for _, k := range []string{"image_auroc", "pixel_auroc", "pro", "threshold", "false_alarm_rate", "recall_at_threshold", "mpx_per_s"} {
		v, ok := got[k].(float64)
		if !ok {
			t.Errorf("%s = %v, want a number", k, got[k])
			continue
		}
		if (k == "image_auroc" || k == "recall_at_threshold") && v < 0.999 {
			t.Errorf("%s = %v, want 1 for obvious holes", k, v)
		}
	}
	if n, _ := os.ReadDir(heat); len(n) != 8 {
		t.Errorf("%d heat maps, want 8", len(n))
	}
	// Without masks the pixel metrics are null, not absent or zero.
	dir = evalSet(t, false)
	buf.Reset()
	if err := cmdEval(context.Background(), append([]string{dir, "--json"}, smallTeachFlags...), &buf); err != nil {
		t.Fatal(err)
	}
	got = nil
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"pixel_auroc", "pro"} {
		if v, ok := got[k]; !ok || v != nil {
			t.Errorf("%s = %v (present %v), want null", k, v, ok)
		}
	}
	// A taught model given with --model is used instead of teaching; the
	// text report names it.
	model := filepath.Join(t.TempDir(), "m")
	if err := cmdTeach(context.Background(), append([]string{"--from", dir, "--out", model}, smallTeachFlags...), &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	buf.Reset()
	if err := cmdEval(context.Background(), []string{dir, "--model", model}, &buf); err != nil {
		t.Fatal(err)
	}
	if out := buf.String(); !strings.Contains(out, "image AUROC 1.0000") || !strings.Contains(out, model) {
		t.Errorf("text report:\n%s", out)
	}
}

func TestEvalErrors(t *testing.T) {
	ctx := context.Background()
	var buf bytes.Buffer
	if err := cmdEval(ctx, nil, &buf); !errors.As(err, new(usageError)) {
		t.Errorf("no dataset: err = %v, want a usage error", err)
	}
	if err := cmdEval(ctx, []string{filepath.Join(t.TempDir(), "none")}, &buf); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("missing dataset: err = %v", err)
	}
	if err := cmdEval(ctx, []string{t.TempDir(), "--workers", "0"}, &buf); !errors.As(err, new(usageError)) || !strings.Contains(err.Error(), "Workers") {
		t.Errorf("--workers 0: err = %v, want a usage error naming Workers", err)
	}
	ortest.Require(t)
	err := cmdEval(ctx, []string{t.TempDir()}, &buf)
	if err == nil || !strings.Contains(err.Error(), "test/") {
		t.Errorf("empty dataset: err = %v, want one naming test/", err)
	}
	dir := evalSet(t, true)
	if err := os.RemoveAll(filepath.Join(dir, "train")); err != nil {
		t.Fatal(err)
	}
	err = cmdEval(ctx, []string{dir}, &buf)
	if err == nil || !strings.Contains(err.Error(), "train/good") {
		t.Errorf("no train/good: err = %v, want one naming train/good", err)
	}
	dir = evalSet(t, true)
	pngtest.Write(t, filepath.Join(dir, "ground_truth", "hole", "c_mask.png"), 8, 8, make([]uint8, 64))
	err = cmdEval(ctx, append([]string{dir}, smallTeachFlags...), &buf)
	if err == nil || !strings.Contains(err.Error(), "c_mask.png is 8×8") {
		t.Errorf("mask of the wrong size: err = %v, want one naming the mask and its size", err)
	}
}

package infer

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/webinspect/webinspect/acquisition"
	"github.com/webinspect/webinspect/acquisition/frames"
	"github.com/webinspect/webinspect/model/onnx"
	"github.com/webinspect/webinspect/model/onnx/ortest"
	"github.com/webinspect/webinspect/model/teach"
)

// sharedData returns the shared data folder ($WEBINSPECT_DATA, else
// ../shared/data beside the checkout) or skips.
func sharedData(t *testing.T, set string) string {
	root := os.Getenv("WEBINSPECT_DATA")
	if root == "" {
		root = filepath.Join("..", "..", "..", "..", "shared", "data")
		if _, err := os.Stat(root); err != nil {
			root = filepath.Join("..", "..", "..", "shared", "data")
		}
	}
	dir := filepath.Join(root, set)
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("no shared data at %s (set WEBINSPECT_DATA)", dir)
	}
	return dir
}

// TestFabricFramesAsWeb teaches the default model on AITEX fabric 00's
// train/good and plays its test frames as one web (acquisition/frames)
// through the engine's tiled path, as `--source frames:` does: it logs
// which defect frames are flagged within their MD range and the false
// components on good frames, the numbers to set beside `webinspect eval`.
// It needs the shared data and teaches on real frames (about a minute,
// several under -race), so it runs only with WEBINSPECT_REAL_DATA=1.
func TestFabricFramesAsWeb(t *testing.T) {
	if os.Getenv("WEBINSPECT_REAL_DATA") != "1" || testing.Short() {
		t.Skip("set WEBINSPECT_REAL_DATA=1 (and no -short) to teach on and play the shared AITEX frames")
	}
	ortest.Require(t)
	set := sharedData(t, "aitex_fabric00")
	imgs, err := teach.ReadDir(filepath.Join(set, "train", "good"))
	if err != nil {
		t.Fatal(err)
	}
	taught, err := teach.Teach(imgs, teach.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := taught.WriteModel(dir); err != nil {
		t.Fatal(err)
	}
	m, err := onnx.Load(dir, onnx.ModelOptions{Batch: 4, IntraOpThreads: 1})
	if err != nil {
		t.Fatal(err)
	}
	prep, err := teach.PrepFromSidecar(m.Sidecar())
	if err != nil {
		t.Fatal(err)
	}
	o := DefaultOptions()
	o.Bin = prep.Bin
	o.OverlapCD, o.OverlapMD = 2*prep.Context, 2*prep.Context
	p := newPool(t, m, o)
	src, err := frames.Open(filepath.Join(set, "test"), frames.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	st := src.Streams()[0]
	d := newDetector(t, p, st.Camera().Width)
	b := acquisition.NewBlock(src.Info().LinesPerBlock, st.Camera().Width)
	var comps []Component
	for {
		err := st.ReadBlock(context.Background(), b)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if comps, err = d.ProcessBlock(comps, b); err != nil {
			t.Fatal(err)
		}
	}
	if comps, err = d.Flush(comps); err != nil {
		t.Fatal(err)
	}
	fr := src.Frames()
	flagged := make([]int, len(fr))
	for _, c := range comps {
		for i, f := range fr {
			if c.Line0 < f.Line0+int64(f.Lines) && c.Line1 > f.Line0 {
				flagged[i]++
			}
		}
	}
	var hit, bad, falseComps, goodFrames int
	for i, f := range fr {
		if f.Class == "good" {
			goodFrames++
			falseComps += flagged[i]
			continue
		}
		bad++
		if flagged[i] > 0 {
			hit++
		}
		t.Logf("%s %s: %d components", f.Class, filepath.Base(f.Path), flagged[i])
	}
	metres := src.MDM(src.Lines())
	t.Logf("defect frames flagged within their MD range: %d/%d; false components on %d good frames: %d (web %.2f m); eval threshold %.3f",
		hit, bad, goodFrames, falseComps, metres, taught.Threshold)
	if hit == 0 {
		t.Errorf("no defect frame flagged")
	}
}

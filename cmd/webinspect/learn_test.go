package main

import (
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/webinspect/webinspect/engine"
	"github.com/webinspect/webinspect/model/classify"
	"github.com/webinspect/webinspect/model/onnx"
	"github.com/webinspect/webinspect/model/onnx/ortest"
	"github.com/webinspect/webinspect/rollmap"
	"github.com/webinspect/webinspect/rollmap/versions"
)

// TestLearnTooFewLabels: learn from a roll with only a few reviewed
// defects says which classes need how many more reviews, and writes
// nothing.
func TestLearnTooFewLabels(t *testing.T) {
	dir := t.TempDir()
	rec, rolls, out := filepath.Join(dir, "D"), filepath.Join(dir, "R"), filepath.Join(dir, "clf")
	simulate(t, rec, "--length", "4m", "--defects", "8")
	if code, o, stderr := runCLI(t, "replay", rec, "--rolls", rolls); code != 0 {
		t.Fatalf("replay: %s %s", o, stderr)
	}
	roll := rollDir(t, rolls)
	st, err := rollmap.OpenStore(rolls)
	if err != nil {
		t.Fatal(err)
	}
	ds, err := st.Defects(filepath.Base(roll), rollmap.Query{})
	if err != nil || len(ds) < 3 {
		t.Fatalf("%d defects, %v", len(ds), err)
	}
	for _, d := range ds[:3] {
		if _, err := st.AddReview(filepath.Base(roll), rollmap.Review{DefectID: d.ID, Action: rollmap.ActionConfirm, Label: d.Class,
			Reviewer: "qa", Time: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	code, _, stderr := runCLI(t, "learn", "--rolls", rolls, "--out", out)
	oneLineError(t, code, stderr, "too few labels", "at least 5", "needs", "review more defects")
	// The taught model's features from a roll inspected without a model:
	// refused, saying why and what to do instead.
	code, _, stderr = runCLI(t, "learn", "--rolls", rolls, "--out", out, "--features", string(classify.FeaturesWithModel))
	oneLineError(t, code, stderr, "none of the", "model_version is empty", "--features measured")
	if code, _, stderr = runCLI(t, "learn", "--rolls", rolls, "--out", out, "--features", "pixels"); code == 0 || !strings.Contains(stderr, `feature set "pixels"`) {
		t.Errorf("--features pixels: exit %d, %s", code, stderr)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("a classifier directory was written: %v", err)
	}
}

type fakeSetter struct{ cur *engine.Classifier }

func (f *fakeSetter) SetClassifier(c *engine.Classifier) (*engine.Classifier, error) {
	old := f.cur
	f.cur = c
	return old, nil
}

// TestClassifierReloadKeepsPrevious: a classifier directory that was
// replaced by a corrupt or incompatible one is refused on reload with an
// error naming why, and the engine keeps the classifier it had; a good
// new one is swapped in and registered as a new version.
func TestClassifierReloadKeepsPrevious(t *testing.T) {
	ortest.Require(t)
	if err := onnx.Init(""); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 1))
	nf := classify.NumFeatures
	train := func(shift float32) *classify.Weights {
		var ex []classify.Example
		for i := range 40 {
			f := make([]float32, nf)
			for j := range f {
				f[j] = float32(rng.NormFloat64()) + float32(i%2)*3 + shift
			}
			ex = append(ex, classify.Example{Features: f, Label: []string{"knot", "hole"}[i%2]})
		}
		w, err := classify.Train(ex, classify.DefaultTrainOptions())
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	root, dir := t.TempDir(), filepath.Join(t.TempDir(), "clf")
	if err := classify.Write(dir, train(0), classify.Inputs{}, nil); err != nil {
		t.Fatal(err)
	}
	reg, err := versions.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	w := &wired{registry: reg, classifierDir: dir}
	first, err := w.loadClassifier(dir)
	if err != nil {
		t.Fatal(err)
	}
	e := &fakeSetter{cur: first}
	graph := filepath.Join(dir, classify.GraphFileName)
	good, _ := os.ReadFile(graph)
	os.WriteFile(graph, good[:len(good)/3], 0o644)
	if err := w.reloadClassifier(e); !errors.Is(err, classify.ErrBadClassifier) || !strings.Contains(err.Error(), classify.GraphFileName) {
		t.Errorf("corrupt classifier: %v", err)
	}
	if e.cur != first {
		t.Error("a corrupt classifier replaced the one in use")
	}
	if err := classify.Write(dir, train(1), classify.Inputs{}, nil); err != nil {
		t.Fatal(err)
	}
	if err := w.reloadClassifier(e); err != nil {
		t.Fatal(err)
	}
	if e.cur == first || e.cur.Version == first.Version {
		t.Errorf("a good new classifier was not swapped in as a new version: %+v", e.cur)
	}
	vs, _ := reg.List()
	if len(vs) != 2 || vs[0].Kind != versions.KindClassifier || vs[1].ID != e.cur.Version {
		t.Errorf("registered versions %+v", vs)
	}
	// A classifier trained on a taught model's scores, reloaded where no
	// model runs: refused, naming the model it needs; the engine keeps
	// the one it has.
	nf = len(classify.FeaturesWithModel.Names())
	if err := classify.Write(dir, train(2), classify.Inputs{Set: classify.FeaturesWithModel, ModelVersion: "0123456789abcdef"}, nil); err != nil {
		t.Fatal(err)
	}
	second := e.cur
	if err := w.reloadClassifier(e); !errors.Is(err, classify.ErrIncompatible) || !strings.Contains(err.Error(), "0123456789abcdef") ||
		!strings.Contains(err.Error(), "no model is loaded") {
		t.Errorf("a classifier of another model's features: %v", err)
	}
	if e.cur != second {
		t.Error("a classifier of the taught model's features replaced the one in use in an engine without that model")
	}
	if vs, _ := reg.List(); len(vs) != 2 {
		t.Errorf("the refused classifier was registered: %+v", vs)
	}
	first.C.Close()
	e.cur.C.Close()
}

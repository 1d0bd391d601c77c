package classify

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/webinspect/webinspect/model/onnx/ortest"
)

// blobs returns n examples of k classes, each a Gaussian blob in feature
// space.
func blobs(n, k int, seed uint64) []Example {
	rng := rand.New(rand.NewPCG(seed, 3))
	centres := make([][]float32, k)
	crng := rand.New(rand.NewPCG(99, 3))
	for c := range centres {
		centres[c] = make([]float32, NumFeatures)
		for j := range centres[c] {
			centres[c][j] = float32(crng.NormFloat64() * 2)
		}
	}
	ex := make([]Example, n)
	for i := range ex {
		c := i % k
		f := make([]float32, NumFeatures)
		for j := range f {
			f[j] = centres[c][j] + float32(rng.NormFloat64())
		}
		ex[i] = Example{Features: f, Label: string(rune('a' + c))}
	}
	return ex
}

func TestTrainTooFewLabels(t *testing.T) {
	ex := blobs(40, 4, 1)
	ex = append(ex[:10], Example{Features: ex[0].Features, Label: "rare"})
	_, err := Train(ex, DefaultTrainOptions())
	if !errors.Is(err, ErrTooFewLabels) {
		t.Fatalf("err = %v, want ErrTooFewLabels", err)
	}
	for _, want := range []string{"at least 5", "rare has 1 (needs 4 more)", "a has 3 (needs 2 more)"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q does not say %q", err, want)
		}
	}
	one := blobs(10, 1, 1)
	if _, err := Train(one, DefaultTrainOptions()); !errors.Is(err, ErrTooFewLabels) || !strings.Contains(err.Error(), "at least 2 classes") {
		t.Errorf("one class: %v", err)
	}
}

// TestGraphMatchesGo trains each family on blobs (five classes, and two:
// ONNX Runtime's tree ensemble has a special case for two), writes the
// classifier, loads it in ONNX Runtime and checks every prediction against
// the Go reference, and that held-out blobs are classified well.
func TestGraphMatchesGo(t *testing.T) {
	ortest.Require(t)
	for _, k := range []int{5, 2} {
		for _, family := range []string{FamilyTrees, FamilyLogistic} {
			t.Run(fmt.Sprintf("classes=%d/family=%s", k, family), func(t *testing.T) { testGraphMatchesGo(t, k, family) })
		}
	}
}

func testGraphMatchesGo(t *testing.T, k int, family string) {
	var (
		w   Model
		err error
	)
	if family == FamilyTrees {
		w, err = TrainTrees(blobs(200, k, 1), DefaultTreeOptions())
	} else {
		w, err = Train(blobs(200, k, 1), DefaultTrainOptions())
	}
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "clf")
	if err := Write(dir, w, Inputs{}, map[string]string{"tool": "test"}); err != nil {
		t.Fatal(err)
	}
	c, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := c.Sidecar().Family; got != family {
		t.Errorf("sidecar family %q, want %q", got, family)
	}
	right := 0
	test := blobs(200, k, 2)
	for i, e := range test {
		got, conf, err := c.Classify(e.Features)
		if err != nil {
			t.Fatal(err)
		}
		want, wconf := w.Predict(e.Features)
		if got != want || conf-wconf > 1e-4 || wconf-conf > 1e-4 {
			t.Fatalf("example %d: ONNX %s %.5f, Go %s %.5f", i, got, conf, want, wconf)
		}
		if got == e.Label {
			right++
		}
	}
	if right < 185 {
		t.Errorf("held-out blobs: %d/200 right", right)
	}
}

// TestLoadRefuses: for each family, a corrupt graph, a sidecar of other
// features, a sidecar naming more classes than the graph returns, a model
// directory and a missing directory are refused with errors naming why.
func TestLoadRefuses(t *testing.T) {
	ortest.Require(t)
	for _, family := range []string{FamilyTrees, FamilyLogistic} {
		t.Run("family="+family, func(t *testing.T) { testLoadRefuses(t, family) })
	}
}

func testLoadRefuses(t *testing.T, family string) {
	var (
		w   Model
		err error
	)
	if family == FamilyTrees {
		w, err = TrainTrees(blobs(60, 3, 1), DefaultTreeOptions())
	} else {
		w, err = Train(blobs(60, 3, 1), DefaultTrainOptions())
	}
	if err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(t.TempDir(), "clf")
	if err := Write(good, w, Inputs{}, nil); err != nil {
		t.Fatal(err)
	}
	variant := func(edit func(dir string)) string {
		dir := filepath.Join(t.TempDir(), "v")
		if err := os.CopyFS(dir, os.DirFS(good)); err != nil {
			t.Fatal(err)
		}
		edit(dir)
		return dir
	}
	corrupt := variant(func(dir string) {
		b, _ := os.ReadFile(filepath.Join(dir, GraphFileName))
		os.WriteFile(filepath.Join(dir, GraphFileName), b[:len(b)/2], 0o644)
	})
	if _, err := Load(corrupt); !errors.Is(err, ErrBadClassifier) || !strings.Contains(err.Error(), GraphFileName) {
		t.Errorf("corrupt graph: %v", err)
	}
	otherFeatures := variant(func(dir string) {
		p := filepath.Join(dir, SidecarFileName)
		b, _ := os.ReadFile(p)
		os.WriteFile(p, []byte(strings.Replace(string(b), `"crop_std"`, `"crop_entropy"`, 1)), 0o644)
	})
	if _, err := Load(otherFeatures); !errors.Is(err, ErrIncompatible) || !strings.Contains(err.Error(), "webinspect learn") {
		t.Errorf("other features: %v", err)
	}
	fewerClasses := variant(func(dir string) {
		p := filepath.Join(dir, SidecarFileName)
		b, _ := os.ReadFile(p)
		os.WriteFile(p, []byte(strings.Replace(string(b), `"c"`, `"c", "d"`, 1)), 0o644)
	})
	if _, err := Load(fewerClasses); !errors.Is(err, ErrBadClassifier) || !strings.Contains(err.Error(), "4 classes") {
		t.Errorf("classes that do not match the graph: %v", err)
	}
	modelDir := variant(func(dir string) {
		os.WriteFile(filepath.Join(dir, SidecarFileName), []byte(`{"version":1,"input":{}}`), 0o644)
	})
	if _, err := Load(modelDir); !errors.Is(err, ErrIncompatible) || !strings.Contains(err.Error(), "kind") {
		t.Errorf("a model directory: %v", err)
	}
	if _, err := Load(filepath.Join(t.TempDir(), "none")); !errors.Is(err, ErrBadClassifier) {
		t.Errorf("missing: %v", err)
	}
}

// TestModelFeatureSet: a classifier trained with the taught model's
// features records its set and the model's version; it loads, computes
// its own number of features, and is compatible only with that model: an
// engine with no model or another one gets ErrIncompatible naming both.
// A classifier of the measured features runs with any model or none.
func TestModelFeatureSet(t *testing.T) {
	ortest.Require(t)
	names := FeaturesWithModel.Names()
	if len(names) != NumFeatures+len(ModelFeatureNames) || names[NumFeatures] != "model_flagged" {
		t.Fatalf("names %v", names)
	}
	ex := blobs(60, 3, 1)
	for i := range ex {
		ex[i].Features = append(ex[i].Features, 1, float32(i%3), 0.5, 0.1, 1)
	}
	w, err := TrainTrees(ex, DefaultTreeOptions())
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "clf")
	if err := Write(dir, w, Inputs{Set: FeaturesWithModel}, nil); err == nil || !strings.Contains(err.Error(), "needs the version") {
		t.Errorf("written without the model's version: %v", err)
	}
	if err := Write(dir, w, Inputs{}, nil); err == nil || !strings.Contains(err.Error(), "takes 39 features, the measured set has 34") {
		t.Errorf("written as the measured set: %v", err)
	}
	const mv = "00aa11bb22cc33dd"
	if err := Write(dir, w, Inputs{Set: FeaturesWithModel, ModelVersion: mv}, nil); err != nil {
		t.Fatal(err)
	}
	c, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if sc := c.Sidecar(); sc.FeatureSet != FeaturesWithModel || sc.ModelVersion != mv || len(sc.Features) != len(names) {
		t.Errorf("sidecar %+v", sc)
	}
	if err := c.CheckModel(mv); err != nil {
		t.Errorf("with its model: %v", err)
	}
	for _, other := range []string{"", "ffffffffffffffff"} {
		err := c.CheckModel(other)
		if !errors.Is(err, ErrIncompatible) || !strings.Contains(err.Error(), mv) || (other != "" && !strings.Contains(err.Error(), other)) {
			t.Errorf("engine model %q: %v", other, err)
		}
	}
	if err := c.CheckModel(""); err == nil || !strings.Contains(err.Error(), "no model is loaded") {
		t.Errorf("no model: %v", err)
	}
	got, _, err := c.Classify(ex[0].Features)
	if err != nil || got != predictClass(w, ex[0].Features) {
		t.Errorf("classify %q, %v; Go says %q", got, err, predictClass(w, ex[0].Features))
	}
	if _, _, err := c.Classify(ex[0].Features[:NumFeatures]); err == nil {
		t.Error("the measured features alone were taken")
	}
	// A sidecar claiming the measured set for the model's features, or a
	// set this engine does not know, is refused.
	p := filepath.Join(dir, SidecarFileName)
	b, _ := os.ReadFile(p)
	os.WriteFile(p, []byte(strings.Replace(string(b), `"feature_set": "measured+model"`, `"feature_set": "measured"`, 1)), 0o644)
	if _, err := Load(dir); !errors.Is(err, ErrIncompatible) || !strings.Contains(err.Error(), "39 features") {
		t.Errorf("model features under the measured set: %v", err)
	}
	os.WriteFile(p, []byte(strings.Replace(string(b), `"feature_set": "measured+model"`, `"feature_set": "measured+spectra"`, 1)), 0o644)
	if _, err := Load(dir); !errors.Is(err, ErrIncompatible) || !strings.Contains(err.Error(), `"measured+spectra"`) {
		t.Errorf("unknown set: %v", err)
	}

	// The measured set: any model or none.
	wm, err := TrainTrees(blobs(60, 3, 1), DefaultTreeOptions())
	if err != nil {
		t.Fatal(err)
	}
	mdir := filepath.Join(t.TempDir(), "m")
	if err := Write(mdir, wm, Inputs{}, nil); err != nil {
		t.Fatal(err)
	}
	cm, err := Load(mdir)
	if err != nil {
		t.Fatal(err)
	}
	defer cm.Close()
	if cm.Inputs().Set != FeaturesMeasured || cm.CheckModel("") != nil || cm.CheckModel(mv) != nil {
		t.Errorf("measured classifier: %+v, %v, %v", cm.Inputs(), cm.CheckModel(""), cm.CheckModel(mv))
	}
}

// TestModelFeatures: the model's features of a defect it flagged and of
// one it did not.
func TestModelFeatures(t *testing.T) {
	m := Measured{LengthMM: 4, WidthMM: 2, AreaMM2: 6, Polarity: "dark", Model: ModelScores{Peak: 9, Mean: 4, AreaMM2: 3}}
	f := FeaturesOf(nil, FeaturesWithModel, m, nil, 0, 0, 0)
	base := Features(nil, m, nil, 0, 0, 0)
	if len(f) != len(FeaturesWithModel.Names()) || !slices.Equal(f[:len(base)], base) {
		t.Fatalf("features %v", f)
	}
	want := []float32{1, float32(math.Log1p(9)), float32(math.Log1p(4)), float32(math.Log1p(3)), 0.5}
	if got := f[len(base):]; !slices.Equal(got, want) {
		t.Errorf("model features %v, want %v", got, want)
	}
	m.Model = ModelScores{}
	if got := FeaturesOf(nil, FeaturesWithModel, m, nil, 0, 0, 0)[len(base):]; !slices.Equal(got, make([]float32, 5)) {
		t.Errorf("not flagged: %v", got)
	}
	if got := FeaturesOf(nil, FeaturesMeasured, m, nil, 0, 0, 0); !slices.Equal(got, base) {
		t.Errorf("measured set: %v", got)
	}
}

func predictClass(m Model, f []float32) string {
	c, _ := m.Predict(f)
	return c
}

package classify

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
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
	if err := Write(dir, w, map[string]string{"tool": "test"}); err != nil {
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
	if err := Write(good, w, nil); err != nil {
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

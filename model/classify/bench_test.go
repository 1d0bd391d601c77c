package classify

import (
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/webinspect/webinspect/model/onnx/ortest"
)

// BenchmarkTrain trains each family on 300 labelled defects of 8
// classes, the size of the acceptance's reviewed set.
func BenchmarkTrain(b *testing.B) {
	ex := blobs(300, 8, 1)
	b.Run("family=trees", func(b *testing.B) {
		for b.Loop() {
			if _, err := TrainTrees(ex, DefaultTreeOptions()); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("family=logistic", func(b *testing.B) {
		for b.Loop() {
			if _, err := Train(ex, DefaultTrainOptions()); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkClassifyDefect is the classifier's cost per defect in the
// engine: features of a 96 × 96 crop, then one ONNX Runtime run of the
// default family (trees) trained on 300 defects of 8 classes.
func BenchmarkClassifyDefect(b *testing.B) {
	ortest.Require(b)
	w, err := TrainTrees(blobs(300, 8, 1), DefaultTreeOptions())
	if err != nil {
		b.Fatal(err)
	}
	dir := filepath.Join(b.TempDir(), "clf")
	if err := Write(dir, w, nil); err != nil {
		b.Fatal(err)
	}
	c, err := Load(dir)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	const side = 96
	crop := make([]uint8, side*side)
	for i := range crop {
		crop[i] = uint8(120 + rng.IntN(16))
	}
	for y := 40; y < 56; y++ {
		for x := 40; x < 56; x++ {
			crop[y*side+x] = 220
		}
	}
	m := Measured{LengthMM: 4, WidthMM: 4, AreaMM2: 12, Contrast: 90, PeakAbs: 100, Polarity: "bright", EdgeMM: 300}
	f := make([]float32, 0, NumFeatures)
	for b.Loop() {
		f = Features(f[:0], m, crop, side, side, side)
		if _, _, err := c.Classify(f); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFeatures is the feature part of BenchmarkClassifyDefect alone.
func BenchmarkFeatures(b *testing.B) {
	const side = 96
	crop := make([]uint8, side*side)
	for i := range crop {
		crop[i] = uint8(120 + i%16)
	}
	m := Measured{LengthMM: 4, WidthMM: 4, AreaMM2: 12, Contrast: 90, PeakAbs: 100, Polarity: "bright", EdgeMM: 300}
	f := make([]float32, 0, NumFeatures)
	for b.Loop() {
		f = Features(f[:0], m, crop, side, side, side)
	}
}

package classify

import (
	"math/rand/v2"
	"path/filepath"
	"syscall"
	"testing"
	"time"

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
// default family (trees) trained on 300 defects of 8 classes, for each
// feature set (the model's features are read from the defect's record:
// no inference). It reports the process's CPU time per defect beside
// the wall time (ns/op), which a shared machine inflates.
func BenchmarkClassifyDefect(b *testing.B) {
	ortest.Require(b)
	for _, set := range []FeatureSet{FeaturesMeasured, FeaturesWithModel} {
		b.Run("features="+string(set), func(b *testing.B) { benchClassifyDefect(b, set) })
	}
}

func benchClassifyDefect(b *testing.B, set FeatureSet) {
	ex := blobs(300, 8, 1)
	in := Inputs{Set: set}
	if set.NeedsModel() {
		in.ModelVersion = "0123456789abcdef"
		for i := range ex {
			ex[i].Features = append(ex[i].Features, float32(i%2), float32(i%5), float32(i%3), float32(i%7)/3, float32(i%4)/4)
		}
	}
	w, err := TrainTrees(ex, DefaultTreeOptions())
	if err != nil {
		b.Fatal(err)
	}
	dir := filepath.Join(b.TempDir(), "clf")
	if err := Write(dir, w, in, nil); err != nil {
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
	m := Measured{LengthMM: 4, WidthMM: 4, AreaMM2: 12, Contrast: 90, PeakAbs: 100, Polarity: "bright", EdgeMM: 300,
		Model: ModelScores{Peak: 12, Mean: 7, AreaMM2: 10}}
	f := make([]float32, 0, len(set.Names()))
	cpu0 := cpuTime()
	for b.Loop() {
		f = FeaturesOf(f[:0], set, m, crop, side, side, side)
		if _, _, err := c.Classify(f); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
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

package engine

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/webinspect/webinspect/internal/long"
	"github.com/webinspect/webinspect/model/classify"
	"github.com/webinspect/webinspect/model/onnx/ortest"
	"github.com/webinspect/webinspect/rollmap"
)

// labelled is a defect the engine decided, its crop and the class of the
// simulator's defect it found (the truth).
type labelled struct {
	d     rollmap.Defect
	pix   []uint8
	w, h  int
	truth string
}

// simLabelled inspects a simulated roll and returns its defects that have
// a crop and match one injected defect, with that defect's class.
func simLabelled(t *testing.T, seed int64, defects int, o Options) []labelled {
	t.Helper()
	cfg := testSimConfig("fabric", seed)
	cfg.LengthM, cfg.Defects = 40, defects
	imgs := &fakeImages{crops: map[string]fakeCrop{}}
	o.Images = imgs
	roll, s, err := runSim(t, cfg, nil, o)
	if err != nil {
		t.Fatal(err)
	}
	truth := s.Truth()
	var out []labelled
	for _, d := range roll.defects {
		c, ok := imgs.crops[d.ImageRef]
		if !ok {
			continue
		}
		best, bestDist := -1, math.Inf(1)
		for i, tr := range truth {
			const grow = 3.0 // mm
			if d.MDStartM*1000 > tr.MDEndM*1000+grow || tr.MDStartM*1000 > d.MDEndM*1000+grow ||
				d.CDStartMM > tr.CDEndMM+grow || tr.CDStartMM > d.CDEndMM+grow {
				continue
			}
			dist := math.Abs((tr.MDStartM+tr.MDEndM-d.MDStartM-d.MDEndM)*500) + math.Abs((tr.CDStartMM+tr.CDEndMM-d.CDStartMM-d.CDEndMM)/2)
			if dist < bestDist {
				best, bestDist = i, dist
			}
		}
		if best >= 0 {
			out = append(out, labelled{d: d, pix: c.pix, w: c.w, h: c.h, truth: truth[best].Class})
		}
	}
	return out
}

// reviewer labels defects as a scripted quality inspector would: the true
// class, except for noise of them, which get another class at random.
func reviewer(ls []labelled, noise float64, seed uint64) []classify.Example {
	rng := rand.New(rand.NewPCG(seed, 5))
	var classes []string
	for _, l := range ls {
		if !slices.Contains(classes, l.truth) {
			classes = append(classes, l.truth)
		}
	}
	ex := make([]classify.Example, len(ls))
	for i, l := range ls {
		label := l.truth
		if rng.Float64() < noise && len(classes) > 1 {
			for label == l.truth {
				label = classes[rng.IntN(len(classes))]
			}
		}
		ex[i] = classify.Example{Features: classify.Features(nil, MeasuredOf(&l.d, 400), l.pix, l.w, l.h, l.w), Label: label}
	}
	return ex
}

// TestClassifierFromReviews is the acceptance of the classifier learned
// from reviews: a scripted reviewer labels 300 defects of simulated rolls
// from the simulator's truth with 5 % label noise; the classifier is
// trained, written as ONNX, loaded into the engine, and on rolls it never
// saw must give ≥ 90 % of the defects their true class. The rule-based
// classes of the same defects are measured beside it.
func TestClassifierFromReviews(t *testing.T) {
	long.Skip(t, "inspects 8 simulated 40 m rolls")
	ortest.Require(t)
	var train []labelled
	for seed := int64(101); len(train) < 300; seed++ {
		train = append(train, simLabelled(t, seed, 50, Options{})...)
	}
	train = train[:300]
	ex := reviewer(train, 0.05, 1)
	t0 := time.Now()
	w, err := classify.TrainTrees(ex, classify.DefaultTreeOptions())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("trained on %d labels (%v) in %v", len(ex), classify.Counts(ex), time.Since(t0))
	dir := filepath.Join(t.TempDir(), "clf")
	if err := classify.Write(dir, w, nil); err != nil {
		t.Fatal(err)
	}
	c, err := classify.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	// Unseen rolls, inspected with the classifier in the engine.
	var test []labelled
	for seed := int64(901); len(test) < 200; seed++ {
		test = append(test, simLabelled(t, seed, 50, Options{Classifier: &Classifier{C: c, Version: "test"}})...)
	}
	learned, rule, final := 0, 0, 0 // final: the class recorded, after the override at 0.9
	confusion := map[[2]string]int{}
	for _, l := range test {
		if l.d.LearnedClass == "" || l.d.ClassifierVersion != "test" {
			t.Fatalf("defect %d has no learned class", l.d.ID)
		}
		if l.d.LearnedClass == l.truth {
			learned++
		} else {
			confusion[[2]string{l.truth, l.d.LearnedClass}]++
		}
		if l.d.RuleClass == l.truth {
			rule++
		}
		if l.d.Class == l.truth {
			final++
		}
	}
	accL, accR, accF := float64(learned)/float64(len(test)), float64(rule)/float64(len(test)), float64(final)/float64(len(test))
	t.Logf("unseen rolls: %d defects; learned class right %d (%.1f %%), rule-based %d (%.1f %%), recorded class (learned overrides from 0.9) %d (%.1f %%); confusions (truth, learned): %v",
		len(test), learned, 100*accL, rule, 100*accR, final, 100*accF, confusion)
	// Issue 16 asks for ≥ 90 % of the unseen defects given their true
	// class by the learned classifier; the rule-based classes of the same
	// defects (N, logged above) are measured beside it, and the class
	// recorded (the rules, overridden where the classifier is at least
	// 0.9 sure) must be no worse than the rules alone. Measured numbers:
	// bench/RESULTS.md.
	if accL < 0.90 || accF < accR {
		t.Errorf("learned classes right on %.1f %% of unseen defects, recorded %.1f %%, rules %.1f %%; want ≥ 90 %% and recorded ≥ rules", 100*accL, 100*accF, 100*accR)
	}
}

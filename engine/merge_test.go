package engine

import (
	"math"
	"testing"

	"github.com/webinspect/webinspect/acquisition"
	"github.com/webinspect/webinspect/rollmap"
)

// A defect's detector names each detector once, the threshold detector
// first, whatever order its parts were merged in (before, merging a part
// seen by both into one seen by the threshold detector alone gave
// "threshold+threshold+onnx:m").
func TestJoinDetectors(t *testing.T) {
	const th, m, both = "threshold", "onnx:m", "threshold+onnx:m"
	for _, tc := range [][3]rollmap.Detector{
		{th, th, th}, {m, m, m}, {th, m, both}, {m, th, both},
		{th, both, both}, {both, th, both}, {m, both, both}, {both, m, both}, {both, both, both},
		{"", th, th}, {m, "", m},
	} {
		if got := joinDetectors(tc[0], tc[1]); got != tc[2] {
			t.Errorf("joinDetectors(%q, %q) = %q, want %q", tc[0], tc[1], got, tc[2])
		}
	}
}

// A defect the threshold detector sees clearly is measured on its pixels
// when a taught model (of known reach) sees it too: the model's map
// spreads every defect by about its reach, and measured on that halo the
// recipes' size rules classed most defects wrong (32 % right on the
// simulator's test rolls with a model, 84 % without). Where the model saw
// more than its halo, the box takes that in; a subtle defect (faint
// threshold fragments) keeps the box of everything flagged.
func TestDefectMeasuredOnThresholdPixelsBesideModel(t *testing.T) {
	recipe, err := DefaultRecipe("fabric")
	if err != nil {
		t.Fatal(err)
	}
	info := acquisition.Info{MMPerCount: 0.25, CountsPerLine: 1, LinesPerBlock: 256, WebWidthMM: 500,
		Cameras: []acquisition.CameraInfo{{Width: 2000, PixelMM: 0.25}}}
	strong := strongContrast * recipe.Threshold.MinContrast
	for _, c := range []struct {
		name             string
		peak             float64
		m0, m1           int64   // the model's MD extent (counts)
		mcd0, mcd1       float64 // and CD (mm)
		wantMD0, wantMD1 float64 // m
		wantCD0, wantCD1 float64 // mm
		wantArea         float64 // mm²
	}{
		// Threshold: counts 100..139 (40 lines), CD 10–12 mm, 320 px = 20 mm².
		// The model's reach is 28 px = 28 counts = 7 mm.
		{"halo only", strong, 72, 167, 3, 19, 0.025, 0.035, 10, 12, 20},
		{"model sees a tail", strong, 72, 267, 3, 19, 0.025, 0.060, 10, 12, 2240 * 0.0625},
		{"subtle", strong - 1, 72, 167, 3, 19, 0.018, 0.042, 3, 19, 2240 * 0.0625},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := newMerger(recipe, info)
			a.reachCounts, a.reachMM = 28, 7
			a.rolls = newRollSegs(rollEnv{}, a.mpc, a.k, &rollSeg{w: &memRoll{}, from: math.MinInt64}, a.startsBefore)
			a.add(region{cam: 0, c0: 100, c1: 139, cd0: 10, cd1: 12, area: 320, owned: 320, dark: 320, sum: -320 * 50, sumAbs: 320 * c.peak, peak: c.peak, detectorID: "threshold"})
			a.add(region{cam: 0, c0: c.m0, c1: c.m1, cd0: c.mcd0, cd1: c.mcd1, area: 2240, owned: 2240, score: 9, scoreSum: 2240 * 7, scoreArea: 2240, detectorID: "onnx:m"})
			a.setFrontier(0, math.MaxInt64)
			ds := a.finalize()
			if len(ds) != 1 {
				t.Fatalf("%d defects, want 1", len(ds))
			}
			d := ds[0]
			if math.Abs(d.MDStartM-c.wantMD0) > 1e-9 || math.Abs(d.MDEndM-c.wantMD1) > 1e-9 ||
				math.Abs(d.CDStartMM-c.wantCD0) > 1e-9 || math.Abs(d.CDEndMM-c.wantCD1) > 1e-9 || math.Abs(d.AreaMM2-c.wantArea) > 1e-9 {
				t.Errorf("measured MD %.4f–%.4f m, CD %.2f–%.2f mm, %.2f mm²; want %.4f–%.4f m, %.2f–%.2f mm, %.2f mm²",
					d.MDStartM, d.MDEndM, d.CDStartMM, d.CDEndMM, d.AreaMM2, c.wantMD0, c.wantMD1, c.wantCD0, c.wantCD1, c.wantArea)
			}
		})
	}
}

// TestModelDefectKeptWhenThresholdSliverIsSmall: AITEX broken end 0003
// through the engine. The model flags 8 lines × 8 px (2 × 2 mm, peak 7.75
// over its threshold 6.74); the threshold detector sees a sliver of it,
// one line × 3 px at a strong contrast. The defect is measured on the
// sliver (0.75 mm), but the detection limit (min_size_mm 1) applies to what
// was flagged: it stays on the roll map. Measured on the sliver alone, it
// was dropped, a defect found and silently lost.
func TestModelDefectKeptWhenThresholdSliverIsSmall(t *testing.T) {
	recipe, err := DefaultRecipe("fabric")
	if err != nil {
		t.Fatal(err)
	}
	info := acquisition.Info{MMPerCount: 0.25, CountsPerLine: 1, LinesPerBlock: 256, WebWidthMM: 1024,
		Cameras: []acquisition.CameraInfo{{Width: 4096, PixelMM: 0.25}}}
	peak := 3 * recipe.Threshold.MinContrast
	a := newMerger(recipe, info)
	a.reachCounts, a.reachMM = 42, 10.5 // the default model's context 14 × bin 2 × 1.5
	a.rolls = newRollSegs(rollEnv{}, a.mpc, a.k, &rollSeg{w: &memRoll{}, from: math.MinInt64}, a.startsBefore)
	a.add(region{cam: 0, c0: 352, c1: 352, cd0: 982.75, cd1: 983.5, area: 3, owned: 3, dark: 3, sum: -3 * peak, sumAbs: 3 * peak, peak: peak, detectorID: "threshold"})
	a.add(region{cam: 0, c0: 348, c1: 355, cd0: 982, cd1: 984, area: 40, owned: 40, score: 7.75, scoreSum: 40 * 7.2, scoreArea: 40, detectorID: "onnx:m"})
	a.setFrontier(0, math.MaxInt64)
	ds := a.finalize()
	if len(ds) != 1 {
		t.Fatalf("%d defects on the roll map, want the one both detectors flagged", len(ds))
	}
	if d := ds[0]; d.CDEndMM-d.CDStartMM != 0.75 || d.ModelScore != 7.75 {
		t.Errorf("defect CD %.2f–%.2f mm, model score %v; want measured on the sliver (0.75 mm wide) with the model's score 7.75", d.CDStartMM, d.CDEndMM, d.ModelScore)
	}
	// A speck only the threshold detector saw stays below the limit.
	b := newMerger(recipe, info)
	b.rolls = newRollSegs(rollEnv{}, b.mpc, b.k, &rollSeg{w: &memRoll{}, from: math.MinInt64}, b.startsBefore)
	b.add(region{cam: 0, c0: 352, c1: 352, cd0: 982.75, cd1: 983.5, area: 3, owned: 3, dark: 3, sum: -3 * peak, sumAbs: 3 * peak, peak: peak, detectorID: "threshold"})
	b.setFrontier(0, math.MaxInt64)
	if ds := b.finalize(); len(ds) != 0 {
		t.Errorf("a 0.75 mm speck only the threshold detector saw: %d defects, want 0 (below min_size_mm)", len(ds))
	}
}

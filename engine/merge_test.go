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

package engine

import (
	"fmt"
	"math"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/webinspect/webinspect/acquisition"
	"github.com/webinspect/webinspect/rollmap"
	"github.com/webinspect/webinspect/rollmap/archive"
)

// Every defect gets a crop of its own pixels: the defect plus the margin,
// with the defect's polarity standing out from the margin around it.
func TestDefectCropsShowTheDefect(t *testing.T) {
	cfg := testSimConfig("fabric", 11)
	recipe, err := DefaultRecipe("fabric")
	if err != nil {
		t.Fatal(err)
	}
	imgs := &fakeImages{crops: map[string]fakeCrop{}}
	roll, _, err := runSim(t, cfg, recipe, Options{Images: imgs})
	if err != nil {
		t.Fatal(err)
	}
	if len(roll.defects) < 5 {
		t.Fatalf("only %d defects: the test proves nothing", len(roll.defects))
	}
	margin := recipe.Images.MarginPx
	checked := 0
	for _, d := range roll.defects {
		c, ok := imgs.crops[d.ImageRef]
		if !ok {
			t.Fatalf("defect %d has image_ref %q that the archive never got", d.ID, d.ImageRef)
		}
		wantW := int(math.Round((d.CDEndMM-d.CDStartMM)/cfg.PixelMM)) + 2*margin
		wantH := int(math.Round((d.MDEndM-d.MDStartM)*1000/cfg.LineMM)) + 2*margin
		if wantW <= recipe.Images.MaxPx && wantH <= recipe.Images.MaxPx && d.CDStartMM > 20 && d.CDEndMM < cfg.WidthMM-20 {
			if abs(c.w-wantW) > 2 || abs(c.h-wantH) > 2 {
				t.Errorf("defect %d (%.1f x %.1f mm): crop %dx%d px, want about %dx%d", d.ID, d.CDEndMM-d.CDStartMM, (d.MDEndM-d.MDStartM)*1000, c.w, c.h, wantW, wantH)
			}
		}
		if c.w <= 2*margin+2 || c.h <= 2*margin+2 || d.Polarity == "mixed" {
			continue
		}
		// Mean of the inner box against the margin ring.
		var in, out float64
		var nin, nout int
		for y := 0; y < c.h; y++ {
			for x := 0; x < c.w; x++ {
				v := float64(c.pix[y*c.w+x])
				if x >= margin && x < c.w-margin && y >= margin && y < c.h-margin {
					in += v
					nin++
				} else if x < margin/2 || x >= c.w-margin/2 || y < margin/2 || y >= c.h-margin/2 {
					out += v
					nout++
				}
			}
		}
		diff := in/float64(nin) - out/float64(nout)
		if (d.Polarity == "dark" && diff >= 0) || (d.Polarity == "bright" && diff <= 0) {
			t.Errorf("defect %d %s %s: crop inside minus margin = %.1f grey levels, wrong sign", d.ID, d.Class, d.Polarity, diff)
		}
		checked++
	}
	t.Logf("%d defects, %d crops checked for polarity", len(roll.defects), checked)
	if checked < 3 {
		t.Fatalf("only %d crops checked for polarity", checked)
	}

	// An archive that refuses crops never costs a defect record.
	failing := &fakeImages{crops: map[string]fakeCrop{}, fail: true}
	roll2, _, err := runSim(t, cfg, recipe, Options{Images: failing})
	if err != nil {
		t.Fatal(err)
	}
	if len(roll2.defects) != len(roll.defects) {
		t.Fatalf("with a failing archive %d defects were recorded, want %d", len(roll2.defects), len(roll.defects))
	}
	for _, d := range roll2.defects {
		if d.ImageRef != "" {
			t.Fatalf("defect %d has image_ref %q although the archive refused it", d.ID, d.ImageRef)
		}
	}
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

// Crops are cut in line numbers: a defect whose first and last encoder
// counts are not a whole number of lines apart, a defect longer than the
// crop, and one whose start has left the history.
func TestCropGeometry(t *testing.T) {
	const w, k = 64, 10
	h := newLineHistory(100, w, k)
	blk := &acquisition.Block{Lines: 200, Width: w, Stride: w, Pix: make([]uint8, 200*w), Counts: make([]int64, 200)}
	for i := range blk.Lines {
		blk.Counts[i] = int64(i)*k + 3 // counts 3, 13, 23, …: not multiples of k
		for x := range w {
			blk.Pix[i*w+x] = uint8(i)
		}
	}
	h.put(blk) // lines 100..199 stay
	recipe, _ := DefaultRecipe("fabric")
	recipe.Images.MarginPx, recipe.Images.MaxPx = 2, 16
	imgs := &fakeImages{crops: map[string]fakeCrop{}}
	m := unregisteredMetrics(1)
	c := &cropper{hist: []*lineHistory{h}, cameras: []acquisition.CameraInfo{{Width: w, PixelMM: 1}}, opts: recipe.Images,
		sink: imgs, linesMissing: m.cropLinesMissing, skipped: m.imagesSkipped}
	for _, tc := range []struct {
		name       string
		c0, c1     int64 // encoder counts of the defect's first and last line
		rows       int
		first, end uint8 // the grey level (= line number) of the first and last row
	}{
		{"counts off the line grid", 1509, 1521, 2 + 2 + 2 + 1, 148, 154},
		{"longer than the crop, start held", 1203, 1903, 16, 118, 133},
		{"longer than the crop, start gone", 203, 1903, 16, 177, 192},
	} {
		d := rollmap.Defect{ID: 1, EncoderCount: tc.c0, CDStartMM: 10, CDEndMM: 20}
		before := len(imgs.crops)
		c.attach(&d, tc.c1)
		cr, ok := imgs.crops[d.ImageRef]
		if !ok || len(imgs.crops) != before+1 {
			t.Fatalf("%s: no crop (image_ref %q)", tc.name, d.ImageRef)
		}
		if cr.h != tc.rows || cr.w != 10+2*2 || cr.pix[0] != tc.first || cr.pix[len(cr.pix)-1] != tc.end {
			t.Errorf("%s: crop %dx%d rows %d..%d, want %dx%d rows %d..%d", tc.name, cr.w, cr.h, cr.pix[0], cr.pix[len(cr.pix)-1],
				14, tc.rows, tc.first, tc.end)
		}
	}
}

// Every defect of a run gets a crop or the reason it has none
// (Defect.ImageError), and the engine's reasons are counted in
// webinspect_images_skipped_total{reason} (issue 15 #3).
func TestEveryDefectHasCropOrReason(t *testing.T) {
	cfg := testSimConfig("fabric", 5)
	cfg.LengthM, cfg.Defects = 8, 6
	recipe, err := DefaultRecipe("fabric")
	if err != nil {
		t.Fatal(err)
	}
	imgs := &fakeImages{crops: map[string]fakeCrop{}}
	roll, _, err := runSim(t, cfg, recipe, Options{Images: imgs})
	if err != nil {
		t.Fatal(err)
	}
	if len(roll.defects) < 4 {
		t.Fatalf("only %d defects: the test proves nothing", len(roll.defects))
	}
	for _, d := range roll.defects {
		if _, ok := imgs.crops[d.ImageRef]; !ok || d.ImageError != "" {
			t.Errorf("defect %d: image_ref %q (archived %v), image_error %q; want a crop", d.ID, d.ImageRef, ok, d.ImageError)
		}
	}

	// The archive stopped by a full disk: every defect says so. The
	// archive counts that reason itself, so the engine does not.
	longUnderRace(t, "two more runs take a minute under -race")
	reg := prometheus.NewRegistry()
	stopped := &fakeImages{crops: map[string]fakeCrop{}, err: fmt.Errorf("wrapped: %w", archive.ErrStopped)}
	roll2, _, err := runSim(t, cfg, recipe, Options{Images: stopped, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range roll2.defects {
		if d.ImageRef != "" || d.ImageError != archive.ReasonDiskFull {
			t.Errorf("archive stopped: defect %d image_ref %q image_error %q, want none and %q", d.ID, d.ImageRef, d.ImageError, archive.ReasonDiskFull)
		}
	}
	if got := skippedByReason(t, reg, archive.ReasonDiskFull); got != 0 {
		t.Errorf("engine counted %v disk_full skips, want 0 (the archive counts its own)", got)
	}

	// Crops off: every defect says so, and the engine counts them.
	reg = prometheus.NewRegistry()
	roll3, _, err := runSim(t, cfg, recipe, Options{Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range roll3.defects {
		if d.ImageRef != "" || d.ImageError != ImageArchiveDisabled {
			t.Errorf("crops off: defect %d image_ref %q image_error %q, want none and %q", d.ID, d.ImageRef, d.ImageError, ImageArchiveDisabled)
		}
	}
	if got := skippedByReason(t, reg, ImageArchiveDisabled); got != float64(len(roll3.defects)) {
		t.Errorf("webinspect_images_skipped_total{reason=%q} = %v, want %d", ImageArchiveDisabled, got, len(roll3.defects))
	}
}

// A defect whose lines have all left the history gets history_evicted,
// counted by the engine.
func TestCropHistoryEvictedIsRecorded(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := newMetrics(reg, 1)
	if err != nil {
		t.Fatal(err)
	}
	h := newLineHistory(16, 64, 1)
	c := &cropper{hist: []*lineHistory{h}, cameras: []acquisition.CameraInfo{{Width: 64, PixelMM: 1}},
		opts: ImagesOptions{MarginPx: 2, MaxPx: 32}, sink: &fakeImages{crops: map[string]fakeCrop{}},
		linesMissing: m.cropLinesMissing, skipped: m.imagesSkipped, reasons: m.skipReasons}
	d := rollmap.Defect{ID: 1, Camera: 0, CDStartMM: 10, CDEndMM: 20, EncoderCount: 1000, MDStartM: 1, MDEndM: 1.005}
	c.attach(&d, 1004)
	if d.ImageRef != "" || d.ImageError != ImageHistoryEvicted {
		t.Fatalf("defect outside the history: image_ref %q image_error %q, want none and %q", d.ImageRef, d.ImageError, ImageHistoryEvicted)
	}
	if got := skippedByReason(t, reg, ImageHistoryEvicted); got != 1 {
		t.Errorf("webinspect_images_skipped_total{reason=%q} = %v, want 1", ImageHistoryEvicted, got)
	}
}

func skippedByReason(t *testing.T, reg *prometheus.Registry, reason string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "webinspect_images_skipped_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" && l.GetValue() == reason {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

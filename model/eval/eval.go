// Package eval measures detection quality on a dataset in the MVTec AD
// layout: it teaches a model on the good training images (or loads one),
// scores every test image through ONNX Runtime and computes the field's
// metrics.
//
// # Dataset layout
//
//	SET/train/good/*.png                         good images to teach on
//	SET/test/good/*.png                          good images to score
//	SET/test/<type>/*.png                        defective images to score
//	SET/ground_truth/<type>/<stem>_mask.png      0/255 masks, same size as the image
//
// Without ground_truth/ the pixel metrics are absent (null in JSON).
//
// # Metrics
//
//   - image AUROC: Mann-Whitney U of image scores (max of the map), good
//     against defective, ties counting one half;
//   - pixel AUROC: the same over all test pixels (mask > 0 is defective);
//   - PRO: the mean overlap of each 8-connected ground-truth region with
//     the pixels above a threshold, integrated over the false positive rate
//     of good pixels from 0 to 0.3 and divided by 0.3 (MVTec AD);
//   - at the model's calibrated threshold: false_alarm_rate (good test
//     images scored at or above it) and recall_at_threshold (defective
//     images at or above it);
//   - mpx_per_s: test pixels scored per second of wall time (all workers,
//     each with its own one-thread session), images already decoded.
package eval

import (
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/webinspect/webinspect/model/onnx"
	"github.com/webinspect/webinspect/model/teach"
)

// Errors returned by this package, wrapped with the path at fault.
var (
	// ErrDataset is returned when the dataset directory does not have the
	// expected layout (no test/, no train/good when a model must be
	// taught, no images).
	ErrDataset = errors.New("eval: bad dataset")
	// ErrMask is returned for a mask that cannot be read or whose size
	// differs from its image.
	ErrMask = errors.New("eval: bad mask")
	// ErrOptions is returned when Options fail validation.
	ErrOptions = errors.New("eval: invalid options")
)

// Options configure Run.
type Options struct {
	// Model is a model directory to score with; empty teaches one on
	// train/good with Teach.
	Model string
	// Teach configures teaching when Model is empty.
	Teach teach.Options
	// SaveModel, when set, is where a taught model is written.
	SaveModel string
	// Workers is the number of scoring workers, one session each, 1..64.
	Workers int
	// CropX0, when > 0, drops the columns left of it from every image and
	// mask before teaching and scoring (e.g. off-web bands).
	CropX0 int
	// Heatmaps, when set, is a directory that receives one PNG per test
	// image: the image and its anomaly map side by side.
	Heatmaps string
	// PerImage adds every image's score and peak to the report.
	PerImage bool
}

// DefaultOptions teaches with teach.DefaultOptions and scores with two workers.
func DefaultOptions() Options {
	return Options{Teach: teach.DefaultOptions(), Workers: 2}
}

// Validate names the first bad field and its allowed range.
func (o *Options) Validate() error {
	switch {
	case o.Workers < 1 || o.Workers > 64:
		return fmt.Errorf("%w: Options.Workers is %d, want 1..64", ErrOptions, o.Workers)
	case o.CropX0 < 0:
		return fmt.Errorf("%w: Options.CropX0 is %d, want ≥ 0", ErrOptions, o.CropX0)
	}
	if o.Model == "" {
		return o.Teach.Validate()
	}
	return nil
}

// Report is the result of Run; its JSON form is the `webinspect eval
// --json` contract (image_auroc, pixel_auroc, pro, threshold,
// false_alarm_rate, recall_at_threshold, mpx_per_s).
type Report struct {
	Dataset           string   `json:"dataset"`
	Model             string   `json:"model"`
	Taught            bool     `json:"taught"`
	TrainImages       int      `json:"train_images,omitempty"`
	TestGood          int      `json:"test_good"`
	TestDefective     int      `json:"test_defective"`
	ImageAUROC        *float64 `json:"image_auroc"`
	PixelAUROC        *float64 `json:"pixel_auroc"`
	PRO               *float64 `json:"pro"`
	Threshold         *float64 `json:"threshold"`
	FalseAlarmRate    *float64 `json:"false_alarm_rate"`
	RecallAtThreshold *float64 `json:"recall_at_threshold"`
	MpxPerS           float64  `json:"mpx_per_s"`
	Workers           int      `json:"workers"`
	TestMpx           float64  `json:"test_mpx"`
	TeachSeconds      float64  `json:"teach_seconds,omitempty"`
	ScoreSeconds      float64  `json:"score_seconds"`
	CropX0            int      `json:"crop_x0,omitempty"`
	// MasklessDefective counts defective images left out of the pixel
	// metrics because their mask is missing while others have one.
	MasklessDefective int                  `json:"maskless_defective,omitempty"`
	Types             map[string]TypeStats `json:"types"`
	MadeBy            onnx.MadeBy          `json:"made_by"`
	Images            []ImageResult        `json:"images,omitempty"`
}

// TypeStats summarises one test folder.
type TypeStats struct {
	N         int     `json:"n"`
	Flagged   int     `json:"flagged"` // scored at or above the threshold
	MeanScore float64 `json:"mean_score"`
	// ImageAUROC against test/good (defect types only).
	ImageAUROC *float64 `json:"image_auroc,omitempty"`
	// PixelAUROC and PRO over this type's images and test/good (defect
	// types with masks only).
	PixelAUROC *float64 `json:"pixel_auroc,omitempty"`
	PRO        *float64 `json:"pro,omitempty"`
}

// ImageResult is one scored test image.
type ImageResult struct {
	Path  string  `json:"path"`
	Type  string  `json:"type"`
	Score float64 `json:"score"`
	// PeakX and PeakY locate the map's maximum in image pixels (before
	// any CropX0 is added back: add CropX0 for the original column).
	PeakX int `json:"peak_x"`
	PeakY int `json:"peak_y"`
}

type testImage struct {
	path, typ string
	img       teach.Image
	mask      []uint8 // nil: no mask
}

// Run teaches (unless Options.Model is set), scores DATASET/test and
// returns the report.
func Run(ctx context.Context, dataset string, o Options) (*Report, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if st, err := os.Stat(dataset); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("%w: %s is not a directory", ErrDataset, dataset)
	}
	rep := &Report{Dataset: dataset, Workers: o.Workers, CropX0: o.CropX0, Types: map[string]TypeStats{}}
	tests, err := readTests(dataset, o.CropX0)
	if err != nil {
		return nil, err
	}
	modelDir := o.Model
	if modelDir == "" {
		train := filepath.Join(dataset, "train", "good")
		if st, err := os.Stat(train); err != nil || !st.IsDir() {
			return nil, fmt.Errorf("%w: %s has no train/good to teach on (give a model with --model)", ErrDataset, dataset)
		}
		imgs, err := teach.ReadDir(train)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrDataset, err)
		}
		for i := range imgs {
			if imgs[i], err = crop(imgs[i], o.CropX0, train); err != nil {
				return nil, err
			}
		}
		to := o.Teach
		if to.Source == "" {
			to.Source = train
		}
		t0 := time.Now()
		t, err := teach.Teach(imgs, to)
		if err != nil {
			return nil, err
		}
		rep.TeachSeconds = time.Since(t0).Seconds()
		rep.TrainImages = len(imgs)
		rep.Taught = true
		modelDir = o.SaveModel
		if modelDir == "" {
			dir, err := os.MkdirTemp("", "webinspect-eval-model-")
			if err != nil {
				return nil, fmt.Errorf("eval: temp model dir: %w", err)
			}
			defer os.RemoveAll(dir)
			modelDir = dir
		}
		if err := t.WriteModel(modelDir); err != nil {
			return nil, err
		}
		rep.Model = o.SaveModel
	} else {
		rep.Model = o.Model
	}
	m, err := onnx.Load(modelDir, onnx.DefaultModelOptions())
	if err != nil {
		return nil, err
	}
	sc := m.Sidecar()
	rep.MadeBy = sc.MadeBy
	if sc.Threshold != nil {
		th := *sc.Threshold
		rep.Threshold = &th
	}
	if err := score(ctx, m, tests, o, rep); err != nil {
		return nil, err
	}
	return rep, nil
}

// readTests reads test/<type>/*.png and their masks.
func readTests(dataset string, cropX0 int) ([]testImage, error) {
	testDir := filepath.Join(dataset, "test")
	ents, err := os.ReadDir(testDir)
	if err != nil {
		return nil, fmt.Errorf("%w: %s has no test/ folder: %v", ErrDataset, dataset, err)
	}
	gtDir := filepath.Join(dataset, "ground_truth")
	_, gtErr := os.Stat(gtDir)
	hasGT := gtErr == nil
	var tests []testImage
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		typ := e.Name()
		paths, err := teach.ListPNGs(filepath.Join(testDir, typ))
		if err != nil {
			return nil, err
		}
		for _, p := range paths {
			im, err := teach.ReadPNG(p)
			if err != nil {
				return nil, err
			}
			if im, err = crop(im, cropX0, p); err != nil {
				return nil, err
			}
			ti := testImage{path: p, typ: typ, img: im}
			if hasGT {
				if typ == "good" {
					ti.mask = make([]uint8, im.W*im.H)
				} else {
					stem := strings.TrimSuffix(filepath.Base(p), filepath.Ext(p))
					mp := filepath.Join(gtDir, typ, stem+"_mask.png")
					if _, err := os.Stat(mp); err == nil {
						mk, err := teach.ReadPNG(mp)
						if err != nil {
							return nil, fmt.Errorf("%w: %v", ErrMask, err)
						}
						if mk.W-min(cropX0, mk.W) != im.W || mk.H != im.H {
							return nil, fmt.Errorf("%w: %s is %d×%d, its image %s is %d×%d",
								ErrMask, mp, mk.W, mk.H, p, im.W+cropX0, im.H)
						}
						if mk, err = crop(mk, cropX0, mp); err != nil {
							return nil, err
						}
						ti.mask = mk.Pix
					}
				}
			}
			tests = append(tests, ti)
		}
	}
	if len(tests) == 0 {
		return nil, fmt.Errorf("%w: %s holds no test images (want test/<type>/*.png)", ErrDataset, testDir)
	}
	return tests, nil
}

func crop(im teach.Image, x0 int, path string) (teach.Image, error) {
	if x0 <= 0 {
		return im, nil
	}
	if x0 >= im.W {
		return im, fmt.Errorf("%w: %s is %d pixels wide, cannot crop from column %d", ErrDataset, path, im.W, x0)
	}
	out := teach.Image{W: im.W - x0, H: im.H, Pix: make([]uint8, (im.W-x0)*im.H)}
	for y := range im.H {
		copy(out.Pix[y*out.W:(y+1)*out.W], im.Pix[y*im.W+x0:(y+1)*im.W])
	}
	return out, nil
}

type scored struct {
	score        float64
	peakX, peakY int
	amap         []float32
}

// score runs every test image through o.Workers scorers and fills rep.
func score(ctx context.Context, m *onnx.Model, tests []testImage, o Options, rep *Report) error {
	res := make([]scored, len(tests))
	// Maps are always kept: pixel metrics, peaks and heat maps need them.
	const wantMaps = true
	workers := min(o.Workers, len(tests))
	scorers := make([]*teach.Scorer, workers)
	defer func() {
		for _, s := range scorers {
			if s != nil {
				s.Close()
			}
		}
	}()
	for i := range scorers {
		s, err := teach.NewScorer(m)
		if err != nil {
			return err
		}
		scorers[i] = s
	}
	next := make(chan int)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	t0 := time.Now()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if errs[w] != nil {
					continue
				}
				var dst []float32
				if wantMaps {
					dst = make([]float32, 0, tests[i].img.W*tests[i].img.H)
				}
				// The score is recomputed from the map when there is one,
				// so it is the max over exactly the pixels evaluated.
				s, amap, err := scorers[w].Score(tests[i].img, dst)
				if err != nil {
					errs[w] = fmt.Errorf("eval: %s: %w", tests[i].path, err)
					continue
				}
				r := scored{score: float64(s), amap: amap}
				if amap != nil {
					best := float32(math.Inf(-1))
					for j, v := range amap {
						if v > best {
							best, r.peakX, r.peakY = v, j%tests[i].img.W, j/tests[i].img.W
						}
					}
				}
				res[i] = r
			}
		}()
	}
feed:
	for i := range tests {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	elapsed := time.Since(t0)
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	var px float64
	for _, t := range tests {
		px += float64(t.img.W * t.img.H)
	}
	rep.TestMpx = px / 1e6
	rep.ScoreSeconds = elapsed.Seconds()
	rep.MpxPerS = px / elapsed.Seconds() / 1e6

	// Image metrics.
	scores := make([]float64, len(tests))
	labels := make([]bool, len(tests))
	byType := map[string][]int{}
	for i, t := range tests {
		scores[i], labels[i] = res[i].score, t.typ != "good"
		byType[t.typ] = append(byType[t.typ], i)
		if labels[i] {
			rep.TestDefective++
		} else {
			rep.TestGood++
		}
		if o.PerImage {
			rep.Images = append(rep.Images, ImageResult{Path: t.path, Type: t.typ, Score: res[i].score, PeakX: res[i].peakX, PeakY: res[i].peakY})
		}
	}
	rep.ImageAUROC = finite(AUROC(scores, labels))
	if rep.Threshold != nil {
		th := *rep.Threshold
		var fa, good, hit, bad float64
		for i, s := range scores {
			if labels[i] {
				bad++
				if s >= th {
					hit++
				}
			} else {
				good++
				if s >= th {
					fa++
				}
			}
		}
		if good > 0 {
			rep.FalseAlarmRate = finite(fa / good)
		}
		if bad > 0 {
			rep.RecallAtThreshold = finite(hit / bad)
		}
	}
	for typ, idx := range byType {
		ts := TypeStats{N: len(idx)}
		var s []float64
		var l []bool
		for _, i := range idx {
			ts.MeanScore += scores[i] / float64(len(idx))
			if rep.Threshold != nil && scores[i] >= *rep.Threshold {
				ts.Flagged++
			}
			s, l = append(s, scores[i]), append(l, true)
		}
		if typ != "good" {
			for _, i := range byType["good"] {
				s, l = append(s, scores[i]), append(l, false)
			}
			ts.ImageAUROC = finite(AUROC(s, l))
		}
		rep.Types[typ] = ts
	}

	// Pixel metrics over images with masks.
	var sample []float32
	var withMask int
	for i, t := range tests {
		if t.mask == nil {
			if t.typ != "good" {
				rep.MasklessDefective++
			}
			continue
		}
		withMask++
		amap := res[i].amap
		step := max(1, len(amap)/4096)
		for j := 0; j < len(amap); j += step {
			sample = append(sample, amap[j])
		}
	}
	if withMask == 0 {
		rep.MasklessDefective = 0 // no ground truth at all: nothing is missing
	}
	if withMask > 0 {
		lo := float32(math.Inf(1))
		for i, t := range tests {
			if t.mask != nil {
				for _, v := range res[i].amap {
					lo = min(lo, v)
				}
			}
		}
		sample = append(sample, lo)
		curves := NewPixelCurves(sample)
		perType := map[string]*PixelCurves{}
		for typ := range byType {
			if typ != "good" {
				perType[typ] = NewPixelCurves(sample)
			}
		}
		var lab []int32
		for i, t := range tests {
			if t.mask == nil {
				continue
			}
			var n int
			lab, n = Regions(lab, t.mask, t.img.W, t.img.H)
			curves.Add(res[i].amap, lab, n)
			for typ, c := range perType {
				if typ == t.typ || t.typ == "good" {
					c.Add(res[i].amap, lab, n)
				}
			}
		}
		rep.PixelAUROC = finite(curves.AUROC())
		rep.PRO = finite(curves.PRO(0.3))
		for typ, c := range perType {
			ts := rep.Types[typ]
			ts.PixelAUROC, ts.PRO = finite(c.AUROC()), finite(c.PRO(0.3))
			rep.Types[typ] = ts
		}
	}
	if o.Heatmaps != "" {
		th := math.NaN()
		if rep.Threshold != nil {
			th = *rep.Threshold
		}
		if err := writeHeatmaps(o.Heatmaps, tests, res, th); err != nil {
			return err
		}
	}
	runtime.KeepAlive(res)
	return nil
}

func finite(v float64) *float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return &v
}

// writeHeatmaps writes <type>_<stem>.png per test image: the image on the
// left, the map on the right scaled to its own maximum (or to twice the
// threshold when that is higher, so a clean image stays dark), the mask
// outline in white.
func writeHeatmaps(dir string, tests []testImage, res []scored, th float64) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("eval: heat-map dir: %w", err)
	}
	for i, t := range tests {
		w, h := t.img.W, t.img.H
		out := image.NewGray(image.Rect(0, 0, 2*w, h))
		top := slices.Max(res[i].amap)
		if !math.IsNaN(th) && th > 0 {
			top = max(top, float32(th)/2)
		}
		scale := 255 / max(top, 1e-9)
		for y := range h {
			copy(out.Pix[y*out.Stride:], t.img.Pix[y*w:(y+1)*w])
			for x := range w {
				v := res[i].amap[y*w+x] * scale
				g := uint8(min(max(v, 0), 255))
				if t.mask != nil && t.mask[y*w+x] != 0 && edge(t.mask, w, h, x, y) {
					g = 255
				}
				out.SetGray(w+x, y, color.Gray{Y: g})
			}
		}
		stem := strings.TrimSuffix(filepath.Base(t.path), filepath.Ext(t.path))
		f, err := os.Create(filepath.Join(dir, t.typ+"_"+stem+".png"))
		if err != nil {
			return fmt.Errorf("eval: heat map: %w", err)
		}
		err = png.Encode(f, out)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("eval: heat map %s: %w", f.Name(), err)
		}
	}
	return nil
}

// edge reports whether mask pixel (x, y) borders a background pixel.
func edge(mask []uint8, w, h, x, y int) bool {
	for _, d := range [][2]int{{-1, 0}, {1, 0}, {0, -1}, {0, 1}} {
		xx, yy := x+d[0], y+d[1]
		if xx < 0 || yy < 0 || xx >= w || yy >= h || mask[yy*w+xx] == 0 {
			return true
		}
	}
	return false
}

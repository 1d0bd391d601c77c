package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/webinspect/webinspect/acquisition"
	"github.com/webinspect/webinspect/acquisition/recording"
	"github.com/webinspect/webinspect/kernels"
	"github.com/webinspect/webinspect/model/onnx"
	"github.com/webinspect/webinspect/model/teach"
	"github.com/webinspect/webinspect/rollmap"
	"github.com/webinspect/webinspect/rollmap/versions"
)

// reteachMaxRegionPx bounds the pixels read for one reviewed region: a
// false alarm many metres long (a whole yarn lot flagged as one region)
// is read as evenly spaced bands of lines up to this size.
const reteachMaxRegionPx = 8 << 20

// cmdReteach implements `webinspect reteach --model OLD --out NEW
// ROLLDIR[=RECORDING]...`: the defects that reviewers marked as false
// alarms, and that a taught model flagged, are good material the model
// has not learned; their pixels are folded into the model's good
// statistics (model/teach.Reteach) and written as a new model directory.
// The old model directory is only read.
func cmdReteach(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("reteach", flag.ContinueOnError)
	modelDir := fs.String("model", "", "taught `MODELDIR` to start from (only read; required)")
	out := fs.String("out", "", "new `MODELDIR` to write (must not exist or be empty; required)")
	recipeF := fs.String("recipe", "", "recipe `FILE` or built-in name (flat-field target for recordings; default: the recording's material)")
	marginMM := fs.Float64("margin", -1, "grow every reviewed region by this many `mm` on each side (-1: the model's reach, the material its flagged pixels were scored from)")
	minPatches := fs.Int("min-patches", 0, "least patch positions per scale the reviewed regions must hold (0: 10×patch²)")
	by := fs.String("by", "", "who re-teaches, recorded in the model and the version registry (default: user@host)")
	ortLib := fs.String("ort-lib", "", "ONNX Runtime library `FILE` (default: $"+onnx.EnvLibrary+" or "+onnx.LibraryRelPath+")")
	pos, err := parseFlags(fs, args, stdout)
	if err != nil {
		return err
	}
	switch {
	case *modelDir == "":
		return usageError{"--model MODELDIR is required"}
	case *out == "":
		return usageError{"--out MODELDIR is required"}
	case len(pos) == 0:
		return usageError{"give at least one reviewed roll: webinspect reteach --model OLD --out NEW ROLLDIR[=RECORDING]..."}
	case !(*marginMM >= 0 || *marginMM == -1) || *marginMM > 1000:
		return usageError{fmt.Sprintf("--margin is %v mm, want 0..1000 or -1 (the model's reach)", *marginMM)}
	case *minPatches < 0:
		return usageError{fmt.Sprintf("--min-patches is %d, want ≥ 0", *minPatches)}
	}
	oldAbs, _ := filepath.Abs(*modelDir)
	outAbs, _ := filepath.Abs(*out)
	if oldAbs == outAbs {
		return usageError{"--out is the --model directory: re-teach makes a new model and never changes the old one"}
	}
	if ents, err := os.ReadDir(*out); err == nil && len(ents) > 0 {
		return fmt.Errorf("--out %s exists and is not empty: give a new directory (the old model stays as it is)", *out)
	}
	sc, _, _, err := teach.ReadTaughtModel(*modelDir)
	if err != nil {
		return fmt.Errorf("--model %s: %w", *modelDir, err)
	}
	oldVersion, err := versions.FilesDigest(*modelDir, onnx.ModelFileName, onnx.SidecarFileName)
	if err != nil {
		return fmt.Errorf("--model %s: %w", *modelDir, err)
	}
	oldID := versions.IDOf(oldVersion)
	maker := *by
	if maker == "" {
		maker = versions.Maker()
	}

	var regions [][]teach.Image
	if *marginMM < 0 {
		*marginMM = modelReachMM(sc)
	}
	var rollNotes, reviewNotes []string
	stores := map[string]bool{}
	var st reteachStats
	for _, arg := range pos {
		rollDir, recDir, _ := strings.Cut(arg, "=")
		rs, notes, err := reviewedRegions(ctx, rollDir, recDir, *recipeF, sc, *marginMM, &st)
		if err != nil {
			return err
		}
		regions = append(regions, rs...)
		if len(notes) > 0 {
			rollNotes = append(rollNotes, filepath.Base(filepath.Clean(rollDir)))
			reviewNotes = append(reviewNotes, notes...)
		}
		stores[filepath.Dir(filepath.Clean(rollDir))] = true
	}
	fmt.Fprintf(stdout, "%d reviewed defects in %d rolls: %d false alarms, %d of them flagged by a model (%d regions read; %d flagged by the threshold detector alone left out)\n",
		st.reviewed, len(pos), st.falseAlarms, st.modelFlagged, len(regions), st.falseAlarms-st.modelFlagged)
	if st.modelFlagged == 0 {
		return fmt.Errorf("no false-alarm reviews of defects a model flagged in %s: nothing to re-teach (mark good material the model flagged as false_alarm first)", strings.Join(pos, ", "))
	}
	if err := onnx.Init(*ortLib); err != nil {
		return err
	}
	source := fmt.Sprintf("model %s (version %s) + false alarms of rolls %s reviewed by %s", oldAbs, oldID, strings.Join(rollNotes, ", "), strings.Join(st.reviewerList(), ", "))
	t, err := teach.Reteach(*modelDir, regions, teach.ReteachOptions{
		MinPatches: *minPatches, Seed: 1, Source: source,
		Params: map[string]string{
			"derived_from":    oldID,
			"derived_from_at": oldAbs,
			"reviews":         strings.Join(reviewNotes, "; "),
			"made_by_user":    maker,
		},
	})
	if err != nil {
		if errors.Is(err, teach.ErrTooLittle) {
			return fmt.Errorf("%w; %d regions from %d false alarms given", err, len(regions), st.modelFlagged)
		}
		return fmt.Errorf("--model %s: %w", *modelDir, err)
	}
	before, err := regionsAbove(*modelDir, regions, *sc.Threshold)
	if err != nil {
		return fmt.Errorf("--model %s: %w", *modelDir, err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(outAbs), ".reteach-")
	if err != nil {
		return fmt.Errorf("--out %s: %w", *out, err)
	}
	defer os.RemoveAll(tmp)
	if err := t.WriteModel(tmp); err != nil {
		return err
	}
	after, err := regionsAbove(tmp, regions, t.Threshold)
	if err != nil {
		return fmt.Errorf("the re-taught model does not score: %w", err)
	}
	// The new directory appears whole or not at all.
	if err := os.Remove(*out); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("--out %s: %w", *out, err)
	}
	if err := os.Rename(tmp, *out); err != nil {
		return fmt.Errorf("--out %s: %w", *out, err)
	}
	newVersion, err := versions.FilesDigest(*out, onnx.ModelFileName, onnx.SidecarFileName)
	if err != nil {
		return err
	}
	newID := versions.IDOf(newVersion)
	// Register the new version where the reviews came from, so that
	// `webinspect versions` shows who made it, when and from what.
	for _, root := range slices.Sorted(func(yield func(string) bool) {
		for r := range stores {
			if !yield(r) {
				return
			}
		}
	}) {
		reg, err := versions.Open(root)
		if err != nil {
			log.Warn().Err(err).Str("rolls", root).Msg("new model version not registered")
			continue
		}
		v := versions.Version{Name: filepath.Base(outAbs), Origin: outAbs, MadeBy: maker,
			Note: fmt.Sprintf("made by webinspect reteach %s: derived from model %s + %d false-alarm reviews", t.Sidecar.MadeBy.Created, oldID, st.modelFlagged)}
		if _, err := reg.RegisterFiles(versions.KindModel, v, *out, onnx.ModelFileName, onnx.SidecarFileName); err != nil {
			log.Warn().Err(err).Str("rolls", root).Msg("new model version not registered")
		}
	}
	fmt.Fprintf(stdout, "%s\n", t.Sidecar.MadeBy.Params["reteach"])
	fmt.Fprintf(stdout, "reviewed regions above the threshold %.4g: %d of %d with the old model, %d of %d with the new\n",
		t.Threshold, before, len(regions), after, len(regions))
	fmt.Fprintf(stdout, "model %s: version %s, derived from %s (version %s) by %s; the old model is unchanged\n",
		*out, newID, *modelDir, oldID, maker)
	return nil
}

// modelReachMM is how far, in mm of web, a taught model's map value
// depends on its neighbours: made_by.params.context prepared pixels,
// times the binning, at the resolution the model was taught on (a
// camera pixel of the recording; 0.25 mm when unknown). A flagged pixel
// was scored from material up to this far away.
func modelReachMM(sc onnx.Sidecar) float64 {
	ctx, _ := strconv.Atoi(sc.MadeBy.Params["context"])
	bin, _ := strconv.Atoi(sc.MadeBy.Params["bin"])
	px, err := strconv.ParseFloat(sc.MadeBy.Params["pixel_mm"], 64)
	if err != nil || !(px > 0) {
		px = 0.25
	}
	return float64(ctx*max(bin, 1)) * px
}

// reteachStats counts what reteach found in the rolls.
type reteachStats struct {
	reviewed, falseAlarms, modelFlagged int
	reviewers                           map[string]bool
}

func (s *reteachStats) reviewerList() []string {
	var out []string
	for r := range s.reviewers {
		out = append(out, r)
	}
	sort.Strings(out)
	return out
}

// modelFlagged reports whether a taught model took part in the defect.
func modelFlagged(d *rollmap.Defect) bool {
	for _, p := range d.Detector.Parts() {
		if _, ok := p.Model(); ok {
			return true
		}
	}
	return false
}

// reviewedRegions returns the pixels of the false alarms a model flagged
// on the roll in rollDir: from the recording recDir when given, or the
// roll's source when that is a recording (flat-fielded as teach reads
// it), else from the archived crops, which are
// raw camera pixels and serve only a model taught on pixels as they come
// (made_by.params.flat_field "none"). It also returns one note per
// false alarm (defect, reviewer, time).
func reviewedRegions(ctx context.Context, rollDir, recDir, recipeF string, sc onnx.Sidecar, marginMM float64, st *reteachStats) ([][]teach.Image, []string, error) {
	meta, ds, _, err := rollmap.ReadRoll(rollDir)
	if err != nil && len(ds) == 0 {
		return nil, nil, fmt.Errorf("roll %s: %w", rollDir, err)
	}
	revs, rerr := rollmap.ReadReviews(rollDir)
	if rerr != nil && len(revs) == 0 {
		return nil, nil, fmt.Errorf("roll %s: reviews: %w", rollDir, rerr)
	}
	newest := rollmap.MergeReviews(revs)
	if st.reviewers == nil {
		st.reviewers = map[string]bool{}
	}
	var fas []rollmap.Defect
	var notes []string
	for i := range ds {
		d := &ds[i]
		if d.ReviewStatus == "" {
			continue
		}
		st.reviewed++
		if d.ReviewStatus != rollmap.ReviewFalseAlarm {
			continue
		}
		st.falseAlarms++
		if !modelFlagged(d) {
			continue
		}
		st.modelFlagged++
		fas = append(fas, *d)
		r := newest[d.ID]
		st.reviewers[r.Reviewer] = true
		notes = append(notes, fmt.Sprintf("%s/%d by %s at %s", meta.ID, d.ID, r.Reviewer, r.Time.UTC().Format(time.RFC3339)))
	}
	if len(fas) == 0 {
		return nil, nil, nil
	}
	// Without RECORDING, the roll's source when it is a recording that
	// is still there (a replayed roll names its recording's directory).
	if recDir == "" && meta.Source != "" && teach.IsRecording(meta.Source) {
		recDir = meta.Source
	}
	if recDir != "" {
		rs, err := recordingRegions(ctx, recDir, recipeF, fas, marginMM)
		if err != nil {
			return nil, nil, fmt.Errorf("roll %s, recording %s: %w", rollDir, recDir, err)
		}
		return rs, notes, nil
	}
	if ff := sc.MadeBy.Params["flat_field"]; !strings.HasPrefix(ff, "none") {
		if ff == "" {
			ff = "not recorded"
		}
		return nil, nil, fmt.Errorf("roll %s has %d false alarms to re-teach from but no recording was given: its archived crops are raw camera pixels, and the model's input is flat-fielded (made_by.params.flat_field %s); give the roll's recording as %s=RECORDING",
			rollDir, len(fas), ff, rollDir)
	}
	imgDir := filepath.Join(filepath.Dir(filepath.Clean(rollDir)), imagesDirName)
	var rs [][]teach.Image
	missing := 0
	for _, d := range fas {
		pix, w, h, err := readCrop(imgDir, d.ImageRef)
		if err != nil {
			missing++
			continue
		}
		rs = append(rs, []teach.Image{{W: w, H: h, Pix: pix}})
	}
	if len(rs) == 0 {
		return nil, nil, fmt.Errorf("roll %s: none of its %d false alarms has an archived crop, and no recording was given (ROLLDIR=RECORDING)", rollDir, len(fas))
	}
	if missing > 0 {
		log.Warn().Str("roll", rollDir).Int("without_crop", missing).Msg("false alarms without an archived crop left out")
	}
	return rs, notes, nil
}

// wantLines is one reviewed region on one camera: line numbers
// [lo, hi] and columns [c0, c1).
type wantLines struct {
	lo, hi, step int64 // step > 1 keeps bands of a long region
	c0, c1       int
	pieces       []teach.Image // one per run of consecutive lines
	last         int64         // line number of the last line taken
}

// recordingRegions reads the regions of the false alarms fas from the
// recording in dir: every camera the region's CD extent reaches, its MD
// extent (grown by marginMM), flat-fielded onto the recipe's target as
// the engine does before its detectors.
func recordingRegions(ctx context.Context, dir, recipeF string, fas []rollmap.Defect, marginMM float64) ([][]teach.Image, error) {
	src, err := recording.Open(dir, recording.ReadOptions{})
	if err != nil {
		return nil, err
	}
	defer src.Close()
	info := src.Info()
	recipe, err := loadRecipe(recipeF, info)
	if err != nil {
		return nil, err
	}
	lineMM := info.LineMM()
	if !(lineMM > 0) {
		return nil, fmt.Errorf("the recording's line length is %v mm", lineMM)
	}
	var out [][]teach.Image
	for ci, stream := range src.Streams() {
		cam := stream.Camera()
		var wants []*wantLines
		for _, d := range fas {
			// Camera columns are in the machine's frame: roll CD + the web edge.
			c0 := int(math.Floor((d.CDStartMM + d.WebEdgeMM - marginMM - cam.OffsetMM) / cam.PixelMM))
			c1 := int(math.Ceil((d.CDEndMM + d.WebEdgeMM + marginMM - cam.OffsetMM) / cam.PixelMM))
			c0, c1 = max(c0, 0), min(c1, cam.Width)
			if c1-c0 < 1 {
				continue
			}
			w := &wantLines{
				lo: int64(math.Floor((d.MDStartM*1000 - marginMM) / lineMM)),
				hi: int64(math.Ceil((d.MDEndM*1000 + marginMM) / lineMM)),
				c0: c0, c1: c1, step: 1,
			}
			w.lo = max(w.lo, 0)
			lines := w.hi - w.lo + 1
			if px := lines * int64(c1-c0); px > reteachMaxRegionPx {
				w.step = (px + reteachMaxRegionPx - 1) / reteachMaxRegionPx
			}
			wants = append(wants, w)
		}
		if len(wants) == 0 {
			continue
		}
		if err := readWanted(ctx, stream, info, recipe.Threshold.FlatFieldTarget, wants); err != nil {
			return nil, fmt.Errorf("camera %d: %w", ci, err)
		}
		for _, w := range wants {
			if len(w.pieces) > 0 {
				out = append(out, w.pieces)
			}
		}
	}
	if len(out) == 0 {
		return nil, errors.New("none of the false alarms lies on the recording (is it the roll's recording?)")
	}
	return out, nil
}

// bandLines is the height of the bands a long region is read in.
const bandLines = 256

// readWanted reads one camera's stream once and copies the wanted lines
// (flat-fielded onto target when the camera has references) into each
// region's image. A line number seen again (the web jogged back) is
// taken once.
func readWanted(ctx context.Context, st acquisition.Stream, info acquisition.Info, target int, wants []*wantLines) error {
	ci := st.Camera()
	width := ci.Width
	var gain []uint16
	corr := make([]uint8, width)
	if target > 0 && len(ci.Dark) == width && len(ci.White) == width {
		gain = make([]uint16, width)
		kernels.FlatFieldGains(gain, ci.Dark, ci.White, uint8(min(target, 255)))
	}
	var maxHi int64
	for _, w := range wants {
		maxHi = max(maxHi, w.hi)
		w.last = -2
	}
	blk := acquisition.NewBlock(max(info.LinesPerBlock, 1), width)
	seen := int64(-1)
	k := int64(max(info.CountsPerLine, 1))
	for {
		if err := st.ReadBlock(ctx, blk); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		for i := range blk.Lines {
			y := acquisition.LineIndex(blk.Counts[i], k)
			if y <= seen {
				continue
			}
			seen = y
			if y > maxHi {
				return nil
			}
			var line []uint8
			for _, w := range wants {
				if y < w.lo || y > w.hi {
					continue
				}
				// Long regions keep one band of bandLines lines in
				// every step bands, and always their first and last
				// band: where the flagged material begins and ends.
				if w.step > 1 && ((y-w.lo)/bandLines)%w.step != 0 && y-w.lo >= bandLines && w.hi-y >= bandLines {
					continue
				}
				if line == nil {
					line = blk.Line(i)
					if gain != nil {
						kernels.FlatField(corr, line, ci.Dark, gain)
						line = corr
					}
				}
				// A gap (a band left out) starts a new piece: the
				// model must not learn the seam as good material.
				if y != w.last+1 {
					w.pieces = append(w.pieces, teach.Image{W: w.c1 - w.c0})
				}
				p := &w.pieces[len(w.pieces)-1]
				p.Pix = append(p.Pix, line[w.c0:w.c1]...)
				p.H++
				w.last = y
			}
		}
	}
}

// regionsAbove loads the model in dir and counts the regions with a piece
// whose image score reaches threshold.
func regionsAbove(dir string, regions [][]teach.Image, threshold float64) (int, error) {
	m, err := onnx.Load(dir, onnx.DefaultModelOptions())
	if err != nil {
		return 0, err
	}
	s, err := teach.NewScorer(m)
	if err != nil {
		return 0, err
	}
	defer s.Close()
	n := 0
	for _, r := range regions {
		for _, im := range r {
			v, _, err := s.Score(im, nil)
			if err != nil {
				return 0, err
			}
			if float64(v) >= threshold {
				n++
				break
			}
		}
	}
	return n, nil
}

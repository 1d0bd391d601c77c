package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"image"
	"image/png"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/webinspect/webinspect/engine"
	"github.com/webinspect/webinspect/model/classify"
	"github.com/webinspect/webinspect/model/onnx"
	"github.com/webinspect/webinspect/rollmap"
	"github.com/webinspect/webinspect/rollmap/archive"
)

// cmdLearn trains the defect classifier from the reviewed defects of every
// roll in --rolls: each reviewed defect with an archived crop is an
// example, labelled with its final class (a reclassification's label wins
// over the class the engine gave; a confirmation keeps the class; false
// alarms are left out: they are not a class of defect).
func cmdLearn(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("learn", flag.ContinueOnError)
	rolls := fs.String("rolls", "rolls", "`DIR` of roll maps whose reviewed defects to learn from")
	out := fs.String("out", "", "classifier `DIR` to write (classifier.onnx, classifier.json)")
	family := fs.String("family", "trees", "model `FAMILY`: trees (gradient-boosted trees, the measured best) or logistic (multinomial logistic regression)")
	features := fs.String("features", string(classify.FeaturesMeasured), "feature `SET`: "+string(classify.FeaturesMeasured)+
		" (measured, crop texture and shape) or "+string(classify.FeaturesWithModel)+" (also the taught model's scores over each defect: the classifier then runs only beside that model)")
	modelVersion := fs.String("model-version", "", "with --features "+string(classify.FeaturesWithModel)+
		": learn from the defects the taught model of this `VERSION` decided (needed when the rolls name several)")
	ortLib := fs.String("ort-lib", "", "ONNX Runtime library `FILE`, to check the classifier written (default: $"+onnx.EnvLibrary+" or "+onnx.LibraryRelPath+")")
	pos, err := parseFlags(fs, args, stdout)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageError{fmt.Sprintf("unexpected argument %q", pos[0])}
	}
	if *out == "" {
		return usageError{"--out CLASSIFIERDIR is required"}
	}
	if *family != "trees" && *family != "logistic" {
		return usageError{fmt.Sprintf("--family %q: want trees or logistic", *family)}
	}
	set, err := classify.ParseFeatureSet(*features)
	if err != nil {
		return usageError{"--features: " + err.Error()}
	}
	if *modelVersion != "" && !set.NeedsModel() {
		return usageError{"--model-version is for --features " + string(classify.FeaturesWithModel)}
	}
	in := classify.Inputs{Set: set, ModelVersion: *modelVersion}
	ex, stats, err := reviewedExamples(*rolls, &in)
	if err != nil {
		return err
	}
	if set.NeedsModel() {
		fmt.Fprintf(stdout, "taught model %s: %d reviewed defects decided by other models (or none) left out\n", in.ModelVersion, stats.otherModel)
	}
	fmt.Fprintf(stdout, "%d reviewed defects in %d rolls: %d with a crop and a class, %d false alarms left out, %d without a crop\n",
		stats.reviewed, stats.rolls, len(ex), stats.falseAlarms, stats.noCrop)
	t0 := time.Now()
	var w classify.Model
	if *family == "trees" {
		w, err = classify.TrainTrees(ex, classify.DefaultTreeOptions())
	} else {
		w, err = classify.Train(ex, classify.DefaultTrainOptions())
	}
	if err != nil {
		if errors.Is(err, classify.ErrTooFewLabels) {
			return fmt.Errorf("%w; review more defects of those classes and run learn again", err)
		}
		return err
	}
	took := time.Since(t0)
	right := 0
	for _, e := range ex {
		if c, _ := w.Predict(e.Features); c == e.Label {
			right++
		}
	}
	counts := classify.Counts(ex)
	var per []string
	for _, c := range w.ClassNames() {
		per = append(per, fmt.Sprintf("%s %d", c, counts[c]))
	}
	made := map[string]string{
		"tool": "webinspect learn", "created": time.Now().UTC().Format(time.RFC3339), "rolls": *rolls,
		"labels": strings.Join(per, ", "), "family": w.Family(), "train_accuracy": fmt.Sprintf("%.3f", float64(right)/float64(len(ex))),
	}
	made["features"] = string(set)
	if err := classify.Write(*out, w, in, made); err != nil {
		return err
	}
	if err := onnx.Init(*ortLib); err != nil {
		return fmt.Errorf("classifier written to %s, but it could not be checked: %w", *out, err)
	}
	c, err := classify.Load(*out)
	if err != nil {
		return fmt.Errorf("the classifier written to %s does not load: %w", *out, err)
	}
	c.Close()
	fmt.Fprintf(stdout, "classifier (%s) of %d classes (%s) trained in %v; right on %.1f %% of its own examples -> %s\n",
		w.Family(), len(w.ClassNames()), strings.Join(per, ", "), took.Round(time.Millisecond), 100*float64(right)/float64(len(ex)), *out)
	return nil
}

type learnStats struct{ rolls, reviewed, falseAlarms, noCrop, otherModel int }

// reviewedExamples reads the reviewed defects of every roll of the store
// at root, with their crops from the image archive, as examples of the
// feature set in.Set. For the taught model's features only the defects
// of one model version are used (its scores are on its own scale):
// in.ModelVersion, or, when it is "", the one version the reviewed
// defects name (set in in); several versions, or none, is an error
// naming them.
func reviewedExamples(root string, in *classify.Inputs) ([]classify.Example, learnStats, error) {
	var st learnStats
	store, err := rollmap.OpenStore(root)
	if err != nil {
		return nil, st, err
	}
	infos, err := store.List()
	if err != nil {
		return nil, st, err
	}
	sort.Slice(infos, func(i, j int) bool { return infos[i].ID < infos[j].ID })
	imgDir := filepath.Join(root, imagesDirName)
	var ex []classify.Example
	var model []string // each example's model version
	for _, info := range infos {
		_, ds, _, err := rollmap.ReadRoll(filepath.Join(root, info.ID))
		if err != nil && len(ds) == 0 {
			log.Warn().Err(err).Str("roll", info.ID).Msg("roll not readable; skipped")
			continue
		}
		st.rolls++
		for i := range ds {
			d := &ds[i]
			label := ""
			switch d.ReviewStatus {
			case rollmap.ReviewConfirmed, rollmap.ReviewReclassified:
				label = d.ClassAfterReview()
			case rollmap.ReviewFalseAlarm:
				st.reviewed++
				st.falseAlarms++
				continue
			default:
				continue
			}
			st.reviewed++
			pix, w, h, err := readCrop(imgDir, d.ImageRef)
			if err != nil || label == "" {
				st.noCrop++
				continue
			}
			ex = append(ex, classify.Example{Features: classify.FeaturesOf(nil, in.Set, engine.MeasuredOf(d, info.WebWidthMM), pix, w, h, w), Label: label})
			model = append(model, d.ModelVersion)
		}
	}
	if !in.Set.NeedsModel() {
		return ex, st, nil
	}
	byVersion := map[string]int{}
	for _, v := range model {
		byVersion[v]++
	}
	var named []string
	for _, v := range slices.Sorted(maps.Keys(byVersion)) {
		if v != "" {
			named = append(named, fmt.Sprintf("%s (%d defects)", v, byVersion[v]))
		}
	}
	switch {
	case len(named) == 0:
		return nil, st, fmt.Errorf("--features %s: none of the %d reviewed defects with a crop was decided with a taught model (their model_version is empty): learn --features %s, or review defects of rolls inspected with the model",
			in.Set, len(ex), classify.FeaturesMeasured)
	case in.ModelVersion != "" && byVersion[in.ModelVersion] == 0:
		return nil, st, fmt.Errorf("--model-version %s: no reviewed defect with a crop was decided by that model; they name %s", in.ModelVersion, strings.Join(named, ", "))
	case in.ModelVersion == "" && len(named) > 1:
		return nil, st, fmt.Errorf("--features %s: the reviewed defects were decided by %d taught models, %s: choose one with --model-version",
			in.Set, len(named), strings.Join(named, ", "))
	case in.ModelVersion == "":
		in.ModelVersion = strings.Fields(named[0])[0]
	}
	kept := ex[:0]
	for i, e := range ex {
		if model[i] == in.ModelVersion {
			kept = append(kept, e)
		} else {
			st.otherModel++
		}
	}
	return kept, st, nil
}

// readCrop reads an archived crop as 8-bit grey.
func readCrop(dir, ref string) ([]uint8, int, int, error) {
	if ref == "" {
		return nil, 0, 0, errors.New("no crop")
	}
	if err := archive.ValidRef(ref); err != nil {
		return nil, 0, 0, err
	}
	f, err := os.Open(filepath.Join(dir, ref[:2], ref))
	if err != nil {
		return nil, 0, 0, err
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		return nil, 0, 0, fmt.Errorf("crop %s: %w", ref, err)
	}
	b := img.Bounds()
	g, ok := img.(*image.Gray)
	if !ok {
		g = image.NewGray(b)
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				g.Set(x, y, img.At(x, y))
			}
		}
	}
	w, h := b.Dx(), b.Dy()
	pix := make([]uint8, w*h)
	for y := range h {
		copy(pix[y*w:(y+1)*w], g.Pix[y*g.Stride:y*g.Stride+w])
	}
	return pix, w, h, nil
}

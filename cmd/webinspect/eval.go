package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/webinspect/webinspect/model/eval"
	"github.com/webinspect/webinspect/model/onnx"
)

// cmdEval implements `webinspect eval DATASET_DIR [--model MODELDIR] [--json]`.
func cmdEval(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("eval", flag.ContinueOnError)
	o := eval.DefaultOptions()
	model := fs.String("model", "", "`MODELDIR` to score with (default: teach on DATASET_DIR/train/good)")
	asJSON := fs.Bool("json", false, "print one JSON object")
	heatmaps := fs.String("heatmaps", "", "write one heat-map PNG per test image into `DIR`")
	saveModel := fs.String("save-model", "", "write the taught model into `MODELDIR`")
	perImage := fs.Bool("per-image", false, "list every image's score and peak position (with --json)")
	ortLib := fs.String("ort-lib", "", "ONNX Runtime library `FILE` (default: $"+onnx.EnvLibrary+" or "+onnx.LibraryRelPath+")")
	fs.IntVar(&o.Workers, "workers", o.Workers, "scoring workers, one ONNX Runtime session (one thread) each")
	fs.IntVar(&o.CropX0, "crop-x0", 0, "drop image columns left of this one before teaching and scoring")
	addTeachFlags(fs, &o.Teach)
	pos, err := parseFlags(fs, args, stdout)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError{"expected exactly one dataset directory: webinspect eval DATASET_DIR [--model MODELDIR] [--json]"}
	}
	o.Model, o.Heatmaps, o.SaveModel, o.PerImage = *model, *heatmaps, *saveModel, *perImage
	if err := o.Validate(); err != nil {
		return usageError{err.Error()}
	}
	if st, err := os.Stat(pos[0]); err != nil || !st.IsDir() {
		return fmt.Errorf("dataset %s is not a directory (want the MVTec layout: train/good, test/<type>, ground_truth/<type>)", pos[0])
	}
	if err := onnx.Init(*ortLib); err != nil {
		return err
	}
	rep, err := eval.Run(ctx, pos[0], o)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	printEval(stdout, rep)
	return nil
}

func printEval(w io.Writer, r *eval.Report) {
	f := func(v *float64) string {
		if v == nil {
			return "n/a"
		}
		return fmt.Sprintf("%.4f", *v)
	}
	model := r.Model
	if r.Taught {
		model = fmt.Sprintf("taught on %d train/good images in %.1f s", r.TrainImages, r.TeachSeconds)
	}
	fmt.Fprintf(w, "dataset   %s (%d good, %d defective test images)\n", r.Dataset, r.TestGood, r.TestDefective)
	fmt.Fprintf(w, "model     %s\n", model)
	fmt.Fprintf(w, "image AUROC %s   pixel AUROC %s   PRO %s\n", f(r.ImageAUROC), f(r.PixelAUROC), f(r.PRO))
	fmt.Fprintf(w, "threshold %s: false alarms %s, recall %s\n", f(r.Threshold), f(r.FalseAlarmRate), f(r.RecallAtThreshold))
	fmt.Fprintf(w, "speed     %.1f Mpx/s (%d workers, %.1f Mpx in %.2f s)\n", r.MpxPerS, r.Workers, r.TestMpx, r.ScoreSeconds)
	types := make([]string, 0, len(r.Types))
	for t := range r.Types {
		types = append(types, t)
	}
	sort.Strings(types)
	for _, t := range types {
		s := r.Types[t]
		fmt.Fprintf(w, "  %-16s n=%-4d flagged=%-4d mean score %.3f  image AUROC %s\n", t, s.N, s.Flagged, s.MeanScore, f(s.ImageAUROC))
	}
}

package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/webinspect/webinspect/acquisition/recording"
	"github.com/webinspect/webinspect/model/onnx"
	"github.com/webinspect/webinspect/model/teach"
)

// addTeachFlags binds the teach options shared by teach and eval.
func addTeachFlags(fs *flag.FlagSet, o *teach.Options) {
	fs.IntVar(&o.TileH, "tile-h", o.TileH, "model tile height in pixels (after binning/resizing)")
	fs.IntVar(&o.TileW, "tile-w", o.TileW, "model tile width in pixels (after binning/resizing)")
	fs.IntVar(&o.Bin, "bin", o.Bin, "2x2 binning before tiling: 1 or 2")
	fs.IntVar(&o.ResizeW, "resize-w", 0, "resize every image to this width first (with --resize-h)")
	fs.IntVar(&o.ResizeH, "resize-h", 0, "resize every image to this height first (with --resize-w)")
	fs.StringVar(&o.Normalize, "normalize", o.Normalize, "per-image contrast normalisation: none or image")
	fs.IntVar(&o.Patch, "patch", o.Patch, "PCA patch side (odd 3..15)")
	fs.IntVar(&o.Scales, "scales", o.Scales, "number of scales (1..4)")
	fs.IntVar(&o.Components, "components", o.Components, "principal components per scale")
	fs.IntVar(&o.Smooth, "smooth", o.Smooth, "anomaly-map smoothing box side (odd)")
	fs.Float64Var(&o.TargetFAR, "far", o.TargetFAR, "target false alarms per image (frame) on good material")
	fs.IntVar(&o.Folds, "folds", o.Folds, "held-out folds for threshold calibration")
	fs.IntVar(&o.MaxPatches, "max-patches", o.MaxPatches, "patches sampled per scale")
	fs.IntVar(&o.Clusters, "clusters", o.Clusters, "Gaussian clusters per scale for the web")
	fs.IntVar(&o.EdgeClusters, "edge-clusters", o.EdgeClusters, "clusters for the band next to saturated off-web background (0: none)")
	fs.IntVar(&o.EdgeComponents, "edge-components", o.EdgeComponents, "principal components per edge cluster")
	fs.IntVar(&o.EdgeBand, "edge-band", o.EdgeBand, "reach of the web-edge band in pixels after binning")
	fs.IntVar(&o.RareClusters, "rare-clusters", o.RareClusters, "extra clusters fitted on the 1% of good patches explained worst")
	fs.BoolVar(&o.Likelihood, "likelihood", o.Likelihood, "score clusters by mixture negative log-likelihood")
	fs.BoolVar(&o.SatFill, "sat-fill", o.SatFill, "replace saturated (off-web) pixels by the web mean")
	fs.IntVar(&o.SatLevel, "sat-level", o.SatLevel, "8-bit level from which a pixel counts as saturated off-web background")
	fs.IntVar(&o.Memory, "memory", o.Memory, "nearest-neighbour memory of good patches per scale (coreset size, 0: Gaussian only)")
	fs.BoolVar(&o.Discriminator, "discriminator", o.Discriminator, "add a logistic discriminator trained on good patches against synthetic defects")
	fs.IntVar(&o.ShadeBlock, "shade-block", o.ShadeBlock, "cell side of the fused shading model in pixels after binning (0: off)")
	fs.Float64Var(&o.EnsembleSpread, "ensemble-spread", o.EnsembleSpread, "keep the shading/brightness models only when their held-out good scores' sd/mean is at most this (0: always)")
	fs.IntVar(&o.BrightBlock, "bright-block", o.BrightBlock, "cell side of the fused local-brightness model in pixels after binning (0: off)")
}

// cmdTeach implements `webinspect teach --from DIR|RECORDING --out MODELDIR`.
func cmdTeach(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("teach", flag.ContinueOnError)
	o := teach.DefaultOptions()
	from := fs.String("from", "", "good material (`DIR|RECORDING`): a directory of PNGs, an MVTec set (uses train/good) or a recording (required)")
	out := fs.String("out", "", "`MODELDIR` to write (required)")
	recipeF := fs.String("recipe", "", "recipe `FILE` or built-in name (flat-field target for recordings; default: the recording's material)")
	metres := fs.Float64("metres", 20, "metres of a recording to teach on (0: all of it)")
	camera := fs.Int("camera", 0, "camera of a recording to teach on")
	ortLib := fs.String("ort-lib", "", "ONNX Runtime library `FILE` (default: $"+onnx.EnvLibrary+" or "+onnx.LibraryRelPath+")")
	addTeachFlags(fs, &o)
	pos, err := parseFlags(fs, args, stdout)
	if err != nil {
		return err
	}
	switch {
	case len(pos) != 0:
		return usageError{fmt.Sprintf("unexpected argument %q: webinspect teach --from DIR|RECORDING --out MODELDIR", pos[0])}
	case *from == "":
		return usageError{"--from DIR|RECORDING is required"}
	case *out == "":
		return usageError{"--out MODELDIR is required"}
	case *metres < 0:
		return usageError{fmt.Sprintf("--metres is %v, want ≥ 0", *metres)}
	}
	if err := o.Validate(); err != nil {
		return usageError{err.Error()}
	}
	if st, err := os.Stat(*from); err != nil || !st.IsDir() {
		return fmt.Errorf("--from %s is not a directory (want PNGs, an MVTec set or a recording)", *from)
	}
	if err := onnx.Init(*ortLib); err != nil {
		return err
	}
	o.Source = *from
	var imgs []teach.Image
	flatField := "none (images as given)"
	pixelMM := ""
	if teach.IsRecording(*from) {
		src, err := recording.Open(*from, recording.ReadOptions{})
		if err != nil {
			return err
		}
		info := src.Info()
		src.Close()
		recipe, err := loadRecipe(*recipeF, info)
		if err != nil {
			return err
		}
		imgs, _, err = teach.ReadRecording(ctx, *from, *camera, *metres, o.TileH*o.Bin, recipe.Threshold.FlatFieldTarget)
		if err != nil {
			return err
		}
		farSet := false
		fs.Visit(func(f *flag.Flag) { farSet = farSet || f.Name == "far" })
		if !farSet {
			// The recipe's false alarms per 100 m of web, as a rate per frame.
			o.TargetFAR = recipe.Model.FramesFalseAlarmRate(o.TileH*o.Bin, info.LineMM(), len(info.Cameras))
			log.Info().Float64("false_alarms_per_100m", recipe.Model.FalseAlarmsPer100M).Float64("per_frame", o.TargetFAR).Msg("threshold target from the recipe")
		}
		o.Source = fmt.Sprintf("%s camera %d, first %g m, recipe %s", *from, *camera, *metres, recipe.Name)
		c := info.Cameras[min(max(*camera, 0), len(info.Cameras)-1)]
		if len(c.Dark) > 0 && len(c.White) > 0 {
			flatField = fmt.Sprintf("target %d", recipe.Threshold.FlatFieldTarget)
		}
		pixelMM = strconv.FormatFloat(c.PixelMM, 'g', -1, 64)
	} else {
		if *recipeF != "" {
			return usageError{"--recipe applies to recordings only (it sets the flat-field target)"}
		}
		if imgs, err = teach.ReadDir(*from); err != nil {
			return err
		}
	}
	log.Info().Str("from", *from).Int("images", len(imgs)).Msg("teaching")
	t, err := teach.Teach(imgs, o)
	if err != nil {
		return err
	}
	// What the pixels were, so that reteach knows whether archived crops
	// (raw camera pixels) are the model's kind of input.
	t.Sidecar.MadeBy.Params["flat_field"] = flatField
	if pixelMM != "" {
		t.Sidecar.MadeBy.Params["pixel_mm"] = pixelMM // CD size of a camera pixel taught on
	}
	if err := t.WriteModel(*out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "model %s: %d images, tile %dx%d, bin %d, threshold %.4g (target %.3g false alarms per image; held-out %s)\n",
		*out, len(imgs), o.TileH, o.TileW, o.Bin, t.Threshold, o.TargetFAR, t.Sidecar.MadeBy.Params["held_out_scores"])
	return nil
}

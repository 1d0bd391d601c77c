package infer

import (
	"errors"
	"fmt"
	"time"

	"github.com/webinspect/webinspect/model/edge"
)

// Errors returned by this package. Wrapped errors name what is wrong;
// classify them with errors.Is.
var (
	// ErrOptions is returned by Options.Validate and NewPool when a field is
	// out of range or does not fit the model (the message names the field).
	ErrOptions = errors.New("infer: bad options")
	// ErrNoThreshold is returned by NewPool when Options.Threshold is 0 and
	// the model's sidecar carries no threshold either.
	ErrNoThreshold = errors.New("infer: no threshold")
	// ErrClosed is returned by Detector methods after Pool.Close.
	ErrClosed = errors.New("infer: pool closed")
	// ErrBlock is returned by Process when the pixels do not match the
	// detector's width, stride or line count.
	ErrBlock = errors.New("infer: bad block")
	// ErrRun is returned (wrapping the runtime's error) when a session
	// failed to score a batch; the detector that owned the tiles stays
	// failed and returns it from every later call.
	ErrRun = errors.New("infer: inference failed")
)

// Stitch says how the anomaly maps of overlapping tiles are combined.
type Stitch string

// Stitch modes.
const (
	// StitchCentre (the default) cuts every overlap at its middle: each
	// output pixel comes from the one tile whose centre is nearest. Pixels
	// within half an overlap of a tile's border are never used, so a model
	// whose receptive-field radius is at most Overlap/2 gives the same map
	// tiled as untiled.
	StitchCentre Stitch = "centre"
	// StitchMean averages all tiles covering a pixel. Seams are softer for
	// models with a large receptive field, but tile-border pixels (computed
	// from a truncated neighbourhood) are mixed in.
	StitchMean Stitch = "mean"
	// StitchMax takes the largest value of all tiles covering a pixel: the
	// most sensitive choice, and the one that flags tile-border artefacts.
	StitchMax Stitch = "max"
)

// OffWebMode says how the off-web background beyond the web's edges looks
// (model/edge.Mode).
type OffWebMode = edge.Mode

// Off-web modes.
const (
	OffWebNone   = edge.None   // the web fills every line
	OffWebBright = edge.Bright // off-web is at or above Level (backlight, white roller)
	OffWebDark   = edge.Dark   // off-web is at or below Level (black roller)
	// OffWebAuto takes the settings the model was taught with (its
	// sidecar's made_by.params edge_*); none for a model without them.
	OffWebAuto = edge.Auto
)

// OffWebOptions configures the per-line search for the web's CD extent
// (model/edge, shared with teach and eval so that eval measures what the
// engine does). Widths are in model pixels (after binning). On the AITEX
// fabric 00 frames the band is saturated (255) and the edge passes from
// 255 to web grey over 2–3 camera pixels, hence Level 240 and Guard 2.
type OffWebOptions = edge.Options

// Options configures a Pool and its Detectors. It maps one to one onto the
// ONNX detector section of a recipe.
type Options struct {
	// Bin is 1 (model sees camera pixels) or 2 (2×2 mean, kernels.Bin2).
	Bin int `json:"bin"`
	// OverlapCD and OverlapMD are the tile overlap across and along the
	// web in model pixels, 0..tile side-1. With StitchCentre, an overlap of
	// twice the model's receptive-field radius makes tiling invisible.
	OverlapCD int `json:"overlap_cd"`
	OverlapMD int `json:"overlap_md"`
	// Workers is the number of inference workers, each with its own
	// session (one intra-op thread), 1..64.
	Workers int `json:"workers"`
	// Batch is the most tiles one run takes, 1..the model's batch
	// (onnx.ModelOptions.Batch); 0 means the model's batch.
	Batch int `json:"batch"`
	// MaxWait is the longest a worker holding fewer than Batch tiles waits
	// for more before running what it has, 0..1s. 0 never waits.
	MaxWait time.Duration `json:"max_wait_ns"`
	// InFlight is the number of strips per detector that may be queued or
	// running at once, 2..16: it bounds memory and output latency.
	InFlight int `json:"in_flight"`
	// Threshold is the anomaly-map level above which a pixel is flagged;
	// 0 means the sidecar's threshold.
	Threshold float64 `json:"threshold"`
	// MinAreaPx drops components smaller than this many camera pixels, ≥ 0.
	MinAreaPx int64 `json:"min_area_px"`
	// Stitch is centre (default), mean or max.
	Stitch Stitch `json:"stitch"`
	// OffWeb finds and ignores what lies beyond the web's edges.
	OffWeb OffWebOptions `json:"off_web"`
}

// DefaultOptions returns 2×2 binning, an overlap of 8 model pixels both
// ways, two workers, batches up to the model's batch with at most 2 ms of
// waiting, 3 strips in flight, the sidecar's threshold, centre stitching
// and the off-web search the model was taught with (OffWebAuto; Level
// 240, MinBand 8, Guard 2 when a mode is given instead).
func DefaultOptions() Options {
	return Options{
		Bin: 2, OverlapCD: 8, OverlapMD: 8,
		Workers: 2, MaxWait: 2 * time.Millisecond, InFlight: 3,
		Stitch: StitchCentre,
		OffWeb: OffWebOptions{Mode: OffWebAuto, Level: 240, MinBand: 8, Guard: 2},
	}
}

// Validate names the first bad field and its allowed range. Limits that
// depend on the model (tile size, batch) are checked by NewPool.
func (o *Options) Validate() error {
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("%w: Options.%s %s", ErrOptions, field, fmt.Sprintf(format, args...))
	}
	switch {
	case o.Bin != 1 && o.Bin != 2:
		return bad("Bin", "is %d, want 1 or 2", o.Bin)
	case o.OverlapCD < 0:
		return bad("OverlapCD", "is %d, want ≥ 0", o.OverlapCD)
	case o.OverlapMD < 0:
		return bad("OverlapMD", "is %d, want ≥ 0", o.OverlapMD)
	case o.Workers < 1 || o.Workers > 64:
		return bad("Workers", "is %d, want 1..64", o.Workers)
	case o.Batch < 0:
		return bad("Batch", "is %d, want 0 (model's batch) or 1..model batch", o.Batch)
	case o.MaxWait < 0 || o.MaxWait > time.Second:
		return bad("MaxWait", "is %v, want 0..1s", o.MaxWait)
	case o.InFlight < 2 || o.InFlight > 16:
		return bad("InFlight", "is %d, want 2..16", o.InFlight)
	case o.Threshold < 0:
		return bad("Threshold", "is %v, want 0 (sidecar) or > 0", o.Threshold)
	case o.MinAreaPx < 0:
		return bad("MinAreaPx", "is %d, want ≥ 0", o.MinAreaPx)
	}
	switch o.Stitch {
	case StitchCentre, StitchMean, StitchMax:
	case "":
		return bad("Stitch", "is empty, want centre, mean or max")
	default:
		return bad("Stitch", "is %q, want centre, mean or max", o.Stitch)
	}
	if err := o.OffWeb.ValidateAt("Options.OffWeb"); err != nil {
		return fmt.Errorf("%w: %v", ErrOptions, err)
	}
	return nil
}

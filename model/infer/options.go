package infer

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/webinspect/webinspect/model/edge"
	"github.com/webinspect/webinspect/model/onnx"
)

// Errors returned by this package. Wrapped errors name what is wrong;
// classify them with errors.Is.
var (
	// ErrOptions is returned by Options.Validate (as a *FieldError) and
	// NewPool when a field is out of range or does not fit the model (the
	// message names the field by its JSON path).
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

// Options configures a Pool and its Detectors. It is the model section of
// a recipe (engine.ModelOptions embeds it): the JSON names are the
// recipe's, and Validate names a bad field by its JSON path, which the
// recipe prefixes with "model.". Every range below is checked by Validate,
// and only there; NewPool adds the limits that depend on the model.
type Options struct {
	// Bin is 1 (model sees camera pixels) or 2 (2×2 mean, kernels.Bin2).
	Bin int `json:"bin"`
	// OverlapCD and OverlapMD are the tile overlap across and along the
	// web in model pixels, 0..MaxOverlap, and below the tile side (checked
	// by NewPool). With StitchCentre, an overlap of twice the model's
	// receptive-field radius makes tiling invisible.
	OverlapCD int `json:"overlap_cd"`
	OverlapMD int `json:"overlap_md"`
	// Workers is the number of inference workers, each with its own
	// session (one intra-op thread), 1..64.
	Workers int `json:"workers"`
	// Batch is the most tiles one run takes, 0..MaxBatch and at most the
	// model's batch (onnx.ModelOptions.Batch, checked by NewPool); 0
	// means the model's batch.
	Batch int `json:"batch"`
	// MaxWaitMS is the longest a worker holding fewer than Batch tiles
	// waits for more before running what it has, in milliseconds,
	// 0..1000. 0 never waits.
	MaxWaitMS float64 `json:"max_wait_ms"`
	// InFlight is the number of strips per detector that may be queued or
	// running at once, 2..16: it bounds memory and output latency.
	InFlight int `json:"in_flight"`
	// Threshold is the anomaly-map level above which a pixel is flagged,
	// 0..1e9; 0 means the sidecar's threshold.
	Threshold float64 `json:"threshold"`
	// MinAreaPx drops components smaller than this many camera pixels,
	// 0..1e6.
	MinAreaPx int64 `json:"min_area_px"`
	// Stitch is centre (default), mean or max.
	Stitch Stitch `json:"stitch"`
	// OffWeb finds and ignores what lies beyond the web's edges. Its
	// fields are checked whatever the mode, so a recipe that turns the
	// search on later is already valid.
	OffWeb OffWebOptions `json:"off_web"`
}

// Static limits of Options (see its fields).
const (
	// MaxOverlap bounds OverlapCD and OverlapMD: half the largest tile
	// side a sidecar may declare (onnx.MaxTileSide).
	MaxOverlap = onnx.MaxTileSide / 2
	// MaxBatch bounds Batch. ONNX Runtime on a CPU gains nothing from
	// bigger batches here (bench/RESULTS.md).
	MaxBatch = 64
	// MaxThreshold bounds Threshold.
	MaxThreshold = 1e9
	// MaxMinAreaPx bounds MinAreaPx.
	MaxMinAreaPx = 1_000_000
)

// DefaultOptions returns 2×2 binning, an overlap of 8 model pixels both
// ways, two workers, batches up to the model's batch with at most 2 ms of
// waiting, 3 strips in flight, the sidecar's threshold, centre stitching
// and the off-web search the model was taught with (OffWebAuto; Level
// 240, MinBand 8, Guard 2 when a mode is given instead).
func DefaultOptions() Options {
	return Options{
		Bin: 2, OverlapCD: 8, OverlapMD: 8,
		Workers: 2, MaxWaitMS: 2, InFlight: 3,
		Stitch: StitchCentre,
		OffWeb: OffWebOptions{Mode: OffWebAuto, Level: 240, MinBand: 8, Guard: 2},
	}
}

// MaxWait is MaxWaitMS as a duration.
func (o *Options) MaxWait() time.Duration {
	return time.Duration(o.MaxWaitMS * float64(time.Millisecond))
}

// FieldError is the error Validate returns: the bad field by its JSON
// path, its value and what it must be. It wraps ErrOptions.
type FieldError struct {
	Field string // JSON path in Options, e.g. "off_web.min_band"
	Value any    // the value found
	Want  string // what it must be, e.g. "between 1 and 4096"
}

// At describes the error with the field's path prefixed by prefix (a
// recipe passes "model."): "model.off_web.min_band = 5000: must be
// between 1 and 4096".
func (e *FieldError) At(prefix string) string {
	v := e.Value
	if s, ok := v.(fmt.Stringer); ok {
		v = s.String()
	}
	if s, ok := v.(string); ok {
		v = strconv.Quote(s)
	}
	return fmt.Sprintf("%s%s = %v: must be %s", prefix, e.Field, v, e.Want)
}

func (e *FieldError) Error() string { return ErrOptions.Error() + ": " + e.At("") }

// Unwrap returns ErrOptions.
func (e *FieldError) Unwrap() error { return ErrOptions }

// Validate returns a *FieldError for the first field out of its range.
// Limits that depend on the model (tile size, batch) are checked by
// NewPool.
func (o *Options) Validate() error {
	between := func(field string, v, lo, hi int64) error {
		if v < lo || v > hi {
			return &FieldError{field, v, fmt.Sprintf("between %d and %d", lo, hi)}
		}
		return nil
	}
	betweenF := func(field string, v, lo, hi float64) error {
		if !(v >= lo && v <= hi) { // also NaN
			return &FieldError{field, v, fmt.Sprintf("between %g and %g", lo, hi)}
		}
		return nil
	}
	bin := func() error {
		if o.Bin != 1 && o.Bin != 2 {
			return &FieldError{"bin", o.Bin, "1 or 2"}
		}
		return nil
	}
	oneOf := func(field, v string, allowed ...string) error {
		if !slices.Contains(allowed, v) {
			return &FieldError{field, v, "one of " + strings.Join(allowed, ", ")}
		}
		return nil
	}
	w := &o.OffWeb
	offWeb := func() error { // model/edge's ranges, under the recipe's names
		if f, bad := w.BadField(); bad {
			return between("off_web."+f.JSON, int64(f.Get(w)), int64(f.Lo), int64(f.Hi))
		}
		return nil
	}
	for _, err := range []error{
		bin(),
		between("overlap_cd", int64(o.OverlapCD), 0, MaxOverlap),
		between("overlap_md", int64(o.OverlapMD), 0, MaxOverlap),
		between("workers", int64(o.Workers), 1, 64),
		between("batch", int64(o.Batch), 0, MaxBatch),
		betweenF("max_wait_ms", o.MaxWaitMS, 0, 1000),
		between("in_flight", int64(o.InFlight), 2, 16),
		betweenF("threshold", o.Threshold, 0, MaxThreshold),
		between("min_area_px", o.MinAreaPx, 0, MaxMinAreaPx),
		oneOf("stitch", string(o.Stitch), string(StitchCentre), string(StitchMean), string(StitchMax)),
		oneOf("off_web.mode", string(w.Mode), string(OffWebNone), string(OffWebBright), string(OffWebDark), string(OffWebAuto)),
		offWeb(),
	} {
		if err != nil {
			return err
		}
	}
	return nil
}

package acquisition

import (
	"errors"
	"fmt"
	"math"
)

// ErrGeometry is returned (wrapped) by Info.Validate and
// CameraInfo.Validate for a geometry, calibration or encoder setting that
// no real line can have, or that would need more memory than the budget.
var ErrGeometry = errors.New("impossible source geometry")

// Limits of a source's geometry. They bound what a recording, a camera or
// the simulator may declare, so that a corrupt or hostile description is
// refused with an error naming the field, before anything is allocated.
const (
	MaxCameras       = 64      // cameras across one web
	MaxWidthPx       = 1 << 16 // pixels per line (the widest line-scan sensors have 16k)
	MaxLinesPerBlock = 1 << 16 // lines per block
	// MaxBlockBytes bounds one block (pixels and counts): ring buffers hold
	// a few dozen of them per camera.
	MaxBlockBytes = 64 << 20
	MaxWebWidthMM = 100_000 // 100 m
	MaxOffsetMM   = 100_000 // a camera's CD offset, either way
	MaxPixelMM    = 100.0
	MaxMMPerCount = 1000.0
	// MaxCountsPerLine bounds the trigger divider.
	MaxCountsPerLine = 1 << 20
	// MaxCount bounds an encoder count in either direction (2^53: every
	// count converts to float64 metres exactly).
	MaxCount = 1 << 53
	// MaxJumpMM is the largest MD step between two consecutive lines of a
	// camera, forwards or backwards: 10 km. A step beyond it is a corrupt
	// count, not web.
	MaxJumpMM = 10_000_000
)

// MaxJumpCounts is the largest step of the encoder count between two
// consecutive lines for info's encoder resolution (MaxJumpMM).
func (i Info) MaxJumpCounts() int64 {
	if !(i.MMPerCount > 0) {
		return 0
	}
	return int64(math.Min(MaxJumpMM/i.MMPerCount, MaxCount))
}

// CheckCount returns an error when count cannot follow prev (the count of
// the camera's previous line; ok false for the first line): beyond
// ±MaxCount, or a step larger than MaxJumpCounts.
func (i Info) CheckCount(prev int64, ok bool, count int64) error {
	if count > MaxCount || count < -MaxCount {
		return fmt.Errorf("%w: encoder count %d is beyond ±2^53", ErrGeometry, count)
	}
	if !ok {
		return nil
	}
	d := count - prev
	if d < 0 {
		d = -d
	}
	if j := i.MaxJumpCounts(); d > j {
		return fmt.Errorf("%w: encoder count steps from %d to %d, more than %d counts (%d m) between two lines",
			ErrGeometry, prev, count, j, MaxJumpMM/1000)
	}
	return nil
}

// Validate checks info and every camera in it, naming the first bad field.
func (i Info) Validate() error {
	bad := func(field string, v any, want string) error {
		return fmt.Errorf("%w: %s = %v: %s", ErrGeometry, field, v, want)
	}
	switch {
	case !finiteIn(i.WebWidthMM, 0, MaxWebWidthMM):
		return bad("web_width_mm", i.WebWidthMM, fmt.Sprintf("want 0..%d", MaxWebWidthMM))
	case !finiteIn(i.MMPerCount, 1e-9, MaxMMPerCount):
		return bad("mm_per_count", i.MMPerCount, fmt.Sprintf("want > 0 and <= %g", MaxMMPerCount))
	case i.CountsPerLine < 1 || i.CountsPerLine > MaxCountsPerLine:
		return bad("counts_per_line", i.CountsPerLine, fmt.Sprintf("want 1..%d", MaxCountsPerLine))
	case i.LinesPerBlock < 1 || i.LinesPerBlock > MaxLinesPerBlock:
		return bad("lines_per_block", i.LinesPerBlock, fmt.Sprintf("want 1..%d", MaxLinesPerBlock))
	case !finiteIn(i.SpeedMPerMin, -10000, 10000):
		return bad("speed_m_per_min", i.SpeedMPerMin, "want -10000..10000")
	case len(i.Cameras) > MaxCameras:
		return bad("cameras", len(i.Cameras), fmt.Sprintf("want at most %d cameras", MaxCameras))
	}
	for k, c := range i.Cameras {
		if err := c.Validate(); err != nil {
			return fmt.Errorf("cameras[%d]: %w", k, err)
		}
		if c.Index != k {
			return bad(fmt.Sprintf("cameras[%d].index", k), c.Index, fmt.Sprintf("want %d", k))
		}
		if b := int64(i.LinesPerBlock) * int64(c.Width+8); b > MaxBlockBytes {
			return fmt.Errorf("%w: lines_per_block %d x (cameras[%d].width %d + 8 bytes of count) = %d bytes per block: the budget is %d MiB",
				ErrGeometry, i.LinesPerBlock, k, c.Width, b, MaxBlockBytes>>20)
		}
	}
	return nil
}

// Validate checks a camera's geometry and flat-field references. A white
// reference at or below the dark one at a pixel would make that pixel
// blind (every value maps to one), so it is refused, naming the pixels.
func (c CameraInfo) Validate() error {
	bad := func(field string, v any, want string) error {
		return fmt.Errorf("%w: %s = %v: %s", ErrGeometry, field, v, want)
	}
	switch {
	case c.Width < 1 || c.Width > MaxWidthPx:
		return bad("width", c.Width, fmt.Sprintf("want 1..%d px", MaxWidthPx))
	case !finiteIn(c.OffsetMM, -MaxOffsetMM, MaxOffsetMM):
		return bad("offset_mm", c.OffsetMM, fmt.Sprintf("want -%d..%d", MaxOffsetMM, MaxOffsetMM))
	case !finiteIn(c.PixelMM, 1e-6, MaxPixelMM):
		return bad("pixel_mm", c.PixelMM, fmt.Sprintf("want > 0 and <= %g", MaxPixelMM))
	case c.Dark != nil && len(c.Dark) != c.Width:
		return bad("dark", fmt.Sprintf("%d values", len(c.Dark)), fmt.Sprintf("want one per pixel (%d)", c.Width))
	case c.White != nil && len(c.White) != c.Width:
		return bad("white", fmt.Sprintf("%d values", len(c.White)), fmt.Sprintf("want one per pixel (%d)", c.Width))
	}
	if c.White != nil {
		blind, first := 0, -1
		for x, w := range c.White {
			d := uint8(0)
			if c.Dark != nil {
				d = c.Dark[x]
			}
			if w <= d {
				if first < 0 {
					first = x
				}
				blind++
			}
		}
		if blind > 0 {
			return fmt.Errorf("%w: white reference at or below dark at %d pixels (first at pixel %d): those pixels would be blind; record the references again",
				ErrGeometry, blind, first)
		}
	}
	return nil
}

func finiteIn(v, lo, hi float64) bool {
	return !math.IsNaN(v) && v >= lo && v <= hi
}

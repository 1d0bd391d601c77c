// Package kernels holds the pixel kernels of the inspection pipeline: pure
// functions over slices of 8-bit pixels and float32 per-column statistics.
//
// # Model
//
// A line is a []uint8 of width pixels; a block of lines is the same bytes
// laid end to end (line i at [i*width, (i+1)*width)). Per-column state
// (flat-field gains, background mean and variance, thresholds) is a slice of
// width elements indexed by column. The threshold detector runs, per line:
//
//	FlatField        src ─▶ corrected line        (8.8 fixed-point gain)
//	ThresholdMask    line, lo, hi ─▶ mask          (+1 bright, -1 dark, 0)
//	EncodeRuns       mask ─▶ []Run                 (horizontal runs)
//	Labeler.AddLine  []Run ─▶ closed []Component   (8-connected regions)
//	UpdateBackground line, mask ─▶ mean, variance  (exponentially weighted)
//	Thresholds       mean, variance ─▶ lo, hi      (every few lines)
//
// # Byte layouts
//
// Flat-field gain is unsigned 8.8 fixed point: 256 means ×1.0.
//
//	gain  bit 15 ............ 8 7 ............. 0
//	      |  integer part     |  fraction/256    |
//
// A mask is one int8 per column: +1 (brighter than hi), -1 (darker than lo)
// or 0. A Run covers columns [X0, X1) of one line with one polarity.
//
// # Implementations
//
// Every kernel is a thin exported wrapper that checks slice lengths and then
// calls its inner loop through a package-level function variable (see
// dispatch.go). The variables point at the plain-Go xxxGeneric functions,
// which are the reference; an assembly version for one architecture can be
// swapped in at init and must be tested against the generic one on random
// input at every length around its vector width and at odd offsets.
//
// Kernels never allocate (except EncodeRuns growing its caller's dst, and
// the Labeler growing its internal slices to their high-water mark) and
// never start goroutines; callers own every buffer they pass in.
//
// Slice lengths that do not match are programming errors and panic with a
// message naming the short slice.
package kernels

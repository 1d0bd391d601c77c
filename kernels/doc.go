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
// Two more kernels feed other consumers of a block:
//
//	Normalize        uint8 ─▶ float32 scale*x+offset (tile tensors for a model)
//	Bin2             block ─▶ block at half width and height (2×2 mean)
//
// # Implementations
//
// Every kernel is a thin exported wrapper that checks slice lengths and then
// calls its inner loop through a package-level function variable (see
// dispatch.go). The xxxGeneric functions are the plain-Go reference. On
// amd64 (kernels_amd64.go, kernels_amd64.s, runs_amd64.go) init swaps in
// hand-written plan9 assembly for FlatField, ThresholdMask,
// UpdateBackground, Thresholds, Normalize and Bin2, AVX-512 (F, BW, VL)
// when the CPU has it, else AVX2, else none; EncodeRuns skips zero spans
// of the mask with an AVX2 scan. Implementation reports the choice. The
// assembly processes whole vectors (16 to 64 columns) and leaves the tail
// of each line to the next narrower implementation (AVX-512 to AVX2, AVX2
// to the generic loop); every function ends with VZEROUPPER.
// It is bit-exact with the reference, the float kernels included: they
// perform the same float32 operations in the same order without fused
// multiply-add, and the generic code converts each product to float32
// explicitly so the compiler cannot fuse it either (not even with
// GOAMD64=v3).
//
// Build with -tags noasm (or on another architecture, or with gccgo) to use
// the generic kernels only; kernels_other.go covers that case. Check both:
//
//	go test -race ./kernels/
//	go test -race -tags noasm ./kernels/
//
// The cross-check tests (simd_test.go) force each implementation the CPU
// can run in turn (selectImpl) and compare it with the reference on random
// input at every length from 0 to 70, around 96, 128 and 4096, and at odd
// offsets; the fuzz targets (FuzzFlatField, FuzzThresholdMask,
// FuzzUpdateBackground, FuzzThresholds, FuzzEncodeRuns, FuzzNormalize,
// FuzzBin2) compare the selected implementation with the reference on the
// fuzzer's input:
//
//	go test -run '^$' -fuzz '^FuzzFlatField$' -fuzztime 1m ./kernels/
//
// The benchmarks of those kernels report impl=generic, impl=avx2,
// impl=avx512 and impl=copy (copy() of the same input bytes, the
// memory-bandwidth baseline) side by side in one run:
//
//	go test -run '^$' -bench 'FlatField$|Threshold|Background|Runs|Normalize|Bin2' ./kernels/
//
// Kernels never allocate (except EncodeRuns growing its caller's dst, and
// the Labeler growing its internal slices to their high-water mark) and
// never start goroutines; callers own every buffer they pass in.
//
// Slice lengths that do not match are programming errors and panic with a
// message naming the short slice.
package kernels

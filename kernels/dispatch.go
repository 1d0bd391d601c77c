package kernels

import "strconv"

// Inner loops, called through these variables so that a per-architecture
// file can replace one with an assembly version at init. Each must produce
// exactly the result of its generic reference (UpdateBackground and
// Normalize included: their assembly performs the same float32 operations
// in the same order, without fused multiply-add, so results are bit-exact,
// NaN payloads aside).
var (
	flatFieldGainsImpl   = flatFieldGainsGeneric
	flatFieldImpl        = flatFieldGeneric
	initBackgroundImpl   = initBackgroundGeneric
	updateBackgroundImpl = updateBackgroundGeneric
	thresholdsImpl       = thresholdsGeneric
	thresholdMaskImpl    = thresholdMaskGeneric
	encodeRunsImpl       = encodeRunsGeneric
	normalizeImpl        = normalizeGeneric
	bin2Impl             = bin2Generic
)

// implName names the inner loops in use; see Implementation.
var implName = "generic"

func init() { selectImpl("") }

// selectImpl points every inner loop at its generic reference and then
// lets the architecture file (kernels_amd64.go, or kernels_other.go which
// does nothing) swap in the fastest version the CPU supports, up to limit:
// "generic" keeps the plain-Go loops, "avx2" stops there, "" allows the
// best there is. It runs once at init; tests and benchmarks call it to run
// both paths on one input. It must not be called while kernels run.
func selectImpl(limit string) {
	flatFieldGainsImpl = flatFieldGainsGeneric
	flatFieldImpl = flatFieldGeneric
	initBackgroundImpl = initBackgroundGeneric
	updateBackgroundImpl = updateBackgroundGeneric
	thresholdsImpl = thresholdsGeneric
	thresholdMaskImpl = thresholdMaskGeneric
	encodeRunsImpl = encodeRunsGeneric
	normalizeImpl = normalizeGeneric
	bin2Impl = bin2Generic
	implName = "generic"
	if limit != "generic" {
		useArch(limit)
	}
}

// Implementation names the inner loops selected for this CPU at start-up:
// "generic" (plain Go: another architecture, the noasm build tag, or a CPU
// without AVX2), "avx2" or "avx512" (AVX-512 F, BW and VL). Benchmarks and
// logs record it.
func Implementation() string { return implName }

// need panics when the slice called name holds fewer than n elements. A
// short slice is a broken caller invariant, not a runtime condition.
func need(name string, have, n int) {
	if have < n {
		short(name, have, n)
	}
}

//go:noinline
func short(name string, have, n int) {
	panic("kernels: " + name + " too short: len " + strconv.Itoa(have) + ", need " + strconv.Itoa(n))
}

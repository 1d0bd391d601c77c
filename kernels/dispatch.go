package kernels

import "strconv"

// Inner loops, called through these variables so that a per-architecture
// file can replace one with an assembly version in its init. Each must
// produce exactly the result of its generic reference.
var (
	flatFieldGainsImpl   = flatFieldGainsGeneric
	flatFieldImpl        = flatFieldGeneric
	initBackgroundImpl   = initBackgroundGeneric
	updateBackgroundImpl = updateBackgroundGeneric
	thresholdsImpl       = thresholdsGeneric
	thresholdMaskImpl    = thresholdMaskGeneric
	encodeRunsImpl       = encodeRunsGeneric
)

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

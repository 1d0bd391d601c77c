//go:build amd64 && !noasm && gc

package kernels

import "golang.org/x/sys/cpu"

// The assembly kernels in kernels_amd64.s each process a body whose length
// is a multiple of their block (32 pixels for AVX2, 64 for AVX-512; half
// that for UpdateBackground and Thresholds); the Go wrappers below hand the
// remaining tail columns of each line to the next narrower implementation.
// Every assembly function ends with VZEROUPPER so that SSE code after it
// (all of Go's scalar float code) pays no AVX-to-SSE transition penalty.

var (
	// hasAVX2 gates the AVX2 kernels; POPCNT comes with every AVX2 CPU
	// but is checked anyway. x/sys/cpu also checks that the OS saves the
	// YMM (and, below, ZMM and mask) registers.
	hasAVX2 = cpu.X86.HasAVX2 && cpu.X86.HasPOPCNT
	// hasAVX512 gates the AVX-512 kernels: F for the float and 32-bit
	// ops, BW for byte and word ops and mask compares, VL for the
	// EVEX-encoded 128/256-bit forms.
	hasAVX512 = hasAVX2 && cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW && cpu.X86.HasAVX512VL
)

// archImpls lists the assembly implementations this CPU can run, slowest
// first.
func archImpls() []string {
	switch {
	case hasAVX512:
		return []string{"avx2", "avx512"}
	case hasAVX2:
		return []string{"avx2"}
	}
	return nil
}

// useArch swaps in the AVX2 kernels when the CPU has AVX2, and then the
// AVX-512 ones when it has AVX-512 and limit is not "avx2".
func useArch(limit string) {
	if !hasAVX2 {
		return
	}
	flatFieldImpl = flatFieldAVX2
	thresholdMaskImpl = thresholdMaskAVX2
	updateBackgroundImpl = updateBackgroundAVX2
	normalizeImpl = normalizeAVX2
	bin2Impl = bin2AVX2
	thresholdsImpl = thresholdsAVX2
	encodeRunsImpl = encodeRunsAVX2 // also at the AVX-512 level: the scan is a small part of it
	implName = "avx2"
	if !hasAVX512 || limit == "avx2" {
		return
	}
	flatFieldImpl = flatFieldAVX512
	thresholdMaskImpl = thresholdMaskAVX512
	updateBackgroundImpl = updateBackgroundAVX512
	normalizeImpl = normalizeAVX512
	bin2Impl = bin2AVX512
	thresholdsImpl = thresholdsAVX512
	implName = "avx512"
}

// Assembly bodies. n is a positive multiple of the block named.

//go:noescape
func flatFieldBodyAVX2(dst, src, dark *uint8, gain *uint16, n int) // 32

//go:noescape
func flatFieldBodyAVX512(dst, src, dark *uint8, gain *uint16, n int) // 64

// thresholdMaskBodyAVX2 and thresholdMaskBodyAVX512 return the number of
// flagged (non-zero) mask bytes they wrote.
//
//go:noescape
func thresholdMaskBodyAVX2(mask *int8, line, lo, hi *uint8, n int) (flagged int) // 32

//go:noescape
func thresholdMaskBodyAVX512(mask *int8, line, lo, hi *uint8, n int) (flagged int) // 64

//go:noescape
func updateBackgroundBodyAVX2(mean, variance *float32, line *uint8, mask *int8, n int, alpha, alphaFlagged float32) // 16

//go:noescape
func updateBackgroundBodyAVX512(mean, variance *float32, line *uint8, mask *int8, n int, alpha, alphaFlagged float32) // 32

//go:noescape
func normalizeBodyAVX2(dst *float32, src *uint8, n int, scale, offset float32) // 32

//go:noescape
func normalizeBodyAVX512(dst *float32, src *uint8, n int, scale, offset float32) // 64

// The bin2 bodies write n output pixels from 2n pixels of each of the lines
// r0 and r1.
//
//go:noescape
func bin2BodyAVX2(dst, r0, r1 *uint8, n int) // 32

//go:noescape
func bin2BodyAVX512(dst, r0, r1 *uint8, n int) // 64

// Wrappers: body over the whole blocks, tail over the rest of each line
// (for AVX-512 the AVX2 wrapper, which takes one more half block, for AVX2
// the generic loop). Bin2's tail stays generic: at most 63 output pixels
// per line pair.

func flatFieldAVX2(dst, src []uint8, dark []uint8, gain []uint16) {
	flatFieldAsm(flatFieldBodyAVX2, 32, flatFieldGeneric, dst, src, dark, gain)
}

func flatFieldAVX512(dst, src []uint8, dark []uint8, gain []uint16) {
	flatFieldAsm(flatFieldBodyAVX512, 64, flatFieldAVX2, dst, src, dark, gain)
}

func flatFieldAsm(body func(dst, src, dark *uint8, gain *uint16, n int), block int,
	tail func(dst, src []uint8, dark []uint8, gain []uint16),
	dst, src []uint8, dark []uint8, gain []uint16) {
	w := len(dark)
	n := w - w%block
	if n == 0 {
		tail(dst, src, dark, gain)
		return
	}
	gain = gain[:w]
	for off := 0; off+w <= len(src); off += w {
		body(&dst[off], &src[off], &dark[0], &gain[0], n)
		if n < w {
			tail(dst[off+n:off+w], src[off+n:off+w], dark[n:], gain[n:])
		}
	}
}

func thresholdMaskAVX2(mask []int8, line []uint8, lo, hi []uint8) int {
	return thresholdMaskAsm(thresholdMaskBodyAVX2, 32, thresholdMaskGeneric, mask, line, lo, hi)
}

func thresholdMaskAVX512(mask []int8, line []uint8, lo, hi []uint8) int {
	return thresholdMaskAsm(thresholdMaskBodyAVX512, 64, thresholdMaskAVX2, mask, line, lo, hi)
}

func thresholdMaskAsm(body func(mask *int8, line, lo, hi *uint8, n int) int, block int,
	tail func(mask []int8, line []uint8, lo, hi []uint8) int,
	mask []int8, line []uint8, lo, hi []uint8) int {
	w := len(mask)
	n := w - w%block
	if n == 0 {
		return tail(mask, line, lo, hi)
	}
	line, lo, hi = line[:w], lo[:w], hi[:w]
	flagged := body(&mask[0], &line[0], &lo[0], &hi[0], n)
	if n < w {
		flagged += tail(mask[n:], line[n:], lo[n:], hi[n:])
	}
	return flagged
}

func updateBackgroundAVX2(mean, variance []float32, line []uint8, mask []int8, alpha, alphaFlagged float32) {
	updateBackgroundAsm(updateBackgroundBodyAVX2, 16, updateBackgroundGeneric, mean, variance, line, mask, alpha, alphaFlagged)
}

func updateBackgroundAVX512(mean, variance []float32, line []uint8, mask []int8, alpha, alphaFlagged float32) {
	updateBackgroundAsm(updateBackgroundBodyAVX512, 32, updateBackgroundAVX2, mean, variance, line, mask, alpha, alphaFlagged)
}

func updateBackgroundAsm(body func(mean, variance *float32, line *uint8, mask *int8, n int, alpha, alphaFlagged float32), block int,
	tail func(mean, variance []float32, line []uint8, mask []int8, alpha, alphaFlagged float32),
	mean, variance []float32, line []uint8, mask []int8, alpha, alphaFlagged float32) {
	w := len(mean)
	n := w - w%block
	if n == 0 {
		tail(mean, variance, line, mask, alpha, alphaFlagged)
		return
	}
	variance, line, mask = variance[:w], line[:w], mask[:w]
	body(&mean[0], &variance[0], &line[0], &mask[0], n, alpha, alphaFlagged)
	if n < w {
		tail(mean[n:], variance[n:], line[n:], mask[n:], alpha, alphaFlagged)
	}
}

func normalizeAVX2(dst []float32, src []uint8, scale, offset float32) {
	normalizeAsm(normalizeBodyAVX2, 32, normalizeGeneric, dst, src, scale, offset)
}

func normalizeAVX512(dst []float32, src []uint8, scale, offset float32) {
	normalizeAsm(normalizeBodyAVX512, 64, normalizeAVX2, dst, src, scale, offset)
}

func normalizeAsm(body func(dst *float32, src *uint8, n int, scale, offset float32), block int,
	tail func(dst []float32, src []uint8, scale, offset float32),
	dst []float32, src []uint8, scale, offset float32) {
	w := len(src)
	n := w - w%block
	if n == 0 {
		tail(dst, src, scale, offset)
		return
	}
	dst = dst[:w]
	body(&dst[0], &src[0], n, scale, offset)
	if n < w {
		tail(dst[n:], src[n:], scale, offset)
	}
}

func bin2AVX2(dst []uint8, src []uint8, width int) {
	bin2Asm(bin2BodyAVX2, 32, dst, src, width)
}

func bin2AVX512(dst []uint8, src []uint8, width int) {
	bin2Asm(bin2BodyAVX512, 64, dst, src, width)
}

func bin2Asm(body func(dst, r0, r1 *uint8, n int), block int, dst []uint8, src []uint8, width int) {
	ow := width / 2
	n := ow - ow%block
	if n == 0 {
		bin2Generic(dst, src, width)
		return
	}
	for y := 0; (2*y+2)*width <= len(src); y++ {
		r0 := src[2*y*width : 2*y*width+2*ow]
		r1 := src[(2*y+1)*width : (2*y+1)*width+2*ow]
		d := dst[y*ow : (y+1)*ow]
		body(&d[0], &r0[0], &r1[0], n)
		if n < ow {
			bin2Row(d[n:], r0[2*n:], r1[2*n:])
		}
	}
}

//go:noescape
func thresholdsBodyAVX2(lo, hi *uint8, mean, variance *float32, n int, k, minDelta float32) // 16

//go:noescape
func thresholdsBodyAVX512(lo, hi *uint8, mean, variance *float32, n int, k, minDelta float32) // 32

func thresholdsAVX2(lo, hi []uint8, mean, variance []float32, k, minDelta float32) {
	thresholdsAsm(thresholdsBodyAVX2, 16, thresholdsGeneric, lo, hi, mean, variance, k, minDelta)
}

func thresholdsAVX512(lo, hi []uint8, mean, variance []float32, k, minDelta float32) {
	thresholdsAsm(thresholdsBodyAVX512, 32, thresholdsAVX2, lo, hi, mean, variance, k, minDelta)
}

func thresholdsAsm(body func(lo, hi *uint8, mean, variance *float32, n int, k, minDelta float32), block int,
	tail func(lo, hi []uint8, mean, variance []float32, k, minDelta float32),
	lo, hi []uint8, mean, variance []float32, k, minDelta float32) {
	w := len(lo)
	n := w - w%block
	if n == 0 {
		tail(lo, hi, mean, variance, k, minDelta)
		return
	}
	hi, mean, variance = hi[:w], mean[:w], variance[:w]
	body(&lo[0], &hi[0], &mean[0], &variance[0], n, k, minDelta)
	if n < w {
		tail(lo[n:], hi[n:], mean[n:], variance[n:], k, minDelta)
	}
}

package kernels

import "math"

// InitBackground starts the per-column background model from one line:
// mean[c] = line[c] and variance[c] = v0 for every column of mean. variance
// and line must be at least as long as mean.
func InitBackground(mean, variance []float32, line []uint8, v0 float32) {
	n := len(mean)
	need("variance", len(variance), n)
	need("line", len(line), n)
	initBackgroundImpl(mean, variance[:n], line[:n], v0)
}

func initBackgroundGeneric(mean, variance []float32, line []uint8, v0 float32) {
	variance = variance[:len(mean)]
	line = line[:len(mean)]
	for c, x := range line {
		mean[c] = float32(x)
		variance[c] = v0
	}
}

// UpdateBackground folds one line into the per-column background model, an
// exponentially weighted mean and variance. For each column c, with
// x = line[c] and a = alpha when mask[c] == 0, a = alphaFlagged otherwise:
//
//	d = x - mean[c]
//	mean[c] += a*d
//	variance[c] = (1-a) * (variance[c] + a*d*d)
//
// alphaFlagged = 0 leaves flagged columns exactly unchanged, so defects do
// not leak into the background; a small non-zero value lets the model follow
// a lasting change of the material. All arithmetic is float32, each product
// and sum rounded on its own (no fused multiply-add), so every
// implementation gives the same bits. variance, line and mask must be at
// least as long as mean.
//
// A column whose input stays exactly at its mean (a noise-free synthetic
// image, with the model initialised from it) has d = 0 on every line, so
// its variance decays into float32 subnormals and stays there; subnormal
// arithmetic makes every implementation several times slower. Real camera
// noise keeps the variance far from that range.
func UpdateBackground(mean, variance []float32, line []uint8, mask []int8, alpha, alphaFlagged float32) {
	n := len(mean)
	need("variance", len(variance), n)
	need("line", len(line), n)
	need("mask", len(mask), n)
	updateBackgroundImpl(mean, variance[:n], line[:n], mask[:n], alpha, alphaFlagged)
}

func updateBackgroundGeneric(mean, variance []float32, line []uint8, mask []int8, alpha, alphaFlagged float32) {
	variance = variance[:len(mean)]
	line = line[:len(mean)]
	mask = mask[:len(mean)]
	for c, x := range line {
		a := alpha
		if mask[c] != 0 {
			a = alphaFlagged
		}
		m := mean[c]
		d := float32(x) - m
		// The float32 conversions round each product and so forbid the
		// compiler fusing it into an add (FMA, with GOAMD64=v3): the
		// assembly does the same operations in the same order unfused,
		// which keeps the two bit-exact.
		ad := float32(a * d)
		mean[c] = m + ad
		variance[c] = (1 - a) * (variance[c] + float32(ad*d))
	}
}

// Thresholds derives per-column dark and bright thresholds from the
// background model:
//
//	delta = max(k*sqrt(variance[c]), minDelta)
//	lo[c] = clamp(round(mean[c]-delta), 0, 255)
//	hi[c] = clamp(round(mean[c]+delta), 0, 255)
//
// Rounding is half away from zero. A pixel is dark if x < lo[c] and bright
// if x > hi[c], so lo = 0 means dark can never fire in that column and
// hi = 255 means bright never can. A negative or NaN variance counts as 0; a
// NaN bound becomes the value that never fires (lo 0, hi 255). hi, mean and
// variance must be at least as long as lo.
func Thresholds(lo, hi []uint8, mean, variance []float32, k, minDelta float32) {
	n := len(lo)
	need("hi", len(hi), n)
	need("mean", len(mean), n)
	need("variance", len(variance), n)
	thresholdsImpl(lo, hi[:n], mean[:n], variance[:n], k, minDelta)
}

func thresholdsGeneric(lo, hi []uint8, mean, variance []float32, k, minDelta float32) {
	hi = hi[:len(lo)]
	mean = mean[:len(lo)]
	variance = variance[:len(lo)]
	for c := range lo {
		v := variance[c]
		if !(v > 0) {
			v = 0
		}
		delta := k * float32(math.Sqrt(float64(v)))
		if !(delta >= minDelta) {
			delta = minDelta
		}
		m := mean[c]
		l := m - delta
		switch {
		case !(l > 0):
			lo[c] = 0
		case l >= 255:
			lo[c] = 255
		default:
			lo[c] = uint8(float64(l) + 0.5) // exact in float64: no double rounding
		}
		h := m + delta
		switch {
		case !(h < 255):
			hi[c] = 255
		case h <= 0:
			hi[c] = 0
		default:
			hi[c] = uint8(float64(h) + 0.5)
		}
	}
}

package kernels

// ThresholdMask classifies one line against per-column thresholds:
//
//	mask[c] = +1 if line[c] > hi[c]   (bright)
//	          -1 if line[c] < lo[c]   (dark)
//	           0 otherwise
//
// Bright wins when lo[c] > hi[c] makes both true. It returns the number of
// flagged (non-zero) columns, so a caller can skip EncodeRuns on clean
// lines. line, lo and hi must be at least as long as mask.
func ThresholdMask(mask []int8, line []uint8, lo, hi []uint8) int {
	n := len(mask)
	need("line", len(line), n)
	need("lo", len(lo), n)
	need("hi", len(hi), n)
	return thresholdMaskImpl(mask, line[:n], lo[:n], hi[:n])
}

func thresholdMaskGeneric(mask []int8, line []uint8, lo, hi []uint8) int {
	line = line[:len(mask)]
	lo = lo[:len(mask)]
	hi = hi[:len(mask)]
	count := 0
	for c, x := range line {
		var m int8
		if x < lo[c] {
			m = -1
		}
		if x > hi[c] {
			m = 1
		}
		mask[c] = m
		count += int(m & 1) // +1 and -1 both have the low bit set
	}
	return count
}

// Run is a maximal horizontal run of flagged pixels of one polarity on one
// line.
type Run struct {
	X0, X1 int32   // columns [X0, X1)
	Pol    int8    // +1 bright, -1 dark
	Sum    float32 // sum over the run of (line[c]-mean[c]) (signed contrast)
	Peak   float32 // max |line[c]-mean[c]| over the run
}

// EncodeRuns run-length encodes mask: consecutive columns with the same
// non-zero value form one Run, so a bright run directly followed by a dark
// one gives two touching runs. Sum and Peak are measured against mean in
// float32. Runs are appended to dst in increasing X0 and dst is returned;
// it grows only when its capacity is exceeded. line and mean must be at
// least as long as mask.
func EncodeRuns(dst []Run, mask []int8, line []uint8, mean []float32) []Run {
	n := len(mask)
	need("line", len(line), n)
	need("mean", len(mean), n)
	return encodeRunsImpl(dst, mask, line[:n], mean[:n])
}

func encodeRunsGeneric(dst []Run, mask []int8, line []uint8, mean []float32) []Run {
	n := len(mask)
	line = line[:n]
	mean = mean[:n]
	for c := 0; c < n; {
		p := mask[c]
		if p == 0 {
			c++
			continue
		}
		var r Run
		r, c = measureRun(mask, line, mean, c)
		dst = append(dst, r)
	}
	return dst
}

// measureRun measures the run of equal non-zero mask values that starts at
// x0: its extent, polarity, signed contrast sum and peak |contrast| against
// mean. It returns the run and the index just after it. Every encoder
// (generic and SIMD-assisted) measures runs here, so they agree exactly.
func measureRun(mask []int8, line []uint8, mean []float32, x0 int) (Run, int) {
	p := mask[x0]
	c := x0
	var sum, peak float32
	for ; c < len(mask) && mask[c] == p; c++ {
		d := float32(line[c]) - mean[c]
		sum += d
		if d < 0 {
			d = -d
		}
		if d > peak {
			peak = d
		}
	}
	return Run{X0: int32(x0), X1: int32(c), Pol: p, Sum: sum, Peak: peak}, c
}

package kernels

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// testLengths are the lengths every kernel is checked at: around the
// vector widths a SIMD version would use, plus a full camera line.
var testLengths = []int{0, 1, 7, 8, 15, 16, 17, 31, 32, 33, 63, 64, 65, 4096}

// testOffsets are start offsets into a larger buffer, so that inputs are
// misaligned the way a sub-slice of a block can be.
var testOffsets = []int{0, 1, 3}

func randU8(r *rand.Rand, n, off int) []uint8 {
	b := make([]uint8, n+off)
	for i := range b {
		b[i] = uint8(r.UintN(256))
	}
	return b[off:]
}

func randF32(r *rand.Rand, n, off int, lo, hi float32) []float32 {
	b := make([]float32, n+off)
	for i := range b {
		b[i] = lo + (hi-lo)*r.Float32()
	}
	return b[off:]
}

// randMask returns a mask with runs of either polarity, as thresholding a
// line with defects produces, with density about p.
func randMask(r *rand.Rand, n, off int, p float64) []int8 {
	b := make([]int8, n+off)
	var cur int8
	for i := range b {
		if r.Float64() < 0.3 { // change state
			cur = 0
			if r.Float64() < p {
				cur = int8(1 - 2*int(r.UintN(2)))
			}
		}
		b[i] = cur
	}
	return b[off:]
}

func mustPanic(t *testing.T, want string, f func()) {
	t.Helper()
	defer func() {
		t.Helper()
		r := recover()
		if r == nil {
			t.Fatalf("no panic, want one mentioning %q", want)
		}
		if s, _ := r.(string); !strings.Contains(s, want) {
			t.Fatalf("panic %v, want one mentioning %q", r, want)
		}
	}()
	f()
}

func TestFlatFieldGains(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, n := range testLengths {
		for _, off := range testOffsets {
			dark := randU8(r, n, off)
			white := randU8(r, n, off+1)
			for i := range dark {
				dark[i] /= 4 // mostly white > dark, some dead columns
			}
			for _, target := range []uint8{0, 1, 200, 255} {
				gain := make([]uint16, n+off)[off:]
				FlatFieldGains(gain, dark, white, target)
				for c := range gain {
					span := float64(int(white[c]) - int(dark[c]))
					if span <= 0 {
						span = 1
					}
					want := math.Min(math.Round(float64(target)*256/span), 65535)
					if float64(gain[c]) != want {
						t.Fatalf("n=%d off=%d target=%d c=%d dark=%d white=%d: gain %d, want %v",
							n, off, target, c, dark[c], white[c], gain[c], want)
					}
				}
			}
		}
	}
	// Fixed points: a unit span, a half-way rounding, a dead column.
	gain := make([]uint16, 4)
	FlatFieldGains(gain, []uint8{10, 0, 50, 0}, []uint8{210, 3, 50, 255}, 200)
	if want := []uint16{256, 17067, 51200, 201}; !equalSlices(gain, want) {
		t.Fatalf("gains %v, want %v", gain, want)
	}
	mustPanic(t, "white", func() { FlatFieldGains(make([]uint16, 3), make([]uint8, 3), make([]uint8, 2), 1) })
}

func equalSlices[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestFlatField(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, w := range testLengths {
		for _, off := range testOffsets {
			for _, lines := range []int{1, 3} {
				dark := randU8(r, w, off)
				gain := make([]uint16, w+off)[off:]
				for i := range gain {
					switch r.UintN(4) {
					case 0:
						gain[i] = uint16(r.UintN(65536)) // extreme: saturates
					default:
						gain[i] = uint16(128 + r.UintN(512)) // ×0.5 .. ×2.5
					}
				}
				// One partial trailing line must be left alone.
				n := lines*w + w/2
				src := randU8(r, n, off+2)
				dst := make([]uint8, n+off)[off:]
				for i := range dst {
					dst[i] = 0xA5
				}
				FlatField(dst, src, dark, gain)
				for i := range n {
					want := uint8(0xA5)
					if w > 0 && i < lines*w {
						c := i % w
						v := max(int(src[i])-int(dark[c]), 0)
						want = uint8(min((v*int(gain[c])+128)>>8, 255))
					}
					if dst[i] != want {
						t.Fatalf("w=%d off=%d lines=%d i=%d src=%d dark=%d gain=%d: got %d, want %d",
							w, off, lines, i, src[i], dark[i%max(w, 1)], gain[i%max(w, 1)], dst[i], want)
					}
				}
				// In place gives the same bytes.
				inPlace := append([]uint8(nil), src...)
				FlatField(inPlace, inPlace, dark, gain)
				for i := range lines * w {
					if inPlace[i] != dst[i] {
						t.Fatalf("w=%d off=%d: in place differs at %d: %d vs %d", w, off, i, inPlace[i], dst[i])
					}
				}
			}
		}
	}
	// Identity gain with zero dark returns the input.
	src := []uint8{0, 1, 127, 128, 254, 255}
	dst := make([]uint8, 6)
	FlatField(dst, src, make([]uint8, 3), []uint16{256, 256, 256})
	if !equalSlices(dst, src) {
		t.Fatalf("identity flat field: %v, want %v", dst, src)
	}
	mustPanic(t, "dst", func() { FlatField(make([]uint8, 5), make([]uint8, 6), make([]uint8, 3), make([]uint16, 3)) })
	mustPanic(t, "gain", func() { FlatField(make([]uint8, 6), make([]uint8, 6), make([]uint8, 3), make([]uint16, 2)) })
}

func TestFlatFieldGainsRoundTrip(t *testing.T) {
	// Correcting the white reference with its own gains gives the target
	// within rounding.
	r := rand.New(rand.NewPCG(5, 6))
	const n = 1000
	dark, white := make([]uint8, n), make([]uint8, n)
	for i := range dark {
		dark[i] = uint8(r.UintN(40))
		white[i] = uint8(100 + r.UintN(156))
	}
	gain := make([]uint16, n)
	FlatFieldGains(gain, dark, white, 200)
	out := make([]uint8, n)
	FlatField(out, white, dark, gain)
	for i, v := range out {
		if v < 199 || v > 201 {
			t.Fatalf("column %d: white %d dark %d corrected to %d, want 200±1", i, white[i], dark[i], v)
		}
	}
}

func TestInitBackground(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, n := range testLengths {
		for _, off := range testOffsets {
			line := randU8(r, n, off)
			mean := randF32(r, n, off+1, -1, 1)
			vari := randF32(r, n, off, -1, 1)
			InitBackground(mean, vari, line, 12.5)
			for c := range n {
				if mean[c] != float32(line[c]) || vari[c] != 12.5 {
					t.Fatalf("n=%d off=%d c=%d: mean %v var %v, want %v, 12.5", n, off, c, mean[c], vari[c], line[c])
				}
			}
		}
	}
	mustPanic(t, "line", func() { InitBackground(make([]float32, 3), make([]float32, 3), make([]uint8, 2), 0) })
}

func closeF(a, b, rel float64) bool {
	return math.Abs(a-b) <= rel*math.Max(1, math.Max(math.Abs(a), math.Abs(b)))
}

func TestUpdateBackground(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for _, n := range testLengths {
		for _, off := range testOffsets {
			for _, af := range []float32{0, 0.001} {
				line := randU8(r, n, off)
				mean := randF32(r, n, off, 0, 255)
				vari := randF32(r, n, off+1, 0, 500)
				mask := randMask(r, n, off, 0.5)
				const alpha = 0.01
				m0 := append([]float32(nil), mean...)
				v0 := append([]float32(nil), vari...)
				UpdateBackground(mean, vari, line, mask, alpha, af)
				for c := range n {
					a := float64(alpha)
					if mask[c] != 0 {
						a = float64(af)
					}
					if a == 0 {
						if mean[c] != m0[c] || vari[c] != v0[c] {
							t.Fatalf("n=%d c=%d: flagged column changed with alphaFlagged 0: %v,%v -> %v,%v",
								n, c, m0[c], v0[c], mean[c], vari[c])
						}
						continue
					}
					d := float64(line[c]) - float64(m0[c])
					wm := float64(m0[c]) + a*d
					wv := (1 - a) * (float64(v0[c]) + a*d*d)
					if !closeF(float64(mean[c]), wm, 1e-6) || !closeF(float64(vari[c]), wv, 1e-5) {
						t.Fatalf("n=%d off=%d c=%d: mean %v var %v, want %v %v", n, off, c, mean[c], vari[c], wm, wv)
					}
				}
			}
		}
	}
	mustPanic(t, "mask", func() {
		UpdateBackground(make([]float32, 3), make([]float32, 3), make([]uint8, 3), make([]int8, 2), 0.1, 0)
	})
}

func TestUpdateBackgroundConverges(t *testing.T) {
	// A column fed a two-level signal settles at its mean and variance.
	mean, vari := []float32{0}, []float32{0}
	for i := range 20000 {
		x := uint8(100)
		if i%2 == 1 {
			x = 110
		}
		UpdateBackground(mean, vari, []uint8{x}, []int8{0}, 0.002, 0)
	}
	if !closeF(float64(mean[0]), 105, 1e-2) || !closeF(float64(vari[0]), 25, 2e-2) {
		t.Fatalf("settled at mean %v var %v, want 105, 25", mean[0], vari[0])
	}
}

// thresholdRef computes one column's bounds in float64.
func thresholdRef(mean, variance, k, minDelta float32) (lo, hi float64) {
	v := math.Max(float64(variance), 0)
	delta := math.Max(float64(k)*math.Sqrt(v), float64(minDelta))
	lo = math.Min(math.Max(math.Round(float64(mean)-delta), 0), 255)
	hi = math.Min(math.Max(math.Round(float64(mean)+delta), 0), 255)
	return lo, hi
}

// nearHalf reports whether x lies so close to a rounding boundary that
// float32 and float64 arithmetic may round it differently.
func nearHalf(x float64) bool {
	return math.Abs(x-math.Floor(x)-0.5) < 1e-4
}

func TestThresholds(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for _, n := range testLengths {
		for _, off := range testOffsets {
			mean := randF32(r, n, off, -20, 275)
			vari := randF32(r, n, off+1, -5, 900)
			lo := make([]uint8, n+off)[off:]
			hi := make([]uint8, n+off)[off:]
			const k, minDelta = 3, 4
			Thresholds(lo, hi, mean, vari, k, minDelta)
			for c := range n {
				wl, wh := thresholdRef(mean[c], vari[c], k, minDelta)
				delta := math.Max(k*math.Sqrt(math.Max(float64(vari[c]), 0)), minDelta)
				okL := float64(lo[c]) == wl || (nearHalf(float64(mean[c])-delta) && math.Abs(float64(lo[c])-wl) == 1)
				okH := float64(hi[c]) == wh || (nearHalf(float64(mean[c])+delta) && math.Abs(float64(hi[c])-wh) == 1)
				if !okL || !okH {
					t.Fatalf("n=%d off=%d c=%d mean=%v var=%v: lo,hi = %d,%d, want %v,%v",
						n, off, c, mean[c], vari[c], lo[c], hi[c], wl, wh)
				}
			}
		}
	}
	nan := float32(math.NaN())
	cases := []struct {
		mean, vari, k, minDelta float32
		lo, hi                  uint8
	}{
		{100, 4, 3, 0, 94, 106},         // k*sigma
		{100, 4, 3, 10, 90, 110},        // minDelta wins
		{100.5, 0, 0, 0, 101, 101},      // half rounds away from zero
		{2, 100, 3, 1, 0, 32},           // clamp low: dark cannot fire
		{250, 100, 3, 1, 220, 255},      // clamp high: bright cannot fire
		{100, -3, 3, 2, 98, 102},        // negative variance counts as 0
		{100, nan, 3, 2, 98, 102},       // NaN variance counts as 0
		{nan, 4, 3, 2, 0, 255},          // NaN mean: neither can fire
		{-50, 1, 1, 1, 0, 0},            // entirely below range
		{400, 1, 1, 1, 255, 255},        // entirely above range
		{254.49, 0, 0, 0.001, 254, 254}, // just below a half
	}
	for _, tc := range cases {
		lo, hi := []uint8{7}, []uint8{7}
		Thresholds(lo, hi, []float32{tc.mean}, []float32{tc.vari}, tc.k, tc.minDelta)
		if lo[0] != tc.lo || hi[0] != tc.hi {
			t.Errorf("mean=%v var=%v k=%v min=%v: lo,hi = %d,%d, want %d,%d",
				tc.mean, tc.vari, tc.k, tc.minDelta, lo[0], hi[0], tc.lo, tc.hi)
		}
	}
	mustPanic(t, "variance", func() {
		Thresholds(make([]uint8, 3), make([]uint8, 3), make([]float32, 3), make([]float32, 1), 1, 1)
	})
}

func TestThresholdMask(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	for _, n := range testLengths {
		for _, off := range testOffsets {
			line := randU8(r, n, off)
			lo := randU8(r, n, off+1)
			hi := randU8(r, n, off)
			for i := range lo {
				if r.UintN(8) != 0 { // mostly lo <= hi, a few crossed
					lo[i] = lo[i] / 2
					hi[i] = 128 + hi[i]/2
				}
			}
			mask := make([]int8, n+off)[off:]
			for i := range mask {
				mask[i] = 99
			}
			got := ThresholdMask(mask, line, lo, hi)
			want := 0
			for c := range n {
				var m int8
				switch {
				case line[c] > hi[c]:
					m = 1
				case line[c] < lo[c]:
					m = -1
				}
				if m != 0 {
					want++
				}
				if mask[c] != m {
					t.Fatalf("n=%d off=%d c=%d x=%d lo=%d hi=%d: mask %d, want %d", n, off, c, line[c], lo[c], hi[c], mask[c], m)
				}
			}
			if got != want {
				t.Fatalf("n=%d off=%d: count %d, want %d", n, off, got, want)
			}
		}
	}
	mustPanic(t, "hi", func() { ThresholdMask(make([]int8, 3), make([]uint8, 3), make([]uint8, 3), nil) })
}

// encodeRunsRef finds run boundaries first and measures each run in a
// second pass.
func encodeRunsRef(mask []int8, line []uint8, mean []float32) []Run {
	var runs []Run
	start := -1
	for c := 0; c <= len(mask); c++ {
		if start >= 0 && (c == len(mask) || mask[c] != mask[start]) {
			runs = append(runs, Run{X0: int32(start), X1: int32(c), Pol: mask[start]})
			start = -1
		}
		if start < 0 && c < len(mask) && mask[c] != 0 {
			start = c
		}
	}
	for i := range runs {
		for c := runs[i].X0; c < runs[i].X1; c++ {
			d := float32(line[c]) - mean[c]
			runs[i].Sum += d
			runs[i].Peak = max(runs[i].Peak, float32(math.Abs(float64(d))))
		}
	}
	return runs
}

func TestEncodeRuns(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 16))
	for _, n := range testLengths {
		for _, off := range testOffsets {
			for _, p := range []float64{0, 0.1, 0.9, 1} {
				mask := randMask(r, n, off, p)
				line := randU8(r, n, off+1)
				mean := randF32(r, n, off, 0, 255)
				prefix := []Run{{X0: -7}}
				got := EncodeRuns(prefix, mask, line, mean)
				if len(got) == 0 || got[0].X0 != -7 {
					t.Fatalf("n=%d: dst prefix lost", n)
				}
				want := encodeRunsRef(mask, line, mean)
				if !equalSlices(got[1:], want) {
					t.Fatalf("n=%d off=%d p=%v:\n got %v\nwant %v", n, off, p, got[1:], want)
				}
			}
		}
	}
	got := EncodeRuns(nil, []int8{0, 1, 1, -1, 0, -1}, []uint8{0, 12, 14, 2, 0, 1}, []float32{5, 10, 10, 4, 5, 5})
	want := []Run{{1, 3, 1, 6, 4}, {3, 4, -1, -2, 2}, {5, 6, -1, -4, 4}}
	if !equalSlices(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	mustPanic(t, "mean", func() { EncodeRuns(nil, make([]int8, 3), make([]uint8, 3), nil) })
}

func TestKernelsDoNotAllocate(t *testing.T) {
	const w = 4096
	r := rand.New(rand.NewPCG(17, 18))
	line, dark, white := randU8(r, w, 0), randU8(r, w, 0), randU8(r, w, 0)
	gain := make([]uint16, w)
	out := make([]uint8, w)
	mean, vari := randF32(r, w, 0, 0, 255), randF32(r, w, 0, 0, 100)
	lo, hi := make([]uint8, w), make([]uint8, w)
	mask := randMask(r, w, 0, 0.2)
	runs := make([]Run, 0, w)
	for name, f := range map[string]func(){
		"FlatFieldGains":   func() { FlatFieldGains(gain, dark, white, 200) },
		"FlatField":        func() { FlatField(out, line, dark, gain) },
		"InitBackground":   func() { InitBackground(mean, vari, line, 4) },
		"UpdateBackground": func() { UpdateBackground(mean, vari, line, mask, 0.01, 0) },
		"Thresholds":       func() { Thresholds(lo, hi, mean, vari, 3, 4) },
		"ThresholdMask":    func() { ThresholdMask(mask, line, lo, hi) },
		"EncodeRuns":       func() { runs = EncodeRuns(runs[:0], mask, line, mean) },
		"Normalize":        func() { Normalize(mean, line, 1.0/255, 0) },
		"Bin2":             func() { Bin2(out, line, 256) },
	} {
		if a := testing.AllocsPerRun(10, f); a != 0 {
			t.Errorf("%s: %v allocations per call, want 0", name, a)
		}
	}
}

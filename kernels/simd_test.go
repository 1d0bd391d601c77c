package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
)

// The cross-checks below run each kernel through its exported function,
// with each implementation this build and CPU can run forced in turn
// (forEachImpl), and through its generic reference called directly, on the
// same random input, and require identical results (float results
// bit-identical, NaN payloads aside). With -tags noasm both sides are
// generic; TestImplementationSelected (kernels_amd64_test.go) makes sure
// the assembly really is selected in a normal amd64 build.

// crossLengths are every length up to a little over two AVX2 vectors of
// bytes, the edges of one and two AVX-512 vectors, and a camera line with
// a tail on either side.
var crossLengths = func() []int {
	var l []int
	for n := 0; n <= 70; n++ {
		l = append(l, n)
	}
	return append(l, 95, 96, 97, 127, 128, 129, 4095, 4096, 4097)
}()

// crossOffsets misalign every input and output slice.
var crossOffsets = []int{0, 1, 3, 7}

func sameBits32(a, b float32) bool {
	return math.Float32bits(a) == math.Float32bits(b) || (a != a && b != b)
}

// checkFlatField compares FlatField with flatFieldGeneric on one input,
// out of place and in place.
func checkFlatField(t testing.TB, src, dark []uint8, gain []uint16) {
	t.Helper()
	w := len(dark)
	got := make([]uint8, len(src)+1)[1:] // outputs misaligned too
	want := make([]uint8, len(src))
	FlatField(got, src, dark, gain)
	if w > 0 {
		n := len(src) / w * w
		flatFieldGeneric(want[:n], src[:n], dark, gain[:w])
	}
	for i := range got {
		if got[i] != want[i] {
			c := i % max(w, 1)
			t.Fatalf("%s: w=%d i=%d src=%d dark=%d gain=%d: got %d, want %d",
				Implementation(), w, i, src[i], dark[c], gain[c], got[i], want[i])
		}
	}
	inPlace := append([]uint8(nil), src...)
	FlatField(inPlace, inPlace, dark, gain)
	for i := range len(src) / max(w, 1) * w {
		if inPlace[i] != want[i] {
			t.Fatalf("%s: w=%d: in place differs at %d: %d vs %d", Implementation(), w, i, inPlace[i], want[i])
		}
	}
}

func TestFlatFieldCrossCheck(t *testing.T) {
	forEachImpl(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(21, 22))
		for _, w := range crossLengths {
			for _, off := range crossOffsets {
				lines := 1 + int(r.UintN(3))
				dark := randU8(r, w, off)
				gain := make([]uint16, w+off)[off:]
				for i := range gain {
					switch r.UintN(4) {
					case 0:
						gain[i] = uint16(r.UintN(65536))
					case 1:
						gain[i] = 65535 - uint16(r.UintN(4))
					default:
						gain[i] = uint16(r.UintN(1024))
					}
				}
				checkFlatField(t, randU8(r, lines*w+w/3, off+2), dark, gain)
			}
		}
		// Every (src-dark, gain) pair near the clamp and rounding edges.
		var src, dark []uint8
		var gain []uint16
		for v := range 256 {
			for _, g := range []uint16{0, 1, 127, 128, 255, 256, 257, 258, 511, 512, 32768, 65534, 65535} {
				src = append(src, uint8(v))
				dark = append(dark, 0)
				gain = append(gain, g)
			}
		}
		checkFlatField(t, src, dark, gain)
	})
}

func checkThresholdMask(t testing.TB, line, lo, hi []uint8) {
	t.Helper()
	n := len(line)
	got := make([]int8, n+1)[1:]
	want := make([]int8, n)
	gc := ThresholdMask(got, line, lo, hi)
	wc := thresholdMaskGeneric(want, line, lo[:n], hi[:n])
	for c := range got {
		if got[c] != want[c] {
			t.Fatalf("%s: n=%d c=%d x=%d lo=%d hi=%d: mask %d, want %d",
				Implementation(), n, c, line[c], lo[c], hi[c], got[c], want[c])
		}
	}
	if gc != wc {
		t.Fatalf("%s: n=%d: count %d, want %d", Implementation(), n, gc, wc)
	}
}

func TestThresholdMaskCrossCheck(t *testing.T) {
	forEachImpl(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(23, 24))
		for _, n := range crossLengths {
			for _, off := range crossOffsets {
				line := randU8(r, n, off)
				lo := randU8(r, n, off+1)
				hi := randU8(r, n, off+3)
				for i := range lo {
					switch r.UintN(4) {
					case 0: // crossed or random
					case 1: // equal to the pixel: the compare edges
						lo[i], hi[i] = line[i], line[i]
					default:
						lo[i], hi[i] = lo[i]/2, 128+hi[i]/2
					}
				}
				checkThresholdMask(t, line, lo, hi)
			}
		}
		// All 256^3 combinations would be 16M; all (x, lo) and (x, hi) pairs
		// at the edges 0, 1, 254, 255 of the other bound cover the unsigned
		// compares.
		var line, lo, hi []uint8
		for x := range 256 {
			for b := range 256 {
				for _, o := range []uint8{0, 1, 127, 128, 254, 255} {
					line = append(line, uint8(x), uint8(x))
					lo = append(lo, uint8(b), o)
					hi = append(hi, o, uint8(b))
				}
			}
		}
		checkThresholdMask(t, line, lo, hi)
	})
}

func checkUpdateBackground(t testing.TB, mean, variance []float32, line []uint8, mask []int8, alpha, alphaFlagged float32) {
	t.Helper()
	n := len(mean)
	gm := append(make([]float32, 1, n+1), mean...)[1:]
	gv := append(make([]float32, 3, n+3), variance[:n]...)[3:]
	wm, wv := append([]float32(nil), mean...), append([]float32(nil), variance[:n]...)
	UpdateBackground(gm, gv, line, mask, alpha, alphaFlagged)
	updateBackgroundGeneric(wm, wv, line[:n], mask[:n], alpha, alphaFlagged)
	for c := range n {
		if !sameBits32(gm[c], wm[c]) || !sameBits32(gv[c], wv[c]) {
			t.Fatalf("%s: n=%d c=%d x=%d mask=%d m=%v v=%v a=%v af=%v: got %v %v, want %v %v",
				Implementation(), n, c, line[c], mask[c], mean[c], variance[c], alpha, alphaFlagged,
				gm[c], gv[c], wm[c], wv[c])
		}
	}
}

func TestUpdateBackgroundCrossCheck(t *testing.T) {
	forEachImpl(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(25, 26))
		for _, n := range crossLengths {
			for _, off := range crossOffsets {
				for _, a := range [][2]float32{{0.01, 0}, {0.001, 0.0001}, {1, 0.5}, {r.Float32(), r.Float32()}} {
					mean := randF32(r, n, off, -10, 300)
					vari := randF32(r, n, off+1, 0, 1000)
					line := randU8(r, n, off+3)
					mask := randMask(r, n, off+7, 0.5)
					checkUpdateBackground(t, mean, vari, line, mask, a[0], a[1])
				}
			}
		}
	})
}

func checkNormalize(t testing.TB, src []uint8, scale, offset float32) {
	t.Helper()
	got := make([]float32, len(src)+1)[1:]
	want := make([]float32, len(src))
	Normalize(got, src, scale, offset)
	normalizeGeneric(want, src, scale, offset)
	for i := range got {
		if !sameBits32(got[i], want[i]) {
			t.Fatalf("%s: n=%d i=%d x=%d scale=%v offset=%v: got %v, want %v",
				Implementation(), len(src), i, src[i], scale, offset, got[i], want[i])
		}
	}
}

func TestNormalize(t *testing.T) {
	src := []uint8{0, 1, 128, 255}
	dst := make([]float32, 5)
	dst[4] = 42
	Normalize(dst, src, 2.0/255, -1)
	for i, want := range []float32{-1, float32(2.0/255) - 1, float32(float32(128)*float32(2.0/255)) - 1, 1, 42} {
		if dst[i] != want {
			t.Fatalf("dst[%d] = %v, want %v (%v)", i, dst[i], want, dst)
		}
	}
	if math.Abs(float64(dst[2])-(256.0/255-1)) > 1e-6 {
		t.Fatalf("128 normalised to %v", dst[2])
	}
	mustPanic(t, "dst", func() { Normalize(make([]float32, 3), make([]uint8, 4), 1, 0) })
}

func TestNormalizeCrossCheck(t *testing.T) {
	forEachImpl(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(27, 28))
		for _, n := range crossLengths {
			for _, off := range crossOffsets {
				for _, so := range [][2]float32{{1.0 / 255, 0}, {2.0 / 255, -1}, {r.Float32() * 10, r.Float32()*200 - 100}} {
					checkNormalize(t, randU8(r, n, off), so[0], so[1])
				}
			}
		}
	})
}

func TestBin2(t *testing.T) {
	// 5x3 input: one line pair, width 5 gives 2 output pixels; the odd
	// column and the odd line are dropped.
	src := []uint8{
		0, 1, 2, 3, 99,
		1, 1, 255, 255, 99,
		99, 99, 99, 99, 99,
	}
	dst := []uint8{7, 7, 7}
	Bin2(dst, src, 5)
	if want := []uint8{1, 129, 7}; !equalSlices(dst, want) { // (0+1+1+1+2)>>2, (2+3+255+255+2)>>2
		t.Fatalf("Bin2 = %v, want %v", dst, want)
	}
	Bin2(nil, src, 1) // width 1: nothing to write
	Bin2(nil, src, 0)
	mustPanic(t, "dst", func() { Bin2(make([]uint8, 3), make([]uint8, 16), 4) })
}

func checkBin2(t testing.TB, src []uint8, width int) {
	t.Helper()
	n := 0
	if width >= 2 {
		n = len(src) / width / 2 * (width / 2)
	}
	got := make([]uint8, n+2)[1:]
	want := make([]uint8, n+1)
	got[n], want[n] = 0x5A, 0x5A
	Bin2(got, src, width)
	if width >= 2 {
		bin2Generic(want[:n], src[:len(src)/width/2*2*width], width)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("%s: width=%d len=%d i=%d: got %d, want %d", Implementation(), width, len(src), i, got[i], want[i])
		}
	}
	// Independent reference: the 2×2 mean straight from the definition.
	ow := width / 2
	for i := range n {
		y, x := i/ow, i%ow
		s := int(src[2*y*width+2*x]) + int(src[2*y*width+2*x+1]) +
			int(src[(2*y+1)*width+2*x]) + int(src[(2*y+1)*width+2*x+1])
		if v := uint8(math.Floor(float64(s)/4 + 0.5)); got[i] != v {
			t.Fatalf("width=%d i=%d: got %d, want %d", width, i, got[i], v)
		}
	}
}

func TestBin2CrossCheck(t *testing.T) {
	forEachImpl(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(29, 30))
		for _, w := range append(crossLengths, 2*4096, 2*4097) {
			for _, off := range crossOffsets {
				lines := 2 + int(r.UintN(3))
				src := randU8(r, lines*w+w/2, off)
				if r.UintN(4) == 0 {
					for i := range src {
						src[i] = 255 - uint8(r.UintN(2)) // saturation edge
					}
				}
				checkBin2(t, src, w)
			}
		}
	})
}

func TestSelectImpl(t *testing.T) {
	defer selectImpl("")
	best := Implementation()
	r := rand.New(rand.NewPCG(31, 32))
	src, dark := randU8(r, 4097, 0), randU8(r, 4097, 0)
	gain := make([]uint16, 4097)
	FlatFieldGains(gain, dark, randU8(r, 4097, 0), 200)
	want := make([]uint8, 4097)
	flatFieldGeneric(want, src, dark, gain)
	// Every implementation this CPU runs, forced in turn, gives the bytes
	// of the generic reference.
	for _, impl := range append([]string{"generic"}, archImpls()...) {
		selectImpl(impl)
		if Implementation() != impl {
			t.Fatalf("after selectImpl(%q): %q", impl, Implementation())
		}
		got := make([]uint8, 4097)
		FlatField(got, src, dark, gain)
		if !equalSlices(got, want) {
			t.Fatalf("%s FlatField differs from the generic reference", impl)
		}
	}
	selectImpl("")
	if Implementation() != best {
		t.Fatalf("after selectImpl(\"\"): %q, want %q", Implementation(), best)
	}
}

// forEachImpl runs f once with each implementation this build and CPU can
// run forced (the generic one included), so the cross-checks cover AVX2
// on an AVX-512 machine too.
func forEachImpl(t *testing.T, f func(t *testing.T)) {
	defer selectImpl("")
	for _, impl := range append([]string{"generic"}, archImpls()...) {
		selectImpl(impl)
		t.Run("impl="+impl, f)
	}
}

// The fuzz targets derive all inputs from the fuzzer's bytes, run every
// assembly implementation of this build and CPU (selected in turn with
// eachArchImpl) and the generic reference on them, and require the same
// result. Run one with, for example,
//
//	go test -run '^$' -fuzz '^FuzzFlatField$' -fuzztime 30s ./kernels/

// eachArchImpl runs check once under each assembly implementation this
// build and CPU can run (once under the generic one when there is none)
// and then restores the default selection. A fuzz worker runs its inputs
// one at a time, so switching the package's kernels here is safe.
func eachArchImpl(check func()) {
	impls := archImpls()
	if len(impls) == 0 {
		impls = []string{"generic"}
	}
	defer selectImpl("")
	for _, impl := range impls {
		selectImpl(impl)
		check()
	}
}

func FuzzFlatField(f *testing.F) {
	f.Add([]byte{10, 20, 30, 40, 50, 60, 70, 80}, uint16(256), uint8(3), uint8(9))
	f.Add(make([]byte, 200), uint16(65535), uint8(64), uint8(1))
	f.Fuzz(func(t *testing.T, data []byte, gainSeed uint16, width, skew uint8) {
		w := int(width)
		if w == 0 || len(data) < w {
			return
		}
		dark := data[:w]
		gain := make([]uint16, w)
		for i := range gain {
			gain[i] = gainSeed*uint16(i+1) + uint16(data[(i*int(skew)+1)%len(data)])<<uint(skew%9)
		}
		eachArchImpl(func() { checkFlatField(t, data[int(skew)%len(data):], dark, gain) })
	})
}

func FuzzThresholdMask(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 255, 254, 128})
	f.Add(make([]byte, 3*70))
	f.Fuzz(func(t *testing.T, data []byte) {
		n := len(data) / 3
		eachArchImpl(func() { checkThresholdMask(t, data[:n], data[n:2*n], data[2*n:3*n]) })
	})
}

func FuzzUpdateBackground(f *testing.F) {
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17}, float32(0.01), float32(0), float32(100), float32(25))
	f.Fuzz(func(t *testing.T, data []byte, alpha, alphaFlagged, m0, v0 float32) {
		n := len(data) / 2
		mean := make([]float32, n)
		vari := make([]float32, n)
		mask := make([]int8, n)
		for i := range n {
			mean[i] = m0 + float32(data[n+i]) - 128
			vari[i] = v0 * float32(data[n+i]&15)
			mask[i] = int8(data[n+i]%3) - 1
		}
		eachArchImpl(func() { checkUpdateBackground(t, mean, vari, data[:n], mask, alpha, alphaFlagged) })
	})
}

func FuzzNormalize(f *testing.F) {
	f.Add([]byte{0, 1, 2, 128, 255}, float32(1.0/255), float32(0))
	f.Fuzz(func(t *testing.T, data []byte, scale, offset float32) {
		eachArchImpl(func() { checkNormalize(t, data, scale, offset) })
	})
}

func FuzzBin2(f *testing.F) {
	f.Add(make([]byte, 300), uint8(66))
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7, 8}, uint8(4))
	f.Fuzz(func(t *testing.T, data []byte, width uint8) {
		eachArchImpl(func() { checkBin2(t, data, int(width)) })
	})
}

func checkThresholds(t testing.TB, mean, variance []float32, k, minDelta float32) {
	t.Helper()
	n := len(mean)
	gl, gh := make([]uint8, n+1)[1:], make([]uint8, n+3)[3:]
	wl, wh := make([]uint8, n), make([]uint8, n)
	Thresholds(gl, gh, mean, variance, k, minDelta)
	thresholdsGeneric(wl, wh, mean, variance[:n], k, minDelta)
	for c := range n {
		if gl[c] != wl[c] || gh[c] != wh[c] {
			t.Fatalf("%s: n=%d c=%d mean=%v var=%v k=%v min=%v: lo,hi = %d,%d, want %d,%d",
				Implementation(), n, c, mean[c], variance[c], k, minDelta, gl[c], gh[c], wl[c], wh[c])
		}
	}
}

// specialF32 are float32 values at the edges of Thresholds: rounding
// halves, the clamp bounds, zeros of both signs, infinities and NaN.
var specialF32 = []float32{
	0, float32(math.Copysign(0, -1)), 0.5, 0.49999997, 0.50000006, 1.5, 2.5, 127.5, 254.5, 254.49998,
	254.50002, 255, 255.5, 256, -0.5, -1, float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()),
	math.SmallestNonzeroFloat32, math.MaxFloat32,
}

func TestThresholdsCrossCheck(t *testing.T) {
	forEachImpl(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(33, 34))
		pick := func() float32 { return specialF32[r.IntN(len(specialF32))] }
		for _, n := range crossLengths {
			for _, off := range crossOffsets {
				mean := randF32(r, n, off, -20, 275)
				vari := randF32(r, n, off+1, -5, 900)
				for i := range mean {
					switch r.UintN(8) {
					case 0:
						mean[i] = pick()
					case 1:
						vari[i] = pick()
					case 2: // exact halves after the subtraction
						mean[i] = float32(r.IntN(600)-40) / 2
						vari[i] = float32(r.IntN(20)) / 2 * float32(r.IntN(20)) / 2
					}
				}
				for _, km := range [][2]float32{{3, 4}, {0, 0}, {1, 0.5}, {2.5, 0}, {r.Float32() * 5, r.Float32() * 10}, {pick(), pick()}} {
					checkThresholds(t, mean, vari, km[0], km[1])
				}
			}
		}
	})
}

func FuzzThresholds(f *testing.F) {
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24}, float32(3), float32(4))
	f.Add(make([]byte, 8*40), float32(0), float32(0.5))
	f.Fuzz(func(t *testing.T, data []byte, k, minDelta float32) {
		n := len(data) / 8
		mean, vari := make([]float32, n), make([]float32, n)
		for i := range n {
			b := data[8*i:]
			mean[i] = math.Float32frombits(uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24)
			vari[i] = math.Float32frombits(uint32(b[4]) | uint32(b[5])<<8 | uint32(b[6])<<16 | uint32(b[7])<<24)
			if b[0]&1 == 0 { // half the columns in the useful range
				mean[i] = float32(b[1]) + float32(b[2])/256
				vari[i] = float32(b[5]) / 4
			}
		}
		eachArchImpl(func() { checkThresholds(t, mean, vari, k, minDelta) })
	})
}

func checkEncodeRuns(t testing.TB, mask []int8, line []uint8, mean []float32) {
	t.Helper()
	n := len(mask)
	prefix := []Run{{X0: -1}}
	got := EncodeRuns(prefix, mask, line, mean)
	want := encodeRunsGeneric([]Run{{X0: -1}}, mask, line[:n], mean[:n])
	if len(got) != len(want) {
		t.Fatalf("%s: n=%d: %d runs, want %d", Implementation(), n, len(got)-1, len(want)-1)
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.X0 != w.X0 || g.X1 != w.X1 || g.Pol != w.Pol || !sameBits32(g.Sum, w.Sum) || !sameBits32(g.Peak, w.Peak) {
			t.Fatalf("%s: n=%d run %d: %+v, want %+v", Implementation(), n, i-1, g, w)
		}
	}
}

// runMask returns a mask of runs whose lengths are drawn up to maxRun, so
// that spans cross 8-, 16-, 32- and 64-byte boundaries at every phase.
func runMask(r *rand.Rand, n, off, maxRun int, p float64) []int8 {
	b := make([]int8, n+off)
	for i := 0; i < len(b); {
		var v int8
		if r.Float64() < p {
			v = int8(1 - 2*int(r.UintN(2)))
		}
		for end := min(i+1+r.IntN(maxRun), len(b)); i < end; i++ {
			b[i] = v
		}
	}
	return b[off:]
}

func TestEncodeRunsCrossCheck(t *testing.T) {
	forEachImpl(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(35, 36))
		for _, n := range crossLengths {
			for _, off := range crossOffsets {
				line := randU8(r, n, off+1)
				mean := randF32(r, n, off+3, 0, 255)
				for _, maxRun := range []int{1, 3, 9, 40, 100, 5000} {
					for _, p := range []float64{0, 0.1, 0.5, 1} {
						checkEncodeRuns(t, runMask(r, n, off, maxRun, p), line, mean)
					}
				}
			}
		}
	})
}

func FuzzEncodeRuns(f *testing.F) {
	f.Add([]byte{0, 0, 1, 1, 255, 0, 255, 255, 1}, uint8(7))
	f.Add(make([]byte, 130), uint8(0))
	f.Fuzz(func(t *testing.T, data []byte, skew uint8) {
		n := len(data)
		mask := make([]int8, n)
		line := make([]uint8, n)
		mean := make([]float32, n)
		for i, b := range data {
			mask[i] = int8(b%3) - 1 // runs come from repeated input bytes
			line[i] = b ^ skew
			mean[i] = float32(b) / 3
		}
		eachArchImpl(func() { checkEncodeRuns(t, mask, line, mean) })
	})
}

package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// benchShapes are the line widths and block heights the kernels are
// measured at: one camera line of 4k and 8k pixels, and a 256-line block.
var benchShapes = []struct{ width, lines int }{
	{4096, 1}, {8192, 1}, {4096, 256}, {8192, 256},
}

// reportPx reports pixel throughput after a benchmark loop that processed
// px pixels per iteration.
func reportPx(b *testing.B, px int) {
	b.ReportMetric(float64(px)*float64(b.N)/b.Elapsed().Seconds()/1e6, "Mpx/s")
}

// benchImpls measures one kernel call, kernel, that processes the pixels
// of the 8-bit buffer in, as sub-benchmarks of the same run:
//
//	impl=copy     copy() of in to a buffer of the same size: the
//	              memory-copy baseline on the same input bytes, first
//	impl=generic  the plain-Go reference, forced with selectImpl("generic")
//	impl=avx2     the AVX2 assembly, when the build and the CPU have it
//	impl=avx512   the AVX-512 assembly, likewise
//
// All set b.SetBytes(len(in)), so MB/s and Mpx/s compare directly, and
// each kernel also reports of-copy (its Mpx/s over copy's in this run: its
// pixel rate as a fraction of the rate memcpy moves those pixels) and
// x-generic (over the plain-Go reference's). Kernels that also read or
// write per-column state or wider output (UpdateBackground 18 bytes per
// pixel, Normalize 5) move more bytes than the copy does, so of-copy is
// strict.
//
// Each metric function, if any, reports extra metrics after each
// sub-benchmark.
func benchImpls(b *testing.B, in []uint8, kernel func(), metrics ...func(b *testing.B)) {
	px := len(in)
	rate := func(b *testing.B) float64 { return float64(px) * float64(b.N) / b.Elapsed().Seconds() / 1e6 }
	var copyRate, genericRate float64
	b.Run("impl=copy", func(b *testing.B) {
		dst := make([]uint8, px)
		b.SetBytes(int64(px))
		b.ReportAllocs()
		for b.Loop() {
			copy(dst, in)
		}
		reportPx(b, px)
		copyRate = rate(b)
	})
	impls := append([]string{"generic"}, archImpls()...)
	for _, impl := range impls {
		b.Run("impl="+impl, func(b *testing.B) {
			selectImpl(impl)
			defer selectImpl("")
			if Implementation() != impl {
				b.Fatalf("selected %q, want %q", Implementation(), impl)
			}
			b.SetBytes(int64(px))
			b.ReportAllocs()
			for b.Loop() {
				kernel()
			}
			reportPx(b, px)
			r := rate(b)
			if impl == "generic" {
				genericRate = r
			}
			if copyRate > 0 {
				b.ReportMetric(r/copyRate, "of-copy")
			}
			if genericRate > 0 {
				b.ReportMetric(r/genericRate, "x-generic")
			}
			for _, m := range metrics {
				m(b)
			}
		})
	}
}

func BenchmarkFlatFieldGains(b *testing.B) {
	for _, w := range []int{4096, 8192} {
		b.Run(fmt.Sprintf("width=%d", w), func(b *testing.B) {
			r := rand.New(rand.NewPCG(1, 1))
			dark, white := randU8(r, w, 0), randU8(r, w, 0)
			gain := make([]uint16, w)
			b.SetBytes(int64(2 * w))
			b.ReportAllocs()
			for b.Loop() {
				FlatFieldGains(gain, dark, white, 200)
			}
			reportPx(b, w)
		})
	}
}

func BenchmarkFlatField(b *testing.B) {
	for _, s := range benchShapes {
		b.Run(fmt.Sprintf("width=%d/lines=%d", s.width, s.lines), func(b *testing.B) {
			r := rand.New(rand.NewPCG(2, 2))
			n := s.width * s.lines
			src, dark := randU8(r, n, 0), randU8(r, s.width, 0)
			for i := range dark {
				dark[i] /= 8
			}
			gain := make([]uint16, s.width)
			FlatFieldGains(gain, dark, randU8(r, s.width, 0), 200)
			dst := make([]uint8, n)
			FlatField(dst, src, dark, gain)
			if dst[0] == 0 && src[0] > dark[0] && gain[0] > 256 {
				b.Fatal("flat field produced 0 for a bright pixel")
			}
			benchImpls(b, src, func() { FlatField(dst, src, dark, gain) })
		})
	}
}

func BenchmarkInitBackground(b *testing.B) {
	for _, w := range []int{4096, 8192} {
		b.Run(fmt.Sprintf("width=%d", w), func(b *testing.B) {
			r := rand.New(rand.NewPCG(3, 3))
			line := randU8(r, w, 0)
			mean, vari := make([]float32, w), make([]float32, w)
			b.SetBytes(int64(w))
			b.ReportAllocs()
			for b.Loop() {
				InitBackground(mean, vari, line, 4)
			}
			reportPx(b, w)
		})
	}
}

// BenchmarkUpdateBackground runs the per-line update over lines of a block
// (the model is updated once per line, so the block shape only repeats it).
func BenchmarkUpdateBackground(b *testing.B) {
	for _, s := range benchShapes {
		b.Run(fmt.Sprintf("width=%d/lines=%d", s.width, s.lines), func(b *testing.B) {
			r := rand.New(rand.NewPCG(4, 4))
			w := s.width
			// Lines come from a pool of at least 64 different ones: fed
			// one line over and over, the model would converge on it and
			// the variance decay into float32 subnormals, which are slow
			// on every implementation and never happen on a real camera.
			poolLines := max(s.lines, 64)
			pool := randU8(r, w*poolLines, 0)
			mask := randMask(r, w, 0, 0.05)
			mean, vari := make([]float32, w), make([]float32, w)
			InitBackground(mean, vari, pool[:w], 4)
			next := 0
			benchImpls(b, pool[:w*s.lines], func() {
				for range s.lines {
					UpdateBackground(mean, vari, pool[next*w:(next+1)*w], mask, 0.001, 0)
					next = (next + 1) % poolLines
				}
			})
			if v := vari[0]; !(v > 1) {
				b.Fatalf("variance of column 0 is %v after the benchmark, want a realistic > 1", v)
			}
		})
	}
}

func BenchmarkThresholds(b *testing.B) {
	for _, w := range []int{4096, 8192} {
		b.Run(fmt.Sprintf("width=%d", w), func(b *testing.B) {
			r := rand.New(rand.NewPCG(5, 5))
			mean, vari := randF32(r, w, 0, 0, 255), randF32(r, w, 0, 0, 100)
			lo, hi := make([]uint8, w), make([]uint8, w)
			Thresholds(lo, hi, mean, vari, 3, 4)
			if lo[0] >= hi[0] {
				b.Fatalf("thresholds %d, %d for mean %v", lo[0], hi[0], mean[0])
			}
			// The copy baseline moves one byte per column, as for the
			// other kernels; Thresholds itself reads 8 and writes 2.
			benchImpls(b, lo, func() { Thresholds(lo, hi, mean, vari, 3, 4) })
		})
	}
}

func BenchmarkThresholdMask(b *testing.B) {
	for _, s := range benchShapes {
		b.Run(fmt.Sprintf("width=%d/lines=%d", s.width, s.lines), func(b *testing.B) {
			r := rand.New(rand.NewPCG(6, 6))
			w := s.width
			block := randU8(r, w*s.lines, 0)
			lo, hi := make([]uint8, w), make([]uint8, w)
			for i := range lo {
				lo[i], hi[i] = 10, 245 // realistic: few pixels flagged
			}
			mask := make([]int8, w)
			if ThresholdMask(mask, block[:w], lo, hi) == 0 {
				b.Fatal("no pixel flagged in the benchmark line")
			}
			benchImpls(b, block, func() {
				for i := range s.lines {
					ThresholdMask(mask, block[i*w:(i+1)*w], lo, hi)
				}
			})
		})
	}
}

func BenchmarkEncodeRuns(b *testing.B) {
	for _, w := range []int{4096, 8192} {
		for _, density := range []string{"sparse", "dense"} {
			b.Run(fmt.Sprintf("width=%d/mask=%s", w, density), func(b *testing.B) {
				r := rand.New(rand.NewPCG(7, 7))
				var mask []int8
				if density == "sparse" {
					mask = sparseMasks(r, w, 1)[0]
				} else {
					mask = randMask(r, w, 0, 0.5)
				}
				line, mean := randU8(r, w, 0), randF32(r, w, 0, 0, 255)
				runs := EncodeRuns(make([]Run, 0, w), mask, line, mean)
				if len(runs) == 0 {
					b.Fatal("no runs in the benchmark mask")
				}
				mb := make([]uint8, w) // the copy baseline moves w mask bytes
				benchImpls(b, mb, func() { runs = EncodeRuns(runs[:0], mask, line, mean) },
					func(b *testing.B) { b.ReportMetric(float64(len(runs)), "runs/line") })
			})
		}
	}
}

// BenchmarkLabeler labels a 256-line block of a realistic sparse mask
// (noise specks, a streak, a few holey blobs); bytes are mask pixels.
func BenchmarkLabeler(b *testing.B) {
	for _, w := range []int{4096, 8192} {
		b.Run(fmt.Sprintf("width=%d/lines=256", w), func(b *testing.B) {
			r := rand.New(rand.NewPCG(8, 8))
			masks := sparseMasks(r, w, 256)
			line, mean := randU8(r, w, 0), randF32(r, w, 0, 0, 255)
			runs := make([][]Run, len(masks))
			total := 0
			for i, m := range masks {
				runs[i] = EncodeRuns(nil, m, line, mean)
				total += len(runs[i])
			}
			l := NewLabeler(w)
			dst := make([]Component, 0, 4096)
			y := int64(0)
			closed := 0
			for i := range runs {
				dst = l.AddLine(dst[:0], y, y, runs[i])
				closed += len(dst)
				y++
			}
			if closed == 0 {
				b.Fatal("no component closed in the benchmark block")
			}
			b.SetBytes(int64(w * len(masks)))
			b.ReportAllocs()
			for b.Loop() {
				for i := range runs {
					dst = l.AddLine(dst[:0], y, y, runs[i])
					y++
				}
			}
			reportPx(b, w*len(masks))
			b.ReportMetric(float64(total)/float64(len(masks)), "runs/line")
		})
	}
}

func BenchmarkNormalize(b *testing.B) {
	for _, s := range benchShapes {
		b.Run(fmt.Sprintf("width=%d/lines=%d", s.width, s.lines), func(b *testing.B) {
			r := rand.New(rand.NewPCG(9, 9))
			n := s.width * s.lines
			src := randU8(r, n, 0)
			dst := make([]float32, n)
			Normalize(dst, src, 2.0/255, -1)
			if dst[0] < -1 || dst[0] > 1 {
				b.Fatalf("normalised %d to %v", src[0], dst[0])
			}
			benchImpls(b, src, func() { Normalize(dst, src, 2.0/255, -1) })
		})
	}
}

func BenchmarkBin2(b *testing.B) {
	for _, s := range benchShapes {
		if s.lines < 2 {
			continue
		}
		b.Run(fmt.Sprintf("width=%d/lines=%d", s.width, s.lines), func(b *testing.B) {
			r := rand.New(rand.NewPCG(10, 10))
			n := s.width * s.lines
			src := randU8(r, n, 0)
			dst := make([]uint8, n/4)
			Bin2(dst, src, s.width)
			if v := (int(src[0]) + int(src[1]) + int(src[s.width]) + int(src[s.width+1]) + 2) / 4; int(dst[0]) != v {
				b.Fatalf("binned to %d, want %d", dst[0], v)
			}
			benchImpls(b, src, func() { Bin2(dst, src, s.width) })
		})
	}
}

// BenchmarkLineChain runs the threshold detector's per-line kernels in
// order on a realistic block (shaded background with noise, a few specks
// and a streak per line), one core:
//
//	FlatField ─▶ ThresholdMask ─▶ EncodeRuns (flagged lines only) ─▶
//	Labeler.AddLine ─▶ UpdateBackground; Thresholds every 16 lines
//
// width=16384 is the film-16k camera: 50 kHz needs 819 Mpx/s, over the
// two cores of the target machine.
func BenchmarkLineChain(b *testing.B) {
	for _, w := range []int{4096, 16384} {
		b.Run(fmt.Sprintf("width=%d/lines=256", w), func(b *testing.B) {
			const lines = 256
			r := rand.New(rand.NewPCG(11, 11))
			dark, white := make([]uint8, w), make([]uint8, w)
			level := make([]int, w)
			for c := range w {
				x := float64(c)/float64(w) - 0.5
				level[c] = 160 - int(200*x*x) // vignetting: 110..160
				dark[c] = uint8(6 + r.IntN(4))
				white[c] = uint8(level[c] + 40)
			}
			block := make([]uint8, w*lines)
			for y := range lines {
				for c := range w {
					noise := r.IntN(5) + r.IntN(5) - 4 // -4..4, triangular
					block[y*w+c] = uint8(level[c] + noise)
				}
				for range r.IntN(4) { // specks
					x := r.IntN(w - 4)
					for j := range 1 + r.IntN(3) {
						block[y*w+x+j] = 250
					}
				}
				block[y*w+w/3] = 20 // streak
			}
			gain := make([]uint16, w)
			FlatFieldGains(gain, dark, white, 200)
			corr := make([]uint8, w)
			mean, vari := make([]float32, w), make([]float32, w)
			FlatField(corr, block[:w], dark, gain)
			InitBackground(mean, vari, corr, 4)
			lo, hi := make([]uint8, w), make([]uint8, w)
			Thresholds(lo, hi, mean, vari, 4, 8)
			mask := make([]int8, w)
			runs := make([]Run, 0, w)
			comps := make([]Component, 0, 1024)
			lab := NewLabeler(w)
			y := int64(0)
			flagged, closed := 0, 0
			chain := func() {
				for i := range lines {
					line := block[i*w : (i+1)*w]
					FlatField(corr, line, dark, gain)
					n := ThresholdMask(mask, corr, lo, hi)
					flagged += n
					runs = runs[:0]
					if n > 0 {
						runs = EncodeRuns(runs, mask, corr, mean)
					}
					comps = lab.AddLine(comps[:0], y, y, runs)
					closed += len(comps)
					UpdateBackground(mean, vari, corr, mask, 0.001, 0)
					if y%16 == 0 {
						Thresholds(lo, hi, mean, vari, 4, 8)
					}
					y++
				}
			}
			chain()
			// The block must look like inspection: a few pixels flagged
			// per line, components closing.
			if flagged == 0 || flagged > lines*w/100 || closed == 0 {
				b.Fatalf("unrealistic block: %d flagged pixels, %d components in %d lines", flagged, closed, lines)
			}
			benchImpls(b, block, chain, func(b *testing.B) {
				b.ReportMetric(float64(lines)*float64(b.N)/b.Elapsed().Seconds()/1e3, "klines/s")
			})
		})
	}
}

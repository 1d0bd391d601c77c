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
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				FlatField(dst, src, dark, gain)
			}
			reportPx(b, n)
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
			block := randU8(r, w*s.lines, 0)
			mask := randMask(r, w, 0, 0.05)
			mean, vari := make([]float32, w), make([]float32, w)
			InitBackground(mean, vari, block[:w], 4)
			b.SetBytes(int64(w * s.lines))
			b.ReportAllocs()
			for b.Loop() {
				for i := range s.lines {
					UpdateBackground(mean, vari, block[i*w:(i+1)*w], mask, 0.001, 0)
				}
			}
			reportPx(b, w*s.lines)
		})
	}
}

func BenchmarkThresholds(b *testing.B) {
	for _, w := range []int{4096, 8192} {
		b.Run(fmt.Sprintf("width=%d", w), func(b *testing.B) {
			r := rand.New(rand.NewPCG(5, 5))
			mean, vari := randF32(r, w, 0, 0, 255), randF32(r, w, 0, 0, 100)
			lo, hi := make([]uint8, w), make([]uint8, w)
			b.SetBytes(int64(w))
			b.ReportAllocs()
			for b.Loop() {
				Thresholds(lo, hi, mean, vari, 3, 4)
			}
			reportPx(b, w)
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
			b.SetBytes(int64(w * s.lines))
			b.ReportAllocs()
			for b.Loop() {
				for i := range s.lines {
					ThresholdMask(mask, block[i*w:(i+1)*w], lo, hi)
				}
			}
			reportPx(b, w*s.lines)
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
				b.SetBytes(int64(w))
				b.ReportAllocs()
				for b.Loop() {
					runs = EncodeRuns(runs[:0], mask, line, mean)
				}
				reportPx(b, w)
				b.ReportMetric(float64(len(runs)), "runs/line")
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

package ring

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"testing"
)

func reportBlocks(b *testing.B, px int) {
	s := b.Elapsed().Seconds()
	b.ReportMetric(float64(b.N)/s/1e6, "Mblocks/s")
	b.ReportMetric(float64(px)*float64(b.N)/s/1e6, "Mpx/s")
}

// BenchmarkCycle is one Reserve/Commit/Pop/Release cycle on one goroutine:
// the ring's own cost per block, without contention. Bytes are the pixels
// the block hands over (nothing is copied).
func BenchmarkCycle(b *testing.B) {
	const lines, width = 256, 4096
	r := New(8, lines, width)
	b.SetBytes(lines * width)
	b.ReportAllocs()
	for b.Loop() {
		r.Reserve().Lines = lines
		r.Commit(Dropped{})
		blk, _, ok := r.Pop()
		if !ok || blk.Lines != lines {
			b.Fatal("Pop after Commit failed")
		}
		r.Release()
	}
	reportBlocks(b, lines*width)
}

// BenchmarkHandoff moves blocks from a producer goroutine to a consumer
// goroutine that waits with Wait: the cost per block across cores,
// including wake-ups. The producer yields instead of dropping when full.
func BenchmarkHandoff(b *testing.B) {
	for _, n := range []int{2, 8, 32} {
		b.Run(fmt.Sprintf("slots=%d", n), func(b *testing.B) {
			const lines, width = 256, 4096
			r := New(n, lines, width)
			b.SetBytes(lines * width)
			b.ReportAllocs()
			b.ResetTimer()
			go func() {
				for i := 0; i < b.N; i++ {
					blk := r.Reserve()
					for blk == nil {
						runtime.Gosched()
						blk = r.Reserve()
					}
					blk.FirstLine = int64(i)
					r.Commit(Dropped{})
				}
				r.Close(Dropped{})
			}()
			got := 0
			for {
				err := r.Wait(context.Background())
				if err == io.EOF {
					break
				}
				if err != nil {
					b.Fatal(err)
				}
				blk, _, _ := r.Pop()
				if blk.FirstLine != int64(got) {
					b.Fatalf("block %d out of order: %d", got, blk.FirstLine)
				}
				got++
				r.Release()
			}
			if got != b.N {
				b.Fatalf("received %d of %d blocks", got, b.N)
			}
			reportBlocks(b, lines*width)
		})
	}
}

package infer

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkDetector runs a 2 m fabric camera (4096 px per line) through a
// pool with the default scoring graph, in blocks of 256 lines, from
// binning to components. Bytes and Mpx/s count raw camera pixels.
func BenchmarkDetector(b *testing.B) {
	const width, lines = 4096, 256
	for _, bc := range []struct{ bin, tile, batch, workers int }{
		{2, 64, 8, 2}, {2, 128, 4, 2}, {1, 64, 8, 2}, {2, 64, 8, 1},
	} {
		name := fmt.Sprintf("width=%d/bin=%d/tile=%d/batch=%d/workers=%d", width, bc.bin, bc.tile, bc.batch, bc.workers)
		b.Run(name, func(b *testing.B) {
			o := DefaultOptions()
			o.Bin, o.Batch, o.Workers, o.Threshold = bc.bin, bc.batch, bc.workers, 2.5
			p := newPool(b, loadModel(b, bc.tile, bc.tile, 3, bc.batch, nil), o)
			d := newDetector(b, p, width)
			rng := rand.New(rand.NewPCG(1, 1))
			blocks := make([][]uint8, 4)
			for i := range blocks {
				blocks[i] = fabric(rng, width, lines)
				paint(blocks[i], width, 1000+100*i, 40, 1010+100*i, 60, 255)
			}
			comps := make([]Component, 0, 64)
			line := int64(0)
			step := func(i int) {
				var err error
				comps, err = d.Process(comps, blocks[i%len(blocks)], width, lines, line, nil)
				if err != nil {
					b.Fatal(err)
				}
				comps = comps[:0]
				line += lines
			}
			// Check the output once before timing: one component per block.
			for i := range 8 {
				var err error
				comps, err = d.Process(comps, blocks[i%len(blocks)], width, lines, line, nil)
				if err != nil {
					b.Fatal(err)
				}
				line += lines
			}
			comps, err := d.Flush(comps)
			if err != nil {
				b.Fatal(err)
			}
			if len(comps) != 8 {
				b.Fatalf("%d components over 8 blocks, want 8: %+v", len(comps), comps)
			}
			b.SetBytes(width * lines)
			b.ReportAllocs()
			b.ResetTimer()
			i := 0
			for b.Loop() {
				step(i)
				i++
			}
			if _, err := d.Flush(comps[:0]); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(width*lines)*float64(b.N)/b.Elapsed().Seconds()/1e6, "Mpx/s")
			st := p.Stats()
			b.ReportMetric(float64(st.Tiles)/float64(max(st.Batches, 1)), "tiles/batch")
		})
	}
}

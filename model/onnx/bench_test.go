package onnx

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkSessionRun measures one session (one intra-op thread) scoring
// 64×64 grayscale tiles through the scoring graph, feeding included (ch=3
// replicates gray into three channels). Mpx/s counts tile pixels.
func BenchmarkSessionRun(b *testing.B) {
	requireORT(b)
	const side = 64
	for _, bc := range []struct{ ch, batch int }{{1, 1}, {1, 8}, {3, 1}} {
		ch, batch := bc.ch, bc.batch
		b.Run(fmt.Sprintf("tile=%dx%d/ch=%d/batch=%d", side, side, ch, batch), func(b *testing.B) {
			spec := DefaultScoringModelSpec()
			spec.Height, spec.Width, spec.Channels = side, side, ch
			opts := DefaultModelOptions()
			opts.Batch = batch
			m := loadModel(b, spec, spec.Sidecar(), opts)
			s, err := m.NewSession()
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			rng := rand.New(rand.NewPCG(7, 8))
			tiles := make([][]uint8, batch)
			for i := range tiles {
				tiles[i] = randomTile(rng, side, side)
			}
			// Check the output once before timing.
			res, err := s.Run(tiles)
			if err != nil {
				b.Fatal(err)
			}
			if _, want := reference(spec, m.Sidecar(), tiles[0]); float64(res.Scores[0]) < want*0.999 || float64(res.Scores[0]) > want*1.001 {
				b.Fatalf("score %v, plain Go says %v", res.Scores[0], want)
			}
			px := batch * side * side
			b.SetBytes(int64(px))
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := s.Run(tiles); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(px)*float64(b.N)/b.Elapsed().Seconds()/1e6, "Mpx/s")
		})
	}
}

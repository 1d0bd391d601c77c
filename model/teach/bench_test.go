package teach

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/webinspect/webinspect/model/onnx/ortest"

	"github.com/webinspect/webinspect/model/edge"
	"github.com/webinspect/webinspect/model/onnx"
)

// BenchmarkTaughtModel measures one session (one intra-op thread) scoring
// 128×256 tiles of a model taught with DefaultOptions (but for scales and
// clusters) on generated texture, at the model's resolution (after 2×2
// binning). raw-Mpx/s counts the camera pixels those tiles stand for.
func BenchmarkTaughtModel(b *testing.B) {
	ortest.Require(b)
	for _, bc := range []struct{ scales, clusters, edge, zones, memory, shade int }{
		{1, 1, 0, 0, 0, 0}, {2, 1, 0, 0, 0, 0}, {2, 1, 0, 8, 0, 0}, {2, 3, 0, 0, 0, 0}, {2, 3, 6, 0, 0, 0},
		{2, 1, 0, 8, 16, 0}, {2, 1, 0, 8, 64, 0}, {2, 1, 0, 8, 0, 8},
	} {
		b.Run(fmt.Sprintf("scales=%d/clusters=%d/edge=%d/zones=%d/memory=%d/shade=%d", bc.scales, bc.clusters, bc.edge, bc.zones, bc.memory, bc.shade), func(b *testing.B) {
			o := DefaultOptions()
			o.Scales, o.Clusters, o.EdgeClusters, o.MaxPatches = bc.scales, bc.clusters, bc.edge, 20000
			o.Memory, o.ShadeBlock, o.BrightBlock = bc.memory, 0, 0
			o.Zones, o.Edge.Mode = bc.zones, edge.None
			if bc.zones > 0 {
				o.Edge.Mode, o.ZoneWidth = edge.Bright, 6
			}
			rng := rand.New(rand.NewPCG(1, 2))
			var good []Image
			for range 3 {
				im := texture(rng, 2*o.TileW, 2*o.TileH)
				// An off-web band on the left gives the edge clusters material.
				for y := range im.H {
					for x := range im.W / 8 {
						im.Pix[y*im.W+x] = 255
					}
				}
				good = append(good, im)
			}
			prepared := make([]Image, len(good))
			for i, im := range good {
				prepared[i] = o.prep().Apply(im)
			}
			edges := make([]rowEdges, len(prepared))
			for i := range prepared {
				edges[i].e0, edges[i].e1 = o.prep().Edges(prepared[i], nil, nil)
			}
			f, err := fit(prepared, edges, &o)
			if err != nil {
				b.Fatal(err)
			}
			if bc.shade > 0 {
				// The shading model as teach fuses it (its weight is
				// calibrated in Teach; any positive weight costs the same).
				sh, ok := fitShade([]plane{f.plane(prepared[0], &o)}, bc.shade, false)
				if !ok {
					b.Fatal("no shading model fitted")
				}
				f.spec.Shade, f.spec.Shade.Weight = sh, 0.4
			}
			s := fittedSession(b, f, &o)
			tile := texture(rng, o.TileW*o.Bin, o.TileH*o.Bin)
			for y := range tile.H {
				for x := range tile.W / 8 {
					tile.Pix[y*tile.W+x] = 255
				}
			}
			tile = o.prep().Apply(tile)
			e0, e1 := o.prep().Edges(tile, nil, nil)
			if bc.zones > 0 && (len(f.spec.ZoneBounds) != bc.zones || e0[0] == 0) {
				b.Fatalf("zones %v, edge %d: want %d zones and an edge", f.spec.ZoneBounds, e0[0], bc.zones)
			}
			tiles := []onnx.Tile{{Pix: tile.Pix, Stride: tile.W, E0: e0, E1: e1, RowW: tile.W}}
			res, err := s.RunTiles(tiles)
			if err != nil {
				b.Fatal(err)
			}
			if !(res.Scores[0] > 0) {
				b.Fatalf("score %v on good texture, want > 0", res.Scores[0])
			}
			if bc.edge > 0 && len(f.spec.Scales[0].Edge) == 0 {
				b.Fatal("no edge clusters were fitted")
			}
			px := o.TileW * o.TileH
			b.SetBytes(int64(px))
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := s.RunTiles(tiles); err != nil {
					b.Fatal(err)
				}
			}
			sec := b.Elapsed().Seconds()
			b.ReportMetric(float64(px)*float64(b.N)/sec/1e6, "Mpx/s")
			b.ReportMetric(float64(px*o.Bin*o.Bin)*float64(b.N)/sec/1e6, "raw-Mpx/s")
		})
	}
}

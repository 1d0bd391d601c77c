package infer

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/webinspect/webinspect/model/onnx"
	"github.com/webinspect/webinspect/model/onnx/ortest"
	"github.com/webinspect/webinspect/model/teach"
)

// wanderWeb returns h lines of a w-pixel line-scan view of a woven web
// whose left edge wanders ±120 px (±30 mm at 0.25 mm/px) around x0 along
// the roll (period ~4400 lines): a saturated backlight band, a light 6-px selvage stripe and a
// dark 2-px selvage thread 8 px inside the edge. edges[y] is line y's edge.
func wanderWeb(rng *rand.Rand, w, h, x0 int, line0 int) (pix []uint8, edges []int) {
	pix = make([]uint8, w*h)
	edges = make([]int, h)
	ph := rng.Float64() * 6
	for y := range h {
		l := float64(line0 + y)
		e := x0 + int(math.Round(120*math.Sin(l/700))) + rng.IntN(2)
		edges[y] = e
		row := pix[y*w : (y+1)*w]
		for x := range w {
			v := 120 + 30*math.Sin(2*math.Pi*(float64(x)+ph)/6)*math.Sin(2*math.Pi*l/6) + rng.NormFloat64()*4
			switch {
			case x < e:
				v = 255
			case x < e+6:
				v += 45
			case x >= e+8 && x < e+10:
				v -= 50
			}
			row[x] = uint8(min(max(v+0.5, 0), 255))
		}
	}
	return pix, edges
}

// TestTaughtZonesWanderingWeb runs a model taught (with edge zones) on the
// first lines of a wandering web through the engine's tiled path: over
// thousands of later lines, the edge moving by up to 240 px (60 mm), there
// is no false component at the edge, a stretch of missing selvage thread
// is found at the edge, and at least 95 % of subtle spots within 80 px
// (20 mm) of the edge are found.
func TestTaughtZonesWanderingWeb(t *testing.T) {
	ortest.Require(t)
	const w = 384
	rng := rand.New(rand.NewPCG(21, 21))
	first, _ := wanderWeb(rng, w, 1536, 140, 0)
	var good []teach.Image
	for k := range 24 {
		good = append(good, teach.Image{W: w, H: 64, Pix: first[k*64*w : (k+1)*64*w]})
	}
	to := teach.DefaultOptions()
	to.TileH, to.TileW, to.Bin = 32, 128, 1
	to.Patch, to.Scales, to.Components, to.Smooth = 5, 2, 4, 3
	to.MaxPatches, to.Folds, to.TargetFAR = 20000, 4, 0.001
	taught, err := teach.Teach(good, to)
	if err != nil {
		t.Fatal(err)
	}
	if taught.Sidecar.Input.Edges == "" {
		t.Fatalf("no edge zones taught: %v", taught.Sidecar.MadeBy.Params["zones"])
	}
	dir := t.TempDir()
	if err := taught.WriteModel(dir); err != nil {
		t.Fatal(err)
	}
	m, err := onnx.Load(dir, onnx.ModelOptions{Batch: 4, IntraOpThreads: 1})
	if err != nil {
		t.Fatal(err)
	}
	o := DefaultOptions()
	o.Bin, o.OverlapCD, o.OverlapMD = 1, 16, 16
	o.MinAreaPx = 4
	p := newPool(t, m, o)
	if p.Options().OffWeb.Mode != OffWebBright {
		t.Fatalf("off-web mode %q, want bright from the model (auto)", p.Options().OffWeb.Mode)
	}
	d := newDetector(t, p, w)
	const lines = 6000
	later, edges := wanderWeb(rng, w, lines, 140, 20_000)
	const y0, y1 = 3000, 3040
	for y := y0; y < y1; y++ {
		for x := edges[y] + 8; x < edges[y]+10; x++ {
			later[y*w+x] = later[y*w+x+4]
		}
	}
	// Subtle spots (5×5, 35 grey levels darker, on texture of ±30) within
	// 80 px (20 mm) of the edge, one every 250 lines.
	type spot struct{ y, x int }
	var spots []spot
	for k := range 20 {
		y := 200 + 250*k
		if y >= y0-100 && y < y1+100 {
			y += 200
		}
		x := edges[y] + 2 + (k*37)%76
		spots = append(spots, spot{y, x})
		for yy := y; yy < y+5; yy++ {
			for xx := x; xx < x+5; xx++ {
				later[yy*w+xx] = uint8(max(int(later[yy*w+xx])-35, 0))
			}
		}
	}
	lo, hi := w, 0
	for _, e := range edges {
		lo, hi = min(lo, e), max(hi, e)
	}
	comps := feed(t, d, rng, later, w, 0, 64)
	var hit int
	found := make([]bool, len(spots))
next:
	for _, c := range comps {
		at := c.Col0 - edges[c.Line0]
		if c.Line1 > y0-8 && c.Line0 < y1+8 && at > -4 && at < 24 {
			hit++
			continue
		}
		for i, s := range spots {
			if c.Line0 <= int64(s.y+5+4) && c.Line1 >= int64(s.y-4) && c.Col0 <= s.x+5+4 && c.Col1 >= s.x-4 {
				found[i] = true
				continue next
			}
		}
		t.Errorf("false component %+v (edge at %d)", c, edges[c.Line0])
	}
	var nf int
	for i, f := range found {
		if f {
			nf++
		} else {
			t.Logf("spot %d at line %d, %d px from the edge: missed", i, spots[i].y, spots[i].x-edges[spots[i].y])
		}
	}
	if 100*nf < 95*len(spots) {
		t.Errorf("recall %d/%d subtle spots within 20 mm of the edge, want ≥ 95 %%", nf, len(spots))
	}
	if hit == 0 {
		t.Errorf("missing selvage thread at lines %d..%d not found; components %+v", y0, y1, comps)
	}
	t.Logf("edge wandered over columns %d..%d; %d components, %d on the thread defect, %d/%d spots", lo, hi, len(comps), hit, nf, len(spots))
}

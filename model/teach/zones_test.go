package teach

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/webinspect/webinspect/model/onnx"
	"github.com/webinspect/webinspect/model/onnx/ortest"
)

// wanderingWeb cuts frames of h lines from a simulated web w pixels wide
// in view, whose left edge wanders by ±wander pixels around x0 along the
// roll (line l of the roll is frame l/h): a saturated backlight band left
// of the edge, a light selvage stripe of 6 pixels along the edge, a dark
// selvage thread 2 pixels wide 8 pixels inside it, then woven web.
// mutate, when set, changes a frame's pixels given each row's edge.
type webFrame struct {
	im   Image
	edge []int // left edge per row
}

func wanderingWeb(rng *rand.Rand, frames, w, h, x0, wander int, line0 int) []webFrame {
	var out []webFrame
	for f := range frames {
		im := texture(rng, w, h)
		fr := webFrame{im: im, edge: make([]int, h)}
		for y := range h {
			l := float64(line0 + f*h + y)
			e := x0 + int(math.Round(float64(wander)*math.Sin(l/700))) + rng.IntN(2)
			fr.edge[y] = e
			row := im.Pix[y*w : (y+1)*w]
			for x := range e {
				row[x] = 255
			}
			for x := e; x < e+6; x++ {
				row[x] = clamp8(float64(row[x]) + 45)
			}
			for x := e + 8; x < e+10; x++ {
				row[x] = clamp8(float64(row[x]) - 50)
			}
		}
		out = append(out, fr)
	}
	return out
}

// TestEdgeZonesWanderingWeb teaches on the first frames of a web whose
// edge wanders ±30 pixels, then scores frames from further down the roll:
// good frames stay below the threshold wherever the edge is (the edge and
// the selvage are not defects), while a missing selvage thread, a cut
// light selvage stripe and subtle spots within 20 pixels of the edge are
// found, at the edge.
func TestEdgeZonesWanderingWeb(t *testing.T) {
	ortest.Require(t)
	const w, h = 256, 64
	rng := rand.New(rand.NewPCG(13, 13))
	o := smallOptions()
	o.Clusters = 1
	o.TileH, o.TileW = 32, 128
	var good []Image
	for _, f := range wanderingWeb(rng, 24, w, h, 70, 30, 0) {
		good = append(good, f.im)
	}
	taught, err := Teach(good, o)
	if err != nil {
		t.Fatal(err)
	}
	p := taught.Sidecar.MadeBy.Params
	if p["edge_mode"] != "bright" || !strings.Contains(p["zones"], "zones of") || taught.Sidecar.Input.Edges == "" {
		t.Fatalf("teach did not find the edges or fit zones: edge_mode %q, zones %q, edges input %q", p["edge_mode"], p["zones"], taught.Sidecar.Input.Edges)
	}
	dir := t.TempDir()
	if err := taught.WriteModel(dir); err != nil {
		t.Fatal(err)
	}
	s := openScorer(t, dir)
	th := float32(taught.Threshold)
	// Frames from later on the roll, the edge anywhere within ±30 px.
	later := wanderingWeb(rng, 12, w, h, 70, 30, 40_000)
	for i, f := range later {
		sc, amap, err := s.Score(f.im, make([]float32, 0, w*h))
		if err != nil {
			t.Fatal(err)
		}
		if testing.Verbose() {
			peak := 0
			for j, v := range amap {
				if v > amap[peak] {
					peak = j
				}
			}
			t.Logf("good frame %d: score %.2f peak %d px from the edge", i, sc, peak%w-f.edge[peak/w])
		}
		if sc >= th {
			t.Errorf("good frame %d (edge at %d..%d) scores %.2f ≥ threshold %.2f", i, f.edge[0], f.edge[h-1], sc, th)
		}
	}
	type defect struct {
		name string
		do   func(f webFrame)
	}
	defects := []defect{
		{"missing selvage thread", func(f webFrame) {
			for y := 20; y < 44; y++ {
				for x := f.edge[y] + 8; x < f.edge[y]+10; x++ {
					f.im.Pix[y*w+x] = f.im.Pix[y*w+x+4]
				}
			}
		}},
		{"cut light selvage", func(f webFrame) {
			for y := 24; y < 40; y++ {
				for x := f.edge[y]; x < f.edge[y]+6; x++ {
					f.im.Pix[y*w+x] = f.im.Pix[y*w+x+12]
				}
			}
		}},
	}
	for _, d := range []int{3, 8, 14, 19} {
		defects = append(defects, defect{"spot " + string(rune('0'+d/10)) + string(rune('0'+d%10)) + " px from the edge", func(f webFrame) {
			for y := 30; y < 34; y++ {
				for x := f.edge[y] + d; x < f.edge[y]+d+4; x++ {
					f.im.Pix[y*w+x] = clamp8(float64(f.im.Pix[y*w+x]) - 35)
				}
			}
		}})
	}
	found := 0
	for i, d := range defects {
		f := later[i%len(later)]
		f.im = Image{W: w, H: h, Pix: append([]uint8(nil), f.im.Pix...)}
		d.do(f)
		sc, amap, err := s.Score(f.im, make([]float32, 0, w*h))
		if err != nil {
			t.Fatal(err)
		}
		peak := 0
		for j, v := range amap {
			if v > amap[peak] {
				peak = j
			}
		}
		px, py := peak%w, peak/w
		at := px - f.edge[py]
		if sc < th || at < -4 || at > 30 || py < 14 || py > 50 {
			t.Errorf("%s: score %.2f (threshold %.2f), peak %d px from the edge at row %d", d.name, sc, th, at, py)
			continue
		}
		found++
	}
	t.Logf("threshold %.2f, %d/%d edge defects found; %s", th, found, len(defects), p["zones"])
}

// TestFitZonesFallback: a zone with too few patches to estimate (here one
// column of patch centres) keeps the cluster's own statistics; a wide one
// gets its own.
func TestFitZonesFallback(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	const w, h, P = 48, 40, 5
	p := plane{w: w, h: h, v: make([]float32, w*h)}
	for i := range p.v {
		p.v[i] = float32(rng.NormFloat64())
	}
	var X []float32
	var idx []int
	for y := 0; y+P <= h; y++ {
		for x := 0; x+P <= w; x++ {
			for dy := range P {
				X = append(X, p.v[(y+dy)*w+x:(y+dy)*w+x+P]...)
			}
			idx = append(idx, len(idx))
		}
	}
	c, _, err := fitCluster(X, idx, P*P, 4)
	if err != nil {
		t.Fatal(err)
	}
	e := rowEdges{e0: make([]int32, h), e1: make([]int32, h)}
	for y := range h {
		e.e0[y], e.e1[y] = 1, w // left edge at column 1, no right edge
	}
	o := smallOptions()
	o.Patch = P
	zones, err := fitZones([]plane{p}, []edgeSides{newEdgeSides(e, w)}, 0, c, []float32{1, 30}, &o, rng)
	if err != nil {
		t.Fatal(err)
	}
	z0, z1 := zones[0], zones[1]
	for k := range 4 {
		if z0.InvVar[k] != 1 || z0.Mu[k] != 0 {
			t.Fatalf("narrow zone %+v, want the cluster's own (mean 0, unit variance)", z0)
		}
	}
	if z0.Q0 != c.Q0 || z1.InvVar[0] == 1 || !(z1.Q0 > 0) {
		t.Errorf("zones %+v / %+v, cluster Q0 %v", z0, z1, c.Q0)
	}
}

// TestZoneGraphMatchesReference checks the CD zones in the ONNX graph
// against plain Go on a tile whose web edge wanders row by row: each
// patch scores against the zone of its distance from the edge, or the
// web clusters beyond the last zone, and nothing off the web. It covers
// teach's evenly spaced bounds with one cluster (gathered straight from
// the mix) and with two (gathered after a Concat), and uneven bounds
// written by hand (a Less and a Where per zone).
func TestZoneGraphMatchesReference(t *testing.T) {
	ortest.Require(t)
	for _, c := range []struct {
		name     string
		clusters int
		bounds   []float32 // nil: teach's
	}{
		{"even", 1, nil},
		{"even/clusters=2", 2, nil},
		{"uneven", 1, []float32{2, 3.5, 9}},
	} {
		t.Run(c.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(5, 6))
			o := smallOptions()
			o.TileH, o.TileW, o.Scales, o.Clusters, o.Smooth = 24, 40, 1, c.clusters, 3
			o.Zones, o.ZoneWidth = 3, 3
			var imgs []Image
			var edges []rowEdges
			for _, fr := range wanderingWeb(rng, 4, 64, 48, 14, 4, 0) {
				imgs = append(imgs, fr.im)
				e := rowEdges{e0: make([]int32, fr.im.H), e1: make([]int32, fr.im.H)}
				for y, x := range fr.edge {
					e.e0[y], e.e1[y] = int32(x), int32(fr.im.W)
				}
				edges = append(edges, e)
			}
			f, err := fit(imgs, edges, &o)
			if err != nil {
				t.Fatal(err)
			}
			if n := len(f.spec.Scales[0].Clusters); n != c.clusters {
				t.Fatalf("%d clusters fitted, want %d", n, c.clusters)
			}
			if c.bounds != nil {
				f.spec.ZoneBounds = c.bounds
				var planes []plane
				var sides []edgeSides
				for i, im := range imgs {
					planes, sides = append(planes, f.plane(im, &o)), append(sides, newEdgeSides(edges[i], im.W))
				}
				if f.spec.Scales[0].Zones, err = fitZones(planes, sides, 0, f.spec.Scales[0].Clusters[0], c.bounds, &o, rng); err != nil {
					t.Fatal(err)
				}
			}
			sess := fittedSession(t, f, &o)
			// A tile from further down the roll, its edge near column 8,
			// with a dark spot 4 pixels inside the edge.
			fr := wanderingWeb(rng, 1, 40, 24, 8, 4, 3000)[0]
			tile := withSpot(fr.im, fr.edge[12]+4, 12, 3)
			e0, e1 := make([]int32, 24), make([]int32, 24)
			for y, x := range fr.edge {
				e0[y], e1[y] = int32(x), 40
			}
			res, err := sess.RunTiles([]onnx.Tile{{Pix: tile.Pix, Stride: 40, E0: e0, E1: e1, RowW: 40}})
			if err != nil {
				t.Fatal(err)
			}
			want := zonedReference(f, tile, fr.edge)
			zoned := 0
			for i, v := range want {
				if d := math.Abs(float64(res.Maps[i]) - v); d > 1e-3*math.Max(1, math.Abs(v)) {
					t.Fatalf("map[%d] (x %d, y %d) = %v, plain Go says %v (edge at %d)", i, i%40, i/40, res.Maps[i], v, fr.edge[i/40])
				}
				if x := i % 40; x >= fr.edge[i/40] && float32(x-fr.edge[i/40]) < f.spec.ZoneBounds[len(f.spec.ZoneBounds)-1] {
					zoned++
				}
			}
			if zoned == 0 {
				t.Fatal("no pixel of the tile lies in a zone")
			}
		})
	}
}

// zonedReference scores one tile at one scale in float64 with the CD
// zones: left edge per row at edge[y], no right edge. Nothing is scored
// off the web, before or after smoothing.
func zonedReference(f *fitted, im Image, edge []int) []float64 {
	spec := f.spec
	sc := spec.Scales[0]
	P, r := spec.Patch, spec.Patch/2
	w, h := im.W, im.H
	patch := make([]float32, P*P)
	raw := make([]float64, w*h)
	for y := r; y < h-r; y++ {
		for x := r; x < w-r; x++ {
			d := float32(x - edge[y])
			if d < 0 {
				continue
			}
			for dy := range P {
				for dx := range P {
					patch[dy*P+dx] = f.lut[im.Pix[(y-r+dy)*w+x-r+dx]]
				}
			}
			v := patchScore(sc.Clusters, patch)
			if z := zoneOf(d, spec.ZoneBounds); z < len(spec.ZoneBounds) {
				v = zoneScore(sc.Clusters[0], sc.Zones[z], patch)
			}
			raw[y*w+x] = max(v, 0)
		}
	}
	out := padSmooth(raw, w, h, r, spec.Smooth)
	// The map is zeroed off the web after smoothing too.
	for y := range h {
		for x := range edge[y] {
			out[y*w+x] = 0
		}
	}
	return out
}

// zoneScore is zone z's score of a patch on cluster c's components:
// Σ_k (y_k-μ_k)² v_k/K + (|p-m|² - Σ_k λ_k y_k²)/Q0_z.
func zoneScore(c onnx.TeachCluster, z onnx.TeachZone, p []float32) float64 {
	pp, K := len(p), len(c.Lambda)
	var t, lt, d2 float64
	for k := range K {
		y := float64(c.Bias[k])
		for j, v := range p {
			y += float64(c.Weights[k*pp+j]) * float64(v)
		}
		dm := y - float64(z.Mu[k])
		t += dm * dm * float64(z.InvVar[k])
		lt += float64(c.Lambda[k]) * y * y
	}
	for j, v := range p {
		dd := float64(v) - float64(c.Mean[j])
		d2 += dd * dd
	}
	return t/float64(K) + (d2-lt)/float64(z.Q0)
}

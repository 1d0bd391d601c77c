package teach

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/webinspect/webinspect/model/onnx"
	"github.com/webinspect/webinspect/model/onnx/ortest"
)

// The coreset covers the good material: taught on two textures of
// different kinds (a woven pattern and a flat, brighter web), a bounded
// memory of good patches scores new good patches of either kind far below
// a dark spot.
func TestMemoryCoversTwoKindsOfGoodMaterial(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	o := smallOptions()
	o.Clusters, o.Scales = 1, 1
	pp := o.Patch * o.Patch
	flat := func() Image {
		im := Image{W: 64, H: 48, Pix: make([]uint8, 64*48)}
		for i := range im.Pix {
			im.Pix[i] = clamp8(200 + rng.NormFloat64()*3)
		}
		return im
	}
	var planes []plane
	f := &fitted{}
	for i := range 256 {
		f.lut[i] = float32((float64(i) - 140) / 40)
	}
	for range 3 {
		planes = append(planes, f.plane(texture(rng, 64, 48), &o), f.plane(flat(), &o))
	}
	var X []float32
	for _, p := range planes {
		for y := 0; y+o.Patch <= p.h; y += 2 {
			for x := 0; x+o.Patch <= p.w; x += 2 {
				for dy := range o.Patch {
					X = append(X, p.v[(y+dy)*p.w+x:(y+dy)*p.w+x+o.Patch]...)
				}
			}
		}
	}
	cl, _, _, err := fitClusters(X, pp, 1, &o, rng)
	if err != nil {
		t.Fatal(err)
	}
	mem, D := fitMemory(cl[0], X, pp, 40, rng)
	K := len(cl[0].Lambda)
	if len(mem) != 40*K || !(D > 0) {
		t.Fatalf("memory of %d values, D %v; want 40×%d values and D > 0", len(mem), D, K)
	}
	// New good patches of both kinds, and a defect patch (dark spot).
	probe := func(im Image) []float32 {
		p := f.plane(im, &o)
		out := make([]float32, 0, pp)
		for dy := range o.Patch {
			out = append(out, p.v[(10+dy)*p.w+10:(10+dy)*p.w+10+o.Patch]...)
		}
		return out
	}
	gw, gf := probe(texture(rng, 64, 48)), probe(flat())
	bad := probe(withSpot(texture(rng, 64, 48), 11, 11, 3))
	mw, mf, mb := memoryScore(cl[0], mem, D, gw), memoryScore(cl[0], mem, D, gf), memoryScore(cl[0], mem, D, bad)
	gauss := func(p []float32) float64 { return patchScore(cl, p) }
	t.Logf("memory: woven %.3g flat %.3g spot %.3g; Gaussian: woven %.3g flat %.3g spot %.3g", mw, mf, mb, gauss(gw), gauss(gf), gauss(bad))
	if !(mb > 3*max(mw, mf)) {
		t.Errorf("memory scores the spot %.3g, good patches %.3g and %.3g: want the spot above 3× both", mb, mw, mf)
	}
	if math.IsNaN(mw) || math.IsNaN(mf) {
		t.Fatal("NaN score")
	}
}

// A taught model with a memory finds a defect through ONNX Runtime and
// records the coreset in made_by.params.
func TestTeachWithMemory(t *testing.T) {
	ortest.Require(t)
	rng := rand.New(rand.NewPCG(13, 14))
	var good []Image
	for range 6 {
		good = append(good, texture(rng, 96, 48))
	}
	o := smallOptions()
	o.Memory, o.MaxPatches = 32, 5000
	taught, err := Teach(good, o)
	if err != nil {
		t.Fatal(err)
	}
	if p := taught.Sidecar.MadeBy.Params["memory"]; p == "off" || p == "" {
		t.Fatalf("made_by.params.memory = %q, want the coreset sizes", p)
	}
	g := texture(rng, 96, 48)
	scores, _ := scoreImages(t, taught, g, withSpot(g, 40, 20, 4))
	if th := float32(taught.Threshold); scores[0] >= th || scores[1] < th {
		t.Errorf("good %.3f, spot %.3f, threshold %.3f: want good below and spot above", scores[0], scores[1], th)
	}
}

// A spec whose memory or discriminator does not fit its cluster is
// refused, naming the field.
func TestSpecRefusesBadMemoryAndDisc(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 16))
	var good []Image
	for range 3 {
		good = append(good, texture(rng, 64, 48))
	}
	o := smallOptions()
	o.TileH, o.TileW, o.Scales, o.Memory, o.Discriminator = 24, 40, 1, 8, true
	f, err := fit(good, nil, &o)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.spec.Validate(); err != nil {
		t.Fatalf("fitted spec: %v", err)
	}
	for _, c := range []struct {
		field string
		edit  func(*onnx.TeachScale)
	}{
		{"Scales[0].Memory", func(s *onnx.TeachScale) { s.Memory = s.Memory[:len(s.Memory)-1] }},
		{"Scales[0].MemoryD", func(s *onnx.TeachScale) { s.MemoryD = 0 }},
		{"Scales[0].Memory", func(s *onnx.TeachScale) { s.Memory[0] = float32(math.NaN()) }},
		{"Scales[0].Disc", func(s *onnx.TeachScale) { s.Disc = s.Disc[1:] }},
		{"Scales[0].Disc", func(s *onnx.TeachScale) { s.DiscBias = float32(math.Inf(1)) }},
	} {
		spec := f.spec
		sc := spec.Scales[0]
		sc.Memory, sc.Disc = slices.Clone(sc.Memory), slices.Clone(sc.Disc)
		c.edit(&sc)
		spec.Scales = []onnx.TeachScale{sc}
		if err := spec.Validate(); !errors.Is(err, onnx.ErrOptions) || !strings.Contains(err.Error(), c.field) {
			t.Errorf("%s: err = %v, want ErrOptions naming it", c.field, err)
		}
	}
}

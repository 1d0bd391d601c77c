package teach

import (
	"math/rand/v2"
	"testing"
)

// Synthetic defects change the plane only where their mask says, and the
// discriminator trained on them scores a real defect patch (a dark spot,
// not one of its training kinds) above most good patches.
func TestDiscriminatorOnGeneratedTexture(t *testing.T) {
	rng := rand.New(rand.NewPCG(31, 32))
	o := smallOptions()
	o.Clusters, o.Scales = 1, 1
	f := &fitted{}
	for i := range 256 {
		f.lut[i] = float32((float64(i) - 120) / 25)
	}
	var planes []plane
	for range 4 {
		planes = append(planes, f.plane(texture(rng, 96, 64), &o))
	}
	q, mask := synthDefects(planes[0], 6, rng)
	changed, masked := 0, 0
	for i := range q.v {
		if mask[i] {
			masked++
		}
		if d := q.v[i] - planes[0].v[i]; (d > 0.25 || d < -0.25) != mask[i] {
			t.Fatalf("pixel %d changed by %v, mask %v", i, d, mask[i])
		}
		if q.v[i] != planes[0].v[i] {
			changed++
		}
	}
	if masked == 0 || changed < masked {
		t.Fatalf("synthetic defects: %d pixels masked, %d changed; want some, all masked ones changed", masked, changed)
	}
	pp := o.Patch * o.Patch
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
	w, b, ok := fitDisc(planes, cl[0], o.Patch, rng)
	if !ok || len(w) != 2*len(cl[0].Lambda)+1 {
		t.Fatalf("discriminator: ok %v, %d weights; want 2K+1 = %d", ok, len(w), 2*len(cl[0].Lambda)+1)
	}
	probe := func(im Image, x, y int) []float32 {
		p := f.plane(im, &o)
		out := make([]float32, 0, pp)
		for dy := range o.Patch {
			out = append(out, p.v[(y+dy)*p.w+x:(y+dy)*p.w+x+o.Patch]...)
		}
		return out
	}
	good := texture(rng, 96, 64)
	var high int
	for i := range 50 {
		if discTerm(cl[0], w, b, probe(good, 10+i, 20)) > 1 {
			high++
		}
	}
	spot := discTerm(cl[0], w, b, probe(withSpot(good, 40, 30, 3), 38, 28))
	if !(spot > 2) || high > 10 {
		t.Errorf("dark spot adds %.3g, %d of 50 good patches add > 1; want the spot > 2 and at most 10 good", spot, high)
	}
}

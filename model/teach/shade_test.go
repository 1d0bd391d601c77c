package teach

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/webinspect/webinspect/model/onnx"
	"github.com/webinspect/webinspect/model/onnx/ortest"
)

// withBlotch returns a copy of im brightened by up to d grey levels over
// the w×h rectangle at (x0, y0), with a raised-cosine profile (no step
// anywhere): a large, low-contrast area whose every patch still looks
// like good texture.
func withBlotch(im Image, x0, y0, w, h int, d float64) Image {
	out := Image{W: im.W, H: im.H, Pix: append([]uint8(nil), im.Pix...)}
	for y := y0; y < y0+h; y++ {
		for x := x0; x < x0+w; x++ {
			a := 0.25 * (1 - math.Cos(2*math.Pi*(float64(x-x0)+0.5)/float64(w))) *
				(1 - math.Cos(2*math.Pi*(float64(y-y0)+0.5)/float64(h)))
			out.Pix[y*im.W+x] = clamp8(float64(out.Pix[y*im.W+x]) + d*a)
		}
	}
	return out
}

func scoreImages(t *testing.T, taught *Taught, imgs ...Image) ([]float32, [][]float32) {
	t.Helper()
	dir := t.TempDir()
	if err := taught.WriteModel(dir); err != nil {
		t.Fatal(err)
	}
	s := openScorer(t, dir)
	var scores []float32
	var maps [][]float32
	for _, im := range imgs {
		v, amap, err := s.Score(im, make([]float32, 0, im.W*im.H))
		if err != nil {
			t.Fatal(err)
		}
		scores = append(scores, v)
		maps = append(maps, amap)
	}
	return scores, maps
}

// A large blotch a few grey levels brighter than the web is found by the
// shading model, at the blotch, while good images stay below threshold.
func TestShadeFindsLowContrastBlotch(t *testing.T) {
	ortest.Require(t)
	rng := rand.New(rand.NewPCG(5, 6))
	var good []Image
	for range 6 {
		good = append(good, texture(rng, 128, 64))
	}
	o := smallOptions()
	o.ShadeBlock, o.BrightBlock = 8, 0
	taught, err := Teach(good, o)
	if err != nil {
		t.Fatal(err)
	}
	if taught.Sidecar.MadeBy.Params["shade"] == "off" {
		t.Fatal("shading model not fitted (made_by.params.shade off)")
	}
	g := texture(rng, 128, 64)
	bad := withBlotch(g, 48, 16, 40, 32, 5)
	scores, maps := scoreImages(t, taught, g, bad)
	th := float32(taught.Threshold)
	if scores[0] >= th {
		t.Errorf("good image scores %.3f, at or above the threshold %.3f", scores[0], th)
	}
	if scores[1] < th {
		t.Errorf("blotched image scores %.3f, below the threshold %.3f (good %.3f)", scores[1], th, scores[0])
	}
	peak := 0
	for j, v := range maps[1] {
		if v > maps[1][peak] {
			peak = j
		}
	}
	if px, py := peak%128, peak/128; px < 48-8 || px >= 88+8 || py < 16-8 || py >= 48+8 {
		t.Errorf("map peaks at (%d,%d), outside the blotch [48,88)×[16,48)", px, py)
	}
	// The patch model alone, for the record: the blotch is what the
	// shading model adds.
	o.ShadeBlock = 0
	plain, err := Teach(good, o)
	if err != nil {
		t.Fatal(err)
	}
	ps, _ := scoreImages(t, plain, g, bad)
	t.Logf("threshold %.3f: good %.3f blotch %.3f; patch model alone: threshold %.3f good %.3f blotch %.3f",
		th, scores[0], scores[1], plain.Threshold, ps[0], ps[1])
}

// The graph's shading model computes what shadeScore does in Go: on a
// tile whose patch scores are negligible next to a heavily weighted
// shading score, the map's maximum is the cells' maximum, up to the
// linear resize (which lands pixel centres between cell centres).
func TestShadeGraphMatchesGo(t *testing.T) {
	ortest.Require(t)
	rng := rand.New(rand.NewPCG(7, 8))
	var good []Image
	for range 4 {
		good = append(good, texture(rng, 64, 48))
	}
	o := smallOptions()
	o.TileH, o.TileW, o.Scales, o.ShadeBlock, o.BrightBlock, o.ShadeAbs = 32, 64, 1, 8, 0, true
	f, err := fit(good, nil, &o)
	if err != nil {
		t.Fatal(err)
	}
	if !f.shadeOK {
		t.Fatal("no shading statistics fitted")
	}
	sh := f.shade
	if !(sh.InvVarAbs > 0 && sh.InvVarRel > 0) || math.IsNaN(float64(sh.Mu)) {
		t.Fatalf("shading statistics %+v", sh)
	}
	f.spec.Shade = sh
	f.spec.Shade.Weight = 1000
	sess := fittedSession(t, f, &o)
	tile := withBlotch(texture(rng, 64, 32), 16, 8, 24, 16, 20)
	res, err := sess.Run([][]uint8{tile.Pix})
	if err != nil {
		t.Fatal(err)
	}
	want := 1000 * shadeScore(f.plane(tile, &o), sh)
	got := float64(res.Scores[0])
	if !(got <= want*1.001 && got >= 0.6*want) {
		t.Fatalf("graph score %.4g, Go shading maximum %.4g; want within [0.6, 1]×", got, want)
	}
	// With the shading model off the same tile scores far less.
	f.spec.Shade = onnx.TeachShade{}
	ref := referenceMap(f, &o, tile)
	var mx float64
	for _, v := range ref {
		mx = max(mx, v)
	}
	if !(mx < 0.1*got) {
		t.Fatalf("patch model alone scores %.4g, want well below the shading score %.4g", mx, got)
	}
}

// The graph's brightness model computes what brightScore does in Go: on
// a striped web (each column its own brightness, which is good), a soft
// bright blob scores as the cells' maximum up to the linear resize, and
// the stripes themselves do not score.
func TestBrightGraphMatchesGo(t *testing.T) {
	ortest.Require(t)
	rng := rand.New(rand.NewPCG(9, 10))
	stripes := func(im Image) Image {
		for y := range im.H {
			for x := range im.W {
				im.Pix[y*im.W+x] = clamp8(float64(im.Pix[y*im.W+x]) + 25*math.Sin(2*math.Pi*float64(x)/48))
			}
		}
		return im
	}
	var good []Image
	for range 4 {
		good = append(good, stripes(texture(rng, 64, 32)))
	}
	o := smallOptions()
	o.TileH, o.TileW, o.Scales, o.BrightBlock = 32, 64, 1, 4
	f, err := fit(good, nil, &o)
	if err != nil {
		t.Fatal(err)
	}
	if !f.brightOK || !(f.bright.InvVar > 0) {
		t.Fatalf("brightness statistics %+v (fitted %v)", f.bright, f.brightOK)
	}
	f.spec.Bright = f.bright
	f.spec.Bright.Weight = 1000
	sess := fittedSession(t, f, &o)
	plain := stripes(texture(rng, 64, 32))
	blob := withBlotch(plain, 24, 8, 12, 12, 30)
	res, err := sess.Run([][]uint8{blob.Pix})
	if err != nil {
		t.Fatal(err)
	}
	want := 1000 * brightScore(f.plane(blob, &o), f.bright, o.TileH)
	got := float64(res.Scores[0])
	if res, err = sess.Run([][]uint8{plain.Pix}); err != nil {
		t.Fatal(err)
	}
	if !(got <= want*1.001 && got >= 0.6*want) {
		t.Fatalf("graph score %.4g, Go brightness maximum %.4g; want within [0.6, 1]×", got, want)
	}
	if g := float64(res.Scores[0]); !(g < 0.5*got) {
		t.Fatalf("striped good tile scores %.4g, the blob %.4g; want the stripes well below", g, got)
	}
	wantPlain := 1000 * brightScore(f.plane(plain, &o), f.bright, o.TileH)
	t.Logf("good %.4g (Go %.4g), blob %.4g (Go %.4g)", res.Scores[0], wantPlain, got, want)
}

// Teach's ensemble rule: a member whose held-out good scores are steady
// joins with the weight that matches the patch model's calibrated level;
// one whose good scores spread by more than EnsembleSpread stays out and
// says why; EnsembleSpread 0 keeps every member.
func TestFuseWeightBySpread(t *testing.T) {
	patch := []float64{4, 4.2, 3.9, 4.4, 4.1, 4.0}
	steady := []float64{10, 11, 9.5, 10.5, 12, 10}
	wild := []float64{2, 30, 5, 1, 60, 8}
	o := DefaultOptions()
	w, note := fuseWeight(patch, steady, &o)
	if want := shadeWeight(patch, steady, o.TargetFAR); !(w > 0) || w != want {
		t.Errorf("steady member: weight %v (%s), want %v", w, note, want)
	}
	w, note = fuseWeight(patch, wild, &o)
	if w != 0 || !strings.Contains(note, "too unsteady") {
		t.Errorf("wild member: weight %v, note %q; want 0 and the reason", w, note)
	}
	o.EnsembleSpread = 0
	if w, _ = fuseWeight(patch, wild, &o); !(w > 0) {
		t.Errorf("EnsembleSpread 0: weight %v, want the member kept", w)
	}
	if w, note = fuseWeight(patch, []float64{0, 0, 0}, &o); w != 0 {
		t.Errorf("member scoring 0 on everything: weight %v (%s), want 0", w, note)
	}
}

// End to end: on an evenly lit web the shading model joins by default;
// on good material whose large-area shading varies from image to image
// (blotches from none to 60 grey levels across the good images) it stays out, and
// made_by.params.shade says why.
func TestTeachChoosesShadingFromHeldOutSpread(t *testing.T) {
	ortest.Require(t)
	rng := rand.New(rand.NewPCG(21, 22))
	o := smallOptions()
	o.TileH, o.TileW, o.Scales, o.MaxPatches = 32, 64, 1, 5000
	var even, uneven []Image
	for _, d := range []float64{0, 60, 4, 45, 0, 30} {
		even = append(even, texture(rng, 96, 64))
		uneven = append(uneven, withBlotch(texture(rng, 96, 64), rng.IntN(48), rng.IntN(24), 48, 32, d))
	}
	a, err := Teach(even, o)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Teach(uneven, o)
	if err != nil {
		t.Fatal(err)
	}
	sa, sb := a.Sidecar.MadeBy.Params["shade"], b.Sidecar.MadeBy.Params["shade"]
	t.Logf("even web: shade %s\nuneven web: shade %s", sa, sb)
	if strings.HasPrefix(sa, "off") || a.Sidecar.MadeBy.Params["shade"] == "" {
		t.Errorf("even web: shading model left out (%q), want it fused", sa)
	}
	if !strings.HasPrefix(sb, "off: ") || !strings.Contains(sb, "too unsteady") {
		t.Errorf("uneven web: shading %q, want it left out for its spread", sb)
	}
}

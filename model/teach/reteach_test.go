package teach

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/webinspect/webinspect/model/onnx"
	"github.com/webinspect/webinspect/model/onnx/ortest"
)

// lotTexture is texture of another yarn lot: 8 grey levels brighter and
// 30 % more contrast around the mean.
func lotTexture(rng *rand.Rand, w, h int) Image {
	im := texture(rng, w, h)
	for i, v := range im.Pix {
		im.Pix[i] = clamp8(128 + 1.3*(float64(v)-128) + 8)
	}
	return im
}

// filesDigest hashes the files of dir (names and bytes).
func filesDigest(t *testing.T, dir string) string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		h.Write([]byte(e.Name() + "\x00"))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// openScorer loads the model in dir and opens a scorer on it, closed when
// the test ends.
func openScorer(t *testing.T, dir string) *Scorer {
	t.Helper()
	m, err := onnx.Load(dir, onnx.DefaultModelOptions())
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewScorer(m)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// scoreAll scores images with the model in dir.
func scoreAll(t *testing.T, dir string, imgs []Image) []float64 {
	t.Helper()
	s := openScorer(t, dir)
	out := make([]float64, len(imgs))
	for i, im := range imgs {
		v, _, err := s.Score(im, nil)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = float64(v)
	}
	return out
}

func teachSmall(t *testing.T, rng *rand.Rand) string {
	t.Helper()
	return teachSmallMemory(t, rng, 0)
}

func teachSmallMemory(t *testing.T, rng *rand.Rand, memory int) string {
	t.Helper()
	var good []Image
	for range 4 {
		good = append(good, texture(rng, 96, 48))
	}
	o := smallOptions()
	o.Folds, o.MaxPatches = 2, 8000 // short under -race
	o.Memory = memory
	o.Source = "generated texture"
	taught, err := Teach(good, o)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "old")
	if err := taught.WriteModel(dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

// Re-teach on material of another lot: the new model takes fresh images
// of that lot as good, still flags a spot on either lot, and the old
// model directory is untouched.
func TestReteachLearnsNewLot(t *testing.T) {
	ortest.Require(t)
	rng := rand.New(rand.NewPCG(3, 4))
	old := teachSmall(t, rng)
	before := filesDigest(t, old)
	var reviewed [][]Image
	for range 4 {
		reviewed = append(reviewed, []Image{lotTexture(rng, 96, 48)})
	}
	fresh := []Image{lotTexture(rng, 96, 48), lotTexture(rng, 96, 48), lotTexture(rng, 96, 48)}
	spots := []Image{withSpot(lotTexture(rng, 96, 48), 40, 20, 4), withSpot(texture(rng, 96, 48), 40, 20, 4)}

	sc, err := onnx.ReadSidecar(filepath.Join(old, onnx.SidecarFileName))
	if err != nil {
		t.Fatal(err)
	}
	th := *sc.Threshold
	oldFresh := scoreAll(t, old, fresh)
	for i, v := range oldFresh {
		if v < th {
			t.Fatalf("fresh lot image %d scores %.3g with the old model, below its threshold %.3g: the test proves nothing", i, v, th)
		}
	}
	nt, err := Reteach(old, reviewed, ReteachOptions{Seed: 1, MaxPatches: 8000, Source: "test lot", Params: map[string]string{"derived_from": "abc"}})
	if err != nil {
		t.Fatal(err)
	}
	newDir := filepath.Join(t.TempDir(), "new")
	if err := nt.WriteModel(newDir); err != nil {
		t.Fatal(err)
	}
	if filesDigest(t, old) != before {
		t.Error("Reteach changed the old model directory")
	}
	if nt.Threshold != th {
		t.Errorf("threshold %.4g, want the old model's %.4g (calibrated on the taught good material)", nt.Threshold, th)
	}
	newFresh := scoreAll(t, newDir, fresh)
	newSpots := scoreAll(t, newDir, spots)
	t.Logf("threshold %.3g; fresh lot images old %v new %v; spots (lot, old material) new %v; %s", th, oldFresh, newFresh, newSpots, nt.Sidecar.MadeBy.Params["reteach"])
	for i, v := range newFresh {
		if v >= th {
			t.Errorf("fresh lot image %d scores %.3g with the re-taught model, at or above the threshold %.3g", i, v, th)
		}
	}
	for i, v := range newSpots {
		if v < th {
			t.Errorf("spot image %d scores %.3g with the re-taught model, below the threshold %.3g", i, v, th)
		}
	}
	p := nt.Sidecar.MadeBy.Params
	if nt.Sidecar.MadeBy.Tool != "webinspect reteach" || nt.Sidecar.MadeBy.Source != "test lot" || p["derived_from"] != "abc" ||
		p["reteach_count"] != "1" || p["taught_source"] != "generated texture" {
		t.Errorf("made_by %+v", nt.Sidecar.MadeBy)
	}
	// The new directory can be re-taught again: its teach.json matches.
	if _, _, _, err := ReadTaughtModel(newDir); err != nil {
		t.Errorf("the re-taught model cannot be read back: %v", err)
	}
}

// A model that cannot be re-taught gets an error naming the file.
func TestReteachBadModel(t *testing.T) {
	ortest.Require(t)
	rng := rand.New(rand.NewPCG(5, 6))
	old := teachSmall(t, rng)
	lot := [][]Image{{lotTexture(rng, 96, 48)}}
	cp := func(t *testing.T) string {
		dir := t.TempDir()
		for _, n := range []string{onnx.ModelFileName, onnx.SidecarFileName, SpecFileName} {
			b, err := os.ReadFile(filepath.Join(old, n))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, n), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	for _, c := range []struct {
		name   string
		break_ func(dir string)
		file   string
		want   string
	}{
		{"no teach.json", func(d string) { os.Remove(filepath.Join(d, SpecFileName)) }, SpecFileName, "teach it again"},
		{"corrupt teach.json", func(d string) { os.WriteFile(filepath.Join(d, SpecFileName), []byte(`{"format":1,"spec":{`), 0o644) }, SpecFileName, "unexpected EOF"},
		{"teach.json of a newer format", func(d string) {
			b, _ := os.ReadFile(filepath.Join(d, SpecFileName))
			os.WriteFile(filepath.Join(d, SpecFileName), []byte(strings.Replace(string(b), `"format":1`, `"format":9`, 1)), 0o644)
		}, SpecFileName, "format 9"},
		{"model.onnx replaced", func(d string) {
			b, _ := os.ReadFile(filepath.Join(d, onnx.ModelFileName))
			b[len(b)/2] ^= 1
			os.WriteFile(filepath.Join(d, onnx.ModelFileName), b, 0o644)
		}, onnx.ModelFileName, "changed after teach"},
		{"corrupt model.json", func(d string) { os.WriteFile(filepath.Join(d, onnx.SidecarFileName), []byte("{"), 0o644) }, onnx.SidecarFileName, "sidecar"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := cp(t)
			c.break_(dir)
			_, err := Reteach(dir, lot, ReteachOptions{})
			if !errors.Is(err, ErrModel) || !strings.Contains(err.Error(), filepath.Join(dir, c.file)) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want ErrModel naming %s and saying %q", err, filepath.Join(dir, c.file), c.want)
			}
		})
	}
	t.Run("too little material", func(t *testing.T) {
		_, err := Reteach(old, [][]Image{{lotTexture(rng, 12, 12)}}, ReteachOptions{})
		if !errors.Is(err, ErrTooLittle) || !strings.Contains(err.Error(), "want at least 250") {
			t.Errorf("error %v, want ErrTooLittle saying how much is needed (10×5² patch positions)", err)
		}
	})
}

// With a memory, re-teach adds entries for the reviewed material instead
// of clusters, and fresh material of that kind scores lower.
func TestReteachMemory(t *testing.T) {
	ortest.Require(t)
	rng := rand.New(rand.NewPCG(7, 8))
	old := teachSmallMemory(t, rng, 32)
	_, spec, _, err := ReadTaughtModel(old)
	if err != nil {
		t.Fatal(err)
	}
	reviewed := [][]Image{{lotTexture(rng, 96, 48)}, {lotTexture(rng, 96, 48)}}
	nt, err := Reteach(old, reviewed, ReteachOptions{Seed: 1, MaxPatches: 8000})
	if err != nil {
		t.Fatal(err)
	}
	for si := range spec.Scales {
		k := len(spec.Scales[si].Clusters[0].Lambda)
		was, now := len(spec.Scales[si].Memory)/k, len(nt.Spec.Scales[si].Memory)/k
		if now <= was || now > 2*was || len(nt.Spec.Scales[si].Clusters) != len(spec.Scales[si].Clusters) {
			t.Errorf("scale %d: memory %d → %d entries, clusters %d → %d; want more entries (at most twice) and the same clusters",
				si, was, now, len(spec.Scales[si].Clusters), len(nt.Spec.Scales[si].Clusters))
		}
	}
	newDir := filepath.Join(t.TempDir(), "new")
	if err := nt.WriteModel(newDir); err != nil {
		t.Fatal(err)
	}
	// The memory lowers the patch distances of the reviewed kind; where
	// the image's maximum comes from the residual outside the components
	// (or the shading model) it stays: compare the maps' means.
	fresh := lotTexture(rng, 96, 48)
	before, after := meanMap(t, old, fresh), meanMap(t, newDir, fresh)
	t.Logf("threshold %.3g; fresh lot image mean map old %.4g new %.4g; %s", nt.Threshold, before, after, nt.Sidecar.MadeBy.Params["reteach"])
	if !(after < before) {
		t.Errorf("fresh lot image's mean map %.4g after re-teach, %.4g before: want lower", after, before)
	}
}

// meanMap is the mean of im's anomaly map with the model in dir.
func meanMap(t *testing.T, dir string, im Image) float64 {
	t.Helper()
	s := openScorer(t, dir)
	_, amap, err := s.Score(im, make([]float32, 0, im.W*im.H))
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, v := range amap {
		sum += float64(v)
	}
	return sum / float64(len(amap))
}

// noisePlane is a w×h plane of Gaussian noise of standard deviation sd.
func noisePlane(rng *rand.Rand, w, h int, sd float64) plane {
	p := plane{w: w, h: h, v: make([]float32, w*h)}
	for i := range p.v {
		p.v[i] = float32(rng.NormFloat64() * sd)
	}
	return p
}

// The shading model's relative variance follows reviewed material whose
// tone varies more (a lot of 1.3× contrast: variance ×1.69), is never
// narrowed, ignores a real defect inside a reviewed region, and is kept
// when too little was reviewed.
func TestReteachShade(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	taught, ok := fitShade([]plane{noisePlane(rng, 256, 256, 1)}, 8, false)
	if !ok {
		t.Fatal("no shading model fitted")
	}
	taught.Weight = 0.5
	ratio := func(sh onnx.TeachShade) float64 { return float64(taught.InvVarRel / sh.InvVarRel) }

	sh := taught
	note := reteachShade(&sh, []plane{noisePlane(rng, 256, 256, 1.3)})
	if r := ratio(sh); r < 1.69*0.85 || r > 1.69*1.15 || !strings.Contains(note, "relative variance ×") {
		t.Errorf("lot of 1.3× contrast: variance ×%.3g (%s), want about 1.69", r, note)
	}
	if sh.Weight != taught.Weight || sh.InvVarAbs != taught.InvVarAbs || sh.Mu != taught.Mu {
		t.Errorf("reteachShade changed more than the relative variance: %+v from %+v", sh, taught)
	}

	// A bright square defect over about 6 % of the reviewed cells.
	withDefect := noisePlane(rng, 256, 256, 1.3)
	for y := 96; y < 160; y++ {
		for x := 96; x < 160; x++ {
			withDefect.v[y*256+x] += 8
		}
	}
	sh = taught
	reteachShade(&sh, []plane{withDefect})
	if r := ratio(sh); r > 1.69*1.2 {
		t.Errorf("a defect in the reviewed region widened the variance ×%.3g, want about 1.69", r)
	}

	sh = taught
	note = reteachShade(&sh, []plane{noisePlane(rng, 256, 256, 0.8)})
	if sh != taught || !strings.Contains(note, "kept") {
		t.Errorf("quieter reviewed material changed the shading model (%s)", note)
	}
	sh = taught
	note = reteachShade(&sh, []plane{noisePlane(rng, 40, 40, 1.3)})
	if sh != taught || !strings.Contains(note, "want 200") {
		t.Errorf("25 reviewed cells changed the shading model (%s)", note)
	}
	none := onnx.TeachShade{}
	if note := reteachShade(&none, []plane{noisePlane(rng, 256, 256, 1.3)}); note != "" || none != (onnx.TeachShade{}) {
		t.Errorf("a model without shading member: %q %+v", note, none)
	}
}

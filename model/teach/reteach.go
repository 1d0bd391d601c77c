package teach

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/webinspect/webinspect/internal/atomicfile"
	"github.com/webinspect/webinspect/internal/boundedfile"
	"github.com/webinspect/webinspect/model/onnx"
)

// SpecFileName is the file of a taught model directory that keeps the
// fitted statistics (onnx.TeachModelSpec) the graph was built from, with
// the SHA-256 of that graph. Reteach needs it; the engine does not read it
// and a model's version (rollmap/versions) covers model.onnx and
// model.json only, which it describes exactly.
const SpecFileName = "teach.json"

// specFormat is the version of teach.json's layout.
const specFormat = 1

// maxSpecBytes bounds teach.json (a memory of MaxTeachMemory rows of 49
// components at 4 scales is about 10 MB of JSON).
const maxSpecBytes = 64 << 20

// specFile is teach.json.
type specFile struct {
	Format int `json:"format"`
	// ONNXSHA256 is the SHA-256 of model.onnx as built from Spec: a
	// model.onnx that does not match was changed or replaced, and its
	// statistics are unknown.
	ONNXSHA256 string              `json:"onnx_sha256"`
	Spec       onnx.TeachModelSpec `json:"spec"`
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// writeSpec writes dir/teach.json for the graph b built from spec.
func writeSpec(dir string, spec onnx.TeachModelSpec, b []byte) error {
	out, err := json.Marshal(specFile{Format: specFormat, ONNXSHA256: sha256Hex(b), Spec: spec})
	if err != nil {
		return fmt.Errorf("teach: encode %s: %w", SpecFileName, err)
	}
	if err := atomicfile.WriteFile(dir, SpecFileName, append(out, '\n')); err != nil {
		return fmt.Errorf("teach: write %s: %w", filepath.Join(dir, SpecFileName), err)
	}
	return nil
}

// ReadTaughtModel reads a taught model directory for Reteach: model.json,
// model.onnx and teach.json, checked against each other. Every error names
// the file at fault and wraps ErrModel.
func ReadTaughtModel(dir string) (onnx.Sidecar, onnx.TeachModelSpec, []byte, error) {
	scPath := filepath.Join(dir, onnx.SidecarFileName)
	sc, err := onnx.ReadSidecar(scPath)
	if err != nil {
		return sc, onnx.TeachModelSpec{}, nil, fmt.Errorf("%w: %w", ErrModel, err)
	}
	onnxPath := filepath.Join(dir, onnx.ModelFileName)
	graph, err := os.ReadFile(onnxPath)
	if err != nil {
		return sc, onnx.TeachModelSpec{}, nil, fmt.Errorf("%w: %v", ErrModel, err)
	}
	specPath := filepath.Join(dir, SpecFileName)
	b, err := boundedfile.Read(specPath, maxSpecBytes)
	if errors.Is(err, os.ErrNotExist) {
		what := "made by " + sc.MadeBy.Tool
		if sc.MadeBy.Tool == "" {
			what = "not made by webinspect teach"
		}
		return sc, onnx.TeachModelSpec{}, nil, fmt.Errorf("%w: %s is missing (the model is %s, or was taught before teach kept its statistics): only a model taught by webinspect teach can be re-taught; teach it again", ErrModel, specPath, what)
	}
	if err != nil {
		return sc, onnx.TeachModelSpec{}, nil, fmt.Errorf("%w: %v", ErrModel, err)
	}
	var f specFile
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return sc, f.Spec, nil, fmt.Errorf("%w: %s: %v", ErrModel, specPath, err)
	}
	if f.Format != specFormat {
		return sc, f.Spec, nil, fmt.Errorf("%w: %s: format %d, this build reads %d", ErrModel, specPath, f.Format, specFormat)
	}
	if err := f.Spec.Validate(); err != nil {
		return sc, f.Spec, nil, fmt.Errorf("%w: %s: %w", ErrModel, specPath, err)
	}
	if got := sha256Hex(graph); got != f.ONNXSHA256 {
		return sc, f.Spec, nil, fmt.Errorf("%w: %s has SHA-256 %.12s…, but %s describes the graph %.12s…: the model was changed after teach; teach it again", ErrModel, onnxPath, got, specPath, f.ONNXSHA256)
	}
	if len(sc.Input.Mean) != 1 || len(sc.Input.Std) != 1 || !(sc.Input.Std[0] > 0) || sc.Channels() != 1 ||
		sc.Height() != f.Spec.Height || sc.Width() != f.Spec.Width || sc.Threshold == nil {
		return sc, f.Spec, nil, fmt.Errorf("%w: %s does not describe a taught model of %s (input %v mean %v std %v, tile %d×%d, threshold set %v)",
			ErrModel, scPath, specPath, sc.Input.Shape, sc.Input.Mean, sc.Input.Std, f.Spec.Height, f.Spec.Width, sc.Threshold != nil)
	}
	return sc, f.Spec, graph, nil
}

// ReteachOptions configure Reteach.
type ReteachOptions struct {
	// MinPatches is the least number of patch positions the reviewed
	// material must hold at every scale (the coarsest is the binding
	// one); 0 means 10·Patch² (490 for 7×7 patches: about 25 mm × 25 mm
	// of web at 0.25 mm pixels, binning 2 and two scales).
	MinPatches int
	// MaxPatches bounds the patches sampled per scale, shared equally
	// among the regions so that one long flagged stretch does not drown
	// the others; 0 means 200,000.
	MaxPatches int
	// Seed fixes the sampling.
	Seed uint64
	// Source says what the reviewed material is (made_by.source of the
	// new model): rolls, defects, reviewers.
	Source string
	// Params are added to the new model's made_by.params (for example
	// derived_from and reviews).
	Params map[string]string
}

// Reteach folds good material that the model flagged (regions reviewers
// marked as false alarms: pixels prepared as teach reads them, e.g.
// flat-fielded camera lines) into the taught model read from dir, and
// returns the new model; dir is not written. Each region is one or more
// pieces (a long region read as bands); every region weighs the same in
// the sample. See the package documentation, "Re-teach from reviews".
func Reteach(dir string, regions [][]Image, o ReteachOptions) (*Taught, error) {
	sc, spec, _, err := ReadTaughtModel(dir)
	if err != nil {
		return nil, err
	}
	for i, c := range spec.Scales[0].Clusters {
		if c.TWeight > 0 {
			return nil, fmt.Errorf("%w: %s scores clusters by likelihood (cluster %d): re-teach supports T²/K + Q/Q0 and the memory; teach it again with the reviewed material", ErrModel, dir, i)
		}
	}
	if len(regions) == 0 {
		return nil, fmt.Errorf("%w: no reviewed regions given", ErrNoImages)
	}
	for i, r := range regions {
		if len(r) == 0 {
			return nil, fmt.Errorf("%w: region %d has no pixels", ErrImage, i)
		}
		for _, im := range r {
			if err := im.check(i); err != nil {
				return nil, err
			}
		}
	}
	prep, err := PrepFromSidecar(sc)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrModel, filepath.Join(dir, onnx.SidecarFileName), err)
	}
	P := spec.Patch
	pp := P * P
	minN := o.MinPatches
	if minN <= 0 {
		minN = 10 * pp
	}
	maxN := o.MaxPatches
	if maxN <= 0 {
		maxN = 200_000
	}
	mean, std := sc.Input.Mean[0], sc.Input.Std[0]
	var lut [256]float32
	for i := range lut {
		lut[i] = float32((float64(i)/255 - mean) / std)
	}
	var planes []plane
	for _, r := range regions {
		for _, im := range r {
			pim := prep.Apply(im)
			if prep.Edge.Active() {
				prep.Edges(pim, nil, nil) // fill the background as teach does
			}
			pl := plane{w: pim.W, h: pim.H, v: make([]float32, pim.W*pim.H)}
			for j, v := range pim.Pix[:pim.W*pim.H] {
				pl.v[j] = lut[v]
				if spec.SatFill && pl.v[j] > spec.SatLevel {
					pl.v[j] = spec.FillValue
				}
			}
			planes = append(planes, pl)
		}
	}
	rng := rand.New(rand.NewPCG(o.Seed, 0x7e7eac4))
	var notes []string
	if note := reteachShade(&spec.Shade, planes); note != "" {
		notes = append(notes, note)
	}
	for si := range spec.Scales {
		if si > 0 {
			for i := range planes {
				planes[i] = planes[i].down()
			}
		}
		total := 0
		for _, p := range planes {
			if p.w >= P && p.h >= P {
				total += (p.w - P + 1) * (p.h - P + 1)
			}
		}
		if total < minN {
			return nil, fmt.Errorf("%w: the reviewed regions hold %d positions of a %d×%d patch at scale %d, want at least %d (review more false alarms, or larger ones)",
				ErrTooLittle, total, P, P, si, minN)
		}
		X, Xg := samplePatches(planes, P, maxN, rng)
		n := len(X) / pp
		s := &spec.Scales[si]
		if len(s.Memory) > 0 {
			add, left := extendMemory(s.Clusters[0], s.Memory, s.MemoryD, X, pp, rng)
			s.Memory = append(s.Memory, add...)
			k := len(s.Clusters[0].Lambda)
			notes = append(notes, fmt.Sprintf("scale %d: %d memory entries added from %d patches (%d in all; %d patches still farther than D)", si, len(add)/k, n, len(s.Memory)/k, left))
			continue
		}
		if len(s.Clusters) >= 16 {
			return nil, fmt.Errorf("%w: %s already has %d clusters at scale %d, the most a graph takes: teach it again with the reviewed material", ErrModel, dir, len(s.Clusters), si)
		}
		K := len(s.Clusters[0].Lambda)
		// The reviewed material may be of several kinds (the lot itself,
		// its blend with the old one): k-means groups it into up to
		// reteachClusters clusters of at least 20·Patch² patches each.
		k := min(reteachClusters, n/(20*pp), 16-len(s.Clusters))
		assign := make([]int, n)
		if k > 1 {
			kmeans(X, pp, k, assign, rng)
		}
		for ci := range max(k, 1) {
			var idx []int
			for i, a := range assign {
				if a == ci {
					idx = append(idx, i)
				}
			}
			if len(idx) < 2*pp {
				continue
			}
			// A reviewed region may hide a real defect (a long false
			// alarm swallows what lies in it): the worst-explained
			// reteachTrim of the patches are left out and the cluster
			// fitted again.
			c, _, err := fitCluster(X, idx, pp, K)
			if err != nil {
				return nil, err
			}
			idx = trimWorst(c, X, idx, pp)
			c, ex, err := fitCluster(X, idx, pp, K)
			if err != nil {
				return nil, err
			}
			f := heldOutInflation(X, Xg, idx, pp, K)
			inflate(&c, f)
			s.Clusters = append(s.Clusters, c)
			notes = append(notes, fmt.Sprintf("scale %d: cluster %d of %d components on %d patches (explained %.3f, variances ×%.3g from held-out regions)", si, len(s.Clusters)-1, K, len(idx), ex, f))
		}
	}
	b, err := onnx.BuildTeachModel(spec)
	if err != nil {
		return nil, err
	}
	out := sc
	out.MadeBy.Tool = "webinspect reteach"
	out.MadeBy.Created = time.Now().UTC().Format(time.RFC3339)
	out.MadeBy.Source = o.Source
	out.MadeBy.Runtime = onnx.RuntimeVersion()
	out.MadeBy.Params = maps.Clone(sc.MadeBy.Params)
	if out.MadeBy.Params == nil {
		out.MadeBy.Params = map[string]string{}
	}
	p := out.MadeBy.Params
	// The chain of sources: what the model was taught on, then each
	// re-teach's reviewed material.
	if prev := sc.MadeBy.Source; prev != "" {
		p["taught_source"] = prev
		if sc.MadeBy.Tool == "webinspect reteach" && sc.MadeBy.Params["taught_source"] != "" {
			p["taught_source"] = sc.MadeBy.Params["taught_source"]
		}
	}
	n, _ := strconv.Atoi(sc.MadeBy.Params["reteach_count"])
	p["reteach_count"] = strconv.Itoa(n + 1)
	p["reteach"] = strings.Join(notes, "; ")
	p["reteach_regions"] = strconv.Itoa(len(regions))
	var fitted []string
	for _, s := range spec.Scales {
		fitted = append(fitted, fmt.Sprintf("%d+%d", len(s.Clusters), len(s.Edge)))
	}
	p["clusters_fitted"] = strings.Join(fitted, ",")
	for k, v := range o.Params {
		p[k] = v
	}
	th := *sc.Threshold
	out.Threshold = &th
	return &Taught{ONNX: b, Sidecar: out, Threshold: th, Spec: spec}, nil
}

// reteachShade widens the shading model's relative variance (each cell's
// difference from its neighbourhood) to the reviewed material's when that
// is larger: good material whose tone varies more from cell to cell (a
// yarn lot of more contrast) must not reach the fused threshold through
// the shading model, which the clusters do not cover. The reviewed
// variance is estimated robustly, as the median squared difference over
// the median of χ²₁ (0.455): a real defect swallowed by a long false
// alarm must not widen it. It is never narrowed, the weight and the
// absolute term are kept, and fewer than minShadeCells cells leave it as
// it is. It returns the note for made_by.params.reteach ("" when the
// model has no shading member).
func reteachShade(sh *onnx.TeachShade, planes []plane) string {
	if sh.Block <= 0 || !(sh.Weight > 0) || !(sh.InvVarRel > 0) {
		return ""
	}
	var d2 []float64
	for _, p := range planes {
		l, lb, _, _ := shadeCells(p, sh.Block)
		for i, v := range l {
			d := v - lb[i]
			d2 = append(d2, d*d)
		}
	}
	if len(d2) < minShadeCells {
		return fmt.Sprintf("shading: kept (%d cells of %d px reviewed, want %d)", len(d2), sh.Block, minShadeCells)
	}
	vOld := 1 / float64(sh.InvVarRel)
	vRev := Quantile(d2, 0.5) / 0.455
	if vRev <= vOld {
		return fmt.Sprintf("shading: kept (reviewed cell variance %.3g ≤ taught %.3g over %d cells)", vRev, vOld, len(d2))
	}
	sh.InvVarRel = float32(1 / vRev)
	return fmt.Sprintf("shading: relative variance ×%.3g (reviewed %.3g, taught %.3g, %d cells)", vRev/vOld, vRev, vOld, len(d2))
}

// minShadeCells is the least number of shading cells the reviewed
// material must hold for reteachShade to change the shading model.
const minShadeCells = 200

// reteachClusters bounds the clusters one re-teach adds per scale.
const reteachClusters = 3

// samplePatches returns about maxN patches (rows of P² values) at most,
// sampled evenly over all the planes (a long flagged stretch gives the
// most material, as it holds the most), and for each patch its fold for
// heldOutInflation: 0 or 1 alternating over the planes in order (the
// pieces of one region alternate too).
func samplePatches(planes []plane, P, maxN int, rng *rand.Rand) ([]float32, []uint8) {
	total := 0
	for _, p := range planes {
		if p.w >= P && p.h >= P {
			total += (p.w - P + 1) * (p.h - P + 1)
		}
	}
	prob := min(1, float64(maxN)/float64(max(total, 1)))
	var X []float32
	var fold []uint8
	for i, p := range planes {
		if p.w < P || p.h < P {
			continue
		}
		g := uint8(i & 1)
		for y := 0; y+P <= p.h; y++ {
			for x := 0; x+P <= p.w; x++ {
				if prob < 1 && rng.Float64() >= prob {
					continue
				}
				for dy := range P {
					X = append(X, p.v[(y+dy)*p.w+x:(y+dy)*p.w+x+P]...)
				}
				fold = append(fold, g)
			}
		}
	}
	return X, fold
}

// reteachTrim is the share of reviewed patches a cluster is fitted
// without: those it explains worst.
const reteachTrim = 0.01

// trimWorst returns idx without the reteachTrim of its patches that c
// scores highest.
func trimWorst(c onnx.TeachCluster, X []float32, idx []int, pp int) []int {
	cl := []onnx.TeachCluster{c}
	sc := make([]float64, len(idx))
	for j, i := range idx {
		sc[j] = patchScore(cl, X[i*pp:(i+1)*pp])
	}
	cut := Quantile(sc, 1-reteachTrim)
	out := idx[:0:0]
	for j, i := range idx {
		if sc[j] < cut {
			out = append(out, i)
		}
	}
	if len(out) < 2*pp {
		return idx
	}
	return out
}

// heldOutInflation measures how much a cluster fitted on the reviewed
// patches underrates material it has not seen: fitted on each fold's
// patches, the other fold scores on average f times higher than the
// fold's own patches. The cluster's variances are then inflated by f
// (≥ 1), so that new material of the reviewed kind scores like the
// taught good material does on its own Gaussian. With one fold (one
// region in one piece) f is 1.
func heldOutInflation(X []float32, fold []uint8, of []int, pp, K int) float64 {
	var idx [2][]int
	for _, i := range of {
		idx[fold[i]] = append(idx[fold[i]], i)
	}
	if len(idx[0]) < 2*pp || len(idx[1]) < 2*pp {
		return 1
	}
	var in, out float64
	for g := range 2 {
		c, _, err := fitCluster(X, idx[g], pp, K)
		if err != nil {
			return 1
		}
		cl := []onnx.TeachCluster{c}
		in += meanScore(cl, X, idx[g], pp)
		out += meanScore(cl, X, idx[1-g], pp)
	}
	if !(in > 0) || !(out > in) {
		return 1
	}
	return out / in
}

// meanScore is the mean patchScore of the patches idx (at most 5,000 of
// them, evenly spaced).
func meanScore(cl []onnx.TeachCluster, X []float32, idx []int, pp int) float64 {
	step := max(1, len(idx)/5000)
	var s float64
	var n int
	for j := 0; j < len(idx); j += step {
		i := idx[j]
		s += patchScore(cl, X[i*pp:(i+1)*pp])
		n++
	}
	return s / float64(n)
}

// inflate multiplies a cluster's component and residual variances by f:
// every score it gives is divided by f.
func inflate(c *onnx.TeachCluster, f float64) {
	if f == 1 {
		return
	}
	r := float32(1 / math.Sqrt(f))
	for i := range c.Weights {
		c.Weights[i] *= r
	}
	for i := range c.Bias {
		c.Bias[i] *= r
		c.Lambda[i] *= float32(f)
	}
	c.Q0 *= float32(f)
}

// extendMemory adds to a memory (rows of K values in c's whitened
// component space, mean nearest-neighbour distance² D on good material)
// the reviewed patches X that it does not cover: greedy k-centre over
// them, starting from their distances to the memory as it is, picking the
// farthest patch while it is farther than D, at most as many entries as
// the memory had and never beyond onnx.MaxTeachMemory. It returns the new
// rows and how many patches are still farther than D.
func extendMemory(c onnx.TeachCluster, mem []float32, D float32, X []float32, pp int, rng *rand.Rand) ([]float32, int) {
	K := len(c.Lambda)
	idx := memoryIdx(len(X)/pp, rng)
	Y := responses(c, X, idx, pp)
	ns := len(idx)
	d2 := make([]float64, ns)
	dist := func(a, b []float32) float64 {
		var s float64
		for k := range a {
			d := float64(a[k] - b[k])
			s += d * d
		}
		return s
	}
	for i := range ns {
		d2[i] = math.Inf(1)
		for j := 0; j+K <= len(mem); j += K {
			d2[i] = min(d2[i], dist(Y[i*K:(i+1)*K], mem[j:j+K]))
		}
	}
	budget := min(len(mem)/K, onnx.MaxTeachMemory-len(mem)/K)
	var add []float32
	for len(add)/K < budget {
		far, fi := -1.0, 0
		for i, v := range d2 {
			if v > far {
				far, fi = v, i
			}
		}
		if far <= float64(D) {
			break
		}
		row := Y[fi*K : (fi+1)*K]
		add = append(add, row...)
		for i := range ns {
			d2[i] = min(d2[i], dist(Y[i*K:(i+1)*K], row))
		}
	}
	left := 0
	for _, v := range d2 {
		if v > float64(D) {
			left++
		}
	}
	return add, left
}

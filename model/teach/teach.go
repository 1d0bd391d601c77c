package teach

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/webinspect/webinspect/model/edge"
	"github.com/webinspect/webinspect/model/onnx"
)

// Taught is a taught, calibrated model ready to write.
type Taught struct {
	// ONNX is the serialised scoring graph.
	ONNX []byte
	// Sidecar describes it, with Threshold and MadeBy filled.
	Sidecar onnx.Sidecar
	// HeldOut holds the held-out score of every good image, in input order.
	HeldOut []float64
	// Threshold is the calibrated anomaly-map level (= *Sidecar.Threshold).
	Threshold float64
	// Spec is the fitted statistics the graph was built from; WriteModel
	// keeps it in teach.json so that Reteach can update them.
	Spec onnx.TeachModelSpec
}

// WriteModel writes the model directory: model.onnx, model.json and the
// statistics in teach.json (SpecFileName).
func (t *Taught) WriteModel(dir string) error {
	if err := onnx.WriteModelDir(dir, t.ONNX, t.Sidecar); err != nil {
		return err
	}
	return writeSpec(dir, t.Spec, t.ONNX)
}

// Teach builds and calibrates a model from good images. It needs the ONNX
// Runtime library (onnx.Init): calibration scores held-out images through
// the same runtime path the engine uses.
func Teach(imgs []Image, o Options) (*Taught, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if len(imgs) == 0 {
		return nil, fmt.Errorf("%w: none given", ErrNoImages)
	}
	for i, im := range imgs {
		if err := im.check(i); err != nil {
			return nil, err
		}
	}
	autoNote := "off"
	if o.AutoPrep {
		autoNote = autoPrep(imgs, &o)
	}
	prepared := make([]Image, len(imgs))
	for i, im := range imgs {
		prepared[i] = o.prep().Apply(im)
	}
	if o.Edge.Mode == edge.Auto {
		widths, pix := make([]int, len(prepared)), make([][]uint8, len(prepared))
		for i, im := range prepared {
			widths[i], pix[i] = im.W, im.Pix
		}
		o.Edge = edge.Learn(o.Edge, widths, pix)
	}
	prep := o.prep()
	edges := make([]rowEdges, len(prepared))
	for i := range prepared {
		edges[i].e0, edges[i].e1 = prep.Edges(prepared[i], nil, nil)
	}
	zoneNote := "off"
	if o.Zones > 0 && prep.Edge.Active() && o.ZoneWidth == 0 {
		var w int
		w, zoneNote = measureZoneWidth(prepared, edges, &o)
		if w > 0 {
			o.ZoneWidth = max((2*w+o.Zones-1)/o.Zones, 2)
		}
	}
	if !prep.Edge.Active() || o.ZoneWidth == 0 {
		o.Zones = 0
	}
	final, err := fit(prepared, edges, &o)
	if err != nil {
		return nil, err
	}
	t := &Taught{HeldOut: make([]float64, len(imgs))}
	// Held-out shading scores (Weight 1), fused after calibration.
	shadeHeld := make([]float64, len(imgs))
	brightHeld := make([]float64, len(imgs))
	calibration := "in-sample (one image)"
	folds := min(o.Folds, len(imgs))
	if len(imgs) < 2 {
		s, err := scoreWith(final, &o, imgs)
		if err != nil {
			return nil, err
		}
		copy(t.HeldOut, s)
	} else {
		calibration = fmt.Sprintf("%d-fold held out", folds)
		rng := rand.New(rand.NewPCG(o.Seed, 0xf01d))
		perm := rng.Perm(len(imgs))
		for f := range folds {
			var train []Image
			var trainEdges []rowEdges
			var test []int
			for pos, i := range perm {
				if pos%folds == f {
					test = append(test, i)
				} else {
					train = append(train, prepared[i])
					trainEdges = append(trainEdges, edges[i])
				}
			}
			m, err := fit(train, trainEdges, &o)
			if err != nil {
				return nil, fmt.Errorf("fold %d: %w", f, err)
			}
			held := make([]Image, len(test))
			for j, i := range test {
				held[j] = imgs[i]
			}
			s, err := scoreWith(m, &o, held)
			if err != nil {
				return nil, fmt.Errorf("fold %d: %w", f, err)
			}
			for j, i := range test {
				t.HeldOut[i] = s[j]
				if m.shadeOK || m.brightOK {
					pl := m.plane(prepared[i], &o)
					if m.shadeOK {
						shadeHeld[i] = shadeScore(pl, m.shade)
					}
					if m.brightOK {
						brightHeld[i] = brightScore(pl, m.bright, o.TileH)
					}
				}
			}
		}
	}
	// Quantile-rank fusion: the shading and brightness scores are each
	// weighed so that their calibrated level on held-out good images
	// equals the patch model's; an image scores the largest. Teach keeps
	// a member only when its held-out good scores are steady enough
	// (Options.EnsembleSpread).
	shadeNote, brightNote := "off", "off"
	patchHeld := slices.Clone(t.HeldOut)
	if final.shadeOK && len(imgs) >= 2 {
		if w, note := fuseWeight(patchHeld, shadeHeld, &o); w > 0 {
			final.spec.Shade = final.shade
			final.spec.Shade.Weight = float32(w)
			for i := range t.HeldOut {
				t.HeldOut[i] = max(t.HeldOut[i], w*shadeHeld[i])
			}
			shadeNote = fmt.Sprintf("cells %d px, absolute term %v, weight %.4g, %s", o.ShadeBlock, o.ShadeAbs, w, note)
		} else {
			shadeNote = "off: " + note
		}
	}
	if final.brightOK && len(imgs) >= 2 {
		if w, note := fuseWeight(patchHeld, brightHeld, &o); w > 0 {
			final.spec.Bright = final.bright
			final.spec.Bright.Weight = float32(w)
			for i := range t.HeldOut {
				t.HeldOut[i] = max(t.HeldOut[i], w*brightHeld[i])
			}
			brightNote = fmt.Sprintf("cells %d px, column-referenced, weight %.4g, %s", o.BrightBlock, w, note)
		} else {
			brightNote = "off: " + note
		}
	}
	t.Threshold = Threshold(t.HeldOut, o.TargetFAR)
	if len(imgs) < 2 {
		t.Threshold *= 1.25
	}
	t.ONNX, t.Sidecar, err = build(final, &o)
	if err != nil {
		return nil, err
	}
	t.Spec = final.spec
	th := t.Threshold
	t.Sidecar.Threshold = &th
	p := t.Sidecar.MadeBy.Params
	p["calibration"] = calibration
	p["folds"] = strconv.Itoa(folds)
	p["images"] = strconv.Itoa(len(imgs))
	var px int
	for _, im := range imgs {
		px += im.W * im.H
	}
	p["pixels"] = strconv.Itoa(px)
	mean, sd, mx := stats(t.HeldOut)
	p["held_out_scores"] = fmt.Sprintf("mean %.4g sd %.4g max %.4g", mean, sd, mx)
	if o.Zones > 0 && len(final.spec.ZoneBounds) > 0 {
		zoneNote = fmt.Sprintf("%d zones of %d px from the edge (%s)", o.Zones, o.ZoneWidth, zoneNote)
	}
	p["zones"] = zoneNote
	p["auto_prep"] = autoNote
	p["shade"] = shadeNote
	p["bright"] = brightNote
	return t, nil
}

// fuseWeight decides whether an ensemble member (shading, brightness)
// joins the patch model, from the held-out good scores of both: the
// member is kept when the spread of its own held-out scores (sd/mean)
// is at most o.EnsembleSpread, and weighed by shadeWeight. It returns 0
// when the member stays out, and a note for made_by.params either way.
func fuseWeight(patch, member []float64, o *Options) (float64, string) {
	m, sd, mx := stats(member)
	spread := math.Inf(1)
	if m > 0 {
		spread = sd / m
	}
	note := fmt.Sprintf("held-out good scores mean %.4g sd %.4g max %.4g, spread %.3g", m, sd, mx, spread)
	if o.EnsembleSpread > 0 && !(spread <= o.EnsembleSpread) {
		return 0, fmt.Sprintf("%s > %.3g (too unsteady on good material)", note, o.EnsembleSpread)
	}
	w := shadeWeight(patch, member, o.TargetFAR)
	if w <= 0 {
		return 0, note + ", no calibrated level"
	}
	return w, note
}

// build serialises a fitted model and its sidecar (threshold unset).
func build(f *fitted, o *Options) ([]byte, onnx.Sidecar, error) {
	b, err := onnx.BuildTeachModel(f.spec)
	if err != nil {
		return nil, onnx.Sidecar{}, err
	}
	params := map[string]string{
		"patch":         strconv.Itoa(o.Patch),
		"scales":        strconv.Itoa(o.Scales),
		"components":    strconv.Itoa(o.Components),
		"clusters":      strconv.Itoa(o.Clusters),
		"rare":          strconv.Itoa(o.RareClusters),
		"likelihood":    strconv.FormatBool(o.Likelihood),
		"edge":          fmt.Sprintf("%d clusters of %d components, band %d px", o.EdgeClusters, o.EdgeComponents, o.EdgeBand),
		"saturation":    fmt.Sprintf("level %d, fill %v", o.SatLevel, o.SatFill),
		"smooth":        strconv.Itoa(o.Smooth),
		"target_far":    strconv.FormatFloat(o.TargetFAR, 'g', -1, 64),
		"far_unit":      "false alarms per image (frame or tile as taught)",
		"seed":          strconv.FormatUint(o.Seed, 10),
		"memory":        "off",
		"discriminator": "off",
	}
	if o.Discriminator {
		n := 0
		for _, sc := range f.spec.Scales {
			if len(sc.Disc) > 0 {
				n++
			}
		}
		params["discriminator"] = fmt.Sprintf("logistic, good vs synthetic defects, on %d of %d scales", n, len(f.spec.Scales))
	}
	if o.Memory > 0 {
		var ms []string
		for _, sc := range f.spec.Scales {
			if k := len(sc.Clusters[0].Lambda); len(sc.Memory) > 0 {
				ms = append(ms, fmt.Sprintf("%d (D %.3g)", len(sc.Memory)/k, sc.MemoryD))
			}
		}
		params["memory"] = "nearest-neighbour coreset per scale: " + strings.Join(ms, ", ")
	}
	o.prep().params(params)
	var ex, np []string
	for i := range f.explained {
		ex = append(ex, fmt.Sprintf("%.3f", f.explained[i]))
		np = append(np, strconv.Itoa(f.patches[i]))
	}
	var fitted []string
	for _, sc := range f.spec.Scales {
		fitted = append(fitted, fmt.Sprintf("%d+%d", len(sc.Clusters), len(sc.Edge)))
	}
	params["clusters_fitted"] = strings.Join(fitted, ",") // web+edge per scale
	params["explained_variance"] = strings.Join(ex, ",")
	params["patches"] = strings.Join(np, ",")
	sc := onnx.Sidecar{
		Version: onnx.SidecarVersion,
		Input: onnx.InputSpec{
			Edges: f.spec.EdgesName,
			Name:  f.spec.InputName,
			Shape: []int64{-1, 1, int64(o.TileH), int64(o.TileW)},
			Mean:  []float64{f.mean},
			Std:   []float64{f.std},
		},
		Outputs: onnx.OutputSpec{AnomalyMap: f.spec.MapName, Score: f.spec.ScoreName},
		MadeBy: onnx.MadeBy{
			Tool: "webinspect teach",
			Method: fmt.Sprintf("PCA %dx%d patches at %d scale(s), %d cluster(s) of %d components, Hotelling T² + residual Q (min over clusters), %dx%d box, max",
				o.Patch, o.Patch, o.Scales, o.Clusters, o.Components, o.Smooth, o.Smooth),
			Created: time.Now().UTC().Format(time.RFC3339),
			Source:  o.Source,
			Runtime: onnx.RuntimeVersion(),
			Params:  params,
		},
	}
	return b, sc, nil
}

// scoreWith builds f's model, loads it through ONNX Runtime and returns the
// image scores of imgs.
func scoreWith(f *fitted, o *Options, imgs []Image) ([]float64, error) {
	b, sc, err := build(f, o)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "webinspect-teach-")
	if err != nil {
		return nil, fmt.Errorf("teach: temp model dir: %w", err)
	}
	defer os.RemoveAll(dir)
	if err := onnx.WriteModelDir(dir, b, sc); err != nil {
		return nil, err
	}
	m, err := onnx.Load(dir, onnx.DefaultModelOptions())
	if err != nil {
		return nil, err
	}
	s, err := NewScorer(m)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	out := make([]float64, len(imgs))
	for i, im := range imgs {
		v, _, err := s.Score(im, nil)
		if err != nil {
			return nil, err
		}
		out[i] = float64(v)
	}
	return out, nil
}

// Threshold returns the level good images exceed with probability far:
// the (1-far) quantile of a Gumbel distribution fitted to the scores by
// moments, and never below their empirical (1-far) quantile.
func Threshold(scores []float64, far float64) float64 {
	if len(scores) == 0 {
		return math.NaN()
	}
	mean, sd, _ := stats(scores)
	beta := sd * math.Sqrt(6) / math.Pi
	mu := mean - 0.5772156649*beta
	g := mu - beta*math.Log(-math.Log1p(-far))
	return max(g, Quantile(scores, 1-far))
}

// Quantile returns the q-quantile of v with linear interpolation between
// order statistics (v is not modified).
func Quantile(v []float64, q float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	slices.Sort(s)
	pos := q * float64(len(s)-1)
	i := int(math.Floor(pos))
	if i >= len(s)-1 {
		return s[len(s)-1]
	}
	f := pos - float64(i)
	return s[i] + f*(s[i+1]-s[i])
}

func stats(v []float64) (mean, sd, mx float64) {
	mx = math.Inf(-1)
	for _, x := range v {
		mean += x
		mx = max(mx, x)
	}
	mean /= float64(len(v))
	for _, x := range v {
		sd += (x - mean) * (x - mean)
	}
	if len(v) > 1 {
		sd = math.Sqrt(sd / float64(len(v)-1))
	}
	return mean, sd, mx
}

// autoPrep applies Options.AutoPrep to o and says what it chose.
func autoPrep(imgs []Image, o *Options) string {
	var ws, hs []int
	var means []float64
	for _, im := range imgs {
		ws, hs = append(ws, im.W), append(hs, im.H)
		var s float64
		for _, v := range im.Pix[:im.W*im.H] {
			s += float64(v)
		}
		means = append(means, s/float64(im.W*im.H))
	}
	slices.Sort(ws)
	slices.Sort(hs)
	var notes []string
	mw, mh := ws[len(ws)/2], hs[len(hs)/2]
	if o.ResizeW == 0 && (float64(ws[len(ws)-1]-ws[0]) > 0.1*float64(mw) || float64(hs[len(hs)-1]-hs[0]) > 0.1*float64(mh)) {
		o.ResizeW, o.ResizeH = max((mw+8)/16*16, 16), max((mh+8)/16*16, 16)
		notes = append(notes, fmt.Sprintf("sizes %d..%d × %d..%d: resize to %dx%d", ws[0], ws[len(ws)-1], hs[0], hs[len(hs)-1], o.ResizeW, o.ResizeH))
	}
	m, sd, _ := stats(means)
	if (o.Normalize == "" || o.Normalize == "none") && len(means) > 1 && sd > 0.15*m {
		o.Normalize = "image"
		notes = append(notes, fmt.Sprintf("image means %.0f±%.0f: normalise each image", m, sd))
	}
	if len(notes) == 0 {
		return "kept: one size, even lighting"
	}
	return strings.Join(notes, "; ")
}

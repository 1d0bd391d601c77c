package teach

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"

	"github.com/webinspect/webinspect/model/onnx"
)

// fitted is a taught Gaussian model before calibration.
type fitted struct {
	spec      onnx.TeachModelSpec
	mean, std float64 // input normalisation, in p/255 units
	explained []float64
	patches   []int
	// lut and fill turn prepared pixels into the graph's input.
	lut  [256]float32
	fill float32
	// shade is the shading model's statistics (Weight 0), when shadeOK;
	// spec.Shade stays off until calibration weighs it.
	shade   onnx.TeachShade
	shadeOK bool
	// bright likewise for the local-brightness model.
	bright   onnx.TeachBright
	brightOK bool
}

// plane returns a prepared image as the graph's input plane.
func (f *fitted) plane(im Image, o *Options) plane {
	p := plane{w: im.W, h: im.H, v: make([]float32, im.W*im.H)}
	for j, v := range im.Pix[:im.W*im.H] {
		p.v[j] = f.lut[v]
		if o.SatFill && int(v) >= o.SatLevel {
			p.v[j] = f.fill
		}
	}
	return p
}

// plane is a float32 image at one scale.
type plane struct {
	w, h int
	v    []float32
}

// down halves p with a 2×2 mean, dropping a last odd row/column, exactly as
// AveragePool 2×2 stride 2 does.
func (p plane) down() plane {
	o := plane{w: p.w / 2, h: p.h / 2}
	o.v = make([]float32, o.w*o.h)
	for y := range o.h {
		r0, r1 := p.v[2*y*p.w:], p.v[(2*y+1)*p.w:]
		for x := range o.w {
			o.v[y*o.w+x] = (r0[2*x] + r0[2*x+1] + r1[2*x] + r1[2*x+1]) * 0.25
		}
	}
	return o
}

// rowEdges is a prepared image's web extent per row (model/edge).
type rowEdges struct{ e0, e1 []int32 }

// fit teaches the Gaussian model on prepared images whose background is
// already filled (Prep.Edges).
func fit(imgs []Image, edges []rowEdges, o *Options) (*fitted, error) {
	var s, s2, n float64
	for _, im := range imgs {
		for _, v := range im.Pix[:im.W*im.H] {
			f := float64(v) / 255
			s += f
			s2 += f * f
		}
		n += float64(im.W * im.H)
	}
	if n == 0 {
		return nil, fmt.Errorf("%w: the images hold no pixels", ErrNoImages)
	}
	mean := s / n
	std := math.Sqrt(max(s2/n-mean*mean, 0))
	if std < 1e-4 {
		return nil, fmt.Errorf("%w: pixel standard deviation is %.2g of full scale", ErrDegenerate, std)
	}
	var lut [256]float32
	for i := range lut {
		lut[i] = float32((float64(i)/255 - mean) / std)
	}
	// The fill value for saturated pixels is the mean of the others.
	var fs, fn float64
	if o.SatFill {
		for _, im := range imgs {
			for _, v := range im.Pix[:im.W*im.H] {
				if int(v) < o.SatLevel {
					fs += float64(lut[v])
					fn++
				}
			}
		}
	}
	fill := float32(0)
	if fn > 0 {
		fill = float32(fs / fn)
	}
	f := &fitted{mean: mean, std: std, lut: lut, fill: fill}
	planes := make([]plane, len(imgs))
	for i, im := range imgs {
		planes[i] = f.plane(im, o)
	}
	if b := o.ShadeBlock; b > 0 && o.TileH%b == 0 && o.TileW%b == 0 {
		f.shade, f.shadeOK = fitShade(planes, b, o.ShadeAbs)
	}
	if b := o.BrightBlock; b > 0 && o.TileH%b == 0 && o.TileW%b == 0 {
		f.bright, f.brightOK = fitBright(planes, b, o.TileH)
	}
	// Saturated means p ≥ SatLevel; the graph tests x > level, so the
	// level sits half a grey level below.
	sat := float32(((float64(o.SatLevel)-0.5)/255 - mean) / std)
	f.spec = onnx.TeachModelSpec{
		InputName: "input", MapName: "anomaly_map", ScoreName: "pred_score",
		Height: o.TileH, Width: o.TileW, Patch: o.Patch, Smooth: o.Smooth,
		EdgeBand: o.EdgeBand, SatLevel: sat, SatFill: o.SatFill, FillValue: fill,
	}
	var sides []edgeSides
	if o.Zones > 0 && o.ZoneWidth > 0 && len(edges) == len(imgs) {
		f.spec.EdgesName = "edges"
		for z := range o.Zones {
			f.spec.ZoneBounds = append(f.spec.ZoneBounds, float32((z+1)*o.ZoneWidth))
		}
		for i, im := range imgs {
			sides = append(sides, newEdgeSides(edges[i], im.W))
		}
	}
	rng := rand.New(rand.NewPCG(o.Seed, 0x7eac4))
	for si := range o.Scales {
		if si > 0 {
			for i := range planes {
				planes[i] = planes[i].down()
			}
		}
		sc, expl, np, err := fitScale(planes, si, sat, o, rng)
		if err != nil {
			return nil, fmt.Errorf("scale %d: %w", si, err)
		}
		if len(f.spec.ZoneBounds) > 0 {
			if sc.Zones, err = fitZones(planes, sides, si, sc.Clusters[0], f.spec.ZoneBounds, o, rng); err != nil {
				return nil, fmt.Errorf("scale %d: %w", si, err)
			}
		}
		f.spec.Scales = append(f.spec.Scales, sc)
		f.explained = append(f.explained, expl)
		f.patches = append(f.patches, np)
	}
	return f, nil
}

// fitScale samples patches, groups them into o.Clusters clusters
// (k-means on the raw patches: web, web edge and off-web band differ
// mostly in brightness) and fits each cluster's principal components. With
// o.EdgeClusters > 0 the patches near saturated pixels (the web-edge band
// next to an off-web background) are modelled apart. It returns the
// scale's model, the fraction of variance the components explain
// (weighted over clusters) and the number of patches used.
func fitScale(planes []plane, si int, sat float32, o *Options, rng *rand.Rand) (onnx.TeachScale, float64, int, error) {
	P := o.Patch
	pp := P * P
	e := o.EdgeBand >> si
	total := 0
	for _, p := range planes {
		if p.w >= P && p.h >= P {
			total += (p.w - P + 1) * (p.h - P + 1)
		}
	}
	if total < pp+1 {
		return onnx.TeachScale{}, 0, 0, fmt.Errorf("%w: %d patch positions of %d×%d, want more than %d", ErrNoImages, total, P, P, pp)
	}
	prob := min(1, float64(o.MaxPatches)/float64(total))
	var Xw, Xe []float32
	for _, p := range planes {
		if p.w < P || p.h < P {
			continue
		}
		var near func(x, y int) bool
		if o.EdgeClusters > 0 {
			near = satWindow(p, sat, e, P)
		}
		for y := 0; y+P <= p.h; y++ {
			for x := 0; x+P <= p.w; x++ {
				if prob < 1 && rng.Float64() >= prob {
					continue
				}
				dst := &Xw
				if near != nil && near(x, y) {
					dst = &Xe
				}
				for dy := range P {
					*dst = append(*dst, p.v[(y+dy)*p.w+x:(y+dy)*p.w+x+P]...)
				}
			}
		}
	}
	n := (len(Xw) + len(Xe)) / pp
	if len(Xw)/pp < 2*pp {
		return onnx.TeachScale{}, 0, 0, fmt.Errorf("%w: only %d web patches sampled, want at least %d", ErrNoImages, len(Xw)/pp, 2*pp)
	}
	var sc onnx.TeachScale
	cl, sizes, explained, err := fitClusters(Xw, pp, o.Clusters, o, rng)
	if err != nil {
		return sc, 0, 0, err
	}
	sc.Clusters = cl
	if o.Memory > 0 {
		sc.Memory, sc.MemoryD = fitMemory(cl[0], Xw, pp, o.Memory, rng)
	}
	if o.Discriminator {
		if w, b, ok := fitDisc(planes, cl[0], P, rng); ok {
			sc.Disc, sc.DiscBias = w, b
		}
	}
	// An edge band seen too little stays with the web model.
	if o.EdgeClusters > 0 && len(Xe)/pp >= 8*pp {
		eo := *o
		eo.Components, eo.RareClusters = o.EdgeComponents, 0
		ecl, esizes, _, err := fitClusters(Xe, pp, o.EdgeClusters, &eo, rng)
		if err != nil {
			return sc, 0, 0, err
		}
		sc.Edge = ecl
		if o.Likelihood {
			likelihoodWeights(sc.Edge, esizes, pp)
		}
	}
	if o.Likelihood {
		likelihoodWeights(sc.Clusters, sizes, pp)
	}
	return sc, explained, n, nil
}

// satWindow reports, for a patch at (x, y), whether a pixel above sat lies
// in the patch grown by e on every side (clipped to the plane), as the
// graph's MaxPool computes it.
func satWindow(p plane, sat float32, e, P int) func(x, y int) bool {
	w1 := p.w + 1
	cum := make([]int32, w1*(p.h+1))
	for y := range p.h {
		var row int32
		for x := range p.w {
			if p.v[y*p.w+x] > sat {
				row++
			}
			cum[(y+1)*w1+x+1] = cum[y*w1+x+1] + row
		}
	}
	return func(x, y int) bool {
		x0, y0 := max(x-e, 0), max(y-e, 0)
		x1, y1 := min(x+P+e, p.w), min(y+P+e, p.h)
		return cum[y1*w1+x1]-cum[y0*w1+x1]-cum[y1*w1+x0]+cum[y0*w1+x0] > 0
	}
}

// fitClusters groups the patches X (rows of pp values) into k clusters
// and fits each one's Gaussian, then adds o.RareClusters clusters fitted
// on the patches explained worst. It returns the clusters, their sizes
// and the variance explained.
func fitClusters(X []float32, pp, k int, o *Options, rng *rand.Rand) ([]onnx.TeachCluster, []int, float64, error) {
	n := len(X) / pp
	assign := make([]int, n)
	if k > 1 {
		kmeans(X, pp, k, assign, rng)
	}
	var cl []onnx.TeachCluster
	var sizes []int
	var explained, weight float64
	for c := range k {
		var idx []int
		for i, a := range assign {
			if a == c {
				idx = append(idx, i)
			}
		}
		// A cluster too small for a covariance is left out; its patches
		// are scored by the others.
		if len(idx) < 2*pp && k > 1 {
			continue
		}
		tc, ex, err := fitCluster(X, idx, pp, o.Components)
		if err != nil {
			return nil, nil, 0, err
		}
		cl = append(cl, tc)
		sizes = append(sizes, len(idx))
		explained += ex * float64(len(idx))
		weight += float64(len(idx))
	}
	if len(cl) == 0 {
		return nil, nil, 0, fmt.Errorf("%w: no cluster has %d patches", ErrNoImages, 2*pp)
	}
	// Rare structures of good material (the web edge, a selvage) are too
	// few for a cluster of their own: fit extra clusters on the good
	// patches the model so far explains worst.
	scores := make([]float64, n)
	for range o.RareClusters {
		for i := range n {
			scores[i] = patchScore(cl, X[i*pp:(i+1)*pp])
		}
		cut := Quantile(scores, 1-rareFraction)
		var idx []int
		for i, v := range scores {
			if v >= cut {
				idx = append(idx, i)
			}
		}
		if len(idx) < 2*pp {
			break
		}
		tc, _, err := fitCluster(X, idx, pp, o.Components)
		if err != nil {
			return nil, nil, 0, err
		}
		cl = append(cl, tc)
		sizes = append(sizes, len(idx))
	}
	return cl, sizes, explained / weight, nil
}

// rareFraction is the share of good patches an extra "rare" cluster is
// fitted on.
const rareFraction = 0.01

// patchScore is the graph's per-patch score: the minimum over clusters of
// T²/K + Q/Q0 or the cluster's own weights (before clipping at 0).
func patchScore(cl []onnx.TeachCluster, p []float32) float64 {
	pp := len(p)
	best := math.Inf(1)
	for _, c := range cl {
		K := len(c.Lambda)
		var t2, lt, d2 float64
		for k := range K {
			y := float64(c.Bias[k])
			w := c.Weights[k*pp : (k+1)*pp]
			for j, v := range p {
				y += float64(w[j]) * float64(v)
			}
			t2 += y * y
			lt += float64(c.Lambda[k]) * y * y
		}
		for j, v := range p {
			d := float64(v) - float64(c.Mean[j])
			d2 += d * d
		}
		if c.TWeight > 0 {
			best = min(best, float64(c.TWeight)*t2+float64(c.QWeight)*(d2-lt)+float64(c.Offset))
		} else {
			best = min(best, t2/float64(K)+(d2-lt)/float64(c.Q0))
		}
	}
	return best
}

// lambdaFloor bounds component variances from below, in units of the
// input's global variance (the graph sees unit-variance pixels): a cluster
// of saturated, constant patches must not make sensor noise infinitely
// unlikely.
const lambdaFloor = 1e-3

// fitCluster fits the Gaussian of the patches X[idx] (rows of pp values).
func fitCluster(X []float32, idx []int, pp, K int) (onnx.TeachCluster, float64, error) {
	nf := float64(len(idx))
	m := make([]float64, pp)
	for _, i := range idx {
		for j, v := range X[i*pp : (i+1)*pp] {
			m[j] += float64(v)
		}
	}
	for j := range m {
		m[j] /= nf
	}
	cov := make([]float64, pp*pp)
	d := make([]float64, pp)
	for _, i := range idx {
		for j, v := range X[i*pp : (i+1)*pp] {
			d[j] = float64(v) - m[j]
		}
		for a, da := range d {
			c := cov[a*pp:]
			for b := a; b < pp; b++ {
				c[b] += da * d[b]
			}
		}
	}
	for a := range pp {
		for b := a; b < pp; b++ {
			v := cov[a*pp+b] / nf
			cov[a*pp+b], cov[b*pp+a] = v, v
		}
	}
	vals, vecs := symEigen(cov, pp)
	var trace float64
	for _, v := range vals {
		trace += max(v, 0)
	}
	tc := onnx.TeachCluster{
		Weights: make([]float32, K*pp), Bias: make([]float32, K),
		Lambda: make([]float32, K), Mean: make([]float32, pp),
	}
	for j, v := range m {
		tc.Mean[j] = float32(v)
	}
	var kept float64
	for k := range K {
		l := max(vals[k], lambdaFloor)
		kept += max(vals[k], 0)
		inv := 1 / math.Sqrt(l)
		var b float64
		for j := range pp {
			w := vecs[j*pp+k] * inv
			tc.Weights[k*pp+j] = float32(w)
			b -= w * m[j]
		}
		tc.Bias[k] = float32(b)
		tc.Lambda[k] = float32(l)
	}
	tc.Q0 = float32(max(trace-kept, lambdaFloor*float64(pp-K+1)))
	ex := 1.0
	if trace > 0 {
		ex = kept / trace
	}
	return tc, ex, nil
}

// kmeans clusters the rows of X (pp values each) into k groups: k-means++
// seeding and Lloyd iterations on a subsample, then every row is assigned
// to its nearest centre.
func kmeans(X []float32, pp, k int, assign []int, rng *rand.Rand) {
	n := len(X) / pp
	sub := make([]int, 0, min(n, 20000))
	if n <= cap(sub) {
		for i := range n {
			sub = append(sub, i)
		}
	} else {
		for range cap(sub) {
			sub = append(sub, rng.IntN(n))
		}
	}
	row := func(i int) []float32 { return X[i*pp : (i+1)*pp] }
	dist := func(a []float32, c []float64) float64 {
		var s float64
		for j, v := range a {
			d := float64(v) - c[j]
			s += d * d
		}
		return s
	}
	centres := make([][]float64, 0, k)
	first := row(sub[rng.IntN(len(sub))])
	c0 := make([]float64, pp)
	for j, v := range first {
		c0[j] = float64(v)
	}
	centres = append(centres, c0)
	d2 := make([]float64, len(sub))
	for len(centres) < k {
		var sum float64
		for s, i := range sub {
			best := math.Inf(1)
			for _, c := range centres {
				best = min(best, dist(row(i), c))
			}
			d2[s] = best
			sum += best
		}
		if sum == 0 {
			break
		}
		t := rng.Float64() * sum
		pick := len(sub) - 1
		for s, v := range d2 {
			if t -= v; t <= 0 {
				pick = s
				break
			}
		}
		c := make([]float64, pp)
		for j, v := range row(sub[pick]) {
			c[j] = float64(v)
		}
		centres = append(centres, c)
	}
	nearest := func(i int) int {
		best, bi := math.Inf(1), 0
		for ci, c := range centres {
			if d := dist(row(i), c); d < best {
				best, bi = d, ci
			}
		}
		return bi
	}
	for iter := 0; iter < 20; iter++ {
		sums := make([][]float64, len(centres))
		counts := make([]int, len(centres))
		for ci := range sums {
			sums[ci] = make([]float64, pp)
		}
		for _, i := range sub {
			ci := nearest(i)
			counts[ci]++
			for j, v := range row(i) {
				sums[ci][j] += float64(v)
			}
		}
		for ci := range centres {
			if counts[ci] > 0 {
				for j := range pp {
					centres[ci][j] = sums[ci][j] / float64(counts[ci])
				}
			}
		}
	}
	for i := range n {
		assign[i] = nearest(i)
	}
}

// symEigen returns the eigenvalues of the symmetric n×n matrix a (row-major)
// in descending order and the eigenvectors as the columns of an n×n
// matrix, by cyclic Jacobi rotations. a is overwritten.
func symEigen(a []float64, n int) ([]float64, []float64) {
	v := make([]float64, n*n)
	for i := range n {
		v[i*n+i] = 1
	}
	for sweep := 0; sweep < 100; sweep++ {
		var off, diag float64
		for i := range n {
			diag += a[i*n+i] * a[i*n+i]
			for j := i + 1; j < n; j++ {
				off += a[i*n+j] * a[i*n+j]
			}
		}
		if off <= 1e-24*diag || off == 0 {
			break
		}
		for p := 0; p < n; p++ {
			for q := p + 1; q < n; q++ {
				apq := a[p*n+q]
				if math.Abs(apq) < 1e-300 {
					continue
				}
				theta := (a[q*n+q] - a[p*n+p]) / (2 * apq)
				t := math.Copysign(1, theta) / (math.Abs(theta) + math.Sqrt(theta*theta+1))
				c := 1 / math.Sqrt(t*t+1)
				s := t * c
				for k := range n {
					akp, akq := a[k*n+p], a[k*n+q]
					a[k*n+p] = c*akp - s*akq
					a[k*n+q] = s*akp + c*akq
				}
				for k := range n {
					apk, aqk := a[p*n+k], a[q*n+k]
					a[p*n+k] = c*apk - s*aqk
					a[q*n+k] = s*apk + c*aqk
				}
				for k := range n {
					vkp, vkq := v[k*n+p], v[k*n+q]
					v[k*n+p] = c*vkp - s*vkq
					v[k*n+q] = s*vkp + c*vkq
				}
			}
		}
	}
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(i, j int) bool { return a[idx[i]*n+idx[i]] > a[idx[j]*n+idx[j]] })
	vals := make([]float64, n)
	vecs := make([]float64, n*n)
	for c, i := range idx {
		vals[c] = a[i*n+i]
		for r := range n {
			vecs[r*n+c] = v[r*n+i]
		}
	}
	return vals, vecs
}

// likelihoodWeights turns the clusters' scores into a hard Gaussian
// mixture's negative log-likelihood per pixel, relative to the largest
// cluster's mean: with σ² = Q0/(Patch²-K) the residual variance,
//
//	s_c = [T² + Q/σ² + Σ log λ_k + (Patch²-K) log σ² - 2 log π_c] / Patch² - s_ref
//
// so that a patch pays for the breadth and rarity of the cluster that
// explains it, and good patches of the largest cluster score ≈ 0.
func likelihoodWeights(cl []onnx.TeachCluster, sizes []int, pp int) {
	var total float64
	for _, n := range sizes {
		total += float64(n)
	}
	ref, refN := 0.0, -1
	logs := make([]float64, len(cl))
	for i := range cl {
		c := &cl[i]
		K := len(c.Lambda)
		r := float64(pp - K)
		sigma2 := float64(c.Q0) / max(r, 1)
		var l float64
		for _, v := range c.Lambda {
			l += math.Log(float64(v))
		}
		l += r*math.Log(sigma2) - 2*math.Log(float64(sizes[i])/total)
		logs[i] = l / float64(pp)
		c.TWeight = float32(1 / float64(pp))
		c.QWeight = float32(1 / sigma2 / float64(pp))
		if sizes[i] > refN {
			refN, ref = sizes[i], 1+logs[i]
		}
	}
	for i := range cl {
		cl[i].Offset = float32(logs[i] - ref)
	}
}

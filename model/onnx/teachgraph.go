package onnx

import (
	"fmt"
	"math"

	pb "github.com/advancedclimatesystems/gonnx/onnx"
	"google.golang.org/protobuf/proto"
)

// MaxTeachScales bounds TeachModelSpec.Scales.
const MaxTeachScales = 4

// TeachCluster is one Gaussian model of good patches at one scale: a bank
// of whitened principal components of Patch×Patch patches and the
// constants of its residual.
//
// For a patch p (Patch² pixels, row-major) with the cluster's mean patch m,
// the component responses are y_k = W_k·p + B_k, where W_k = v_k/√λ_k and
// B_k = -W_k·m for the k-th principal component v_k with variance λ_k. Then
//
//	T² = Σ_k y_k²                          (Hotelling, diagonal in the PCA basis)
//	Q  = |p - m|² - Σ_k λ_k y_k²            (squared residual outside the subspace)
//	s  = T²/K + Q/Q0                        (≈ 2 on good material)
//
// and |p - m|² = Σ p_j² - 2 m·p + m·m comes from a box mean of p² and
// one more filter (m) in the same Conv.
type TeachCluster struct {
	// Weights holds K×Patch² whitened filters, row k = v_k/√λ_k.
	Weights []float32
	// Bias holds K values, -W_k·m.
	Bias []float32
	// Lambda holds the K component variances λ_k.
	Lambda []float32
	// Mean is the Patch² mean patch m.
	Mean []float32
	// Q0 is the mean residual Q on good material (> 0).
	Q0 float32
	// TWeight, QWeight and Offset, when TWeight > 0, replace the score
	// by s = TWeight·T² + QWeight·Q + Offset (e.g. a Gaussian mixture's
	// negative log-likelihood per pixel, whose Offset carries the cluster's
	// log-determinant and prior). TWeight 0 means T²/K + Q/Q0.
	TWeight, QWeight, Offset float32
}

// TeachScale is the model at one scale: one or more clusters of good
// patches (e.g. web, web edge, off-web band), each with its own Gaussian.
// A patch scores the minimum over the clusters.
type TeachScale struct {
	Clusters []TeachCluster
	// Zones, when the spec has ZoneBounds, hold one Gaussian per CD zone
	// near the web edge, in the component space of Clusters[0]: zone z
	// scores a patch by Σ_k (y_k - Mu_k)² InvVar_k / K + Q/Q0 with y and Q
	// of Clusters[0]. Pixels whose distance from the edge is below
	// ZoneBounds[z] (and not below ZoneBounds[z-1]) take zone z's score
	// instead of the clusters'.
	Zones []TeachZone
	// Edge, when not empty, are the clusters of the web-edge band: patches
	// within EdgeBand pixels of saturated (off-web) pixels score against
	// these instead of Clusters. All clusters share K.
	Edge []TeachCluster
	// Memory, when not empty, is a nearest-neighbour memory of good
	// patches (a PatchCore-style coreset) in the whitened component space
	// of Clusters[0]: M rows of K values. The web patch score is then
	//
	//	s = min_j |y - Memory_j|² / MemoryD + Q/Q0
	//
	// (y and Q of Clusters[0]) instead of the clusters' minimum: a patch
	// scores by its distance to the nearest good patch seen, not to one
	// Gaussian's mean, so good material of several kinds (textures, part
	// borders) is not charged for lying between them. In the graph the
	// distance is |y|² + min_j (|m_j|² - 2 m_j·y): one 1×1 Conv of M
	// outputs over y and a ReduceMin. Zones and edge clusters still
	// replace it where they apply.
	Memory []float32
	// MemoryD is the mean nearest-neighbour distance² of good patches to
	// the memory (> 0), so the memory term is ≈ 1 on good material like
	// T²/K.
	MemoryD float32
	// Disc, when not empty, is a logistic discriminator of good patches
	// against synthetic defects, on Clusters[0]'s features: 2K+1 weights
	// over (y_k² for k < K, y_k for k < K, Q) and DiscBias, in units of
	// the patch score. The graph adds max(0, Disc·f + DiscBias) to the
	// patch's score (after clusters, memory and zones).
	Disc     []float32
	DiscBias float32
}

// MaxTeachMemory bounds the rows of TeachScale.Memory.
const MaxTeachMemory = 4096

// TeachZone is the diagonal Gaussian of one CD zone in a cluster's
// whitened component space (see TeachScale.Zones).
type TeachZone struct {
	// Mu and InvVar hold K values each: the zone's mean response and the
	// inverse of its variance per component.
	Mu, InvVar []float32
	// Q0 is the zone's mean residual on good material (> 0).
	Q0 float32
}

// TeachModelSpec describes the taught scoring graph BuildTeachModel writes.
// Per scale s (s = 0 is the input resolution, each further scale halves it
// with a 2×2 AveragePool), with C clusters of K_c components each:
//
//	x_s ─┬─ Conv([W; m_c], [B; 0]) [ΣK_c + C] = y ─┬─ Mul(y,y) ─┐
//	     │                                        └────────────┤
//	     └─ Mul(x,x) ─ AveragePool Patch×Patch ────────────────┴─ Concat ─ Conv 1×1 ─▶ s_c [C]
//	  ─ ReduceMin over C ─ Relu ─ Pad(edge, Patch/2) ─ AveragePool Smooth×Smooth ─ Resize ×2^s (linear) ─▶ map_s
//
// With SatFill, x_0 = Where(x > SatLevel, FillValue, x) first. With
// web-edge clusters (TeachScale.Edge) the C channels are split into
// web and edge; each takes its minimum and the edge value replaces the web
// value where MaxPool(x_s > SatLevel) over the patch grown by EdgeBand>>s
// is 1 (the band next to a saturated off-web region).
//
// The convolutions are unpadded: only whole patches of the tile are
// scored and the Patch/2 border takes the score of its nearest whole patch
// (a mirrored or zero border would be scored as an anomaly). anomaly map =
// mean over scales of map_s [N,1,H,W]; score = ReduceMax of the map [N].
// H and W must be multiples of 2^(Scales-1).
type TeachModelSpec struct {
	// InputName, MapName and ScoreName name the graph's input and outputs.
	InputName, MapName, ScoreName string
	// Height and Width are the tile size the graph takes.
	Height, Width int
	// Patch is the filter side, odd 3..15.
	Patch int
	// Smooth is the AveragePool box side applied at each scale, odd 1..31.
	Smooth int
	// Scales holds one model per scale, 1..MaxTeachScales; each cluster
	// has its own number of components K ≥ 1.
	Scales []TeachScale
	// EdgeBand is how far beyond its own pixels, at the input resolution,
	// a patch looks for saturated pixels to count as web-edge band; it
	// halves with every scale. Used only by scales with Edge clusters.
	EdgeBand int
	// SatLevel is the input value (after the sidecar normalisation) above
	// which a pixel counts as saturated off-web background.
	SatLevel float32
	// SatFill replaces saturated input pixels by FillValue (the good web's
	// mean) before anything else, so the off-web background reads as flat
	// web and the web edge as the end of the texture rather than a step.
	SatFill   bool
	FillValue float32
	// EdgesName, when set, adds the input [N,1,H,2] holding every row's
	// web edges in tile columns (onnx.InputSpec.Edges). The map is zeroed
	// off the web, and with ZoneBounds each pixel scores against the zone
	// its distance from the nearest edge falls in:
	//
	//	d = min(x - left, right - 1 - x)     (x the patch centre, input pixels)
	//	zone z where ZoneBounds[z-1] ≤ d < ZoneBounds[z]; the clusters beyond the last
	EdgesName string
	// ZoneBounds are ascending distance bounds in input pixels, 0..16;
	// every scale then has len(ZoneBounds) Zones.
	ZoneBounds []float32
	// Shade, when Shade.Block > 0, adds the low-frequency shading model
	// (TeachShade) to the map by a per-pixel maximum.
	Shade TeachShade
	// Bright, when Bright.Block > 0, adds the column-referenced local
	// brightness model (TeachBright) to the map by a per-pixel maximum.
	Bright TeachBright
}

// TeachBright is the column-referenced local-brightness model: blobs,
// knots and stains brighter or darker than their column. A line-scan
// camera's columns differ in brightness (lighting, lens, the web's own
// stripes) but each column is steady along the web, so each cell is
// referenced to its own column's mean over the tile:
//
//	L = AveragePool(x, Block, stride Block)
//	s = Weight · (L - ReduceMean_rows(L))² · InvVar
//
// brought back to the tile by linear Resize; InvVar is the good
// material's, Weight set by teach as for TeachShade. Height and Width must
// be multiples of Block.
type TeachBright struct {
	Block          int
	InvVar, Weight float32
}

// TeachShade is the low-frequency shading model: large, low-contrast
// areas (uneven shading, stains wider than a patch) that the patch model
// cannot see because each patch of them looks like good texture. The
// input (after SatFill) is averaged over Block×Block cells,
//
//	L  = AveragePool(x, Block, stride Block)      the shading at that scale
//	Lb = AveragePool(L, 3×3, pad 1)               its neighbourhood
//	s  = Weight · ((L - Mu)²·InvVarAbs + (L - Lb)²·InvVarRel) / 2
//
// (a cell against the taught shading, and against its own neighbours),
// brought back to the tile by linear Resize. Mu, InvVarAbs and InvVarRel
// are the good material's; Weight puts s on the patch model's scale (teach
// sets it so both reach the calibrated level equally often on good
// material), and the map is max(patch map, s). Height and Width must be
// multiples of Block.
type TeachShade struct {
	Block                            int
	Mu, InvVarAbs, InvVarRel, Weight float32
}

// Validate names the first bad field and its allowed range.
func (s *TeachModelSpec) Validate() error {
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("onnx: %w: TeachModelSpec.%s %s", ErrOptions, field, fmt.Sprintf(format, args...))
	}
	if err := checkIONames(bad, s.InputName, s.MapName, s.ScoreName); err != nil {
		return err
	}
	ns := len(s.Scales)
	switch {
	case ns < 1 || ns > MaxTeachScales:
		return bad("Scales", "has %d scales, want 1..%d", ns, MaxTeachScales)
	case s.Patch < 3 || s.Patch > 15 || s.Patch%2 == 0:
		return bad("Patch", "is %d, want odd 3..15", s.Patch)
	case s.Smooth < 1 || s.Smooth > 31 || s.Smooth%2 == 0:
		return bad("Smooth", "is %d, want odd 1..31", s.Smooth)
	case s.Height < 1 || s.Height > MaxTileSide:
		return bad("Height", "is %d, want 1..%d", s.Height, MaxTileSide)
	case s.Width < 1 || s.Width > MaxTileSide:
		return bad("Width", "is %d, want 1..%d", s.Width, MaxTileSide)
	}
	f := 1 << (ns - 1)
	if s.Height%f != 0 || s.Width%f != 0 {
		return bad("Height/Width", "are %d×%d, want multiples of %d for %d scales", s.Height, s.Width, f, ns)
	}
	// The edge pad needs a whole patch at the coarsest scale.
	if r := s.Patch / 2; s.Height/f <= 2*r || s.Width/f <= 2*r {
		return bad("Height/Width", "are %d×%d, too small for patch %d at %d scales (coarsest scale %d×%d)",
			s.Height, s.Width, s.Patch, ns, s.Height/f, s.Width/f)
	}
	pp := s.Patch * s.Patch
	if b := s.Shade.Block; b != 0 {
		if b < 2 || b > 64 || s.Height%b != 0 || s.Width%b != 0 {
			return bad("Shade.Block", "is %d, want 2..64 dividing the tile %d×%d (or 0: no shading model)", b, s.Height, s.Width)
		}
		if math.IsNaN(float64(s.Shade.Mu)) || math.IsInf(float64(s.Shade.Mu), 0) {
			return bad("Shade.Mu", "is %v, want a finite number", s.Shade.Mu)
		}
		for _, v := range []float32{s.Shade.InvVarAbs, s.Shade.InvVarRel, s.Shade.Weight} {
			if !(v >= 0) || math.IsInf(float64(v), 0) {
				return bad("Shade", "holds %v, want finite numbers ≥ 0 for InvVarAbs, InvVarRel and Weight", v)
			}
		}
	}
	if b := s.Bright.Block; b != 0 {
		if b < 2 || b > 64 || s.Height%b != 0 || s.Width%b != 0 {
			return bad("Bright.Block", "is %d, want 2..64 dividing the tile %d×%d (or 0: no brightness model)", b, s.Height, s.Width)
		}
		for _, v := range []float32{s.Bright.InvVar, s.Bright.Weight} {
			if !(v >= 0) || math.IsInf(float64(v), 0) {
				return bad("Bright", "holds %v, want finite numbers ≥ 0", v)
			}
		}
	}
	if s.EdgeBand < 0 || s.EdgeBand > 256 {
		return bad("EdgeBand", "is %d, want 0..256", s.EdgeBand)
	}
	for _, v := range []float32{s.SatLevel, s.FillValue} {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return bad("SatLevel/FillValue", "is %v, want a finite number", v)
		}
	}
	if len(s.ZoneBounds) > 16 || (len(s.ZoneBounds) > 0 && s.EdgesName == "") {
		return bad("ZoneBounds", "has %d bounds with EdgesName %q, want 0..16 and an edges input", len(s.ZoneBounds), s.EdgesName)
	}
	if s.EdgesName != "" && (s.EdgesName == s.InputName || s.EdgesName == s.MapName || s.EdgesName == s.ScoreName) {
		return bad("EdgesName", "is %q, want a name distinct from the input and outputs", s.EdgesName)
	}
	for i, b := range s.ZoneBounds {
		if !(b > 0) || math.IsInf(float64(b), 0) || (i > 0 && !(b > s.ZoneBounds[i-1])) {
			return bad(fmt.Sprintf("ZoneBounds[%d]", i), "is %v, want finite, > 0 and ascending", b)
		}
	}
	for i, sc := range s.Scales {
		if len(sc.Zones) != len(s.ZoneBounds) {
			return bad(fmt.Sprintf("Scales[%d].Zones", i), "has %d zones, want %d (one per ZoneBounds)", len(sc.Zones), len(s.ZoneBounds))
		}
		if len(sc.Clusters) == 0 {
			continue
		}
		k := len(sc.Clusters[0].Lambda)
		if n := len(sc.Disc); n > 0 {
			if n != 2*k+1 {
				return bad(fmt.Sprintf("Scales[%d].Disc", i), "has %d values, want 2K+1 = %d", n, 2*k+1)
			}
			for _, v := range append(append([]float32(nil), sc.Disc...), sc.DiscBias) {
				if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
					return bad(fmt.Sprintf("Scales[%d].Disc", i), "holds %v, want finite numbers", v)
				}
			}
		}
		if n := len(sc.Memory); n > 0 {
			at := fmt.Sprintf("Scales[%d].Memory", i)
			if n%k != 0 || n/k > MaxTeachMemory {
				return bad(at, "has %d values, want M×K with K = %d (Clusters[0]) and M ≤ %d", n, k, MaxTeachMemory)
			}
			if !(sc.MemoryD > 0) || math.IsInf(float64(sc.MemoryD), 0) {
				return bad(fmt.Sprintf("Scales[%d].MemoryD", i), "is %v, want a finite number > 0", sc.MemoryD)
			}
			for _, v := range sc.Memory {
				if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
					return bad(at, "holds %v, want finite numbers", v)
				}
			}
		}
		for j, z := range sc.Zones {
			at := fmt.Sprintf("Scales[%d].Zones[%d]", i, j)
			if len(z.Mu) != k || len(z.InvVar) != k {
				return bad(at, "has %d/%d values, want K = %d (Clusters[0])", len(z.Mu), len(z.InvVar), k)
			}
			if !(z.Q0 > 0) || math.IsInf(float64(z.Q0), 0) {
				return bad(at+".Q0", "is %v, want a finite number > 0", z.Q0)
			}
			for _, v := range append(append([]float32(nil), z.Mu...), z.InvVar...) {
				if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
					return bad(at, "holds %v, want finite numbers", v)
				}
			}
		}
	}
	if len(s.Scales[0].Clusters) == 0 {
		return bad("Scales[0].Clusters", "is empty, want 1 or more")
	}
	for i, sc := range s.Scales {
		if len(sc.Clusters) < 1 || len(sc.Clusters) > 16 {
			return bad(fmt.Sprintf("Scales[%d].Clusters", i), "has %d clusters, want 1..16", len(sc.Clusters))
		}
		if len(sc.Edge) > 16 {
			return bad(fmt.Sprintf("Scales[%d].Edge", i), "has %d clusters, want 0..16", len(sc.Edge))
		}
		for j, c := range append(append([]TeachCluster(nil), sc.Clusters...), sc.Edge...) {
			at := fmt.Sprintf("Scales[%d].Clusters[%d]", i, j)
			if j >= len(sc.Clusters) {
				at = fmt.Sprintf("Scales[%d].Edge[%d]", i, j-len(sc.Clusters))
			}
			switch {
			case len(c.Lambda) < 1 || len(c.Lambda) > pp:
				return bad(at+".Lambda", "has %d values, want 1..%d", len(c.Lambda), pp)
			case len(c.Weights) != len(c.Lambda)*pp:
				return bad(at+".Weights", "has %d values, want K×Patch² = %d", len(c.Weights), len(c.Lambda)*pp)
			case len(c.Bias) != len(c.Lambda):
				return bad(at+".Bias", "has %d values, want K = %d", len(c.Bias), len(c.Lambda))
			case len(c.Mean) != pp:
				return bad(at+".Mean", "has %d values, want Patch² = %d", len(c.Mean), pp)
			case !(c.Q0 > 0) || math.IsInf(float64(c.Q0), 0):
				return bad(at+".Q0", "is %v, want a finite number > 0", c.Q0)
			case c.TWeight < 0 || (c.TWeight > 0 && !(c.QWeight > 0)):
				return bad(at+".TWeight/QWeight", "are %v/%v, want both > 0 (or TWeight 0 for T²/K + Q/Q0)", c.TWeight, c.QWeight)
			}
			for _, v := range [][]float32{c.Weights, c.Bias, c.Lambda, c.Mean, {c.TWeight, c.QWeight, c.Offset}} {
				for _, x := range v {
					if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
						return bad(at, "holds %v, want finite numbers", x)
					}
				}
			}
		}
	}
	return nil
}

// BuildTeachModel returns the serialised ONNX model for spec with a free
// batch dimension: input [N,1,H,W] float32, anomaly map [N,1,H,W], score [N].
func BuildTeachModel(spec TeachModelSpec) ([]byte, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	var nodes []*pb.NodeProto
	var inits []*pb.TensorProto
	node := func(op, out string, in []string, attrs ...*pb.AttributeProto) string {
		nodes = append(nodes, &pb.NodeProto{OpType: op, Name: out, Input: in, Output: []string{out}, Attribute: attrs})
		return out
	}
	p := int64(spec.Patch)
	r := p / 2
	pp := int(p * p)
	inits = append(inits, &pb.TensorProto{Name: "pads", Dims: []int64{8}, DataType: int32(pb.TensorProto_INT64),
		Int64Data: []int64{0, 0, r, r, 0, 0, r, r}})
	ns := len(spec.Scales)
	var maps []string
	x := spec.InputName
	if spec.SatFill {
		inits = append(inits, floatTensor("sat_level", []int64{1}, []float32{spec.SatLevel}),
			floatTensor("fill", []int64{1}, []float32{spec.FillValue}))
		sat := node("Greater", "saturated", []string{x, "sat_level"})
		x = node("Where", "filled", []string{sat, "fill", x})
	}
	x0 := x
	for si := range spec.Scales {
		nw, ne := int64(len(spec.Scales[si].Clusters)), int64(len(spec.Scales[si].Edge))
		cl := append(append([]TeachCluster(nil), spec.Scales[si].Clusters...), spec.Scales[si].Edge...)
		nc := int64(len(cl))
		// Cluster c's components occupy channels first[c] … first[c]+K_c-1.
		first := make([]int64, len(cl))
		var nk int64
		for ci, c := range cl {
			first[ci] = nk
			nk += int64(len(c.Lambda))
		}
		pre := fmt.Sprintf("s%d_", si)
		if si > 0 {
			x = node("AveragePool", pre+"x", []string{x},
				intsAttr("kernel_shape", 2, 2), intsAttr("strides", 2, 2))
		}
		// Component responses of every cluster, then one channel per
		// cluster holding m_c·p.
		var w, b []float32
		for _, c := range cl {
			w = append(w, c.Weights...)
			b = append(b, c.Bias...)
		}
		for _, c := range cl {
			w = append(w, c.Mean...)
			b = append(b, 0)
		}
		nout := nk + nc
		inits = append(inits,
			floatTensor(pre+"w", []int64{nout, 1, p, p}, w),
			floatTensor(pre+"b", []int64{nout}, b))
		y := node("Conv", pre+"y", []string{x, pre + "w", pre + "b"}, intsAttr("kernel_shape", p, p))
		y2 := node("Mul", pre+"y2", []string{y, y})
		// Mean of p_j² over the patch.
		x2 := node("Mul", pre+"x2", []string{x, x})
		s2 := node("AveragePool", pre+"s2", []string{x2}, intsAttr("kernel_shape", p, p), intsAttr("strides", 1, 1))
		// s_c = Σ_k (a_c - b_c·λ_ck) y_ck² + b_c·|p-m_c|² + o_c with
		// |p-m_c|² = Patch²·mean(p²) - 2 m_c·p + m_c·m_c, and a_c = 1/K,
		// b_c = 1/Q0_c, o_c = 0 unless TWeight is set. Input channels of
		// the 1×1 mix: [y² (nout) | y (nout) | mean(p²)].
		in := 2*nout + 1
		nz := int64(len(spec.Scales[si].Zones))
		mem := spec.Scales[si].Memory
		nm := int64(0) // 1 when the memory's base row is mixed
		if len(mem) > 0 {
			nm = 1
		}
		disc := spec.Scales[si].Disc
		nd := int64(0) // 1 when the discriminator's row is mixed
		if len(disc) > 0 {
			nd = 1
		}
		// Rows of the mix: clusters, zones, memory base, discriminator.
		// With zones alone beside one web cluster (teach's default) the
		// zones come first and the cluster last, so that the zone
		// selection gathers straight from the mix's output.
		packed := nz > 0 && nc == 1 && ne == 0 && nm == 0 && nd == 0 && evenBounds(spec.ZoneBounds)
		clRow, zoneRow := int64(0), nc
		if packed {
			clRow, zoneRow = nz, 0
		}
		mix := make([]float32, (nc+nz+nm+nd)*in)
		off := make([]float32, nc+nz+nm+nd)
		// The discriminator's row: Σ a_k y_k² + Σ b_k y_k + c·Q + bias,
		// Q = |p-m_0|² - Σ λ_k y_k² on cluster 0.
		if nd > 0 {
			c := cl[0]
			K := len(c.Lambda)
			row := mix[(nc+nz+nm)*in:]
			wq := float64(disc[2*K])
			var mm float64
			for _, v := range c.Mean {
				mm += float64(v) * float64(v)
			}
			for k, l := range c.Lambda {
				row[k] = float32(float64(disc[k]) - wq*float64(l))
				row[nout+int64(k)] = disc[K+k]
			}
			row[nout+nk] = float32(-2 * wq)
			row[2*nout] = float32(wq * float64(pp))
			off[nc+nz+nm] = float32(float64(spec.Scales[si].DiscBias) + wq*mm)
		}
		// The memory's base row: |y|²/D + Q/Q0 on cluster 0 (the
		// nearest-neighbour term is added after its ReduceMin).
		if nm > 0 {
			c := cl[0]
			row := mix[(nc+nz)*in:]
			bq, dinv := 1/float64(c.Q0), 1/float64(spec.Scales[si].MemoryD)
			var mm float64
			for _, v := range c.Mean {
				mm += float64(v) * float64(v)
			}
			for k, l := range c.Lambda {
				row[k] = float32(dinv - bq*float64(l))
			}
			row[nout+nk] = float32(-2 * bq)
			row[2*nout] = float32(bq * float64(pp))
			off[nc+nz] = float32(bq * mm)
		}
		// Zone z, on cluster 0's components (channels 0..K-1):
		// Σ_k (y_k-μ_k)² v_k/K + (|p-m_0|² - Σ_k λ_k y_k²)/Q0_z.
		if nz > 0 {
			c := cl[0]
			K := float64(len(c.Lambda))
			var mm float64
			for _, v := range c.Mean {
				mm += float64(v) * float64(v)
			}
			for zi, z := range spec.Scales[si].Zones {
				row := mix[(zoneRow+int64(zi))*in:]
				bq := 1 / float64(z.Q0)
				var o float64
				for k, l := range c.Lambda {
					v, mu := float64(z.InvVar[k]), float64(z.Mu[k])
					row[k] = float32(v/K - bq*float64(l))
					row[nout+int64(k)] = float32(-2 * mu * v / K)
					o += mu * mu * v / K
				}
				row[nout+nk] = float32(-2 * bq)
				row[2*nout] = float32(bq * float64(pp))
				off[zoneRow+int64(zi)] = float32(o + bq*mm)
			}
		}
		for ci, c := range cl {
			a, bq, o := 1/float64(len(c.Lambda)), 1/float64(c.Q0), 0.0
			if c.TWeight > 0 {
				a, bq, o = float64(c.TWeight), float64(c.QWeight), float64(c.Offset)
			}
			row := mix[(clRow+int64(ci))*in:]
			for j, l := range c.Lambda {
				row[first[ci]+int64(j)] = float32(a - bq*float64(l))
			}
			row[nout+nk+int64(ci)] = float32(-2 * bq)
			row[2*nout] = float32(bq * float64(pp))
			var mm float64
			for _, v := range c.Mean {
				mm += float64(v) * float64(v)
			}
			off[clRow+int64(ci)] = float32(bq*mm + o)
		}
		inits = append(inits, floatTensor(pre+"mix", []int64{nc + nz + nm + nd, in, 1, 1}, mix), floatTensor(pre+"off", []int64{nc + nz + nm + nd}, off))
		all := node("Concat", pre+"all", []string{y2, y, s2}, intAttr("axis", 1))
		m := node("Conv", pre+"raw", []string{all, pre + "mix", pre + "off"}, intsAttr("kernel_shape", 1, 1))
		zones, memBase, discRow := "", "", ""
		if packed {
			zones = m
			m = ""
		} else if nz > 0 || nm > 0 || nd > 0 {
			split := []int64{nc}
			outs := []string{pre + "cl"}
			if nz > 0 {
				split, outs = append(split, nz), append(outs, pre+"zones")
			}
			if nm > 0 {
				split, outs = append(split, nm), append(outs, pre+"membase")
			}
			if nd > 0 {
				split, outs = append(split, nd), append(outs, pre+"disc")
			}
			inits = append(inits, &pb.TensorProto{Name: pre + "zsplit", Dims: []int64{int64(len(split))}, DataType: int32(pb.TensorProto_INT64), Int64Data: split})
			nodes = append(nodes, &pb.NodeProto{OpType: "Split", Name: pre + "zsplit", Input: []string{m, pre + "zsplit"},
				Output: outs, Attribute: []*pb.AttributeProto{intAttr("axis", 1)}})
			m = pre + "cl"
			if nz > 0 {
				zones = pre + "zones"
			}
			if nm > 0 {
				memBase = pre + "membase"
			}
			if nd > 0 {
				discRow = pre + "disc"
			}
		}
		minOver := func(in, name string, n int64) string {
			if n > 1 {
				return node("ReduceMin", name, []string{in}, intsAttr("axes", 1), intAttr("keepdims", 1))
			}
			return in
		}
		if memBase != "" {
			// Nearest neighbour in the memory: (|m_j|² - 2 m_j·y)/D over
			// cluster 0's K component channels, its minimum added to the
			// base row. It replaces the web clusters' score.
			K := int64(len(cl[0].Lambda))
			M := int64(len(mem)) / K
			dinv := 1 / float64(spec.Scales[si].MemoryD)
			mw := make([]float32, M*nout)
			mb := make([]float32, M)
			for j := range M {
				var n2 float64
				for k := range K {
					v := float64(mem[j*K+k])
					mw[j*nout+k] = float32(-2 * v * dinv)
					n2 += v * v
				}
				mb[j] = float32(n2 * dinv)
			}
			inits = append(inits, floatTensor(pre+"memw", []int64{M, nout, 1, 1}, mw), floatTensor(pre+"memb", []int64{M}, mb))
			md := node("Conv", pre+"memd", []string{y, pre + "memw", pre + "memb"}, intsAttr("kernel_shape", 1, 1))
			if M > 1 {
				md = node("ReduceMin", pre+"memmin", []string{md}, intsAttr("axes", 1), intAttr("keepdims", 1))
			}
			memScore := node("Add", pre+"mem", []string{memBase, md})
			if nc > nw {
				// Edge clusters keep their own channels: the web part
				// becomes the memory score.
				inits = append(inits, &pb.TensorProto{Name: pre + "wsplit", Dims: []int64{2}, DataType: int32(pb.TensorProto_INT64), Int64Data: []int64{nw, ne}})
				nodes = append(nodes, &pb.NodeProto{OpType: "Split", Name: pre + "wsplit", Input: []string{m, pre + "wsplit"},
					Output: []string{pre + "wdrop", pre + "ekeep"}, Attribute: []*pb.AttributeProto{intAttr("axis", 1)}})
				m = node("Concat", pre+"wmem", []string{memScore, pre + "ekeep"}, intAttr("axis", 1))
				nw, nc = 1, 1+ne
			} else {
				m, nw, nc = memScore, 1, 1
			}
		}
		if ne == 0 {
			m = minOver(m, pre+"min", nc) // packed: one cluster, m stays ""
		} else {
			// Web and edge-band scores, blended by the band mask: 1 where
			// a saturated pixel lies within the patch grown by the band.
			inits = append(inits, &pb.TensorProto{Name: pre + "split", Dims: []int64{2}, DataType: int32(pb.TensorProto_INT64), Int64Data: []int64{nw, ne}})
			nodes = append(nodes, &pb.NodeProto{OpType: "Split", Name: pre + "split", Input: []string{m, pre + "split"},
				Output: []string{pre + "sw", pre + "se"}, Attribute: []*pb.AttributeProto{intAttr("axis", 1)}})
			mw := minOver(pre+"sw", pre+"minw", nw)
			me := minOver(pre+"se", pre+"mine", ne)
			inits = append(inits, floatTensor(pre+"sat", []int64{1}, []float32{spec.SatLevel}))
			sat := node("Greater", pre+"satb", []string{x, pre + "sat"})
			satf := node("Cast", pre+"satf", []string{sat}, intAttr("to", int64(pb.TensorProto_FLOAT)))
			e := int64(spec.EdgeBand >> si)
			// A (P+2e)² max is separable: a row pass, then a column pass.
			nearRow := node("MaxPool", pre+"nearx", []string{satf},
				intsAttr("kernel_shape", 1, p+2*e), intsAttr("pads", 0, e, 0, e), intsAttr("strides", 1, 1))
			near := node("MaxPool", pre+"near", []string{nearRow},
				intsAttr("kernel_shape", p+2*e, 1), intsAttr("pads", e, 0, e, 0), intsAttr("strides", 1, 1))
			d := node("Sub", pre+"de", []string{me, mw})
			nd := node("Mul", pre+"nde", []string{near, d})
			m = node("Add", pre+"blend", []string{mw, nd})
		}
		if nz > 0 {
			// Distance of each patch centre from the nearest edge, in
			// input pixels: rows averaged down to this scale, the Patch/2
			// border dropped (the Conv is unpadded).
			f := int64(1) << si
			hs, ws := int64(spec.Height)>>si, int64(spec.Width)>>si
			e := spec.EdgesName
			if si > 0 {
				e = node("AveragePool", pre+"edges", []string{e}, intsAttr("kernel_shape", f, 1), intsAttr("strides", f, 1))
			}
			inits = append(inits,
				&pb.TensorProto{Name: pre + "erows", Dims: []int64{1}, DataType: int32(pb.TensorProto_INT64), Int64Data: []int64{r}},
				&pb.TensorProto{Name: pre + "erowe", Dims: []int64{1}, DataType: int32(pb.TensorProto_INT64), Int64Data: []int64{hs - r}},
				&pb.TensorProto{Name: pre + "eaxis", Dims: []int64{1}, DataType: int32(pb.TensorProto_INT64), Int64Data: []int64{2}})
			e = node("Slice", pre+"erow", []string{e, pre + "erows", pre + "erowe", pre + "eaxis"})
			ramp := make([]float32, ws-2*r)
			for j := range ramp {
				ramp[j] = (float32(int64(j)+r)+0.5)*float32(f) - 0.5
			}
			inits = append(inits, floatTensor(pre+"ramp", []int64{1, 1, 1, ws - 2*r}, ramp))
			d := edgeDistance(node, &nodes, &inits, pre, e, pre+"ramp")
			m = zoneSelect(node, &nodes, &inits, pre, d, zones, m, spec.ZoneBounds)
			if discRow != "" {
				m = node("Add", pre+"withdisc", []string{m, node("Relu", pre+"discpos", []string{discRow})})
			}
			// Off the web (mirrored background) nothing is scored, so the
			// smoothing below does not carry it onto the edge.
			inits = append(inits, floatTensor(pre+"zero", []int64{1}, []float32{0}))
			off := node("Less", pre+"offweb", []string{d, pre + "zero"})
			m = node("Where", pre+"onweb", []string{off, pre + "zero", m})
		}
		if discRow != "" && nz == 0 {
			m = node("Add", pre+"withdisc", []string{m, node("Relu", pre+"discpos", []string{discRow})})
		}
		m = node("Relu", pre+"pos", []string{m})
		m = node("Pad", pre+"full", []string{m, "pads"}, &pb.AttributeProto{Name: "mode", Type: pb.AttributeProto_STRING, S: []byte("edge")})
		if sm := int64(spec.Smooth); sm > 1 {
			h := sm / 2
			m = node("AveragePool", pre+"smooth", []string{m},
				intsAttr("kernel_shape", sm, sm), intsAttr("pads", h, h, h, h),
				intsAttr("strides", 1, 1), intAttr("count_include_pad", 0))
		}
		if si > 0 {
			f := float32(int(1) << si)
			inits = append(inits, floatTensor(pre+"scales", []int64{4}, []float32{1, 1, f, f}))
			m = node("Resize", pre+"up", []string{m, "", pre + "scales"},
				&pb.AttributeProto{Name: "mode", Type: pb.AttributeProto_STRING, S: []byte("linear")},
				&pb.AttributeProto{Name: "coordinate_transformation_mode", Type: pb.AttributeProto_STRING, S: []byte("half_pixel")})
		}
		maps = append(maps, m)
	}
	sum := maps[0]
	if ns > 1 {
		sum = node("Sum", "map_sum", maps)
	}
	inits = append(inits, floatTensor("inv_scales", []int64{1}, []float32{float32(1 / float64(ns))}))
	mean := node("Mul", "map_patch", []string{sum, "inv_scales"})
	if sh := spec.Shade; sh.Block > 0 {
		b := int64(sh.Block)
		inits = append(inits,
			floatTensor("shade_mu", []int64{1}, []float32{sh.Mu}),
			floatTensor("shade_ka", []int64{1}, []float32{sh.InvVarAbs * sh.Weight / 2}),
			floatTensor("shade_kr", []int64{1}, []float32{sh.InvVarRel * sh.Weight / 2}))
		l := node("AveragePool", "shade_l", []string{x0}, intsAttr("kernel_shape", b, b), intsAttr("strides", b, b))
		lb := node("AveragePool", "shade_lb", []string{l}, intsAttr("kernel_shape", 3, 3), intsAttr("pads", 1, 1, 1, 1),
			intsAttr("strides", 1, 1), intAttr("count_include_pad", 0))
		da := node("Sub", "shade_da", []string{l, "shade_mu"})
		dr := node("Sub", "shade_dr", []string{l, lb})
		a := node("Mul", "shade_a", []string{node("Mul", "shade_da2", []string{da, da}), "shade_ka"})
		r := node("Mul", "shade_r", []string{node("Mul", "shade_dr2", []string{dr, dr}), "shade_kr"})
		sc := node("Add", "shade_cell", []string{a, r})
		size := node("Shape", "shade_size", []string{spec.InputName})
		up := node("Resize", "shade_map", []string{sc, "", "", size},
			&pb.AttributeProto{Name: "mode", Type: pb.AttributeProto_STRING, S: []byte("linear")},
			&pb.AttributeProto{Name: "coordinate_transformation_mode", Type: pb.AttributeProto_STRING, S: []byte("half_pixel")})
		mean = node("Max", "map_fused", []string{mean, up})
	}
	if br := spec.Bright; br.Block > 0 {
		b := int64(br.Block)
		inits = append(inits, floatTensor("bright_k", []int64{1}, []float32{br.InvVar * br.Weight}))
		l := node("AveragePool", "bright_l", []string{x0}, intsAttr("kernel_shape", b, b), intsAttr("strides", b, b))
		col := node("ReduceMean", "bright_col", []string{l}, intsAttr("axes", 2), intAttr("keepdims", 1))
		d := node("Sub", "bright_d", []string{l, col})
		sc := node("Mul", "bright_cell", []string{node("Mul", "bright_d2", []string{d, d}), "bright_k"})
		size := node("Shape", "bright_size", []string{spec.InputName})
		up := node("Resize", "bright_map", []string{sc, "", "", size},
			&pb.AttributeProto{Name: "mode", Type: pb.AttributeProto_STRING, S: []byte("linear")},
			&pb.AttributeProto{Name: "coordinate_transformation_mode", Type: pb.AttributeProto_STRING, S: []byte("half_pixel")})
		mean = node("Max", "map_fused_b", []string{mean, up})
	}
	if spec.EdgesName == "" {
		node("Identity", spec.MapName, []string{mean})
	} else {
		// Zero the map off the web (distance < 0).
		ramp := make([]float32, spec.Width)
		for j := range ramp {
			ramp[j] = float32(j)
		}
		inits = append(inits, floatTensor("ramp", []int64{1, 1, 1, int64(spec.Width)}, ramp),
			floatTensor("zero", []int64{1}, []float32{0}))
		d := edgeDistance(node, &nodes, &inits, "full_", spec.EdgesName, "ramp")
		off := node("Less", "off_web", []string{d, "zero"})
		node("Where", spec.MapName, []string{off, "zero", mean})
	}
	node("ReduceMax", spec.ScoreName, []string{spec.MapName}, intsAttr("axes", 1, 2, 3), intAttr("keepdims", 0))

	n := dimParam("N")
	h, w := dimValue(int64(spec.Height)), dimValue(int64(spec.Width))
	inputs := []*pb.ValueInfoProto{tensorInfo(spec.InputName, pb.TensorProto_FLOAT, n, dimValue(1), h, w)}
	if spec.EdgesName != "" {
		inputs = append(inputs, tensorInfo(spec.EdgesName, pb.TensorProto_FLOAT, dimParam("N"), dimValue(1), h, dimValue(2)))
	}
	m := &pb.ModelProto{
		IrVersion:       buildIRVersion,
		OpsetImport:     []*pb.OperatorSetIdProto{{Domain: "", Version: buildOpset}},
		ProducerName:    "webinspect teach",
		ProducerVersion: "1",
		DocString:       "webinspect taught model: PCA filter banks, Hotelling T² + residual Q, smoothed, max",
		Graph: &pb.GraphProto{
			Name:        "webinspect_taught",
			Node:        nodes,
			Initializer: inits,
			Input:       inputs,
			Output: []*pb.ValueInfoProto{
				tensorInfo(spec.MapName, pb.TensorProto_FLOAT, n, dimValue(1), h, w),
				tensorInfo(spec.ScoreName, pb.TensorProto_FLOAT, n),
			},
		},
	}
	b, err := proto.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("onnx: marshal taught model: %w", err)
	}
	return b, nil
}

// edgeDistance adds nodes computing min(ramp - left, right - 1 - ramp)
// from edges [N,1,h,2] and a column ramp [1,1,1,w]: [N,1,h,w].
func edgeDistance(node func(op, out string, in []string, attrs ...*pb.AttributeProto) string,
	nodes *[]*pb.NodeProto, inits *[]*pb.TensorProto, pre, edges, ramp string) string {
	*inits = append(*inits, floatTensor(pre+"one", []int64{1}, []float32{1}))
	*nodes = append(*nodes, &pb.NodeProto{OpType: "Split", Name: pre + "lr", Input: []string{edges},
		Output: []string{pre + "left", pre + "right"}, Attribute: []*pb.AttributeProto{intAttr("axis", 3)}})
	dl := node("Sub", pre+"dl", []string{ramp, pre + "left"})
	r1 := node("Sub", pre+"r1", []string{pre + "right", pre + "one"})
	dr := node("Sub", pre+"dr", []string{r1, ramp})
	return node("Min", pre+"dist", []string{dl, dr})
}

// zoneSelect adds nodes giving each pixel its zone's score: zones
// [N,nz,h,w] where the distance d [N,1,h,w] lies below a bound, the
// clusters' score m [N,1,h,w] beyond the last (m empty: zones holds it as
// its channel nz). Evenly spaced bounds (what teach writes) take one
// pass: the zone index Floor(d/width) (Div, so a distance on a bound falls
// in the zone above it, as with Less) clipped to nz picks a channel of
// Concat(zones, m) by GatherElements. Other bounds take a Less and a Where
// per zone (about 2·nz passes over the map).
func zoneSelect(node func(op, out string, in []string, attrs ...*pb.AttributeProto) string,
	nodes *[]*pb.NodeProto, inits *[]*pb.TensorProto, pre, d, zones, m string, bounds []float32) string {
	nz := len(bounds)
	if evenBounds(bounds) {
		*inits = append(*inits, floatTensor(pre+"zwidth", []int64{1}, []float32{bounds[0]}),
			floatTensor(pre+"zlo", nil, []float32{0}), floatTensor(pre+"zhi", nil, []float32{float32(nz)}))
		zf := node("Floor", pre+"zfloor", []string{node("Div", pre+"zscaled", []string{d, pre + "zwidth"})})
		zf = node("Clip", pre+"zclip", []string{zf, pre + "zlo", pre + "zhi"})
		zi := node("Cast", pre+"zidx", []string{zf}, intAttr("to", int64(pb.TensorProto_INT64)))
		all := zones
		if m != "" {
			all = node("Concat", pre+"zall", []string{zones, m}, intAttr("axis", 1))
		}
		return node("GatherElements", pre+"zoned", []string{all, zi}, intAttr("axis", 1))
	}
	zs := make([]string, nz)
	for zi := range zs {
		zs[zi] = fmt.Sprintf("%sz%d", pre, zi)
	}
	*nodes = append(*nodes, &pb.NodeProto{OpType: "Split", Name: pre + "zone_split", Input: []string{zones},
		Output: zs, Attribute: []*pb.AttributeProto{intAttr("axis", 1)}})
	for zi := nz - 1; zi >= 0; zi-- {
		name := fmt.Sprintf("%sbound%d", pre, zi)
		*inits = append(*inits, floatTensor(name, []int64{1}, []float32{bounds[zi]}))
		in := node("Less", name+"_in", []string{d, name})
		m = node("Where", fmt.Sprintf("%szoned%d", pre, zi), []string{in, zs[zi], m})
	}
	return m
}

// evenBounds reports whether zone bounds are w, 2w, 3w, … (what teach
// writes), so a zone is Floor(d/w).
func evenBounds(bounds []float32) bool {
	if len(bounds) == 0 || !(bounds[0] > 0) {
		return false
	}
	for z, b := range bounds {
		if math.Abs(float64(b)-float64(z+1)*float64(bounds[0])) > 1e-6*float64(bounds[0]) {
			return false
		}
	}
	return true
}

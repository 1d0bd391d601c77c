package teach

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/webinspect/webinspect/model/edge"
	"github.com/webinspect/webinspect/model/onnx"
)

// edgeSides holds a prepared image's edges per row as the graph's edges
// input does: the left and right edge in columns, ∓edge.Far for a side
// without an edge.
type edgeSides struct{ l, r []float32 }

func newEdgeSides(e rowEdges, w int) edgeSides {
	s := edgeSides{l: make([]float32, len(e.e0)), r: make([]float32, len(e.e0))}
	for y := range e.e0 {
		a, b := int(e.e0[y]), int(e.e1[y])
		l, r := float32(-edge.Far), float32(edge.Far)
		switch {
		case b <= a:
			l, r = edge.Far, -edge.Far
		default:
			if a > 0 {
				l = float32(a)
			}
			if b < w {
				r = float32(b)
			}
		}
		s.l[y], s.r[y] = l, r
	}
	return s
}

// at returns the edges of the rows covered by row y at scale si (the
// mean over its 2^si input rows, as the graph's AveragePool computes).
func (s edgeSides) at(y, si int) (l, r float32) {
	f := 1 << si
	for k := range f {
		l += s.l[min(y*f+k, len(s.l)-1)]
		r += s.r[min(y*f+k, len(s.r)-1)]
	}
	return l / float32(f), r / float32(f)
}

// zoneOf returns the zone of distance d (len(bounds) = interior).
func zoneOf(d float32, bounds []float32) int {
	for z, b := range bounds {
		if d < b {
			return z
		}
	}
	return len(bounds)
}

// fitZones fits each CD zone's diagonal Gaussian in the component space
// of cluster c at scale si: patches whose centre lies in the zone (its
// distance from the nearest edge, at the input resolution, within the
// zone's bounds; off-web patches excluded) are projected on c's whitened
// components and their mean, variance and residual are taken. A zone with
// fewer than 4·Patch² patches keeps c's own statistics.
func fitZones(planes []plane, sides []edgeSides, si int, c onnx.TeachCluster, bounds []float32, o *Options, rng *rand.Rand) ([]onnx.TeachZone, error) {
	P, r := o.Patch, o.Patch/2
	pp, K := P*P, len(c.Lambda)
	f := float32(int(1) << si)
	nz := len(bounds)
	// Pass 1: count the positions per zone, to sample at most MaxPatches.
	counts := make([]float64, nz)
	visit := func(fn func(z int, p plane, x, y int)) {
		for i, p := range planes {
			for y := 0; y+P <= p.h; y++ {
				l, rr := sides[i].at(y+r, si)
				for x := 0; x+P <= p.w; x++ {
					cx := (float32(x+r)+0.5)*f - 0.5
					d := min(cx-l, rr-1-cx)
					if d < 0 || d >= bounds[nz-1] {
						continue
					}
					fn(zoneOf(d, bounds), p, x, y)
				}
			}
		}
	}
	visit(func(z int, _ plane, _, _ int) { counts[z]++ })
	sum := make([][]float64, nz)
	sum2 := make([][]float64, nz)
	qs := make([]float64, nz)
	ns := make([]float64, nz)
	for z := range nz {
		sum[z], sum2[z] = make([]float64, K), make([]float64, K)
	}
	patch := make([]float32, pp)
	resp := make([]float64, K)
	visit(func(z int, p plane, x, y int) {
		if prob := float64(o.MaxPatches) / counts[z]; prob < 1 && rng.Float64() >= prob {
			return
		}
		for dy := range P {
			copy(patch[dy*P:(dy+1)*P], p.v[(y+dy)*p.w+x:])
		}
		var t, d2 float64
		for k := range K {
			v := float64(c.Bias[k])
			w := c.Weights[k*pp : (k+1)*pp]
			for j, pv := range patch {
				v += float64(w[j]) * float64(pv)
			}
			resp[k] = v
			t += float64(c.Lambda[k]) * v * v
		}
		for j, pv := range patch {
			dd := float64(pv) - float64(c.Mean[j])
			d2 += dd * dd
		}
		for k, v := range resp {
			sum[z][k] += v
			sum2[z][k] += v * v
		}
		qs[z] += max(d2-t, 0)
		ns[z]++
	})
	zones := make([]onnx.TeachZone, nz)
	for z := range nz {
		zn := onnx.TeachZone{Mu: make([]float32, K), InvVar: make([]float32, K)}
		if ns[z] < float64(4*pp) {
			// Too few patches to estimate (a narrow zone at a coarse
			// scale): the zone scores as the cluster itself does (zero
			// mean, unit variance in its whitened components, its Q0).
			for k := range K {
				zn.InvVar[k] = 1
			}
			zn.Q0 = c.Q0
			zones[z] = zn
			continue
		}
		for k := range K {
			m := sum[z][k] / ns[z]
			v := max(sum2[z][k]/ns[z]-m*m, 1e-3)
			zn.Mu[k], zn.InvVar[k] = float32(m), float32(1/v)
		}
		zn.Q0 = float32(max(qs[z]/ns[z], 1e-6))
		zones[z] = zn
	}
	return zones, nil
}

// measureZoneWidth measures the selvage: the distance from the edge
// (prepared pixels) beyond which the good web's brightness profile across
// the edge stays within the interior's own variation. It returns the
// zone width (0 when the good material shows too few edges) and a note.
func measureZoneWidth(imgs []Image, edges []rowEdges, o *Options) (int, string) {
	const most = 256
	var s, s2, n [2 * most]float64
	for i, im := range imgs {
		for y := range im.H {
			a, b := int(edges[i].e0[y]), int(edges[i].e1[y])
			if b <= a {
				continue
			}
			row := im.Pix[y*im.W : (y+1)*im.W]
			for x := a; x < b; x++ {
				d := edge.Distance(x, a, b, im.W)
				if d >= 2*most {
					continue
				}
				v := float64(row[x])
				s[d] += v
				s2[d] += v * v
				n[d]++
			}
		}
	}
	// The interior reference: far ≤ d < 2·far, far as large as the web
	// allows (up to 256 px), where most rows reach.
	far := most
	for far >= 16 && n[2*far-1] < n[0]/2 {
		far--
	}
	if n[0] < 64 || far < 16 {
		return 0, "too few edges, or too narrow a web, in the good material"
	}
	ff := float64(far)
	mean := func(d int) float64 { return s[d] / max(n[d], 1) }
	sd := func(d int) float64 { m := mean(d); return math.Sqrt(max(s2[d]/max(n[d], 1)-m*m, 0)) }
	var rm, rs, rm2, rs2 float64
	for d := far; d < 2*far; d++ {
		rm, rs = rm+mean(d), rs+sd(d)
		rm2, rs2 = rm2+mean(d)*mean(d), rs2+sd(d)*sd(d)
	}
	rm, rs = rm/ff, rs/ff
	tm := 3*math.Sqrt(max(rm2/ff-rm*rm, 0)) + 2
	ts := 3*math.Sqrt(max(rs2/ff-rs*rs, 0)) + 2
	w := 0
	for d := range far {
		if math.Abs(mean(d)-rm) > tm || math.Abs(sd(d)-rs) > ts {
			w = d + 1
		}
	}
	w = min(max(w, max(o.Patch, 4)), far/2)
	return w, fmt.Sprintf("measured: profile leaves the interior's mean %.1f±%.1f / sd %.1f±%.1f up to %d px", rm, tm, rs, ts, w)
}

package teach

import (
	"math"
	"math/rand/v2"

	"github.com/webinspect/webinspect/model/onnx"
)

// discScale puts the discriminator's logit in units of the patch score
// (T²/K + Q/Q0 ≈ 2 on good material): a patch the discriminator calls a
// defect at odds e:1 adds what a typical good patch scores.
const discScale = 2

// discFeatures writes patch p's discriminator features on cluster c into
// f (2K+1 values): y_k², y_k and the residual Q.
func discFeatures(c onnx.TeachCluster, p []float32, f []float64) {
	pp, K := len(p), len(c.Lambda)
	var lt, d2 float64
	for k := range K {
		v := float64(c.Bias[k])
		for j, w := range c.Weights[k*pp : (k+1)*pp] {
			v += float64(w) * float64(p[j])
		}
		f[k], f[K+k] = v*v, v
		lt += float64(c.Lambda[k]) * v * v
	}
	for j, v := range p {
		d := float64(v) - float64(c.Mean[j])
		d2 += d * d
	}
	f[2*K] = d2 - lt
}

// discTerm is what the graph adds to a patch's score: max(0, w·f + b).
func discTerm(c onnx.TeachCluster, w []float32, b float32, p []float32) float64 {
	f := make([]float64, len(w))
	discFeatures(c, p, f)
	s := float64(b)
	for i, v := range f {
		s += float64(w[i]) * v
	}
	return max(s, 0)
}

// synthDefects returns a copy of p with n synthetic defects and the mask
// of the pixels they changed: soft blobs, thin scratches at any angle,
// missing threads (a row or column segment replaced by one two pixels
// away, so the weave's phase breaks), cut-paste (a mirrored square of the
// web from elsewhere) and smooth blends with another region (a
// low-frequency bump mixing in different texture). Amplitudes are in the
// plane's units (unit variance over the good material).
func synthDefects(p plane, n int, rng *rand.Rand) (plane, []bool) {
	q := plane{w: p.w, h: p.h, v: append([]float32(nil), p.v...)}
	at := func(x, y int) int { return min(max(y, 0), p.h-1)*p.w + min(max(x, 0), p.w-1) }
	for range n {
		cx, cy := rng.IntN(p.w), rng.IntN(p.h)
		amp := float32((0.5 + 1.5*rng.Float64()) * float64(1-2*rng.IntN(2)))
		switch rng.IntN(5) {
		case 0: // blob
			r := 1.5 + 3.5*rng.Float64()
			for y := cy - int(3*r); y <= cy+int(3*r); y++ {
				for x := cx - int(3*r); x <= cx+int(3*r); x++ {
					if x >= 0 && y >= 0 && x < p.w && y < p.h {
						d2 := float64((x-cx)*(x-cx) + (y-cy)*(y-cy))
						q.v[y*p.w+x] += amp * float32(math.Exp(-d2/(2*r*r)))
					}
				}
			}
		case 1: // scratch
			a := rng.Float64() * math.Pi
			l := 10 + rng.IntN(50)
			for t := -l / 2; t < l/2; t++ {
				x := cx + int(math.Round(float64(t)*math.Cos(a)))
				y := cy + int(math.Round(float64(t)*math.Sin(a)))
				if x >= 0 && y >= 0 && x < p.w && y < p.h {
					q.v[y*p.w+x] += amp
				}
			}
		case 2: // missing thread
			l := 10 + rng.IntN(70)
			if rng.IntN(2) == 0 {
				for x := cx; x < min(cx+l, p.w); x++ {
					q.v[cy*p.w+x] = p.v[at(x, cy+2)]
				}
			} else {
				for y := cy; y < min(cy+l, p.h); y++ {
					q.v[y*p.w+cx] = p.v[at(cx+2, y)]
				}
			}
		case 3: // cut-paste, mirrored
			s := 6 + rng.IntN(10)
			sx, sy := rng.IntN(p.w), rng.IntN(p.h)
			for y := range s {
				for x := range s {
					if cx+x < p.w && cy+y < p.h {
						q.v[(cy+y)*p.w+cx+x] = p.v[at(sx+s-1-x, sy+y)]
					}
				}
			}
		default: // smooth blend with another region
			r := 4 + 8*rng.Float64()
			sx, sy := rng.IntN(p.w), rng.IntN(p.h)
			for y := cy - int(2*r); y <= cy+int(2*r); y++ {
				for x := cx - int(2*r); x <= cx+int(2*r); x++ {
					if x >= 0 && y >= 0 && x < p.w && y < p.h {
						d2 := float64((x-cx)*(x-cx) + (y-cy)*(y-cy))
						al := float32(math.Exp(-d2 / (2 * r * r)))
						o := p.v[at(sx+x-cx, sy+y-cy)] + amp*0.5
						q.v[y*p.w+x] = (1-al)*q.v[y*p.w+x] + al*o
					}
				}
			}
		}
	}
	mask := make([]bool, len(q.v))
	for i := range q.v {
		mask[i] = math.Abs(float64(q.v[i]-p.v[i])) > 0.25
	}
	return q, mask
}

// fitDisc trains a logistic regression of good patches against patches
// centred on synthetic defects (synthDefects), on cluster c's features,
// and returns its weights and bias scaled to score units (discScale), for
// the graph's TeachScale.Disc. ok is false when too few patches exist.
func fitDisc(planes []plane, c onnx.TeachCluster, P int, rng *rand.Rand) (w []float32, b float32, ok bool) {
	const perClass = 6000
	K := len(c.Lambda)
	nf := 2*K + 1
	r := P / 2
	var X [][]float64
	var Y []float64
	patch := make([]float32, P*P)
	take := func(p plane, x, y int, label float64) {
		for dy := range P {
			copy(patch[dy*P:(dy+1)*P], p.v[(y+dy)*p.w+x:])
		}
		f := make([]float64, nf)
		discFeatures(c, patch, f)
		X, Y = append(X, f), append(Y, label)
	}
	var usable []plane
	for _, p := range planes {
		if p.w > 2*P && p.h > 2*P {
			usable = append(usable, p)
		}
	}
	if len(usable) == 0 {
		return nil, 0, false
	}
	for range perClass {
		p := usable[rng.IntN(len(usable))]
		take(p, rng.IntN(p.w-P+1), rng.IntN(p.h-P+1), 0)
	}
	for tries := 0; tries < 40 && len(Y) < 2*perClass; tries++ {
		p := usable[rng.IntN(len(usable))]
		q, mask := synthDefects(p, max(4, p.w*p.h/2000), rng)
		var pos [][2]int
		for y := 0; y+P <= p.h; y++ {
			for x := 0; x+P <= p.w; x++ {
				if mask[(y+r)*p.w+x+r] {
					pos = append(pos, [2]int{x, y})
				}
			}
		}
		for i := 0; i < min(len(pos), perClass/8) && len(Y) < 2*perClass; i++ {
			xy := pos[rng.IntN(len(pos))]
			take(q, xy[0], xy[1], 1)
		}
	}
	if len(Y) < perClass+100 {
		return nil, 0, false
	}
	// Standardise, then gradient descent on the L2-regularised log loss.
	mu, sd := make([]float64, nf), make([]float64, nf)
	for _, f := range X {
		for i, v := range f {
			mu[i] += v
			sd[i] += v * v
		}
	}
	n := float64(len(X))
	for i := range nf {
		mu[i] /= n
		sd[i] = math.Sqrt(max(sd[i]/n-mu[i]*mu[i], 1e-12))
	}
	for _, f := range X {
		for i := range f {
			f[i] = (f[i] - mu[i]) / sd[i]
		}
	}
	ws := make([]float64, nf)
	var bs float64
	g := make([]float64, nf)
	for range 300 {
		clear(g)
		var gb float64
		for j, f := range X {
			z := bs
			for i, v := range f {
				z += ws[i] * v
			}
			e := 1/(1+math.Exp(-z)) - Y[j]
			for i, v := range f {
				g[i] += e * v
			}
			gb += e
		}
		for i := range ws {
			ws[i] -= 0.5 * (g[i]/n + 1e-3*ws[i])
		}
		bs -= 0.5 * gb / n
	}
	w = make([]float32, nf)
	bb := bs
	for i := range nf {
		w[i] = float32(discScale * ws[i] / sd[i])
		bb -= ws[i] * mu[i] / sd[i]
	}
	return w, float32(discScale * bb), true
}

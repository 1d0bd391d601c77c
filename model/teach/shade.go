package teach

import (
	"math"

	"github.com/webinspect/webinspect/model/onnx"
)

// shadeVarFloor bounds the shading variances from below, in units of the
// input's global variance, so a perfectly flat good web does not make
// sensor noise an anomaly.
const shadeVarFloor = 1e-4

// shadeCells returns the Block×Block cell means of p (a last partial cell
// dropped, as AveragePool does) and the 3×3 mean of their neighbourhood
// (edge cells averaging only the cells that exist), cw×ch cells.
func shadeCells(p plane, b int) (l, lb []float64, cw, ch int) {
	cw, ch = p.w/b, p.h/b
	l = make([]float64, cw*ch)
	inv := 1 / float64(b*b)
	for cy := range ch {
		for y := cy * b; y < (cy+1)*b; y++ {
			row := p.v[y*p.w:]
			for cx := range cw {
				var s float64
				for _, v := range row[cx*b : (cx+1)*b] {
					s += float64(v)
				}
				l[cy*cw+cx] += s * inv
			}
		}
	}
	lb = make([]float64, cw*ch)
	for cy := range ch {
		for cx := range cw {
			var s, n float64
			for y := max(cy-1, 0); y <= min(cy+1, ch-1); y++ {
				for x := max(cx-1, 0); x <= min(cx+1, cw-1); x++ {
					s += l[y*cw+x]
					n++
				}
			}
			lb[cy*cw+cx] = s / n
		}
	}
	return l, lb, cw, ch
}

// fitShade teaches the shading model's statistics on the prepared planes
// at the input scale: the mean and variance of the cell means and the
// variance of each cell's difference from its neighbourhood (the absolute
// term only when abs: it also scores a frame lit differently, which
// on AITEX fabric 00 is what tells the defect frames apart). Weight is
// left 0 (set by calibration). ok is false when no plane holds a cell.
func fitShade(planes []plane, b int, abs bool) (sh onnx.TeachShade, ok bool) {
	var n, s, s2, r2 float64
	for _, p := range planes {
		l, lb, _, _ := shadeCells(p, b)
		for i, v := range l {
			s += v
			s2 += v * v
			d := v - lb[i]
			r2 += d * d
		}
		n += float64(len(l))
	}
	if n < 2 {
		return sh, false
	}
	mu := s / n
	va := max(s2/n-mu*mu, shadeVarFloor)
	vr := max(r2/n, shadeVarFloor)
	sh = onnx.TeachShade{Block: b, Mu: float32(mu), InvVarRel: float32(1 / vr)}
	if abs {
		sh.InvVarAbs = float32(1 / va)
	}
	return sh, true
}

// shadeScore is the shading model's image score with Weight 1: the
// maximum over cells of ((L-Mu)²/varAbs + (L-Lb)²/varRel)/2, as the graph
// computes it before resizing (linear resizing keeps the maximum).
func shadeScore(p plane, sh onnx.TeachShade) float64 {
	l, lb, _, _ := shadeCells(p, sh.Block)
	best := 0.0
	for i, v := range l {
		da, dr := v-float64(sh.Mu), v-lb[i]
		best = max(best, (da*da*float64(sh.InvVarAbs)+dr*dr*float64(sh.InvVarRel))/2)
	}
	return best
}

// shadeWeight puts the shading (or brightness) model on the patch model's scale: the
// weight that makes the shading scores' calibrated level (Threshold at
// far) equal the patch model's, so each model reaches the fused threshold
// about equally often on good material (a quantile-rank fusion). 0 when
// either level is not positive.
func shadeWeight(patch, shade []float64, far float64) float64 {
	tp, ts := Threshold(patch, far), Threshold(shade, far)
	if !(tp > 0) || !(ts > 0) || math.IsInf(ts, 0) {
		return 0
	}
	return tp / ts
}

// brightCells returns, per band of tileH rows (the graph's tile; a last
// partial band is its own), each Block×Block cell's difference from its
// column's mean over the band.
func brightCells(p plane, b, tileH int) []float64 {
	l, _, cw, ch := shadeCells(p, b)
	rows := max(tileH/b, 1)
	out := make([]float64, len(l))
	for y0 := 0; y0 < ch; y0 += rows {
		y1 := min(y0+rows, ch)
		for cx := range cw {
			var s float64
			for y := y0; y < y1; y++ {
				s += l[y*cw+cx]
			}
			m := s / float64(y1-y0)
			for y := y0; y < y1; y++ {
				out[y*cw+cx] = l[y*cw+cx] - m
			}
		}
	}
	return out
}

// fitBright teaches the brightness model's variance (Weight left 0).
func fitBright(planes []plane, b, tileH int) (br onnx.TeachBright, ok bool) {
	var n, s2 float64
	for _, p := range planes {
		for _, d := range brightCells(p, b, tileH) {
			s2 += d * d
			n++
		}
	}
	if n < 2 {
		return br, false
	}
	return onnx.TeachBright{Block: b, InvVar: float32(1 / max(s2/n, shadeVarFloor))}, true
}

// brightScore is the brightness model's image score with Weight 1.
func brightScore(p plane, br onnx.TeachBright, tileH int) float64 {
	best := 0.0
	for _, d := range brightCells(p, br.Block, tileH) {
		best = max(best, d*d*float64(br.InvVar))
	}
	return best
}

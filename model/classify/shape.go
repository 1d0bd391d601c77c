package classify

import (
	"math"
	"slices"
)

// numShape is how many features appendShape computes.
const numShape = 11

// appendShape appends the shape of the defect measured on its coverage:
// the crop's background is modelled from a ring of good material around
// it (per column from the top and bottom rows, per row from the left and
// right columns: the weave and each column's gain cancel), the defect's
// signed difference from it (sign from the polarity; |difference| for
// mixed) divided by its amplitude is each pixel's coverage, 0..1, which
// keeps the anti-aliased edge: moments of the coverage give an ellipse
// exactly for an ellipse of any size.
func appendShape(dst []float32, pix []uint8, w, h, stride int, polarity string) []float32 {
	zero := make([]float32, numShape)
	r := min(8, w/5, h/5)
	if r < 2 {
		return append(dst, zero...)
	}
	// Background: column means over the top and bottom r rows, row means
	// over the left and right r columns (the weave's yarns and each
	// column's gain cancel). A side the defect runs into (a crop clipped
	// at the camera's edge or at MaxPx) is left out: one with more than
	// 5 % of its pixels 20 grey levels past the ring's median in the
	// polarity's direction.
	pol := func(v float64) float64 {
		switch polarity {
		case "bright":
			return v
		case "dark":
			return -v
		}
		return math.Abs(v)
	}
	var ring []float64
	side := func(x0, x1, y0, y1 int, f func(v float64)) {
		for y := y0; y < y1; y++ {
			for x := x0; x < x1; x++ {
				f(float64(pix[y*stride+x]))
			}
		}
	}
	sides := [4][4]int{{0, w, 0, r}, {0, w, h - r, h}, {0, r, r, h - r}, {w - r, w, r, h - r}} // top, bottom, left, right
	for _, sd := range sides {
		side(sd[0], sd[1], sd[2], sd[3], func(v float64) { ring = append(ring, v) })
	}
	med := quickSelect(ring, len(ring)/2)
	var clean [4]bool
	for k, sd := range sides {
		far, n := 0, 0
		side(sd[0], sd[1], sd[2], sd[3], func(v float64) {
			n++
			if pol(v-med) > 20 {
				far++
			}
		})
		clean[k] = far*20 <= n
	}
	col := make([]float64, w)
	for x := range w {
		s, n := 0.0, 0
		for y := range r {
			if clean[0] {
				s += float64(pix[y*stride+x])
				n++
			}
			if clean[1] {
				s += float64(pix[(h-1-y)*stride+x])
				n++
			}
		}
		col[x] = med
		if n > 0 {
			col[x] = s / float64(n)
		}
	}
	row := make([]float64, h)
	rowMean, rowN := 0.0, 0
	for y := range h {
		s, n := 0.0, 0
		for x := range r {
			if clean[2] {
				s += float64(pix[y*stride+x]) - col[x]
				n++
			}
			if clean[3] {
				s += float64(pix[y*stride+w-1-x]) - col[w-1-x]
				n++
			}
		}
		if n > 0 {
			row[y] = s / float64(n)
		}
		if y >= r && y < h-r {
			rowMean += row[y]
			rowN++
		}
	}
	if rowN > 0 {
		rowMean /= float64(rowN)
	}
	// d: signed difference in the polarity's direction; noise from the
	// ring's residual.
	d := make([]float64, w*h)
	var ns, ns2 float64
	var nn int
	for y := range h {
		for x := range w {
			v := pol(float64(pix[y*stride+x]) - col[x] - (row[y] - rowMean))
			d[y*w+x] = v
			if (y < r && clean[0]) || (y >= h-r && clean[1]) || (x < r && clean[2]) || (x >= w-r && clean[3]) {
				ns += v
				ns2 += v * v
				nn++
			}
		}
	}
	if nn == 0 {
		return append(dst, zero...)
	}
	nm := ns / float64(nn)
	sigma := math.Sqrt(math.Max(ns2/float64(nn)-nm*nm, 1))
	// Peak: the 90th percentile of the inside's pixels more than 4 noise
	// deviations out (the defect's; a gel's core, not its rim, however
	// much of the crop the defect fills).
	var out []float64
	for y := r; y < h-r; y++ {
		for _, v := range d[y*w+r : y*w+w-r] {
			if v > 4*sigma {
				out = append(out, v)
			}
		}
	}
	if len(out) < 3 {
		return append(dst, zero...)
	}
	peak := quickSelect(out, int(0.9*float64(len(out)-1)))
	thr := math.Max(0.35*peak, 4*sigma)
	// Mask: the inside above thr; its parts, kept when they hold at least
	// a tenth of the largest's pixels.
	mask := make([]int32, w*h) // 0 none, else part label
	var sizes []int
	var stack []int
	for y := r; y < h-r; y++ {
		for x := r; x < w-r; x++ {
			i := y*w + x
			if mask[i] != 0 || d[i] <= thr {
				continue
			}
			lbl := int32(len(sizes) + 1)
			n := 0
			mask[i] = lbl
			stack = append(stack[:0], i)
			for len(stack) > 0 {
				j := stack[len(stack)-1]
				stack = stack[:len(stack)-1]
				n++
				jx, jy := j%w, j/w
				for _, nb := range [4][2]int{{jx - 1, jy}, {jx + 1, jy}, {jx, jy - 1}, {jx, jy + 1}} {
					if nb[0] >= r && nb[0] < w-r && nb[1] >= r && nb[1] < h-r {
						k := nb[1]*w + nb[0]
						if mask[k] == 0 && d[k] > thr {
							mask[k] = lbl
							stack = append(stack, k)
						}
					}
				}
			}
			sizes = append(sizes, n)
		}
	}
	if len(sizes) == 0 {
		return append(dst, zero...)
	}
	largest := slices.Max(sizes)
	keep := make([]bool, len(sizes)+1)
	nParts := 0
	for i, s := range sizes {
		if s*10 >= largest {
			keep[i+1] = true
			nParts++
		}
	}
	// Amplitude: the median of the kept pixels above 0.6 of the peak.
	var core []float64
	for i, l := range mask {
		if keep[l] && l != 0 && d[i] > 0.6*peak {
			core = append(core, d[i])
		}
	}
	if len(core) == 0 {
		return append(dst, zero...)
	}
	amp := quickSelect(core, len(core)/2)
	// Coverage: the kept parts grown by one pixel (their anti-aliased
	// edge), d/amp clamped to 0..1.2.
	// The kept parts' box, grown by one pixel: every later pass stays in it.
	bx0, bx1, by0, by1 := w, -1, h, -1
	for y := r; y < h-r; y++ {
		for x := r; x < w-r; x++ {
			if l := mask[y*w+x]; l != 0 && keep[l] {
				bx0, bx1, by0, by1 = min(bx0, x), max(bx1, x), min(by0, y), max(by1, y)
			}
		}
	}
	bx0, bx1, by0, by1 = max(bx0-1, r), min(bx1+1, w-r-1), max(by0-1, r), min(by1+1, h-r-1)
	in := make([]bool, w*h)
	for y := by0; y <= by1; y++ {
		for x := bx0; x <= bx1; x++ {
			near := false
			for dy := -1; dy <= 1 && !near; dy++ {
				for dx := -1; dx <= 1; dx++ {
					xx, yy := x+dx, y+dy
					if xx >= 0 && xx < w && yy >= 0 && yy < h {
						if l := mask[yy*w+xx]; l != 0 && keep[l] {
							near = true
							break
						}
					}
				}
			}
			in[y*w+x] = near
		}
	}
	var m, sx, sy, sxx, syy, sxy, half float64
	x0, x1, y0, y1 := w, -1, h, -1
	// Per row, the first and last pixel at least half covered (the
	// convex hull needs no others); nPts counts them all.
	rowLo, rowHi := make([]int, h), make([]int, h)
	for y := range rowLo {
		rowLo[y], rowHi[y] = w, -1
	}
	nPts := 0
	edgeSum, edgeN := 0.0, 0
	for y := by0; y <= by1; y++ {
		for x := bx0; x <= bx1; x++ {
			if !in[y*w+x] {
				continue
			}
			c := math.Min(math.Max(d[y*w+x]/amp, 0), 1.2)
			if c <= 0 {
				continue
			}
			fx, fy := float64(x), float64(y)
			m += c
			sx += c * fx
			sy += c * fy
			sxx += c * fx * fx
			syy += c * fy * fy
			sxy += c * fx * fy
			if c > 0.3 && c < 0.7 {
				half += c
			}
			if c >= 0.5 {
				nPts++
				rowLo[y], rowHi[y] = min(rowLo[y], x), max(rowHi[y], x)
				x0, x1, y0, y1 = min(x0, x), max(x1, x), min(y0, y), max(y1, y)
			}
			if l := mask[y*w+x]; l == 0 || !keep[l] {
				edgeSum += c
				edgeN++
			}
		}
	}
	if m < 1 || nPts < 3 {
		return append(dst, zero...)
	}
	mx, my := sx/m, sy/m
	cxx, cyy, cxy := sxx/m-mx*mx+1.0/12, syy/m-my*my+1.0/12, sxy/m-mx*my
	tr, det := cxx+cyy, cxx*cyy-cxy*cxy
	disc := math.Sqrt(math.Max(tr*tr/4-det, 0))
	l1, l2 := tr/2+disc, math.Max(tr/2-disc, 1e-9)
	fit := m / (4 * math.Pi * math.Sqrt(l1*l2))
	// Core against rim: mean coverage inside half the moment ellipse's
	// radius against between 0.6 and 0.95 of it.
	var ci, cin, co, con float64
	ixx, iyy, ixy := cyy/det, cxx/det, -cxy/det // inverse covariance
	for y := by0; y <= by1; y++ {
		for x := bx0; x <= bx1; x++ {
			if !in[y*w+x] {
				continue
			}
			dx, dy := float64(x)-mx, float64(y)-my
			q := (dx*dx*ixx + dy*dy*iyy + 2*dx*dy*ixy) / 4 // 1 on the ellipse's rim
			c := math.Min(math.Max(d[y*w+x]/amp, 0), 1.2)
			switch {
			case q < 0.25:
				ci += c
				cin++
			case q > 0.36 && q < 0.9:
				co += c
				con++
			}
		}
	}
	coreRim := 1.0
	if cin > 0 && con > 0 && ci > 0 {
		coreRim = (co / con) / (ci / cin)
	}
	var pts [][2]int
	for y := y0; y <= y1; y++ {
		if rowHi[y] >= 0 {
			pts = append(pts, [2]int{rowLo[y], y}, [2]int{rowHi[y], y})
		}
	}
	hull := hullArea(pts)
	solidity := 1.0
	if hull > 0 {
		solidity = math.Min(float64(nPts)/hull, 1.5)
	}
	box := float64((x1 - x0 + 1) * (y1 - y0 + 1))
	edge := 0.0
	if edgeN > 0 {
		edge = edgeSum / float64(edgeN)
	}
	return append(dst, float32(math.Min(fit, 2)), float32(math.Sqrt(l2/l1)), float32((cyy-cxx)/tr), float32(2*cxy/tr),
		float32(half/m), float32(coreRim), float32(solidity), float32(math.Log(float64(nParts))),
		float32(m/box), float32(amp/peak), float32(edge))
}

// hullArea is the area of the convex hull of the pixel squares pts
// (their corners), by the monotone chain.
func hullArea(pts [][2]int) float64 {
	var c [][2]int
	for _, p := range pts {
		c = append(c, p, [2]int{p[0] + 1, p[1]}, [2]int{p[0], p[1] + 1}, [2]int{p[0] + 1, p[1] + 1})
	}
	slices.SortFunc(c, func(a, b [2]int) int {
		if a[0] != b[0] {
			return a[0] - b[0]
		}
		return a[1] - b[1]
	})
	c = slices.Compact(c)
	if len(c) < 3 {
		return 0
	}
	cross := func(o, a, b [2]int) int { return (a[0]-o[0])*(b[1]-o[1]) - (a[1]-o[1])*(b[0]-o[0]) }
	var hull [][2]int
	for _, p := range c {
		for len(hull) >= 2 && cross(hull[len(hull)-2], hull[len(hull)-1], p) <= 0 {
			hull = hull[:len(hull)-1]
		}
		hull = append(hull, p)
	}
	lower := len(hull) + 1
	for i := len(c) - 2; i >= 0; i-- {
		p := c[i]
		for len(hull) >= lower && cross(hull[len(hull)-2], hull[len(hull)-1], p) <= 0 {
			hull = hull[:len(hull)-1]
		}
		hull = append(hull, p)
	}
	hull = hull[:len(hull)-1]
	a := 0
	for i := range hull {
		j := (i + 1) % len(hull)
		a += hull[i][0]*hull[j][1] - hull[j][0]*hull[i][1]
	}
	return math.Abs(float64(a)) / 2
}

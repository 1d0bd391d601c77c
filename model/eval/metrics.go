package eval

import (
	"math"
	"slices"
	"sort"
)

// AUROC returns the area under the ROC curve of scores against labels
// (true = defective): the probability that a random defective sample
// scores above a random good one, ties counting one half (Mann-Whitney U).
// It is NaN when either class is empty.
func AUROC(scores []float64, labels []bool) float64 {
	type sl struct {
		s   float64
		pos bool
	}
	v := make([]sl, len(scores))
	var np, nn float64
	for i, s := range scores {
		v[i] = sl{s, labels[i]}
		if labels[i] {
			np++
		} else {
			nn++
		}
	}
	if np == 0 || nn == 0 {
		return math.NaN()
	}
	slices.SortFunc(v, func(a, b sl) int {
		switch {
		case a.s < b.s:
			return -1
		case a.s > b.s:
			return 1
		}
		return 0
	})
	// Sum of the positives' mid-ranks (1-based).
	var rankSum float64
	for i := 0; i < len(v); {
		j := i
		for j < len(v) && v[j].s == v[i].s {
			j++
		}
		mid := float64(i+j+1) / 2
		for k := i; k < j; k++ {
			if v[k].pos {
				rankSum += mid
			}
		}
		i = j
	}
	return (rankSum - np*(np+1)/2) / (np * nn)
}

// PixelCurves accumulates pixel scores of many images into histograms over
// fixed thresholds, for pixel AUROC and PRO without holding every pixel in
// sorted order. The thresholds are the distinct values of a sample of the
// scores when there are at most MaxBins of them (then the curves are
// exact), else MaxBins quantiles of the sample (then scores between two
// thresholds count as tied).
type PixelCurves struct {
	edges    []float32 // ascending thresholds; bin b holds values in [edges[b], edges[b+1])
	neg, pos []int64
	regions  [][]int64 // per ground-truth region, pixels per bin
	regionN  []int64
}

// MaxBins bounds the thresholds PixelCurves uses.
const MaxBins = 16384

// NewPixelCurves sets the thresholds from a sample of the scores (it must
// include the smallest score; values below edges[0] are counted in bin 0).
func NewPixelCurves(sample []float32) *PixelCurves {
	s := slices.Clone(sample)
	slices.Sort(s)
	s = slices.Compact(s)
	if len(s) > MaxBins {
		q := make([]float32, MaxBins)
		for i := range q {
			q[i] = s[int(float64(i)*float64(len(s)-1)/float64(MaxBins-1))]
		}
		s = slices.Compact(q)
	}
	if len(s) == 0 {
		s = []float32{0}
	}
	return &PixelCurves{edges: s, neg: make([]int64, len(s)), pos: make([]int64, len(s))}
}

func (c *PixelCurves) bin(v float32) int {
	i := sort.Search(len(c.edges), func(i int) bool { return c.edges[i] > v }) - 1
	return max(i, 0)
}

// Add counts one image: its anomaly map and its mask (non-zero =
// defective), of equal length, with regions labelled 1..nRegions in
// labels (0 = background) as Regions returns them.
func (c *PixelCurves) Add(amap []float32, labels []int32, nRegions int) {
	base := len(c.regions)
	for range nRegions {
		c.regions = append(c.regions, make([]int64, len(c.edges)))
		c.regionN = append(c.regionN, 0)
	}
	for i, v := range amap {
		b := c.bin(v)
		if l := labels[i]; l > 0 {
			c.pos[b]++
			r := base + int(l) - 1
			c.regions[r][b]++
			c.regionN[r]++
		} else {
			c.neg[b]++
		}
	}
}

// AUROC returns the pixel AUROC, NaN without positive or negative pixels.
func (c *PixelCurves) AUROC() float64 {
	var np, nn float64
	for b := range c.edges {
		np += float64(c.pos[b])
		nn += float64(c.neg[b])
	}
	if np == 0 || nn == 0 {
		return math.NaN()
	}
	// Walk thresholds from the top; trapezoids count ties as one half.
	var tp, fp, area float64
	for b := len(c.edges) - 1; b >= 0; b-- {
		dtp, dfp := float64(c.pos[b]), float64(c.neg[b])
		area += dfp * (tp + dtp/2)
		tp += dtp
		fp += dfp
	}
	return area / (np * nn)
}

// PRO returns the area under the per-region-overlap curve for false
// positive rates 0..limit, divided by limit (MVTec AD's PRO with limit
// 0.3): at each threshold, the mean over all ground-truth regions of the
// fraction of the region scored at or above it, against the fraction of
// good pixels scored at or above it. NaN without regions or good pixels.
func (c *PixelCurves) PRO(limit float64) float64 {
	var nn float64
	for _, v := range c.neg {
		nn += float64(v)
	}
	nr := 0
	for _, n := range c.regionN {
		if n > 0 {
			nr++
		}
	}
	if nr == 0 || nn == 0 {
		return math.NaN()
	}
	covered := make([]int64, len(c.regions))
	var fp, prevFPR, prevPRO, area float64
	for b := len(c.edges) - 1; b >= 0; b-- {
		fp += float64(c.neg[b])
		var pro float64
		for r, h := range c.regions {
			if c.regionN[r] == 0 {
				continue
			}
			covered[r] += h[b]
			pro += float64(covered[r]) / float64(c.regionN[r])
		}
		pro /= float64(nr)
		fpr := fp / nn
		if fpr >= limit {
			// Interpolate the segment up to the limit.
			if fpr > prevFPR {
				t := (limit - prevFPR) / (fpr - prevFPR)
				at := prevPRO + t*(pro-prevPRO)
				area += (limit - prevFPR) * (prevPRO + at) / 2
			}
			return area / limit
		}
		area += (fpr - prevFPR) * (prevPRO + pro) / 2
		prevFPR, prevPRO = fpr, pro
	}
	// The curve ends at fpr = 1 ≥ limit, so this is not reached unless
	// limit > 1.
	return area / limit
}

// Regions labels the 8-connected regions of non-zero mask pixels 1..n and
// returns the labels (appended to dst[:0]) and n.
func Regions(dst []int32, mask []uint8, w, h int) ([]int32, int) {
	dst = slices.Grow(dst[:0], w*h)[:w*h]
	clear(dst)
	n := 0
	var stack []int
	for i, m := range mask[:w*h] {
		if m == 0 || dst[i] != 0 {
			continue
		}
		n++
		dst[i] = int32(n)
		stack = append(stack[:0], i)
		for len(stack) > 0 {
			p := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			px, py := p%w, p/w
			for dy := -1; dy <= 1; dy++ {
				for dx := -1; dx <= 1; dx++ {
					x, y := px+dx, py+dy
					if x < 0 || y < 0 || x >= w || y >= h {
						continue
					}
					q := y*w + x
					if mask[q] != 0 && dst[q] == 0 {
						dst[q] = int32(n)
						stack = append(stack, q)
					}
				}
			}
		}
	}
	return dst, n
}

package teach

import (
	"math"
	"math/rand/v2"

	"github.com/webinspect/webinspect/model/onnx"
)

// memorySample bounds the good patches the coreset is chosen from.
const memorySample = 20_000

// memoryIdx returns the indices of the patches a memory is chosen from:
// all n, or memorySample drawn at random.
func memoryIdx(n int, rng *rand.Rand) []int {
	idx := make([]int, 0, min(n, memorySample))
	if n <= memorySample {
		for i := range n {
			idx = append(idx, i)
		}
	} else {
		for range memorySample {
			idx = append(idx, rng.IntN(n))
		}
	}
	return idx
}

// responses returns the whitened component responses y (K values per
// patch) of cluster c for the rows of X (pp values each) in idx.
func responses(c onnx.TeachCluster, X []float32, idx []int, pp int) []float32 {
	K := len(c.Lambda)
	out := make([]float32, len(idx)*K)
	for n, i := range idx {
		p := X[i*pp : (i+1)*pp]
		for k := range K {
			v := c.Bias[k]
			for j, w := range c.Weights[k*pp : (k+1)*pp] {
				v += w * p[j]
			}
			out[n*K+k] = v
		}
	}
	return out
}

// fitMemory chooses a coreset of at most m good patches (greedy k-centre
// in cluster c's whitened component space, the subsampling PatchCore
// uses: each pick is the patch farthest from those already picked, so the
// memory covers all the good material, rare kinds included) and measures
// the mean nearest-neighbour distance² of the sampled good patches to it.
// It returns the memory (rows of K values) and that mean (> 0).
func fitMemory(c onnx.TeachCluster, X []float32, pp, m int, rng *rand.Rand) ([]float32, float32) {
	idx := memoryIdx(len(X)/pp, rng)
	K := len(c.Lambda)
	Y := responses(c, X, idx, pp)
	ns := len(idx)
	m = min(m, ns)
	d2 := make([]float64, ns)
	for i := range d2 {
		d2[i] = math.Inf(1)
	}
	mem := make([]float32, 0, m*K)
	// Start from the patch nearest the mean (the mode of good material).
	pick, best := 0, math.Inf(1)
	for i := range ns {
		var s float64
		for _, v := range Y[i*K : (i+1)*K] {
			s += float64(v) * float64(v)
		}
		if s < best {
			pick, best = i, s
		}
	}
	for len(mem) < m*K {
		row := Y[pick*K : (pick+1)*K]
		mem = append(mem, row...)
		far, fi := -1.0, 0
		for i := range ns {
			var s float64
			for k, v := range Y[i*K : (i+1)*K] {
				d := float64(v - row[k])
				s += d * d
			}
			d2[i] = min(d2[i], s)
			if d2[i] > far {
				far, fi = d2[i], i
			}
		}
		if far <= 0 {
			break // every sampled patch is in the memory
		}
		pick = fi
	}
	var s float64
	for _, v := range d2 {
		s += v
	}
	// Patches in the memory count at distance 0, as a good patch that
	// repeats one seen in teaching would.
	D := s / float64(ns)
	return mem, float32(max(D, 1e-3*float64(K)))
}

// memoryScore is the graph's web-patch score with a memory (before
// clipping at 0): min_j |y - m_j|²/D + Q/Q0 on cluster c.
func memoryScore(c onnx.TeachCluster, mem []float32, D float32, p []float32) float64 {
	pp, K := len(p), len(c.Lambda)
	y := make([]float64, K)
	var lt, d2 float64
	for k := range K {
		v := float64(c.Bias[k])
		for j, w := range c.Weights[k*pp : (k+1)*pp] {
			v += float64(w) * float64(p[j])
		}
		y[k] = v
		lt += float64(c.Lambda[k]) * v * v
	}
	for j, v := range p {
		d := float64(v) - float64(c.Mean[j])
		d2 += d * d
	}
	best := math.Inf(1)
	for j := 0; j+K <= len(mem); j += K {
		var s float64
		for k := range K {
			d := y[k] - float64(mem[j+k])
			s += d * d
		}
		best = min(best, s)
	}
	return best/float64(D) + (d2-lt)/float64(c.Q0)
}

package classify

import (
	"fmt"
	"math"
	"slices"
	"sort"
)

// TreeOptions configures TrainTrees.
type TreeOptions struct {
	// Rounds of boosting, 1..5000: each adds one tree per class.
	Rounds int
	// Depth is the deepest a tree grows, 1..8.
	Depth int
	// Shrinkage scales each tree's leaf values, (0, 1].
	Shrinkage float64
	// Lambda is the L2 penalty on leaf values, ≥ 0.
	Lambda float64
	// MinChildWeight is the least hessian a leaf must hold (≈ examples ×
	// p(1-p)), ≥ 0.
	MinChildWeight float64
}

// DefaultTreeOptions are what TrainTrees is measured with.
func DefaultTreeOptions() TreeOptions {
	return TreeOptions{Rounds: 100, Depth: 3, Shrinkage: 0.1, Lambda: 1, MinChildWeight: 1}
}

// Validate names the first bad field and its allowed range.
func (o TreeOptions) Validate() error {
	switch {
	case o.Rounds < 1 || o.Rounds > 5000:
		return fmt.Errorf("classify: TreeOptions.Rounds is %d, want 1..5000", o.Rounds)
	case o.Depth < 1 || o.Depth > 8:
		return fmt.Errorf("classify: TreeOptions.Depth is %d, want 1..8", o.Depth)
	case !(o.Shrinkage > 0 && o.Shrinkage <= 1):
		return fmt.Errorf("classify: TreeOptions.Shrinkage is %g, want (0, 1]", o.Shrinkage)
	case !(o.Lambda >= 0):
		return fmt.Errorf("classify: TreeOptions.Lambda is %g, want ≥ 0", o.Lambda)
	case !(o.MinChildWeight >= 0):
		return fmt.Errorf("classify: TreeOptions.MinChildWeight is %g, want ≥ 0", o.MinChildWeight)
	}
	return nil
}

// Tree is one regression tree: node i tests Feature[i] ≤ Threshold[i]
// and goes to Left[i] when it holds, else Right[i]; a node with Left[i]
// < 0 is a leaf worth Value[i].
type Tree struct {
	Class     int // the class whose score it adds to
	Feature   []int32
	Threshold []float32
	Left      []int32
	Right     []int32
	Value     []float32
}

// value returns the leaf value f reaches.
func (t *Tree) value(f []float32) float32 {
	i := int32(0)
	for t.Left[i] >= 0 {
		if f[t.Feature[i]] <= t.Threshold[i] {
			i = t.Left[i]
		} else {
			i = t.Right[i]
		}
	}
	return t.Value[i]
}

// Trees is a trained gradient-boosted tree ensemble: the score of class c
// is Base[c] plus the leaf values of its trees; probabilities are the
// softmax of the scores.
type Trees struct {
	Classes     []string
	NumFeatures int
	Base        []float32
	Trees       []Tree
}

// Probabilities returns the class probabilities of feature vector f.
func (m *Trees) Probabilities(f []float32) []float64 {
	s := make([]float32, len(m.Classes))
	copy(s, m.Base)
	for i := range m.Trees {
		s[m.Trees[i].Class] += m.Trees[i].value(f)
	}
	p := make([]float64, len(s))
	for c, v := range s {
		p[c] = float64(v)
	}
	softmax(p)
	return p
}

// Predict returns the class and confidence (its probability) of one
// feature vector, in Go: the reference the ONNX graph is tested against.
func (m *Trees) Predict(f []float32) (string, float64) {
	p := m.Probabilities(f)
	best := 0
	for c := range p {
		if p[c] > p[best] {
			best = c
		}
	}
	return m.Classes[best], p[best]
}

// TrainTrees fits gradient-boosted regression trees to ex with the
// softmax loss (one tree per class and round, second-order leaf values,
// exact greedy splits on the sorted feature values). Every label needs
// MinPerClass examples (ErrTooFewLabels).
func TrainTrees(ex []Example, o TreeOptions) (*Trees, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if err := checkExamples(ex); err != nil {
		return nil, err
	}
	nf := len(ex[0].Features)
	classes, y := classIndex(ex)
	nc, n := len(classes), len(ex)
	m := &Trees{Classes: classes, NumFeatures: nf, Base: make([]float32, nc)}
	// Base scores: the log of each class's share.
	for _, c := range y {
		m.Base[c]++
	}
	for c := range m.Base {
		m.Base[c] = float32(math.Log(float64(m.Base[c]) / float64(n)))
	}
	// Each feature's examples in increasing order, once.
	order := make([][]int32, nf)
	for j := range nf {
		o := make([]int32, n)
		for i := range o {
			o[i] = int32(i)
		}
		sort.SliceStable(o, func(a, b int) bool { return ex[o[a]].Features[j] < ex[o[b]].Features[j] })
		order[j] = o
	}
	score := make([][]float32, n)
	for i := range score {
		score[i] = slices.Clone(m.Base)
	}
	g, h := make([]float64, n), make([]float64, n)
	p := make([]float64, nc)
	probs := make([][]float64, n)
	for i := range probs {
		probs[i] = make([]float64, nc)
	}
	b := &treeBuilder{ex: ex, order: order, g: g, h: h, o: o, node: make([]int32, n)}
	for range o.Rounds {
		for i := range n {
			for c := range nc {
				p[c] = float64(score[i][c])
			}
			softmax(p)
			copy(probs[i], p)
		}
		for c := range nc {
			for i := range n {
				pc := probs[i][c]
				g[i] = pc
				if y[i] == c {
					g[i] -= 1
				}
				h[i] = math.Max(pc*(1-pc), 1e-6)
			}
			t := b.build(c)
			for i := range n {
				score[i][c] += t.value(ex[i].Features)
			}
			m.Trees = append(m.Trees, t)
		}
	}
	return m, nil
}

func featureName(j int) string {
	if j < len(FeatureNames) {
		return FeatureNames[j]
	}
	return fmt.Sprint("#", j)
}

// treeBuilder grows one tree on the current gradients.
type treeBuilder struct {
	ex    []Example
	order [][]int32
	g, h  []float64
	o     TreeOptions
	node  []int32 // the node each example is in
}

func (b *treeBuilder) build(class int) Tree {
	t := Tree{Class: class}
	add := func() int32 {
		t.Feature = append(t.Feature, -1)
		t.Threshold = append(t.Threshold, 0)
		t.Left = append(t.Left, -1)
		t.Right = append(t.Right, -1)
		t.Value = append(t.Value, 0)
		return int32(len(t.Left) - 1)
	}
	add()
	clear(b.node)
	maxNodes := 1<<(b.o.Depth+1) - 1
	// Per node (indexed by node number): gradient and hessian sums, the
	// left side's sums while scanning a feature, the last value seen,
	// and the best split found.
	sg, sh := make([]float64, maxNodes), make([]float64, maxNodes)
	lg, lh := make([]float64, maxNodes), make([]float64, maxNodes)
	last := make([]float32, maxNodes)
	seen := make([]bool, maxNodes)
	active := make([]bool, maxNodes)
	bestGain := make([]float64, maxNodes)
	bestF := make([]int32, maxNodes)
	bestThr := make([]float32, maxNodes)
	level := []int32{0}
	lam, shrink, mcw := b.o.Lambda, b.o.Shrinkage, b.o.MinChildWeight
	for depth := 0; ; depth++ {
		for _, k := range level {
			sg[k], sh[k], active[k], bestGain[k], bestF[k] = 0, 0, true, 1e-9, -1
		}
		for i, k := range b.node {
			if active[k] {
				sg[k] += b.g[i]
				sh[k] += b.h[i]
			}
		}
		for _, k := range level {
			t.Value[k] = float32(-shrink * sg[k] / (sh[k] + lam))
		}
		if depth == b.o.Depth {
			break
		}
		for j, ord := range b.order {
			for _, k := range level {
				lg[k], lh[k], seen[k] = 0, 0, false
			}
			for _, i := range ord {
				k := b.node[i]
				if !active[k] {
					continue
				}
				v := b.ex[i].Features[j]
				if seen[k] && v > last[k] && lh[k] >= mcw {
					rg, rh := sg[k]-lg[k], sh[k]-lh[k]
					if rh >= mcw {
						gain := lg[k]*lg[k]/(lh[k]+lam) + rg*rg/(rh+lam) - sg[k]*sg[k]/(sh[k]+lam)
						if gain > bestGain[k] {
							thr := float32((float64(last[k]) + float64(v)) / 2)
							if thr >= v {
								thr = last[k]
							}
							bestGain[k], bestF[k], bestThr[k] = gain, int32(j), thr
						}
					}
				}
				lg[k] += b.g[i]
				lh[k] += b.h[i]
				last[k], seen[k] = v, true
			}
		}
		var next []int32
		for _, k := range level {
			active[k] = false
			if bestF[k] < 0 {
				continue
			}
			t.Feature[k], t.Threshold[k] = bestF[k], bestThr[k]
			t.Left[k], t.Right[k] = add(), add()
			next = append(next, t.Left[k], t.Right[k])
		}
		if len(next) == 0 {
			break
		}
		for i, k := range b.node {
			if t.Left[k] >= 0 {
				if b.ex[i].Features[t.Feature[k]] <= t.Threshold[k] {
					b.node[i] = t.Left[k]
				} else {
					b.node[i] = t.Right[k]
				}
			}
		}
		level = next
	}
	return t
}

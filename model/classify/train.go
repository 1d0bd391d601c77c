package classify

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
)

// MinPerClass is the fewest labelled examples a class needs to be learned.
const MinPerClass = 5

// Errors returned by the package.
var (
	// ErrTooFewLabels is returned by Train when a class has fewer than
	// MinPerClass examples, or fewer than two classes have enough; the
	// message says how many each class has and needs.
	ErrTooFewLabels = errors.New("too few labels")
	// ErrBadClassifier is returned by Load for a classifier directory that
	// is missing, unreadable, or whose graph ONNX Runtime refuses.
	ErrBadClassifier = errors.New("bad classifier")
	// ErrIncompatible is returned by Load for a classifier made for other
	// features, classes or format than this engine computes.
	ErrIncompatible = errors.New("incompatible classifier")
)

// Example is one labelled defect: its features and its final label.
type Example struct {
	Features []float32
	Label    string
}

// TrainOptions configures Train.
type TrainOptions struct {
	// L2 is the weight decay of the logistic regression, > 0.
	L2 float64
	// Iterations of full-batch gradient descent, 1..100000.
	Iterations int
	// Step is the gradient step on standardised features, > 0.
	Step float64
}

// DefaultTrainOptions are what Train is measured with (model/classify
// doc: accuracy on the simulator's classes).
func DefaultTrainOptions() TrainOptions {
	return TrainOptions{L2: 1e-3, Iterations: 3000, Step: 0.5}
}

// Validate names the first bad field and its allowed range.
func (o TrainOptions) Validate() error {
	switch {
	case !(o.L2 > 0):
		return fmt.Errorf("classify: TrainOptions.L2 is %g, want > 0", o.L2)
	case o.Iterations < 1 || o.Iterations > 100000:
		return fmt.Errorf("classify: TrainOptions.Iterations is %d, want 1..100000", o.Iterations)
	case !(o.Step > 0):
		return fmt.Errorf("classify: TrainOptions.Step is %g, want > 0", o.Step)
	}
	return nil
}

// Weights is a trained multinomial logistic regression: p = softmax(W ·
// (x - Mean) / Std + B).
type Weights struct {
	Classes []string
	Mean    []float32 // per feature
	Std     []float32 // per feature, > 0
	W       []float32 // [feature][class], row-major
	B       []float32 // per class
}

// Counts returns how many examples each label has, sorted by label.
func Counts(ex []Example) map[string]int {
	c := map[string]int{}
	for _, e := range ex {
		c[e.Label]++
	}
	return c
}

// checkCounts returns ErrTooFewLabels naming every class below
// MinPerClass, with how many it has and needs.
func checkCounts(c map[string]int) error {
	var short []string
	ok := 0
	for _, k := range sortedKeys(c) {
		if c[k] < MinPerClass {
			short = append(short, fmt.Sprintf("%s has %d (needs %d more)", k, c[k], MinPerClass-c[k]))
		} else {
			ok++
		}
	}
	switch {
	case len(short) > 0:
		return fmt.Errorf("classify: %w: every class needs at least %d reviewed defects: %s",
			ErrTooFewLabels, MinPerClass, strings.Join(short, ", "))
	case ok < 2:
		return fmt.Errorf("classify: %w: need reviewed defects of at least 2 classes, %d each; have %d class(es)",
			ErrTooFewLabels, MinPerClass, ok)
	}
	return nil
}

// checkExamples checks that every label has MinPerClass examples
// (ErrTooFewLabels) and every example as many finite features as the
// first.
func checkExamples(ex []Example) error {
	if err := checkCounts(Counts(ex)); err != nil {
		return err
	}
	nf := len(ex[0].Features)
	for i, e := range ex {
		if len(e.Features) != nf {
			return fmt.Errorf("classify: example %d has %d features, the first has %d", i, len(e.Features), nf)
		}
		for j, v := range e.Features {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return fmt.Errorf("classify: example %d: feature %d (%s) is %g", i, j, featureName(j), v)
			}
		}
	}
	return nil
}

func sortedKeys(m map[string]int) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// classIndex returns the sorted labels of ex and each example's index
// among them (the class order both trainers export).
func classIndex(ex []Example) (classes []string, y []int) {
	classes = sortedKeys(Counts(ex))
	idx := make(map[string]int, len(classes))
	for i, c := range classes {
		idx[c] = i
	}
	y = make([]int, len(ex))
	for i, e := range ex {
		y[i] = idx[e.Label]
	}
	return classes, y
}

// Train fits a multinomial logistic regression (softmax, L2-regularised,
// full-batch gradient descent with momentum on standardised features) to
// ex. Every label needs MinPerClass examples (ErrTooFewLabels).
func Train(ex []Example, o TrainOptions) (*Weights, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if err := checkExamples(ex); err != nil {
		return nil, err
	}
	nf := len(ex[0].Features)
	classes, y := classIndex(ex)
	nc := len(classes)
	n := len(ex)
	w := &Weights{Classes: classes, Mean: make([]float32, nf), Std: make([]float32, nf),
		W: make([]float32, nf*nc), B: make([]float32, nc)}
	// Standardise.
	x := make([]float64, n*nf)
	for j := range nf {
		var s, s2 float64
		for i := range ex {
			v := float64(ex[i].Features[j])
			s += v
			s2 += v * v
		}
		m := s / float64(n)
		sd := math.Sqrt(math.Max(s2/float64(n)-m*m, 0))
		if sd < 1e-6 {
			sd = 1 // a constant feature: it only shifts
		}
		w.Mean[j], w.Std[j] = float32(m), float32(sd)
		for i := range ex {
			x[i*nf+j] = (float64(ex[i].Features[j]) - m) / sd
		}
	}
	// Classes are weighted inversely to their frequency, so a rare class
	// is not given up for the common ones.
	cw := make([]float64, nc)
	for _, c := range y {
		cw[c]++
	}
	for c := range cw {
		cw[c] = 1 // measured: weighting by 1/frequency lost accuracy (rare classes took common ones)
	}
	W := make([]float64, nf*nc)
	B := make([]float64, nc)
	gW := make([]float64, nf*nc)
	gB := make([]float64, nc)
	vW := make([]float64, nf*nc)
	vB := make([]float64, nc)
	p := make([]float64, nc)
	const momentum = 0.9
	for range o.Iterations {
		clear(gW)
		clear(gB)
		for i := range n {
			xi := x[i*nf : (i+1)*nf]
			logits(p, W, B, xi)
			softmax(p)
			p[y[i]] -= 1
			for c := range nc {
				g := p[c] * cw[y[i]]
				gB[c] += g
				for j, v := range xi {
					gW[j*nc+c] += g * v
				}
			}
		}
		for k := range W {
			g := gW[k]/float64(n) + o.L2*W[k]
			vW[k] = momentum*vW[k] - o.Step*g
			W[k] += vW[k]
		}
		for c := range B {
			vB[c] = momentum*vB[c] - o.Step*gB[c]/float64(n)
			B[c] += vB[c]
		}
	}
	for k := range W {
		w.W[k] = float32(W[k])
	}
	for c := range B {
		w.B[c] = float32(B[c])
	}
	return w, nil
}

func logits(p, W, B, x []float64) {
	nc := len(B)
	copy(p, B)
	for j, v := range x {
		row := W[j*nc : (j+1)*nc]
		for c := range nc {
			p[c] += row[c] * v
		}
	}
}

func softmax(p []float64) {
	m := slices.Max(p)
	s := 0.0
	for c := range p {
		p[c] = math.Exp(p[c] - m)
		s += p[c]
	}
	for c := range p {
		p[c] /= s
	}
}

// Predict returns the class and confidence (its probability) of one
// feature vector, in Go: the reference the ONNX graph is tested against.
func (w *Weights) Predict(f []float32) (string, float64) {
	nf, nc := len(w.Mean), len(w.Classes)
	p := make([]float64, nc)
	copy(p, toF64(w.B))
	for j := range nf {
		v := (float64(f[j]) - float64(w.Mean[j])) / float64(w.Std[j])
		for c := range nc {
			p[c] += float64(w.W[j*nc+c]) * v
		}
	}
	softmax(p)
	best := 0
	for c := range p {
		if p[c] > p[best] {
			best = c
		}
	}
	return w.Classes[best], p[best]
}

func toF64(v []float32) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

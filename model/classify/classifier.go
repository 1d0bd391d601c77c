package classify

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sync"

	pb "github.com/advancedclimatesystems/gonnx/onnx"
	ort "github.com/yalue/onnxruntime_go"
	"google.golang.org/protobuf/proto"
)

// File names inside a classifier directory.
const (
	GraphFileName   = "classifier.onnx"
	SidecarFileName = "classifier.json"
)

// FormatVersion is the sidecar format this package reads and writes.
const FormatVersion = 1

// Kind is the sidecar's kind, so a model directory is not taken for a
// classifier.
const Kind = "webinspect-defect-classifier"

// Graph input and output names.
const (
	InputName  = "features"
	OutputName = "probabilities"
)

// maxFileBytes caps the files Load reads.
const maxFileBytes = 64 << 20

// Sidecar is classifier.json: what the graph expects and returns, and how
// it was made.
type Sidecar struct {
	Version  int      `json:"version"`
	Kind     string   `json:"kind"`
	Features []string `json:"features"` // must equal FeatureSet.Names()
	Classes  []string `json:"classes"`  // the graph's outputs, in order
	Family   string   `json:"family"`   // FamilyTrees or FamilyLogistic
	// FeatureSet is the set the classifier was trained on; "" (written
	// before sets were recorded) is FeaturesMeasured.
	FeatureSet FeatureSet `json:"feature_set,omitempty"`
	// ModelVersion is the version (rollmap/versions) of the taught model
	// whose scores a FeaturesWithModel classifier learned; "" otherwise.
	ModelVersion string `json:"model_version,omitempty"`
	// Made says how it was made: tool, time, the rolls it learned from,
	// labels per class, measured accuracy.
	Made map[string]string `json:"made,omitempty"`
}

// Graph builds the ONNX graph of w:
//
//	features [N,F] ─ Sub(mean) ─ Mul(1/std) ─ MatMul(W [F,C]) ─ Add(b) ─ Softmax ─▶ probabilities [N,C]
func (w *Weights) Graph() ([]byte, error) {
	nf, nc := len(w.Mean), len(w.Classes)
	if nf == 0 || nc < 2 || len(w.Std) != nf || len(w.W) != nf*nc || len(w.B) != nc {
		return nil, fmt.Errorf("classify: weights of %d features and %d classes are inconsistent", nf, nc)
	}
	inv := make([]float32, nf)
	for j, s := range w.Std {
		if !(s > 0) {
			return nil, fmt.Errorf("classify: feature %d has std %g", j, s)
		}
		inv[j] = 1 / s
	}
	node := func(op, in1, in2, out string, attrs ...*pb.AttributeProto) *pb.NodeProto {
		in := []string{in1}
		if in2 != "" {
			in = append(in, in2)
		}
		return &pb.NodeProto{OpType: op, Name: out, Input: in, Output: []string{out}, Attribute: attrs}
	}
	tensor := func(name string, dims []int64, v []float32) *pb.TensorProto {
		return &pb.TensorProto{Name: name, Dims: dims, DataType: int32(pb.TensorProto_FLOAT), FloatData: v}
	}
	g := &pb.GraphProto{
		Name: "webinspect_defect_classifier",
		Node: []*pb.NodeProto{
			node("Sub", InputName, "mean", "centred"),
			node("Mul", "centred", "inv_std", "z"),
			node("MatMul", "z", "weights", "scores"),
			node("Add", "scores", "bias", "logits"),
			node("Softmax", "logits", "", OutputName, &pb.AttributeProto{Name: "axis", Type: pb.AttributeProto_INT, I: 1}),
		},
		Initializer: []*pb.TensorProto{
			tensor("mean", []int64{1, int64(nf)}, w.Mean),
			tensor("inv_std", []int64{1, int64(nf)}, inv),
			tensor("weights", []int64{int64(nf), int64(nc)}, w.W),
			tensor("bias", []int64{1, int64(nc)}, w.B),
		},
		Input:  []*pb.ValueInfoProto{valueInfo(InputName, int64(nf))},
		Output: []*pb.ValueInfoProto{valueInfo(OutputName, int64(nc))},
	}
	m := &pb.ModelProto{
		IrVersion:    8,
		OpsetImport:  []*pb.OperatorSetIdProto{{Domain: "", Version: 13}},
		ProducerName: "webinspect learn", ProducerVersion: "1",
		DocString: "webinspect defect classifier: softmax((x-mean)/std · W + b)",
		Graph:     g,
	}
	b, err := proto.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("classify: marshal graph: %w", err)
	}
	return b, nil
}

// Inputs says what a classifier is computed from: its feature set and,
// for FeaturesWithModel, the version of the taught model whose scores it
// learned. The zero value is FeaturesMeasured.
type Inputs struct {
	Set          FeatureSet
	ModelVersion string
}

// set returns in's set, FeaturesMeasured for "".
func (in Inputs) set() FeatureSet {
	if in.Set == "" {
		return FeaturesMeasured
	}
	return in.Set
}

// Write writes m as a classifier directory dir (classifier.onnx and
// classifier.json, each written to a temporary name and renamed), with
// its inputs and made recorded in the sidecar. A FeaturesWithModel
// classifier needs the model's version; m must take the set's features.
func Write(dir string, m Model, in Inputs, made map[string]string) error {
	set := in.set()
	names := set.Names()
	switch {
	case names == nil:
		return fmt.Errorf("classify: unknown feature set %q", in.Set)
	case set.NeedsModel() && in.ModelVersion == "":
		return fmt.Errorf("classify: a classifier of the %s features needs the version of the model whose scores it learned", set)
	case !set.NeedsModel() && in.ModelVersion != "":
		return fmt.Errorf("classify: a classifier of the %s features takes no model version (got %q)", set, in.ModelVersion)
	case m.Inputs() != len(names):
		return fmt.Errorf("classify: the model takes %d features, the %s set has %d", m.Inputs(), set, len(names))
	}
	g, err := m.Graph()
	if err != nil {
		return err
	}
	sc := Sidecar{Version: FormatVersion, Kind: Kind, Features: names, Classes: m.ClassNames(),
		Family: m.Family(), FeatureSet: set, ModelVersion: in.ModelVersion, Made: made}
	js, err := json.MarshalIndent(sc, "", "  ")
	if err != nil {
		return fmt.Errorf("classify: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("classify: %w", err)
	}
	for _, f := range []struct {
		name string
		b    []byte
	}{{GraphFileName, g}, {SidecarFileName, append(js, '\n')}} {
		p := filepath.Join(dir, f.name)
		if err := os.WriteFile(p+".tmp", f.b, 0o644); err != nil {
			return fmt.Errorf("classify: %w", err)
		}
		if err := os.Rename(p+".tmp", p); err != nil {
			return fmt.Errorf("classify: %w", err)
		}
	}
	return nil
}

// Classifier runs a classifier graph with ONNX Runtime, one defect at a
// time (off the per-line path: the engine calls it once per decided
// defect). It is safe for concurrent use; calls are serialised.
type Classifier struct {
	dir     string
	sidecar Sidecar
	inputs  Inputs
	mu      sync.Mutex
	sess    *ort.AdvancedSession
	in      *ort.Tensor[float32]
	out     *ort.Tensor[float32]
}

// Load opens the classifier in dir. ONNX Runtime must be initialised
// (model/onnx.Init). It checks the sidecar against the features this
// engine computes for its feature set (ErrIncompatible) and runs the
// graph once on a zero vector, checking that it returns one probability
// per class summing to 1 (ErrBadClassifier), so a classifier that loads
// is one that runs. Whether the engine has the model a FeaturesWithModel
// classifier needs is CheckModel's question.
func Load(dir string) (*Classifier, error) {
	read := func(name string) ([]byte, error) {
		p := filepath.Join(dir, name)
		st, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("classify: %w: %v", ErrBadClassifier, err)
		}
		if !st.Mode().IsRegular() || st.Size() > maxFileBytes {
			return nil, fmt.Errorf("classify: %w: %s is not a regular file of at most %d bytes", ErrBadClassifier, p, maxFileBytes)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("classify: %w: %v", ErrBadClassifier, err)
		}
		return b, nil
	}
	js, err := read(SidecarFileName)
	if err != nil {
		return nil, err
	}
	var sc Sidecar
	dec := json.NewDecoder(bytes.NewReader(js))
	if err := dec.Decode(&sc); err != nil {
		return nil, fmt.Errorf("classify: %w: %s: %v", ErrBadClassifier, filepath.Join(dir, SidecarFileName), err)
	}
	in := Inputs{Set: sc.FeatureSet, ModelVersion: sc.ModelVersion}
	set := in.set()
	in.Set = set
	want := set.Names()
	switch {
	case sc.Kind != Kind:
		return nil, fmt.Errorf("classify: %w: %s has kind %q, want %q (is it a model directory?)", ErrIncompatible, dir, sc.Kind, Kind)
	case sc.Version != FormatVersion:
		return nil, fmt.Errorf("classify: %w: %s is format %d, this engine reads %d", ErrIncompatible, dir, sc.Version, FormatVersion)
	case want == nil:
		return nil, fmt.Errorf("classify: %w: %s was trained on the feature set %q, this engine knows %s and %s: train it again with webinspect learn",
			ErrIncompatible, dir, sc.FeatureSet, FeaturesMeasured, FeaturesWithModel)
	case !slices.Equal(sc.Features, want):
		return nil, fmt.Errorf("classify: %w: %s was trained on %d features (%v), this engine computes %d for the set %s (%v): train it again with webinspect learn",
			ErrIncompatible, dir, len(sc.Features), sc.Features, len(want), set, want)
	case set.NeedsModel() && sc.ModelVersion == "":
		return nil, fmt.Errorf("classify: %w: %s was trained on the %s features but names no model version", ErrBadClassifier, dir, set)
	case len(sc.Classes) < 2:
		return nil, fmt.Errorf("classify: %w: %s names %d classes, want at least 2", ErrBadClassifier, dir, len(sc.Classes))
	}
	g, err := read(GraphFileName)
	if err != nil {
		return nil, err
	}
	c := &Classifier{dir: dir, sidecar: sc, inputs: in}
	nf, nc := int64(len(want)), int64(len(sc.Classes))
	if c.in, err = ort.NewEmptyTensor[float32](ort.NewShape(1, nf)); err != nil {
		return nil, fmt.Errorf("classify: %w", err)
	}
	if c.out, err = ort.NewEmptyTensor[float32](ort.NewShape(1, nc)); err != nil {
		c.in.Destroy()
		return nil, fmt.Errorf("classify: %w", err)
	}
	opts, err := ort.NewSessionOptions()
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("classify: session options: %w", err)
	}
	defer opts.Destroy()
	opts.SetIntraOpNumThreads(1)
	opts.SetInterOpNumThreads(1)
	c.sess, err = ort.NewAdvancedSessionWithONNXData(g, []string{InputName}, []string{OutputName},
		[]ort.Value{c.in}, []ort.Value{c.out}, opts)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("classify: %w: %s: %v", ErrBadClassifier, filepath.Join(dir, GraphFileName), err)
	}
	clear(c.in.GetData())
	if err := c.sess.Run(); err != nil {
		c.Close()
		return nil, fmt.Errorf("classify: %w: %s does not run on %d features with %d classes: %v", ErrBadClassifier, dir, nf, nc, err)
	}
	sum := 0.0
	for _, p := range c.out.GetData() {
		sum += float64(p)
	}
	if math.Abs(sum-1) > 1e-3 {
		c.Close()
		return nil, fmt.Errorf("classify: %w: %s returns probabilities summing to %g, not 1", ErrBadClassifier, dir, sum)
	}
	return c, nil
}

// Dir is the directory the classifier was loaded from.
func (c *Classifier) Dir() string { return c.dir }

// Sidecar returns the classifier's sidecar.
func (c *Classifier) Sidecar() Sidecar { return c.sidecar }

// Inputs returns the classifier's feature set and the model version it
// needs.
func (c *Classifier) Inputs() Inputs { return c.inputs }

// CheckModel returns nil when an engine running the taught model of
// version modelVersion ("" for none) can compute the classifier's
// features, else ErrIncompatible naming what the classifier needs and
// what the engine has. A FeaturesMeasured classifier runs with any model
// or none.
func (c *Classifier) CheckModel(modelVersion string) error {
	need := c.inputs.ModelVersion
	switch {
	case !c.inputs.Set.NeedsModel() || need == modelVersion:
		return nil
	case modelVersion == "":
		return fmt.Errorf("classify: %w: %s was trained with the scores of taught model %s (feature set %s), and no model is loaded: load that model, or train the classifier with --features %s",
			ErrIncompatible, c.dir, need, c.inputs.Set, FeaturesMeasured)
	}
	return fmt.Errorf("classify: %w: %s was trained with the scores of taught model %s (feature set %s), and the model loaded is %s: its scores mean something else; train the classifier again on defects that model decided",
		ErrIncompatible, c.dir, need, c.inputs.Set, modelVersion)
}

// Classify returns the class of feature vector f (from FeaturesOf with
// the classifier's set) and its probability.
func (c *Classifier) Classify(f []float32) (class string, confidence float64, err error) {
	if n := len(c.sidecar.Features); len(f) != n {
		return "", 0, fmt.Errorf("classify: %d features, want %d (set %s)", len(f), n, c.inputs.Set)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sess == nil {
		return "", 0, fmt.Errorf("classify: %s: classifier closed", c.dir)
	}
	copy(c.in.GetData(), f)
	if err := c.sess.Run(); err != nil {
		return "", 0, fmt.Errorf("classify: run %s: %w", c.dir, err)
	}
	p := c.out.GetData()
	best := 0
	for i := range p {
		if p[i] > p[best] {
			best = i
		}
	}
	return c.sidecar.Classes[best], float64(p[best]), nil
}

// Close releases the session. Classify fails afterwards.
func (c *Classifier) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sess != nil {
		c.sess.Destroy()
		c.sess = nil
	}
	if c.in != nil {
		c.in.Destroy()
		c.in = nil
	}
	if c.out != nil {
		c.out.Destroy()
		c.out = nil
	}
	return nil
}

package classify

import (
	"fmt"
	"slices"

	pb "github.com/advancedclimatesystems/gonnx/onnx"
	"google.golang.org/protobuf/proto"
)

// Family names, as the sidecar records them.
const (
	FamilyTrees    = "gradient-boosted trees"
	FamilyLogistic = "multinomial logistic regression"
)

// Model is a trained classifier that Write can store: *Trees or *Weights.
type Model interface {
	// Predict returns the class and confidence of one feature vector, in
	// Go (the reference the ONNX graph is tested against).
	Predict(f []float32) (string, float64)
	// ClassNames are the classes, in the order of the graph's outputs.
	ClassNames() []string
	// Family names the model family (FamilyTrees, FamilyLogistic).
	Family() string
	// Graph is the model as a serialised ONNX graph.
	Graph() ([]byte, error)
	// Inputs is how many features the model takes.
	Inputs() int
}

// Inputs returns how many features the ensemble takes.
func (m *Trees) Inputs() int { return m.NumFeatures }

// Inputs returns how many features the regression takes.
func (w *Weights) Inputs() int { return len(w.Mean) }

// ClassNames returns the classes.
func (m *Trees) ClassNames() []string { return m.Classes }

// Family returns FamilyTrees.
func (m *Trees) Family() string { return FamilyTrees }

// ClassNames returns the classes.
func (w *Weights) ClassNames() []string { return w.Classes }

// Family returns FamilyLogistic.
func (w *Weights) Family() string { return FamilyLogistic }

// Graph builds the ONNX graph of the ensemble: one ai.onnx.ml
// TreeEnsembleClassifier node holding every tree (BRANCH_LEQ on float
// thresholds, each leaf adding its value to its class's score, the base
// scores as base_values, SOFTMAX post-transform):
//
//	features [N,F] ─ TreeEnsembleClassifier ─▶ probabilities [N,C]  (label [N] unused)
func (m *Trees) Graph() ([]byte, error) {
	nc := len(m.Classes)
	if nc < 2 || len(m.Base) != nc || m.NumFeatures < 1 || len(m.Trees) == 0 {
		return nil, fmt.Errorf("classify: trees of %d classes, %d features and %d trees are inconsistent", nc, m.NumFeatures, len(m.Trees))
	}
	var (
		treeIDs, nodeIDs, featIDs, trueIDs, falseIDs, missing []int64
		values                                                []float32
		modes                                                 [][]byte
		cTree, cNode, cID                                     []int64
		cWeight                                               []float32
	)
	for ti, t := range m.Trees {
		if t.Class < 0 || t.Class >= nc {
			return nil, fmt.Errorf("classify: tree %d adds to class %d of %d", ti, t.Class, nc)
		}
		for k := range t.Left {
			treeIDs = append(treeIDs, int64(ti))
			nodeIDs = append(nodeIDs, int64(k))
			missing = append(missing, 0)
			if t.Left[k] < 0 {
				featIDs = append(featIDs, 0)
				values = append(values, 0)
				trueIDs, falseIDs = append(trueIDs, 0), append(falseIDs, 0)
				modes = append(modes, []byte("LEAF"))
				cTree, cNode, cID = append(cTree, int64(ti)), append(cNode, int64(k)), append(cID, int64(t.Class))
				cWeight = append(cWeight, t.Value[k])
				continue
			}
			if f := t.Feature[k]; f < 0 || int(f) >= m.NumFeatures {
				return nil, fmt.Errorf("classify: tree %d node %d tests feature %d of %d", ti, k, f, m.NumFeatures)
			}
			featIDs = append(featIDs, int64(t.Feature[k]))
			values = append(values, t.Threshold[k])
			trueIDs, falseIDs = append(trueIDs, int64(t.Left[k])), append(falseIDs, int64(t.Right[k]))
			modes = append(modes, []byte("BRANCH_LEQ"))
		}
	}
	// ONNX Runtime scores two classes its own way (the binary case: one
	// score and its negation), so two classes get a third that no tree
	// adds to and whose base score is far below, sliced off after the
	// softmax; its probability is 0 in float32.
	base, out := m.Base, OutputName
	if nc == 2 {
		base, out = append(slices.Clone(m.Base), -1e4), "padded_probabilities"
	}
	labels := make([]int64, len(base))
	for c := range labels {
		labels[c] = int64(c)
	}
	ints := func(name string, v []int64) *pb.AttributeProto {
		return &pb.AttributeProto{Name: name, Type: pb.AttributeProto_INTS, Ints: v}
	}
	floats := func(name string, v []float32) *pb.AttributeProto {
		return &pb.AttributeProto{Name: name, Type: pb.AttributeProto_FLOATS, Floats: v}
	}
	node := &pb.NodeProto{
		OpType: "TreeEnsembleClassifier", Domain: "ai.onnx.ml", Name: "trees",
		Input: []string{InputName}, Output: []string{"label", out},
		Attribute: []*pb.AttributeProto{
			ints("classlabels_int64s", labels),
			floats("base_values", base),
			ints("nodes_treeids", treeIDs), ints("nodes_nodeids", nodeIDs), ints("nodes_featureids", featIDs),
			floats("nodes_values", values),
			{Name: "nodes_modes", Type: pb.AttributeProto_STRINGS, Strings: modes},
			ints("nodes_truenodeids", trueIDs), ints("nodes_falsenodeids", falseIDs),
			ints("nodes_missing_value_tracks_true", missing),
			ints("class_treeids", cTree), ints("class_nodeids", cNode), ints("class_ids", cID),
			floats("class_weights", cWeight),
			{Name: "post_transform", Type: pb.AttributeProto_STRING, S: []byte("SOFTMAX")},
		},
	}
	g := &pb.GraphProto{
		Name:   "webinspect_defect_classifier",
		Node:   []*pb.NodeProto{node},
		Input:  []*pb.ValueInfoProto{valueInfo(InputName, int64(m.NumFeatures))},
		Output: []*pb.ValueInfoProto{valueInfo(OutputName, int64(nc))},
	}
	if nc == 2 {
		i64 := func(name string, v int64) *pb.TensorProto {
			return &pb.TensorProto{Name: name, Dims: []int64{1}, DataType: int32(pb.TensorProto_INT64), Int64Data: []int64{v}}
		}
		g.Node = append(g.Node, &pb.NodeProto{OpType: "Slice", Name: "unpad",
			Input: []string{out, "slice_starts", "slice_ends", "slice_axes"}, Output: []string{OutputName}})
		g.Initializer = append(g.Initializer, i64("slice_starts", 0), i64("slice_ends", 2), i64("slice_axes", 1))
	}
	mp := &pb.ModelProto{
		IrVersion:    8,
		OpsetImport:  []*pb.OperatorSetIdProto{{Domain: "", Version: 13}, {Domain: "ai.onnx.ml", Version: 3}},
		ProducerName: "webinspect learn", ProducerVersion: "1",
		DocString: fmt.Sprintf("webinspect defect classifier: %d gradient-boosted trees, softmax of the class scores", len(m.Trees)),
		Graph:     g,
	}
	b, err := proto.Marshal(mp)
	if err != nil {
		return nil, fmt.Errorf("classify: marshal graph: %w", err)
	}
	return b, nil
}

// valueInfo describes a float tensor [N, d1].
func valueInfo(name string, d1 int64) *pb.ValueInfoProto {
	dims := []*pb.TensorShapeProto_Dimension{
		{Value: &pb.TensorShapeProto_Dimension_DimParam{DimParam: "N"}},
		{Value: &pb.TensorShapeProto_Dimension_DimValue{DimValue: d1}},
	}
	return &pb.ValueInfoProto{Name: name, Type: &pb.TypeProto{Value: &pb.TypeProto_TensorType{TensorType: &pb.TypeProto_Tensor{
		ElemType: int32(pb.TensorProto_FLOAT), Shape: &pb.TensorShapeProto{Dim: dims}}}}}
}

package onnx

import (
	"fmt"
	"math"
	"strings"

	pb "github.com/advancedclimatesystems/gonnx/onnx"
	"google.golang.org/protobuf/proto"
)

// Graph versions BuildScoringModel writes: IR version 8 with the default
// operator set 13, which ONNX Runtime 1.30 runs and whose Reduce* operators
// still take axes as an attribute.
const (
	buildIRVersion = 8
	buildOpset     = 13
)

// ScoringModelSpec describes the scoring graph BuildScoringModel writes:
//
//	x [N,C,H,W] ─ Sub(mean) ─ Mul(1/std) ─ Abs ─┬─ (C=3: ReduceMean over C) ─ AveragePool k×k ─▶ anomaly map [N,1,H,W]
//	                                            └────────────────────────────────────────────────── ReduceMax over C,H,W ─▶ score [N]
//
// (the score is the maximum of the anomaly map). It is the first, fixed
// stage of the taught model: issue 4's teach step extends it by replacing
// Sub/Mul/Abs with filter banks learned from good material (principal
// components of patches at two or three scales, as Conv), a Gaussian model
// of their responses scored as Hotelling T² (MatMul with the inverse
// covariance, ReduceSum) plus subspace residual Q, keeping this input and
// output contract and the AveragePool/ReduceMax tail.
type ScoringModelSpec struct {
	// InputName, MapName and ScoreName name the graph's input and outputs.
	InputName, MapName, ScoreName string
	// Channels is the input channel count, 1 or 3. With 3 the per-channel
	// deviations are averaged into one map.
	Channels int
	// Height and Width are the tile size, 1..MaxTileSide.
	Height, Width int
	// Batch is 0 for a free batch dimension N, or a fixed batch 1..MaxBatch.
	Batch int
	// Mean and Std describe good material per channel, in the units the
	// graph sees (after the sidecar's input normalisation); one value for
	// all channels or one per channel. Std values must be > 0.
	Mean, Std []float32
	// Smooth is the AveragePool box side, odd 1..15 (1: no smoothing).
	// Borders average only the pixels inside the tile (same-size output).
	Smooth int
}

// DefaultScoringModelSpec returns a 1-channel 64×64 spec with a free batch,
// mean 0.5, std 0.1 and 3×3 smoothing, named as the export convention does
// ("input", "anomaly_map", "pred_score").
func DefaultScoringModelSpec() ScoringModelSpec {
	return ScoringModelSpec{
		InputName: "input", MapName: "anomaly_map", ScoreName: "pred_score",
		Channels: 1, Height: 64, Width: 64,
		Mean: []float32{0.5}, Std: []float32{0.1}, Smooth: 3,
	}
}

// Validate names the first bad field and its allowed range.
func (s *ScoringModelSpec) Validate() error {
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("onnx: %w: ScoringModelSpec.%s %s", ErrOptions, field, fmt.Sprintf(format, args...))
	}
	if err := checkIONames(bad, s.InputName, s.MapName, s.ScoreName); err != nil {
		return err
	}
	switch {
	case s.Channels != 1 && s.Channels != 3:
		return bad("Channels", "is %d, want 1 or 3", s.Channels)
	case s.Height < 1 || s.Height > MaxTileSide:
		return bad("Height", "is %d, want 1..%d", s.Height, MaxTileSide)
	case s.Width < 1 || s.Width > MaxTileSide:
		return bad("Width", "is %d, want 1..%d", s.Width, MaxTileSide)
	case s.Batch < 0 || s.Batch > MaxBatch:
		return bad("Batch", "is %d, want 0 (free) or 1..%d", s.Batch, MaxBatch)
	case s.Smooth < 1 || s.Smooth > 15 || s.Smooth%2 == 0:
		return bad("Smooth", "is %d, want odd 1..15", s.Smooth)
	}
	for _, f := range []struct {
		field string
		v     []float32
	}{{"Mean", s.Mean}, {"Std", s.Std}} {
		if len(f.v) != 1 && len(f.v) != s.Channels {
			return bad(f.field, "has %d values, want 1 or %d", len(f.v), s.Channels)
		}
		for i, v := range f.v {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) || (f.field == "Std" && v <= 0) {
				return bad(fmt.Sprintf("%s[%d]", f.field, i), "is %v, want a finite number (Std > 0)", v)
			}
		}
	}
	return nil
}

// checkIONames checks a graph's input and output names: none empty, all
// distinct. bad makes the error for a field.
func checkIONames(bad func(field, format string, args ...any) error, input, anomalyMap, score string) error {
	names := map[string]bool{}
	for _, f := range []struct{ field, v string }{{"InputName", input}, {"MapName", anomalyMap}, {"ScoreName", score}} {
		if strings.TrimSpace(f.v) == "" {
			return bad(f.field, "is empty")
		}
		if names[f.v] {
			return bad(f.field, "%q is used twice; input and outputs need distinct names", f.v)
		}
		names[f.v] = true
	}
	return nil
}

// Sidecar returns a sidecar that matches the graph: pixels fed as p/255,
// raw outputs, no threshold, made_by filled with the spec.
func (s *ScoringModelSpec) Sidecar() Sidecar {
	n := int64(-1)
	if s.Batch > 0 {
		n = int64(s.Batch)
	}
	return Sidecar{
		Version: SidecarVersion,
		Input: InputSpec{
			Name:  s.InputName,
			Shape: []int64{n, int64(s.Channels), int64(s.Height), int64(s.Width)},
		},
		Outputs: OutputSpec{AnomalyMap: s.MapName, Score: s.ScoreName},
		MadeBy: MadeBy{
			Tool:   "webinspect",
			Method: "scoring graph: |x-mean|/std, box mean, max",
			Params: map[string]string{
				"mean":   fmt.Sprint(s.Mean),
				"std":    fmt.Sprint(s.Std),
				"smooth": fmt.Sprint(s.Smooth),
			},
		},
	}
}

// BuildScoringModel returns the serialised ONNX model for spec.
func BuildScoringModel(spec ScoringModelSpec) ([]byte, error) {
	m, err := scoringModel(spec)
	if err != nil {
		return nil, err
	}
	b, err := proto.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("onnx: marshal scoring model: %w", err)
	}
	return b, nil
}

// scoringModel builds the graph as protobuf messages (tests alter it to
// make models that must be refused).
func scoringModel(spec ScoringModelSpec) (*pb.ModelProto, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	c := spec.Channels
	perChannel := func(v []float32, inv bool) []float32 {
		out := make([]float32, c)
		for i := range out {
			x := v[0]
			if len(v) == c {
				x = v[i]
			}
			if inv {
				x = float32(1 / float64(x))
			}
			out[i] = x
		}
		return out
	}
	var nodes []*pb.NodeProto
	node := func(op, name string, in []string, out string, attrs ...*pb.AttributeProto) {
		nodes = append(nodes, &pb.NodeProto{OpType: op, Name: name, Input: in, Output: []string{out}, Attribute: attrs})
	}
	node("Sub", "center", []string{spec.InputName, "mean"}, "centered")
	node("Mul", "scale", []string{"centered", "inv_std"}, "z")
	dev := "abs_z"
	node("Abs", "deviation", []string{"z"}, dev)
	if c > 1 {
		node("ReduceMean", "channel_mean", []string{dev}, "dev", intsAttr("axes", 1), intAttr("keepdims", 1))
		dev = "dev"
	}
	if k := int64(spec.Smooth); k > 1 {
		r := k / 2
		node("AveragePool", "smooth", []string{dev}, spec.MapName,
			intsAttr("kernel_shape", k, k), intsAttr("pads", r, r, r, r),
			intsAttr("strides", 1, 1), intAttr("count_include_pad", 0))
	} else {
		node("Identity", "smooth", []string{dev}, spec.MapName)
	}
	node("ReduceMax", "score", []string{spec.MapName}, spec.ScoreName, intsAttr("axes", 1, 2, 3), intAttr("keepdims", 0))

	n := dimParam("N")
	if spec.Batch > 0 {
		n = dimValue(int64(spec.Batch))
	}
	h, w := dimValue(int64(spec.Height)), dimValue(int64(spec.Width))
	graph := &pb.GraphProto{
		Name: "webinspect_scoring",
		Node: nodes,
		Initializer: []*pb.TensorProto{
			floatTensor("mean", []int64{1, int64(c), 1, 1}, perChannel(spec.Mean, false)),
			floatTensor("inv_std", []int64{1, int64(c), 1, 1}, perChannel(spec.Std, true)),
		},
		Input: []*pb.ValueInfoProto{
			tensorInfo(spec.InputName, pb.TensorProto_FLOAT, n, dimValue(int64(c)), h, w),
		},
		Output: []*pb.ValueInfoProto{
			tensorInfo(spec.MapName, pb.TensorProto_FLOAT, n, dimValue(1), h, w),
			tensorInfo(spec.ScoreName, pb.TensorProto_FLOAT, n),
		},
	}
	return &pb.ModelProto{
		IrVersion:       buildIRVersion,
		OpsetImport:     []*pb.OperatorSetIdProto{{Domain: "", Version: buildOpset}},
		ProducerName:    "webinspect",
		ProducerVersion: "1",
		DocString:       "webinspect scoring graph: |x-mean|/std, box mean, max",
		Graph:           graph,
	}, nil
}

func intAttr(name string, v int64) *pb.AttributeProto {
	return &pb.AttributeProto{Name: name, Type: pb.AttributeProto_INT, I: v}
}

func intsAttr(name string, v ...int64) *pb.AttributeProto {
	return &pb.AttributeProto{Name: name, Type: pb.AttributeProto_INTS, Ints: v}
}

func floatTensor(name string, dims []int64, v []float32) *pb.TensorProto {
	return &pb.TensorProto{Name: name, Dims: dims, DataType: int32(pb.TensorProto_FLOAT), FloatData: v}
}

func dimValue(v int64) *pb.TensorShapeProto_Dimension {
	return &pb.TensorShapeProto_Dimension{Value: &pb.TensorShapeProto_Dimension_DimValue{DimValue: v}}
}

func dimParam(p string) *pb.TensorShapeProto_Dimension {
	return &pb.TensorShapeProto_Dimension{Value: &pb.TensorShapeProto_Dimension_DimParam{DimParam: p}}
}

func tensorInfo(name string, t pb.TensorProto_DataType, dims ...*pb.TensorShapeProto_Dimension) *pb.ValueInfoProto {
	return &pb.ValueInfoProto{
		Name: name,
		Type: &pb.TypeProto{Value: &pb.TypeProto_TensorType{TensorType: &pb.TypeProto_Tensor{
			ElemType: int32(t),
			Shape:    &pb.TensorShapeProto{Dim: dims},
		}}},
	}
}

package onnx

import (
	"fmt"
	"github.com/webinspect/webinspect/internal/boundedfile"
	"os"
	"path/filepath"
	"strings"

	ort "github.com/yalue/onnxruntime_go"
)

// ModelOptions configures Load. The zero value is not valid; start from
// DefaultModelOptions. Tile fields carry the recipe's view of the model:
// when non-zero they must agree with the sidecar, so a recipe and a model
// made for different tiles are refused at load.
type ModelOptions struct {
	// Sidecar is the sidecar path. Empty means model.json beside the ONNX
	// file (or inside the model directory).
	Sidecar string
	// Batch is the number of tiles one Session.Run takes, 1..MaxBatch.
	// A model with a fixed batch dimension must match it exactly.
	Batch int
	// IntraOpThreads is ONNX Runtime's thread count per session, 1..64.
	// One session per worker with one thread each measured best here.
	IntraOpThreads int
	// TileHeight and TileWidth, when non-zero, are the recipe's tile size
	// (after binning) and must equal the sidecar's H and W.
	TileHeight, TileWidth int
	// Channels, when non-zero, is the channel count the recipe expects the
	// model to take (1 or 3) and must equal the sidecar's C.
	Channels int
}

// MaxBatch bounds ModelOptions.Batch.
const MaxBatch = 1024

// maxModelBytes caps model.onnx at protobuf's 2 GiB message limit (our
// models are a few megabytes); a device or FIFO is refused.
const maxModelBytes = 2 << 30

// DefaultModelOptions returns batch 1 and one intra-op thread, no recipe
// constraints.
func DefaultModelOptions() ModelOptions {
	return ModelOptions{Batch: 1, IntraOpThreads: 1}
}

// Validate names the first bad field and its allowed range.
func (o *ModelOptions) Validate() error {
	switch {
	case o.Batch < 1 || o.Batch > MaxBatch:
		return fmt.Errorf("onnx: %w: ModelOptions.Batch is %d, want 1..%d", ErrOptions, o.Batch, MaxBatch)
	case o.IntraOpThreads < 1 || o.IntraOpThreads > 64:
		return fmt.Errorf("onnx: %w: ModelOptions.IntraOpThreads is %d, want 1..64", ErrOptions, o.IntraOpThreads)
	case o.TileHeight < 0 || o.TileHeight > MaxTileSide:
		return fmt.Errorf("onnx: %w: ModelOptions.TileHeight is %d, want 0 (any) or 1..%d", ErrOptions, o.TileHeight, MaxTileSide)
	case o.TileWidth < 0 || o.TileWidth > MaxTileSide:
		return fmt.Errorf("onnx: %w: ModelOptions.TileWidth is %d, want 0 (any) or 1..%d", ErrOptions, o.TileWidth, MaxTileSide)
	case o.Channels != 0 && o.Channels != 1 && o.Channels != 3:
		return fmt.Errorf("onnx: %w: ModelOptions.Channels is %d, want 0 (any), 1 or 3", ErrOptions, o.Channels)
	}
	return nil
}

// Model is a loaded, checked model: the ONNX bytes, the sidecar and the
// tensor layout sessions will use. It holds no runtime resources, is
// immutable and safe for concurrent use; each worker makes its own Session.
type Model struct {
	path    string
	data    []byte
	sidecar Sidecar
	opts    ModelOptions

	c, h, w  int
	mapDims  int // rank of the anomaly map output: 3 ([N,H,W]) or 4 ([N,1,H,W])
	scoreDim int // rank of the score output: 1 ([N]) or 2 ([N,1])
	fixedN   bool
}

// Load reads a model and its sidecar, checks them against each other and
// against opts, and returns the Model. path is a model directory holding
// model.onnx and model.json, or an .onnx file with model.json beside it
// (or opts.Sidecar). Load calls Init("") if the runtime is not loaded yet.
//
// A model is refused (ErrMismatch) when it has other inputs than the
// sidecar's, when the input or an output is missing, is not float32, or has
// a shape that disagrees with the sidecar; the message names both sides,
// e.g. `model input "x" is [1,3,256,256] float32, sidecar says [N,1,64,64] float32`.
func Load(path string, opts ModelOptions) (*Model, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if LibraryPath() == "" {
		if err := Init(""); err != nil {
			return nil, err
		}
	}
	onnxPath, sidecarPath := path, opts.Sidecar
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		onnxPath = filepath.Join(path, ModelFileName)
	}
	if sidecarPath == "" {
		sidecarPath = filepath.Join(filepath.Dir(onnxPath), SidecarFileName)
	}
	sc, err := ReadSidecar(sidecarPath)
	if err != nil {
		return nil, err
	}
	if err := checkRecipe(&sc, &opts); err != nil {
		return nil, err
	}
	data, err := boundedfile.Read(onnxPath, maxModelBytes)
	if err != nil {
		return nil, fmt.Errorf("onnx: %w: %v", ErrBadModel, err)
	}
	if len(data) == 0 {
		return nil, fmt.Errorf("onnx: %w: %s is empty", ErrBadModel, onnxPath)
	}
	ins, outs, err := ort.GetInputOutputInfoWithONNXData(data)
	if err != nil {
		return nil, fmt.Errorf("onnx: %w: %s: ONNX Runtime cannot open it: %v", ErrBadModel, onnxPath, err)
	}
	m := &Model{path: onnxPath, data: data, sidecar: sc, opts: opts,
		c: sc.Channels(), h: sc.Height(), w: sc.Width()}
	if err := m.checkIO(ins, outs); err != nil {
		return nil, fmt.Errorf("%w (model %s, sidecar %s)", err, onnxPath, sidecarPath)
	}
	return m, nil
}

// checkRecipe compares the recipe's tile constraints with the sidecar.
func checkRecipe(sc *Sidecar, o *ModelOptions) error {
	if (o.TileHeight != 0 && o.TileHeight != sc.Height()) || (o.TileWidth != 0 && o.TileWidth != sc.Width()) {
		return fmt.Errorf("onnx: %w: recipe tile is %s×%s, sidecar says %s",
			ErrMismatch, anyDim(o.TileHeight), anyDim(o.TileWidth), formatShape(sc.Input.Shape))
	}
	if o.Channels != 0 && o.Channels != sc.Channels() {
		return fmt.Errorf("onnx: %w: recipe wants a %d-channel model, sidecar says %s",
			ErrMismatch, o.Channels, formatShape(sc.Input.Shape))
	}
	if n := sc.Input.Shape[0]; n > 0 && int64(o.Batch) != n {
		return fmt.Errorf("onnx: %w: batch is %d, sidecar says %s (fixed batch %d)",
			ErrMismatch, o.Batch, formatShape(sc.Input.Shape), n)
	}
	return nil
}

func anyDim(v int) string {
	if v == 0 {
		return "any"
	}
	return fmt.Sprint(v)
}

// checkIO compares the runtime's view of the graph with the sidecar.
func (m *Model) checkIO(ins, outs []ort.InputOutputInfo) error {
	sc := &m.sidecar
	want := sc.Input.Shape
	var in *ort.InputOutputInfo
	for i := range ins {
		if ins[i].Name == sc.Input.Name {
			in = &ins[i]
		}
	}
	if in == nil {
		return fmt.Errorf("onnx: %w: model has no input %q (sidecar input.name); model inputs are %s",
			ErrMismatch, sc.Input.Name, describe(ins))
	}
	wantIns := 1
	if sc.Input.Edges != "" {
		wantIns = 2
		var ei *ort.InputOutputInfo
		for i := range ins {
			if ins[i].Name == sc.Input.Edges {
				ei = &ins[i]
			}
		}
		if ei == nil {
			return fmt.Errorf("onnx: %w: model has no input %q (sidecar input.edges); model inputs are %s",
				ErrMismatch, sc.Input.Edges, describe(ins))
		}
		ew := []int64{want[0], 1, want[2], 2}
		if ei.OrtValueType != ort.ONNXTypeTensor || ei.DataType != ort.TensorElementDataTypeFloat || len(ei.Dimensions) != 4 {
			return fmt.Errorf("onnx: %w: model input %q (edges) is %s, sidecar says %s float32",
				ErrMismatch, ei.Name, describeOne(ei), formatShape(ew))
		}
		for i, d := range ei.Dimensions {
			if d >= 0 && d != ew[i] && !(i == 0 && ew[0] < 0) {
				return fmt.Errorf("onnx: %w: model input %q (edges) is %s, sidecar says %s float32",
					ErrMismatch, ei.Name, describeOne(ei), formatShape(ew))
			}
		}
	}
	if len(ins) != wantIns {
		return fmt.Errorf("onnx: %w: model has %d inputs %s, sidecar describes %d (%q, edges %q); every input must be fed",
			ErrMismatch, len(ins), describe(ins), wantIns, sc.Input.Name, sc.Input.Edges)
	}
	refuseIn := func() error {
		return fmt.Errorf("onnx: %w: model input %q is %s, sidecar says %s float32",
			ErrMismatch, in.Name, describeOne(in), formatShape(want))
	}
	if in.OrtValueType != ort.ONNXTypeTensor || in.DataType != ort.TensorElementDataTypeFloat || len(in.Dimensions) != 4 {
		return refuseIn()
	}
	for i, d := range in.Dimensions {
		switch {
		case d < 0: // free in the model: the sidecar decides
		case i == 0 && want[0] < 0:
			// Model has a fixed batch; the sidecar must say so too.
			return refuseIn()
		case d != want[i]:
			return refuseIn()
		}
	}
	m.fixedN = in.Dimensions[0] > 0 || want[0] > 0

	find := func(name, field string) (*ort.InputOutputInfo, error) {
		for i := range outs {
			if outs[i].Name == name {
				return &outs[i], nil
			}
		}
		return nil, fmt.Errorf("onnx: %w: model has no output %q (sidecar %s); model outputs are %s",
			ErrMismatch, name, field, describe(outs))
	}
	mo, err := find(sc.Outputs.AnomalyMap, "outputs.anomaly_map")
	if err != nil {
		return err
	}
	so, err := find(sc.Outputs.Score, "outputs.score")
	if err != nil {
		return err
	}
	n := want[0]
	mapWant := [][]int64{{n, 1, want[2], want[3]}, {n, want[2], want[3]}}
	if rank, ok := matchOutput(mo, mapWant); ok {
		m.mapDims = rank
	} else {
		return fmt.Errorf("onnx: %w: model output %q (anomaly map) is %s, sidecar says %s float32 or %s float32",
			ErrMismatch, mo.Name, describeOne(mo), formatShape(mapWant[0]), formatShape(mapWant[1]))
	}
	scoreWant := [][]int64{{n}, {n, 1}}
	if rank, ok := matchOutput(so, scoreWant); ok {
		m.scoreDim = rank
	} else {
		return fmt.Errorf("onnx: %w: model output %q (score) is %s, sidecar says %s float32 or %s float32",
			ErrMismatch, so.Name, describeOne(so), formatShape(scoreWant[0]), formatShape(scoreWant[1]))
	}
	return nil
}

// matchOutput reports the rank of the first wanted shape the output fits.
// A free model dimension fits anything; a free wanted dimension (N = -1)
// fits only a free model dimension.
func matchOutput(o *ort.InputOutputInfo, wants [][]int64) (int, bool) {
	if o.OrtValueType != ort.ONNXTypeTensor || o.DataType != ort.TensorElementDataTypeFloat {
		return 0, false
	}
next:
	for _, w := range wants {
		if len(o.Dimensions) != len(w) {
			continue
		}
		for i, d := range o.Dimensions {
			if d >= 0 && d != w[i] {
				continue next
			}
		}
		return len(w), true
	}
	return 0, false
}

func describe(vs []ort.InputOutputInfo) string {
	parts := make([]string, len(vs))
	for i := range vs {
		parts[i] = fmt.Sprintf("%q %s", vs[i].Name, describeOne(&vs[i]))
	}
	return strings.Join(parts, ", ")
}

func describeOne(v *ort.InputOutputInfo) string {
	if v.OrtValueType != ort.ONNXTypeTensor {
		return "a " + v.OrtValueType.String() + ", not a tensor"
	}
	return formatShape(v.Dimensions) + " " + elemName(v.DataType)
}

// elemName gives NumPy-style names for ONNX element types.
func elemName(t ort.TensorElementDataType) string {
	switch t {
	case ort.TensorElementDataTypeFloat:
		return "float32"
	case ort.TensorElementDataTypeDouble:
		return "float64"
	case ort.TensorElementDataTypeFloat16:
		return "float16"
	case ort.TensorElementDataTypeBFloat16:
		return "bfloat16"
	case ort.TensorElementDataTypeUint8:
		return "uint8"
	case ort.TensorElementDataTypeInt8:
		return "int8"
	case ort.TensorElementDataTypeUint16:
		return "uint16"
	case ort.TensorElementDataTypeInt16:
		return "int16"
	case ort.TensorElementDataTypeInt32:
		return "int32"
	case ort.TensorElementDataTypeInt64:
		return "int64"
	case ort.TensorElementDataTypeBool:
		return "bool"
	}
	return strings.ToLower(strings.TrimPrefix(t.String(), "ONNX_TENSOR_ELEMENT_DATA_TYPE_"))
}

// Path returns the ONNX file the model was loaded from.
func (m *Model) Path() string { return m.path }

// Sidecar returns a copy of the model's sidecar.
func (m *Model) Sidecar() Sidecar { return m.sidecar }

// TileSize returns the tile height and width the model takes.
func (m *Model) TileSize() (h, w int) { return m.h, m.w }

// Channels returns the model's input channel count (1 or 3).
func (m *Model) Channels() int { return m.c }

// Batch returns the number of tiles one Session.Run takes at most.
func (m *Model) Batch() int { return m.opts.Batch }

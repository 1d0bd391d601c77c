package onnx

import (
	"bytes"
	"encoding/json"
	"fmt"
	"github.com/webinspect/webinspect/internal/boundedfile"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// SidecarVersion is the sidecar format version this package reads and writes.
const SidecarVersion = 1

// File names inside a model directory.
const (
	ModelFileName   = "model.onnx"
	SidecarFileName = "model.json"
)

// Sidecar is the JSON file (model.json) that travels with every model and
// tells the engine how to feed it and read it. It maps one to one onto the
// file; see the package doc for an example.
type Sidecar struct {
	// Version is the sidecar format version; must be SidecarVersion.
	Version int `json:"version"`
	// Input describes the model's single image input.
	Input InputSpec `json:"input"`
	// Outputs names the anomaly-map and score outputs and their optional
	// min/max normalisation.
	Outputs OutputSpec `json:"outputs"`
	// Threshold is the anomaly-map level above which a pixel is defective,
	// in the units Session.Run returns (after Outputs min/max scaling).
	// Nil when the model carries none and the recipe must give one.
	Threshold *float64 `json:"threshold,omitempty"`
	// MadeBy records how the model was made.
	MadeBy MadeBy `json:"made_by"`
}

// InputSpec describes the image input tensor [N,C,H,W] float32.
type InputSpec struct {
	// Name is the graph input's name.
	Name string `json:"name"`
	// Shape is [N,C,H,W]: N = -1 for any batch size or a fixed batch ≥ 1;
	// C is 1 or 3 (grayscale is replicated when C is 3); H and W are the
	// tile size in pixels, 1..MaxTileSide.
	Shape []int64 `json:"shape"`
	// Mean and Std normalise pixels before they reach the graph:
	// x = (p/255 - Mean[c]) / Std[c] for an 8-bit pixel p. Each has no
	// entries (mean 0, std 1), one entry for all channels, or C entries.
	Mean []float64 `json:"mean,omitempty"`
	Std  []float64 `json:"std,omitempty"`
	// Edges, when set, names a second input [N,1,H,2] float32 that holds,
	// for every tile row, the web's left and right edge in tile columns
	// (the web is [left, right); a side the row shows no edge on holds
	// ∓edge.Far). Taught models with CD zones read it to pick each
	// pixel's zone and to zero the map off the web. Sessions fill it from
	// Tile.E0/E1 (no edges when those are nil).
	Edges string `json:"edges,omitempty"`
}

// OutputSpec names the outputs. The anomaly map is [N,1,H,W] or [N,H,W]
// float32 at the input's resolution; the score is [N] or [N,1] float32.
type OutputSpec struct {
	AnomalyMap string `json:"anomaly_map"`
	Score      string `json:"score"`
	// Min and Max, when Max > Min, rescale map and score to
	// (v - Min) / (Max - Min) after each run (the export convention's
	// min/max normalisation). Both zero means raw outputs.
	Min float64 `json:"min,omitempty"`
	Max float64 `json:"max,omitempty"`
}

// MadeBy records where a model came from. Teach fills every field; an
// imported model may carry only Tool or Source.
type MadeBy struct {
	// Tool that wrote the model, e.g. "webinspect teach" or "anomalib".
	Tool string `json:"tool,omitempty"`
	// Method in a few words, e.g. "scoring: |x-mean|/std, 3x3 mean, max".
	Method string `json:"method,omitempty"`
	// Created is an RFC 3339 time.
	Created string `json:"created,omitempty"`
	// Source is the good material it was taught on, or where it was imported from.
	Source string `json:"source,omitempty"`
	// Runtime is the ONNX Runtime version it was checked against.
	Runtime string `json:"runtime,omitempty"`
	// Params holds method parameters as text (scales, components, FAR target…).
	Params map[string]string `json:"params,omitempty"`
}

// MaxTileSide bounds H and W in a sidecar.
const MaxTileSide = 8192

// Channels returns C from the input shape (0 when the shape is malformed).
func (s *Sidecar) Channels() int { return s.dim(1) }

// Height returns H from the input shape.
func (s *Sidecar) Height() int { return s.dim(2) }

// Width returns W from the input shape.
func (s *Sidecar) Width() int { return s.dim(3) }

func (s *Sidecar) dim(i int) int {
	if len(s.Input.Shape) != 4 {
		return 0
	}
	return int(s.Input.Shape[i])
}

// Validate checks every field and names the first bad one with its allowed
// range. The error wraps ErrSidecar.
func (s *Sidecar) Validate() error {
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("onnx: %w: %s %s", ErrSidecar, field, fmt.Sprintf(format, args...))
	}
	if s.Version != SidecarVersion {
		return bad("version", "is %d, want %d", s.Version, SidecarVersion)
	}
	if strings.TrimSpace(s.Input.Name) == "" {
		return bad("input.name", "is empty, want the graph input's name")
	}
	sh := s.Input.Shape
	if len(sh) != 4 {
		return bad("input.shape", "has %d dimensions, want 4 ([N,C,H,W])", len(sh))
	}
	if sh[0] != -1 && sh[0] < 1 {
		return bad("input.shape[0] (N)", "is %d, want -1 (any batch) or ≥ 1", sh[0])
	}
	if sh[1] != 1 && sh[1] != 3 {
		return bad("input.shape[1] (C)", "is %d, want 1 or 3", sh[1])
	}
	for i, name := range []string{"H", "W"} {
		if v := sh[2+i]; v < 1 || v > MaxTileSide {
			return bad(fmt.Sprintf("input.shape[%d] (%s)", 2+i, name), "is %d, want 1..%d", v, MaxTileSide)
		}
	}
	c := int(sh[1])
	for _, f := range []struct {
		name string
		v    []float64
	}{{"input.mean", s.Input.Mean}, {"input.std", s.Input.Std}} {
		if len(f.v) != 0 && len(f.v) != 1 && len(f.v) != c {
			return bad(f.name, "has %d values, want 0, 1 or %d (one per channel)", len(f.v), c)
		}
		for i, v := range f.v {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return bad(fmt.Sprintf("%s[%d]", f.name, i), "is %v, want a finite number", v)
			}
			if f.name == "input.std" && v <= 0 {
				return bad(fmt.Sprintf("%s[%d]", f.name, i), "is %v, want > 0", v)
			}
		}
	}
	if e := s.Input.Edges; e != "" && (strings.TrimSpace(e) == "" || e == s.Input.Name) {
		return bad("input.edges", "is %q, want the edges input's name, distinct from input.name", e)
	}
	o := s.Outputs
	if strings.TrimSpace(o.AnomalyMap) == "" {
		return bad("outputs.anomaly_map", "is empty, want the anomaly-map output's name")
	}
	if strings.TrimSpace(o.Score) == "" {
		return bad("outputs.score", "is empty, want the score output's name")
	}
	if o.AnomalyMap == o.Score {
		return bad("outputs.score", "is %q, the same as outputs.anomaly_map; want two outputs", o.Score)
	}
	if o.AnomalyMap == s.Input.Name || o.Score == s.Input.Name {
		return bad("outputs", "reuse the input name %q", s.Input.Name)
	}
	if e := s.Input.Edges; e != "" && (o.AnomalyMap == e || o.Score == e) {
		return bad("outputs", "reuse the edges input name %q", e)
	}
	for _, v := range []float64{o.Min, o.Max} {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return bad("outputs.min/max", "is %v, want finite numbers", v)
		}
	}
	if (o.Min != 0 || o.Max != 0) && !(o.Max > o.Min) {
		return bad("outputs.max", "is %v with outputs.min %v, want max > min (or both 0 for raw outputs)", o.Max, o.Min)
	}
	if s.Threshold != nil && (math.IsNaN(*s.Threshold) || math.IsInf(*s.Threshold, 0)) {
		return bad("threshold", "is %v, want a finite number", *s.Threshold)
	}
	return nil
}

// maxSidecarBytes caps model.json (a few kilobytes of thresholds and
// normalisation constants).
const maxSidecarBytes = 4 << 20

// ReadSidecar reads and validates a sidecar file. Unknown fields are an
// error, so a misspelt key does not silently fall back to a default.
func ReadSidecar(path string) (Sidecar, error) {
	var s Sidecar
	b, err := boundedfile.Read(path, maxSidecarBytes)
	if err != nil {
		return s, fmt.Errorf("onnx: %w: %v", ErrSidecar, err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return s, fmt.Errorf("onnx: %w: %s: %v", ErrSidecar, path, err)
	}
	if err := s.Validate(); err != nil {
		return s, fmt.Errorf("%w (in %s)", err, path)
	}
	return s, nil
}

// WriteSidecar validates s and writes it as indented JSON.
func WriteSidecar(path string, s Sidecar) error {
	if err := s.Validate(); err != nil {
		return err
	}
	b, err := json.MarshalIndent(&s, "", "  ")
	if err != nil {
		return fmt.Errorf("onnx: encode sidecar: %w", err)
	}
	return writeFileAtomic(path, append(b, '\n'))
}

// WriteModelDir writes an ONNX model and its sidecar into dir as
// model.onnx and model.json, creating dir if needed. This is the layout
// Load and `--model MODELDIR` expect.
func WriteModelDir(dir string, model []byte, s Sidecar) error {
	if err := s.Validate(); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("onnx: model dir: %w", err)
	}
	if err := writeFileAtomic(filepath.Join(dir, ModelFileName), model); err != nil {
		return err
	}
	return WriteSidecar(filepath.Join(dir, SidecarFileName), s)
}

func writeFileAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("onnx: write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("onnx: write %s: %w", path, err)
	}
	return nil
}

// formatShape prints a shape as [N,1,64,64]: a free first dimension is N,
// any other free dimension is ?.
func formatShape(s []int64) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, d := range s {
		if i > 0 {
			b.WriteByte(',')
		}
		switch {
		case d < 0 && i == 0:
			b.WriteByte('N')
		case d < 0:
			b.WriteByte('?')
		default:
			b.WriteString(strconv.FormatInt(d, 10))
		}
	}
	b.WriteByte(']')
	return b.String()
}

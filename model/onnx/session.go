package onnx

import (
	"errors"
	"fmt"

	ort "github.com/yalue/onnxruntime_go"
)

// Session runs one model for one worker. It owns its ONNX Runtime session
// and preallocated input and output tensors that every Run reuses, so Run
// allocates nothing. A Session is not safe for concurrent use: make one per
// worker with Model.NewSession.
type Session struct {
	m    *Model
	sess *ort.DynamicAdvancedSession

	// in, amap and score back the tensors of every binding; binding[n-1]
	// views their first n tiles, so a short batch costs only its own tiles.
	// With a fixed-batch model there is one binding and short batches are
	// padded with the previous tiles' data.
	in, amap, score []float32
	edges           []float32 // [N,1,H,2] when the model reads edges
	tensors         []ort.Value
	bindings        []*ort.IoBinding

	// lut[c][p] is pixel value p normalised for channel c.
	lut       [3][256]float32
	outScale  float32 // Outputs min/max scaling, applied when scaleOut
	outOffset float32
	scaleOut  bool

	tilePx int // H*W
	closed bool
}

// Result holds the outputs of one Session.Run. Its slices are views of the
// session's buffers, valid until the next Run or Close; copy what must be
// kept. A model with a fixed batch always computes the full batch; a
// short batch returns only its own tiles.
type Result struct {
	// N is the number of tiles scored.
	N int
	// H and W are the tile size; the map of tile i is
	// Maps[i*H*W : (i+1)*H*W], row-major.
	H, W int
	// Maps holds N anomaly maps.
	Maps []float32
	// Scores holds N image scores.
	Scores []float32
}

// Map returns the anomaly map of tile i.
func (r Result) Map(i int) []float32 {
	n := r.H * r.W
	return r.Maps[i*n : (i+1)*n : (i+1)*n]
}

// Tile is one H×W grayscale tile inside a larger buffer: pixel (x, y) is
// Pix[y*Stride+x]. It lets the preprocessing stage hand over tiles of a
// block without copying them first.
//
// For a model that reads the web's edges (Sidecar input.edges), E0 and E1
// give each tile row's web extent [E0[y], E1[y]) in the columns of the
// buffer row the tile was cut from, RowW that row's width and X0 the
// tile's first column in it (see model/edge: E0 = 0 means no left edge,
// E1 = RowW no right edge). Nil E0 means the tile shows no edge.
type Tile struct {
	Pix    []uint8
	Stride int
	E0, E1 []int32
	X0     int
	RowW   int
}

// NewSession creates a runtime session with one intra-op thread (or
// ModelOptions.IntraOpThreads) and sequential execution, and allocates its
// tensors. Close it when done.
func (m *Model) NewSession() (s *Session, err error) {
	opts, err := ort.NewSessionOptions()
	if err != nil {
		return nil, fmt.Errorf("onnx: session options: %w", err)
	}
	defer opts.Destroy()
	for _, set := range []func() error{
		func() error { return opts.SetIntraOpNumThreads(m.opts.IntraOpThreads) },
		func() error { return opts.SetInterOpNumThreads(1) },
		func() error { return opts.SetExecutionMode(ort.ExecutionModeSequential) },
		func() error { return opts.SetGraphOptimizationLevel(ort.GraphOptimizationLevelEnableAll) },
	} {
		if err := set(); err != nil {
			return nil, fmt.Errorf("onnx: session options: %w", err)
		}
	}
	sc := &m.sidecar
	batch := m.opts.Batch
	s = &Session{
		m:      m,
		in:     make([]float32, batch*m.c*m.h*m.w),
		amap:   make([]float32, batch*m.h*m.w),
		score:  make([]float32, batch),
		tilePx: m.h * m.w,
	}
	inputs := []string{sc.Input.Name}
	if sc.Input.Edges != "" {
		s.edges = make([]float32, batch*m.h*2)
		inputs = append(inputs, sc.Input.Edges)
	}
	sess, err := ort.NewDynamicAdvancedSessionWithONNXData(m.data,
		inputs, []string{sc.Outputs.AnomalyMap, sc.Outputs.Score}, opts)
	if err != nil {
		return nil, fmt.Errorf("onnx: %w: %s: %v", ErrBadModel, m.path, err)
	}
	s.sess = sess
	defer func() {
		if err != nil {
			s.Close()
			s = nil
		}
	}()
	s.buildLUT()
	first := 1
	if m.fixedN {
		first = batch
	}
	for n := first; n <= batch; n++ {
		b, err := s.bind(n)
		if err != nil {
			return nil, err
		}
		for len(s.bindings) < n-1 {
			s.bindings = append(s.bindings, nil)
		}
		s.bindings = append(s.bindings, b)
	}
	return s, nil
}

// bind makes tensors viewing the first n tiles of the buffers and binds
// them to a new IoBinding.
func (s *Session) bind(n int) (*ort.IoBinding, error) {
	m, sc := s.m, &s.m.sidecar
	n64, h, w := int64(n), int64(m.h), int64(m.w)
	in, err := ort.NewTensor(ort.NewShape(n64, int64(m.c), h, w), s.in)
	if err != nil {
		return nil, fmt.Errorf("onnx: input tensor: %w", err)
	}
	s.tensors = append(s.tensors, in)
	var et *ort.Tensor[float32]
	if s.edges != nil {
		if et, err = ort.NewTensor(ort.NewShape(n64, 1, h, 2), s.edges); err != nil {
			return nil, fmt.Errorf("onnx: edges tensor: %w", err)
		}
		s.tensors = append(s.tensors, et)
	}
	mapShape := ort.NewShape(n64, 1, h, w)
	if m.mapDims == 3 {
		mapShape = ort.NewShape(n64, h, w)
	}
	am, err := ort.NewTensor(mapShape, s.amap)
	if err != nil {
		return nil, fmt.Errorf("onnx: anomaly map tensor: %w", err)
	}
	s.tensors = append(s.tensors, am)
	scoreShape := ort.NewShape(n64)
	if m.scoreDim == 2 {
		scoreShape = ort.NewShape(n64, 1)
	}
	st, err := ort.NewTensor(scoreShape, s.score)
	if err != nil {
		return nil, fmt.Errorf("onnx: score tensor: %w", err)
	}
	s.tensors = append(s.tensors, st)
	b, err := s.sess.CreateIoBinding()
	if err != nil {
		return nil, fmt.Errorf("onnx: io binding: %w", err)
	}
	if et != nil {
		if err := b.BindInput(sc.Input.Edges, et); err != nil {
			b.Destroy()
			return nil, fmt.Errorf("onnx: bind %d tiles: %w", n, err)
		}
	}
	if err := errors.Join(b.BindInput(sc.Input.Name, in),
		b.BindOutput(sc.Outputs.AnomalyMap, am),
		b.BindOutput(sc.Outputs.Score, st)); err != nil {
		b.Destroy()
		return nil, fmt.Errorf("onnx: bind %d tiles: %w", n, err)
	}
	return b, nil
}

// buildLUT folds the sidecar's input normalisation and the 8-bit scale
// into one table per channel, so feeding a pixel is one load.
func (s *Session) buildLUT() {
	in := &s.m.sidecar.Input
	pick := func(v []float64, c int, def float64) float64 {
		switch len(v) {
		case 0:
			return def
		case 1:
			return v[0]
		}
		return v[c]
	}
	for c := 0; c < s.m.c; c++ {
		mean, std := pick(in.Mean, c, 0), pick(in.Std, c, 1)
		for p := 0; p < 256; p++ {
			s.lut[c][p] = float32((float64(p)/255 - mean) / std)
		}
	}
	o := &s.m.sidecar.Outputs
	if o.Max > o.Min {
		s.scaleOut = true
		s.outScale = float32(1 / (o.Max - o.Min))
		s.outOffset = float32(-o.Min / (o.Max - o.Min))
	}
}

// Batch returns the most tiles one Run takes.
func (s *Session) Batch() int { return s.m.opts.Batch }

// Run scores contiguous tiles: tiles[i] holds H*W pixels, row-major. See
// RunTiles.
func (s *Session) Run(tiles [][]uint8) (Result, error) {
	if err := s.check(len(tiles)); err != nil {
		return Result{}, err
	}
	for i, t := range tiles {
		if len(t) != s.tilePx {
			return Result{}, fmt.Errorf("onnx: %w: tile %d has %d pixels, want %d×%d = %d",
				ErrTiles, i, len(t), s.m.h, s.m.w, s.tilePx)
		}
		s.fill(i, t, s.m.w)
		s.fillEdges(i, Tile{})
	}
	return s.run(len(tiles))
}

// RunTiles scores 1..Batch() tiles given as strided views. Grayscale is
// replicated to 3 channels when the model takes 3. The Result views the
// session's buffers until the next call.
func (s *Session) RunTiles(tiles []Tile) (Result, error) {
	if err := s.check(len(tiles)); err != nil {
		return Result{}, err
	}
	h, w := s.m.h, s.m.w
	for i, t := range tiles {
		if t.Stride < w || len(t.Pix) < (h-1)*t.Stride+w {
			return Result{}, fmt.Errorf("onnx: %w: tile %d has stride %d and %d bytes, want stride ≥ %d and ≥ %d bytes for %d×%d",
				ErrTiles, i, t.Stride, len(t.Pix), w, (h-1)*max(t.Stride, w)+w, h, w)
		}
		s.fill(i, t.Pix, t.Stride)
		if s.edges != nil && t.E0 != nil && (len(t.E0) < h || len(t.E1) < h) {
			return Result{}, fmt.Errorf("onnx: %w: tile %d has %d/%d edge rows, want %d", ErrTiles, i, len(t.E0), len(t.E1), h)
		}
		s.fillEdges(i, t)
	}
	return s.run(len(tiles))
}

func (s *Session) check(n int) error {
	if s.closed {
		return fmt.Errorf("onnx: %w", ErrClosed)
	}
	if n < 1 || n > s.m.opts.Batch {
		return fmt.Errorf("onnx: %w: %d tiles, want 1..%d (ModelOptions.Batch)", ErrTiles, n, s.m.opts.Batch)
	}
	return nil
}

// fill converts tile i into the input tensor's NCHW float32 layout.
func (s *Session) fill(i int, pix []uint8, stride int) {
	h, w, c := s.m.h, s.m.w, s.m.c
	plane := s.tilePx
	base := i * c * plane
	for ch := 0; ch < c; ch++ {
		lut := &s.lut[ch]
		dst := s.in[base+ch*plane : base+(ch+1)*plane]
		for y := 0; y < h; y++ {
			row := pix[y*stride : y*stride+w]
			d := dst[y*w : y*w+w]
			for x, p := range row {
				d[x] = lut[p]
			}
		}
	}
}

// noEdge is what an edges input holds for a side without an edge
// (model/edge.Far, which this package does not import).
const noEdge = 1 << 20

// fillEdges writes tile i's edges in tile columns (see Tile).
func (s *Session) fillEdges(i int, t Tile) {
	if s.edges == nil {
		return
	}
	h := s.m.h
	d := s.edges[i*h*2 : (i+1)*h*2]
	if t.E0 == nil {
		for y := range h {
			d[2*y], d[2*y+1] = -noEdge, noEdge
		}
		return
	}
	for y := range h {
		e0, e1 := int(t.E0[y]), int(t.E1[y])
		l, r := float32(-noEdge), float32(noEdge)
		switch {
		case e1 <= e0:
			l, r = noEdge, -noEdge
		default:
			if e0 > 0 {
				l = float32(e0 - t.X0)
			}
			if e1 < t.RowW {
				r = float32(e1 - t.X0)
			}
		}
		d[2*y], d[2*y+1] = l, r
	}
}

func (s *Session) run(n int) (Result, error) {
	b := s.bindings[len(s.bindings)-1]
	if !s.m.fixedN {
		b = s.bindings[n-1]
	}
	if err := s.sess.RunWithBinding(b); err != nil {
		return Result{}, fmt.Errorf("onnx: run %s on %d tiles: %w", s.m.path, n, err)
	}
	maps, scores := s.amap[:n*s.tilePx], s.score[:n]
	if s.scaleOut {
		a, o := s.outScale, s.outOffset
		for i, v := range maps {
			maps[i] = v*a + o
		}
		for i, v := range scores {
			scores[i] = v*a + o
		}
	}
	return Result{N: n, H: s.m.h, W: s.m.w, Maps: maps, Scores: scores}, nil
}

// Close releases the runtime session and tensors. It is safe to call twice.
func (s *Session) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	var errs []error
	for _, b := range s.bindings {
		if b != nil {
			errs = append(errs, b.Destroy())
		}
	}
	for _, t := range s.tensors {
		errs = append(errs, t.Destroy())
	}
	if s.sess != nil {
		errs = append(errs, s.sess.Destroy())
	}
	s.bindings, s.tensors, s.sess = nil, nil, nil
	return errors.Join(errs...)
}

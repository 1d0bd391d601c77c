package onnx

import (
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	pb "github.com/advancedclimatesystems/gonnx/onnx"
	"google.golang.org/protobuf/proto"
)

// requireORT loads the runtime or stops the test: it fails when
// WEBINSPECT_REQUIRE_ORT=1 (as `make test` and CI set) and skips otherwise,
// both with Init's message saying what to run.
func requireORT(tb testing.TB) {
	tb.Helper()
	if err := Init(""); err != nil {
		if os.Getenv("WEBINSPECT_REQUIRE_ORT") == "1" {
			tb.Fatalf("ONNX Runtime is required here (WEBINSPECT_REQUIRE_ORT=1): %v", err)
		}
		tb.Skipf("skipping, ONNX Runtime not available: %v", err)
	}
}

// writeModel builds spec's graph into a fresh model directory with sc as
// its sidecar.
func writeModel(tb testing.TB, spec ScoringModelSpec, sc Sidecar) string {
	tb.Helper()
	b, err := BuildScoringModel(spec)
	if err != nil {
		tb.Fatal(err)
	}
	dir := tb.TempDir()
	if err := WriteModelDir(dir, b, sc); err != nil {
		tb.Fatal(err)
	}
	return dir
}

func loadModel(tb testing.TB, spec ScoringModelSpec, sc Sidecar, opts ModelOptions) *Model {
	tb.Helper()
	m, err := Load(writeModel(tb, spec, sc), opts)
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

// reference computes the scoring graph in plain Go (float64) for one
// grayscale tile, fed as Session feeds it.
func reference(spec ScoringModelSpec, sc Sidecar, tile []uint8) ([]float64, float64) {
	h, w, c := spec.Height, spec.Width, spec.Channels
	pick := func(v []float64, ch int, def float64) float64 {
		switch len(v) {
		case 0:
			return def
		case 1:
			return v[0]
		}
		return v[ch]
	}
	pick32 := func(v []float32, ch int) float64 {
		if len(v) == 1 {
			return float64(v[0])
		}
		return float64(v[ch])
	}
	dev := make([]float64, h*w)
	for ch := 0; ch < c; ch++ {
		inMean, inStd := pick(sc.Input.Mean, ch, 0), pick(sc.Input.Std, ch, 1)
		mean, invStd := pick32(spec.Mean, ch), float64(float32(1/pick32(spec.Std, ch)))
		for i, p := range tile {
			x := float64(float32((float64(p)/255 - inMean) / inStd))
			dev[i] += math.Abs((x-mean)*invStd) / float64(c)
		}
	}
	r := spec.Smooth / 2
	out := make([]float64, h*w)
	score := math.Inf(-1)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			var sum float64
			var n int
			for yy := max(0, y-r); yy <= min(h-1, y+r); yy++ {
				for xx := max(0, x-r); xx <= min(w-1, x+r); xx++ {
					sum += dev[yy*w+xx]
					n++
				}
			}
			v := sum / float64(n)
			if o := sc.Outputs; o.Max > o.Min {
				v = (v - o.Min) / (o.Max - o.Min)
			}
			out[y*w+x] = v
			score = max(score, v)
		}
	}
	return out, score
}

// randomTile is textured good material with a bright defect somewhere.
func randomTile(rng *rand.Rand, h, w int) []uint8 {
	t := make([]uint8, h*w)
	for i := range t {
		t[i] = uint8(100 + rng.IntN(56))
	}
	y, x := rng.IntN(h), rng.IntN(w)
	t[y*w+x] = 255
	return t
}

func assertClose(t *testing.T, what string, got []float32, want []float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: got %d values, want %d", what, len(got), len(want))
	}
	for i := range got {
		if d := math.Abs(float64(got[i]) - want[i]); d > 1e-4*math.Max(1, math.Abs(want[i])) {
			t.Fatalf("%s[%d] = %v, plain Go says %v (diff %g)", what, i, got[i], want[i], d)
		}
	}
}

func TestScoringModelMatchesReference(t *testing.T) {
	requireORT(t)
	cases := []struct {
		name   string
		edit   func(*ScoringModelSpec, *Sidecar)
		batch  int
		counts []int
	}{
		{"gray/batch=1", func(*ScoringModelSpec, *Sidecar) {}, 1, []int{1}},
		{"gray/batch=4/short", func(*ScoringModelSpec, *Sidecar) {}, 4, []int{4, 1, 3}},
		{"rgb/replicated", func(s *ScoringModelSpec, sc *Sidecar) {
			s.Channels = 3
			s.Mean, s.Std = []float32{0.4, 0.5, 0.6}, []float32{0.1, 0.2, 0.05}
			*sc = s.Sidecar()
		}, 2, []int{2, 1}},
		{"smooth=1/odd-size", func(s *ScoringModelSpec, sc *Sidecar) {
			s.Smooth, s.Height, s.Width = 1, 13, 29
			*sc = s.Sidecar()
		}, 2, []int{2}},
		{"smooth=5/input-norm/min-max", func(s *ScoringModelSpec, sc *Sidecar) {
			s.Smooth = 5
			s.Mean, s.Std = []float32{0}, []float32{1}
			*sc = s.Sidecar()
			sc.Input.Mean, sc.Input.Std = []float64{0.45}, []float64{0.225}
			sc.Outputs.Min, sc.Outputs.Max = 0.2, 1.7
		}, 1, []int{1}},
		{"fixed-batch=2/short", func(s *ScoringModelSpec, sc *Sidecar) {
			s.Batch = 2
			*sc = s.Sidecar()
		}, 2, []int{1, 2}},
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			spec := DefaultScoringModelSpec()
			spec.Height, spec.Width = 24, 40
			sc := spec.Sidecar()
			tc.edit(&spec, &sc)
			opts := DefaultModelOptions()
			opts.Batch = tc.batch
			m := loadModel(t, spec, sc, opts)
			s, err := m.NewSession()
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			for _, n := range tc.counts {
				tiles := make([][]uint8, n)
				for i := range tiles {
					tiles[i] = randomTile(rng, spec.Height, spec.Width)
				}
				res, err := s.Run(tiles)
				if err != nil {
					t.Fatal(err)
				}
				if res.N != n || len(res.Scores) != n || len(res.Maps) != n*spec.Height*spec.Width {
					t.Fatalf("Run(%d tiles) gave N=%d, %d scores, %d map values", n, res.N, len(res.Scores), len(res.Maps))
				}
				for i, tile := range tiles {
					wantMap, wantScore := reference(spec, sc, tile)
					assertClose(t, "anomaly map", res.Map(i), wantMap)
					assertClose(t, "score", res.Scores[i:i+1], []float64{wantScore})
				}
			}
		})
	}
}

// conventionModel rewrites the scoring graph into the other shapes the
// export convention allows: free H and W, anomaly map [N,H,W] and score
// [N,1].
func conventionModel(tb testing.TB, spec ScoringModelSpec) []byte {
	tb.Helper()
	mp, err := scoringModel(spec)
	if err != nil {
		tb.Fatal(err)
	}
	g := mp.Graph
	for _, n := range g.Node {
		switch n.OpType {
		case "AveragePool":
			n.Output[0] = "map4"
		case "ReduceMax":
			n.Input[0], n.Output[0] = "map4", "score1"
		}
	}
	g.Initializer = append(g.Initializer,
		&pb.TensorProto{Name: "axis1", Dims: []int64{1}, DataType: int32(pb.TensorProto_INT64), Int64Data: []int64{1}})
	g.Node = append(g.Node,
		&pb.NodeProto{OpType: "Squeeze", Name: "map3", Input: []string{"map4", "axis1"}, Output: []string{spec.MapName}},
		&pb.NodeProto{OpType: "Unsqueeze", Name: "score2", Input: []string{"score1", "axis1"}, Output: []string{spec.ScoreName}})
	n := dimParam("N")
	g.Input[0] = tensorInfo(spec.InputName, pb.TensorProto_FLOAT, n, dimValue(int64(spec.Channels)), dimParam("H"), dimParam("W"))
	g.Output = []*pb.ValueInfoProto{
		tensorInfo(spec.MapName, pb.TensorProto_FLOAT, n, dimParam("H"), dimParam("W")),
		tensorInfo(spec.ScoreName, pb.TensorProto_FLOAT, n, dimValue(1)),
	}
	b, err := proto.Marshal(mp)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// TestConventionShapes runs a model with free H and W, a [N,H,W] map and
// a [N,1] score: the sidecar fixes the tile size and results match plain Go.
func TestConventionShapes(t *testing.T) {
	requireORT(t)
	spec := DefaultScoringModelSpec()
	spec.Height, spec.Width = 20, 36
	dir := t.TempDir()
	if err := WriteModelDir(dir, conventionModel(t, spec), spec.Sidecar()); err != nil {
		t.Fatal(err)
	}
	opts := DefaultModelOptions()
	opts.Batch = 3
	m, err := Load(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	if m.mapDims != 3 || m.scoreDim != 2 {
		t.Fatalf("model ranks: map %d, score %d; want 3 and 2", m.mapDims, m.scoreDim)
	}
	s, err := m.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rng := rand.New(rand.NewPCG(11, 12))
	for _, n := range []int{3, 2} {
		tiles := make([][]uint8, n)
		for i := range tiles {
			tiles[i] = randomTile(rng, spec.Height, spec.Width)
		}
		res, err := s.Run(tiles)
		if err != nil {
			t.Fatal(err)
		}
		for i, tile := range tiles {
			wantMap, wantScore := reference(spec, m.Sidecar(), tile)
			assertClose(t, "anomaly map", res.Map(i), wantMap)
			assertClose(t, "score", res.Scores[i:i+1], []float64{wantScore})
		}
	}
}

// TestRunTilesStrided checks that tiles cut from a larger image by stride
// score the same as the copied tiles.
func TestRunTilesStrided(t *testing.T) {
	requireORT(t)
	spec := DefaultScoringModelSpec()
	spec.Height, spec.Width = 16, 16
	opts := DefaultModelOptions()
	opts.Batch = 3
	m := loadModel(t, spec, spec.Sidecar(), opts)
	s, err := m.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const stride = 50
	img := randomTile(rand.New(rand.NewPCG(3, 4)), 20, stride)
	views := []Tile{{Pix: img, Stride: stride}, {Pix: img[17:], Stride: stride}, {Pix: img[3*stride+34:], Stride: stride}}
	res, err := s.RunTiles(views)
	if err != nil {
		t.Fatal(err)
	}
	got := append([]float32(nil), res.Maps...)
	gotScores := append([]float32(nil), res.Scores...)
	copies := make([][]uint8, len(views))
	for i, v := range views {
		for y := 0; y < spec.Height; y++ {
			copies[i] = append(copies[i], v.Pix[y*stride:y*stride+spec.Width]...)
		}
	}
	res, err = s.Run(copies)
	if err != nil {
		t.Fatal(err)
	}
	for i := range got {
		if got[i] != res.Maps[i] {
			t.Fatalf("strided map[%d] = %v, copied tile gives %v", i, got[i], res.Maps[i])
		}
	}
	for i := range gotScores {
		if gotScores[i] != res.Scores[i] {
			t.Fatalf("strided score[%d] = %v, copied tile gives %v", i, gotScores[i], res.Scores[i])
		}
	}
	if _, err := s.RunTiles([]Tile{{Pix: img[:100], Stride: stride}}); !errors.Is(err, ErrTiles) {
		t.Fatalf("short strided tile: err = %v, want ErrTiles", err)
	}
}

func TestSessionRunDoesNotAllocate(t *testing.T) {
	requireORT(t)
	spec := DefaultScoringModelSpec()
	opts := DefaultModelOptions()
	opts.Batch = 4
	m := loadModel(t, spec, spec.Sidecar(), opts)
	s, err := m.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rng := rand.New(rand.NewPCG(5, 6))
	full := [][]uint8{randomTile(rng, 64, 64), randomTile(rng, 64, 64), randomTile(rng, 64, 64), randomTile(rng, 64, 64)}
	for _, n := range []int{4, 1} {
		allocs := testing.AllocsPerRun(20, func() {
			if _, err := s.Run(full[:n]); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("Run(%d tiles) allocates %v times per call, want 0", n, allocs)
		}
	}
}

func TestSessionRejectsBadTiles(t *testing.T) {
	requireORT(t)
	spec := DefaultScoringModelSpec()
	opts := DefaultModelOptions()
	opts.Batch = 2
	m := loadModel(t, spec, spec.Sidecar(), opts)
	s, err := m.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	tile := make([]uint8, 64*64)
	for name, tiles := range map[string][][]uint8{
		"none":      nil,
		"too many":  {tile, tile, tile},
		"too short": {tile[:100]},
	} {
		if _, err := s.Run(tiles); !errors.Is(err, ErrTiles) {
			t.Errorf("%s: err = %v, want ErrTiles", name, err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := s.Run([][]uint8{tile}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Run after Close: err = %v, want ErrClosed", err)
	}
}

// TestSessionsPerWorker runs one session per goroutine on one Model.
func TestSessionsPerWorker(t *testing.T) {
	requireORT(t)
	spec := DefaultScoringModelSpec()
	spec.Height, spec.Width = 32, 32
	m := loadModel(t, spec, spec.Sidecar(), DefaultModelOptions())
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := m.NewSession()
			if err != nil {
				errs <- err
				return
			}
			defer s.Close()
			rng := rand.New(rand.NewPCG(uint64(w), 9))
			for range 20 {
				tile := randomTile(rng, 32, 32)
				res, err := s.Run([][]uint8{tile})
				if err != nil {
					errs <- err
					return
				}
				_, want := reference(spec, m.Sidecar(), tile)
				if math.Abs(float64(res.Scores[0])-want) > 1e-4*want {
					errs <- errors.New("worker score differs from plain Go")
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// int64InputModel rewrites the scoring graph so its input is int64, cast to
// float inside: a valid model the sidecar's float32 contract must refuse.
func int64InputModel(tb testing.TB, spec ScoringModelSpec) []byte {
	tb.Helper()
	mp, err := scoringModel(spec)
	if err != nil {
		tb.Fatal(err)
	}
	g := mp.Graph
	g.Input[0].GetType().GetTensorType().ElemType = int32(pb.TensorProto_INT64)
	g.Node[0].Input[0] = "x_float"
	cast := &pb.NodeProto{OpType: "Cast", Name: "cast", Input: []string{spec.InputName}, Output: []string{"x_float"},
		Attribute: []*pb.AttributeProto{intAttr("to", int64(pb.TensorProto_FLOAT))}}
	g.Node = append([]*pb.NodeProto{cast}, g.Node...)
	b, err := proto.Marshal(mp)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func TestLoadRefusesMismatch(t *testing.T) {
	requireORT(t)
	gray := DefaultScoringModelSpec()
	cases := []struct {
		name  string
		model func(*ScoringModelSpec) []byte // nil: BuildScoringModel(spec)
		spec  func(*ScoringModelSpec)
		side  func(*Sidecar)
		opts  func(*ModelOptions)
		want  []string
	}{
		{
			name: "3-channel model, 1-channel sidecar",
			spec: func(s *ScoringModelSpec) { s.Channels = 3 },
			side: func(sc *Sidecar) { sc.Input.Shape[1] = 1 },
			want: []string{`model input "input" is [N,3,64,64] float32, sidecar says [N,1,64,64] float32`},
		},
		{
			name: "1-channel model, 3-channel sidecar",
			side: func(sc *Sidecar) { sc.Input.Shape[1] = 3 },
			want: []string{`model input "input" is [N,1,64,64] float32, sidecar says [N,3,64,64] float32`},
		},
		{
			name: "tile size",
			spec: func(s *ScoringModelSpec) { s.Height, s.Width = 256, 256 },
			side: func(sc *Sidecar) { sc.Input.Shape[2], sc.Input.Shape[3] = 64, 64 },
			want: []string{`model input "input" is [N,1,256,256] float32, sidecar says [N,1,64,64] float32`},
		},
		{
			name: "fixed-batch model, free-batch sidecar",
			spec: func(s *ScoringModelSpec) { s.Batch = 1 },
			side: func(sc *Sidecar) { sc.Input.Shape[0] = -1 },
			want: []string{`model input "input" is [1,1,64,64] float32, sidecar says [N,1,64,64] float32`},
		},
		{
			name: "int64 input",
			model: func(s *ScoringModelSpec) []byte {
				return int64InputModel(t, *s)
			},
			want: []string{`model input "input" is [N,1,64,64] int64, sidecar says [N,1,64,64] float32`},
		},
		{
			name: "wrong input name",
			side: func(sc *Sidecar) { sc.Input.Name = "image" },
			want: []string{`model has no input "image" (sidecar input.name)`, `model inputs are "input" [N,1,64,64] float32`},
		},
		{
			name: "wrong anomaly map name",
			side: func(sc *Sidecar) { sc.Outputs.AnomalyMap = "amap" },
			want: []string{`model has no output "amap" (sidecar outputs.anomaly_map)`, `"anomaly_map" [N,1,64,64] float32`, `"pred_score" [N] float32`},
		},
		{
			name: "wrong score name",
			side: func(sc *Sidecar) { sc.Outputs.Score = "score" },
			want: []string{`model has no output "score" (sidecar outputs.score)`},
		},
		{
			name: "outputs swapped",
			side: func(sc *Sidecar) { sc.Outputs.AnomalyMap, sc.Outputs.Score = "pred_score", "anomaly_map" },
			want: []string{`model output "pred_score" (anomaly map) is [N] float32, sidecar says [N,1,64,64] float32 or [N,64,64] float32`},
		},
		{
			name: "recipe tile size",
			opts: func(o *ModelOptions) { o.TileHeight, o.TileWidth = 128, 128 },
			want: []string{`recipe tile is 128×128, sidecar says [N,1,64,64]`},
		},
		{
			name: "recipe channels",
			opts: func(o *ModelOptions) { o.Channels = 3 },
			want: []string{`recipe wants a 3-channel model, sidecar says [N,1,64,64]`},
		},
		{
			name: "batch against fixed-batch sidecar",
			spec: func(s *ScoringModelSpec) { s.Batch = 2 },
			opts: func(o *ModelOptions) { o.Batch = 4 },
			want: []string{`batch is 4, sidecar says [2,1,64,64] (fixed batch 2)`},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			spec := gray
			if tc.spec != nil {
				tc.spec(&spec)
			}
			sc := spec.Sidecar()
			if tc.side != nil {
				tc.side(&sc)
			}
			opts := DefaultModelOptions()
			if tc.opts != nil {
				tc.opts(&opts)
			}
			var b []byte
			if tc.model != nil {
				b = tc.model(&spec)
			} else {
				var err error
				if b, err = BuildScoringModel(spec); err != nil {
					t.Fatal(err)
				}
			}
			dir := t.TempDir()
			if err := WriteModelDir(dir, b, sc); err != nil {
				t.Fatal(err)
			}
			_, err := Load(dir, opts)
			if !errors.Is(err, ErrMismatch) {
				t.Fatalf("Load: err = %v, want ErrMismatch", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Load error\n  %v\ndoes not contain\n  %s", err, w)
				}
			}
		})
	}
}

func TestLoadCorruptModel(t *testing.T) {
	requireORT(t)
	spec := DefaultScoringModelSpec()
	good, err := BuildScoringModel(spec)
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{
		"garbage":   []byte("this is not an ONNX model, it is a text file\n"),
		"truncated": good[:len(good)/2],
		"empty":     {},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if err := WriteModelDir(dir, data, spec.Sidecar()); err != nil {
				t.Fatal(err)
			}
			_, err := Load(dir, DefaultModelOptions())
			if !errors.Is(err, ErrBadModel) {
				t.Fatalf("Load: err = %v, want ErrBadModel", err)
			}
			if !strings.Contains(err.Error(), filepath.Join(dir, ModelFileName)) {
				t.Errorf("error %q does not name the model file", err)
			}
		})
	}
	t.Run("missing", func(t *testing.T) {
		dir := t.TempDir()
		if err := WriteSidecar(filepath.Join(dir, SidecarFileName), spec.Sidecar()); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(dir, DefaultModelOptions()); !errors.Is(err, ErrBadModel) {
			t.Fatalf("Load: err = %v, want ErrBadModel", err)
		}
	})
	t.Run("no sidecar", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "m.onnx")
		if err := os.WriteFile(path, good, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := Load(path, DefaultModelOptions())
		if !errors.Is(err, ErrSidecar) || !strings.Contains(err.Error(), filepath.Join(dir, SidecarFileName)) {
			t.Fatalf("Load: err = %v, want ErrSidecar naming %s", err, SidecarFileName)
		}
		opts := DefaultModelOptions()
		opts.Sidecar = filepath.Join(dir, "elsewhere.json")
		if err := WriteSidecar(opts.Sidecar, spec.Sidecar()); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(path, opts); err != nil {
			t.Fatalf("Load with ModelOptions.Sidecar: %v", err)
		}
	})
}

// TestInitMissingLibrary needs no runtime: a missing file is reported before
// anything is loaded, whatever this process loaded already.
func TestInitMissingLibrary(t *testing.T) {
	bogus := filepath.Join(t.TempDir(), "nowhere", "libonnxruntime.so.1")
	check := func(t *testing.T, err error, from string) {
		t.Helper()
		if !errors.Is(err, ErrLibraryNotFound) {
			t.Fatalf("err = %v, want ErrLibraryNotFound", err)
		}
		for _, w := range []string{bogus, from, `run "make deps"`, "WEBINSPECT_ORT_LIB=/path/libonnxruntime.so.1"} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error %q does not contain %q", err, w)
			}
		}
	}
	t.Run("argument", func(t *testing.T) {
		check(t, Init(bogus), "given path")
	})
	t.Run("environment", func(t *testing.T) {
		t.Setenv(EnvLibrary, bogus)
		check(t, Init(""), "from WEBINSPECT_ORT_LIB")
	})
	t.Run("directory", func(t *testing.T) {
		err := Init(t.TempDir())
		if !errors.Is(err, ErrLibraryNotFound) || !strings.Contains(err.Error(), "make deps") {
			t.Fatalf("Init(dir): err = %v, want ErrLibraryNotFound saying make deps", err)
		}
	})
}

func TestInitTwice(t *testing.T) {
	requireORT(t)
	lib := LibraryPath()
	if err := Init(lib); err != nil {
		t.Fatalf("Init with the loaded library again: %v", err)
	}
	other := filepath.Join(t.TempDir(), "libonnxruntime.so.1")
	if err := os.WriteFile(other, []byte("not a library"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Init(other); !errors.Is(err, ErrLibraryLoad) || !strings.Contains(err.Error(), lib) {
		t.Fatalf("Init with another library: err = %v, want ErrLibraryLoad naming %s", err, lib)
	}
	if v := RuntimeVersion(); !strings.HasPrefix(v, "1.") {
		t.Errorf("RuntimeVersion() = %q", v)
	}
}

func TestSidecarValidate(t *testing.T) {
	spec := DefaultScoringModelSpec()
	good := spec.Sidecar()
	if err := good.Validate(); err != nil {
		t.Fatalf("default sidecar: %v", err)
	}
	nan := math.NaN()
	cases := []struct {
		field string
		edit  func(*Sidecar)
	}{
		{"version", func(s *Sidecar) { s.Version = 2 }},
		{"input.name", func(s *Sidecar) { s.Input.Name = " " }},
		{"input.shape", func(s *Sidecar) { s.Input.Shape = []int64{1, 64, 64} }},
		{"input.shape[0] (N)", func(s *Sidecar) { s.Input.Shape[0] = 0 }},
		{"input.shape[1] (C)", func(s *Sidecar) { s.Input.Shape[1] = 2 }},
		{"input.shape[2] (H)", func(s *Sidecar) { s.Input.Shape[2] = 0 }},
		{"input.shape[3] (W)", func(s *Sidecar) { s.Input.Shape[3] = MaxTileSide + 1 }},
		{"input.mean", func(s *Sidecar) { s.Input.Mean = []float64{1, 2} }},
		{"input.std[0]", func(s *Sidecar) { s.Input.Std = []float64{0} }},
		{"input.mean[0]", func(s *Sidecar) { s.Input.Mean = []float64{nan} }},
		{"outputs.anomaly_map", func(s *Sidecar) { s.Outputs.AnomalyMap = "" }},
		{"outputs.score", func(s *Sidecar) { s.Outputs.Score = "" }},
		{"outputs.score", func(s *Sidecar) { s.Outputs.Score = s.Outputs.AnomalyMap }},
		{"outputs", func(s *Sidecar) { s.Outputs.Score = s.Input.Name }},
		{"outputs.max", func(s *Sidecar) { s.Outputs.Min, s.Outputs.Max = 2, 1 }},
		{"threshold", func(s *Sidecar) { s.Threshold = &nan }},
	}
	for _, tc := range cases {
		s := spec.Sidecar()
		tc.edit(&s)
		err := s.Validate()
		if !errors.Is(err, ErrSidecar) || !strings.Contains(err.Error(), tc.field+" ") {
			t.Errorf("%s: err = %v, want ErrSidecar naming %q", tc.field, err, tc.field)
		}
	}
}

func TestSidecarRoundTrip(t *testing.T) {
	spec := DefaultScoringModelSpec()
	s := spec.Sidecar()
	th := 3.25
	s.Threshold = &th
	s.Input.Mean, s.Input.Std = []float64{0.485}, []float64{0.229}
	s.MadeBy.Created = "2026-11-27T08:00:00Z"
	path := filepath.Join(t.TempDir(), SidecarFileName)
	if err := WriteSidecar(path, s); err != nil {
		t.Fatal(err)
	}
	got, err := ReadSidecar(path)
	if err != nil {
		t.Fatal(err)
	}
	if *got.Threshold != th || got.Input.Mean[0] != 0.485 || got.MadeBy.Params["smooth"] != "3" || got.Width() != 64 {
		t.Fatalf("round trip lost fields: %+v", got)
	}
	bad := filepath.Join(t.TempDir(), "typo.json")
	if err := os.WriteFile(bad, []byte(`{"version":1,"treshold":3}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadSidecar(bad); !errors.Is(err, ErrSidecar) || !strings.Contains(err.Error(), "treshold") {
		t.Fatalf("misspelt key: err = %v, want ErrSidecar naming it", err)
	}
}

func TestOptionsValidate(t *testing.T) {
	for field, edit := range map[string]func(*ModelOptions){
		"Batch":          func(o *ModelOptions) { o.Batch = 0 },
		"IntraOpThreads": func(o *ModelOptions) { o.IntraOpThreads = 0 },
		"TileHeight":     func(o *ModelOptions) { o.TileHeight = -1 },
		"TileWidth":      func(o *ModelOptions) { o.TileWidth = MaxTileSide + 1 },
		"Channels":       func(o *ModelOptions) { o.Channels = 2 },
	} {
		o := DefaultModelOptions()
		edit(&o)
		if err := o.Validate(); !errors.Is(err, ErrOptions) || !strings.Contains(err.Error(), "ModelOptions."+field+" ") {
			t.Errorf("%s: err = %v", field, err)
		}
	}
	for field, edit := range map[string]func(*ScoringModelSpec){
		"InputName": func(s *ScoringModelSpec) { s.InputName = "" },
		"ScoreName": func(s *ScoringModelSpec) { s.ScoreName = s.MapName },
		"Channels":  func(s *ScoringModelSpec) { s.Channels = 4 },
		"Height":    func(s *ScoringModelSpec) { s.Height = 0 },
		"Batch":     func(s *ScoringModelSpec) { s.Batch = -1 },
		"Smooth":    func(s *ScoringModelSpec) { s.Smooth = 4 },
		"Std":       func(s *ScoringModelSpec) { s.Std = []float32{1, 2} },
		"Std[0]":    func(s *ScoringModelSpec) { s.Std = []float32{0} },
	} {
		s := DefaultScoringModelSpec()
		edit(&s)
		if _, err := BuildScoringModel(s); !errors.Is(err, ErrOptions) || !strings.Contains(err.Error(), "ScoringModelSpec."+field+" ") {
			t.Errorf("%s: err = %v", field, err)
		}
	}
}

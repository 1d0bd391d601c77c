package camera

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/webinspect/webinspect/acquisition"
	"github.com/webinspect/webinspect/acquisition/camsim"
	"github.com/webinspect/webinspect/acquisition/genicam"
	"github.com/webinspect/webinspect/acquisition/gige"
)

func emulator(t *testing.T, cameras int) *camsim.Emulator {
	t.Helper()
	o := camsim.DefaultOptions()
	o.Listen = "127.0.0.1:0"
	o.Cameras = cameras
	o.Width = 256
	o.LinesPerFrame = 64
	o.Web.LengthM = 20
	o.Web.Defects = 2
	ctx, cancel := context.WithCancel(context.Background())
	e, err := camsim.New(ctx, o)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- e.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("camsim: %v", err)
		}
	})
	return e
}

func geometryOf(e *camsim.Emulator) Geometry {
	return Geometry{Source: e.Info(), ChunkIDs: map[string]string{"EncoderValue": fmt.Sprintf("0x%08x", camsim.ChunkIDEncoderValue)}}
}

// TestApplyNamesTheFeature: a setting the camera refuses is an error that
// names the camera, the feature and the value.
func TestApplyNamesTheFeature(t *testing.T) {
	e := emulator(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cam, err := gige.Open(ctx, e.Addrs()[0].String(), gige.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer cam.Close()
	ci := e.Info().Cameras[0]
	for _, c := range []struct {
		name  string
		lines int
		k     int
		s     Settings
		want  []string
	}{
		{"width", 64, 4, DefaultSettings(), nil},
		{"pixel format", 64, 4, Settings{PixelFormat: "RGB8"}, []string{"camera 0", "PixelFormat = RGB8"}},
		{"trigger", 64, 4, Settings{TriggerSource: "Line7"}, []string{"TriggerSource = Line7"}},
		{"divider", 64, 3, DefaultSettings(), []string{"EncoderDivider = 3"}},
		{"exposure", 64, 4, Settings{ExposureUS: 1e6}, []string{"ExposureTime = 1e+06"}},
		{"height", 0x7fffffff, 4, DefaultSettings(), []string{"Height = 2147483647"}},
	} {
		err := apply(cam.Nodes, "camera 0 (test)", ci, c.lines, c.k, true, c.s)
		if c.want == nil {
			if err != nil {
				t.Errorf("%s: %v", c.name, err)
			}
			continue
		}
		if !errors.Is(err, ErrFeature) {
			t.Errorf("%s: %v, want ErrFeature", c.name, err)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %q does not say %q", c.name, err, w)
			}
		}
	}
	// The good settings are on the camera.
	if err := apply(cam.Nodes, "camera 0", ci, 32, 4, true, Settings{TriggerSource: "Encoder0", ExposureUS: 50}); err != nil {
		t.Fatal(err)
	}
	for f, want := range map[string]string{"Width": fmt.Sprint(ci.Width), "Height": "32", "TriggerSelector": "LineStart",
		"TriggerMode": "On", "TriggerSource": "Encoder0", "EncoderDivider": "4", "ExposureTime": "50", "ChunkModeActive": "true",
		"ChunkEnable": "true"} {
		if got, err := cam.Nodes.Value(f); err != nil || got != want {
			t.Errorf("%s = %q (%v), want %q", f, got, err, want)
		}
	}
	var fe *genicam.FeatureError
	err = apply(cam.Nodes, "camera 0", ci, 64, 4, false, Settings{PixelFormat: "RGB8"})
	if !errors.As(err, &fe) || fe.Feature != "PixelFormat" {
		t.Errorf("error %v does not carry the genicam.FeatureError of PixelFormat", err)
	}
}

func TestGeometryFile(t *testing.T) {
	dir := t.TempDir()
	o := camsim.DefaultOptions()
	o.Listen = "127.0.0.1:0"
	o.Cameras, o.Width, o.Web.LengthM = 2, 256, 5
	o.InfoFile = filepath.Join(dir, "info.json")
	e, err := camsim.New(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	e.Close()
	g, err := ReadGeometry(o.InfoFile)
	if err != nil {
		t.Fatal(err)
	}
	if id, _ := g.EncoderChunkID(); id != camsim.ChunkIDEncoderValue || len(g.Source.Cameras) != 2 || g.Source.CountsPerLine != 4 ||
		len(g.Source.Cameras[1].White) != 256 {
		t.Errorf("camera-sim's info file read as %+v (chunk %x)", g.Source, id)
	}
	for _, c := range []struct{ json, want string }{
		{`{"source":{"mm_per_count":0,"counts_per_line":4,"web_width_mm":100,"cameras":[{"width":8,"pixel_mm":1}]}}`, "source.mm_per_count"},
		{`{"source":{"mm_per_count":0.1,"counts_per_line":0,"web_width_mm":100,"cameras":[{"width":8,"pixel_mm":1}]}}`, "source.counts_per_line"},
		{`{"source":{"mm_per_count":0.1,"counts_per_line":4,"web_width_mm":100,"cameras":[]}}`, "source.cameras"},
		{`{"source":{"mm_per_count":0.1,"counts_per_line":4,"web_width_mm":100,"cameras":[{"width":8,"pixel_mm":0}]}}`, "cameras[0].pixel_mm"},
		{`{"source":{"mm_per_count":0.1,"counts_per_line":4,"web_width_mm":100,"cameras":[{"width":8,"pixel_mm":1}]},"chunk_ids":{"EncoderValue":"x"}}`, "chunk_ids.EncoderValue"},
		{`{"source":`, "unexpected end"},
	} {
		p := filepath.Join(dir, "g.json")
		os.WriteFile(p, []byte(c.json), 0o644)
		_, err := ReadGeometry(p)
		if !errors.Is(err, ErrGeometry) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want ErrGeometry naming %s", c.json, err, c.want)
		}
	}
}

func TestOptionsValidate(t *testing.T) {
	g := Geometry{Source: acquisition.Info{MMPerCount: 0.1, CountsPerLine: 1, WebWidthMM: 10, Cameras: []acquisition.CameraInfo{{Width: 8, PixelMM: 1}}}}
	o := DefaultOptions()
	o.Cameras, o.Geometry = []string{"127.0.0.1"}, g
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, f := range map[string]func(*Options){
		"Cameras: 2 cameras": func(o *Options) { o.Cameras = []string{"a", "b"} },
		"Backoff":            func(o *Options) { o.Backoff = 0 },
		"LengthMM":           func(o *Options) { o.LengthMM = -1 },
		"PacketSize":         func(o *Options) { o.PacketSize = 100 },
		"Settings.OffsetX":   func(o *Options) { o.Settings.OffsetX = -8 },
	} {
		b := o
		f(&b)
		if err := b.Validate(); !errors.Is(err, ErrOptions) || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestSourceStreamsAndEnds: the source's streams deliver both cameras'
// lines on one encoder, their line sequences start at 0, and LengthMM ends
// them (io.EOF); Close after that is clean and the counters stay.
func TestSourceStreamsAndEnds(t *testing.T) {
	e := emulator(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	o := DefaultOptions()
	for _, a := range e.Addrs() {
		o.Cameras = append(o.Cameras, a.String())
	}
	o.Geometry = geometryOf(e)
	o.Geometry.Source.LinesPerBlock = 32
	o.LengthMM = 500
	src, err := OpenGigE(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	in := src.Info()
	if in.LinesPerBlock != 32 || !in.Live || !strings.HasPrefix(in.Name, "gige:") || in.Cameras[1].Index != 1 {
		t.Errorf("info %+v", in)
	}
	k := int64(in.CountsPerLine)
	// Each camera is read on its own goroutine, as the engine does: a
	// camera not read falls behind and loses frames.
	errs := make(chan error, 2)
	for i, st := range src.Streams() {
		go func() { errs <- readAll(ctx, i, st, in, k) }()
	}
	for range src.Streams() {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if err := src.Close(); err != nil {
		t.Logf("close: %v", err)
	}
	for _, s := range src.Stats() {
		if s.Lines == 0 || s.Frames == 0 {
			t.Errorf("stats after close: %+v", s)
		}
	}
}

// TestOpenUnknownCamera: a camera that is not there is an error at open
// naming it (no reconnection at start).
func TestOpenUnknownCamera(t *testing.T) {
	e := emulator(t, 1)
	o := DefaultOptions()
	o.Cameras = []string{"no-such-serial"}
	o.Geometry = geometryOf(e)
	o.Interface = e.Addrs()[0].String()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := OpenGigE(ctx, o)
	if !errors.Is(err, gige.ErrNotFound) || !strings.Contains(err.Error(), "no-such-serial") {
		t.Errorf("%v", err)
	}
	o.Cameras = []string{"camsim-0"} // by serial number
	src, err := OpenGigE(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	src.Close()
}

func readAll(ctx context.Context, i int, st acquisition.Stream, in acquisition.Info, k int64) error {
	blk := acquisition.NewBlock(in.LinesPerBlock, st.Camera().Width)
	next, last := int64(0), int64(-1)
	for {
		err := st.ReadBlock(ctx, blk)
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("camera %d: %w", i, err)
		}
		if blk.Camera != i || blk.FirstLine != next || !blk.Lost.Empty() {
			return fmt.Errorf("camera %d: block of camera %d at line %d (lost %+v), want line %d", i, blk.Camera, blk.FirstLine, blk.Lost, next)
		}
		for j := range blk.Lines {
			c := blk.Counts[j]
			if c <= last || c%k != 0 {
				return fmt.Errorf("camera %d: count %d after %d", i, c, last)
			}
			last = c
		}
		next += int64(blk.Lines)
	}
	if mm := float64(last) * in.MMPerCount; mm < 500 || mm > 500+float64(in.LinesPerBlock)*in.LineMM() {
		return fmt.Errorf("camera %d ended at %.2f mm, want just past 500", i, mm)
	}
	return nil
}

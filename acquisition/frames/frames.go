// Package frames plays a folder of real line-scan frames (8-bit or 16-bit
// PNG, grey or colour) as one continuous web: the source behind
// `webinspect run --source frames:DIR`. It lets the whole engine — recipe,
// detectors, roll map, export — inspect real material whose frames were
// captured one by one, and measures the gap between `webinspect eval` on
// the same frames and the roll map.
//
// # Which frames, in which order
//
// DIR holds PNG files, directly or one folder deep; a folder's name is the
// frames' class ("good" for defect-free ones; files directly in DIR are
// good). An MVTec-layout test folder (DIR = SET/test, with test/good and
// test/<defect type>) plays as it is, and its masks in
// SET/ground_truth/<type>/<stem>_mask.png give each defect's box. Frames
// are ordered by their path below DIR (Order "name"), or shuffled by Seed
// (Order "shuffle"), or in the order of Options.Files. Repeat plays the
// list that many times (a new shuffle each time), so a few good frames
// can make a long roll.
//
// # Geometry
//
// Every frame must have the same width W; it is one camera (index 0) of W
// pixels, PixelMM wide each, its pixel 0 at OffsetMM from the operator-side
// edge. The frames follow each other along the web without gaps: frame k
// of H_k lines starts at line L_k = Σ_{j<k} H_j, and line n is triggered
// at encoder count StartCount + n·CountsPerLine, i.e. at MD
//
//	md(n) = (StartCount + n·CountsPerLine) · MMPerCount   mm
//
// so frame k covers MD [md(L_k), md(L_k + H_k)). The source is not live:
// the engine reads it as fast as it inspects (nothing is dropped).
//
// # Joints
//
// Frames captured one by one do not continue each other: the lighting,
// the web's edge and the weave jump from one to the next, which no real
// web does. A block therefore never straddles a joint (the last block of
// a frame may be short), and the first block of every frame after the
// first carries acquisition.Block.Seam: the engine closes its open
// regions and ends the model's run of lines there, so each frame is
// scored on its own, as `webinspect eval` scores it, and the joint is not
// flagged. (Measured on AITEX fabric 00: without it, the joint between a
// cut-selvage frame and a good frame lit differently was a false defect.)
//
// # Ground truth
//
// Truth lists one row per frame that is not good, in play order, as
// acquisition/sim's truth.csv (WriteTruthCSV): id, class (the folder
// name), the frame's MD range in metres and, when the frame has a
// non-empty mask, the mask's bounding box across the web in mm (otherwise
// the frame's full width); polarity "mixed", contrast 0, size the box's
// larger side in mm. Frames are decoded one at a time as they are
// played; masks are read once at Open.
package frames

import (
	"context"
	"errors"
	"fmt"
	"image"
	"image/png"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/webinspect/webinspect/acquisition"
	"github.com/webinspect/webinspect/acquisition/sim"
)

// Errors returned by this package, wrapped with the path at fault.
var (
	// ErrOptions is returned when Options fail validation.
	ErrOptions = errors.New("frames: invalid options")
	// ErrFrames is returned when DIR holds no frames, a frame cannot be
	// decoded, or the frames' widths differ.
	ErrFrames = errors.New("frames: bad frames")
	// ErrClosed is returned by ReadBlock after Close.
	ErrClosed = errors.New("frames: closed")
)

// Options configure Open. The geometry fields map onto a recipe's camera
// and encoder settings.
type Options struct {
	// Order is "name" (by path below DIR) or "shuffle" (by Seed).
	Order string
	// Seed seeds the shuffle.
	Seed uint64
	// Files, when set, are the frames to play in this order (paths
	// relative to DIR); Order is then ignored.
	Files []string
	// Repeat plays the list this many times, 1..100000.
	Repeat int
	// MMPerCount is the encoder resolution, > 0.
	MMPerCount float64
	// CountsPerLine is the trigger divider, ≥ 1.
	CountsPerLine int
	// StartCount is the encoder count of the first line, ≥ 0.
	StartCount int64
	// PixelMM is one pixel's CD size, > 0; OffsetMM pixel 0's CD position.
	PixelMM, OffsetMM float64
	// LinesPerBlock is the block height, 1..65536.
	LinesPerBlock int
	// SpeedMPerMin is the nominal line speed recorded in Info, ≥ 0.
	SpeedMPerMin float64
	// Material names the material for Info, e.g. "fabric".
	Material string
}

// DefaultOptions returns frames in name order, played once, at 0.25 mm
// per pixel and per line (one count per line), 256-line blocks, 100 m/min.
func DefaultOptions() Options {
	return Options{Order: "name", Repeat: 1, MMPerCount: 0.25, CountsPerLine: 1,
		PixelMM: 0.25, LinesPerBlock: 256, SpeedMPerMin: 100}
}

// Validate names the first bad field and its allowed range.
func (o *Options) Validate() error {
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("%w: Options.%s %s", ErrOptions, field, fmt.Sprintf(format, args...))
	}
	switch {
	case o.Order != "name" && o.Order != "shuffle":
		return bad("Order", "is %q, want name or shuffle", o.Order)
	case o.Repeat < 1 || o.Repeat > 100000:
		return bad("Repeat", "is %d, want 1..100000", o.Repeat)
	case !(o.MMPerCount > 0):
		return bad("MMPerCount", "is %v, want > 0", o.MMPerCount)
	case o.CountsPerLine < 1:
		return bad("CountsPerLine", "is %d, want ≥ 1", o.CountsPerLine)
	case o.StartCount < 0:
		return bad("StartCount", "is %d, want ≥ 0", o.StartCount)
	case !(o.PixelMM > 0):
		return bad("PixelMM", "is %v, want > 0", o.PixelMM)
	case o.LinesPerBlock < 1 || o.LinesPerBlock > 65536:
		return bad("LinesPerBlock", "is %d, want 1..65536", o.LinesPerBlock)
	case !(o.SpeedMPerMin >= 0):
		return bad("SpeedMPerMin", "is %v, want ≥ 0", o.SpeedMPerMin)
	}
	return nil
}

// Frame is one played frame.
type Frame struct {
	// Path is the PNG file; Class its folder name ("good" for good frames).
	Path, Class string
	// Line0 is the frame's first line number; Lines its height.
	Line0 int64
	Lines int
	// Box is the mask's bounding box in frame pixels (empty: no mask, or
	// an empty one).
	Box image.Rectangle
}

// Source plays the frames; it has one Stream.
type Source struct {
	dir    string
	o      Options
	info   acquisition.Info
	frames []Frame
	st     *stream
}

// Open lists and checks the frames under dir (their sizes are read from
// the PNG headers) and returns the source.
func Open(dir string, o Options) (*Source, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("%w: %s is not a directory", ErrFrames, dir)
	}
	list, err := listFrames(dir, &o)
	if err != nil {
		return nil, err
	}
	s := &Source{dir: dir, o: o}
	width := -1
	sizes := map[string]image.Point{}
	var line int64
	rng := rand.New(rand.NewPCG(o.Seed, 0xf4a3e5))
	for r := range o.Repeat {
		order := list
		if len(o.Files) == 0 && o.Order == "shuffle" {
			order = slices.Clone(list)
			rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		}
		for _, rel := range order {
			p := filepath.Join(dir, rel)
			sz, ok := sizes[p]
			if !ok {
				if sz, err = pngSize(p); err != nil {
					return nil, err
				}
				sizes[p] = sz
			}
			if width < 0 {
				width = sz.X
			}
			if sz.X != width {
				return nil, fmt.Errorf("%w: %s is %d pixels wide, the first frame %d", ErrFrames, p, sz.X, width)
			}
			f := Frame{Path: p, Class: classOf(rel), Line0: line, Lines: sz.Y}
			if r == 0 || f.Class != "good" {
				if f.Box, err = maskBox(dir, rel, sz); err != nil {
					return nil, err
				}
			}
			s.frames = append(s.frames, f)
			line += int64(sz.Y)
		}
	}
	s.info = acquisition.Info{
		Name: "frames:" + dir, Material: o.Material, WebWidthMM: float64(width) * o.PixelMM,
		MMPerCount: o.MMPerCount, CountsPerLine: o.CountsPerLine, LinesPerBlock: o.LinesPerBlock,
		SpeedMPerMin: o.SpeedMPerMin,
		Cameras:      []acquisition.CameraInfo{{Index: 0, Width: width, OffsetMM: o.OffsetMM, PixelMM: o.PixelMM}},
	}
	s.st = &stream{s: s, cam: s.info.Cameras[0]}
	return s, nil
}

// listFrames returns the frames' paths relative to dir in play order.
func listFrames(dir string, o *Options) ([]string, error) {
	if len(o.Files) > 0 {
		for _, f := range o.Files {
			if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
				return nil, fmt.Errorf("%w: Options.Files: %v", ErrFrames, err)
			}
		}
		return slices.Clone(o.Files), nil
	}
	var out []string
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrFrames, err)
	}
	for _, e := range ents {
		if e.IsDir() {
			sub, err := os.ReadDir(filepath.Join(dir, e.Name()))
			if err != nil {
				return nil, fmt.Errorf("%w: %v", ErrFrames, err)
			}
			for _, f := range sub {
				if !f.IsDir() && isPNG(f.Name()) {
					out = append(out, filepath.Join(e.Name(), f.Name()))
				}
			}
		} else if isPNG(e.Name()) {
			out = append(out, e.Name())
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: %s holds no .png frames (directly or one folder deep)", ErrFrames, dir)
	}
	slices.Sort(out)
	return out, nil
}

func isPNG(name string) bool { return strings.EqualFold(filepath.Ext(name), ".png") }

// classOf is a frame's folder name, "good" for files directly in DIR.
func classOf(rel string) string {
	if d := filepath.Dir(rel); d != "." {
		return d
	}
	return "good"
}

func pngSize(p string) (image.Point, error) {
	f, err := os.Open(p)
	if err != nil {
		return image.Point{}, fmt.Errorf("%w: %v", ErrFrames, err)
	}
	defer f.Close()
	c, err := png.DecodeConfig(f)
	if err != nil {
		return image.Point{}, fmt.Errorf("%w: %s: %v", ErrFrames, p, err)
	}
	return image.Pt(c.Width, c.Height), nil
}

// maskBox reads DIR/../ground_truth/<class>/<stem>_mask.png when it
// exists and returns the box of its non-zero pixels.
func maskBox(dir, rel string, size image.Point) (image.Rectangle, error) {
	cls := classOf(rel)
	if cls == "good" {
		return image.Rectangle{}, nil
	}
	stem := strings.TrimSuffix(filepath.Base(rel), filepath.Ext(rel))
	mp := filepath.Join(filepath.Dir(filepath.Clean(dir)), "ground_truth", cls, stem+"_mask.png")
	if _, err := os.Stat(mp); err != nil {
		return image.Rectangle{}, nil
	}
	im, err := decodeGray(mp)
	if err != nil {
		return image.Rectangle{}, err
	}
	if im.Rect.Dx() != size.X || im.Rect.Dy() != size.Y {
		return image.Rectangle{}, fmt.Errorf("%w: mask %s is %dx%d, its frame %dx%d", ErrFrames, mp, im.Rect.Dx(), im.Rect.Dy(), size.X, size.Y)
	}
	var box image.Rectangle
	for y := range size.Y {
		for x := range size.X {
			if im.Pix[y*im.Stride+x] != 0 {
				box = box.Union(image.Rect(x, y, x+1, y+1))
			}
		}
	}
	return box, nil
}

// decodeGray decodes a PNG as 8-bit grey.
func decodeGray(p string) (*image.Gray, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrFrames, err)
	}
	defer f.Close()
	src, err := png.Decode(f)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrFrames, p, err)
	}
	b := src.Bounds()
	if g, ok := src.(*image.Gray); ok && b.Min == (image.Point{}) {
		return g, nil
	}
	g := image.NewGray(image.Rect(0, 0, b.Dx(), b.Dy()))
	for y := range b.Dy() {
		for x := range b.Dx() {
			g.Set(x, y, src.At(b.Min.X+x, b.Min.Y+y))
		}
	}
	return g, nil
}

// Info describes the web, the encoder and the one camera.
func (s *Source) Info() acquisition.Info { return s.info }

// Streams returns the one camera stream.
func (s *Source) Streams() []acquisition.Stream { return []acquisition.Stream{s.st} }

// Close closes the stream.
func (s *Source) Close() error { return s.st.Close() }

// Frames returns the frames in play order (with repeats).
func (s *Source) Frames() []Frame { return slices.Clone(s.frames) }

// Lines returns the total number of lines the stream delivers.
func (s *Source) Lines() int64 {
	if len(s.frames) == 0 {
		return 0
	}
	f := s.frames[len(s.frames)-1]
	return f.Line0 + int64(f.Lines)
}

// MDM returns line n's MD position in metres.
func (s *Source) MDM(n int64) float64 {
	return float64(s.o.StartCount+n*int64(s.o.CountsPerLine)) * s.o.MMPerCount / 1000
}

// Truth returns one row per frame that is not good (see the package doc).
func (s *Source) Truth() []sim.Truth {
	var out []sim.Truth
	for _, f := range s.frames {
		if f.Class == "good" {
			continue
		}
		t := sim.Truth{ID: len(out) + 1, Class: f.Class, Polarity: "mixed",
			MDStartM: s.MDM(f.Line0), MDEndM: s.MDM(f.Line0 + int64(f.Lines)),
			CDStartMM: s.o.OffsetMM, CDEndMM: s.o.OffsetMM + float64(s.info.Cameras[0].Width)*s.o.PixelMM}
		if !f.Box.Empty() {
			t.CDStartMM = s.o.OffsetMM + float64(f.Box.Min.X)*s.o.PixelMM
			t.CDEndMM = s.o.OffsetMM + float64(f.Box.Max.X)*s.o.PixelMM
			t.MDStartM = s.MDM(f.Line0 + int64(f.Box.Min.Y))
			t.MDEndM = s.MDM(f.Line0 + int64(f.Box.Max.Y))
		}
		t.SizeMM = max((t.MDEndM-t.MDStartM)*1000, t.CDEndMM-t.CDStartMM)
		out = append(out, t)
	}
	return out
}

// WriteTruth writes Truth as truth.csv (sim.WriteTruthCSV).
func (s *Source) WriteTruth(w io.Writer) error { return sim.WriteTruthCSV(w, s.Truth()) }

// stream delivers the frames' lines in order, decoding one frame at a time.
type stream struct {
	s   *Source
	cam acquisition.CameraInfo

	mu     sync.Mutex
	closed bool
	next   int         // index of the next frame to decode
	cur    *image.Gray // frame being played
	row    int         // next row of cur
	line   int64       // next line number
	t0     time.Time
}

func (st *stream) Camera() acquisition.CameraInfo { return st.cam }

// ReadBlock fills dst with the next LinesPerBlock lines (fewer at the end,
// where frames run out) and returns io.EOF after the last line.
func (st *stream) ReadBlock(ctx context.Context, dst *acquisition.Block) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.closed {
		return ErrClosed
	}
	o := &st.s.o
	w := st.cam.Width
	if dst.Stride < w || dst.Cap() < o.LinesPerBlock {
		return fmt.Errorf("frames: block of stride %d holding %d lines, want stride ≥ %d and %d lines: %w",
			dst.Stride, dst.Cap(), w, o.LinesPerBlock, acquisition.ErrBlockTooSmall)
	}
	if st.t0.IsZero() {
		st.t0 = time.Now()
	}
	n := 0
	first := st.line
	seam := false
	for n < o.LinesPerBlock {
		if st.cur == nil || st.row >= st.cur.Rect.Dy() {
			if st.next >= len(st.s.frames) || n > 0 {
				break // a block never straddles a joint between frames
			}
			seam = st.cur != nil
			g, err := decodeGray(st.s.frames[st.next].Path)
			if err != nil {
				return err
			}
			if g.Rect.Dx() != w {
				return fmt.Errorf("%w: %s is %d pixels wide, want %d", ErrFrames, st.s.frames[st.next].Path, g.Rect.Dx(), w)
			}
			st.cur, st.row = g, 0
			st.next++
			continue
		}
		copy(dst.Pix[n*dst.Stride:n*dst.Stride+w], st.cur.Pix[st.row*st.cur.Stride:st.row*st.cur.Stride+w])
		dst.Counts[n] = o.StartCount + (first+int64(n))*int64(o.CountsPerLine)
		st.row++
		n++
	}
	if n == 0 {
		return io.EOF
	}
	st.line += int64(n)
	dst.Camera, dst.FirstLine, dst.Lines, dst.Width, dst.Seam = 0, first, n, w, seam
	if o.SpeedMPerMin > 0 {
		mm := float64(first*int64(o.CountsPerLine)) * o.MMPerCount
		dst.Time = st.t0.Add(time.Duration(mm / (o.SpeedMPerMin * 1000 / 60) * float64(time.Second)))
	} else {
		dst.Time = st.t0
	}
	return nil
}

func (st *stream) Close() error {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.closed = true
	st.cur = nil
	return nil
}

package frames

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/webinspect/webinspect/acquisition"
	"github.com/webinspect/webinspect/acquisition/sim"
	"github.com/webinspect/webinspect/internal/pngtest"
)

// set makes SET/test/{good,hole} with frames whose pixels encode the
// frame number (value 10·k + row%10) and a mask for hole/000.
func set(t *testing.T) (dir string, heights map[string]int) {
	root := t.TempDir()
	dir = filepath.Join(root, "test")
	heights = map[string]int{"good/000.png": 20, "good/001.png": 30, "hole/000.png": 25, "hole/001.png": 10}
	k := 0
	for _, rel := range []string{"good/000.png", "good/001.png", "hole/000.png", "hole/001.png"} {
		v := uint8(10 * k)
		pngtest.WriteFunc(t, filepath.Join(dir, rel), 40, heights[rel], func(_, y int) uint8 { return v + uint8(y%10) })
		k++
	}
	pngtest.WriteFunc(t, filepath.Join(root, "ground_truth", "hole", "000_mask.png"), 40, 25, func(x, y int) uint8 {
		if x >= 12 && x < 20 && y >= 5 && y < 9 {
			return 255
		}
		return 0
	})
	return dir, heights
}

// readAll plays s to its end and checks what every block says of the
// joints between frames: a block never straddles one, and Seam is set on
// exactly the blocks that start a frame after the first, so the engine
// never inspects a joint as web.
func readAll(t *testing.T, s *Source) (lines [][]uint8, counts []int64) {
	t.Helper()
	st := s.Streams()[0]
	b := acquisition.NewBlock(s.Info().LinesPerBlock, st.Camera().Width)
	b.Seam = true // a reused slot: the source must clear it
	starts := map[int64]bool{}
	var at int64
	for _, f := range s.Frames() {
		if at > 0 {
			starts[at] = true
		}
		at += int64(f.Lines)
	}
	var next int64
	for {
		err := st.ReadBlock(context.Background(), b)
		if errors.Is(err, io.EOF) {
			return lines, counts
		}
		if err == nil {
			if b.Seam != starts[b.FirstLine] {
				t.Fatalf("block at line %d: Seam %v, want %v (frames start at %v)", b.FirstLine, b.Seam, starts[b.FirstLine], starts)
			}
			for l := b.FirstLine + 1; l < b.FirstLine+int64(b.Lines); l++ {
				if starts[l] {
					t.Fatalf("block at lines %d..%d straddles the joint at line %d", b.FirstLine, b.FirstLine+int64(b.Lines)-1, l)
				}
			}
		}
		if err != nil {
			t.Fatal(err)
		}
		if b.FirstLine != next || b.Lines < 1 || b.Lines > s.Info().LinesPerBlock {
			t.Fatalf("block FirstLine %d Lines %d, want FirstLine %d", b.FirstLine, b.Lines, next)
		}
		next += int64(b.Lines)
		for i := range b.Lines {
			lines = append(lines, slices.Clone(b.Line(i)))
			counts = append(counts, b.Counts[i])
		}
	}
}

func TestPlaysFramesAsOneWeb(t *testing.T) {
	dir, heights := set(t)
	o := DefaultOptions()
	o.LinesPerBlock, o.CountsPerLine, o.StartCount, o.MMPerCount, o.PixelMM, o.OffsetMM = 16, 4, 100, 0.05, 0.5, 10
	s, err := Open(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	info := s.Info()
	if len(info.Cameras) != 1 || info.Cameras[0].Width != 40 || info.WebWidthMM != 20 || info.Live || info.LineMM() != 0.2 {
		t.Fatalf("info %+v", info)
	}
	lines, counts := readAll(t, s)
	if int64(len(lines)) != s.Lines() || len(lines) != 85 {
		t.Fatalf("%d lines, want 85 (= Lines() %d)", len(lines), s.Lines())
	}
	// Name order: good/000, good/001, hole/000, hole/001; frame k's rows
	// hold 10k + row%10.
	row := 0
	for k, rel := range []string{"good/000.png", "good/001.png", "hole/000.png", "hole/001.png"} {
		for y := range heights[rel] {
			if got, want := lines[row][7], uint8(10*k+y%10); got != want {
				t.Fatalf("line %d (frame %s row %d) = %d, want %d", row, rel, y, got, want)
			}
			if counts[row] != 100+int64(row)*4 {
				t.Fatalf("line %d count %d, want %d", row, counts[row], 100+row*4)
			}
			row++
		}
	}
	// Truth: the two hole frames, the first with its mask's box.
	tr := s.Truth()
	if len(tr) != 2 {
		t.Fatalf("truth %+v, want 2 rows", tr)
	}
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-9 }
	// hole/000 starts at line 50: MD (100 + 4·50)·0.05 mm = 15 mm; mask rows 5..9, columns 12..20.
	if a := tr[0]; a.Class != "hole" || !near(a.MDStartM, (100+4*55)*0.05/1000) || !near(a.MDEndM, (100+4*59)*0.05/1000) ||
		!near(a.CDStartMM, 10+12*0.5) || !near(a.CDEndMM, 10+20*0.5) {
		t.Errorf("masked truth %+v", a)
	}
	if b := tr[1]; !near(b.MDStartM, (100+4*75)*0.05/1000) || !near(b.MDEndM, (100+4*85)*0.05/1000) || !near(b.CDStartMM, 10) || !near(b.CDEndMM, 30) {
		t.Errorf("unmasked truth %+v, want the whole frame", b)
	}
	var buf bytes.Buffer
	if err := s.WriteTruth(&buf); err != nil {
		t.Fatal(err)
	}
	back, err := sim.ReadTruthCSV(&buf)
	if err != nil || len(back) != 2 || back[1].Class != "hole" {
		t.Errorf("truth.csv round trip: %+v, %v", back, err)
	}
	s.Close()
	if err := s.Streams()[0].ReadBlock(context.Background(), acquisition.NewBlock(16, 40)); !errors.Is(err, ErrClosed) {
		t.Errorf("after Close: %v, want ErrClosed", err)
	}
}

func TestShuffleAndRepeat(t *testing.T) {
	dir, _ := set(t)
	order := func(seed uint64) []string {
		o := DefaultOptions()
		o.Order, o.Seed, o.Repeat = "shuffle", seed, 3
		s, err := Open(dir, o)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, f := range s.Frames() {
			out = append(out, filepath.Base(filepath.Dir(f.Path))+"/"+filepath.Base(f.Path))
		}
		if len(s.Truth()) != 6 {
			t.Errorf("repeat 3: %d truth rows, want 6", len(s.Truth()))
		}
		return out
	}
	a, b, c := order(1), order(1), order(2)
	if len(a) != 12 || !slices.Equal(a, b) {
		t.Fatalf("same seed gave %v and %v", a, b)
	}
	if slices.Equal(a, c) {
		t.Errorf("seeds 1 and 2 gave the same order %v", a)
	}
	o := DefaultOptions()
	o.Files = []string{"hole/001.png", "good/000.png"}
	s, err := Open(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	if f := s.Frames(); len(f) != 2 || f[0].Class != "hole" || f[1].Line0 != 10 {
		t.Errorf("given order: %+v", f)
	}
}

func TestOpenErrors(t *testing.T) {
	dir, _ := set(t)
	pngtest.WriteFunc(t, filepath.Join(dir, "good", "wide.png"), 41, 5, func(int, int) uint8 { return 0 })
	if _, err := Open(dir, DefaultOptions()); !errors.Is(err, ErrFrames) {
		t.Errorf("mixed widths: %v, want ErrFrames", err)
	}
	if _, err := Open(t.TempDir(), DefaultOptions()); !errors.Is(err, ErrFrames) {
		t.Errorf("empty dir: %v, want ErrFrames", err)
	}
	o := DefaultOptions()
	o.Order = "random"
	if _, err := Open(dir, o); !errors.Is(err, ErrOptions) {
		t.Errorf("bad order: %v, want ErrOptions", err)
	}
	o = DefaultOptions()
	o.PixelMM = 0
	if err := o.Validate(); !errors.Is(err, ErrOptions) {
		t.Errorf("PixelMM 0: %v", err)
	}
}

// TestSharedData plays the AITEX fabric 00 test frames when the shared
// data folder is present ($WEBINSPECT_DATA, else ../shared/data beside the
// checkout); it is never required.
func TestSharedData(t *testing.T) {
	root := os.Getenv("WEBINSPECT_DATA")
	if root == "" {
		root = filepath.Join("..", "..", "..", "..", "shared", "data")
		if _, err := os.Stat(root); err != nil {
			root = filepath.Join("..", "..", "..", "shared", "data")
		}
	}
	dir := filepath.Join(root, "aitex_fabric00", "test")
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("no shared data at %s (set WEBINSPECT_DATA)", dir)
	}
	s, err := Open(dir, DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if n := len(s.Frames()); n != 13 || len(s.Truth()) != 7 || s.Lines() != 13*256 || s.Info().Cameras[0].Width != 4096 {
		t.Errorf("%d frames, %d truth rows, %d lines, width %d; want 13, 7, 3328, 4096", n, len(s.Truth()), s.Lines(), s.Info().Cameras[0].Width)
	}
}

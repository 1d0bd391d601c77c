package recording

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/webinspect/webinspect/acquisition"
	"github.com/webinspect/webinspect/acquisition/sim"
)

// simConfig is a small, fast simulation: 2 cameras over 200 mm, 0.3 m
// (1200 lines, 5 blocks per camera, the last one partial).
func simConfig() sim.Config {
	c := sim.DefaultConfig()
	c.WidthMM = 200
	c.LengthM = 0.3
	c.LearnM = 0.02
	c.Defects = 3
	c.Start = time.Unix(1700000000, 123456789)
	return c
}

func newSim(t testing.TB, c sim.Config) *sim.Sim {
	t.Helper()
	s, err := sim.New(c)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func record(t testing.TB, c sim.Config) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "rec")
	gen, _ := json.Marshal(c)
	if err := Record(context.Background(), newSim(t, c), dir, gen); err != nil {
		t.Fatal(err)
	}
	return dir
}

// blockCopy is a deep copy of a block's valid content.
type blockCopy struct {
	camera    int
	firstLine int64
	time      time.Time
	counts    []int64
	pix       []byte
}

func copyBlock(b *acquisition.Block) blockCopy {
	c := blockCopy{camera: b.Camera, firstLine: b.FirstLine, time: b.Time, counts: append([]int64(nil), b.Counts[:b.Lines]...)}
	for i := range b.Lines {
		c.pix = append(c.pix, b.Line(i)...)
	}
	return c
}

func (c blockCopy) equal(d blockCopy) bool {
	return c.camera == d.camera && c.firstLine == d.firstLine && c.time.Equal(d.time) &&
		fmt.Sprint(c.counts) == fmt.Sprint(d.counts) && bytes.Equal(c.pix, d.pix)
}

// readAll reads a stream to its end and returns the blocks and the final
// error (nil for io.EOF).
func readAll(ctx context.Context, st acquisition.Stream, lines int) ([]blockCopy, error) {
	b := acquisition.NewBlock(lines, st.Camera().Width)
	var out []blockCopy
	for {
		err := st.ReadBlock(ctx, b)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, copyBlock(b))
	}
}

func TestRoundTrip(t *testing.T) {
	c := simConfig()
	dir := record(t, c)
	want := newSim(t, c)
	r, err := Open(dir, ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	wi, gi := want.Info(), r.Info()
	if gi.Name != dir || r.Meta().Info.Name != wi.Name {
		t.Errorf("names: replay %q meta %q, want %q and %q", gi.Name, r.Meta().Info.Name, dir, wi.Name)
	}
	gi.Name = wi.Name
	if a, b := mustJSON(t, gi), mustJSON(t, wi); a != b {
		t.Fatalf("info differs:\n got %s\nwant %s", a, b)
	}
	var gen sim.Config
	if err := json.Unmarshal(r.Meta().Generator, &gen); err != nil || gen.Seed != c.Seed || gen.Material != c.Material {
		t.Fatalf("generator metadata %s: %v", r.Meta().Generator, err)
	}
	for i, st := range r.Streams() {
		if a, b := mustJSON(t, st.Camera()), mustJSON(t, wi.Cameras[i]); a != b {
			t.Fatalf("camera %d header differs", i)
		}
		got, err := readAll(context.Background(), st, c.LinesPerBlock)
		if err != nil {
			t.Fatal(err)
		}
		exp, err := readAll(context.Background(), want.Streams()[i], c.LinesPerBlock)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(exp) || len(got) != 5 {
			t.Fatalf("camera %d: %d blocks replayed, %d generated, want 5", i, len(got), len(exp))
		}
		for j := range got {
			if !got[j].equal(exp[j]) {
				t.Fatalf("camera %d block %d differs", i, j)
			}
		}
		// After the end: io.EOF again.
		if err := st.ReadBlock(context.Background(), acquisition.NewBlock(c.LinesPerBlock, st.Camera().Width)); !errors.Is(err, io.EOF) {
			t.Fatalf("read after end: %v", err)
		}
	}
}

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// frames parses a camera file and returns the offset of every frame and
// the file's length (the last frame is the end frame).
func frames(t testing.TB, data []byte) []int64 {
	t.Helper()
	hl := binary.LittleEndian.Uint32(data[8:])
	off := int64(12 + hl)
	var out []int64
	for off < int64(len(data)) {
		out = append(out, off)
		l := binary.LittleEndian.Uint32(data[off+4:])
		off += frameHead + int64(l)
	}
	if off != int64(len(data)) {
		t.Fatalf("frames overrun the file: %d > %d", off, len(data))
	}
	return out
}

// cloneWith copies recording dir to a new directory, replacing camera 0's
// file with data.
func cloneWith(t *testing.T, dir string, data []byte) string {
	t.Helper()
	out := t.TempDir()
	for _, name := range []string{MetaFile, CameraFile(0), CameraFile(1)} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if name == CameraFile(0) {
			b = data
		}
		if err := os.WriteFile(filepath.Join(out, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func TestTruncation(t *testing.T) {
	c := simConfig()
	dir := record(t, c)
	data, err := os.ReadFile(filepath.Join(dir, CameraFile(0)))
	if err != nil {
		t.Fatal(err)
	}
	offs := frames(t, data)
	if n := len(offs); n != 6 || string(data[offs[n-1]:offs[n-1]+4]) != frameEnd {
		t.Fatalf("%d frames, want 5 blocks and an end frame", n)
	}
	ref, err := Open(dir, ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	full, err := readAll(context.Background(), ref.Streams()[0], c.LinesPerBlock)
	ref.Close()
	if err != nil {
		t.Fatal(err)
	}

	type cut struct {
		at       int64
		complete int // blocks before the cut
	}
	cuts := []cut{
		{offs[0], 0},                        // right after the header
		{offs[0] + 5, 0},                    // inside the first frame header
		{offs[1] - 1, 0},                    // last byte of the first frame missing
		{offs[2], 2},                        // between frames
		{offs[3] + 12 + 100, 3},             // inside a payload
		{offs[5], 5},                        // every block, no end frame
		{offs[5] + 6, 5},                    // partial end frame
		{int64(len(data)) - 1, 5},           // end frame one byte short
		{int64(len(fileMagic) + 4 + 10), 0}, // inside the camera header: Open fails
	}
	for _, k := range cuts {
		t.Run("at="+strconv.FormatInt(k.at, 10), func(t *testing.T) {
			d := cloneWith(t, dir, data[:k.at])
			r, err := Open(d, ReadOptions{})
			if k.at < offs[0] {
				if !errors.Is(err, acquisition.ErrTruncated) {
					t.Fatalf("Open of a file cut in its header: %v, want ErrTruncated", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			got, err := readAll(context.Background(), r.Streams()[0], c.LinesPerBlock)
			if !errors.Is(err, acquisition.ErrTruncated) {
				t.Fatalf("error %v, want ErrTruncated", err)
			}
			if !strings.Contains(err.Error(), CameraFile(0)) || !strings.Contains(err.Error(), strconv.FormatInt(k.at, 10)) {
				t.Errorf("error %q does not name the file and the offset %d", err, k.at)
			}
			if len(got) != k.complete {
				t.Fatalf("%d blocks delivered, want %d", len(got), k.complete)
			}
			for i := range got {
				if !got[i].equal(full[i]) {
					t.Fatalf("block %d differs", i)
				}
			}
			// The error is sticky; camera 1 is unaffected.
			if err2 := r.Streams()[0].ReadBlock(context.Background(), acquisition.NewBlock(c.LinesPerBlock, r.Streams()[0].Camera().Width)); !errors.Is(err2, acquisition.ErrTruncated) {
				t.Fatalf("second read: %v", err2)
			}
			if _, err := readAll(context.Background(), r.Streams()[1], c.LinesPerBlock); err != nil {
				t.Fatalf("camera 1: %v", err)
			}
		})
	}
}

func TestCorrupt(t *testing.T) {
	c := simConfig()
	dir := record(t, c)
	data, err := os.ReadFile(filepath.Join(dir, CameraFile(0)))
	if err != nil {
		t.Fatal(err)
	}
	offs := frames(t, data)
	f2 := offs[2]
	mod := func(f func(b []byte)) []byte {
		b := append([]byte(nil), data...)
		f(b)
		return b
	}
	cases := map[string][]byte{
		"payload bit flip": mod(func(b []byte) { b[f2+12+50] ^= 0x10 }),
		"crc":              mod(func(b []byte) { b[f2+8] ^= 1 }),
		"frame magic":      mod(func(b []byte) { copy(b[f2:], "XBLK") }),
		"length beyond bound": mod(func(b []byte) {
			binary.LittleEndian.PutUint32(b[f2+4:], 1<<30)
		}),
		"undecodable with good crc": mod(func(b []byte) {
			l := binary.LittleEndian.Uint32(b[f2+4:])
			p := b[f2+12 : f2+12+int64(l)]
			copy(p, "not zstd at all")
			binary.LittleEndian.PutUint32(b[f2+8:], crc32.Checksum(p, castagnoli))
		}),
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			r, err := Open(cloneWith(t, dir, b), ReadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			got, err := readAll(context.Background(), r.Streams()[0], c.LinesPerBlock)
			if !errors.Is(err, acquisition.ErrCorrupt) {
				t.Fatalf("error %v, want ErrCorrupt", err)
			}
			if !strings.Contains(err.Error(), CameraFile(0)) || !strings.Contains(err.Error(), "byte "+strconv.FormatInt(f2, 10)) {
				t.Errorf("error %q does not name the file and offset %d", err, f2)
			}
			if len(got) != 2 {
				t.Fatalf("%d blocks delivered before the corrupt frame, want 2", len(got))
			}
		})
	}
}

func TestOpenErrors(t *testing.T) {
	c := simConfig()
	dir := record(t, c)
	data, err := os.ReadFile(filepath.Join(dir, CameraFile(0)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(filepath.Join(dir, "nope"), ReadOptions{}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing dir: %v", err)
	}
	if _, err := Open(t.TempDir(), ReadOptions{}); !errors.Is(err, ErrNoRecording) || !strings.Contains(err.Error(), MetaFile) {
		t.Errorf("missing %s: %v", MetaFile, err)
	}
	bad := mod(data, func(b []byte) { copy(b, "NOTREC\x00\x00") })
	if _, err := Open(cloneWith(t, dir, bad), ReadOptions{}); !errors.Is(err, ErrBadMagic) {
		t.Errorf("bad magic: %v", err)
	}
	bad = mod(data, func(b []byte) { b[6] = 9 })
	if _, err := Open(cloneWith(t, dir, bad), ReadOptions{}); !errors.Is(err, ErrVersion) {
		t.Errorf("bad version: %v", err)
	}
	// Camera count mismatch: a missing and an extra camera file.
	d := cloneWith(t, dir, data)
	os.Remove(filepath.Join(d, CameraFile(1)))
	if _, err := Open(d, ReadOptions{}); !errors.Is(err, ErrCameraMismatch) {
		t.Errorf("missing camera file: %v", err)
	}
	d = cloneWith(t, dir, data)
	os.WriteFile(filepath.Join(d, CameraFile(2)), data, 0o644)
	if _, err := Open(d, ReadOptions{}); !errors.Is(err, ErrCameraMismatch) {
		t.Errorf("extra camera file: %v", err)
	}
	// Camera 1's file in camera 0's place.
	other, _ := os.ReadFile(filepath.Join(dir, CameraFile(1)))
	if _, err := Open(cloneWith(t, dir, other), ReadOptions{}); !errors.Is(err, ErrCameraMismatch) {
		t.Errorf("swapped camera file: %v", err)
	}
	if _, err := Open(dir, ReadOptions{Follow: -1}); err == nil {
		t.Error("negative Follow accepted")
	}
	// Create refuses an existing recording.
	if _, err := Create(dir, newSim(t, c).Info(), nil); !errors.Is(err, ErrExists) {
		t.Errorf("Create over a recording: %v", err)
	}
}

func mod(data []byte, f func([]byte)) []byte {
	b := append([]byte(nil), data...)
	f(b)
	return b
}

func TestWriterErrors(t *testing.T) {
	c := simConfig()
	s := newSim(t, c)
	w, err := Create(filepath.Join(t.TempDir(), "w"), s.Info(), json.RawMessage(`{"x":1}`))
	if err != nil {
		t.Fatal(err)
	}
	b := acquisition.NewBlock(4, s.Info().Cameras[0].Width)
	b.Lines, b.Width, b.Camera = 4, s.Info().Cameras[0].Width, 5
	if err := w.WriteBlock(b); !errors.Is(err, ErrCameraMismatch) {
		t.Errorf("unknown camera: %v", err)
	}
	b.Camera, b.Width = 0, 3
	if err := w.WriteBlock(b); !errors.Is(err, ErrCameraMismatch) {
		t.Errorf("wrong width: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	b.Width = s.Info().Cameras[0].Width
	if err := w.WriteBlock(b); !errors.Is(err, ErrClosed) {
		t.Errorf("write after close: %v", err)
	}
	if err := w.Close(); !errors.Is(err, ErrClosed) {
		t.Errorf("second close: %v", err)
	}
	if _, err := Create(t.TempDir(), s.Info(), json.RawMessage(`{bad`)); err == nil {
		t.Error("invalid generator JSON accepted")
	}
}

// TestFollow reads a recording while a writer slowly appends to it.
func TestFollow(t *testing.T) {
	for _, clean := range []bool{true, false} {
		t.Run(fmt.Sprintf("clean=%v", clean), func(t *testing.T) {
			c := simConfig()
			c.Cameras = 1
			c.OverlapMM = 0
			src := newSim(t, c)
			st := src.Streams()[0]
			dir := filepath.Join(t.TempDir(), "live")
			w, err := Create(dir, src.Info(), nil)
			if err != nil {
				t.Fatal(err)
			}
			// The blocks are generated first, so that the gaps between
			// writes are the writer's pauses, not the simulator's work on a
			// busy machine (a gap longer than Follow ends the reader).
			var blocks []*acquisition.Block
			for {
				b := acquisition.NewBlock(c.LinesPerBlock, st.Camera().Width)
				err := st.ReadBlock(context.Background(), b)
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				blocks = append(blocks, b)
			}
			var written []blockCopy
			var werr error
			var wg sync.WaitGroup
			wg.Go(func() {
				for _, b := range blocks {
					if err := w.WriteBlock(b); err != nil {
						werr = err
						return
					}
					written = append(written, copyBlock(b))
					time.Sleep(20 * time.Millisecond) // the reader catches up and follows
				}
				if clean {
					werr = w.Close()
				} else {
					werr = w.Abort()
				}
			})
			// A clean recording ends at its end frame, however long Follow
			// is; an aborted one is given up on Follow after it stopped
			// growing, which is what the test waits for.
			follow := time.Minute
			if !clean {
				follow = 2 * time.Second
			}
			r, err := Open(dir, ReadOptions{Follow: follow})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			start := time.Now()
			got, rerr := readAll(context.Background(), r.Streams()[0], c.LinesPerBlock)
			wg.Wait()
			if werr != nil {
				t.Fatal(werr)
			}
			if clean && rerr != nil {
				t.Fatalf("reader: %v", rerr)
			}
			if !clean {
				if !errors.Is(rerr, acquisition.ErrTruncated) {
					t.Fatalf("reader of an aborted recording: %v, want ErrTruncated", rerr)
				}
				if el := time.Since(start); el < follow {
					t.Fatalf("gave up after %v, want >= Follow", el)
				}
			}
			if len(got) != len(written) || len(got) != 5 {
				t.Fatalf("read %d blocks, wrote %d, want 5", len(got), len(written))
			}
			for i := range got {
				if !got[i].equal(written[i]) {
					t.Fatalf("block %d differs", i)
				}
			}
		})
	}
}

func TestFollowCloseUnblocks(t *testing.T) {
	c := simConfig()
	src := newSim(t, c)
	dir := filepath.Join(t.TempDir(), "idle")
	w, err := Create(dir, src.Info(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	r, err := Open(dir, ReadOptions{Follow: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	st := r.Streams()[0]
	done := make(chan error, 1)
	go func() {
		done <- st.ReadBlock(context.Background(), acquisition.NewBlock(c.LinesPerBlock, st.Camera().Width))
	}()
	time.Sleep(30 * time.Millisecond)
	r.Close()
	select {
	case err := <-done:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("blocked read returned %v, want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not unblock a following read")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	r2, err := Open(dir, ReadOptions{Follow: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	if err := r2.Streams()[1].ReadBlock(ctx, acquisition.NewBlock(c.LinesPerBlock, st.Camera().Width)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("read with deadline: %v", err)
	}
}

func TestRealtime(t *testing.T) {
	c := simConfig()
	c.LengthM = 0.5 // 0.3 s at 100 m/min
	dir := record(t, c)
	r, err := Open(dir, ReadOptions{Realtime: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	start := time.Now()
	var wg sync.WaitGroup
	for _, st := range r.Streams() {
		wg.Go(func() {
			if _, err := readAll(context.Background(), st, c.LinesPerBlock); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	// The last block starts at line 1792 of 2000: 0.27 s after the first.
	if el := time.Since(start); el < 250*time.Millisecond {
		t.Fatalf("realtime replay took %v, want >= 250ms", el)
	}
}

func TestRecordCancel(t *testing.T) {
	c := simConfig()
	c.LengthM = 1000
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	dir := filepath.Join(t.TempDir(), "cut")
	if err := Record(ctx, newSim(t, c), dir, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Record: %v, want DeadlineExceeded", err)
	}
	r, err := Open(dir, ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := readAll(context.Background(), r.Streams()[0], c.LinesPerBlock); !errors.Is(err, acquisition.ErrTruncated) {
		t.Fatalf("reading a cancelled recording: %v, want ErrTruncated", err)
	}
}

// benchBlocks generates n blocks of one 4032-px camera.
func benchBlocks(b *testing.B, n int) (acquisition.Info, []*acquisition.Block) {
	c := sim.DefaultConfig()
	c.Cameras, c.OverlapMM, c.WidthMM = 1, 0, 1008
	s := newSim(b, c)
	st := s.Streams()[0]
	var out []*acquisition.Block
	for range n {
		blk := acquisition.NewBlock(c.LinesPerBlock, st.Camera().Width)
		if err := st.ReadBlock(context.Background(), blk); err != nil {
			b.Fatal(err)
		}
		out = append(out, blk)
	}
	return s.Info(), out
}

func BenchmarkWrite(b *testing.B) {
	info, blocks := benchBlocks(b, 8)
	w, err := Create(filepath.Join(b.TempDir(), "w"), info, nil)
	if err != nil {
		b.Fatal(err)
	}
	px := blocks[0].Lines * blocks[0].Width
	b.SetBytes(int64(px))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := w.WriteBlock(blocks[i%len(blocks)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(px)*float64(b.N)/b.Elapsed().Seconds()/1e6, "Mpx/s")
	b.ReportMetric(float64(w.cams[0].off)/float64(px*b.N), "bytes/px")
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
}

func BenchmarkRead(b *testing.B) {
	info, blocks := benchBlocks(b, 32)
	dir := filepath.Join(b.TempDir(), "r")
	w, err := Create(dir, info, nil)
	if err != nil {
		b.Fatal(err)
	}
	for _, blk := range blocks {
		if err := w.WriteBlock(blk); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	px := blocks[0].Lines * blocks[0].Width
	dst := acquisition.NewBlock(info.LinesPerBlock, info.Cameras[0].Width)
	open := func() acquisition.Stream {
		r, err := Open(dir, ReadOptions{})
		if err != nil {
			b.Fatal(err)
		}
		return r.Streams()[0]
	}
	st := open()
	b.SetBytes(int64(px))
	b.ReportAllocs()
	for b.Loop() {
		err := st.ReadBlock(context.Background(), dst)
		if errors.Is(err, io.EOF) {
			b.StopTimer()
			st.Close()
			st = open()
			b.StartTimer()
			err = st.ReadBlock(context.Background(), dst)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	st.Close()
	b.ReportMetric(float64(px)*float64(b.N)/b.Elapsed().Seconds()/1e6, "Mpx/s")
}

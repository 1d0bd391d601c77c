package recording

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/webinspect/webinspect/acquisition"
)

// editMeta rewrites recording.json of a copy of dir through f.
func editMeta(t *testing.T, dir string, f func(m *Meta)) string {
	t.Helper()
	d := filepath.Join(t.TempDir(), "rec")
	if err := os.CopyFS(d, os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	var m Meta
	js, _ := os.ReadFile(filepath.Join(d, MetaFile))
	if err := json.Unmarshal(js, &m); err != nil {
		t.Fatal(err)
	}
	f(&m)
	js, _ = json.Marshal(m)
	if err := os.WriteFile(filepath.Join(d, MetaFile), js, 0o644); err != nil {
		t.Fatal(err)
	}
	return d
}

// TestOpenRefusesImpossibleGeometry: geometry that would need gigabytes,
// or that no line can have, is refused at Open with the field named,
// before anything is allocated.
func TestOpenRefusesImpossibleGeometry(t *testing.T) {
	dir := record(t, simConfig())
	for _, tc := range []struct {
		name, want string
		f          func(m *Meta)
	}{
		{"width 2e9", "width", func(m *Meta) { m.Info.Cameras[0].Width = 2e9 }},
		{"lines per block 2e9", "lines_per_block", func(m *Meta) { m.Info.LinesPerBlock = 2e9 }},
		{"block over the budget", "bytes per block", func(m *Meta) {
			m.Info.LinesPerBlock, m.Info.Cameras[0].Width = 60000, 60000
			m.Info.Cameras[0].Dark, m.Info.Cameras[0].White = nil, nil
		}},
		{"offset 1e308", "offset_mm", func(m *Meta) { m.Info.Cameras[1].OffsetMM = 1e308 }},
		{"mm per count 0", "mm_per_count", func(m *Meta) { m.Info.MMPerCount = 0 }},
		{"counts per line 0", "counts_per_line", func(m *Meta) { m.Info.CountsPerLine = 0 }},
		{"dark of the wrong length", "dark", func(m *Meta) { m.Info.Cameras[0].Dark = make([]uint8, 3) }},
		{"white at or below dark", "blind", func(m *Meta) {
			w := m.Info.Cameras[0].Width
			m.Info.Cameras[0].Dark, m.Info.Cameras[0].White = make([]uint8, w), make([]uint8, w)
			for i := range w {
				m.Info.Cameras[0].Dark[i], m.Info.Cameras[0].White[i] = 20, 200
			}
			m.Info.Cameras[0].White[7] = 20
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Open(editMeta(t, dir, tc.f), ReadOptions{})
			if !errors.Is(err, acquisition.ErrGeometry) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Open: %v, want ErrGeometry naming %q", err, tc.want)
			}
		})
	}
}

// TestOpenRefusesFilesThatNeverEnd: a FIFO or a device in place of a
// recording file is refused at once (not read without end, not called
// truncated), so replay never hangs.
func TestOpenRefusesFilesThatNeverEnd(t *testing.T) {
	dir := record(t, simConfig())
	fifo := func(d, name string) {
		p := filepath.Join(d, name)
		os.Remove(p)
		if err := syscall.Mkfifo(p, 0o644); err != nil {
			t.Skipf("mkfifo: %v", err)
		}
	}
	zero := func(d, name string) {
		p := filepath.Join(d, name)
		os.Remove(p)
		if err := os.Symlink("/dev/zero", p); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name, file, want string
		make             func(d, name string)
	}{
		{"recording.json FIFO", MetaFile, "FIFO", fifo},
		{"recording.json /dev/zero", MetaFile, "character device", zero},
		{"camera file FIFO", CameraFile(0), "FIFO", fifo},
		{"camera file /dev/zero", CameraFile(1), "character device", zero},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := editMeta(t, dir, func(*Meta) {})
			tc.make(d, tc.file)
			done := make(chan error, 1)
			go func() {
				r, err := Open(d, ReadOptions{})
				if err == nil {
					r.Close()
				}
				done <- err
			}()
			select {
			case err := <-done:
				if err == nil || !strings.Contains(err.Error(), tc.want) || errors.Is(err, acquisition.ErrTruncated) {
					t.Fatalf("Open: %v, want an error naming %q (and not 'truncated')", err, tc.want)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("Open hangs on a file that never ends")
			}
		})
	}
	// A recording.json far larger than any real one.
	d := editMeta(t, dir, func(*Meta) {})
	if err := os.WriteFile(filepath.Join(d, MetaFile), make([]byte, 2<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(d, ReadOptions{}); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("Open with a 2 MiB recording.json: %v", err)
	}
}

// writeOne writes a recording of one camera with the given blocks.
func writeOne(t *testing.T, blocks ...*acquisition.Block) string {
	t.Helper()
	info := acquisition.Info{Name: "t", MMPerCount: 0.25, CountsPerLine: 1, LinesPerBlock: 4, WebWidthMM: 10,
		Cameras: []acquisition.CameraInfo{{Width: 8, PixelMM: 1}}}
	dir := filepath.Join(t.TempDir(), "rec")
	w, err := Create(dir, info, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range blocks {
		if err := w.WriteBlock(b); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

func block(first int64, tm time.Time, counts ...int64) *acquisition.Block {
	b := acquisition.NewBlock(len(counts), 8)
	b.FirstLine, b.Lines, b.Time = first, len(counts), tm
	copy(b.Counts, counts)
	return b
}

// TestCorruptCountsAndTimes: counts that jump by 10^18 or sit near the
// int64 limit, and block times of ±2^62 ns, pass the CRC (they were
// written so) but are refused as corrupt, naming the line; the blocks
// before them are delivered.
func TestCorruptCountsAndTimes(t *testing.T) {
	t0 := time.Unix(1700000000, 0)
	for _, tc := range []struct {
		name, want string
		second     *acquisition.Block
	}{
		{"jump of 1e18", "line 5", block(4, t0.Add(time.Millisecond), 5, 1e18, 1e18+1, 1e18+2)},
		{"near int64 max", "line 4", block(4, t0.Add(time.Millisecond), 1<<62, 1<<62+1, 1<<62+2, 1<<62+3)},
		{"time +2^62", "block time", block(4, time.Unix(0, 1<<62), 5, 6, 7, 8)},
		{"time before 2000", "block time", block(4, time.Unix(0, 1), 5, 6, 7, 8)},
		{"time going back", "block time steps", block(4, t0.Add(-time.Hour), 5, 6, 7, 8)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeOne(t, block(0, t0, 1, 2, 3, 4), tc.second)
			r, err := Open(dir, ReadOptions{Realtime: true})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			got, err := readAll(ctx, r.Streams()[0], 4)
			if len(got) != 1 || !errors.Is(err, acquisition.ErrCorrupt) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("read %d blocks, %v; want the first block, then ErrCorrupt naming %q", len(got), err, tc.want)
			}
			if errors.Is(err, io.EOF) || errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("never refused: %v", err)
			}
		})
	}
	// Backward steps (a jog) and a long forward step within the limit are web.
	dir := writeOne(t, block(0, t0, 100, 101, 102, 103), block(4, t0.Add(time.Second), 102, 101, 100, 100+4e7))
	r, err := Open(dir, ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if got, err := readAll(context.Background(), r.Streams()[0], 4); len(got) != 2 || err != nil {
		t.Fatalf("jog and 10 km step: %d blocks, %v", len(got), err)
	}
}

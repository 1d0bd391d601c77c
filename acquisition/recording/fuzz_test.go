package recording

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/webinspect/webinspect/acquisition"
)

// FuzzRecording opens a recording whose recording.json or first camera
// file is replaced by the fuzzer's bytes (the seeds are a real recording's)
// and reads every block. Whatever the bytes, Open and ReadBlock return
// (no panic, no hang, bounded memory): a block, io.EOF, or an error.
func FuzzRecording(f *testing.F) {
	dir := record(f, simConfig())
	meta, err := os.ReadFile(filepath.Join(dir, MetaFile))
	if err != nil {
		f.Fatal(err)
	}
	cam, err := os.ReadFile(filepath.Join(dir, CameraFile(0)))
	if err != nil {
		f.Fatal(err)
	}
	if len(cam) > 64<<10 {
		cam = cam[:64<<10] // keep the seed small: the fuzzer mutates its bytes
	}
	f.Add(false, meta)
	f.Add(true, cam)
	f.Add(true, []byte("WIREC\x00\x01\x00"))
	f.Fuzz(func(t *testing.T, camera bool, data []byte) {
		d := filepath.Join(t.TempDir(), "rec")
		if err := os.CopyFS(d, os.DirFS(dir)); err != nil {
			t.Fatal(err)
		}
		name := MetaFile
		if camera {
			name = CameraFile(0)
		}
		if err := os.WriteFile(filepath.Join(d, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
		r, err := Open(d, ReadOptions{})
		if err != nil {
			return
		}
		defer r.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		info := r.Info()
		for _, s := range r.Streams() {
			b := acquisition.NewBlock(info.LinesPerBlock, s.Camera().Width)
			for n := 0; ; n++ {
				err := s.ReadBlock(ctx, b)
				if err != nil {
					if errors.Is(err, context.DeadlineExceeded) {
						t.Fatalf("reading camera %d did not end within 10 s", s.Camera().Index)
					}
					if !errors.Is(err, io.EOF) && !errors.Is(err, acquisition.ErrTruncated) && !errors.Is(err, acquisition.ErrCorrupt) {
						t.Logf("camera %d: %v", s.Camera().Index, err)
					}
					break
				}
				if b.Lines < 0 || b.Lines > info.LinesPerBlock {
					t.Fatalf("block of %d lines, lines_per_block %d", b.Lines, info.LinesPerBlock)
				}
			}
		}
	})
}

package recording

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/webinspect/webinspect/acquisition"
)

// cutCamera rewrites camera file i of a copy of dir to hold only its first
// keep block frames, then a proper end frame: a camera that stopped
// delivering while the others went on, its file closed cleanly.
func cutCamera(t *testing.T, dir string, i, keep int) string {
	t.Helper()
	d := filepath.Join(t.TempDir(), "rec")
	if err := os.CopyFS(d, os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(d, CameraFile(i))
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	off := 12 + int(binary.LittleEndian.Uint32(b[8:]))
	for n := 0; n < keep; n++ {
		if string(b[off:off+4]) != frameBlock {
			t.Fatalf("%s has only %d block frames", path, n)
		}
		off += frameHead + int(binary.LittleEndian.Uint32(b[off+4:]))
	}
	out := append(b[:off:off], []byte(frameEnd+"\x00\x00\x00\x00\x00\x00\x00\x00")...)
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
	return d
}

// A camera whose file ends (cleanly) before the others' was read as a
// normal end, so a replay exited 0 with that camera's band uninspected and
// unreported (issue 14 #11). Its end is ErrEndedEarly, a truncation.
func TestCameraEndsEarly(t *testing.T) {
	dir := cutCamera(t, record(t, simConfig()), 0, 3)
	r, err := Open(dir, ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	lpb := r.Info().LinesPerBlock
	var blocks [2]int
	for i, s := range r.Streams() {
		b := acquisition.NewBlock(lpb, s.Camera().Width)
		for {
			err := s.ReadBlock(context.Background(), b)
			if err == nil {
				blocks[i]++
				continue
			}
			switch i {
			case 0:
				if !errors.Is(err, ErrEndedEarly) || !errors.Is(err, acquisition.ErrTruncated) {
					t.Errorf("camera 0 after %d blocks: %v, want ErrEndedEarly", blocks[0], err)
				}
			case 1:
				if !errors.Is(err, io.EOF) {
					t.Errorf("camera 1 after %d blocks: %v, want io.EOF", blocks[1], err)
				}
			}
			break
		}
	}
	if blocks[0] != 3 || blocks[1] <= 3 {
		t.Errorf("blocks read: camera 0 %d (want 3), camera 1 %d (want more)", blocks[0], blocks[1])
	}
	// An intact recording ends with io.EOF on every camera.
	r2, err := Open(record(t, simConfig()), ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	for _, s := range r2.Streams() {
		b := acquisition.NewBlock(lpb, s.Camera().Width)
		for {
			if err := s.ReadBlock(context.Background(), b); err != nil {
				if !errors.Is(err, io.EOF) {
					t.Errorf("intact camera %d: %v", s.Camera().Index, err)
				}
				break
			}
		}
	}
}

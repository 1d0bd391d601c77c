package boundedfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestRead(t *testing.T) {
	dir := t.TempDir()
	small := filepath.Join(dir, "small.json")
	if err := os.WriteFile(small, []byte(`{"a":1}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := Read(small, 7); err != nil || string(b) != `{"a":1}` {
		t.Errorf("Read at the limit: %q, %v", b, err)
	}
	if _, err := Read(small, 6); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Read over the limit: %v, want ErrTooLarge", err)
	}
	if _, err := Read(filepath.Join(dir, "none"), 10); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Read of a missing file: %v, want ErrNotExist", err)
	}
	// /dev/zero never ends; a FIFO without a writer blocks a read; a
	// directory is no file. All are refused before reading.
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/dev/zero", fifo, dir} {
		if _, err := Read(p, 1<<20); !errors.Is(err, ErrNotRegular) {
			t.Errorf("Read(%s): %v, want ErrNotRegular", p, err)
		}
	}
}

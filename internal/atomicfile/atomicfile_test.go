package atomicfile

import (
	"os"
	"path/filepath"
	"testing"
)

func TestWriteFileReplacesWhole(t *testing.T) {
	dir := t.TempDir()
	for _, v := range []string{"first", "second, longer"} {
		if err := WriteFile(dir, "roll.json", []byte(v)); err != nil {
			t.Fatal(err)
		}
		if b, err := os.ReadFile(filepath.Join(dir, "roll.json")); err != nil || string(b) != v {
			t.Fatalf("content %q, %v; want %q", b, err, v)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "roll.json.tmp")); !os.IsNotExist(err) {
		t.Errorf("temporary file left behind: %v", err)
	}
	// A directory that cannot take the file: an error, the old file kept.
	if err := WriteFile(filepath.Join(dir, "missing"), "x", []byte("y")); err == nil {
		t.Error("writing into a missing directory succeeded")
	}
	if err := SyncDir(filepath.Join(dir, "missing")); err == nil {
		t.Error("syncing a missing directory succeeded")
	}
}

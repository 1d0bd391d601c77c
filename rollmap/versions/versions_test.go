package versions

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRegisterRecipe(t *testing.T) {
	root := t.TempDir()
	r, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	a, err := r.RegisterRecipe(Version{Name: "fabric", Origin: "built-in:fabric"}, []byte(`{"name":"fabric","k":4}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(a.ID) != IDLen || !strings.HasPrefix(a.SHA256, a.ID) || a.MadeBy == "" || a.MadeAt.IsZero() || a.Kind != KindRecipe {
		t.Fatalf("registered %+v", a)
	}
	// The same bytes again: the first registration, no new line.
	again, err := r.RegisterRecipe(Version{Name: "other name", Origin: "x.json", MadeBy: "someone@else"}, []byte(`{"name":"fabric","k":4}`))
	if err != nil {
		t.Fatal(err)
	}
	if again != a {
		t.Errorf("same content registered again: %+v, want %+v", again, a)
	}
	b, err := r.RegisterRecipe(Version{Name: "fabric"}, []byte(`{"name":"fabric","k":5}`))
	if err != nil {
		t.Fatal(err)
	}
	if b.ID == a.ID {
		t.Fatal("changed content kept the version")
	}
	vs, err := ListDir(root)
	if err != nil || len(vs) != 2 || vs[0] != a || vs[1] != b {
		t.Fatalf("List = %+v, %v", vs, err)
	}
	if got, err := os.ReadFile(r.ContentPath(a)); err != nil || string(got) != `{"name":"fabric","k":4}` {
		t.Errorf("kept content %q, %v", got, err)
	}
	if _, err := r.Get(KindRecipe, "0000000000000000"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get unknown: %v", err)
	}
}

func TestRegisterFiles(t *testing.T) {
	root, m := t.TempDir(), t.TempDir()
	write := func(name, s string) {
		if err := os.WriteFile(filepath.Join(m, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("model.onnx", "graph-1")
	write("model.json", `{"version":1}`)
	r, _ := Open(root)
	v1, err := r.RegisterFiles(KindModel, Version{Name: "good"}, m, "model.onnx", "model.json")
	if err != nil {
		t.Fatal(err)
	}
	// Moving bytes between files changes the digest (names and lengths are in it).
	write("model.onnx", "graph-1{")
	write("model.json", `"version":1}`)
	v2, err := r.RegisterFiles(KindModel, Version{Name: "good"}, m, "model.onnx", "model.json")
	if err != nil {
		t.Fatal(err)
	}
	if v1.ID == v2.ID {
		t.Fatal("a changed model kept its version")
	}
	// The old version's files are still there, as they were.
	if b, err := os.ReadFile(filepath.Join(r.ContentPath(v1), "model.onnx")); err != nil || string(b) != "graph-1" {
		t.Errorf("old model copy %q, %v", b, err)
	}
	if _, err := r.RegisterFiles(KindModel, Version{}, m, "missing.onnx"); err == nil || !strings.Contains(err.Error(), "missing.onnx") {
		t.Errorf("missing file: %v", err)
	}
	if _, err := r.RegisterFiles(KindRecipe, Version{}, m, "model.onnx"); !errors.Is(err, ErrInvalid) {
		t.Errorf("files of kind recipe: %v", err)
	}
}

// TestTornLine: a crash mid-append leaves a torn last line; it is not
// reported, and the next registration starts a new line.
func TestTornLine(t *testing.T) {
	root := t.TempDir()
	r, _ := Open(root)
	a, err := r.RegisterRecipe(Version{Name: "a"}, []byte("a"))
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(root, DirName, FileName), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"kind":"recipe","id":"12`)
	f.Close()
	if vs, err := r.List(); err != nil || len(vs) != 1 {
		t.Fatalf("with a torn line: %+v, %v", vs, err)
	}
	b, err := r.RegisterRecipe(Version{Name: "b"}, []byte("b"))
	if err != nil {
		t.Fatal(err)
	}
	vs, err := r.List()
	if len(vs) != 2 || vs[0] != a || vs[1] != b {
		t.Fatalf("after append: %+v", vs)
	}
	// Now the torn line is in the middle: damage, reported by line, and
	// the rest still listed.
	if err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("damaged line: %v", err)
	}
}

package realtime

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

type fakeT struct{ skipped string }

func (f *fakeT) Helper()                          {}
func (f *fakeT) Skipf(format string, args ...any) { f.skipped = format }

func TestSkipOnlyUnderRace(t *testing.T) {
	var f fakeT
	Skip(&f, "x")
	if Race != (f.skipped != "") {
		t.Errorf("race %v, skipped %q", Race, f.skipped)
	}
}

// TestCallsAreDirectlyInTestFunctions: the Makefile's real-time pass
// selects tests by the name of the function that calls Skip; a call from
// a helper would select nothing and the test would never run at speed.
func TestCallsAreDirectlyInTestFunctions(t *testing.T) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Dir(strings.TrimSpace(string(out)))
	calls := 0
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "third_party" || d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) && p != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(p)
		if err != nil || !strings.Contains(string(src), "realtime.Skip(") {
			return err
		}
		f, err := parser.ParseFile(token.NewFileSet(), p, src, 0)
		if err != nil {
			return err
		}
		for _, decl := range f.Decls {
			fn, ok := decl.(*ast.FuncDecl)
			if !ok || fn.Body == nil {
				continue
			}
			ast.Inspect(fn.Body, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok {
					return true
				}
				if sel, ok := call.Fun.(*ast.SelectorExpr); ok && sel.Sel.Name == "Skip" {
					if id, ok := sel.X.(*ast.Ident); ok && id.Name == "realtime" {
						calls++
						if !strings.HasPrefix(fn.Name.Name, "Test") || fn.Recv != nil {
							t.Errorf("%s: realtime.Skip called in %s, not directly in a Test function", p, fn.Name.Name)
						}
					}
				}
				return true
			})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if calls == 0 {
		t.Error("no test calls realtime.Skip: the real-time pass runs nothing")
	}
}

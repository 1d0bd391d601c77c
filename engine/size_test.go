package engine

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// Size limits of the engine package (issue 11): a file or function over
// them is a sign that a concept wants its own type or file.
const (
	maxFileLines = 500
	maxFuncLines = 80
)

// overLimit lists the functions known to be over the limits, each with
// who is shrinking it; the test logs them instead of failing. Remove an
// entry when its function is shrunk.
var overLimit = map[string]string{}

// TestFileAndFunctionSize fails when a Go file under engine/ is longer
// than maxFileLines or a function of the package's code (not its tests;
// with everything nested in it) longer than maxFuncLines. Run with -v to
// see the largest of each.
func TestFileAndFunctionSize(t *testing.T) {
	type size struct {
		name  string
		lines int
	}
	var files, funcs []size
	fset := token.NewFileSet()
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") {
			return err
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		files = append(files, size{path, fset.File(f.Pos()).LineCount()})
		if strings.HasSuffix(path, "_test.go") {
			return nil
		}
		for _, decl := range f.Decls {
			fd, ok := decl.(*ast.FuncDecl)
			if !ok {
				continue
			}
			name := fd.Name.Name
			if fd.Recv != nil && len(fd.Recv.List) > 0 {
				name = recvName(fd.Recv.List[0].Type) + "." + name
			}
			n := fset.Position(fd.End()).Line - fset.Position(fd.Pos()).Line + 1
			funcs = append(funcs, size{path + ":" + name, n})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 10 || len(funcs) < 50 {
		t.Fatalf("found %d files and %d functions: the walk missed the package", len(files), len(funcs))
	}
	for _, s := range [...]struct {
		what  string
		list  []size
		limit int
	}{{"file", files, maxFileLines}, {"function", funcs, maxFuncLines}} {
		sort.Slice(s.list, func(i, j int) bool { return s.list[i].lines > s.list[j].lines })
		for i, x := range s.list {
			if why, ok := overLimit[x.name]; ok && x.lines > s.limit {
				t.Logf("%s %s has %d lines, limit %d: known, %s", s.what, x.name, x.lines, s.limit, why)
			} else if x.lines > s.limit {
				t.Errorf("%s %s has %d lines, limit %d", s.what, x.name, x.lines, s.limit)
			} else if i < 5 {
				t.Logf("%s %s: %d lines (limit %d)", s.what, x.name, x.lines, s.limit)
			}
		}
	}
}

func recvName(e ast.Expr) string {
	switch x := e.(type) {
	case *ast.StarExpr:
		return recvName(x.X)
	case *ast.IndexExpr:
		return recvName(x.X)
	case *ast.Ident:
		return x.Name
	}
	return "?"
}

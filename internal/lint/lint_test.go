package lint

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// module is the import path of the repository's module.
const module = "github.com/webinspect/webinspect"

// A layer is a set of packages and the packages they may import (besides
// their own layer's). Patterns are relative to the module: "x" is the
// package x, "x/..." is x and every package below it. A package belongs to
// the layer with the longest pattern that matches it.
type layer struct {
	name string
	pkgs []string // the layer's packages
	may  []string // packages of other layers it may import
	not  []string // packages it may not import even though may matches them
}

// layers is the intended direction of imports, lowest first (package doc).
// A new top-level folder must be added here: a package in no layer fails
// the test, so that its place is decided, not drifted into.
var layers = []layer{
	{name: "kernels", pkgs: []string{"kernels/..."}},
	{name: "acquisition", pkgs: []string{"acquisition/..."}, may: []string{"kernels/..."}},
	{name: "rollmap", pkgs: []string{"rollmap/..."}},
	{name: "status", pkgs: []string{"engine/status/..."}},
	{name: "internal", pkgs: []string{"internal/..."}},
	{name: "model", pkgs: []string{"model/..."}, may: []string{"kernels/...", "acquisition/..."}},
	{name: "marking", pkgs: []string{"marking/..."}, may: []string{"rollmap/..."}},
	{name: "engine", pkgs: []string{"engine/..."},
		may: []string{"acquisition/...", "kernels/...", "rollmap/...", "model/...", "marking/...", "engine/status/..."},
		not: []string{"acquisition/sim/..."}},
	{name: "api", pkgs: []string{"api/..."}, may: []string{"rollmap/...", "engine/status/..."}},
	{name: "plant", pkgs: []string{"plant/..."}, may: []string{"rollmap/...", "engine/status/..."}},
	{name: "bench", pkgs: []string{"bench/..."},
		may: []string{"kernels/...", "acquisition/...", "rollmap/...", "engine/...", "model/...", "marking/...", "api/...", "plant/..."}},
	{name: "cmd", pkgs: []string{"cmd/..."}, may: []string{"..."}},
}

// everyone may import the module's internal helpers (Go itself keeps them
// inside the module).
var everyone = []string{"internal/..."}

// pkg is the part of `go list -json` the checks read.
type pkg struct {
	ImportPath string
	Imports    []string
}

// match reports whether the module-relative path p matches pattern.
func match(pattern, p string) bool {
	if pattern == "..." {
		return true
	}
	if base, ok := strings.CutSuffix(pattern, "/..."); ok {
		return p == base || strings.HasPrefix(p, base+"/")
	}
	return p == pattern
}

func matchAny(patterns []string, p string) bool {
	return slices.ContainsFunc(patterns, func(pat string) bool { return match(pat, p) })
}

// layerOf returns the layer of the module-relative path p: the one with
// the longest matching pattern, or nil.
func layerOf(ls []layer, p string) *layer {
	var best *layer
	bestLen := -1
	for i := range ls {
		for _, pat := range ls[i].pkgs {
			if match(pat, p) && len(pat) > bestLen {
				best, bestLen = &ls[i], len(pat)
			}
		}
	}
	return best
}

// violations checks every package of mod in pkgs against ls and returns
// one line per import across the intended direction, and per package in
// no layer, sorted.
func violations(mod string, ls []layer, pkgs []pkg) []string {
	var out []string
	for _, p := range pkgs {
		from, ok := rel(mod, p.ImportPath)
		if !ok {
			continue
		}
		lf := layerOf(ls, from)
		if lf == nil {
			out = append(out, fmt.Sprintf("%s is in no layer: add it to the layers in internal/lint", from))
			continue
		}
		for _, imp := range p.Imports {
			to, ok := rel(mod, imp)
			if !ok {
				continue
			}
			lt := layerOf(ls, to)
			switch {
			case matchAny(lf.not, to):
				out = append(out, fmt.Sprintf("%s (%s) imports %s, which %s must never import", from, lf.name, to, lf.name))
			case lt == lf || matchAny(everyone, to) || matchAny(lf.may, to):
			default:
				out = append(out, fmt.Sprintf("%s (%s) imports %s (%s): %s may import only %s",
					from, lf.name, to, layerName(lt), lf.name, allowed(lf)))
			}
		}
	}
	slices.Sort(out)
	return out
}

func layerName(l *layer) string {
	if l == nil {
		return "no layer"
	}
	return l.name
}

func allowed(l *layer) string {
	if len(l.may) == 0 {
		return "its own packages"
	}
	s := strings.Join(l.may, ", ")
	if len(l.not) > 0 {
		s += " except " + strings.Join(l.not, ", ")
	}
	return s
}

// rel returns path relative to mod, and whether path is in mod.
func rel(mod, path string) (string, bool) {
	if path == mod {
		return ".", true
	}
	r, ok := strings.CutPrefix(path, mod+"/")
	return r, ok
}

// goList runs `go list -deps -json args...` at the module root and decodes
// its stream of packages.
func goList(t *testing.T, args ...string) []pkg {
	t.Helper()
	// go test puts the go command's own directory first on the PATH.
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is not on the PATH: %v", err)
	}
	cmd := exec.Command(goBin, append([]string{"list", "-deps", "-json"}, args...)...)
	cmd.Dir = filepath.Join("..", "..")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps -json %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	var pkgs []pkg
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) == 0 {
		t.Fatalf("go list -deps -json %s listed no packages", strings.Join(args, " "))
	}
	return pkgs
}

func TestLint(t *testing.T) {
	// The rule itself, on a synthetic graph: every kind of violation is
	// reported, and allowed imports are not. This is the failing path the
	// real tree (which passes) never takes.
	t.Run("LayeringRule", func(t *testing.T) {
		t.Parallel()
		m := "example.com/m"
		graph := []pkg{
			{ImportPath: m + "/kernels"},
			{ImportPath: m + "/acquisition", Imports: []string{m + "/kernels", "fmt"}},
			{ImportPath: m + "/acquisition/sim", Imports: []string{m + "/acquisition"}},
			{ImportPath: m + "/engine/status"},
			{ImportPath: m + "/rollmap"},
			{ImportPath: m + "/model/infer", Imports: []string{m + "/kernels", m + "/acquisition", m + "/internal/poll"}},
			{ImportPath: m + "/marking", Imports: []string{m + "/rollmap"}},
			{ImportPath: m + "/engine", Imports: []string{m + "/engine/status", m + "/model/infer", m + "/marking", m + "/rollmap"}},
			{ImportPath: m + "/api", Imports: []string{m + "/engine/status", m + "/rollmap"}},
			{ImportPath: m + "/bench", Imports: []string{m + "/engine", m + "/acquisition/sim"}},
			{ImportPath: m + "/cmd/x", Imports: []string{m + "/api", m + "/bench", m + "/engine"}},
			{ImportPath: "example.com/other", Imports: []string{m + "/cmd/x"}},
		}
		if v := violations(m, layers, graph); len(v) != 0 {
			t.Fatalf("allowed graph reported:\n%s", strings.Join(v, "\n"))
		}
		bad := []struct {
			from, to string
			want     string
		}{
			{"api", "engine", "api (api) imports engine (engine): api may import only rollmap/..., engine/status/..."},
			{"api", "model/infer", "api (api) imports model/infer (model)"},
			{"api", "marking", "api (api) imports marking (marking)"},
			{"engine", "acquisition/sim", "engine (engine) imports acquisition/sim, which engine must never import"},
			{"engine", "api", "engine (engine) imports api (api)"},
			{"engine", "bench", "engine (engine) imports bench (bench)"},
			{"engine", "cmd/x", "engine (engine) imports cmd/x (cmd)"},
			{"kernels", "acquisition", "kernels (kernels) imports acquisition (acquisition): kernels may import only its own packages"},
			{"rollmap", "engine/status", "rollmap (rollmap) imports engine/status (status)"},
			{"engine/status", "engine", "engine/status (status) imports engine (engine)"},
			{"model/infer", "engine", "model/infer (model) imports engine (engine)"},
			{"marking", "engine", "marking (marking) imports engine (engine)"},
			{"acquisition/sim", "rollmap", "acquisition/sim (acquisition) imports rollmap (rollmap)"},
			{"bench", "cmd/x", "bench (bench) imports cmd/x (cmd)"},
		}
		for _, b := range bad {
			g := slices.Clone(graph)
			i := slices.IndexFunc(g, func(p pkg) bool { return p.ImportPath == m+"/"+b.from })
			g[i].Imports = append(slices.Clone(g[i].Imports), m+"/"+b.to)
			v := violations(m, layers, g)
			if len(v) != 1 || !strings.HasPrefix(v[0], b.want) {
				t.Errorf("%s importing %s: violations %q, want one starting %q", b.from, b.to, v, b.want)
			}
		}
		v := violations(m, layers, append(slices.Clone(graph), pkg{ImportPath: m + "/newthing"}))
		if len(v) != 1 || !strings.Contains(v[0], "newthing is in no layer") {
			t.Errorf("package in no layer: violations %q", v)
		}
	})

	t.Run("Layering", func(t *testing.T) {
		t.Parallel()
		pkgs := goList(t, "./...")
		n := 0
		for _, p := range pkgs {
			if _, ok := rel(module, p.ImportPath); ok {
				n++
			}
		}
		if n < 10 {
			t.Fatalf("go list found %d packages of %s: not run at the module root?", n, module)
		}
		for _, v := range violations(module, layers, pkgs) {
			t.Error(v)
		}
	})

	// The API builds and tests without cgo: neither ONNX Runtime nor
	// Modbus is among its dependencies.
	t.Run("APIWithoutCgo", func(t *testing.T) {
		t.Parallel()
		for _, p := range goList(t, "./api/...") {
			for _, banned := range []string{"github.com/yalue/onnxruntime_go", "github.com/simonvetter/modbus"} {
				if match(banned+"/...", p.ImportPath) {
					t.Errorf("go list -deps ./api/... contains %s", p.ImportPath)
				}
			}
		}
	})
}

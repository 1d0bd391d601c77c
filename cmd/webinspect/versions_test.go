package main

import (
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/webinspect/webinspect/model/onnx/ortest"
	"github.com/webinspect/webinspect/rollmap/versions"
)

// TestVersionsAudit: a model changed in place is a new version; the roll
// inspected with the old one still names the old one, and every defect of
// each roll's export carries the recipe and model versions that decided it.
func TestVersionsAudit(t *testing.T) {
	ortest.Require(t)
	dir := t.TempDir()
	good, rec, rolls, model := filepath.Join(dir, "G"), filepath.Join(dir, "D"), filepath.Join(dir, "R"), filepath.Join(dir, "model")
	simulate(t, good, "--length", "2m", "--defects", "0", "--seed", "3")
	simulate(t, rec, "--length", "3m", "--defects", "8")
	teach := func(far string) {
		t.Helper()
		args := append([]string{"teach", "--from", good, "--out", model, "--metres", "1.5", "--far", far}, smallTeachFlags...)
		if code, out, stderr := runCLI(t, args...); code != 0 {
			t.Fatalf("teach: exit %d: %s %s", code, out, stderr)
		}
	}
	replay := func() string {
		t.Helper()
		before, _ := rollDirs(rolls)
		if code, out, stderr := runCLI(t, "replay", rec, "--rolls", rolls, "--model", model); code != 0 {
			t.Fatalf("replay: exit %d: %s %s", code, out, stderr)
		}
		after, _ := rollDirs(rolls)
		for _, id := range after {
			if !strings.Contains(strings.Join(before, "\n"), id) {
				return filepath.Join(rolls, id)
			}
		}
		t.Fatal("replay made no new roll")
		return ""
	}
	list := func() []versions.Version {
		t.Helper()
		code, out, stderr := runCLI(t, "versions", "--rolls", rolls, "--json")
		if code != 0 {
			t.Fatalf("versions: exit %d: %s", code, stderr)
		}
		var vs []versions.Version
		dec := json.NewDecoder(strings.NewReader(out))
		for dec.More() {
			var v versions.Version
			if err := dec.Decode(&v); err != nil {
				t.Fatal(err)
			}
			vs = append(vs, v)
		}
		return vs
	}
	// exportVersions returns the recipe and model versions of every
	// defect in the roll's CSV export.
	exportVersions := func(roll string) (recipes, models map[string]int, n int) {
		t.Helper()
		p := filepath.Join(t.TempDir(), "d.csv")
		if code, _, stderr := runCLI(t, "export", roll, "--format", "csv", "--out", p); code != 0 {
			t.Fatalf("export: %s", stderr)
		}
		recipes, models = map[string]int{}, map[string]int{}
		for _, row := range readCSVMaps(t, p) {
			recipes[row["recipe_version"]]++
			models[row["model_version"]]++
			n++
		}
		return recipes, models, n
	}

	teach("0.02")
	roll1 := replay()
	vs := list()
	if len(vs) != 2 || vs[0].Kind != versions.KindRecipe || vs[1].Kind != versions.KindModel {
		t.Fatalf("after the first replay: %+v, want a recipe and a model", vs)
	}
	recipeV, modelA := vs[0], vs[1]
	if modelA.MadeBy == "" || modelA.MadeAt.IsZero() || !strings.Contains(modelA.Note, "webinspect teach") {
		t.Errorf("model version does not say who made it and how: %+v", modelA)
	}

	teach("0.05") // the same directory, a different model
	roll2 := replay()
	vs = list()
	if len(vs) != 3 || vs[2].Kind != versions.KindModel || vs[2].ID == modelA.ID {
		t.Fatalf("after the model changed: %+v, want a second model version", vs)
	}
	modelB := vs[2]

	for _, c := range []struct {
		roll, model string
	}{{roll1, modelA.ID}, {roll2, modelB.ID}} {
		recipes, models, n := exportVersions(c.roll)
		if n == 0 {
			t.Fatalf("%s: no defects to check", c.roll)
		}
		if recipes[recipeV.ID] != n || models[c.model] != n {
			t.Errorf("%s: %d defects; recipe versions %v, model versions %v; want all %s and %s",
				filepath.Base(c.roll), n, recipes, models, recipeV.ID, c.model)
		}
	}
	// The old model's files are kept as they were.
	reg, err := versions.Open(rolls)
	if err != nil {
		t.Fatal(err)
	}
	if sha, err := versions.FilesDigest(reg.ContentPath(modelA), "model.onnx", "model.json"); err != nil || sha != modelA.SHA256 {
		t.Errorf("kept copy of the old model: digest %s, %v; want %s", sha, err, modelA.SHA256)
	}
	// The table names both models.
	_, out, _ := runCLI(t, "versions", "--rolls", rolls)
	if !strings.Contains(out, modelA.ID) || !strings.Contains(out, modelB.ID) || !strings.Contains(out, "MADE BY") {
		t.Errorf("versions table:\n%s", out)
	}
}

// readCSVMaps reads a CSV export as one map per row, by header.
func readCSVMaps(t *testing.T, path string) []map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]string
	for _, r := range recs[1:] {
		m := map[string]string{}
		for i, h := range recs[0] {
			m[h] = r[i]
		}
		out = append(out, m)
	}
	return out
}

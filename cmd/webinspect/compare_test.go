package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/webinspect/webinspect/engine"
	"github.com/webinspect/webinspect/internal/long"
	"github.com/webinspect/webinspect/model/classify"
	"github.com/webinspect/webinspect/model/onnx/ortest"
	"github.com/webinspect/webinspect/rollmap"
)

// stricter makes the fabric recipe stricter: a lower detection threshold
// (more defects), major from 3 mm instead of 5, small knots to review.
func stricter(r *engine.Recipe) {
	r.Name = "fabric-strict"
	r.Threshold.MinContrast, r.Threshold.KSigma, r.Threshold.MinSizeMM = 8, 3, 0.5
	for i := range r.Severity {
		if r.Severity[i].MinSizeMM == 5 {
			r.Severity[i].MinSizeMM = 3
		}
	}
	r.Decisions = append([]engine.DecisionRule{{Class: "knot", Severity: "minor", Decision: engine.DecisionReview}}, r.Decisions...)
}

// treeDigest hashes every file under dir (names and bytes), so a test can
// tell that nothing in it changed.
func treeDigest(t *testing.T, dir string) string {
	t.Helper()
	h := sha256.New()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fmt.Fprintf(h, "%s\x00", rel)
		if d.Type().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			h.Write(b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// decisionKey names a defect's decision change by the positions of the
// defects on both sides (IDs differ between stores).
func decisionKey(old, new *rollmap.Defect) string {
	pos := func(d *rollmap.Defect) string {
		if d == nil {
			return "-"
		}
		return fmt.Sprintf("%.6f/%.3f:%s", d.MDStartM, d.CDStartMM, d.Decision)
	}
	return pos(old) + " -> " + pos(new)
}

// directDecisionChanges diffs two rolls of the same web without
// rollmap.CompareDefects: a recorded and a re-run defect are the same when
// each is the other's only overlapping defect; a defect with no
// overlapping defect on the other side appeared or disappeared. It fails
// the test on an ambiguous case (the test's recipe is chosen not to make
// one), so the expected list is exact.
func directDecisionChanges(t *testing.T, old, new []rollmap.Defect) []string {
	t.Helper()
	overlapping := func(d *rollmap.Defect, side []rollmap.Defect) []int {
		var out []int
		for i := range side {
			o := &side[i]
			if d.MDStartM <= o.MDEndM && o.MDStartM <= d.MDEndM && d.CDStartMM <= o.CDEndMM && o.CDStartMM <= d.CDEndMM {
				out = append(out, i)
			}
		}
		return out
	}
	var keys []string
	for i := range old {
		switch ov := overlapping(&old[i], new); len(ov) {
		case 0:
			keys = append(keys, decisionKey(&old[i], nil))
		case 1:
			if back := overlapping(&new[ov[0]], old); len(back) != 1 {
				t.Fatalf("ambiguous: re-run defect %d overlaps %d recorded defects", new[ov[0]].ID, len(back))
			}
			if old[i].Decision != new[ov[0]].Decision {
				keys = append(keys, decisionKey(&old[i], &new[ov[0]]))
			}
		default:
			t.Fatalf("ambiguous: recorded defect %d overlaps %d re-run defects", old[i].ID, len(ov))
		}
	}
	for j := range new {
		if len(overlapping(&new[j], old)) == 0 {
			keys = append(keys, decisionKey(nil, &new[j]))
		}
	}
	slices.Sort(keys)
	return keys
}

// replayRoll replays rec into rolls with the extra flags and returns the
// new roll's directory.
func replayRoll(t *testing.T, rec, rolls string, extra ...string) string {
	t.Helper()
	before, _ := rollDirs(rolls)
	args := append([]string{"replay", rec, "--rolls", rolls}, extra...)
	if code, out, stderr := runCLI(t, args...); code != 0 {
		t.Fatalf("replay: exit %d: %s %s", code, out, stderr)
	}
	after, _ := rollDirs(rolls)
	for _, id := range after {
		if !slices.Contains(before, id) {
			return filepath.Join(rolls, id)
		}
	}
	t.Fatal("replay made no new roll")
	return ""
}

// TestCompareStricterRecipe is the acceptance of compare: on a stored
// roll with a recording, compare with a stricter recipe lists exactly the
// defects whose decision changes, checked against a direct re-run (the
// recording replayed with the stricter recipe into a fresh store, diffed
// here without compare's code); the stored roll, its crops and the
// version registry are not touched. The 200 m roll of the issue (200 mm
// wide, 40 defects: about 25 s without -race) runs with WEBINSPECT_LONG=1;
// the default run uses 10 m of a 100 mm web.
func TestCompareStricterRecipe(t *testing.T) {
	t.Run("length=10m", func(t *testing.T) { testCompareStricter(t, "10m", "100mm", 6) })
	t.Run("length=200m", func(t *testing.T) {
		long.Skip(t, "the issue's 200 m roll: 400 MB of recording, replayed three times")
		testCompareStricter(t, "200m", "200mm", 40)
	})
}

func testCompareStricter(t *testing.T, length, width string, defects int) {
	dir := t.TempDir()
	rec, rolls, direct, out := filepath.Join(dir, "D"), filepath.Join(dir, "R"), filepath.Join(dir, "R2"), filepath.Join(dir, "O")
	simulate(t, rec, "--length", length, "--width", width, "--cameras", "1", "--defects", fmt.Sprint(defects))
	roll := replayRoll(t, rec, rolls)
	strict := writeRecipe(t, stricter)
	before := treeDigest(t, rolls)

	code, stdout, stderr := runCLI(t, "compare", roll, "--recipe", strict, "--out", out)
	if code != 0 {
		t.Fatalf("compare: exit %d: %s %s", code, stdout, stderr)
	}
	t.Log(stdout)
	if after := treeDigest(t, rolls); after != before {
		t.Errorf("compare changed the stored rolls directory %s", rolls)
	}

	// The direct re-run and its diff.
	_, old, _, err := rollmap.ReadRoll(roll)
	if err != nil {
		t.Fatal(err)
	}
	_, rerun, _, err := rollmap.ReadRoll(replayRoll(t, rec, direct, "--recipe", strict))
	if err != nil {
		t.Fatal(err)
	}
	want := directDecisionChanges(t, old, rerun)

	// compare's list, keyed the same way from the two rolls' records.
	byID := func(ds []rollmap.Defect, id string) *rollmap.Defect {
		for i := range ds {
			if fmt.Sprint(ds[i].ID) == id {
				return &ds[i]
			}
		}
		return nil
	}
	rows := readCSVMaps(t, filepath.Join(out, compareCSV))
	var got []string
	var newly, paired int
	for _, r := range rows {
		if r["decision_change"] == "" {
			continue
		}
		var o, n *rollmap.Defect
		if r["old_defect_id"] != "" {
			if o = byID(old, r["old_defect_id"]); o == nil {
				t.Fatalf("changes.csv names recorded defect %s, which the roll does not hold", r["old_defect_id"])
			}
		}
		if r["new_defect_id"] != "" {
			// compare's own re-run is deterministic: the same IDs as the direct one.
			if n = byID(rerun, r["new_defect_id"]); n == nil {
				t.Fatalf("changes.csv names re-run defect %s, which the direct re-run does not hold", r["new_defect_id"])
			}
			if got := fmt.Sprintf("%.6f", n.MDStartM); got != r["md_start_m"] {
				t.Errorf("re-run defect %s at MD %s in changes.csv, %s in the direct re-run", r["new_defect_id"], r["md_start_m"], got)
			}
		}
		if o == nil {
			newly++
		} else if n != nil {
			paired++
		}
		got = append(got, decisionKey(o, n))
		for _, c := range []string{"old_crop", "new_crop"} {
			if r[c] != "" {
				if _, err := os.Stat(filepath.Join(out, r[c])); err != nil {
					t.Errorf("changes.csv links crop %s, which is not in %s: %v", r[c], out, err)
				}
			}
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("compare lists %d decision changes, the direct re-run has %d:\ncompare: %q\ndirect:  %q", len(got), len(want), got, want)
	}
	if newly == 0 || paired == 0 {
		t.Errorf("the stricter recipe should both flag new defects and change decisions of recorded ones: %d newly flagged, %d changed", newly, paired)
	}
	page, err := os.ReadFile(filepath.Join(out, compareHTML))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(page), `<tr class="newly_flagged">`); n != newly {
		t.Errorf("changes.html lists %d newly flagged defects, changes.csv %d", n, newly)
	}
	if n := strings.Count(string(page), `<img class="crop" src="crops/`); n == 0 {
		t.Error("changes.html shows no crops")
	}
	if !strings.Contains(stdout, fmt.Sprintf("(%d changes of decision)", len(want))) {
		t.Errorf("summary does not count %d changes of decision: %s", len(want), stdout)
	}
}

// TestCompareFromCrops: without its recording, compare decides the roll
// map's defects again. For a change it can see (the detection limit
// min_size_mm) it lists exactly what the re-run with the recording lists,
// and it says what it could not re-score.
func TestCompareFromCrops(t *testing.T) {
	dir := t.TempDir()
	rec, rolls := filepath.Join(dir, "D"), filepath.Join(dir, "R")
	simulate(t, rec, "--length", "10m", "--width", "100mm", "--cameras", "1", "--defects", "10")
	roll := replayRoll(t, rec, rolls)
	loose := writeRecipe(t, func(r *engine.Recipe) { r.Name, r.Threshold.MinSizeMM = "fabric-3mm", 3 })
	withRec, noRec := filepath.Join(dir, "O1"), filepath.Join(dir, "O2")
	if code, out, stderr := runCLI(t, "compare", roll, "--recipe", loose, "--out", withRec); code != 0 {
		t.Fatalf("compare with the recording: exit %d: %s %s", code, out, stderr)
	}
	// The recording moves away: the roll's source no longer names one.
	if err := os.Rename(rec, rec+".moved"); err != nil {
		t.Fatal(err)
	}
	before := treeDigest(t, rolls)
	code, stdout, stderr := runCLI(t, "compare", roll, "--recipe", loose, "--out", noRec)
	if code != 0 {
		t.Fatalf("compare from crops: exit %d: %s %s", code, stdout, stderr)
	}
	if treeDigest(t, rolls) != before {
		t.Error("compare changed the stored rolls directory")
	}
	if !strings.Contains(stdout, "not re-scored: ") || !strings.Contains(stdout, "newly flagged defects cannot be found") {
		t.Errorf("compare from crops does not say what it could not re-score:\n%s", stdout)
	}
	page, _ := os.ReadFile(filepath.Join(noRec, compareHTML))
	if !strings.Contains(string(page), "newly flagged defects cannot be found") {
		t.Error("changes.html does not say what could not be re-scored")
	}
	gone := func(out string) []string {
		var ids []string
		for _, r := range readCSVMaps(t, filepath.Join(out, compareCSV)) {
			if r["change"] != string(rollmap.ChangeGone) {
				t.Errorf("%s: a 3 mm detection limit changes only what is flagged, got %q for defect %s", out, r["change"], r["old_defect_id"])
			}
			ids = append(ids, r["old_defect_id"])
		}
		slices.Sort(ids)
		return ids
	}
	a, b := gone(withRec), gone(noRec)
	if len(a) == 0 || !slices.Equal(a, b) {
		t.Errorf("no longer flagged: re-run lists %v, the roll map alone %v", a, b)
	}
	_, old, _, _ := rollmap.ReadRoll(roll)
	for _, d := range old {
		small := max(d.MDEndM-d.MDStartM, (d.CDEndMM-d.CDStartMM)/1000) < 0.003
		if small != slices.Contains(b, fmt.Sprint(d.ID)) {
			t.Errorf("defect %d (%.2f × %.2f mm): listed as no longer flagged = %v", d.ID, (d.MDEndM-d.MDStartM)*1000, d.CDEndMM-d.CDStartMM, !small)
		}
	}
}

// TestCompareBadInput: a missing roll, a malformed recipe, a corrupt
// model, nothing to compare or a used --out are refused with an error
// naming them, and nothing in the stored roll changes.
func TestCompareBadInput(t *testing.T) {
	dir := t.TempDir()
	rec, rolls := filepath.Join(dir, "D"), filepath.Join(dir, "R")
	simulate(t, rec, "--length", "3m", "--width", "100mm", "--cameras", "1", "--defects", "3")
	roll := replayRoll(t, rec, rolls)
	before := treeDigest(t, rolls)
	good := writeRecipe(t, func(*engine.Recipe) {})
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"name":"x","material":"fabric","threshold":{"k_sigma":99}}`), 0o644)
	out := func(name string) string { return filepath.Join(dir, "out-"+name) }

	code, _, stderr := runCLI(t, "compare", "R-nope", "--rolls", rolls, "--recipe", good, "--out", out("missing"))
	oneLineError(t, code, stderr, `roll "R-nope"`, "no roll of that ID in "+rolls)
	code, _, stderr = runCLI(t, "compare", roll, "--recipe", bad, "--out", out("bad"))
	oneLineError(t, code, stderr, "bad.json", "threshold.k_sigma = 99")
	code, _, stderr = runCLI(t, "compare", roll, "--recipe", filepath.Join(dir, "nothere.json"), "--out", out("nothere"))
	oneLineError(t, code, stderr, "nothere.json")
	code, _, stderr = runCLI(t, "compare", roll, "--out", out("nothing"))
	oneLineError(t, code, stderr, "give a candidate --model, --recipe or --classifier")
	if code != 2 {
		t.Errorf("exit %d for nothing to compare, want 2", code)
	}
	used := out("used")
	os.MkdirAll(used, 0o755)
	os.WriteFile(filepath.Join(used, "keep"), []byte("x"), 0o644)
	code, _, stderr = runCLI(t, "compare", roll, "--recipe", good, "--out", used)
	oneLineError(t, code, stderr, used, "not empty")
	if b, err := os.ReadFile(filepath.Join(used, "keep")); err != nil || string(b) != "x" {
		t.Errorf("compare touched the existing --out: %q %v", b, err)
	}
	t.Run("corrupt-model", func(t *testing.T) {
		ortest.Require(t)
		m := filepath.Join(dir, "broken-model")
		os.MkdirAll(m, 0o755)
		os.WriteFile(filepath.Join(m, "model.onnx"), []byte("not an onnx graph"), 0o644)
		os.WriteFile(filepath.Join(m, "model.json"), []byte(`{"input":"x"}`), 0o644)
		code, _, stderr := runCLI(t, "compare", roll, "--model", m, "--out", out("model"))
		oneLineError(t, code, stderr, m)
	})
	for _, name := range []string{"missing", "bad", "nothere", "nothing", "model"} {
		if _, err := os.Stat(out(name)); err == nil {
			t.Errorf("a refused compare left %s behind", out(name))
		}
	}
	if treeDigest(t, rolls) != before {
		t.Error("a refused compare changed the stored rolls directory")
	}
}

// TestCompareModelAlone: --model alone re-runs with the recipe version the
// roll was inspected with, and --recipe alone with the roll's model
// version (from the registry), so each compares exactly one change. A
// long case: it teaches a model and replays with it three times (about
// 30 s under -race on the loaded 2-core machine).
func TestCompareModelAlone(t *testing.T) {
	long.Skip(t, "teaches a model and replays with it three times")
	ortest.Require(t)
	dir := t.TempDir()
	good, rec, rolls := filepath.Join(dir, "G"), filepath.Join(dir, "D"), filepath.Join(dir, "R")
	simulate(t, good, "--length", "2m", "--width", "100mm", "--cameras", "1", "--defects", "0", "--seed", "3")
	simulate(t, rec, "--length", "3m", "--width", "100mm", "--cameras", "1", "--defects", "4")
	teach := func(out, far string) {
		t.Helper()
		args := append([]string{"teach", "--from", good, "--out", out, "--metres", "1.5", "--far", far}, smallTeachFlags...)
		if code, o, stderr := runCLI(t, args...); code != 0 {
			t.Fatalf("teach: exit %d: %s %s", code, o, stderr)
		}
	}
	modelA, modelB := filepath.Join(dir, "A"), filepath.Join(dir, "B")
	teach(modelA, "0.02")
	// The candidate: the same graph with a threshold 20 % lower.
	os.MkdirAll(modelB, 0o755)
	graph, _ := os.ReadFile(filepath.Join(modelA, "model.onnx"))
	os.WriteFile(filepath.Join(modelB, "model.onnx"), graph, 0o644)
	var side map[string]any
	sc, _ := os.ReadFile(filepath.Join(modelA, "model.json"))
	if err := json.Unmarshal(sc, &side); err != nil {
		t.Fatal(err)
	}
	side["threshold"] = side["threshold"].(float64) * 0.8
	sc, _ = json.Marshal(side)
	os.WriteFile(filepath.Join(modelB, "model.json"), sc, 0o644)
	roll := replayRoll(t, rec, rolls, "--model", modelA)
	_, old, _, err := rollmap.ReadRoll(roll)
	if err != nil || len(old) == 0 {
		t.Fatalf("recorded roll: %d defects, %v", len(old), err)
	}
	recipeV, modelAV := old[0].RecipeVersion, old[0].ModelVersion
	if recipeV == "" || modelAV == "" {
		t.Fatalf("recorded defects name recipe %q, model %q", recipeV, modelAV)
	}
	before := treeDigest(t, rolls)
	rerunVersions := func(out string) (recipes, models map[string]int) {
		t.Helper()
		ents, _ := rollDirs(filepath.Join(out, compareRerun))
		if len(ents) != 1 {
			t.Fatalf("%s: want one re-run roll, got %v", out, ents)
		}
		_, ds, _, err := rollmap.ReadRoll(filepath.Join(out, compareRerun, ents[0]))
		if err != nil || len(ds) == 0 {
			t.Fatalf("re-run roll: %d defects, %v", len(ds), err)
		}
		recipes, models = map[string]int{}, map[string]int{}
		for _, d := range ds {
			recipes[d.RecipeVersion]++
			models[d.ModelVersion]++
		}
		return recipes, models
	}

	o1 := filepath.Join(dir, "O1")
	if code, out, stderr := runCLI(t, "compare", roll, "--model", modelB, "--out", o1); code != 0 {
		t.Fatalf("compare --model: exit %d: %s %s", code, out, stderr)
	}
	recipes, models := rerunVersions(o1)
	if len(recipes) != 1 || recipes[recipeV] == 0 || len(models) != 1 || models[modelAV] != 0 {
		t.Errorf("--model alone: the re-run used recipes %v (want only the roll's %s) and models %v (want only the candidate, not %s)",
			recipes, recipeV, models, modelAV)
	}

	o2 := filepath.Join(dir, "O2")
	if code, out, stderr := runCLI(t, "compare", roll, "--recipe", writeRecipe(t, stricter), "--out", o2); code != 0 {
		t.Fatalf("compare --recipe: exit %d: %s %s", code, out, stderr)
	}
	recipes, models = rerunVersions(o2)
	if len(models) != 1 || models[modelAV] == 0 || recipes[recipeV] != 0 {
		t.Errorf("--recipe alone: the re-run used models %v (want only the roll's %s) and recipes %v (want the candidate)", models, modelAV, recipes)
	}
	if treeDigest(t, rolls) != before {
		t.Error("compare changed the stored rolls directory")
	}
}

// TestCompareNotesUninspected: a change where one side did not inspect
// the web says so (it is not the candidate's doing).
func TestCompareNotesUninspected(t *testing.T) {
	newD := rollmap.Defect{ID: 1, MDStartM: 5, MDEndM: 5.01, CDStartMM: 10, CDEndMM: 12}
	goneD := rollmap.Defect{ID: 2, MDStartM: 9, MDEndM: 9.01, CDStartMM: 10, CDEndMM: 12}
	farD := rollmap.Defect{ID: 3, MDStartM: 20, MDEndM: 20.01, CDStartMM: 10, CDEndMM: 12}
	r := rollmap.Comparison{Changes: []rollmap.Change{
		{Kind: rollmap.ChangeNew, New: &newD}, {Kind: rollmap.ChangeGone, Old: &goneD}, {Kind: rollmap.ChangeGone, Old: &farD},
	}}
	old := []rollmap.Uninspected{{MDStartM: 4, MDEndM: 6, CDStartMM: 0, CDEndMM: 100, Reason: rollmap.ReasonDropped}}
	rerun := []rollmap.Uninspected{{MDStartM: 8.5, MDEndM: 9.5, CDStartMM: 0, CDEndMM: 100, Reason: rollmap.ReasonSourceError}}
	noteUninspected(&r, old, rerun)
	if n := r.Changes[0].Note; !strings.Contains(n, "the recorded roll did not inspect (dropped-block)") {
		t.Errorf("newly flagged in the recorded roll's gap: note %q", n)
	}
	if n := r.Changes[1].Note; !strings.Contains(n, "the re-run did not inspect (source-error)") {
		t.Errorf("no longer flagged in the re-run's gap: note %q", n)
	}
	if n := r.Changes[2].Note; n != "" {
		t.Errorf("a change outside every gap has the note %q", n)
	}
}

// TestCompareClassifierFromCrops: a candidate classifier runs on the
// archived crops when there is no recording, and reclassifies exactly the
// defects the re-run with the recording reclassifies.
func TestCompareClassifierFromCrops(t *testing.T) {
	ortest.Require(t)
	dir := t.TempDir()
	rec, rolls, clf := filepath.Join(dir, "D"), filepath.Join(dir, "R"), filepath.Join(dir, "clf")
	simulate(t, rec, "--length", "10m", "--width", "100mm", "--cameras", "1", "--defects", "10")
	roll := replayRoll(t, rec, rolls)
	// A classifier sure of "hole" whatever it sees (99.3 %: above the
	// recipe's 0.9 override).
	n := classify.NumFeatures
	w := &classify.Weights{Classes: []string{"hole", "knot"}, Mean: make([]float32, n), Std: make([]float32, n),
		W: make([]float32, 2*n), B: []float32{5, 0}}
	for i := range w.Std {
		w.Std[i] = 1
	}
	if err := classify.Write(clf, w, classify.Inputs{}, nil); err != nil {
		t.Fatal(err)
	}
	reclassified := func(out string) []string {
		t.Helper()
		var ids []string
		for _, r := range readCSVMaps(t, filepath.Join(out, compareCSV)) {
			if r["change"] != string(rollmap.ChangeClass) || r["new_class"] != "hole" {
				t.Errorf("%s: %s of defect %s (%s → %s), want only reclassifications to hole", out, r["change"], r["old_defect_id"], r["old_class"], r["new_class"])
			}
			ids = append(ids, r["old_defect_id"])
		}
		slices.Sort(ids)
		return ids
	}
	withRec, noRec := filepath.Join(dir, "O1"), filepath.Join(dir, "O2")
	if code, out, stderr := runCLI(t, "compare", roll, "--classifier", clf, "--out", withRec); code != 0 {
		t.Fatalf("compare with the recording: exit %d: %s %s", code, out, stderr)
	}
	os.Rename(rec, rec+".moved")
	code, stdout, stderr := runCLI(t, "compare", roll, "--classifier", clf, "--out", noRec)
	if code != 0 {
		t.Fatalf("compare from crops: exit %d: %s %s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "the candidate classifier ran on the archived crops") {
		t.Errorf("compare from crops does not say the classifier ran on the crops:\n%s", stdout)
	}
	_, old, _, _ := rollmap.ReadRoll(roll)
	var want []string
	for _, d := range old {
		if d.Class != "hole" {
			want = append(want, fmt.Sprint(d.ID))
		}
	}
	slices.Sort(want)
	a, b := reclassified(withRec), reclassified(noRec)
	if len(want) == 0 || !slices.Equal(a, want) || !slices.Equal(b, want) {
		t.Errorf("reclassified to hole: re-run %v, crops %v; want every defect not a hole already %v", a, b, want)
	}
}

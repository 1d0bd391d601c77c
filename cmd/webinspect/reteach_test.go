package main

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/webinspect/webinspect/acquisition/sim"
	"github.com/webinspect/webinspect/bench/score"
	"github.com/webinspect/webinspect/engine"
	"github.com/webinspect/webinspect/internal/long"
	"github.com/webinspect/webinspect/internal/pngtest"
	"github.com/webinspect/webinspect/model/onnx"
	"github.com/webinspect/webinspect/model/onnx/ortest"
	"github.com/webinspect/webinspect/rollmap"
	"github.com/webinspect/webinspect/rollmap/versions"
)

// lotReviewer is the scripted reviewer: it looks at every defect of a
// roll and, knowing the simulator's truth, confirms the defects that are
// real and marks the others false alarms. A defect is a false alarm when
// no truth defect lies in it, or when it reaches more than 100 mm beyond
// the truth defects it holds (a region of mostly good material, such as
// a yarn lot flagged as a whole, with maybe a real defect inside).
func lotReviewer(t *testing.T, rolls, rollID string, truth []sim.Truth) (confirmed, falseAlarms int) {
	t.Helper()
	st, err := rollmap.OpenStore(rolls)
	if err != nil {
		t.Fatal(err)
	}
	ds, err := st.Defects(rollID, rollmap.Query{})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		if isFalseAlarm(d, truth) {
			falseAlarms++
			_, err = st.AddReview(rollID, rollmap.Review{DefectID: d.ID, Action: rollmap.ActionFalseAlarm, Reviewer: "qa-anna", Time: time.Now()})
		} else {
			confirmed++
			_, err = st.AddReview(rollID, rollmap.Review{DefectID: d.ID, Action: rollmap.ActionConfirm, Label: d.Class, Reviewer: "qa-anna", Time: time.Now()})
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return confirmed, falseAlarms
}

// isFalseAlarm is lotReviewer's rule (see there).
func isFalseAlarm(d rollmap.Defect, truth []sim.Truth) bool {
	const grow, beyond = 10.0, 100.0 // mm
	md0, md1, cd0, cd1 := 1e18, -1e18, 1e18, -1e18
	n := 0
	for _, tr := range truth {
		if d.MDStartM*1000 <= tr.MDEndM*1000+grow && tr.MDStartM*1000 <= d.MDEndM*1000+grow &&
			d.CDStartMM <= tr.CDEndMM+grow && tr.CDStartMM <= d.CDEndMM+grow {
			n++
			md0, md1 = min(md0, tr.MDStartM*1000), max(md1, tr.MDEndM*1000)
			cd0, cd1 = min(cd0, tr.CDStartMM), max(cd1, tr.CDEndMM)
		}
	}
	if n == 0 {
		return true
	}
	return md0-d.MDStartM*1000 > beyond || d.MDEndM*1000-md1 > beyond || cd0-d.CDStartMM > beyond || d.CDEndMM-cd1 > beyond
}

// lotFlags counts the false alarms (by isFalseAlarm) that reach into the
// yarn lot [at, at+length] m.
func lotFlags(ds []rollmap.Defect, truth []sim.Truth, at, length float64) int {
	n := 0
	for _, d := range ds {
		if d.MDEndM >= at && d.MDStartM <= at+length && isFalseAlarm(d, truth) {
			n++
		}
	}
	return n
}

// foundBy reports whether a defect of ds lies on truth tr (MD and CD
// within 10 mm) and is not a yarn-lot false alarm.
func foundBy(tr sim.Truth, ds []rollmap.Defect) bool {
	const grow = 10.0
	for _, d := range ds {
		if d.MDStartM*1000 <= tr.MDEndM*1000+grow && tr.MDStartM*1000 <= d.MDEndM*1000+grow &&
			d.CDStartMM <= tr.CDEndMM+grow && tr.CDStartMM <= d.CDEndMM+grow && !isFalseAlarm(d, []sim.Truth{tr}) {
			return true
		}
	}
	return false
}

// replayScore replays rec with model into rolls as rollID and scores the
// roll against the recording's truth with the taught model's tolerances.
func replayScore(t *testing.T, rec, rolls, rollID, model string) ([]rollmap.Defect, []sim.Truth, score.Score) {
	t.Helper()
	if code, o, e := runCLI(t, "replay", rec, "--rolls", rolls, "--model", model, "--roll", rollID); code != 0 {
		t.Fatalf("replay %s with %s: %s %s", rec, model, o, e)
	}
	f, err := os.Open(filepath.Join(rec, "truth.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	truth, err := sim.ReadTruthCSV(f)
	if err != nil {
		t.Fatal(err)
	}
	_, ds, _, err := rollmap.ReadRoll(filepath.Join(rolls, rollID))
	if err != nil {
		t.Fatal(err)
	}
	recipe, _ := engine.DefaultRecipe("fabric")
	// The default model's reach (patch and smoothing radii at the coarsest
	// scale, binning 2) in mm, as TestTaughtModelFindsSubtleDefects
	// allows, and 2 mm more: a long streak's box assembled from the
	// threshold detector's and the model's pieces ends a little further.
	reach := float64((7/2+7/2)<<1*2) * 0.25
	sc := score.Detections(truth, ds, score.Options{MinSizeMM: recipe.Threshold.MinSizeMM, LineMM: 0.25, PixelMM: 0.25,
		LengthM: 40, MDTolMM: 4 + reach, CDTolMM: 3 + reach})
	return ds, truth, sc
}

// TestReteachYarnLot is the re-teach acceptance: a model taught on good
// fabric flags a change of yarn lot it never saw; a scripted reviewer
// marks those flags false; reteach folds them into the model; on three
// new rolls (other seeds) with the same lot change the new model flags
// the lot on none, loses no defect the old model found, and finds ≥ 95 %
// of the real defects over the three rolls. The old model directory is
// not touched.
func TestReteachYarnLot(t *testing.T) {
	long.Skip(t, "teaches on 9 m of web and replays seven rolls of 40 m: minutes under -race")
	ortest.Require(t)
	dir := t.TempDir()
	good, m0, m1 := filepath.Join(dir, "good"), filepath.Join(dir, "m0"), filepath.Join(dir, "m1")
	lot := []string{"--lot-at", "10m", "--lot-length", "8m", "--lot-shift", "6", "--lot-contrast", "1.3"}
	simulate(t, good, "--length", "10m", "--seed", "3", "--defects", "0")
	if code, o, e := runCLI(t, "teach", "--from", good, "--out", m0, "--metres", "9"); code != 0 {
		t.Fatalf("teach: %s %s", o, e)
	}
	before := treeDigest(t, m0)

	// A roll with the yarn lot, inspected with the taught model.
	recA, rolls := filepath.Join(dir, "A"), filepath.Join(dir, "R")
	simulate(t, recA, append([]string{"--length", "40m", "--seed", "7", "--defects", "30", "--contrast-scale", "0.25"}, lot...)...)
	dsA, truthA, scA := replayScore(t, recA, rolls, "A", m0)
	flaggedA := lotFlags(dsA, truthA, 10, 8)
	t.Logf("roll A (seed 7), taught model: %d defects, %d false alarms in the yarn lot; %s", len(dsA), flaggedA, scA.String())
	if flaggedA == 0 {
		t.Fatal("the taught model does not flag the yarn lot: the test proves nothing")
	}
	confirmed, falseAlarms := lotReviewer(t, rolls, "A", truthA)
	t.Logf("scripted reviewer: %d confirmed, %d false alarms", confirmed, falseAlarms)

	// The roll names its recording (its source): no =RECORDING needed.
	code, out, e := runCLI(t, "reteach", "--model", m0, "--out", m1, "--by", "qa-lead", filepath.Join(rolls, "A"))
	if code != 0 {
		t.Fatalf("reteach: %s %s", out, e)
	}
	t.Logf("reteach:\n%s", out)
	if after := treeDigest(t, m0); after != before {
		t.Errorf("reteach changed the old model directory %s", m0)
	}

	// New rolls (other seeds, the same lot change), each inspected with
	// the old and the new model. Three rolls of 25 eligible defects each,
	// so that the 95 % bar is not decided by one defect; the seeds were
	// fixed before any was measured (bench/RESULTS.md, "re-teach").
	var pooledOld, pooledNew score.Score
	for _, seed := range []string{"11", "12", "13"} {
		name := "B" + seed
		recB := filepath.Join(dir, name)
		simulate(t, recB, append([]string{"--length", "40m", "--seed", seed, "--defects", "30", "--contrast-scale", "0.25"}, lot...)...)
		dsOld, truthB, scOld := replayScore(t, recB, rolls, name+"-old", m0)
		dsNew, _, scNew := replayScore(t, recB, rolls, name+"-new", m1)
		pooledOld.Add(scOld)
		pooledNew.Add(scNew)
		oldFlags, newFlags := lotFlags(dsOld, truthB, 10, 8), lotFlags(dsNew, truthB, 10, 8)
		t.Logf("roll %s (seed %s), old model: %d defects, %d false alarms in the yarn lot; %s", name, seed, len(dsOld), oldFlags, scOld.String())
		t.Logf("roll %s (seed %s), re-taught model: %d defects, %d false alarms in the yarn lot; %s", name, seed, len(dsNew), newFlags, scNew.String())
		for _, m := range scOld.Missed {
			t.Logf("%s: old model missed truth %d %s size %.2f mm contrast %.1f md %.3f cd %.1f", name, m.ID, m.Class, m.SizeMM, m.Contrast, m.MDStartM, m.CDStartMM)
		}
		if oldFlags == 0 {
			t.Fatalf("the old model does not flag the lot on roll %s: the test proves nothing", name)
		}
		if newFlags != 0 {
			for _, d := range dsNew {
				if d.MDEndM >= 10 && d.MDStartM <= 18 && isFalseAlarm(d, truthB) {
					t.Errorf("%s: still flagged: defect %d md %.3f-%.3f cd %.1f-%.1f score %.3g %s", name, d.ID, d.MDStartM, d.MDEndM, d.CDStartMM, d.CDEndMM, d.PeakScore, d.Detector)
				}
			}
			t.Errorf("the re-taught model flags the yarn lot %d times on roll %s, want 0", newFlags, name)
		}
		// No real defect the old model found is lost: the new clusters
		// only lower scores where the reviewed material explains a patch.
		for _, tr := range truthB {
			if foundBy(tr, dsOld) && !foundBy(tr, dsNew) {
				t.Errorf("%s: truth %d %s size %.2f mm contrast %.1f md %.3f cd %.1f: found by the old model, not by the re-taught one", name, tr.ID, tr.Class, tr.SizeMM, tr.Contrast, tr.MDStartM, tr.CDStartMM)
			}
		}
		for _, m := range scNew.Missed {
			t.Logf("%s: re-taught model missed truth %d %s size %.2f mm contrast %.1f md %.3f cd %.1f (found by the old model: %v)", name, m.ID, m.Class, m.SizeMM, m.Contrast, m.MDStartM, m.CDStartMM, foundBy(m, dsOld))
		}
		for _, m := range scNew.Misplaced {
			t.Logf("%s: re-taught model misplaced: %s", name, m)
		}
	}
	// The bar: recall on real defects ≥ 95 % after re-teach, over
	// every defect the recipe asks to find (score's rule: at or above
	// threshold.min_size_mm, as every accuracy test of the project counts).
	t.Logf("recall over the new rolls: old model %s; re-taught %s", pooledOld.String(), pooledNew.String())
	if pooledNew.Recall < 0.95 {
		t.Errorf("recall %d/%d = %.3f with the re-taught model, want ≥ 0.95", pooledNew.Found, pooledNew.Eligible, pooledNew.Recall)
	}
	if pooledNew.Recall < pooledOld.Recall {
		t.Errorf("recall %.3f with the re-taught model, below the old model's %.3f", pooledNew.Recall, pooledOld.Recall)
	}

	// The new version names where it came from, and the registry of the
	// rolls it was taught from lists it with who made it.
	sc, err := onnx.ReadSidecar(filepath.Join(m1, onnx.SidecarFileName))
	if err != nil {
		t.Fatal(err)
	}
	oldDigest, _ := versions.FilesDigest(m0, onnx.ModelFileName, onnx.SidecarFileName)
	p := sc.MadeBy.Params
	if sc.MadeBy.Tool != "webinspect reteach" || p["derived_from"] != versions.IDOf(oldDigest) || p["made_by_user"] != "qa-lead" ||
		!strings.Contains(p["reviews"], "A/") || !strings.Contains(p["reviews"], "qa-anna") {
		t.Errorf("made_by %+v does not record the tool, the old version %s, who re-taught and the reviews", sc.MadeBy, versions.IDOf(oldDigest))
	}
	vs, err := versions.ListDir(rolls)
	if err != nil {
		t.Fatal(err)
	}
	newDigest, _ := versions.FilesDigest(m1, onnx.ModelFileName, onnx.SidecarFileName)
	found := false
	for _, v := range vs {
		if v.ID == versions.IDOf(newDigest) {
			found = v.MadeBy == "qa-lead" && strings.Contains(v.Note, versions.IDOf(oldDigest))
		}
	}
	if !found {
		t.Errorf("the registry %v does not list the new model %s made by qa-lead from %s", vs, versions.IDOf(newDigest), versions.IDOf(oldDigest))
	}
}

// reteach refuses what it cannot use with one clear line, and never
// touches the old model: a model without its statistics or with a
// corrupt file (named), the old directory as --out, and rolls without
// false-alarm reviews of a model's flags.
func TestReteachBadInput(t *testing.T) {
	ortest.Require(t)
	dir := t.TempDir()
	src, m0 := filepath.Join(dir, "png"), filepath.Join(dir, "m0")
	writeWeavePNGs(t, src)
	args := append(append([]string{"teach", "--from", src, "--out", m0}, smallTeachFlags...), "--folds", "2", "--max-patches", "5000")
	if code, o, e := runCLI(t, args...); code != 0 {
		t.Fatalf("teach: %s %s", o, e)
	}
	if _, err := os.Stat(filepath.Join(m0, "teach.json")); err != nil {
		t.Fatalf("teach kept no statistics for reteach: %v", err)
	}
	before := treeDigest(t, m0)
	// A roll the threshold detector alone flagged: one defect reviewed
	// false, one confirmed (no false alarm of a model's flag).
	rolls, rec := filepath.Join(dir, "R"), filepath.Join(dir, "D")
	st, err := rollmap.OpenStore(rolls)
	if err != nil {
		t.Fatal(err)
	}
	r, err := st.StartRoll(rollmap.RollMeta{ID: "r1", Recipe: "fabric-default", Material: "fabric", WebWidthMM: 400})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for id := int64(1); id <= 2; id++ {
		d := rollmap.Defect{RollID: "r1", ID: id, MDStartM: float64(id), MDEndM: float64(id) + 0.01, CDStartMM: 100, CDEndMM: 110,
			AreaMM2: 100, Class: "stain", Severity: "major", Decision: rollmap.DecisionMark, Detector: rollmap.DetectorThreshold, Lane: -1, Time: now}
		if err := r.AddDefects(d); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	roll := filepath.Join(rolls, "r1")
	for _, rv := range []rollmap.Review{
		{DefectID: 1, Action: rollmap.ActionFalseAlarm, Reviewer: "qa", Time: now},
		{DefectID: 2, Action: rollmap.ActionConfirm, Label: "stain", Reviewer: "qa", Time: now},
	} {
		if _, err := st.AddReview("r1", rv); err != nil {
			t.Fatal(err)
		}
	}

	out := filepath.Join(dir, "m1")
	code, stdout, stderr := runCLI(t, "reteach", "--model", m0, "--out", out, roll+"="+rec)
	oneLineError(t, code, stderr, "no false-alarm reviews of defects a model flagged", roll)
	if !strings.Contains(stdout, "2 reviewed defects in 1 rolls: 1 false alarms, 0 of them flagged by a model") {
		t.Errorf("stdout %q does not say what was found", stdout)
	}

	code, _, stderr = runCLI(t, "reteach", "--model", m0, "--out", m0, roll)
	oneLineError(t, code, stderr, "--out is the --model directory")

	// Broken copies of the model: each error names the file.
	for _, c := range []struct {
		name, file string
		write      []byte
		want       string
	}{
		{"corrupt sidecar", "model.json", []byte("{\"version\":"), "model.json"},
		{"corrupt statistics", "teach.json", []byte("not json"), "teach.json"},
		{"graph replaced", "model.onnx", []byte("not a graph"), "changed after teach"},
	} {
		bad := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "-"))
		os.MkdirAll(bad, 0o755)
		for _, n := range []string{"model.json", "teach.json", "model.onnx"} {
			b, _ := os.ReadFile(filepath.Join(m0, n))
			if n == c.file {
				b = c.write
			}
			os.WriteFile(filepath.Join(bad, n), b, 0o644)
		}
		code, _, stderr := runCLI(t, "reteach", "--model", bad, "--out", filepath.Join(dir, "x"), roll)
		oneLineError(t, code, stderr, filepath.Join(bad, c.file), c.want)
	}
	// An imported model (no teach.json) cannot be re-taught.
	imp := filepath.Join(dir, "imported")
	os.MkdirAll(imp, 0o755)
	for _, n := range []string{"model.json", "model.onnx"} {
		b, _ := os.ReadFile(filepath.Join(m0, n))
		os.WriteFile(filepath.Join(imp, n), b, 0o644)
	}
	code, _, stderr = runCLI(t, "reteach", "--model", imp, "--out", filepath.Join(dir, "y"), roll)
	oneLineError(t, code, stderr, filepath.Join(imp, "teach.json"), "is missing", "teach it again")

	if after := treeDigest(t, m0); after != before {
		t.Error("a refused reteach changed the old model directory")
	}
	for _, d := range []string{out, filepath.Join(dir, "x"), filepath.Join(dir, "y")} {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("a refused reteach left %s behind (%v)", d, err)
		}
	}
}

// writeWeavePNGs writes four small woven-looking PNGs into dir.
func writeWeavePNGs(t *testing.T, dir string) {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 1))
	for i := range 4 {
		pngtest.Write(t, filepath.Join(dir, string(rune('a'+i))+".png"), 80, 40, weave(rng, 80, 40))
	}
}

package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/webinspect/webinspect/acquisition/sim"
	"github.com/webinspect/webinspect/bench/score"
	"github.com/webinspect/webinspect/engine"
	"github.com/webinspect/webinspect/rollmap"
	"github.com/webinspect/webinspect/rollmap/versions"
)

// TestCalibrateCommand: webinspect calibrate on a replayed roll whose
// recipe's threshold is too low says how many reviews it needs, names an
// unknown roll or recipe, and once a scripted reviewer has reviewed the
// defects from the simulator's truth, lists the curve and the proposal;
// --apply registers the calibrated recipe as a new version with who
// applied it, and writes it for run --recipe.
func TestCalibrateCommand(t *testing.T) {
	dir := t.TempDir()
	rec, rolls := filepath.Join(dir, "D"), filepath.Join(dir, "R")
	simulate(t, rec, "--length", "5m", "--defects", "8")
	low, err := engine.LoadRecipe("fabric")
	if err != nil {
		t.Fatal(err)
	}
	low.Threshold.KSigma, low.Threshold.MinContrast = 2.5, 5
	b, _ := json.Marshal(low)
	lowFile := filepath.Join(dir, "low.json")
	if err := os.WriteFile(lowFile, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if code, o, stderr := runCLI(t, "replay", rec, "--rolls", rolls, "--recipe", lowFile, "--images=false"); code != 0 {
		t.Fatalf("replay: %s %s", o, stderr)
	}
	roll := filepath.Base(rollDir(t, rolls))

	code, _, stderr := runCLI(t, "calibrate", "--rolls", rolls)
	oneLineError(t, code, stderr, "too few reviews", "0 confirmed defects and 0 false alarms", "at least 5 of each")
	code, _, stderr = runCLI(t, "calibrate", "--rolls", rolls, "--roll", roll+",R-nope")
	oneLineError(t, code, stderr, "R-nope")
	code, _, stderr = runCLI(t, "calibrate", "--rolls", rolls, "--recipe", "nosuch")
	oneLineError(t, code, stderr, "nosuch")
	code, _, stderr = runCLI(t, "calibrate", "--rolls", rolls, "--recipe", "0123456789abcdef")
	oneLineError(t, code, stderr, "0123456789abcdef")

	// The scripted reviewer: confirmed where the truth has a defect, false alarm elsewhere.
	f, err := os.Open(filepath.Join(rec, "truth.csv"))
	if err != nil {
		t.Fatal(err)
	}
	truth, err := sim.ReadTruthCSV(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	st, err := rollmap.OpenStore(rolls)
	if err != nil {
		t.Fatal(err)
	}
	ds, err := st.Defects(roll, rollmap.Query{})
	if err != nil {
		t.Fatal(err)
	}
	sc := score.Detections(truth, ds, score.Options{MinSizeMM: 1, LineMM: 0.25, PixelMM: 0.25, LengthM: 5})
	falseIDs := map[int64]bool{}
	for _, d := range sc.FalseDefects {
		falseIDs[d.ID] = true
	}
	for _, d := range ds {
		rv := rollmap.Review{DefectID: d.ID, Action: rollmap.ActionConfirm, Label: d.Class, Reviewer: "qa", Time: time.Now()}
		if falseIDs[d.ID] {
			rv.Action, rv.Label = rollmap.ActionFalseAlarm, ""
		}
		if _, err := st.AddReview(roll, rv); err != nil {
			t.Fatal(err)
		}
	}
	if sc.False < 5 || len(ds)-sc.False < 5 {
		t.Fatalf("the setup needs 5 false alarms and 5 real defects: %v", sc)
	}

	code, out, stderr := runCLI(t, "calibrate", "--rolls", rolls)
	if code != 0 {
		t.Fatalf("calibrate: %s %s", out, stderr)
	}
	for _, want := range []string{"threshold detector:", "THRESHOLD", "FALSE REMOVED", "proposal: threshold.min_peak_contrast = "} {
		if !strings.Contains(out, want) {
			t.Errorf("calibrate output lacks %q:\n%s", want, out)
		}
	}
	t.Logf("%s", out)

	newFile := filepath.Join(dir, "calibrated.json")
	code, out, stderr = runCLI(t, "calibrate", "--rolls", rolls, "--apply", "--by", "Q. Engineer", "--out", newFile)
	if code != 0 || !strings.Contains(out, "new recipe version") {
		t.Fatalf("apply: %s %s", out, stderr)
	}
	next, err := engine.LoadRecipe(newFile)
	if err != nil {
		t.Fatal(err)
	}
	if next.Threshold.MinPeakContrast <= low.Threshold.MinContrast || next.Threshold.KSigma != 2.5 {
		t.Errorf("calibrated recipe threshold %+v", next.Threshold)
	}
	canon, _ := next.CanonicalBytes()
	vs, err := versions.ListDir(rolls)
	if err != nil {
		t.Fatal(err)
	}
	var got *versions.Version
	for i := range vs {
		if vs[i].ID == versions.IDOf(versions.Digest(canon)) {
			got = &vs[i]
		}
	}
	if got == nil || got.MadeBy != "Q. Engineer" || !strings.HasPrefix(got.Origin, "calibrate:") || !strings.Contains(got.Note, "threshold.min_peak_contrast") {
		t.Fatalf("the calibrated version is not registered with who applied it: %+v in %+v", got, vs)
	}
	if time.Since(got.MadeAt) > time.Hour {
		t.Errorf("made_at %v", got.MadeAt)
	}
	if code, out, _ := runCLI(t, "versions", "--rolls", rolls); code != 0 || !strings.Contains(out, got.ID) || !strings.Contains(out, "Q. Engineer") {
		t.Errorf("versions does not list the calibrated recipe: %s", out)
	}
}

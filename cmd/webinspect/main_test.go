package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/webinspect/webinspect/bench/score"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/webinspect/webinspect/acquisition/sim"
	"github.com/webinspect/webinspect/engine"
	"github.com/webinspect/webinspect/rollmap"
	"github.com/webinspect/webinspect/rollmap/versions"
)

func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var o, e bytes.Buffer
	code = realMain(args, &o, &e)
	return code, o.String(), e.String()
}

// oneLineError asserts a failed command printed exactly one line naming the problem.
func oneLineError(t *testing.T, code int, stderr string, want ...string) {
	t.Helper()
	if code == 0 {
		t.Fatalf("exit status 0, want non-zero (stderr %q)", stderr)
	}
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	last := lines[len(lines)-1]
	if !strings.HasPrefix(last, "webinspect") {
		t.Errorf("last stderr line %q is not the error line", last)
	}
	for _, w := range want {
		if !strings.Contains(last, w) {
			t.Errorf("error line %q does not mention %q", last, w)
		}
	}
}

func TestUnknownFlagAndCommand(t *testing.T) {
	code, _, stderr := runCLI(t, "replay", "x", "--rols", "y")
	oneLineError(t, code, stderr, "flag provided but not defined", "-rols")
	if code != 2 {
		t.Errorf("exit %d for a usage error, want 2", code)
	}
	code, _, stderr = runCLI(t, "frobnicate")
	oneLineError(t, code, stderr, "unknown command", "frobnicate")
	code, _, stderr = runCLI(t, "simulate", "--out", t.TempDir(), "--speed", "fast")
	oneLineError(t, code, stderr, "--speed", "fast")
	code, _, stderr = runCLI(t, "simulate", "--out", t.TempDir(), "--material", "steel")
	oneLineError(t, code, stderr, "steel")
	code, _, stderr = runCLI(t, "export", t.TempDir(), "--format", "xml")
	oneLineError(t, code, stderr, "--format", "xml")
}

func simulate(t *testing.T, dir string, extra ...string) {
	t.Helper()
	args := append([]string{"simulate", "--out", dir, "--length", "20m", "--width", "400mm", "--seed", "7", "--defects", "10"}, extra...)
	if code, out, stderr := runCLI(t, args...); code != 0 {
		t.Fatalf("simulate: exit %d: %s %s", code, out, stderr)
	}
}

func rollDir(t *testing.T, rolls string) string {
	t.Helper()
	ents, err := rollDirs(rolls)
	if err != nil || len(ents) != 1 {
		t.Fatalf("want one roll in %s, got %v (%v)", rolls, ents, err)
	}
	return filepath.Join(rolls, ents[0])
}

// rollDirs lists the roll directories in rolls: every entry but the image
// archive.
func rollDirs(rolls string) ([]string, error) {
	ents, err := os.ReadDir(rolls)
	var names []string
	for _, e := range ents {
		if e.Name() != imagesDirName && e.Name() != versions.DirName && e.IsDir() {
			names = append(names, e.Name())
		}
	}
	return names, err
}

func TestMalformedRecipe(t *testing.T) {
	dir := t.TempDir()
	simulate(t, filepath.Join(dir, "D"), "--length", "3m", "--defects", "1")
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"name":"x","material":"fabric","classes":[{"name":"a"}],"threshold":{"k_sigma":99}}`), 0o644)
	code, _, stderr := runCLI(t, "replay", filepath.Join(dir, "D"), "--rolls", filepath.Join(dir, "R"), "--recipe", bad)
	oneLineError(t, code, stderr, "bad.json", "threshold.k_sigma = 99", "between 2 and 50")
}

// TestSimulateReplayExportMatchesTruth is the command-line path of the
// accuracy acceptance: simulate, replay, export, match against truth.csv.
func TestSimulateReplayExportMatchesTruth(t *testing.T) {
	dir := t.TempDir()
	rec, rolls := filepath.Join(dir, "D"), filepath.Join(dir, "R")
	simulate(t, rec, "--stop-at", "10m", "--jog-back", "0.5m")
	code, out, stderr := runCLI(t, "replay", rec, "--rolls", rolls)
	if code != 0 {
		t.Fatalf("replay: exit %d: %s %s", code, out, stderr)
	}
	roll := rollDir(t, rolls)
	csvPath := filepath.Join(dir, "defects.csv")
	if code, _, stderr := runCLI(t, "export", roll, "--format", "csv", "--out", csvPath); code != 0 {
		t.Fatalf("export: %s", stderr)
	}
	defects := readExportCSV(t, csvPath)
	tf, err := os.Open(filepath.Join(rec, "truth.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer tf.Close()
	truth, err := sim.ReadTruthCSV(tf)
	if err != nil {
		t.Fatal(err)
	}
	recipe, _ := engine.DefaultRecipe("fabric")
	s := score.Detections(truth, defects, score.Options{MinSizeMM: recipe.Threshold.MinSizeMM, LineMM: 0.25, PixelMM: 0.25, LengthM: 20})
	t.Log(s)
	if s.Eligible == 0 || s.Recall < 0.98 || s.False > 1 || len(s.Misplaced) > 0 {
		t.Errorf("CLI path accuracy: %s; missed %+v; misplaced %v", s, s.Missed, s.Misplaced)
	}
	// JSON export carries the same defects.
	code, out, stderr = runCLI(t, "export", roll, "--format", "json")
	if code != 0 {
		t.Fatalf("export json: %s", stderr)
	}
	var doc struct {
		Defects []rollmap.Defect `json:"defects"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("json export does not parse: %v", err)
	}
	if len(doc.Defects) != len(defects) {
		t.Errorf("json export has %d defects, csv %d", len(doc.Defects), len(defects))
	}
	// The roll summary grades each lane of the recipe (fabric: four 500 mm
	// lanes, 4-point system).
	sum, err := rollmap.ReadSummary(roll)
	if err != nil {
		t.Fatalf("roll summary: %v", err)
	}
	if len(sum.Grades) != 4 || sum.GradingError != "" {
		t.Errorf("summary grades %+v (error %q), want one per lane of the fabric recipe", sum.Grades, sum.GradingError)
	}
	for _, d := range doc.Defects {
		if want := int(d.CDStartMM+d.CDEndMM) / 1000; d.Lane != want && d.CDEndMM-d.CDStartMM < 100 {
			t.Errorf("defect %d at CD %.1f-%.1f mm is in lane %d, want %d", d.ID, d.CDStartMM, d.CDEndMM, d.Lane, want)
		}
	}
	code, out, stderr = runCLI(t, "export", roll, "--format", "cutlist")
	if code != 0 || !strings.HasPrefix(out, rollmap.MarkingListHeader) {
		t.Errorf("cutlist export: exit %d, %q %s", code, out, stderr)
	}
	// Parquet export reads back through arrow-go's Parquet reader.
	pq := filepath.Join(dir, "defects.parquet")
	if code, _, stderr := runCLI(t, "export", roll, "--format", "parquet", "--out", pq); code != 0 {
		t.Fatalf("export parquet: %s", stderr)
	}
	f, err := os.Open(pq)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tbl, err := pqarrow.ReadTable(context.Background(), f, nil, pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
	if err != nil {
		t.Fatalf("parquet export does not read back: %v", err)
	}
	defer tbl.Release()
	if int(tbl.NumRows()) != len(defects) {
		t.Errorf("parquet export has %d rows, csv %d", tbl.NumRows(), len(defects))
	}
}

func readExportCSV(t *testing.T, path string) []rollmap.Defect {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Split("roll_id,defect_id,md_start_m,md_end_m,cd_start_mm,cd_end_mm,area_mm2,class,severity,decision,score,detector,camera", ",")
	for i, w := range want {
		if i >= len(rows[0]) || rows[0][i] != w {
			t.Fatalf("csv header %v does not start with %v", rows[0], want)
		}
	}
	var ds []rollmap.Defect
	for _, r := range rows[1:] {
		f := func(i int) float64 {
			v, err := strconv.ParseFloat(r[i], 64)
			if err != nil {
				t.Fatalf("column %s: %v", want[i], err)
			}
			return v
		}
		ds = append(ds, rollmap.Defect{RollID: r[0], MDStartM: f(2), MDEndM: f(3), CDStartMM: f(4), CDEndMM: f(5), AreaMM2: f(6), Class: r[7]})
	}
	return ds
}

func TestTruncatedRecordingStillYieldsRollMap(t *testing.T) {
	dir := t.TempDir()
	rec, rolls := filepath.Join(dir, "D"), filepath.Join(dir, "R")
	simulate(t, rec)
	cam := filepath.Join(rec, "camera-0.wrec")
	st, err := os.Stat(cam)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(cam, st.Size()*6/10); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runCLI(t, "replay", rec, "--rolls", rolls)
	oneLineError(t, code, stderr, "camera-0.wrec", "truncated")
	meta, defects, unins, err := rollmap.ReadRoll(rollDir(t, rolls))
	if err != nil {
		t.Fatalf("roll map after a truncated recording: %v", err)
	}
	if meta.Open {
		t.Error("roll left open")
	}
	if len(defects) == 0 {
		t.Error("no defects kept from before the cut")
	}
	var cut *rollmap.Uninspected
	for i := range unins {
		if unins[i].Camera == 0 && unins[i].Reason == rollmap.ReasonSourceError {
			cut = &unins[i]
		}
	}
	if cut == nil || cut.MDStartM < 5 || cut.MDStartM > 15 || cut.MDEndM < 19.9 {
		t.Errorf("the cut camera's missing range is not recorded as uninspected: %+v", unins)
	}
}

// TestReplayRecordsMarks replays with a simulated marker 2 m downstream and
// checks that the roll map records each marked defect's mark status.
func TestReplayRecordsMarks(t *testing.T) {
	dir := t.TempDir()
	rec, rolls := filepath.Join(dir, "D"), filepath.Join(dir, "R")
	simulate(t, rec)
	recipe := filepath.Join(dir, "marking.json")
	base, err := os.ReadFile("../../engine/recipes/fabric.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(base, &doc); err != nil {
		t.Fatal(err)
	}
	doc["marking"] = map[string]any{"marker_distance_mm": 2000, "decisions": []rollmap.Decision{rollmap.DecisionMark, rollmap.DecisionReview}, "output": map[string]any{"kind": "sim"}}
	b, _ := json.Marshal(doc)
	os.WriteFile(recipe, b, 0o644)
	if code, out, stderr := runCLI(t, "replay", rec, "--rolls", rolls, "--recipe", recipe); code != 0 {
		t.Fatalf("replay: exit %d: %s %s", code, out, stderr)
	}
	_, defects, _, err := rollmap.ReadRoll(rollDir(t, rolls))
	if err != nil {
		t.Fatal(err)
	}
	marked := 0
	for _, d := range defects {
		markable := d.Decision == rollmap.DecisionMark || d.Decision == rollmap.DecisionReview
		switch {
		case !markable && d.Mark.Status != "":
			t.Errorf("defect %d (%s) has mark status %q", d.ID, d.Decision, d.Mark.Status)
		case markable && d.MDStartM < 18: // defects in the last 2 m never reach the marker
			if !d.Mark.Fired || d.Mark.FireCount == 0 {
				t.Errorf("markable defect %d at %.3f m: mark state %+v, want fired with its encoder count", d.ID, d.MDStartM, d.Mark)
			}
			marked++
		case markable && d.Mark.Status != rollmap.MarkMissed && !d.Mark.Fired:
			t.Errorf("defect %d at %.3f m near the roll end: mark state %+v, want fired or missed", d.ID, d.MDStartM, d.Mark)
		}
	}
	if marked == 0 {
		t.Fatal("no markable defect: the test proves nothing")
	}
}

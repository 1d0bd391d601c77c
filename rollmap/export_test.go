package rollmap

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"
	"time"
)

// goldenMeta, goldenDefects and goldenUninspected are the fixed content of
// the golden exports and of the format fixture testdata/roll-v1.
var goldenMeta = RollMeta{
	ID: "R20250314-061502-3f9a", Recipe: "fabric-2m", Material: "fabric", Source: "sim",
	WebWidthMM: 2000, Started: time.Date(2025, 3, 14, 6, 15, 2, 0, time.UTC),
	Ended: time.Date(2025, 3, 14, 6, 47, 10, 500000000, time.UTC), LengthM: 3210.5,
}

func goldenDefects() []Defect {
	t0 := time.Date(2025, 3, 14, 6, 15, 7, 123456000, time.UTC)
	return []Defect{
		{ID: 1, MDStartM: 0.0125, MDEndM: 0.0375, CDStartMM: 12.25, CDEndMM: 14.75, AreaMM2: 6.25,
			PeakScore: 41.5, MeanScore: 22.125, Contrast: -38.2, Polarity: "dark", Class: "hole", Severity: "major",
			Decision: DecisionMark, Detector: DetectorThreshold, Camera: 0, Lane: -1, Time: t0, EncoderCount: 50,
			ImageRef: "crops/000001.png"},
		{ID: 2, MDStartM: 1234.567891, MDEndM: 1234.6, CDStartMM: 1999.999, CDEndMM: 2000, AreaMM2: 0.0625,
			PeakScore: 0.1 + 0.2, MeanScore: 1e-7, Contrast: 12, Polarity: "bright", Class: "fly, yarn", Severity: "minor",
			Decision: DecisionReview, Detector: ModelDetector("fabric-v2"), Camera: 3, Lane: 4, Time: t0.Add(90 * time.Minute),
			EncoderCount: 4938271564, ImageRef: "crops/000002.png", ReviewStatus: "reclassified",
			ReviewLabel: `knot, "big"`},
		{ID: 3, MDStartM: 2000, MDEndM: 2000.000001, Polarity: "mixed", Class: "Ölfleck", Decision: DecisionPass,
			Detector: DetectorThreshold, Camera: 1, Lane: 0, ReviewStatus: "false_alarm", ReviewLabel: "two\nlines",
			ImageRef: " leading space"},
	}
}

func goldenUninspected() []Uninspected {
	return []Uninspected{
		{MDStartM: 100, MDEndM: 100.5, CDStartMM: 0, CDEndMM: 512, Camera: 0, Lines: 2000, Reason: ReasonDropped},
		{MDStartM: 2500, MDEndM: 2510, CDStartMM: 0, CDEndMM: 2000, Camera: -1, Lines: 40000, Reason: ReasonRestart},
	}
}

// golden compares got with testdata/name, or rewrites it with -rewrite.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *rewrite {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -rewrite to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s (go test -rewrite updates it):\n got:\n%s\nwant:\n%s", path, got, want)
	}
}

func TestExportCSVGolden(t *testing.T) {
	ds := stored(goldenMeta.ID, goldenDefects())
	ds[0].RecipeVersion, ds[0].ModelVersion = "3f9a2b1c0d4e5f60", "0a1b2c3d4e5f6071"
	ds[0].LearnedClass, ds[0].LearnedConfidence, ds[0].ClassifierVersion, ds[0].RuleClass = "hole", 0.97314, "c0ffee0123456789", "knot"
	ds[0].Mark = MarkState{Status: MarkAcknowledged, Head: "h1", Scheduled: true, Fired: true, Acknowledged: true,
		FireCount: 8050, TargetCount: 8050}
	ds[1].Mark = MarkState{Status: MarkLate, Late: true}
	ds[0].WebEdgeMM, ds[1].WebEdgeMM = 248.1254, 31.75 // webs narrower than the view
	var buf bytes.Buffer
	if err := ExportCSV(&buf, ds); err != nil {
		t.Fatal(err)
	}
	golden(t, "export.csv", buf.Bytes())

	// Any RFC 4180 reader gets the fields back.
	recs, err := csv.NewReader(bytes.NewReader(buf.Bytes())).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != len(ds)+1 || len(recs[0]) != 33 {
		t.Fatalf("%d records of %d fields", len(recs), len(recs[0]))
	}
	col := map[string]int{}
	for i, h := range recs[0] {
		col[h] = i
	}
	for i, d := range ds {
		row := recs[i+1]
		if row[col["review_label"]] != d.ReviewLabel || row[col["class"]] != d.Class || row[col["image_ref"]] != d.ImageRef {
			t.Errorf("row %d strings: %q", i, row)
		}
		if row[col["score"]] != row[col["peak_score"]] {
			t.Errorf("row %d: score %s != peak_score %s", i, row[col["score"]], row[col["peak_score"]])
		}
		if row[col["mark_status"]] != d.Mark.Status || row[col["mark_fire_count"]] != strconv.FormatInt(d.Mark.FireCount, 10) {
			t.Errorf("row %d: mark columns %q, %q, want %q, %d", i, row[col["mark_status"]], row[col["mark_fire_count"]],
				d.Mark.Status, d.Mark.FireCount)
		}
		if row[col["recipe_version"]] != d.RecipeVersion || row[col["model_version"]] != d.ModelVersion {
			t.Errorf("row %d: versions %q, %q, want %q, %q", i, row[col["recipe_version"]], row[col["model_version"]],
				d.RecipeVersion, d.ModelVersion)
		}
		// A cutting table puts a defect on the machine at cd + web edge.
		if e, _ := strconv.ParseFloat(row[col["web_edge_mm"]], 64); math.Abs(e-d.WebEdgeMM) > 0.0005 {
			t.Errorf("row %d: web_edge_mm %s, want %v", i, row[col["web_edge_mm"]], d.WebEdgeMM)
		}
		if v, _ := strconv.ParseFloat(row[col["peak_score"]], 64); v != d.PeakScore {
			t.Errorf("row %d: peak_score %s does not read back as %v", i, row[col["peak_score"]], d.PeakScore)
		}
	}
}

// TestExportCSVLarge crosses the internal buffer size and checks every
// row arrives.
func TestExportCSVLarge(t *testing.T) {
	ds := stored("L", makeDefects(2000, 60))
	var buf bytes.Buffer
	if err := ExportCSV(&buf, ds); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&buf).ReadAll()
	if err != nil || len(recs) != len(ds)+1 {
		t.Fatalf("%d records, %v", len(recs), err)
	}
	if last := recs[len(recs)-1]; last[1] != "2000" {
		t.Errorf("last row has defect_id %s", last[1])
	}
	if err := ExportCSV(failWriter{}, ds); !errors.Is(err, errInjected) {
		t.Errorf("write error not returned: %v", err)
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errInjected }

func TestExportJSONGolden(t *testing.T) {
	ds := stored(goldenMeta.ID, goldenDefects())
	ds[0].Mark = MarkState{Status: MarkAcknowledged, Head: "h1", Scheduled: true, Fired: true, Acknowledged: true,
		FireCount: 8050, FireTime: time.Date(2025, 3, 14, 6, 15, 9, 250000000, time.UTC), TargetCount: 8050}
	us := storedU(goldenMeta.ID, goldenUninspected())
	var buf bytes.Buffer
	if err := ExportJSON(&buf, goldenMeta, ds, us); err != nil {
		t.Fatal(err)
	}
	golden(t, "export.json", buf.Bytes())

	type doc struct {
		Roll        RollMeta      `json:"roll"`
		Defects     []Defect      `json:"defects"`
		Uninspected []Uninspected `json:"uninspected"`
	}
	for _, c := range []doc{{goldenMeta, ds, us}, {goldenMeta, []Defect{}, []Uninspected{}}} {
		var got bytes.Buffer
		if err := ExportJSON(&got, c.Roll, c.Defects, c.Uninspected); err != nil {
			t.Fatal(err)
		}
		want, err := json.MarshalIndent(c, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Bytes(), append(want, '\n')) {
			t.Errorf("streamed JSON differs from json.MarshalIndent:\n%s\nwant\n%s", got.Bytes(), want)
		}
		var back doc
		if err := json.Unmarshal(got.Bytes(), &back); err != nil {
			t.Fatal(err)
		}
		equalRows(t, "json defects", back.Defects, c.Defects)
	}
	var empty bytes.Buffer
	ExportJSON(&empty, goldenMeta, nil, nil)
	if !bytes.Contains(empty.Bytes(), []byte(`"defects": [],`)) {
		t.Errorf("nil defects not written as []:\n%s", empty.Bytes())
	}
}

// TestFormatFixtureV1 reads a roll directory written by the first version
// of the format and kept under testdata: later readers must keep reading it.
// It is frozen (see also ../testdata/rollmap/v1).
func TestFormatFixtureV1(t *testing.T) {
	// Frozen: no -rewrite (this package now writes version 2).
	dir := filepath.Join("testdata", "roll-v1")
	meta, ds, us, err := ReadRoll(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := goldenMeta
	want.Ended = meta.Ended // set by Close when the fixture was written
	if !reflect.DeepEqual(meta, want) || meta.Ended.IsZero() {
		t.Errorf("meta = %+v\nwant %+v", meta, want)
	}
	equalRows(t, "defects", ds, stored(goldenMeta.ID, goldenDefects()))
	equalRows(t, "uninspected", us, storedU(goldenMeta.ID, goldenUninspected()))
}

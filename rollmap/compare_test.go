package rollmap

import (
	"bytes"
	"encoding/csv"
	"strings"
	"testing"
)

func box(id int64, md0, md1, cd0, cd1 float64, class string, dec Decision) Defect {
	return Defect{ID: id, MDStartM: md0, MDEndM: md1, CDStartMM: cd0, CDEndMM: cd1, Class: class, Severity: "minor", Decision: dec}
}

// TestCompareDefectsRule checks the pairing rule the README documents:
// overlapping boxes pair (touching counts, the camera does not), each
// defect at most once, the largest overlap first.
func TestCompareDefectsRule(t *testing.T) {
	old := []Defect{
		box(1, 1.000, 1.010, 100, 110, "knot", DecisionPass),  // same box: unchanged
		box(2, 2.000, 2.010, 100, 110, "knot", DecisionPass),  // reclassified
		box(3, 3.000, 3.010, 100, 110, "knot", DecisionPass),  // decision only
		box(4, 4.000, 4.010, 100, 110, "knot", DecisionPass),  // gone
		box(5, 5.000, 5.100, 100, 200, "stain", DecisionMark), // split in two by the new side
		box(6, 6.000, 6.010, 100, 110, "knot", DecisionPass),  // touched at its corner: pairs
	}
	old[0].Camera = 0
	newer := []Defect{
		box(11, 1.000, 1.010, 100, 110, "knot", DecisionPass),
		box(12, 2.001, 2.011, 101, 111, "hole", DecisionMark),
		box(13, 3.000, 3.010, 100, 110, "knot", DecisionReview),
		box(15, 5.000, 5.040, 100, 150, "stain", DecisionMark), // the larger part
		box(16, 5.060, 5.070, 180, 190, "stain", DecisionMark), // the smaller: newly flagged
		box(17, 6.010, 6.020, 110, 120, "knot", DecisionPass),
		box(18, 7.000, 7.010, 100, 110, "knot", DecisionReview), // new
	}
	newer[0].Camera = 1 // another camera, the same place on the web
	c := CompareDefects(old, newer)
	if c.Old != 6 || c.New != 7 || c.Unchanged != 3 {
		t.Errorf("old %d new %d unchanged %d, want 6, 7, 3", c.Old, c.New, c.Unchanged)
	}
	type row struct {
		k        ChangeKind
		old, new int64
	}
	var got []row
	for _, ch := range c.Changes {
		got = append(got, row{ch.Kind, idOf(ch.Old), idOf(ch.New)})
	}
	want := []row{{ChangeClass, 2, 12}, {ChangeDecision, 3, 13}, {ChangeGone, 4, 0}, {ChangeNew, 0, 16}, {ChangeNew, 0, 18}}
	if len(got) != len(want) {
		t.Fatalf("changes %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("change %d: %v, want %v", i, got[i], want[i])
		}
	}
	if n := c.DecisionChanges(); n != 5 {
		t.Errorf("%d decision changes, want 5 (class change with a decision change, decision, gone, two new)", n)
	}
	if !strings.Contains(c.Changes[3].Note, "recorded defect 5") {
		t.Errorf("the split part's note %q does not name the defect it overlaps", c.Changes[3].Note)
	}

	var buf bytes.Buffer
	if err := ExportChangesCSV(&buf, &c, func(ref string) string { return "crops/" + ref }); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatalf("changes CSV does not parse: %v", err)
	}
	if strings.Join(recs[0], ",") != ChangesCSVHeader || len(recs) != 1+len(want) {
		t.Fatalf("changes CSV: header %v, %d rows", recs[0], len(recs)-1)
	}
	if r := recs[1]; r[0] != "reclassified" || r[1] != "pass>mark" || r[9] != "knot" || r[10] != "hole" {
		t.Errorf("reclassified row %v", r)
	}
	if r := recs[3]; r[0] != "no_longer_flagged" || r[1] != "pass>none" || r[8] != "" {
		t.Errorf("no longer flagged row %v", r)
	}
}

package api

// Report tests of issue 15 (#1 class styles, #7 report errors).

import (
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/webinspect/webinspect/rollmap"
)

// classRoll writes a closed 50 m roll id with one defect of each class.
func classRoll(t *testing.T, st *rollmap.Store, id string, classes ...string) {
	t.Helper()
	r, err := st.StartRoll(rollmap.RollMeta{ID: id, Recipe: "fabric-default", Material: "fabric", Source: "sim", WebWidthMM: 2000, Started: t0})
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range classes {
		md := float64(5 * (i + 1))
		if err := r.AddDefects(rollmap.Defect{ID: int64(i + 1), MDStartM: md, MDEndM: md + 0.01, CDStartMM: 100, CDEndMM: 110,
			AreaMM2: 10, PeakScore: 40, Class: c, Severity: "major", Decision: "mark", Detector: "threshold", Lane: -1, Time: t0}); err != nil {
			t.Fatal(err)
		}
	}
	r.SetLength(50)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestReportClassStyles (issue 15 #1): the report's Pareto bars are drawn
// in each class's colour and glyph, the same whatever other classes the
// roll holds.
func TestReportClassStyles(t *testing.T) {
	st := openStore(t)
	classRoll(t, st, "R-a", "slub")
	classRoll(t, st, "R-b", "zebra", "hole", "slub", "aaa")
	for _, id := range []string{"R-a", "R-b"} {
		var buf bytes.Buffer
		if err := WriteReport(&buf, ReportHTML, st, nil, id); err != nil {
			t.Fatal(err)
		}
		s := StyleOf("slub")
		bar := fmt.Sprintf(`fill="%s" data-class="slub"`, s.Colour)
		if !strings.Contains(buf.String(), bar) {
			t.Errorf("roll %s: the report's slub bar is not drawn in %s (want %s)", id, s.Colour, bar)
		}
		if glyph := fmt.Sprintf(`fill="%s" data-shape="%s"`, s.Colour, s.Shape); !strings.Contains(buf.String(), glyph) {
			t.Errorf("roll %s: the report has no slub glyph %s", id, glyph)
		}
	}
}

// TestStyleOf: fixed styles for the built-in classes, all different; any
// other name gets a style from its name alone.
func TestStyleOf(t *testing.T) {
	seen := map[ClassStyle]string{}
	for n, s := range knownClasses {
		if o, ok := seen[s]; ok {
			t.Errorf("classes %q and %q share %v", o, n, s)
		}
		seen[s] = n
	}
	// FNV-1a 32 of "zebra" is 0x7499948f = 1956222095.
	if got, want := StyleOf("zebra"), (ClassStyle{Colour: ClassPalette[1956222095%10], Shape: ClassShapes[(1956222095/10)%8]}); got != want {
		t.Errorf("StyleOf(zebra) = %v, want %v", got, want)
	}
}

// gradedRoll writes the closed roll id, 100 m, two lanes over 0..1800 mm
// of a 2000 mm web graded by scheme, with 12 defects: 6 marked in lane 0,
// 3 passed in lane 1, 2 marked outside both lanes, 1 marked and reviewed
// as a false alarm.
func gradedRoll(t *testing.T, st *rollmap.Store, id string, scheme rollmap.GradingScheme) {
	t.Helper()
	r, err := st.StartRoll(rollmap.RollMeta{ID: id, Recipe: "fabric-default", Material: "fabric", Source: "sim", WebWidthMM: 2000, Started: t0,
		Lanes: []rollmap.Lane{{Name: "L1", CDStartMM: 0, CDEndMM: 900}, {Name: "L2", CDStartMM: 900, CDEndMM: 1800}}, Grading: &scheme})
	if err != nil {
		t.Fatal(err)
	}
	add := func(n int, cd float64, decision rollmap.Decision) {
		for range n {
			k := int64(r.Info().Defects + 1)
			md := float64(k) * 7
			if err := r.AddDefects(rollmap.Defect{ID: k, MDStartM: md, MDEndM: md + 0.01, CDStartMM: cd, CDEndMM: cd + 5, AreaMM2: 5,
				PeakScore: 40, Class: "slub", Severity: "major", Decision: decision, Detector: "threshold", Lane: -1, Time: t0}); err != nil {
				t.Fatal(err)
			}
		}
	}
	add(6, 100, "mark")
	add(3, 1000, "pass")
	add(2, 1900, "mark")
	add(1, 200, "mark")
	r.SetLength(100)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := st.AddReview(id, rollmap.Review{DefectID: 12, Action: rollmap.ActionFalseAlarm, Reviewer: "anna"}); err != nil {
		t.Fatal(err)
	}
}

// TestReportGradeTable (issue 15 #7): the lane table adds up to the roll's
// defects (those not graded listed with the reason), gives 4-point
// densities in both unit systems with the recipe's first, has no Grade
// column that only repeats pass/fail, and the density chart has a y axis.
func TestReportGradeTable(t *testing.T) {
	st := openStore(t)
	gradedRoll(t, st, "R-yd", rollmap.GradingScheme{Kind: rollmap.SchemeFourPoint, PassLimit: 40})
	gradedRoll(t, st, "R-m2", rollmap.GradingScheme{Kind: rollmap.SchemeFourPoint, PassLimit: 40, Metric: true,
		Grades: []rollmap.GradeBand{{Name: "A", Max: 10}, {Name: "B", Max: 40}}, FailGrade: "C"})
	report := func(id string) string {
		var buf bytes.Buffer
		if err := WriteReport(&buf, ReportHTML, st, nil, id); err != nil {
			t.Fatal(err)
		}
		return buf.String()
	}
	cells := regexp.MustCompile(`<tr(?: class="uncounted")?><td>[^<]*</td><td(?: class="n")?>[^<]*</td><td class="n">(\d+)</td>`)
	for _, id := range []string{"R-yd", "R-m2"} {
		page := report(id)
		table := page[strings.Index(page, `<table class="grades">`):]
		table = table[:strings.Index(table, "</table>")]
		sum := 0
		for _, m := range cells.FindAllStringSubmatch(table, -1) {
			n, _ := strconv.Atoi(m[1])
			sum += n
		}
		if sum != 12 {
			t.Errorf("%s: the lane table's Defects column adds up to %d, the roll has 12:\n%s", id, sum, table)
		}
		for _, why := range []string{"decision pass", "false alarm", "outside every lane"} {
			if !strings.Contains(table, why) {
				t.Errorf("%s: the lane table does not say %q", id, why)
			}
		}
		if !strings.Contains(page, `class="yaxis"`) || !strings.Contains(page, `class="ytick"`) {
			t.Errorf("%s: the density chart has no y axis", id)
		}
	}
	yd, m2 := report("R-yd"), report("R-m2")
	ydHead, m2Head := yd[strings.Index(yd, `<table class="grades">`):], m2[strings.Index(m2, `<table class="grades">`):]
	ydHead, m2Head = ydHead[:strings.Index(ydHead, "</tr>")], m2Head[:strings.Index(m2Head, "</tr>")]
	if !strings.Contains(ydHead, "points/100m2") || !strings.Contains(m2Head, "points/100yd2") {
		t.Errorf("the densities are not given in both unit systems: %q / %q", ydHead, m2Head)
	}
	if strings.Index(yd, "points/100yd2") > strings.Index(yd, "points/100m2") || strings.Index(m2, "points/100m2") > strings.Index(m2, "points/100yd2") {
		t.Error("the recipe's unit system does not come first")
	}
	if strings.Contains(ydHead, "<th>Grade</th>") {
		t.Errorf("no named grades, yet a Grade column repeats pass/fail: %s", ydHead)
	}
	if !strings.Contains(m2Head, "<th>Grade</th>") {
		t.Errorf("named grades A/B/C without a Grade column: %s", m2Head)
	}
	// The PDF says the same.
	pdfCompress = false
	defer func() { pdfCompress = true }()
	var buf bytes.Buffer
	if err := WriteReport(&buf, ReportPDF, st, nil, "R-yd"); err != nil {
		t.Fatal(err)
	}
	text := pdfText(buf.Bytes())
	for _, want := range []string{"points/100m2", "outside every lane", "every defect of the roll"} {
		if !strings.Contains(text, want) {
			t.Errorf("PDF report lacks %q", want)
		}
	}
}

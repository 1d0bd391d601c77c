package api

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/webinspect/webinspect/rollmap"
)

// reportStore writes roll "P": 100 m, four lanes graded 4-point with named
// bands, the defects of reviewRollDefects with crops for some of them
// (defect 10's crop is missing from the archive), and reviews.
func reportStore(t *testing.T) (*rollmap.Store, *spyImages, []rollmap.LaneGrade) {
	t.Helper()
	st, err := rollmap.OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	g := rollmap.GradingScheme{Kind: rollmap.SchemeFourPoint, PassLimit: 20, HoleClasses: []string{"hole"},
		Grades: []rollmap.GradeBand{{Name: "first-quality", Max: 1}, {Name: "second-quality", Max: 20}}, FailGrade: "rejected"}
	r, err := st.StartRoll(rollmap.RollMeta{ID: "P", Recipe: "fabric-default", Material: "fabric", Source: "sim",
		WebWidthMM: 2000, Started: t0, Lanes: rollmap.EqualLanes(4, 0, 2000), Grading: &g})
	if err != nil {
		t.Fatal(err)
	}
	spy := &spyImages{files: map[string][]byte{}}
	ds := reviewRollDefects()
	for i := range ds {
		data, ref := testPNG(t, uint8(40+10*i))
		ds[i].ImageRef = ref
		if ds[i].ID != 10 {
			spy.files[ref] = data
		}
		ds[i].Lane = 0
	}
	if err := r.AddDefects(ds...); err != nil {
		t.Fatal(err)
	}
	r.SetLength(100)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	for _, rv := range []rollmap.Review{
		{DefectID: 6, Action: rollmap.ActionFalseAlarm, Reviewer: "anna"},
		{DefectID: 7, Action: rollmap.ActionReclassify, Label: "knot", Reviewer: "bo"},
		{DefectID: 2, Action: rollmap.ActionConfirm, Reviewer: "bo"},
	} {
		if _, err := st.AddReview("P", rv); err != nil {
			t.Fatal(err)
		}
	}
	reviewed, err := st.Defects("P", rollmap.Query{})
	if err != nil {
		t.Fatal(err)
	}
	grades, err := rollmap.GradeRoll(g, rollmap.EqualLanes(4, 0, 2000), 100, reviewed)
	if err != nil {
		t.Fatal(err)
	}
	return st, spy, grades
}

func TestReportHTML(t *testing.T) {
	st, spy, grades := reportStore(t)
	var buf bytes.Buffer
	if err := WriteReport(&buf, ReportHTML, st, spy, "P"); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	for _, g := range grades {
		row := fmt.Sprintf(`<tr><td>%s</td><td class="n">%.1f</td><td class="n">%d</td><td class="n">%d</td>`, g.Name, g.WidthMM, g.Defects, g.Points)
		if !strings.Contains(page, row) || !strings.Contains(page[strings.Index(page, row):], "<td>"+g.Grade+"</td>") {
			t.Errorf("no grade row for lane %s (grade %s): %s", g.Name, g.Grade, row)
		}
	}
	if grades[0].Grade == grades[1].Grade && grades[1].Grade == grades[2].Grade {
		t.Logf("grades: %+v", grades)
	}
	for _, want := range []string{
		"<h1>Roll report P</h1>", "fabric-default", "100.0 m",
		">knot</text>", ">Ölfleck</text>", // Pareto bars; knot includes the reclassified defect
		"#11 Ölfleck", "#10 stain", "crop not in the archive", "1 of 6 crops unavailable",
		`<th>False alarms</th><td class="n">1</td>`, `<th>Reviewed</th><td class="n">3</td>`,
		"data:image/png;base64,",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	// The false alarm is not among the worst defects; 5 crops are shown.
	if strings.Contains(page, "#6 hole") {
		t.Error("the false alarm is listed among the worst defects")
	}
	if n := strings.Count(page, "data:image/png;base64,"); n != 5 {
		t.Errorf("%d crops embedded, want 5", n)
	}
	if regexp.MustCompile(`<script`).MatchString(page) {
		t.Error("the report has a script")
	}

	// Without an archive the report says so.
	buf.Reset()
	if err := WriteReport(&buf, ReportHTML, st, nil, "P"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "Crops not shown: no image archive is attached.") {
		t.Error("no note about the missing archive")
	}
}

func TestReportPDF(t *testing.T) {
	pdfCompress = false
	defer func() { pdfCompress = true }()
	st, spy, grades := reportStore(t)
	var buf bytes.Buffer
	if err := WriteReport(&buf, ReportPDF, st, spy, "P"); err != nil {
		t.Fatal(err)
	}
	pdf := buf.String()
	if !strings.HasPrefix(pdf, "%PDF-") || !strings.Contains(pdf, "%%EOF") {
		t.Fatalf("not a PDF: %q", pdf[:min(20, len(pdf))])
	}
	if n := strings.Count(pdf, "/Type /Page\n"); n != 1 {
		t.Errorf("%d pages, want 1", n)
	}
	for _, want := range []string{"(Roll report P)", "(Grade per lane)", "(Worst defects)", "(crop not in the archive)"} {
		if !strings.Contains(pdf, want) {
			t.Errorf("PDF lacks %q", want)
		}
	}
	for _, g := range grades {
		if !strings.Contains(pdf, "("+g.Name+")") || !strings.Contains(pdf, "("+g.Grade+")") {
			t.Errorf("PDF lacks lane %s or its grade %s", g.Name, g.Grade)
		}
	}
	if n := strings.Count(pdf, "/Subtype /Image"); n != 5 {
		t.Errorf("%d images in the PDF, want 5 crops", n)
	}

	if err := WriteReport(&buf, "docx", st, spy, "P"); !errors.Is(err, ErrReportFormat) {
		t.Errorf("format docx: %v", err)
	}
	if err := WriteReport(&buf, ReportPDF, st, spy, "nope"); !errors.Is(err, rollmap.ErrNotFound) {
		t.Errorf("unknown roll: %v", err)
	}
}

func TestReportEndpoints(t *testing.T) {
	st, spy, _ := reportStore(t)
	o := DefaultOptions()
	o.Store, o.Images = st, spy
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	h := s.Handler()
	rec := send(t, h, "GET", "/api/rolls/P/report.pdf", "")
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "application/pdf" ||
		rec.Header().Get("Content-Disposition") != `attachment; filename="roll-P.pdf"` || !bytes.HasPrefix(rec.Body.Bytes(), []byte("%PDF-")) {
		t.Errorf("report.pdf: %d %q %q", rec.Code, rec.Header().Get("Content-Type"), rec.Header().Get("Content-Disposition"))
	}
	rec = send(t, h, "GET", "/api/rolls/P/report.html", "")
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "text/html; charset=utf-8" ||
		!strings.Contains(rec.Header().Get("Content-Security-Policy"), "default-src 'none'") || !strings.Contains(rec.Body.String(), "Roll report P") {
		t.Errorf("report.html: %d %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	wantError(t, h, "GET", "/api/rolls/nope/report.pdf", 404, `roll "nope" not found`)
	wantError(t, h, "GET", "/api/rolls/P/report.html?x=1", 400, "unknown parameter")
	s2, _ := newTestServer(t, nil) // the fake has no summaries
	wantError(t, s2.Handler(), "GET", "/api/rolls/R1/report.pdf", 501, "cannot make reports")
}

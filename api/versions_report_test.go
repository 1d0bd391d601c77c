package api

import (
	"bytes"
	"strings"
	"testing"

	"github.com/webinspect/webinspect/rollmap"
)

// TestReportVersions: the roll report names the recipe and model versions
// that decided the roll's defects, with their counts, in HTML and PDF.
func TestReportVersions(t *testing.T) {
	pdfCompress = false
	defer func() { pdfCompress = true }()
	st, err := rollmap.OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	r, err := st.StartRoll(rollmap.RollMeta{ID: "V", Recipe: "fabric", Material: "fabric", WebWidthMM: 2000, Started: t0})
	if err != nil {
		t.Fatal(err)
	}
	ds := reviewRollDefects()
	for i := range ds {
		ds[i].RecipeVersion, ds[i].ModelVersion = "3f9a2b1c0d4e5f60", "0a1b2c3d4e5f6071"
		if i >= 8 {
			ds[i].ModelVersion = "" // the model was taken off for the rest
		}
	}
	if err := r.AddDefects(ds...); err != nil {
		t.Fatal(err)
	}
	r.SetLength(100)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	want := "recipe 3f9a2b1c0d4e5f60 (11), model 0a1b2c3d4e5f6071 (8), model none: threshold only (3)"
	var buf bytes.Buffer
	if err := WriteReport(&buf, ReportHTML, st, nil, "V"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "<th>Versions</th><td colspan=\"5\">"+want+"</td>") {
		t.Errorf("HTML report does not name the versions %q", want)
	}
	buf.Reset()
	if err := WriteReport(&buf, ReportPDF, st, nil, "V"); err != nil {
		t.Fatal(err)
	}
	pdfText := strings.NewReplacer(`\(`, "(", `\)`, ")").Replace(buf.String())
	if !strings.Contains(pdfText, "(Versions: "+want+")") {
		t.Errorf("PDF report does not name the versions %q", want)
	}
	if n := strings.Count(buf.String(), "/Type /Page\n"); n != 1 {
		t.Errorf("%d pages, want 1", n)
	}
	// A roll written before versions were recorded shows no such row.
	st2, spy, _ := reportStore(t)
	buf.Reset()
	if err := WriteReport(&buf, ReportHTML, st2, spy, "P"); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "<th>Versions</th>") {
		t.Error("a roll without versions shows a Versions row")
	}
}

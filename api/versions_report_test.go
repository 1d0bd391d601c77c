package api

import (
	"bytes"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

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

// TestReviewQueueClassUncertainty: a defect whose learned class is in
// doubt comes before defects barely detected but surely classified: the
// queue ranks by the larger of the two uncertainties.
func TestReviewQueueClassUncertainty(t *testing.T) {
	st, err := rollmap.OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	r, err := st.StartRoll(rollmap.RollMeta{ID: "Q", Recipe: "fabric", WebWidthMM: 2000, Started: t0})
	if err != nil {
		t.Fatal(err)
	}
	ds := reviewRollDefects()
	for i := range ds {
		ds[i].LearnedClass, ds[i].LearnedConfidence = ds[i].Class, 0.99
		if ds[i].ID == 4 { // detected at 5× its threshold (u 0.2), class in doubt
			ds[i].LearnedConfidence = 0.1
		}
	}
	if err := r.AddDefects(ds...); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	o := DefaultOptions()
	o.Store = st
	o.Gatherer = prometheus.NewRegistry()
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	var p queuePage
	sendJSON(t, s.Handler(), "GET", "/api/rolls/Q/review-queue", "", 200, &p)
	// As TestReviewQueue, but 4 (class uncertainty 0.9) moves up behind 7 (0.952).
	want := []int64{7, 4, 2, 5, 8, 6, 11, 10, 3}
	if ids := queueIDs(p); !slices.Equal(ids, want) {
		t.Fatalf("queue %v, want %v", ids, want)
	}
	if u := p.Defects[1].Uncertainty; math.Abs(u-0.9) > 1e-9 {
		t.Errorf("defect 4 uncertainty %v, want 0.9", u)
	}
}

package api

import (
	"net/http"
	"testing"

	"github.com/webinspect/webinspect/rollmap"
)

// realStoreServer serves a real roll map store holding one closed roll of
// 100 m with two lanes, 4-point grading and defects at known positions.
func realStoreServer(t *testing.T) http.Handler {
	t.Helper()
	st, err := rollmap.OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	scheme := rollmap.DefaultGradingScheme()
	roll, err := st.StartRoll(rollmap.RollMeta{
		ID: "R-density", Recipe: "fabric-default", Material: "fabric", WebWidthMM: 1000,
		Lanes:   []rollmap.Lane{{Name: "A", CDStartMM: 0, CDEndMM: 500}, {Name: "B", CDStartMM: 500, CDEndMM: 1000}},
		Grading: &scheme,
	})
	if err != nil {
		t.Fatal(err)
	}
	// Lane A: defects at 5, 5.5 and 42 m; lane B: one at 42.2 m.
	for i, p := range [][2]float64{{5, 100}, {5.5, 200}, {42, 300}, {42.2, 700}} {
		d := rollmap.Defect{ID: int64(i + 1), MDStartM: p[0], MDEndM: p[0] + 0.01, CDStartMM: p[1], CDEndMM: p[1] + 10,
			AreaMM2: 50, Class: "knot", Severity: "major", Decision: rollmap.DecisionMark, Detector: rollmap.DetectorThreshold, Lane: -1}
		if err := roll.AddDefects(d); err != nil {
			t.Fatal(err)
		}
	}
	roll.SetLength(100)
	if err := roll.Close(); err != nil {
		t.Fatal(err)
	}
	o := DefaultOptions()
	o.Store = st
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return s.Handler()
}

func TestDensity(t *testing.T) {
	h := realStoreServer(t)
	var page densityPage
	getJSON(t, h, "GET", "/api/rolls/R-density/density?bin_m=10", http.StatusOK, &page)
	if page.BinM != 10 || len(page.Bins) != 10 {
		t.Fatalf("bin_m %g with %d bins, want 10 bins of 10 m over 100 m", page.BinM, len(page.Bins))
	}
	if page.Bins[0].Defects != 2 || page.Bins[4].Defects != 2 || page.Bins[1].Defects != 0 {
		t.Errorf("bins %+v: want 2 defects in 0-10 m and 2 in 40-50 m", page.Bins)
	}
	getJSON(t, h, "GET", "/api/rolls/R-density/density?bin_m=10&lane=1", http.StatusOK, &page)
	if page.Bins[0].Defects != 0 || page.Bins[4].Defects != 1 {
		t.Errorf("lane B bins %+v: want only the defect at 42.2 m", page.Bins)
	}
	wantError(t, h, "GET", "/api/rolls/R-density/density?bin_m=0", http.StatusBadRequest, "bin_m")
	wantError(t, h, "GET", "/api/rolls/R-density/density?bin_m=0.01&lane=x", http.StatusBadRequest, "lane")
	wantError(t, h, "GET", "/api/rolls/R-density/density?bins=3", http.StatusBadRequest, "unknown parameter")
	wantError(t, h, "GET", "/api/rolls/nope/density", http.StatusNotFound, "not found")
}

func TestSummaryGradesLanes(t *testing.T) {
	h := realStoreServer(t)
	var sum rollmap.Summary
	getJSON(t, h, "GET", "/api/rolls/R-density/summary", http.StatusOK, &sum)
	if sum.Defects != 4 || len(sum.Grades) != 2 {
		t.Fatalf("summary %+v: want 4 defects and a grade per lane", sum)
	}
	for _, g := range sum.Grades {
		if g.Grade == "" {
			t.Errorf("lane grade %+v has no grade", g)
		}
	}
	wantError(t, h, "GET", "/api/rolls/..%2Fx/summary", http.StatusBadRequest, "")
}

func TestAnalyticsNeedCapableStore(t *testing.T) {
	s, _ := newTestServer(t, nil) // the fake store has no Density or Summary
	wantError(t, s.Handler(), "GET", "/api/rolls/R1/density", http.StatusNotImplemented, "densities")
	wantError(t, s.Handler(), "GET", "/api/rolls/R1/summary", http.StatusNotImplemented, "summarise")
}

func TestDefectsMarkStatusFilter(t *testing.T) {
	h := realStoreServer(t)
	var page defectPage
	getJSON(t, h, "GET", "/api/rolls/R-density/defects?mark_status=none", http.StatusOK, &page)
	if len(page.Defects) != 4 {
		t.Errorf("mark_status=none: %d defects, want all 4 (no marks recorded)", len(page.Defects))
	}
	getJSON(t, h, "GET", "/api/rolls/R-density/defects?mark_status=fired", http.StatusOK, &page)
	if len(page.Defects) != 0 {
		t.Errorf("mark_status=fired: %d defects, want none", len(page.Defects))
	}
	wantError(t, h, "GET", "/api/rolls/R-density/defects?mark_status=inked", http.StatusBadRequest, "mark_status")
}

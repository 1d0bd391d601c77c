package api

import (
	"math"
	"net/http"
	"strings"
	"testing"
)

// Every API endpoint refuses unknown query parameters with 400 naming
// them, as the README says (issue 14 #11); before, most endpoints ignored
// them.
func TestUnknownQueryParametersRefused(t *testing.T) {
	s, _ := newStoreServer(t, false, nil)
	h := s.Handler()
	for _, target := range []string{
		"/api/status?verbose=1",
		"/api/rolls?limit=5",
		"/api/rolls/R?fields=all",
		"/api/rolls/R/summary?lane=1",
		"/api/rolls/R/defects/1?x=1",
		"/api/rolls/R/review-stats?x=1",
		"/api/rolls/R/report.html?x=1",
		"/api/rolls/R/defects?limt=5",
		"/api/rolls/R/grid?lane=1",
		"/api/rolls/R/density?bins=3",
		"/api/rolls/R/review-queue?sort=u",
		"/api/images/" + strings.Repeat("a", 64) + ".png?w=10",
	} {
		wantError(t, h, "GET", target, http.StatusBadRequest, "unknown parameter")
	}
	for _, target := range []string{
		"/api/rolls/R/defects/1/review?x=1",
		"/api/line/roll/start?x=1",
		"/api/line/roll/end?x=1",
		"/api/line/splice?x=1",
		"/api/session?x=1",
	} {
		sendError(t, h, "POST", target, `{}`, http.StatusBadRequest, "unknown parameter", "Origin", "http://127.0.0.1:8080")
	}
	// Without parameters the same endpoints answer.
	for _, target := range []string{"/api/rolls", "/api/rolls/R", "/api/rolls/R/summary", "/api/rolls/R/defects/1"} {
		if rec := do(t, h, "GET", target); rec.Code != http.StatusOK {
			t.Errorf("GET %s: %d %s", target, rec.Code, rec.Body)
		}
	}
}

// decision=bogus returned an empty list; it is a 400 naming the allowed
// decisions (issue 14 #11), on the defects and the grid endpoints.
func TestBadFilterValuesRefused(t *testing.T) {
	s, _ := newStoreServer(t, false, nil)
	h := s.Handler()
	for _, target := range []string{
		"/api/rolls/R/defects?decision=bogus",
		"/api/rolls/R/defects?decision=Mark",
		"/api/rolls/R/defects?decision=",
		"/api/rolls/R/grid?decision=bogus",
	} {
		wantError(t, h, "GET", target, http.StatusBadRequest, "is not a decision: must be one of")
	}
	for _, target := range []string{
		"/api/rolls/R/defects?class=" + strings.Repeat("c", 65),
		"/api/rolls/R/defects?class=a%00b",
		"/api/rolls/R/grid?class=a%E2%80%AEb",
	} {
		wantError(t, h, "GET", target, http.StatusBadRequest, "class")
	}
	for _, target := range []string{"/api/rolls/R/defects?decision=mark", "/api/rolls/R/grid?decision=review&class=hole"} {
		if rec := do(t, h, "GET", target); rec.Code != http.StatusOK {
			t.Errorf("GET %s: %d %s", target, rec.Code, rec.Body)
		}
	}
}

// FuzzDefectQuery: the defects endpoint's query parser never panics, and
// what it accepts is in range.
func FuzzDefectQuery(f *testing.F) {
	for _, s := range []string{"", "after=3&limit=10", "md_from=1.5&md_to=2", "decision=mark&class=hole",
		"review_status=confirmed&mark_status=fired", "limit=0", "x=1", "a=%zz", "md_to=0", "decision=bogus"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := parseDefectQuery(raw)
		if err != nil {
			return
		}
		if q.Limit < 1 || q.Limit > MaxDefectLimit || q.AfterID < 0 || q.MDFromM < 0 || math.IsNaN(q.MDFromM) {
			t.Fatalf("%q accepted as %+v", raw, q)
		}
		if q.MDToM != 0 && q.MDToM < q.MDFromM {
			t.Fatalf("%q accepted with md_to %v < md_from %v", raw, q.MDToM, q.MDFromM)
		}
		if q.Decision != "" && checkDecision(string(q.Decision)) != nil {
			t.Fatalf("%q accepted decision %q", raw, q.Decision)
		}
	})
}

// FuzzGridQuery: the grid endpoint's query parser never panics, and what
// it accepts is in range.
func FuzzGridQuery(f *testing.F) {
	for _, s := range []string{"", "md_from=0&md_to=10&md_bins=100&cd_bins=20", "decision=review", "md_bins=0", "class=hole&review_status=none"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		g, err := parseGridQuery(raw)
		if err != nil {
			return
		}
		if g.mdBins < 1 || g.mdBins > MaxGridMDBins || g.cdBins < 1 || g.cdBins > MaxGridCDBins || g.from < 0 {
			t.Fatalf("%q accepted as %+v", raw, g)
		}
		if g.hasTo && g.to <= g.from {
			t.Fatalf("%q accepted with md_to %v <= md_from %v", raw, g.to, g.from)
		}
	})
}

// FuzzStrictQuery: a parameter list is accepted only when every name is
// known and given once.
func FuzzStrictQuery(f *testing.F) {
	f.Add("a=1&b=2")
	f.Add("a=1&a=2")
	f.Add(";x")
	f.Fuzz(func(t *testing.T, raw string) {
		vals, err := strictQuery(raw, "a", "b")
		if err != nil {
			return
		}
		for k := range vals {
			if k != "a" && k != "b" {
				t.Fatalf("%q: accepted parameter %q", raw, k)
			}
		}
	})
}

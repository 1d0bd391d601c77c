package api

// API tests of issue 15: counts from the roll map with their scope (#2,
// #4), public error messages, parameters no data can match, rounding (#8).

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/webinspect/webinspect/engine/status"
	"github.com/webinspect/webinspect/rollmap"
)

// storeServer serves st with the engine status stf (nil: none).
func storeServer(t *testing.T, st *rollmap.Store, stf func() status.Status) *Server {
	t.Helper()
	o := DefaultOptions()
	o.Store, o.Status, o.Gatherer = st, stf, prometheus.NewRegistry()
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// resumedRoll writes the open roll "R-res" as an engine left it before it
// was killed: 29 defects, 1.28 m uninspected over two ranges.
func resumedRoll(t *testing.T, st *rollmap.Store) *rollmap.Roll {
	t.Helper()
	r, err := st.StartRoll(rollmap.RollMeta{ID: "R-res", Recipe: "fabric-default", Material: "fabric", Source: "sim", WebWidthMM: 2000, Started: t0})
	if err != nil {
		t.Fatal(err)
	}
	r.SetLength(120)
	classes := []string{"hole", "slub", "stain"}
	for i := range 29 {
		md := float64(i) * 4
		if err := r.AddDefects(rollmap.Defect{ID: int64(i + 1), MDStartM: md, MDEndM: md + 0.01, CDStartMM: 10, CDEndMM: 20, AreaMM2: 5,
			PeakScore: 40, Class: classes[i%3], Severity: "minor", Decision: "mark", Detector: "threshold", Lane: -1, Time: t0}); err != nil {
			t.Fatal(err)
		}
	}
	for _, u := range [][2]float64{{10.1, 10.42}, {50.5, 51.46}} {
		if err := r.AddUninspected(rollmap.Uninspected{MDStartM: u[0], MDEndM: u[1], Camera: -1, Lines: 100, Reason: rollmap.ReasonDropped}); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Flush(); err != nil {
		t.Fatal(err)
	}
	return r
}

// TestStatusCountsFromRollMap (issue 15 #2, #4): after a restart that
// resumed a roll, the engine's counters start again at 0, but /api/status
// gives the roll map's counts, the same as /api/rolls/{id}, names the
// scope of each figure, and follows defects added later.
func TestStatusCountsFromRollMap(t *testing.T) {
	st := openStore(t)
	r := resumedRoll(t, st)
	engine := func() status.Status { // the restarted engine's own counters
		return status.Status{State: "running", RollID: "R-res", MDM: 120.00000000000003, LinesIn: 5000, BlocksDropped: 29,
			UninspectedM: 1.856, Defects: 4, DefectsByClass: map[string]int64{"hole": 4}, Started: t0.Add(time.Hour)}
	}
	s := storeServer(t, st, engine)
	var ls LiveStatus
	getJSON(t, s.Handler(), "GET", "/api/status", 200, &ls)
	var roll rollDetail
	getJSON(t, s.Handler(), "GET", "/api/rolls/R-res", 200, &roll)
	if ls.Defects != 29 || ls.Defects != roll.Defects {
		t.Errorf("status defects %d, roll %d: want both 29 (the roll map's)", ls.Defects, roll.Defects)
	}
	if want := map[string]int64{"hole": 10, "slub": 10, "stain": 9}; !mapsEqual(ls.DefectsByClass, want) {
		t.Errorf("status defects_by_class %v, want %v", ls.DefectsByClass, want)
	}
	if ls.UninspectedM != roll.UninspectedM || ls.UninspectedM != 1.28 {
		t.Errorf("status uninspected_m %v, roll %v: want both 1.28", ls.UninspectedM, roll.UninspectedM)
	}
	if ls.MDM != 120 {
		t.Errorf("md_m %v, want 120 (rounded to the mm)", ls.MDM)
	}
	if ls.CountsFrom != "rollmap" || !strings.Contains(strings.Join(ls.Scope.Engine, ","), "blocks_dropped") ||
		!strings.Contains(strings.Join(ls.Scope.Roll, ","), "uninspected_m") {
		t.Errorf("counts_from %q, scope %+v: want rollmap, blocks_dropped counted since the engine started, uninspected_m of the roll", ls.CountsFrom, ls.Scope)
	}
	// New defects are counted on the next status.
	if err := r.AddDefects(rollmap.Defect{ID: 30, MDStartM: 119, MDEndM: 119.01, CDStartMM: 10, CDEndMM: 20, AreaMM2: 5, PeakScore: 40,
		Class: "gel", Severity: "minor", Decision: "mark", Detector: "threshold", Lane: -1, Time: t0}); err != nil {
		t.Fatal(err)
	}
	getJSON(t, s.Handler(), "GET", "/api/status", 200, &ls)
	if ls.Defects != 30 || ls.DefectsByClass["gel"] != 1 {
		t.Errorf("after one more defect: %d defects, %v", ls.Defects, ls.DefectsByClass)
	}
}

func mapsEqual(a, b map[string]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestAPIPolish (issue 15 #8): errors without internal prefixes; a
// decision or lane no defect can have is a 400, not an empty answer;
// lengths rounded to the millimetre.
func TestAPIPolish(t *testing.T) {
	st := openStore(t)
	resumedRoll(t, st)
	r, err := st.StartRoll(rollmap.RollMeta{ID: "R-f", Recipe: "x", Material: "fabric", Source: "sim", WebWidthMM: 2000, Started: t0})
	if err != nil {
		t.Fatal(err)
	}
	r.SetLength(1.2799999999999727)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	s := storeServer(t, st, nil)
	h := s.Handler()

	// A review the store refuses: the message is the rule, not the wrapping.
	req := httptest.NewRequest("POST", "/api/rolls/R-res/defects/1/review", strings.NewReader(`{"action":"reclassify","reviewer":"anna"}`))
	req.Host = "127.0.0.1:8080"
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusBadRequest {
		t.Fatalf("reclassify without a label: %d %s, want 400", rec.Code, rec.Body)
	}
	for _, leak := range []string{"rollmap:", "roll R-res:", "invalid argument"} {
		if strings.Contains(rec.Body.String(), leak) {
			t.Errorf("error %s leaks the internal %q", strings.TrimSpace(rec.Body.String()), leak)
		}
	}
	if got := publicMessage(`id: rollmap: roll R1: invalid argument: lane 9 out of range`); got != "id: lane 9 out of range" {
		t.Errorf("publicMessage = %q", got)
	}

	wantError(t, h, "GET", "/api/rolls/R-res/defects?decision=maybe", 400, `decision: "maybe" is not a decision`)
	wantError(t, h, "GET", "/api/rolls/R-res/grid?decision=maybe", 400, `decision: "maybe" is not a decision`)
	wantError(t, h, "GET", "/api/rolls/R-res/density?lane=7", 400, `lane: 7: roll "R-res" has 0 lanes`)
	getJSON(t, h, "GET", "/api/rolls/R-res/density?lane=-1", 200, new(densityPage))
	getJSON(t, h, "GET", "/api/rolls/R-res/defects?decision=mark&limit=1", 200, new(defectPage))

	rec = do(t, h, "GET", "/api/rolls/R-f")
	if !bytes.Contains(rec.Body.Bytes(), []byte(`"length_m":1.28,`)) {
		t.Errorf("GET /api/rolls/R-f: %s, want length_m 1.28", rec.Body)
	}
	rec = do(t, h, "GET", "/api/rolls")
	if bytes.Contains(rec.Body.Bytes(), []byte(`99999`)) {
		t.Errorf("GET /api/rolls: %s, float noise not rounded", rec.Body)
	}
}

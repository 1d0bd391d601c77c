package api

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/webinspect/webinspect/rollmap"
)

const testToken = "s3cret-token-0123456789"

// reviewRollDefects are the defects of roll "R" of newStoreServer: the
// decisions, detectors and peak scores the review queue ranks.
func reviewRollDefects() []rollmap.Defect {
	mk := func(id int64, md float64, class, sev string, decision rollmap.Decision, detector rollmap.Detector, peak float64) rollmap.Defect {
		return rollmap.Defect{ID: id, MDStartM: md, MDEndM: md + 0.02, CDStartMM: 100 + float64(id)*37, CDEndMM: 110 + float64(id)*37,
			AreaMM2: float64(id) * 3, PeakScore: peak, MeanScore: peak / 2, Contrast: -peak, Polarity: "dark",
			Class: class, Severity: sev, Decision: decision, Detector: detector, Camera: 0,
			Time: t0.Add(time.Duration(id) * time.Second), EncoderCount: id * 1000}
	}
	return []rollmap.Defect{
		mk(1, 1, "knot", "minor", rollmap.DecisionPass, rollmap.DetectorThreshold, 20),         // threshold's weakest: 20
		mk(2, 5, "stain", "major", rollmap.DecisionReview, rollmap.DetectorThreshold, 25),      // u = 0.8
		mk(3, 9, "hole", "critical", rollmap.DecisionMark, rollmap.DetectorThreshold, 80),      // u = 0.25
		mk(4, 12, "stain", "major", rollmap.DecisionReview, rollmap.DetectorThreshold, 100),    // u = 0.2
		mk(5, 20, "streak", "major", rollmap.DecisionReview, rollmap.ModelDetector("m"), 0.9),  // onnx weakest 0.6: u = 0.667
		mk(6, 30, "hole", "critical", rollmap.DecisionMark, rollmap.DetectorThreshold, 22),     // u = 0.909
		mk(7, 40, "slub", "major", rollmap.DecisionReview, rollmap.DetectorThreshold, 21),      // u = 0.952
		mk(8, 50, "crease", "critical", rollmap.DecisionMark, rollmap.ModelDetector("m"), 0.6), // u = 1
		mk(9, 60, "knot", "minor", rollmap.DecisionPass, rollmap.DetectorThreshold, 60),        // not in the queue
		mk(10, 70, "stain", "critical", rollmap.DecisionMark, rollmap.DetectorThreshold, 40),   // u = 0.5
		mk(11, 75, "Ölfleck", "critical", rollmap.DecisionMark, rollmap.DetectorThreshold, 30), // u = 0.667
	}
}

// newStoreServer returns a server over a real store with roll "R" (100 m,
// 2000 mm, four lanes graded 4-point, the defects of reviewRollDefects),
// closed unless open is set.
func newStoreServer(t *testing.T, open bool, mutate func(*Options)) (*Server, *rollmap.Store) {
	t.Helper()
	st, err := rollmap.OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	g := rollmap.DefaultGradingScheme()
	r, err := st.StartRoll(rollmap.RollMeta{ID: "R", Recipe: "fabric-default", Material: "fabric", Source: "sim",
		WebWidthMM: 2000, Started: t0, Lanes: rollmap.EqualLanes(4, 0, 2000), Grading: &g})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.AddDefects(reviewRollDefects()...); err != nil {
		t.Fatal(err)
	}
	r.SetLength(100)
	if err := r.AddMarkEvents(rollmap.MarkEvent{DefectID: 3, MarkID: 1, Head: "H1", Status: rollmap.MarkScheduled, TargetCount: 5000},
		rollmap.MarkEvent{DefectID: 3, MarkID: 1, Head: "H1", Status: rollmap.MarkFired, FireCount: 5001}); err != nil {
		t.Fatal(err)
	}
	if open {
		t.Cleanup(func() { r.Close() })
	} else if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	o := DefaultOptions()
	o.Store = st
	o.Gatherer = prometheus.NewRegistry()
	if mutate != nil {
		mutate(&o)
	}
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return s, st
}

// send serves one request with a body and headers and returns the
// recorder.
func send(t *testing.T, h http.Handler, method, target, body string, hdr ...string) *httptest.ResponseRecorder {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, target, rd)
	req.Host = "127.0.0.1:8080" // a loopback server, as the defaults say
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i] == "Host" {
			req.Host = hdr[i+1]
			continue
		}
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Header().Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("%s %s: no nosniff header", method, target)
	}
	return rec
}

// sendJSON is send that checks the status and decodes a JSON answer.
func sendJSON(t *testing.T, h http.Handler, method, target, body string, code int, v any, hdr ...string) {
	t.Helper()
	rec := send(t, h, method, target, body, hdr...)
	if rec.Code != code {
		t.Fatalf("%s %s: status %d, want %d; body %s", method, target, rec.Code, code, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("%s %s: Content-Type %q", method, target, ct)
	}
	if v != nil {
		dec := json.NewDecoder(bytes.NewReader(rec.Body.Bytes()))
		if err := dec.Decode(v); err != nil {
			t.Fatalf("%s %s: %v: %s", method, target, err, rec.Body)
		}
	}
}

// sendError checks an error answer: its status and that the message
// holds msg.
func sendError(t *testing.T, h http.Handler, method, target, body string, code int, msg string, hdr ...string) {
	t.Helper()
	var e errorBody
	sendJSON(t, h, method, target, body, code, &e, hdr...)
	if !strings.Contains(e.Error, msg) {
		t.Errorf("%s %s: error %q, want it to contain %q", method, target, e.Error, msg)
	}
}

package api

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/webinspect/webinspect/rollmap"
)

func queueIDs(p queuePage) []int64 {
	ids := make([]int64, len(p.Defects))
	for i, d := range p.Defects {
		ids[i] = d.ID
	}
	return ids
}

func TestReviewEndpoint(t *testing.T) {
	for _, open := range []bool{false, true} {
		t.Run(fmt.Sprintf("open=%v", open), func(t *testing.T) {
			hub := NewHub()
			s, _ := newStoreServer(t, open, func(o *Options) { o.Events = hub })
			h := s.Handler()

			var rep reviewReply
			sendJSON(t, h, "POST", "/api/rolls/R/defects/2/review", `{"action":"confirm","reviewer":"anna"}`, 200, &rep)
			if rep.Defect.ID != 2 || rep.Defect.ReviewStatus != "confirmed" || rep.Defect.ReviewLabel != "stain" ||
				rep.Review.Action != "confirm" || rep.Review.Label != "stain" || rep.Review.Reviewer != "anna" ||
				rep.Review.RollID != "R" || rep.Review.Time.IsZero() {
				t.Errorf("confirm: %+v", rep)
			}
			sendJSON(t, h, "POST", "/api/rolls/R/defects/3/review", `{"action":"reclassify","label":"knot","reviewer":"bo"}`, 200, &rep)
			sendJSON(t, h, "POST", "/api/rolls/R/defects/3/review", `{"action":"false_alarm","reviewer":"carl"}`, 200, &rep)
			if rep.Defect.ReviewStatus != "false_alarm" || rep.Defect.ReviewLabel != "" {
				t.Errorf("second review of 3: %+v", rep.Defect)
			}

			// The detail has the history and the mark events.
			var det defectDetail
			sendJSON(t, h, "GET", "/api/rolls/R/defects/3", "", 200, &det)
			if det.Defect.ReviewStatus != "false_alarm" || len(det.Reviews) != 2 || det.Reviews[0].Label != "knot" ||
				det.Reviews[1].Reviewer != "carl" || len(det.Marks) != 2 || det.Marks[1].Status != "fired" {
				t.Errorf("detail of 3: %+v", det)
			}
			if det.Defect.Mark.Status != "fired" {
				t.Errorf("detail of 3: mark %+v", det.Defect.Mark)
			}
			sendJSON(t, h, "GET", "/api/rolls/R/defects/4", "", 200, &det)
			if det.Reviews == nil || len(det.Reviews) != 0 || det.Marks == nil {
				t.Errorf("detail of 4: reviews %v marks %v, want [] []", det.Reviews, det.Marks)
			}

			// Filters see the reviews.
			var page defectPage
			sendJSON(t, h, "GET", "/api/rolls/R/defects?review_status=false_alarm", "", 200, &page)
			if len(page.Defects) != 1 || page.Defects[0].ID != 3 {
				t.Errorf("review_status=false_alarm: %d defects", len(page.Defects))
			}
			sendJSON(t, h, "GET", "/api/rolls/R/defects?review_status=none", "", 200, &page)
			if len(page.Defects) != 9 {
				t.Errorf("review_status=none: %d defects, want 9", len(page.Defects))
			}

			// Each review was published.
			if got := hub.LastID(); got != 3 {
				t.Errorf("hub: %d events, want 3 review events", got)
			}
			_, replay, _, _ := hub.subscribe(0, true)
			if len(replay) != 3 || replay[0].Kind != EventReview || !strings.Contains(string(replay[2].Data), `"reviewer":"carl"`) {
				t.Errorf("review events: %d, first %+v", len(replay), replay[0])
			}

			// Refused reviews.
			for _, c := range []struct {
				target, body string
				code         int
				msg          string
			}{
				{"/api/rolls/R/defects/2/review", `{"action":"approve","reviewer":"a"}`, 400, `action "approve", want confirm, false_alarm or reclassify`},
				{"/api/rolls/R/defects/2/review", `{"action":"reclassify","reviewer":"a"}`, 400, "label is empty"},
				{"/api/rolls/R/defects/2/review", `{"action":"confirm"}`, 400, "reviewer is empty"},
				{"/api/rolls/R/defects/2/review", `{"action":"confirm","reviewer":"a","label":"hole"}`, 400, "use reclassify"},
				{"/api/rolls/R/defects/99/review", `{"action":"confirm","reviewer":"a"}`, 404, `roll "R" has no defect 99`},
				{"/api/rolls/Q/defects/1/review", `{"action":"confirm","reviewer":"a"}`, 404, `roll "Q" not found`},
				{"/api/rolls/R/defects/0/review", `{"action":"confirm","reviewer":"a"}`, 400, `defect ID "0"`},
				{"/api/rolls/R/defects/x/review", `{"action":"confirm","reviewer":"a"}`, 400, `defect ID "x"`},
				{"/api/rolls/R/defects/2/review", ``, 400, "body is empty"},
			} {
				sendError(t, h, "POST", c.target, c.body, c.code, c.msg)
			}
			sendError(t, h, "GET", "/api/rolls/R/defects/99", "", 404, "no defect 99")
			sendError(t, h, "GET", "/api/rolls/nope/defects/1", "", 404, `roll "nope" not found`)
			if got := hub.LastID(); got != 3 {
				t.Errorf("refused reviews published events: %d", got)
			}
		})
	}
}

func TestReviewQueue(t *testing.T) {
	s, _ := newStoreServer(t, false, nil)
	h := s.Handler()
	var p queuePage
	sendJSON(t, h, "GET", "/api/rolls/R/review-queue", "", 200, &p)
	// Review before mark; within each, the most uncertain first
	// (threshold / peak, thresholds from the weakest detection of each
	// detector: 20 for threshold, 0.6 for onnx:m).
	want := []int64{7, 2, 5, 4, 8, 6, 11, 10, 3}
	if ids := queueIDs(p); !slices.Equal(ids, want) || p.Pending != 9 || *p.Next != 9 {
		t.Fatalf("queue %v pending %d, want %v and 9", ids, p.Pending, want)
	}
	wantU := map[int64]float64{7: 20.0 / 21, 2: 0.8, 5: 0.6 / 0.9, 4: 0.2, 8: 1, 6: 20.0 / 22, 11: 20.0 / 30, 10: 0.5, 3: 0.25}
	for i, it := range p.Defects {
		if math.Abs(it.Uncertainty-wantU[it.ID]) > 1e-12 || it.Rank != i+1 {
			t.Errorf("defect %d: uncertainty %v rank %d, want %v and %d", it.ID, it.Uncertainty, it.Rank, wantU[it.ID], i+1)
		}
	}

	// Paging by rank; a review in between does not shift the ranks.
	sendJSON(t, h, "GET", "/api/rolls/R/review-queue?limit=3", "", 200, &p)
	if ids := queueIDs(p); !slices.Equal(ids, want[:3]) || *p.Next != 3 {
		t.Fatalf("first page %v next %v", ids, *p.Next)
	}
	sendJSON(t, h, "POST", "/api/rolls/R/defects/7/review", `{"action":"confirm","reviewer":"a"}`, 200, nil)
	sendJSON(t, h, "POST", "/api/rolls/R/defects/4/review", `{"action":"false_alarm","reviewer":"a"}`, 200, nil)
	sendJSON(t, h, "GET", "/api/rolls/R/review-queue?limit=3&after_rank=3", "", 200, &p)
	if ids := queueIDs(p); !slices.Equal(ids, []int64{8, 6, 11}) || *p.Next != 7 || p.Pending != 7 {
		t.Errorf("second page %v next %d pending %d, want [8 6 11] 7 7", ids, *p.Next, p.Pending)
	}
	sendJSON(t, h, "GET", "/api/rolls/R/review-queue?after_rank=9", "", 200, &p)
	if len(p.Defects) != 0 || p.Next != nil {
		t.Errorf("past the end: %v next %v", queueIDs(p), p.Next)
	}

	// A configured threshold replaces the weakest detection.
	s2, _ := newStoreServer(t, false, func(o *Options) { o.DetectionThresholds = map[rollmap.Detector]float64{rollmap.DetectorThreshold: 10} })
	sendJSON(t, s2.Handler(), "GET", "/api/rolls/R/review-queue", "", 200, &p)
	if ids := queueIDs(p); !slices.Equal(ids, []int64{5, 7, 2, 4, 8, 6, 11, 10, 3}) {
		t.Errorf("configured threshold: queue %v", ids)
	}
	if it := p.Defects[1]; it.Threshold != 10 || math.Abs(it.Uncertainty-10.0/21) > 1e-12 {
		t.Errorf("configured threshold: defect %d threshold %v uncertainty %v", it.ID, it.Threshold, it.Uncertainty)
	}

	for _, c := range []struct{ q, msg string }{
		{"limit=0", "limit: must be an integer 1..1000"},
		{"after_rank=-1", "after_rank: must be an integer >= 0"},
		{"sort=x", `unknown parameter "sort"`},
		{"limit=1&limit=2", "limit: given 2 times"},
	} {
		sendError(t, h, "GET", "/api/rolls/R/review-queue?"+c.q, "", 400, c.msg)
	}
	sendError(t, h, "GET", "/api/rolls/Q/review-queue", "", 404, "not found")
}

func TestReviewStats(t *testing.T) {
	s, _ := newStoreServer(t, false, nil)
	h := s.Handler()
	var st ReviewStats
	sendJSON(t, h, "GET", "/api/rolls/R/review-stats", "", 200, &st)
	if st.Reviewed != 0 || st.Pending != 9 || st.NeedReview != 9 || st.TrueDetectionRate != nil || st.FalseRejectRate != nil ||
		st.ReviewLoadPer100M == nil || *st.ReviewLoadPer100M != 9 {
		t.Errorf("before reviews: %+v", st)
	}
	for _, b := range []struct {
		did  int
		body string
	}{
		{2, `{"action":"confirm","reviewer":"anna"}`},
		{6, `{"action":"false_alarm","reviewer":"anna"}`},
		{7, `{"action":"reclassify","label":"knot","reviewer":"bo"}`},
		{1, `{"action":"false_alarm","reviewer":"bo"}`}, // a passed defect
		{7, `{"action":"reclassify","label":"slub2","reviewer":"bo"}`},
	} {
		sendJSON(t, h, "POST", fmt.Sprintf("/api/rolls/R/defects/%d/review", b.did), b.body, 200, nil)
	}
	sendJSON(t, h, "GET", "/api/rolls/R/review-stats", "", 200, &st)
	if st.Defects != 11 || st.Reviewed != 4 || st.Confirmed != 1 || st.FalseAlarm != 2 || st.Reclassified != 1 ||
		st.Pending != 6 || st.Reviews != 5 || st.ByReviewer["bo"] != 3 {
		t.Errorf("counts: %+v", st)
	}
	// (1 confirmed + 1 reclassified) / 4 reviewed; 1 false alarm among the
	// 3 reviewed defects the engine marked or held; 9 need review in 100 m.
	if *st.TrueDetectionRate != 0.5 || math.Abs(*st.FalseRejectRate-1.0/3) > 1e-12 || *st.ReviewLoadPer100M != 9 {
		t.Errorf("rates: true detection %v, false reject %v, load %v", *st.TrueDetectionRate, *st.FalseRejectRate, *st.ReviewLoadPer100M)
	}
	sendError(t, h, "GET", "/api/rolls/R/review-stats?x=1", "", 400, "takes none")
}

// TestReviewNeedsReviewStore: a store without reviews answers 501 for
// changes, and the reads still work.
func TestReviewNeedsReviewStore(t *testing.T) {
	s, _ := newTestServer(t, nil)
	h := s.Handler()
	sendError(t, h, "POST", "/api/rolls/R1/defects/2/review", `{"action":"confirm","reviewer":"a"}`, 501, "cannot record reviews")
	var det defectDetail
	sendJSON(t, h, "GET", "/api/rolls/R1/defects/2", "", 200, &det)
	if det.Defect.ID != 2 {
		t.Errorf("detail: %+v", det.Defect)
	}
	var st ReviewStats
	sendJSON(t, h, "GET", "/api/rolls/R1/review-stats", "", 200, &st)
	if st.Defects != 25 || st.NeedReview != 12 {
		t.Errorf("stats over the fake: %+v", st)
	}
}

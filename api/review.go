package api

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/webinspect/webinspect/rollmap"
)

// ReviewStore is implemented by stores that record reviews;
// *rollmap.Store does. AddReview errors wrap rollmap.ErrInvalid for a
// review that breaks a rule, rollmap.ErrNoDefect for an unknown defect and
// rollmap.ErrNotFound for an unknown roll.
type ReviewStore interface {
	AddReview(id string, r rollmap.Review) (rollmap.Defect, error)
	Reviews(id string) ([]rollmap.Review, error)
}

// MarkStore is implemented by stores that keep mark events (the defect
// detail lists them); *rollmap.Store does.
type MarkStore interface {
	MarkEvents(id string) ([]rollmap.MarkEvent, error)
}

var (
	_ ReviewStore = (*rollmap.Store)(nil)
	_ MarkStore   = (*rollmap.Store)(nil)
)

// Limits of the review queue's limit parameter.
const (
	DefaultQueueLimit = 50
	MaxQueueLimit     = 1000
)

func (s *Server) reviewStore(w http.ResponseWriter) (ReviewStore, bool) {
	rs, ok := s.opts.Store.(ReviewStore)
	if !ok {
		s.writeError(w, http.StatusNotImplemented, "this roll store cannot record reviews")
	}
	return rs, ok
}

// defectIDParam parses the {did} path value.
func defectIDParam(r *http.Request) (int64, error) {
	v := r.PathValue("did")
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("defect ID %q: want an integer >= 1", v)
	}
	return n, nil
}

// oneDefect returns defect did of roll id, or answers 404/400/500.
func (s *Server) oneDefect(w http.ResponseWriter, r *http.Request, id string, did int64) (rollmap.Defect, bool) {
	ds, err := s.opts.Store.Defects(id, rollmap.Query{AfterID: did - 1, Limit: 1})
	if err != nil && (len(ds) == 0 || ds[0].ID != did) {
		s.storeError(w, r, id, err)
		return rollmap.Defect{}, false
	}
	if len(ds) == 0 || ds[0].ID != did {
		s.writeError(w, http.StatusNotFound, fmt.Sprintf("roll %q has no defect %d", id, did))
		return rollmap.Defect{}, false
	}
	return ds[0], true
}

// reviewBody is the body of POST /api/rolls/{id}/defects/{did}/review.
type reviewBody struct {
	Action   string `json:"action"`
	Label    string `json:"label"`
	Reviewer string `json:"reviewer"`
}

type reviewReply struct {
	Defect rollmap.Defect `json:"defect"`
	Review rollmap.Review `json:"review"`
}

// handleReview serves POST /api/rolls/{id}/defects/{did}/review.
func (s *Server) handleReview(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	did, err := defectIDParam(r)
	if err != nil {
		s.writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	var b reviewBody
	if !s.decodeBody(w, r, &b, false) {
		return
	}
	rs, ok := s.reviewStore(w)
	if !ok {
		return
	}
	rv := rollmap.Review{DefectID: did, Action: b.Action, Label: b.Label, Reviewer: b.Reviewer,
		Time: time.Now().UTC().Truncate(time.Microsecond)}
	d, err := rs.AddReview(id, rv)
	switch {
	case errors.Is(err, rollmap.ErrInvalid):
		s.writeError(w, http.StatusBadRequest, err.Error())
		return
	case errors.Is(err, rollmap.ErrNoDefect):
		s.writeError(w, http.StatusNotFound, fmt.Sprintf("roll %q has no defect %d", id, did))
		return
	case errors.Is(err, rollmap.ErrNotDurable):
		// The defect could not be written to disk yet (a full disk, say):
		// nothing was recorded; the review can be sent again.
		s.log.Error().Err(err).Str("roll", id).Int64("defect", did).Msg("review refused: defect not durable")
		w.Header().Set("Retry-After", "5")
		s.writeError(w, http.StatusServiceUnavailable, fmt.Sprintf("defect %d of roll %q is not on disk yet and could not be written; nothing was recorded: try again", did, id))
		return
	case err != nil:
		s.storeError(w, r, id, err)
		return
	}
	rv.RollID, rv.Label = id, d.ReviewLabel
	if s.opts.Events != nil {
		s.opts.Events.Publish(EventReview, ReviewEvent{Review: rv, Defect: d})
	}
	s.log.Info().Str("roll", id).Int64("defect", did).Str("action", rv.Action).
		Str("label", rv.Label).Str("reviewer", rv.Reviewer).Msg("defect reviewed")
	s.writeJSON(w, http.StatusOK, reviewReply{Defect: d, Review: rv})
}

type defectDetail struct {
	Defect  rollmap.Defect      `json:"defect"`
	Reviews []rollmap.Review    `json:"reviews"`
	Marks   []rollmap.MarkEvent `json:"marks"`
}

// handleDefect serves GET /api/rolls/{id}/defects/{did}.
func (s *Server) handleDefect(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	did, err := defectIDParam(r)
	if err != nil {
		s.writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	d, ok := s.oneDefect(w, r, id, did)
	if !ok {
		return
	}
	out := defectDetail{Defect: d, Reviews: []rollmap.Review{}, Marks: []rollmap.MarkEvent{}}
	if rs, ok := s.opts.Store.(ReviewStore); ok {
		revs, err := rs.Reviews(id)
		if err != nil && len(revs) == 0 {
			s.storeError(w, r, id, err)
			return
		}
		for _, rv := range revs {
			if rv.DefectID == did {
				out.Reviews = append(out.Reviews, rv)
			}
		}
	}
	if ms, ok := s.opts.Store.(MarkStore); ok {
		evs, err := ms.MarkEvents(id)
		if err != nil && len(evs) == 0 {
			s.storeError(w, r, id, err)
			return
		}
		for _, e := range evs {
			if e.DefectID == did {
				out.Marks = append(out.Marks, e)
			}
		}
	}
	s.writeJSON(w, http.StatusOK, out)
}

// DefectScanner is implemented by stores that can visit a roll's defects
// without copying them (the grid, the review queue and the statistics
// aggregate whole rolls); *rollmap.Store does. d is valid only during fn.
type DefectScanner interface {
	EachDefect(id string, q rollmap.Query, fn func(d *rollmap.Defect) bool) error
}

var _ DefectScanner = (*rollmap.Store)(nil)

// scanDefects calls fn with every defect of roll id matching q: through
// EachDefect when the store has it, else page by page.
func scanDefects(st RollStore, id string, q rollmap.Query, fn func(d *rollmap.Defect)) error {
	if sc, ok := st.(DefectScanner); ok {
		return sc.EachDefect(id, q, func(d *rollmap.Defect) bool { fn(d); return true })
	}
	q.Limit = MaxDefectLimit
	for {
		ds, err := st.Defects(id, q)
		if err != nil {
			return err
		}
		for i := range ds {
			fn(&ds[i])
		}
		if len(ds) < MaxDefectLimit {
			return nil
		}
		q.AfterID = ds[len(ds)-1].ID
	}
}

// allDefects returns every defect of roll id matching q.
func allDefects(st RollStore, id string, q rollmap.Query) ([]rollmap.Defect, error) {
	var out []rollmap.Defect
	err := scanDefects(st, id, q, func(d *rollmap.Defect) { out = append(out, *d) })
	return out, err
}

// needsReview reports whether a defect's decision asks for a human look:
// the engine asked for a review, or will mark (reject) the material.
func needsReview(d *rollmap.Defect) bool {
	return d.Decision == rollmap.DecisionReview || d.Decision == rollmap.DecisionMark
}

// decisionTier orders the queue: review before mark.
func decisionTier(decision rollmap.Decision) int {
	switch decision {
	case rollmap.DecisionReview:
		return 0
	case rollmap.DecisionMark:
		return 1
	}
	return 2
}

// uncertainty is how close a defect's peak score is to its detector's
// threshold: threshold / peak, in [0, 1]. 1 means the detector barely
// flagged it (the most doubtful), 0.5 a score twice the threshold.
func uncertainty(peak, threshold float64) float64 {
	if !(peak > threshold) || threshold <= 0 {
		return 1
	}
	return threshold / peak
}

// classUncertainty is how unsure the classifier learned from reviews was
// of d's class: 1 - its confidence, 0 when no classifier ran. A defect
// whose class is in doubt is worth a review as much as one barely
// detected: the queue ranks by the larger of the two, so the reviews go
// where they teach the most.
func classUncertainty(d *rollmap.Defect) float64 {
	if d.LearnedClass == "" {
		return 0
	}
	return min(max(1-d.LearnedConfidence, 0), 1)
}

// QueueItem is one defect of the review queue.
type QueueItem struct {
	rollmap.Defect
	Rank        int     `json:"rank"`        // position in the roll's whole ranking (1 = first)
	Uncertainty float64 `json:"uncertainty"` // the larger of threshold / peak score and 1 - learned_confidence, 0..1
	Threshold   float64 `json:"threshold"`   // the detector threshold used
}

type queuePage struct {
	RollID  string      `json:"roll_id"`
	Defects []QueueItem `json:"defects"`
	Pending int         `json:"pending"` // defects in the queue in all
	Next    *int        `json:"next"`    // rank of the last item; null when the page is empty
}

// queueKey is what the queue sorts: a few bytes per defect rather than the
// defect itself (a long roll has tens of thousands needing review).
type queueKey struct {
	id        int64
	u         float64
	threshold float64
	cu        float64 // the learned class's uncertainty: 1 - its confidence (0 without one)
	tier      int8
	reviewed  bool
}

// rankQueue orders every defect of a roll that needs review, reviewed or
// not, into the queue's order: decision review before mark, then the most
// uncertain first, then by ID. Ranks (index + 1) of unreviewed defects
// therefore do not move when others are reviewed.
func rankQueue(keys []queueKey) {
	slices.SortFunc(keys, func(a, b queueKey) int {
		if c := cmp.Compare(a.tier, b.tier); c != 0 {
			return c
		}
		if c := cmp.Compare(b.u, a.u); c != 0 {
			return c
		}
		return cmp.Compare(a.id, b.id)
	})
}

// handleReviewQueue serves GET /api/rolls/{id}/review-queue.
func (s *Server) handleReviewQueue(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	vals, err := strictQuery(r.URL.RawQuery, "after_rank", "limit")
	if err != nil {
		s.writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	after, limit := 0, DefaultQueueLimit
	if v, ok := vals["after_rank"]; ok {
		if after, err = strconv.Atoi(v); err != nil || after < 0 {
			s.writeError(w, http.StatusBadRequest, "after_rank: must be an integer >= 0 (the next of the previous page)")
			return
		}
	}
	if v, ok := vals["limit"]; ok {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > MaxQueueLimit {
			s.writeError(w, http.StatusBadRequest, fmt.Sprintf("limit: must be an integer 1..%d", MaxQueueLimit))
			return
		}
	}
	// Pass 1: each defect needing review as a key, with its peak score in
	// u until every detector's weakest detection (its threshold, unless
	// configured) is known.
	var (
		keys []queueKey
		dets []rollmap.Detector // detector of each key
	)
	weakest := map[rollmap.Detector]float64{}
	err = scanDefects(s.opts.Store, id, rollmap.Query{}, func(d *rollmap.Defect) {
		if v, ok := weakest[d.Detector]; !ok || d.PeakScore < v {
			weakest[d.Detector] = d.PeakScore
		}
		if needsReview(d) {
			keys = append(keys, queueKey{id: d.ID, u: d.PeakScore, cu: classUncertainty(d), tier: int8(decisionTier(d.Decision)), reviewed: d.ReviewStatus != ""})
			dets = append(dets, d.Detector)
		}
	})
	if err != nil {
		s.storeError(w, r, id, err)
		return
	}
	th := maps.Clone(weakest)
	maps.Copy(th, s.opts.DetectionThresholds)
	for i := range keys {
		k := &keys[i]
		k.threshold = th[dets[i]]
		k.u = max(uncertainty(k.u, k.threshold), k.cu)
	}
	rankQueue(keys)

	// The page: unreviewed keys after the rank asked for.
	page := queuePage{RollID: id, Defects: []QueueItem{}}
	want := map[int64]int{} // defect ID → index in page.Defects
	for i, k := range keys {
		if k.reviewed {
			continue
		}
		page.Pending++
		if i+1 > after && len(page.Defects) < limit {
			want[k.id] = len(page.Defects)
			page.Defects = append(page.Defects, QueueItem{Rank: i + 1, Uncertainty: k.u, Threshold: k.threshold})
		}
	}
	// Pass 2: the page's defects themselves.
	if len(want) > 0 {
		lo, hi := int64(math.MaxInt64), int64(0)
		for did := range want {
			lo, hi = min(lo, did), max(hi, did)
		}
		found := 0
		err = scanDefects(s.opts.Store, id, rollmap.Query{AfterID: lo - 1}, func(d *rollmap.Defect) {
			if i, ok := want[d.ID]; ok && d.ID <= hi {
				page.Defects[i].Defect = *d
				found++
			}
		})
		if err == nil && found != len(want) {
			err = fmt.Errorf("the roll changed while the queue was read: %d of %d defects found again", found, len(want))
		}
		if err != nil {
			s.storeError(w, r, id, err)
			return
		}
	}
	if n := len(page.Defects); n > 0 {
		last := page.Defects[n-1].Rank
		page.Next = &last
	}
	s.writeJSON(w, http.StatusOK, page)
}

// ReviewStats is the body of GET /api/rolls/{id}/review-stats.
type ReviewStats struct {
	RollID       string  `json:"roll_id"`
	Defects      int     `json:"defects"`      // all defects of the roll
	NeedReview   int     `json:"need_review"`  // decision review or mark
	Reviewed     int     `json:"reviewed"`     // with a review status
	Confirmed    int     `json:"confirmed"`    // newest review: confirm
	FalseAlarm   int     `json:"false_alarm"`  // newest review: false_alarm
	Reclassified int     `json:"reclassified"` // newest review: reclassify
	Pending      int     `json:"pending"`      // need review, not yet reviewed (the queue)
	Reviews      int     `json:"reviews"`      // review records, history included
	LengthM      float64 `json:"length_m"`
	// TrueDetectionRate = (confirmed + reclassified) / reviewed: the share
	// of reviewed detections that are real defects. Null with no review.
	TrueDetectionRate *float64 `json:"true_detection_rate"`
	// FalseRejectRate = false alarms / reviewed defects whose decision was
	// mark or review (material the engine would reject or hold): the share
	// of good material wrongly rejected. Null when none was reviewed.
	FalseRejectRate *float64 `json:"false_reject_rate"`
	// ReviewLoadPer100M = need_review × 100 / length_m: reviews the roll
	// asks of the staff per 100 m. Null for a roll of length 0.
	ReviewLoadPer100M *float64       `json:"review_load_per_100m"`
	ByReviewer        map[string]int `json:"by_reviewer"` // reviews recorded per reviewer
}

func ratio(num, den float64) *float64 {
	if den <= 0 {
		return nil
	}
	v := num / den
	return &v
}

// statsCounter counts the reviews of a roll's defects, one defect at a
// time.
type statsCounter struct {
	st                      *ReviewStats
	rejected, rejectedFalse int // reviewed defects the engine marked or held; false alarms among them
}

func newStatsCounter(id string, lengthM float64, revs []rollmap.Review) (*ReviewStats, *statsCounter) {
	st := &ReviewStats{RollID: id, Reviews: len(revs), LengthM: lengthM, ByReviewer: map[string]int{}}
	for _, rv := range revs {
		st.ByReviewer[rv.Reviewer]++
	}
	return st, &statsCounter{st: st}
}

func (c *statsCounter) add(d *rollmap.Defect) {
	st := c.st
	st.Defects++
	need := needsReview(d)
	if need {
		st.NeedReview++
	}
	switch d.ReviewStatus {
	case rollmap.ReviewConfirmed:
		st.Confirmed++
	case rollmap.ReviewFalseAlarm:
		st.FalseAlarm++
	case rollmap.ReviewReclassified:
		st.Reclassified++
	case "":
		if need {
			st.Pending++
		}
		return
	default:
		return
	}
	st.Reviewed++
	if need {
		c.rejected++
		if d.ReviewStatus == rollmap.ReviewFalseAlarm {
			c.rejectedFalse++
		}
	}
}

func (c *statsCounter) finish() {
	st := c.st
	st.TrueDetectionRate = ratio(float64(st.Confirmed+st.Reclassified), float64(st.Reviewed))
	st.FalseRejectRate = ratio(float64(c.rejectedFalse), float64(c.rejected))
	if st.LengthM > 0 {
		st.ReviewLoadPer100M = ratio(float64(st.NeedReview)*100, st.LengthM)
	}
}

// computeReviewStats counts the reviews of a roll's defects.
func computeReviewStats(id string, lengthM float64, ds []rollmap.Defect, revs []rollmap.Review) ReviewStats {
	st, c := newStatsCounter(id, lengthM, revs)
	for i := range ds {
		c.add(&ds[i])
	}
	c.finish()
	return *st
}

// handleReviewStats serves GET /api/rolls/{id}/review-stats.
func (s *Server) handleReviewStats(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, err := strictQuery(r.URL.RawQuery); err != nil {
		s.writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	st, err := reviewStats(s.opts.Store, id)
	if err != nil {
		s.storeError(w, r, id, err)
		return
	}
	s.writeJSON(w, http.StatusOK, st)
}

func reviewStats(store RollStore, id string) (ReviewStats, error) {
	info, err := store.Roll(id)
	if err != nil {
		return ReviewStats{}, err
	}
	var revs []rollmap.Review
	if rs, ok := store.(ReviewStore); ok {
		if revs, err = rs.Reviews(id); err != nil && len(revs) == 0 {
			return ReviewStats{}, err
		}
	}
	st, c := newStatsCounter(id, info.LengthM, revs)
	if err := scanDefects(store, id, rollmap.Query{}, c.add); err != nil {
		return ReviewStats{}, err
	}
	c.finish()
	return *st, nil
}

// strictQuery parses a query string that may hold only the known
// parameters, each at most once.
func strictQuery(raw string, known ...string) (map[string]string, error) {
	vals, err := url.ParseQuery(raw)
	if err != nil {
		return nil, fmt.Errorf("query string: %v", err)
	}
	out := make(map[string]string, len(vals))
	for _, name := range slices.Sorted(maps.Keys(vals)) {
		if !slices.Contains(known, name) {
			if len(known) == 0 {
				return nil, fmt.Errorf("unknown parameter %q (this endpoint takes none)", name)
			}
			return nil, fmt.Errorf("unknown parameter %q (known: %s)", name, strings.Join(known, ", "))
		}
		if n := len(vals[name]); n > 1 {
			return nil, fmt.Errorf("%s: given %d times, want at most once", name, n)
		}
		out[name] = vals[name][0]
	}
	return out, nil
}

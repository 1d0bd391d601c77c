package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/webinspect/webinspect/internal/textcheck"
	"github.com/webinspect/webinspect/rollmap"
)

// routes builds the mux and wraps it in the middleware.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/status", s.noQuery(s.handleStatus))
	mux.HandleFunc("GET /api/rolls", s.noQuery(s.handleRolls))
	mux.HandleFunc("GET /api/rolls/{id}", s.noQuery(s.handleRoll))
	mux.HandleFunc("GET /api/rolls/{id}/defects", s.handleDefects)
	mux.HandleFunc("GET /api/rolls/{id}/density", s.handleDensity)
	mux.HandleFunc("GET /api/rolls/{id}/summary", s.noQuery(s.handleSummary))
	mux.HandleFunc("GET /api/rolls/{id}/defects/{did}", s.noQuery(s.handleDefect))
	mux.HandleFunc("POST /api/rolls/{id}/defects/{did}/review", s.noQuery(s.handleReview))
	mux.HandleFunc("GET /api/rolls/{id}/review-queue", s.handleReviewQueue)
	mux.HandleFunc("GET /api/rolls/{id}/review-stats", s.handleReviewStats)
	mux.HandleFunc("GET /api/rolls/{id}/grid", s.handleGrid)
	mux.HandleFunc("GET /api/rolls/{id}/report.html", s.handleReportHTML)
	mux.HandleFunc("GET /api/rolls/{id}/report.pdf", s.handleReportPDF)
	mux.HandleFunc("GET /api/images/{name}", s.noQuery(s.handleImage))
	mux.HandleFunc("GET /api/events", s.handleEvents)
	mux.HandleFunc("PUT /api/rolls/{id}/context", s.noQuery(s.handleContext))
	mux.HandleFunc("POST /api/rolls/{id}/context", s.noQuery(s.handleContext))
	mux.HandleFunc("POST /api/line/roll/start", s.noQuery(s.handleRollStart))
	mux.HandleFunc("POST /api/line/roll/end", s.noQuery(s.handleRollEnd))
	mux.HandleFunc("POST /api/line/splice", s.noQuery(s.handleSplice))
	mux.HandleFunc("POST /api/session", s.noQuery(s.handleSession))
	mux.HandleFunc("GET /api/calibration", s.handleCalibration)
	mux.HandleFunc("POST /api/calibration/apply", s.noQuery(s.handleCalibrationApply))
	if s.opts.Gatherer != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(s.opts.Gatherer, promhttp.HandlerOpts{
			ErrorLog:      promLogger{s.log},
			ErrorHandling: promhttp.ContinueOnError, // serve what could be gathered
		}))
	}
	mux.HandleFunc("GET /{$}", s.handleIndex)
	mux.HandleFunc("GET /ui/{file}", s.handleAsset)
	return s.middleware(mux)
}

// noQuery wraps the handler of an endpoint that takes no query parameters:
// any parameter is refused with 400 naming it, as for every other endpoint
// (README: unknown parameters are refused). The UI's pages and /metrics
// are not wrapped.
func (s *Server) noQuery(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if _, err := strictQuery(r.URL.RawQuery); err != nil {
			s.writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		h(w, r)
	}
}

// errorBody is the body of every error response.
type errorBody struct {
	Error string `json:"error"`
}

// writeJSON writes v with status code. v is encoded before anything is
// written, so a value that cannot be encoded (a NaN from a broken producer)
// becomes a clean 500 rather than half a body.
func (s *Server) writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		s.log.Error().Err(err).Msg("encode response")
		code = http.StatusInternalServerError
		b, _ = json.Marshal(errorBody{Error: "encode response: " + err.Error()})
	}
	b = append(b, '\n')
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(code)
	w.Write(b)
}

// writeError writes {"error": msg} with status code, without the
// package and wrapping prefixes of internal errors (publicMessage).
func (s *Server) writeError(w http.ResponseWriter, code int, msg string) {
	s.writeJSON(w, code, errorBody{Error: publicMessage(msg)})
}

// internalPrefix matches the prefixes internal errors carry for their
// logs: the package ("rollmap: "), the roll ("roll R1: ") and the sentinel
// of the kind of error ("invalid argument: "), in any order and number.
var internalPrefix = regexp.MustCompile(`^(?:(?:rollmap|api|engine|archive|status): |roll [^\s:"]+: |invalid argument: )+`)

// publicMessage strips internalPrefix from the start of msg and after each
// ": " that joins it to a caller's context ("id: rollmap: roll R1: ...").
// The log keeps the whole error.
func publicMessage(msg string) string {
	msg = internalPrefix.ReplaceAllString(msg, "")
	if i := strings.Index(msg, ": "); i > 0 {
		if rest := internalPrefix.ReplaceAllString(msg[i+2:], ""); len(rest) != len(msg)-i-2 {
			msg = msg[:i+2] + rest
		}
	}
	return msg
}

// publicError is publicMessage of err.
func publicError(err error) string { return publicMessage(err.Error()) }

// Decisions a defect can have (engine.DecisionPass, Mark, Review).

// checkDecision refuses a decision filter that no defect can have.
func checkDecision(v string) error {
	if _, err := rollmap.ParseDecision(v); err != nil {
		names := make([]string, 0, 4)
		for _, d := range rollmap.Decisions() {
			names = append(names, string(d))
		}
		return fmt.Errorf("decision: %q is not a decision: must be one of %s", v, strings.Join(names, ", "))
	}
	return nil
}

// storeError answers a failed store call about roll id: 404 for an unknown
// roll, 400 for a malformed ID, 500 for anything else.
func (s *Server) storeError(w http.ResponseWriter, r *http.Request, id string, err error) {
	switch {
	case errors.Is(err, rollmap.ErrNotFound):
		s.writeError(w, http.StatusNotFound, fmt.Sprintf("roll %q not found", id))
	case errors.Is(err, rollmap.ErrBadRollID):
		s.writeError(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, rollmap.ErrInvalid):
		s.writeError(w, http.StatusBadRequest, err.Error())
	default:
		s.log.Error().Err(err).Str("path", r.URL.Path).Str("roll", id).Msg("roll store")
		s.writeError(w, http.StatusInternalServerError, err.Error())
	}
}

func (s *Server) handleStatus(w http.ResponseWriter, r *http.Request) {
	if s.opts.Status == nil {
		s.writeError(w, http.StatusServiceUnavailable, "no engine status: this server runs without an engine")
		return
	}
	s.writeJSON(w, http.StatusOK, s.liveStatus())
}

// rollList is the body of GET /api/rolls.
type rollList struct {
	Rolls   []rollmap.RollInfo `json:"rolls"`
	Warning string             `json:"warning,omitempty"` // rolls that could not be read
}

func (s *Server) handleRolls(w http.ResponseWriter, r *http.Request) {
	rolls, err := s.opts.Store.List()
	if err != nil && len(rolls) == 0 {
		s.log.Error().Err(err).Msg("list rolls")
		s.writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	for i := range rolls {
		rolls[i] = roundInfo(rolls[i])
	}
	body := rollList{Rolls: rolls}
	if body.Rolls == nil {
		body.Rolls = []rollmap.RollInfo{}
	}
	if err != nil {
		// One damaged roll directory must not hide every other roll.
		s.log.Warn().Err(err).Int("rolls", len(rolls)).Msg("list rolls: some rolls unreadable")
		body.Warning = err.Error()
	}
	s.writeJSON(w, http.StatusOK, body)
}

// roundInfo rounds a roll's lengths to the millimetre and its width to
// a hundredth of one, the resolutions the API states them in.
func roundInfo(r rollmap.RollInfo) rollmap.RollInfo {
	r.LengthM, r.UninspectedM = roundTo(r.LengthM, 1e-3), roundTo(r.UninspectedM, 1e-3)
	r.WebWidthMM = roundTo(r.WebWidthMM, 0.01)
	for i := range r.Splices {
		r.Splices[i].MDM = roundTo(r.Splices[i].MDM, 1e-3)
	}
	return r
}

// rollDetail is the body of GET /api/rolls/{id}: the roll's summary with its
// uninspected ranges.
type rollDetail struct {
	rollmap.RollInfo
	Uninspected []rollmap.Uninspected `json:"uninspected"`
}

func (s *Server) handleRoll(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	info, err := s.opts.Store.Roll(id)
	if err != nil {
		s.storeError(w, r, id, err)
		return
	}
	us, err := s.opts.Store.Uninspected(id)
	if err != nil {
		s.storeError(w, r, id, err)
		return
	}
	if us == nil {
		us = []rollmap.Uninspected{}
	}
	for i := range us {
		u := &us[i]
		u.MDStartM, u.MDEndM = roundTo(u.MDStartM, 1e-4), roundTo(u.MDEndM, 1e-4)
		u.CDStartMM, u.CDEndMM = roundTo(u.CDStartMM, 0.01), roundTo(u.CDEndMM, 0.01)
	}
	s.writeJSON(w, http.StatusOK, rollDetail{RollInfo: roundInfo(info), Uninspected: us})
}

// defectPage is the body of GET /api/rolls/{id}/defects.
type defectPage struct {
	RollID    string           `json:"roll_id"`
	Defects   []rollmap.Defect `json:"defects"`
	NextAfter *int64           `json:"next_after"` // last defect_id returned; null when none
}

func (s *Server) handleDefects(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	q, err := parseDefectQuery(r.URL.RawQuery)
	if err != nil {
		s.writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	ds, err := s.opts.Store.Defects(id, q)
	if err != nil {
		s.storeError(w, r, id, err)
		return
	}
	page := defectPage{RollID: id, Defects: ds}
	if len(ds) > 0 {
		last := ds[len(ds)-1].ID
		page.NextAfter = &last
	} else {
		page.Defects = []rollmap.Defect{}
	}
	s.writeJSON(w, http.StatusOK, page)
}

// defectParams are the query parameters of the defects endpoint, in the
// order error messages list them.
var defectParams = []string{"after", "limit", "md_from", "md_to", "class", "decision", "mark_status", "review_status"}

// parseDefectQuery turns the defects endpoint's query string into a Query.
// Errors name the parameter and what it allows; they are client errors.
func parseDefectQuery(raw string) (rollmap.Query, error) {
	q := rollmap.Query{Limit: DefaultDefectLimit}
	vals, err := url.ParseQuery(raw)
	if err != nil {
		return q, fmt.Errorf("query string: %v", err)
	}
	for _, name := range slices.Sorted(maps.Keys(vals)) {
		if !slices.Contains(defectParams, name) {
			return q, fmt.Errorf("unknown parameter %q (known: after, limit, md_from, md_to, class, decision, mark_status, review_status)", name)
		}
		if n := len(vals[name]); n > 1 {
			return q, fmt.Errorf("%s: given %d times, want at most once", name, n)
		}
	}
	if v, ok := vals["after"]; ok {
		n, err := strconv.ParseInt(v[0], 10, 64)
		if err != nil || n < 0 {
			return q, errors.New("after: must be an integer >= 0 (a defect_id)")
		}
		q.AfterID = n
	}
	if v, ok := vals["limit"]; ok {
		n, err := strconv.Atoi(v[0])
		if err != nil || n < 1 || n > MaxDefectLimit {
			return q, fmt.Errorf("limit: must be an integer 1..%d", MaxDefectLimit)
		}
		q.Limit = n
	}
	metres := func(name string) (float64, bool, error) {
		v, ok := vals[name]
		if !ok {
			return 0, false, nil
		}
		f, err := strconv.ParseFloat(v[0], 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 {
			return 0, false, fmt.Errorf("%s: must be a number of metres >= 0", name)
		}
		return f, true, nil
	}
	from, _, err := metres("md_from")
	if err != nil {
		return q, err
	}
	to, hasTo, err := metres("md_to")
	if err != nil {
		return q, err
	}
	if hasTo && to < from {
		return q, fmt.Errorf("md_to: must be >= md_from (got md_from=%g, md_to=%g)", from, to)
	}
	q.MDFromM = from
	if hasTo {
		q.MDToM = to
		if to == 0 {
			// In a Query 0 means "no upper bound"; md_to=0 asks for the
			// defects that start at 0 m. MD is never negative, so the
			// smallest positive float selects exactly those.
			q.MDToM = math.SmallestNonzeroFloat64
		}
	}
	if v, ok := vals["class"]; ok {
		if err := textcheck.Check("class", v[0], textcheck.MaxName); err != nil {
			return q, err
		}
		q.Class = v[0]
	}
	if v, ok := vals["decision"]; ok {
		if err := checkDecision(v[0]); err != nil {
			return q, err
		}
		q.Decision = rollmap.Decision(v[0])
	}
	if v, ok := vals["mark_status"]; ok {
		switch v[0] {
		case rollmap.MarkNone, rollmap.MarkScheduled, rollmap.MarkFired, rollmap.MarkAcknowledged, rollmap.MarkLate, rollmap.MarkMissed:
			q.MarkStatus = v[0]
		default:
			return q, fmt.Errorf("mark_status: must be one of none, scheduled, fired, acknowledged, late, missed")
		}
	}
	if v, ok := vals["review_status"]; ok {
		switch v[0] {
		case rollmap.ReviewNone, rollmap.ReviewConfirmed, rollmap.ReviewFalseAlarm, rollmap.ReviewReclassified:
			q.ReviewStatus = v[0]
		default:
			return q, fmt.Errorf("review_status: must be one of none, confirmed, false_alarm, reclassified")
		}
	}
	return q, nil
}

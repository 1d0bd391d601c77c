package plant

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

//go:embed ui/plant.html
var plantPage []byte

// Handler serves the plant page and its JSON API (read-only):
//
//	GET /                       the plant page
//	GET /api/plant/lines        [LineView...]   every line's live state
//	GET /api/plant/trends       [Count...]      per class by day; ?by=shift: by day and shift; ?class=C
//	GET /api/plant/pareto       [Count...]      ?by=line|product|lot|supplier (default line)
//	GET /api/plant/hold         {"rules", "rolls": [Hold...]}
//	GET /api/plant/rolls        [RollView...]   ?line=L
//	GET /api/plant/counts       Counts          per line and per day and class
//	GET /api/plant/latency      Latency         record → queryable of the defects taken; ?window=30s: the last 30 s only
//
// Errors are {"error": "..."} with 400 for a bad parameter.
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; script-src 'unsafe-inline' 'self'; style-src 'unsafe-inline' 'self'")
		w.Write(plantPage)
	})
	mux.HandleFunc("GET /api/plant/lines", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Lines())
	})
	mux.HandleFunc("GET /api/plant/trends", func(w http.ResponseWriter, r *http.Request) {
		by := r.URL.Query().Get("by")
		if by != "" && by != "day" && by != "shift" {
			writeErr(w, fmt.Sprintf("by %q: want day or shift", by))
			return
		}
		writeJSON(w, http.StatusOK, s.Trends(by == "shift", r.URL.Query().Get("class")))
	})
	mux.HandleFunc("GET /api/plant/pareto", func(w http.ResponseWriter, r *http.Request) {
		by := r.URL.Query().Get("by")
		switch by {
		case "":
			by = "line"
		case "line", "product", "lot", "supplier":
		default:
			writeErr(w, fmt.Sprintf("by %q: want line, product, lot or supplier", by))
			return
		}
		writeJSON(w, http.StatusOK, s.Pareto(by))
	})
	mux.HandleFunc("GET /api/plant/hold", func(w http.ResponseWriter, r *http.Request) {
		h := s.Holds()
		if h == nil {
			h = []Hold{}
		}
		writeJSON(w, http.StatusOK, map[string]any{"rules": s.o.Hold, "rolls": h})
	})
	mux.HandleFunc("GET /api/plant/rolls", func(w http.ResponseWriter, r *http.Request) {
		rs := s.Rolls(r.URL.Query().Get("line"))
		if rs == nil {
			rs = []RollView{}
		}
		writeJSON(w, http.StatusOK, rs)
	})
	mux.HandleFunc("GET /api/plant/counts", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Counts())
	})
	mux.HandleFunc("GET /api/plant/latency", func(w http.ResponseWriter, r *http.Request) {
		var win time.Duration
		if v := r.URL.Query().Get("window"); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				writeErr(w, fmt.Sprintf("window %q: want a duration > 0 such as 30s", v))
				return
			}
			win = d
		}
		writeJSON(w, http.StatusOK, s.LatencySummary(win))
	})
	return mux
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		code, b = http.StatusInternalServerError, []byte(`{"error":"encode"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(code)
	w.Write(b)
}

func writeErr(w http.ResponseWriter, msg string) {
	writeJSON(w, http.StatusBadRequest, map[string]string{"error": msg})
}

func fmtF(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) }
func fmtI(v int64) string   { return strconv.FormatInt(v, 10) }
func joinStr(ss []string) string {
	b, _ := json.Marshal(ss)
	return string(b)
}

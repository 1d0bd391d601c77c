package api

import (
	"fmt"
	"net/http"
	"time"

	"github.com/rs/zerolog"
)

// middleware wraps the mux: it recovers panics, logs each request at debug
// level, sets the headers every response carries, limits request bodies and
// turns the mux's own plain-text 404 and 405 answers into JSON.
func (s *Server) middleware(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v) // the handler asked net/http to abort the connection
				}
				s.log.Error().Str("method", r.Method).Str("path", r.URL.Path).
					Str("panic", fmt.Sprint(v)).Msg("http handler panicked")
				if sw.code == 0 {
					s.writeError(sw, http.StatusInternalServerError, "internal error")
				}
			}
			s.log.Debug().Str("method", r.Method).Str("path", r.URL.Path).
				Str("query", r.URL.RawQuery).Int("status", sw.status()).
				Int64("bytes", sw.bytes).Dur("took", time.Since(start)).
				Str("remote", r.RemoteAddr).Msg("http request")
		}()

		sw.Header().Set("X-Content-Type-Options", "nosniff")
		if !s.guard(sw, r) {
			return
		}
		if r.Body != nil {
			r.Body = http.MaxBytesReader(sw, r.Body, s.opts.MaxBodyBytes)
		}
		if _, pattern := mux.Handler(r); pattern == "" {
			s.noRoute(sw, r, mux)
			return
		}
		mux.ServeHTTP(sw, r)
	})
}

// noRoute answers a request no pattern matched. The mux knows whether the
// path exists for another method (405, with Allow) or not at all (404); its
// answer is captured and rewritten as JSON.
func (s *Server) noRoute(w http.ResponseWriter, r *http.Request, mux *http.ServeMux) {
	h, _ := mux.Handler(r)
	var c captureWriter
	h.ServeHTTP(&c, r)
	code := c.code
	switch code {
	case http.StatusMethodNotAllowed:
		allow := c.header.Get("Allow")
		w.Header().Set("Allow", allow)
		s.writeError(w, code, fmt.Sprintf("method %s not allowed for %s (allowed: %s)", r.Method, r.URL.Path, allow))
	case http.StatusNotFound, 0:
		s.writeError(w, http.StatusNotFound, fmt.Sprintf("no such path: %s", r.URL.Path))
	default:
		s.writeError(w, code, http.StatusText(code))
	}
}

// captureWriter records the status code and headers a handler writes and
// discards the body.
type captureWriter struct {
	header http.Header
	code   int
}

func (c *captureWriter) Header() http.Header {
	if c.header == nil {
		c.header = make(http.Header)
	}
	return c.header
}

func (c *captureWriter) WriteHeader(code int) {
	if c.code == 0 {
		c.code = code
	}
}

func (c *captureWriter) Write(p []byte) (int, error) {
	c.WriteHeader(http.StatusOK)
	return len(p), nil
}

// statusWriter records the status code and body size for the request log.
// Unwrap lets http.ResponseController reach the connection (flush,
// deadlines) through it.
type statusWriter struct {
	http.ResponseWriter
	code  int
	bytes int64
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.bytes += int64(n)
	return n, err
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) status() int {
	if w.code == 0 {
		return http.StatusOK
	}
	return w.code
}

// promLogger sends promhttp's error log to zerolog.
type promLogger struct{ log zerolog.Logger }

func (l promLogger) Println(v ...any) {
	l.log.Error().Msg(fmt.Sprint(v...))
}

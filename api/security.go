package api

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"path"
	"strings"
)

// isChange reports whether a request's method changes data (anything but
// GET and HEAD).
func isChange(r *http.Request) bool {
	return r.Method != http.MethodGet && r.Method != http.MethodHead
}

// openPath reports whether p is served without a token even with
// ProtectReads: the page and its assets, which hold no data.
func openPath(p string) bool {
	return p == "/" || strings.HasPrefix(p, "/ui/")
}

// guard applies the checks that come before routing, and answers the
// request itself when one fails:
//
//   - a Host header that is not an allowed name (Options.AllowedHosts) is
//     refused with 403, reads included (DNS rebinding);
//   - a path that is not canonical ("..", ".", empty segments) is refused
//     with 400 rather than redirected, so no path trick reaches a handler;
//   - a change whose Origin header is not this server's own origin
//     (scheme, host and port)
//     is refused with 403 (a web page elsewhere cannot post to the
//     engine through a browser on the mill's network), and so is a
//     change without a token whose Host is not a loopback name (DNS
//     rebinding);
//   - with a Token, a change (and with ProtectReads, a read other than the
//     page) without "Authorization: Bearer TOKEN" gets 401;
//   - a declared body larger than MaxBodyBytes gets 413 before it is read.
func (s *Server) guard(w http.ResponseWriter, r *http.Request) bool {
	if p := r.URL.Path; p != "/" && (path.Clean(p) != p || strings.HasSuffix(p, "/")) || !strings.HasPrefix(p, "/") {
		s.writeError(w, http.StatusBadRequest, fmt.Sprintf("path %q is not canonical (no \".\" or \"..\" segments, empty segments or trailing slash)", p))
		return false
	}
	if !s.hosts.allows(r.Host) {
		s.writeError(w, http.StatusForbidden, fmt.Sprintf("Host %q is not a name this server answers to (allowed: %s); "+
			"add it with --allow-host", r.Host, s.hosts))
		return false
	}
	change := isChange(r)
	if change {
		// Without a token, changes are open only because the server is
		// reachable from this machine alone; a page elsewhere that points
		// its own host name at 127.0.0.1 (DNS rebinding) must not pass as
		// this machine.
		if s.opts.Token == "" && !s.opts.AllowOpenChanges && !LoopbackHost(hostOnly(r.Host)) {
			s.writeError(w, http.StatusForbidden, fmt.Sprintf("change refused: Host %q is not a loopback name; "+
				"this server takes changes without a token only when addressed as localhost or a loopback address", r.Host))
			return false
		}
		if o := r.Header.Get("Origin"); o != "" {
			// The whole origin must be this server's: scheme, host and
			// port (another port on the same host is another site).
			scheme := "http"
			if r.TLS != nil {
				scheme = "https"
			}
			u, err := url.Parse(o)
			if err != nil || u.Scheme != scheme || !strings.EqualFold(u.Host, r.Host) || u.Path != "" || u.User != nil {
				s.writeError(w, http.StatusForbidden, fmt.Sprintf("cross-origin change refused: Origin %q is not this server (%s)", o, r.Host))
				return false
			}
		}
	}
	if s.opts.Token != "" && (change || s.opts.ProtectReads && !openPath(r.URL.Path)) {
		if msg := s.checkToken(r); msg != "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="webinspect"`)
			s.writeError(w, http.StatusUnauthorized, msg)
			return false
		}
	}
	if r.ContentLength > s.opts.MaxBodyBytes {
		s.writeError(w, http.StatusRequestEntityTooLarge, bodyTooLarge(s.opts.MaxBodyBytes))
		return false
	}
	return true
}

// hostOnly returns the host of a Host header without its port.
func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return strings.Trim(hostport, "[]")
}

// checkToken returns why r's bearer token is not the server's, or "".
// Both are hashed first so the comparison takes the same time whatever
// the token's length and content.
func (s *Server) checkToken(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if h == "" && !isChange(r) {
		// A browser's EventSource and <img> cannot send a header: reads
		// may carry the token in the session cookie POST /api/session
		// sets. Changes never take the cookie (no cross-site request can
		// make one).
		if c, err := r.Cookie(sessionCookie); err == nil {
			want := s.sessionValue()
			if subtle.ConstantTimeCompare([]byte(c.Value), []byte(want)) == 1 {
				return ""
			}
			return "invalid session cookie: enter the token again"
		}
	}
	if h == "" {
		what := "changes need"
		if !isChange(r) {
			what = "this server protects reads: requests need"
		}
		return what + ` "Authorization: Bearer <token>"`
	}
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return `Authorization: want "Bearer <token>"`
	}
	if !s.tokenMatches(strings.TrimSpace(tok)) {
		return "invalid bearer token"
	}
	return ""
}

// tokenMatches compares tok with the server's token in constant time.
func (s *Server) tokenMatches(tok string) bool {
	got, want := sha256.Sum256([]byte(tok)), sha256.Sum256([]byte(s.opts.Token))
	return subtle.ConstantTimeCompare(got[:], want[:]) == 1
}

// sessionCookie carries a read credential derived from the token for
// reads a browser cannot add a header to (the event stream, crops) when
// the server protects reads. It is not the token: it cannot make changes,
// and a token with bytes a cookie cannot hold still works.
const sessionCookie = "webinspect_session"

// sessionValue is the session cookie's value: HMAC-SHA256 of a fixed label
// keyed with the token, in hex.
func (s *Server) sessionValue() string {
	m := hmac.New(sha256.New, []byte(s.opts.Token))
	m.Write([]byte("webinspect read session"))
	return hex.EncodeToString(m.Sum(nil))
}

// handleSession (POST /api/session) sets the session cookie once guard
// has checked the request's bearer token: HttpOnly,
// SameSite=Strict, for this browser session only. Without a token on the
// server it answers 204 and sets nothing.
func (s *Server) handleSession(w http.ResponseWriter, r *http.Request) {
	if s.opts.Token != "" {
		http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: s.sessionValue(), Path: "/",
			HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	}
	w.WriteHeader(http.StatusNoContent)
}

func bodyTooLarge(limit int64) string {
	return fmt.Sprintf("request body too large: the limit is %d bytes", limit)
}

// decodeBody decodes r's JSON body into v, refusing unknown fields,
// trailing data, another content type and bodies over the limit. An empty
// body leaves v as it is when emptyOK, and is refused otherwise. On
// failure it has answered the request (400, 413 or 415) and returns false.
func (s *Server) decodeBody(w http.ResponseWriter, r *http.Request, v any, emptyOK bool) bool {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			s.writeError(w, http.StatusRequestEntityTooLarge, bodyTooLarge(mbe.Limit))
			return false
		}
		s.writeError(w, http.StatusBadRequest, "read request body: "+err.Error())
		return false
	}
	if len(bytes.TrimSpace(body)) == 0 {
		if emptyOK {
			return true
		}
		s.writeError(w, http.StatusBadRequest, "request body is empty: want a JSON object")
		return false
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			s.writeError(w, http.StatusUnsupportedMediaType, fmt.Sprintf("Content-Type %q: want application/json", ct))
			return false
		}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		s.writeError(w, http.StatusBadRequest, "malformed JSON body: "+describeJSONError(err, body))
		return false
	}
	if _, err := dec.Token(); err != io.EOF {
		s.writeError(w, http.StatusBadRequest, "malformed JSON body: data after the JSON object")
		return false
	}
	return true
}

// describeJSONError says what is wrong with a body and where.
func describeJSONError(err error, body []byte) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("%v (at byte %d)", se, se.Offset)
	case errors.As(err, &te):
		if te.Field != "" {
			return fmt.Sprintf("field %q: JSON %s cannot be a %s", te.Field, te.Value, te.Type)
		}
		return fmt.Sprintf("JSON %s where an object was expected", te.Value)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Sprintf("unexpected end of JSON after %d bytes", len(body))
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return strings.TrimPrefix(err.Error(), "json: ") + " (unknown fields are refused)"
	}
	return err.Error()
}

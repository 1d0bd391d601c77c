package plant

import (
	"crypto/subtle"
	"net"
	"net/http"
	"strings"
	"time"
)

// Access is who may read the plant page and its API.
//
//   - Hosts: the Host header must name loopback, the listen host, or one
//     of Hosts ("*" for any), so a web page whose name resolves to the
//     plant service (DNS rebinding) cannot read it.
//   - Token: when set (the plant service must have one on an address other
//     machines reach), every API request carries it, as
//     "Authorization: Bearer TOKEN" or as the HttpOnly session cookie that
//     POST /api/session sets after checking that header. The page itself
//     stays open: it asks for the token and makes the session.
type Access struct {
	Token      string
	ListenHost string
	Hosts      []string
}

// sessionCookie is the plant page's session cookie: the token itself,
// HttpOnly and SameSite=Strict, so scripts on other pages cannot send or
// read it.
const sessionCookie = "webinspect_plant"

// Protect wraps h (Service.Handler) with a's checks.
func Protect(h http.Handler, a Access) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !a.hostAllowed(r.Host) {
			writeJSON(w, http.StatusMisdirectedRequest, map[string]string{"error": "host " + r.Host + " is not one this plant service answers to (--allow-host)"})
			return
		}
		if a.Token == "" || r.URL.Path == "/" {
			h.ServeHTTP(w, r)
			return
		}
		if r.URL.Path == "/api/session" {
			a.session(w, r)
			return
		}
		if !a.authorized(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="webinspect plant"`)
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "this plant service needs its token: Authorization: Bearer TOKEN"})
			return
		}
		h.ServeHTTP(w, r)
	})
}

func (a Access) authorized(r *http.Request) bool {
	got := ""
	if v, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		got = v
	} else if c, err := r.Cookie(sessionCookie); err == nil {
		got = c.Value
	}
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(a.Token)) == 1
}

// session answers POST /api/session: with the right bearer token it sets
// the session cookie the page's requests then carry.
func (a Access) session(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "POST /api/session with Authorization: Bearer TOKEN"})
		return
	}
	if _, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); !ok || !a.authorized(r) {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "wrong or missing token"})
		return
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: a.Token, Path: "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Expires: time.Now().Add(12 * time.Hour)})
	w.WriteHeader(http.StatusNoContent)
}

func (a Access) hostAllowed(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.Trim(strings.ToLower(host), "[]")
	if host == "localhost" || host == strings.ToLower(a.ListenHost) && host != "" && host != "0.0.0.0" && host != "::" {
		return true
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return true
	}
	for _, h := range a.Hosts {
		if h == "*" || strings.EqualFold(h, host) {
			return true
		}
	}
	return false
}

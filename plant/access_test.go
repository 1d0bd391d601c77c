package plant

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestAccess: a plant service with a token refuses API reads without it
// (the page itself stays open), accepts the bearer token and the session
// cookie POST /api/session sets, and answers only to allowed host names.
func TestAccess(t *testing.T) {
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	const tok = "0123456789abcdef-plant"
	h := Protect(inner, Access{Token: tok, ListenHost: "10.0.0.5", Hosts: []string{"plant.mill.example"}})
	do := func(method, host, path string, hdr map[string]string, cookies ...*http.Cookie) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, "http://"+host+path, nil)
		r.Host = host
		for k, v := range hdr {
			r.Header.Set(k, v)
		}
		for _, c := range cookies {
			r.AddCookie(c)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	bearer := map[string]string{"Authorization": "Bearer " + tok}
	for _, c := range []struct {
		name, method, host, path string
		hdr                      map[string]string
		want                     int
	}{
		{"page without token", "GET", "10.0.0.5:8090", "/", nil, http.StatusTeapot},
		{"API without token", "GET", "10.0.0.5:8090", "/api/plant/lines", nil, http.StatusUnauthorized},
		{"API with a wrong token", "GET", "10.0.0.5:8090", "/api/plant/lines", map[string]string{"Authorization": "Bearer nope-nope-nope-nope"}, http.StatusUnauthorized},
		{"API with the token", "GET", "10.0.0.5:8090", "/api/plant/lines", bearer, http.StatusTeapot},
		{"allowed name", "GET", "plant.mill.example", "/api/plant/lines", bearer, http.StatusTeapot},
		{"loopback", "GET", "127.0.0.1:8090", "/api/plant/lines", bearer, http.StatusTeapot},
		{"rebinding name", "GET", "evil.example:8090", "/api/plant/lines", bearer, http.StatusMisdirectedRequest},
		{"rebinding name, page", "GET", "evil.example:8090", "/", nil, http.StatusMisdirectedRequest},
		{"session by GET", "GET", "10.0.0.5:8090", "/api/session", bearer, http.StatusMethodNotAllowed},
		{"session without token", "POST", "10.0.0.5:8090", "/api/session", nil, http.StatusUnauthorized},
	} {
		if w := do(c.method, c.host, c.path, c.hdr); w.Code != c.want {
			t.Errorf("%s: %d, want %d (%s)", c.name, w.Code, c.want, w.Body)
		}
	}
	w := do("POST", "10.0.0.5:8090", "/api/session", bearer)
	if w.Code != http.StatusNoContent {
		t.Fatalf("session: %d %s", w.Code, w.Body)
	}
	cs := w.Result().Cookies()
	if len(cs) != 1 || !cs[0].HttpOnly || cs[0].SameSite != http.SameSiteStrictMode {
		t.Fatalf("session cookie %+v: want one HttpOnly, SameSite=Strict cookie", cs)
	}
	if w := do("GET", "10.0.0.5:8090", "/api/plant/hold", nil, cs[0]); w.Code != http.StatusTeapot {
		t.Errorf("API with the session cookie: %d", w.Code)
	}
	// Without a token (loopback service) only the host check applies.
	open := Protect(inner, Access{ListenHost: "127.0.0.1"})
	r := httptest.NewRequest("GET", "http://127.0.0.1:8090/api/plant/lines", nil)
	rw := httptest.NewRecorder()
	open.ServeHTTP(rw, r)
	if rw.Code != http.StatusTeapot {
		t.Errorf("open loopback service: %d", rw.Code)
	}
}

package api

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/webinspect/webinspect/rollmap/archive"
)

// spyImages is an ImageSource over a map that records every Open, so a
// test can prove a hostile name never reached it.
type spyImages struct {
	mu    sync.Mutex
	files map[string][]byte
	opens []string
}

func (s *spyImages) Open(ref string) (io.ReadCloser, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.opens = append(s.opens, ref)
	b, ok := s.files[ref]
	if !ok {
		return nil, fmt.Errorf("crop %s: %w", ref, fs.ErrNotExist)
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

// testPNG returns a small grey PNG and its reference.
func testPNG(t testing.TB, shade uint8) ([]byte, string) {
	t.Helper()
	img := image.NewGray(image.Rect(0, 0, 16, 12))
	for i := range img.Pix {
		img.Pix[i] = shade + uint8(i%7)
	}
	img.SetGray(3, 3, color.Gray{Y: 0})
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(buf.Bytes())
	return buf.Bytes(), hex.EncodeToString(sum[:]) + ".png"
}

func TestBodyLimits(t *testing.T) {
	s, _ := newStoreServer(t, false, nil)
	h := s.Handler()
	big := `{"action":"confirm","reviewer":"` + strings.Repeat("a", 70<<10) + `"}`
	// Declared length over the limit: refused before reading.
	sendError(t, h, "POST", "/api/rolls/R/defects/2/review", big, 413, "the limit is 65536 bytes")
	// Chunked (no length): refused while reading.
	req := httptest.NewRequest("POST", "/api/rolls/R/defects/2/review", io.MultiReader(strings.NewReader(big)))
	req.ContentLength = -1
	req.Host = "localhost:8080"
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 413 || !strings.Contains(rec.Body.String(), "the limit is 65536 bytes") {
		t.Errorf("chunked oversized body: %d %s", rec.Code, rec.Body)
	}
	// A configured limit is the one named.
	s2, _ := newStoreServer(t, false, func(o *Options) { o.MaxBodyBytes = 100 })
	sendError(t, s2.Handler(), "POST", "/api/line/splice", `{"note":"`+strings.Repeat("x", 200)+`"}`, 413, "the limit is 100 bytes")
}

func TestMalformedJSON(t *testing.T) {
	s, _ := newStoreServer(t, false, nil)
	h := s.Handler()
	const target = "/api/rolls/R/defects/2/review"
	for _, c := range []struct{ body, msg string }{
		{`{"action":`, "malformed JSON body: unexpected end of JSON"},
		{`{"action" "confirm"}`, "malformed JSON body: invalid character '\"' after object key (at byte 11)"},
		{`{"action": 1, "reviewer": "a"}`, `malformed JSON body: field "action": JSON number cannot be a string`},
		{`["confirm"]`, "malformed JSON body: JSON array where an object was expected"},
		{`{"action":"confirm","reviewer":"a","extra":1}`, `malformed JSON body: unknown field "extra" (unknown fields are refused)`},
		{`{"action":"confirm","reviewer":"a"} {"action":"false_alarm"}`, "data after the JSON object"},
		{`   `, "request body is empty"},
	} {
		sendError(t, h, "POST", target, c.body, 400, c.msg)
	}
	sendError(t, h, "POST", target, `{"action":"confirm","reviewer":"a"}`, 415, `Content-Type "text/plain": want application/json`,
		"Content-Type", "text/plain")
	// Nothing was recorded.
	var st ReviewStats
	sendJSON(t, h, "GET", "/api/rolls/R/review-stats", "", 200, &st)
	if st.Reviews != 0 {
		t.Errorf("%d reviews recorded from malformed bodies", st.Reviews)
	}
}

func TestToken(t *testing.T) {
	s, _ := newStoreServer(t, false, func(o *Options) { o.Token = testToken; o.Listen = "0.0.0.0:8080" })
	h := s.Handler()
	const target, body = "/api/rolls/R/defects/2/review", `{"action":"confirm","reviewer":"a"}`
	sendError(t, h, "POST", target, body, 401, `changes need "Authorization: Bearer <token>"`)
	sendError(t, h, "POST", target, body, 401, "invalid bearer token", "Authorization", "Bearer "+testToken+"x")
	sendError(t, h, "POST", target, body, 401, "invalid bearer token", "Authorization", "Bearer "+testToken[:len(testToken)-1])
	sendError(t, h, "POST", target, body, 401, `want "Bearer <token>"`, "Authorization", "Basic "+testToken)
	rec := send(t, h, "POST", target, body)
	if rec.Header().Get("WWW-Authenticate") == "" {
		t.Error("401 without WWW-Authenticate")
	}
	sendJSON(t, h, "POST", target, body, 200, nil, "Authorization", "Bearer "+testToken)
	sendJSON(t, h, "POST", target, body, 200, nil, "Authorization", "bearer "+testToken)
	// A missing token is refused before routing: no path is revealed.
	sendError(t, h, "POST", "/api/nothing", body, 401, "Authorization")
	// Reads stay open.
	sendJSON(t, h, "GET", "/api/rolls/R/review-stats", "", 200, nil)

	// ProtectReads: the JSON API and metrics need it, the page does not.
	s2, _ := newStoreServer(t, false, func(o *Options) { o.Token = testToken; o.ProtectReads = true })
	h2 := s2.Handler()
	for _, target := range []string{"/api/rolls", "/api/rolls/R/grid", "/api/events", "/metrics", "/api/images/x.png"} {
		sendError(t, h2, "GET", target, "", 401, "this server protects reads")
	}
	sendJSON(t, h2, "GET", "/api/rolls", "", 200, nil, "Authorization", "Bearer "+testToken)
	for _, target := range []string{"/", "/ui/style.css"} {
		if rec := send(t, h2, "GET", target, ""); rec.Code != 200 {
			t.Errorf("GET %s with ProtectReads: %d, want 200 (the page holds no data)", target, rec.Code)
		}
	}

	// The session cookie: POST /api/session with the token sets it; reads
	// (the event stream and crops a browser cannot add a header to) take
	// it, changes never do.
	sendError(t, h2, "POST", "/api/session", "", 401, "Authorization")
	rec = send(t, h2, "POST", "/api/session", "", "Authorization", "Bearer "+testToken)
	cookies := rec.Result().Cookies()
	if rec.Code != http.StatusNoContent || len(cookies) != 1 || !cookies[0].HttpOnly || cookies[0].SameSite != http.SameSiteStrictMode {
		t.Fatalf("POST /api/session: %d, cookies %+v; want 204 and one HttpOnly SameSite=Strict cookie", rec.Code, cookies)
	}
	c := cookies[0].Name + "=" + cookies[0].Value
	sendJSON(t, h2, "GET", "/api/rolls", "", 200, nil, "Cookie", c)
	sendError(t, h2, "GET", "/api/rolls", "", 401, "invalid session cookie", "Cookie", cookies[0].Name+"=guess")
	sendError(t, h2, "POST", target, body, 401, "Authorization", "Cookie", c)
}

func TestCrossOriginChange(t *testing.T) {
	s, _ := newStoreServer(t, false, nil)
	h := s.Handler()
	const target, body = "/api/rolls/R/defects/2/review", `{"action":"confirm","reviewer":"a"}`
	sendError(t, h, "POST", target, body, 403, `cross-origin change refused: Origin "http://evil.example"`, "Origin", "http://evil.example")
	sendJSON(t, h, "POST", target, body, 200, nil, "Origin", "http://127.0.0.1:8080")
	for _, host := range []string{"localhost:8080", "[::1]:8080", "127.0.0.1"} {
		sendJSON(t, h, "POST", target, body, 200, nil, "Host", host)
	}
	// DNS rebinding: a page of evil.example whose name resolves to
	// 127.0.0.1 is same-origin for the browser, but not a loopback name.
	sendError(t, h, "POST", target, body, 403, `Host "evil.example:8080" is not a name this server answers to`,
		"Host", "evil.example:8080", "Origin", "http://evil.example:8080")
	// With a token or AllowOpenChanges any allowed Host may change.
	s2, _ := newStoreServer(t, false, func(o *Options) { o.Token = testToken; o.AllowedHosts = []string{"inspect.mill.lan"} })
	sendJSON(t, s2.Handler(), "POST", target, body, 200, nil, "Host", "inspect.mill.lan:8080", "Authorization", "Bearer "+testToken)
	s3, _ := newStoreServer(t, false, func(o *Options) {
		o.AllowOpenChanges = true
		o.Listen = ":8080"
		o.AllowedHosts = []string{"10.0.0.5"}
	})
	sendJSON(t, s3.Handler(), "POST", target, body, 200, nil, "Host", "10.0.0.5:8080")
}

// TestOriginIsCompared: the whole origin (scheme, host and port) must be
// the server's own, not only its host name.
func TestOriginIsCompared(t *testing.T) {
	s, _ := newStoreServer(t, false, nil)
	h := s.Handler()
	const target, body = "/api/rolls/R/defects/2/review", `{"action":"confirm","reviewer":"a"}`
	for _, origin := range []string{
		"http://127.0.0.1:9999",  // another port: another site on the same machine
		"https://127.0.0.1:8080", // another scheme
		"http://127.0.0.1",       // no port
		"null",
		"http://127.0.0.1:8080/x",
		"http://u@127.0.0.1:8080",
	} {
		sendError(t, h, "POST", target, body, 403, "cross-origin change refused", "Host", "127.0.0.1:8080", "Origin", origin)
	}
	sendJSON(t, h, "POST", target, body, 200, nil, "Host", "127.0.0.1:8080", "Origin", "http://127.0.0.1:8080")
}

// TestReadsCheckTheHost: a page whose own name resolves to this machine
// (DNS rebinding) cannot read the roll maps, the status or the metrics;
// allowed names and loopback names can.
func TestReadsCheckTheHost(t *testing.T) {
	s, _ := newStoreServer(t, false, func(o *Options) { o.AllowedHosts = []string{"inspect.mill.lan"} })
	h := s.Handler()
	for _, target := range []string{"/api/rolls", "/api/rolls/R/review-stats", "/metrics", "/"} {
		sendError(t, h, "GET", target, "", 403, `Host "evil.example:8080" is not a name this server answers to`, "Host", "evil.example:8080")
		if rec := send(t, h, "GET", target, "", "Host", "inspect.mill.lan:8080"); rec.Code == http.StatusForbidden {
			t.Errorf("GET %s with an allowed Host: 403 %s", target, rec.Body)
		}
		if rec := send(t, h, "GET", target, "", "Host", "LOCALHOST:8080"); rec.Code == http.StatusForbidden {
			t.Errorf("GET %s with Host localhost: 403 %s", target, rec.Body)
		}
	}
	// A server on every interface answers to the machine's own addresses.
	s2, _ := newStoreServer(t, false, func(o *Options) { o.Listen = ":0"; o.AllowOpenChanges = true })
	if rec := send(t, s2.Handler(), "GET", "/api/rolls", "", "Host", "127.0.0.1:1"); rec.Code != 200 {
		t.Errorf("GET /api/rolls on every interface, Host 127.0.0.1: %d", rec.Code)
	}
	sendError(t, s2.Handler(), "GET", "/api/rolls", "", 403, "is not a name this server answers to", "Host", "evil.example")
	// "*" opts out.
	s3, _ := newStoreServer(t, false, func(o *Options) { o.AllowedHosts = []string{"*"} })
	if rec := send(t, s3.Handler(), "GET", "/api/rolls", "", "Host", "evil.example"); rec.Code != 200 {
		t.Errorf("AllowedHosts *: GET with any Host: %d", rec.Code)
	}
	if _, err := New(Options{Listen: "127.0.0.1:0", Store: s.opts.Store, AllowedHosts: []string{"http://x"}, MaxBodyBytes: 1,
		StatusInterval: time.Second, HeartbeatInterval: time.Second}); err == nil || !strings.Contains(err.Error(), "AllowedHosts[0]") {
		t.Errorf("AllowedHosts with a scheme: %v, want an error naming AllowedHosts[0]", err)
	}
}

func TestImageNames(t *testing.T) {
	data, ref := testPNG(t, 100)
	spy := &spyImages{files: map[string][]byte{ref: data}}
	s, _ := newStoreServer(t, false, func(o *Options) { o.Images = spy })
	h := s.Handler()
	hex64 := ref[:64]
	for _, target := range []string{
		"/api/images/..%2f..%2fetc%2fpasswd",
		"/api/images/../../etc/passwd",
		"/api/images/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
		"/api/images/%2fetc%2fpasswd",
		"/api/images/%2e%2e",
		"/api/images/" + hex64 + ".png/..",
		"/api/images/./" + ref,
		"/api/images/%252e%252e%252fetc%252fpasswd",
		"/api/images/..%5c..%5cwindows%5cwin.ini",
		"/api/images/" + strings.Repeat("a", 8000) + ".png",
		"/api/images/" + strings.ToUpper(hex64) + ".png",
		"/api/images/" + hex64 + ".PNG",
		"/api/images/" + hex64 + ".png%00",
		"/api/images/" + hex64[:63] + "g.png",
		"/api/images/" + hex64 + "0.png",
		"/api/images/" + hex64,
	} {
		rec := send(t, h, "GET", target, "")
		msg := rec.Body.String()
		if rec.Code != 400 || !(strings.Contains(msg, "want 64 lowercase hex digits") || strings.Contains(msg, "not canonical")) {
			t.Errorf("GET %.120s: %d %.200s, want 400 naming the rule", target, rec.Code, msg)
		}
	}
	if len(spy.opens) != 0 {
		t.Errorf("hostile names reached the image source: %q", spy.opens)
	}

	rec := send(t, h, "GET", "/api/images/"+ref, "")
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "image/png" || !bytes.Equal(rec.Body.Bytes(), data) {
		t.Fatalf("GET crop: %d %q, %d bytes", rec.Code, rec.Header().Get("Content-Type"), rec.Body.Len())
	}
	if rec := send(t, h, "GET", "/api/images/"+ref, "", "If-None-Match", rec.Header().Get("ETag")); rec.Code != 304 {
		t.Errorf("revalidation: %d, want 304", rec.Code)
	}
	missing := strings.Repeat("0", 64) + ".png"
	sendError(t, h, "GET", "/api/images/"+missing, "", 404, "not found in the image archive")

	s2, _ := newStoreServer(t, false, nil)
	sendError(t, s2.Handler(), "GET", "/api/images/"+missing, "", 404, "no image archive")
}

// TestImageTraversalOverHTTP sends the raw request lines a client could
// send, bypassing any cleaning a Go client would do.
func TestImageTraversalOverHTTP(t *testing.T) {
	spy := &spyImages{}
	s, _ := newStoreServer(t, false, func(o *Options) { o.Images = spy })
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	for _, p := range []string{
		"/api/images/..%2f..%2fetc%2fpasswd",
		"/api/images/../../../../etc/passwd",
		"/api/images/%2e%2e/%2e%2e/etc/passwd",
		"/api/images//etc/passwd",
	} {
		c, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", p)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		c.Close()
		if resp.StatusCode != 400 || !strings.Contains(string(b), `"error"`) {
			t.Errorf("raw GET %s: %d %s, want 400 with a JSON error", p, resp.StatusCode, b)
		}
	}
	if len(spy.opens) != 0 {
		t.Errorf("hostile names reached the image source: %q", spy.opens)
	}
}

func TestDirImages(t *testing.T) {
	root := t.TempDir()
	data, ref := testPNG(t, 50)
	if err := os.MkdirAll(filepath.Join(root, ref[:2]), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, ref[:2], ref), data, 0o644); err != nil {
		t.Fatal(err)
	}
	d := DirImages(root)
	rc, err := d.Open(ref)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(got, data) {
		t.Error("DirImages returned other bytes")
	}
	// A link out of the archive is refused even with a well-formed name.
	outside := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(outside, []byte("secret"), 0o644)
	evil := strings.Repeat("e", 64) + ".png"
	os.MkdirAll(filepath.Join(root, "ee"), 0o755)
	if err := os.Symlink(outside, filepath.Join(root, "ee", evil)); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Open(evil); !errors.Is(err, ErrBadImageRef) || !strings.Contains(err.Error(), "outside the image archive") {
		t.Errorf("symlink out of the archive: %v", err)
	}
	if _, err := d.Open(strings.Repeat("1", 64) + ".png"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing crop: %v, want fs.ErrNotExist", err)
	}
	for _, bad := range []string{"../" + ref, "/etc/passwd", ref[:2] + "/" + ref, ""} {
		if _, err := d.Open(bad); !errors.Is(err, ErrBadImageRef) {
			t.Errorf("Open(%q): %v, want ErrBadImageRef", bad, err)
		}
	}
	// Through the server: the link is a 400, not its content.
	s, _ := newStoreServer(t, false, func(o *Options) { o.Images = d })
	sendError(t, s.Handler(), "GET", "/api/images/"+evil, "", 400, "outside the image archive")
}

// TestArchiveImages serves crops from the real image archive.
func TestArchiveImages(t *testing.T) {
	o := archive.DefaultOptions()
	o.MinFreeBytes = 1 << 20
	a, err := archive.Open(t.TempDir(), o, zerolog.Nop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	pix := make([]uint8, 20*10)
	for i := range pix {
		pix[i] = uint8(i)
	}
	ref, err := a.Put(archive.Crop{W: 20, H: 10, Stride: 20, Pix: pix})
	if err != nil {
		t.Fatal(err)
	}
	s, _ := newStoreServer(t, false, func(o *Options) { o.Images = a })
	h := s.Handler()
	rec := send(t, h, "GET", "/api/images/"+ref, "")
	if rec.Code != 200 {
		t.Fatalf("GET archived crop: %d %s", rec.Code, rec.Body)
	}
	img, err := png.Decode(rec.Body)
	if err != nil || img.Bounds().Dx() != 20 || img.Bounds().Dy() != 10 {
		t.Errorf("archived crop: %v, %v", img.Bounds(), err)
	}
	sendError(t, h, "GET", "/api/images/"+strings.Repeat("a", 64)+".png", "", 404, "not found in the image archive")
}

package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/webinspect/webinspect/engine/status"
	"github.com/webinspect/webinspect/internal/poll"
	"github.com/webinspect/webinspect/internal/syncbuf"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/webinspect/webinspect/rollmap"
)

var t0 = time.Date(2025, 3, 14, 6, 15, 2, 0, time.UTC)

// newTestServer returns a server over a fake store holding roll "R1" with
// 25 defects and roll "R0" with none.
func newTestServer(t *testing.T, mutate func(*Options)) (*Server, *fakeStore) {
	t.Helper()
	fs := newFakeStore(t)
	fs.addRoll("R0", 0, t0)
	fs.addRoll("R1", 25, t0.Add(time.Hour))
	o := DefaultOptions()
	o.Store = fs
	o.Gatherer = prometheus.NewRegistry()
	o.Status = func() status.Status {
		return status.Status{
			State: "running", Source: "sim", Recipe: "fabric-default", RollID: "R1",
			Started: t0, SpeedMPerMin: 100, MDM: 25.5, WebWidthMM: 2000, Cameras: 2,
			LinesIn: 123456, BlocksDropped: 2, LinesDropped: 512, UninspectedM: 0.25,
			Defects: 25, DefectsByClass: map[string]int64{"hole": 9, "stain": 8, "fold": 8},
		}
	}
	if mutate != nil {
		mutate(&o)
	}
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return s, fs
}

// do serves one request and checks the headers every response must carry.
func do(t *testing.T, h http.Handler, method, target string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(method, target, nil)
	req.Host = "127.0.0.1:8080" // a loopback server, as the defaults say
	h.ServeHTTP(rec, req)
	if rec.Header().Get("Content-Type") == "" {
		t.Errorf("%s %s: no Content-Type", method, target)
	}
	if got := rec.Header().Get("X-Content-Type-Options"); got != "nosniff" {
		t.Errorf("%s %s: X-Content-Type-Options %q, want nosniff", method, target, got)
	}
	return rec
}

// getJSON serves a request, checks the status code and JSON content type,
// and decodes the body into v.
func getJSON(t *testing.T, h http.Handler, method, target string, wantCode int, v any) *httptest.ResponseRecorder {
	t.Helper()
	rec := do(t, h, method, target)
	if rec.Code != wantCode {
		t.Fatalf("%s %s: status %d, want %d; body %s", method, target, rec.Code, wantCode, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("%s %s: Content-Type %q, want application/json", method, target, ct)
	}
	dec := json.NewDecoder(bytes.NewReader(rec.Body.Bytes()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s %s: decode %T: %v; body %s", method, target, v, err, rec.Body)
	}
	return rec
}

// wantError checks that a request fails with code and a JSON error whose
// message contains msg.
func wantError(t *testing.T, h http.Handler, method, target string, code int, msg string) {
	t.Helper()
	var body errorBody
	getJSON(t, h, method, target, code, &body)
	if !strings.Contains(body.Error, msg) {
		t.Errorf("%s %s: error %q, want it to contain %q", method, target, body.Error, msg)
	}
}

// keys returns the sorted top-level keys of a JSON object.
func keys(t *testing.T, b []byte) []string {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("not a JSON object: %v: %s", err, b)
	}
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func TestStatus(t *testing.T) {
	s, _ := newTestServer(t, nil)
	var st LiveStatus
	getJSON(t, s.Handler(), "GET", "/api/status", 200, &st)
	if st.State != "running" || st.RollID != "R1" || st.SpeedMPerMin != 100 || st.DefectsByClass["hole"] != 9 {
		t.Errorf("status = %+v", st)
	}

	s, _ = newTestServer(t, func(o *Options) {
		o.Status = func() status.Status { return status.Status{State: "starting"} }
	})
	rec := do(t, s.Handler(), "GET", "/api/status")
	if !strings.Contains(rec.Body.String(), `"defects_by_class":{}`) {
		t.Errorf("nil DefectsByClass should be served as {}: %s", rec.Body)
	}

	s, _ = newTestServer(t, func(o *Options) { o.Status = nil })
	wantError(t, s.Handler(), "GET", "/api/status", 503, "no engine")

	s, _ = newTestServer(t, func(o *Options) {
		o.Status = func() status.Status { return status.Status{SpeedMPerMin: math.NaN()} }
	})
	wantError(t, s.Handler(), "GET", "/api/status", 500, "encode response")
}

func TestRolls(t *testing.T) {
	s, fs := newTestServer(t, nil)
	h := s.Handler()
	rec := do(t, h, "GET", "/api/rolls")
	if got := keys(t, rec.Body.Bytes()); !slices.Equal(got, []string{"rolls"}) {
		t.Errorf("keys %v, want [rolls]", got)
	}
	var list rollList
	getJSON(t, h, "GET", "/api/rolls", 200, &list)
	if len(list.Rolls) != 2 || list.Rolls[0].ID != "R1" || list.Rolls[1].ID != "R0" {
		t.Fatalf("rolls = %+v", list.Rolls)
	}
	if r := list.Rolls[0]; r.Defects != 25 || r.WebWidthMM != 2000 || !r.Started.Equal(t0.Add(time.Hour)) {
		t.Errorf("roll R1 = %+v", r)
	}

	// Some rolls unreadable: the others are still listed, with a warning.
	fs.listErr = errors.New("rollmap: /data/R9/roll.json: roll map file corrupt")
	getJSON(t, h, "GET", "/api/rolls", 200, &list)
	if len(list.Rolls) != 2 || !strings.Contains(list.Warning, "R9") {
		t.Errorf("partial list = %+v", list)
	}
	// None readable: 500.
	fs.rolls = nil
	wantError(t, h, "GET", "/api/rolls", 500, "corrupt")
	// Empty store: [] rather than null.
	fs.listErr = nil
	rec = do(t, h, "GET", "/api/rolls")
	if strings.TrimSpace(rec.Body.String()) != `{"rolls":[]}` {
		t.Errorf("empty list body %s", rec.Body)
	}
}

func TestRoll(t *testing.T) {
	s, fs := newTestServer(t, nil)
	h := s.Handler()
	fs.uninspected["R1"] = []rollmap.Uninspected{{
		RollID: "R1", MDStartM: 3, MDEndM: 3.5, CDStartMM: 0, CDEndMM: 1000, Camera: 0, Lines: 2048,
		Reason: rollmap.ReasonDropped,
	}}
	var detail rollDetail
	rec := getJSON(t, h, "GET", "/api/rolls/R1", 200, &detail)
	if detail.ID != "R1" || detail.Defects != 25 || len(detail.Uninspected) != 1 ||
		detail.Uninspected[0].Reason != rollmap.ReasonDropped || detail.Uninspected[0].MDEndM != 3.5 {
		t.Errorf("detail = %+v", detail)
	}
	// RollInfo's fields at the top level, the ranges beside them.
	want := []string{"defects", "id", "length_m", "material", "open", "recipe", "source", "started",
		"uninspected", "uninspected_m", "uninspected_ranges", "web_width_mm"}
	if got := keys(t, rec.Body.Bytes()); !slices.Equal(got, want) {
		t.Errorf("keys\n got %v\nwant %v", got, want)
	}
	rec = do(t, h, "GET", "/api/rolls/R0")
	if !strings.Contains(rec.Body.String(), `"uninspected":[]`) {
		t.Errorf("no ranges should be []: %s", rec.Body)
	}

	wantError(t, h, "GET", "/api/rolls/R404", 404, `roll "R404" not found`)
	wantError(t, h, "GET", "/api/rolls/..x", 400, "bad roll ID")
	wantError(t, h, "GET", "/api/rolls/a%2Fb", 400, "bad roll ID")

	fs.uninspErr = errors.New("rollmap: roll R1: uninspected.arrows: roll map file truncated")
	wantError(t, h, "GET", "/api/rolls/R1", 500, "truncated")
}

func TestDefectsPaging(t *testing.T) {
	s, fs := newTestServer(t, nil)
	h := s.Handler()

	rec := do(t, h, "GET", "/api/rolls/R1/defects")
	if got := keys(t, rec.Body.Bytes()); !slices.Equal(got, []string{"defects", "next_after", "roll_id"}) {
		t.Errorf("keys %v", got)
	}
	var page defectPage
	getJSON(t, h, "GET", "/api/rolls/R1/defects", 200, &page)
	if page.RollID != "R1" || len(page.Defects) != 25 || page.NextAfter == nil || *page.NextAfter != 25 {
		t.Fatalf("default page: roll %q, %d defects, next_after %v", page.RollID, len(page.Defects), page.NextAfter)
	}
	if fs.lastQuery.Limit != DefaultDefectLimit {
		t.Errorf("default limit %d, want %d", fs.lastQuery.Limit, DefaultDefectLimit)
	}
	d := page.Defects[4]
	if d.ID != 5 || d.Class != "stain" || d.Decision != rollmap.DecisionPass || d.MDStartM != 4 || d.Lane != -1 || !d.Time.Equal(t0.Add(time.Hour+4*time.Second)) {
		t.Errorf("defect 5 = %+v", d)
	}

	// Walk the roll 7 at a time with next_after.
	var ids []int64
	after := "0"
	for range 10 {
		getJSON(t, h, "GET", "/api/rolls/R1/defects?limit=7&after="+after, 200, &page)
		for _, d := range page.Defects {
			ids = append(ids, d.ID)
		}
		if page.NextAfter == nil {
			break
		}
		after = jsonNumber(*page.NextAfter)
	}
	if len(ids) != 25 || !slices.IsSorted(ids) || ids[0] != 1 || ids[24] != 25 {
		t.Errorf("paged IDs %v, want 1..25 once each", ids)
	}

	// Caught up: empty list and null next_after.
	rec = do(t, h, "GET", "/api/rolls/R1/defects?after=25")
	if got := strings.TrimSpace(rec.Body.String()); got != `{"roll_id":"R1","defects":[],"next_after":null}` {
		t.Errorf("caught-up body %s", got)
	}
}

func jsonNumber(n int64) string { b, _ := json.Marshal(n); return string(b) }

func TestDefectsFilters(t *testing.T) {
	s, fs := newTestServer(t, nil)
	h := s.Handler()
	for _, tc := range []struct {
		query string
		want  []int64
	}{
		{"class=hole&limit=3", []int64{1, 4, 7}},
		{"decision=mark&md_from=10&md_to=16", []int64{12, 14, 16}},
		{"class=fold&decision=pass", []int64{3, 9, 15, 21}},
		{"md_from=23.005", []int64{24, 25}},
		{"md_to=0", []int64{1}}, // 0 is a bound here, not "no bound"
		{"md_from=0&md_to=1.5", []int64{1, 2}},
		{"class=scratch", nil},
		{"after=20&class=", []int64{21, 22, 23, 24, 25}}, // empty filter: none
	} {
		var page defectPage
		getJSON(t, h, "GET", "/api/rolls/R1/defects?"+tc.query, 200, &page)
		var got []int64
		for _, d := range page.Defects {
			got = append(got, d.ID)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: IDs %v, want %v (query %+v)", tc.query, got, tc.want, fs.lastQuery)
		}
	}
}

func TestDefectsErrors(t *testing.T) {
	s, fs := newTestServer(t, nil)
	h := s.Handler()
	for _, tc := range []struct{ query, msg string }{
		{"limit=0", "limit: must be an integer 1..10000"},
		{"limit=10001", "limit: must be an integer 1..10000"},
		{"limit=ten", "limit: must be an integer 1..10000"},
		{"limit=", "limit: must be an integer 1..10000"},
		{"after=-1", "after: must be an integer >= 0"},
		{"after=1.5", "after: must be an integer >= 0"},
		{"md_from=-2", "md_from: must be a number of metres >= 0"},
		{"md_from=NaN", "md_from: must be a number of metres >= 0"},
		{"md_to=Inf", "md_to: must be a number of metres >= 0"},
		{"md_from=5&md_to=2", "md_to: must be >= md_from (got md_from=5, md_to=2)"},
		{"limt=5", `unknown parameter "limt"`},
		{"limit=5&limit=6", "limit: given 2 times"},
		{"class=%zz", "query string"},
	} {
		wantError(t, h, "GET", "/api/rolls/R1/defects?"+tc.query, 400, tc.msg)
	}
	wantError(t, h, "GET", "/api/rolls/nope/defects", 404, `roll "nope" not found`)
	wantError(t, h, "GET", "/api/rolls/-x/defects", 400, "bad roll ID")
	fs.err = errors.New("rollmap: roll R1: defects.arrows: disk on fire")
	wantError(t, h, "GET", "/api/rolls/R1/defects", 500, "disk on fire")
}

func TestRouting(t *testing.T) {
	s, _ := newTestServer(t, nil)
	h := s.Handler()
	wantError(t, h, "GET", "/api/nothing", 404, "no such path: /api/nothing")
	wantError(t, h, "GET", "/api/rolls/R1/defects/3/extra", 404, "no such path")
	wantError(t, h, "GET", "/index.html", 404, "no such path")
	wantError(t, h, "GET", "/ui/missing.js", 404, "no such file")
	for _, target := range []string{"/api/rolls", "/api/status", "/api/rolls/R1/defects", "/metrics", "/"} {
		wantError(t, h, "POST", target, 405, "method POST not allowed")
		rec := do(t, h, "DELETE", target)
		if rec.Code != 405 || !strings.Contains(rec.Header().Get("Allow"), "GET") {
			t.Errorf("DELETE %s: status %d, Allow %q", target, rec.Code, rec.Header().Get("Allow"))
		}
	}
	// HEAD is GET without a body.
	if rec := do(t, h, "HEAD", "/api/rolls"); rec.Code != 200 {
		t.Errorf("HEAD /api/rolls: %d", rec.Code)
	}
}

func TestPage(t *testing.T) {
	s, _ := newTestServer(t, nil)
	h := s.Handler()
	rec := do(t, h, "GET", "/")
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("GET /: %d %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	page := rec.Body.String()
	if !strings.Contains(page, `<canvas id="rollmap"`) {
		t.Error("page has no roll map canvas")
	}
	if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
		t.Errorf("CSP %q", csp)
	}
	// Every local script and stylesheet the page names is served with its
	// type; nothing comes from another host.
	refs := regexp.MustCompile(`(?:src|href)="([^"]+)"`).FindAllStringSubmatch(page, -1)
	types := map[string]string{".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
	served := map[string]int{}
	for _, m := range refs {
		ref := m[1]
		if strings.HasPrefix(ref, "data:") {
			continue
		}
		if !strings.HasPrefix(ref, "/ui/") {
			t.Errorf("page refers to %q outside /ui/", ref)
			continue
		}
		r := do(t, h, "GET", ref)
		ext := ref[strings.LastIndex(ref, "."):]
		if r.Code != 200 || r.Header().Get("Content-Type") != types[ext] || r.Body.Len() == 0 {
			t.Errorf("GET %s: %d %q, %d bytes", ref, r.Code, r.Header().Get("Content-Type"), r.Body.Len())
		}
		served[ext]++
	}
	if served[".js"] < 1 || served[".css"] < 1 {
		t.Errorf("page refers to %v assets, want scripts and a style sheet", served)
	}

	// Every script finds every element it asks for by ID.
	for name, a := range assets {
		if !strings.HasSuffix(name, ".js") {
			continue
		}
		for _, m := range regexp.MustCompile(`\$\('([^']+)'\)`).FindAllStringSubmatch(string(a.data), -1) {
			if !strings.Contains(page, `id="`+m[1]+`"`) {
				t.Errorf("%s uses element #%s, index.html has none", name, m[1])
			}
		}
	}

	// Revalidation by ETag.
	req := httptest.NewRequest("GET", "http://127.0.0.1:8080/ui/rollmap.js", nil)
	req.Header.Set("If-None-Match", assets["rollmap.js"].etag)
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusNotModified {
		t.Errorf("If-None-Match: status %d, want 304", rec.Code)
	}
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "webinspect_test_things_total", Help: "Things."})
	reg.MustRegister(c)
	c.Add(3)
	s, _ := newTestServer(t, func(o *Options) { o.Gatherer = reg })
	rec := do(t, s.Handler(), "GET", "/metrics")
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), "webinspect_test_things_total 3") {
		t.Errorf("/metrics: %d\n%s", rec.Code, rec.Body)
	}
	if !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/plain") {
		t.Errorf("/metrics Content-Type %q", rec.Header().Get("Content-Type"))
	}

	s, _ = newTestServer(t, func(o *Options) { o.Gatherer = nil })
	wantError(t, s.Handler(), "GET", "/metrics", 404, "no such path")
}

func TestLoggingAndPanics(t *testing.T) {
	var buf syncbuf.Buffer
	s, fs := newTestServer(t, func(o *Options) {
		o.Logger = zerolog.New(&buf).Level(zerolog.DebugLevel)
	})
	h := s.Handler()
	do(t, h, "GET", "/api/rolls/R1/defects?limit=2")
	line := buf.String()
	for _, want := range []string{`"level":"debug"`, `"path":"/api/rolls/R1/defects"`, `"query":"limit=2"`, `"status":200`, `"message":"http request"`} {
		if !strings.Contains(line, want) {
			t.Errorf("log %s lacks %s", line, want)
		}
	}

	fs.panicMsg = "fake store exploded"
	wantError(t, h, "GET", "/api/rolls/R1", 500, "internal error")
	if !strings.Contains(buf.String(), "fake store exploded") {
		t.Errorf("panic not logged: %s", buf.String())
	}
	fs.panicMsg = ""

	// Above debug level, requests are not logged.
	buf.Reset()
	s, _ = newTestServer(t, func(o *Options) { o.Logger = zerolog.New(&buf).Level(zerolog.InfoLevel) })
	do(t, s.Handler(), "GET", "/api/rolls")
	if buf.Len() != 0 {
		t.Errorf("info-level logger logged a request: %s", buf.String())
	}
}

func TestOptions(t *testing.T) {
	fs := newFakeStore(t)
	for _, tc := range []struct {
		name   string
		mutate func(*Options)
		field  string // "" = valid
	}{
		{"defaults", func(*Options) {}, ""},
		{"port 0", func(o *Options) { o.Listen = "127.0.0.1:0" }, ""},
		{"all interfaces with token", func(o *Options) { o.Listen = ":9090"; o.Token = testToken }, ""},
		{"all interfaces open", func(o *Options) { o.Listen = ":9090"; o.AllowOpenChanges = true }, ""},
		{"localhost", func(o *Options) { o.Listen = "localhost:0" }, ""},
		{"ipv6 loopback", func(o *Options) { o.Listen = "[::1]:0" }, ""},
		{"all interfaces without token", func(o *Options) { o.Listen = ":9090" }, "Listen"},
		{"lan address without token", func(o *Options) { o.Listen = "192.168.1.10:8080" }, "Listen"},
		{"host name without token", func(o *Options) { o.Listen = "inspect.local:8080" }, "Listen"},
		{"short token", func(o *Options) { o.Token = "short" }, "Token"},
		{"token with space", func(o *Options) { o.Token = "0123456789 abcdef" }, "Token"},
		{"protect reads without token", func(o *Options) { o.ProtectReads = true }, "ProtectReads"},
		{"status interval", func(o *Options) { o.StatusInterval = time.Millisecond }, "StatusInterval"},
		{"heartbeat", func(o *Options) { o.HeartbeatInterval = time.Hour }, "HeartbeatInterval"},
		{"threshold", func(o *Options) { o.DetectionThresholds = map[rollmap.Detector]float64{rollmap.DetectorThreshold: 0} }, "DetectionThresholds"},
		{"nil status and gatherer", func(o *Options) { o.Status = nil; o.Gatherer = nil }, ""},
		{"no port", func(o *Options) { o.Listen = "localhost" }, "Listen"},
		{"named port", func(o *Options) { o.Listen = "localhost:http" }, "Listen"},
		{"port too big", func(o *Options) { o.Listen = "localhost:65536" }, "Listen"},
		{"no store", func(o *Options) { o.Store = nil }, "Store"},
		{"body 0", func(o *Options) { o.MaxBodyBytes = 0 }, "MaxBodyBytes"},
		{"body huge", func(o *Options) { o.MaxBodyBytes = 2 << 30 }, "MaxBodyBytes"},
		{"shutdown negative", func(o *Options) { o.ShutdownTimeout = -time.Second }, "ShutdownTimeout"},
	} {
		o := DefaultOptions()
		o.Store = fs
		tc.mutate(&o)
		err := o.Validate()
		_, nerr := New(o)
		switch {
		case tc.field == "" && (err != nil || nerr != nil):
			t.Errorf("%s: Validate %v, New %v; want valid", tc.name, err, nerr)
		case tc.field != "" && (!errors.Is(err, ErrInvalidOptions) || !strings.Contains(err.Error(), tc.field+" ")):
			t.Errorf("%s: Validate error %v, want ErrInvalidOptions naming %s", tc.name, err, tc.field)
		case tc.field != "" && !errors.Is(nerr, ErrInvalidOptions):
			t.Errorf("%s: New error %v, want ErrInvalidOptions", tc.name, nerr)
		}
	}
}

func TestListenAndServe(t *testing.T) {
	s, _ := newTestServer(t, func(o *Options) { o.Listen = "127.0.0.1:0" })
	if s.Addr() != "" {
		t.Errorf("Addr before listening = %q, want empty", s.Addr())
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.ListenAndServe(ctx) }()

	poll.Until(t, 30*time.Second, "the server to listen", func() bool { return s.Addr() != "" })
	addr := s.Addr()
	if _, port, _ := net.SplitHostPort(addr); port == "0" || port == "" {
		t.Fatalf("Addr() = %q, want the actual port", addr)
	}
	res, err := http.Get("http://" + addr + "/api/rolls/R1/defects?limit=1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(body), `"next_after":1`) {
		t.Errorf("GET over TCP: %d %s", res.StatusCode, body)
	}

	// A second server on the same address fails clearly.
	s2, _ := newTestServer(t, func(o *Options) { o.Listen = addr })
	err = s2.ListenAndServe(ctx)
	if err == nil || err.Error() != "listen "+addr+": address already in use" || !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("second listen: %v, want \"listen %s: address already in use\" wrapping EADDRINUSE", err, addr)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("ListenAndServe after cancel: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ListenAndServe did not return after ctx was cancelled")
	}
	if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		t.Error("still accepting connections after shutdown")
	}
}

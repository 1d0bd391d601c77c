package api

// Browser tests of issue 15 ("what quality staff see must be true"): stable
// class styles, counts from the roll map with their scope, loading states,
// lane labels, the density strip's gaps, crop orientation and the review
// queue's count. The harness is browser_test.go's.

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/webinspect/webinspect/engine/status"
	"github.com/webinspect/webinspect/rollmap"
)

// styleNames are classes the class-style tests ask for: the built-in
// recipes' and the simulator's, and names of no recipe.
var styleNames = []string{"slub", "hole", "stain", "streak", "knot", "crease", "gel", "scratch", "other",
	"grain-fault", "scar", "", "fold", "zebra-mark", "Ölfleck", "spot"}

// TestBrowserClassStyles (issue 15 #1): a class keeps its colour and shape
// across page loads whatever order the page meets the classes in, and the
// page's style is the report's (StyleOf). The classes of the built-in
// recipes and the simulator all differ.
func TestBrowserClassStyles(t *testing.T) {
	images := t.TempDir()
	st, _ := newE2EStore(t, images)
	srv := startServer(t, st, e2eStatus, func(o *Options) { o.Images = DirImages(images) })

	type style struct {
		Colour string `json:"colour"`
		Shape  string `json:"shape"`
	}
	names, _ := json.Marshal(styleNames)
	reversed := make([]string, len(styleNames))
	for i, n := range styleNames {
		reversed[len(styleNames)-1-i] = n
	}
	rnames, _ := json.Marshal(reversed)
	load := func(order []byte) map[string]style {
		ctx, pe := openPage(t, srv.URL+"/#map", 25*time.Second)
		waitFor(t, ctx, 10*time.Second, `WI.map.mode !== ''`, `'mode ' + WI.map.mode`, "the map's first drawing")
		got := eval[[]style](t, ctx, `((names) => names.map((n) => { const s = WI.classStyle(n); return {colour: s.colour, shape: s.shape}; }))(`+string(order)+`)`)
		var order2 []string
		json.Unmarshal(order, &order2)
		m := map[string]style{}
		for i, n := range order2 {
			m[n] = got[i]
		}
		pe.check(t)
		return m
	}
	first, second := load(names), load(rnames)
	seen := map[style]string{}
	for _, n := range styleNames {
		if first[n] != second[n] {
			t.Errorf("class %q: %v on one page load, %v on the next", n, first[n], second[n])
		}
		want := StyleOf(n)
		if first[n].Colour != want.Colour || first[n].Shape != want.Shape {
			t.Errorf("class %q: the page draws %v, the report %v", n, first[n], want)
		}
		if _, ok := knownClasses[n]; ok {
			if o, dup := seen[first[n]]; dup {
				t.Errorf("classes %q and %q share %v", o, n, first[n])
			}
			seen[first[n]] = n
		}
	}
}

// containsAll reports whether s contains every one of subs.
func containsAll(s string, subs ...string) bool {
	for _, x := range subs {
		if !strings.Contains(s, x) {
			return false
		}
	}
	return true
}

// startHandlerServer is startServer with the handler wrapped by wrap.
func startHandlerServer(t *testing.T, st *rollmap.Store, stf func() status.Status, edit func(*Options), wrap func(http.Handler) http.Handler) *e2eServer {
	t.Helper()
	o := DefaultOptions()
	o.Store = st
	o.Gatherer = prometheus.NewRegistry()
	o.Status = stf
	o.Events = NewHub()
	if edit != nil {
		edit(&o)
	}
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(wrap(s.Handler()))
	t.Cleanup(ts.Close)
	t.Cleanup(o.Events.Close)
	return &e2eServer{URL: ts.URL, Hub: o.Events}
}

// gate holds the requests whose path matches until it is opened, and
// records the paths of requests that arrive meanwhile.
type gate struct {
	match   func(path string) bool
	open    chan struct{}
	once    sync.Once
	mu      sync.Mutex
	waiting int      // requests held
	seen    []string // paths of every request while closed
}

func newGate(match func(string) bool) *gate { return &gate{match: match, open: make(chan struct{})} }

func (g *gate) release() { g.once.Do(func() { close(g.open) }) }

func (g *gate) closed() bool {
	select {
	case <-g.open:
		return false
	default:
		return true
	}
}

func (g *gate) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if g.closed() {
			g.mu.Lock()
			g.seen = append(g.seen, r.URL.Path+"?"+r.URL.RawQuery)
			g.mu.Unlock()
		}
		if g.match(r.URL.Path) {
			g.mu.Lock()
			g.waiting++
			g.mu.Unlock()
			select {
			case <-g.open:
			case <-r.Context().Done():
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}

func (g *gate) held() (int, []string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.waiting, slices.Clone(g.seen)
}

// manyDefectsRoll writes an open roll id of n defects over lengthM metres.
func manyDefectsRoll(t *testing.T, st *rollmap.Store, id string, n int, lengthM float64) {
	t.Helper()
	r, err := st.StartRoll(rollmap.RollMeta{ID: id, Recipe: "fabric-default", Material: "fabric", Source: "sim", WebWidthMM: 2000, Started: t0})
	if err != nil {
		t.Fatal(err)
	}
	r.SetLength(lengthM)
	classes := []string{"hole", "stain", "slub"}
	ds := make([]rollmap.Defect, n)
	for i := range ds {
		md := float64(i) * lengthM / float64(n)
		cd := float64(i*37%1900) + 10
		ds[i] = rollmap.Defect{ID: int64(i + 1), MDStartM: md, MDEndM: md + 0.01, CDStartMM: cd, CDEndMM: cd + 5, AreaMM2: 5,
			PeakScore: 40, Class: classes[i%3], Severity: "minor", Decision: "pass", Detector: "threshold", Lane: -1, Time: t0}
	}
	if err := r.AddDefects(ds...); err != nil {
		t.Fatal(err)
	}
	if err := r.Flush(); err != nil {
		t.Fatal(err)
	}
}

// TestBrowserMapWaitsForRollInfo: the map asks for no defects or cells
// before the roll's info (its length) has answered, however long that
// takes, so a long roll's first drawing is the whole roll, never its first
// metre (what made TestBrowserLargeRoll see glyphs on a busy machine).
func TestBrowserMapWaitsForRollInfo(t *testing.T) {
	st := openStore(t)
	manyDefectsRoll(t, st, "R-slow", 3000, 3000)
	g := newGate(func(p string) bool { return p == "/api/rolls/R-slow" })
	srv := startHandlerServer(t, st, func() status.Status { return status.Status{State: "stopped", DefectsByClass: map[string]int64{}} }, nil, g.wrap)
	ctx, pe := openPage(t, srv.URL+"/?roll=R-slow#map", 30*time.Second)
	defer g.release()
	// Wait until the page is idle while the roll's info is held: it has
	// drawn the empty map and nothing is due or in flight.
	waitFor(t, ctx, 15*time.Second, `WI.map.rollId === 'R-slow' && document.getElementById('rollmap').clientWidth > 0 &&
		WI.map.perf.draws > 0 && !WI.map.fetchTimer && !WI.map.fetching`,
		`'draws ' + WI.map.perf.draws + ', timer ' + WI.map.fetchTimer + ', fetching ' + WI.map.fetching`, "the map idle while the roll's info is held")
	_, seen := g.held()
	for _, p := range seen {
		if strings.Contains(p, "/grid") || strings.Contains(p, "/defects") {
			t.Errorf("the map asked for %s before the roll's info answered", p)
		}
	}
	g.release()
	waitFor(t, ctx, 15*time.Second, `WI.map.perf.firstDraw != null`, `'mode ' + WI.map.mode`, "the first drawing")
	if mode := eval[string](t, ctx, `WI.map.mode`); mode != "grid" {
		t.Errorf("the whole roll of 3000 defects first drawn as %q, want grid", mode)
	}
	pe.check(t)
}

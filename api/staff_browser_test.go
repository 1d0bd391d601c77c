package api

// Browser tests of issue 15 ("what quality staff see must be true"): stable
// class styles, counts from the roll map with their scope, loading states,
// lane labels, the density strip's gaps, crop orientation and the review
// queue's count. The harness is browser_test.go's.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
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

// TestBrowserLiveCountsAndScopes (issue 15 #2, #4): after a restart that
// resumed a roll the engine's counters say 4 defects, the roll map 29:
// the live view shows the roll map's count and class breakdown, and says
// which figures are this roll's and which count since the engine started.
func TestBrowserLiveCountsAndScopes(t *testing.T) {
	st := openStore(t)
	resumedRoll(t, st)
	engine := func() status.Status {
		return status.Status{State: "running", Source: "sim", RollID: "R-res", MDM: 120, SpeedMPerMin: 50, WebWidthMM: 2000,
			LinesIn: 5000, BlocksDropped: 29, LinesDropped: 900, UninspectedM: 0, Defects: 4, DefectsByClass: map[string]int64{"hole": 4},
			Started: t0.Add(time.Hour)}
	}
	srv := startServer(t, st, engine, nil)
	ctx, pe := openPage(t, srv.URL+"/#live", 30*time.Second)
	waitFor(t, ctx, 15*time.Second, `document.getElementById('st-roll').textContent === 'R-res' && !document.getElementById('newest-empty').textContent.startsWith('Loading')`,
		`'roll ' + document.getElementById('st-roll').textContent`, "the live view of R-res")
	if got := eval[string](t, ctx, `document.getElementById('st-defects').textContent`); got != "29" {
		t.Errorf("live view says %s defects, the roll map holds 29", got)
	}
	byClass := eval[map[string]string](t, ctx, `Object.fromEntries([...document.querySelectorAll('#st-classes li')].map(
		(li) => [li.children[1].textContent, li.querySelector('.n').textContent]))`)
	if byClass["hole"] != "10" || byClass["slub"] != "10" || byClass["stain"] != "9" {
		t.Errorf("whole-roll breakdown %v, want hole 10, slub 10, stain 9 (the roll map's)", byClass)
	}
	if got := eval[string](t, ctx, `document.getElementById('st-uninspected').textContent`); got != "1.28" {
		t.Errorf("uninspected %s m, the roll map says 1.28", got)
	}
	scopes := eval[map[string]string](t, ctx, `Object.fromEntries(['st-defects', 'st-uninspected-wrap', 'st-dropped', 'st-dropped-lines', 'st-lines'].map(
		(id) => { const dl = document.getElementById(id).closest('dl'); const h = dl.previousElementSibling;
			return [id, (dl.dataset.scope || '') + ': ' + (h ? h.textContent : '')]; }))`)
	for id, want := range map[string]string{"st-defects": "roll: This roll", "st-uninspected-wrap": "roll: This roll",
		"st-dropped": "engine: Since the engine started", "st-dropped-lines": "engine: Since the engine started", "st-lines": "engine: Since the engine started"} {
		if !strings.HasPrefix(scopes[id], want) {
			t.Errorf("#%s is labelled %q, want %q", id, scopes[id], want)
		}
	}
	screenshot(t, ctx, "live-scopes")
	pe.check(t)
}

// reviewRoll writes the closed roll "R-rq" with n defects to review.
func reviewRoll(t *testing.T, st *rollmap.Store, n int) {
	t.Helper()
	r, err := st.StartRoll(rollmap.RollMeta{ID: "R-rq", Recipe: "fabric-default", Material: "fabric", Source: "sim", WebWidthMM: 2000, Started: t0})
	if err != nil {
		t.Fatal(err)
	}
	r.SetLength(float64(n))
	ds := make([]rollmap.Defect, n)
	for i := range ds {
		ds[i] = rollmap.Defect{ID: int64(i + 1), MDStartM: float64(i), MDEndM: float64(i) + 0.01, CDStartMM: 100, CDEndMM: 110, AreaMM2: 5,
			PeakScore: 30 + float64(i%40), Class: "slub", Severity: "minor", Decision: "review", Detector: "threshold", Lane: -1, Time: t0}
	}
	if err := r.AddDefects(ds...); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestBrowserLoadingStates (issue 15 #9): while the data of a view is on
// its way the view says it is loading, never that it is empty; the review
// queue's header counts every defect to review, not the page loaded.
func TestBrowserLoadingStates(t *testing.T) {
	st := openStore(t)
	reviewRoll(t, st, 150)
	g := newGate(func(p string) bool { return strings.HasSuffix(p, "/review-queue") || strings.HasSuffix(p, "/defects") })
	running := func() status.Status {
		return status.Status{State: "running", Source: "sim", RollID: "R-rq", MDM: 150, WebWidthMM: 2000, DefectsByClass: map[string]int64{}}
	}
	srv := startHandlerServer(t, st, running, nil, g.wrap)
	defer g.release()

	ctx, pe := openPage(t, srv.URL+"/#live", 30*time.Second)
	waitFor(t, ctx, 15*time.Second, `document.getElementById('st-roll').textContent === 'R-rq'`, `'roll ' + document.getElementById('st-roll').textContent`, "the live status")
	deadline := time.Now().Add(15 * time.Second)
	for n, _ := g.held(); n == 0; n, _ = g.held() {
		if time.Now().After(deadline) {
			t.Fatal("the live view never asked for the roll's last 100 m")
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, id := range []string{"newest-empty", "last100-empty"} {
		if got := eval[string](t, ctx, `(() => { const e = document.getElementById('`+id+`'); return e.hidden ? '(hidden)' : e.textContent; })()`); got != "Loading…" {
			t.Errorf("#%s says %q while the defects are on their way, want Loading…", id, got)
		}
	}
	clickElement(t, ctx, "tab-btn-review")
	waitFor(t, ctx, 10*time.Second, `WI.state.tab === 'review'`, `WI.state.tab`, "the review tab")
	if got := eval[string](t, ctx, `(() => { const e = document.getElementById('queue-empty'); return e.hidden ? '(hidden)' : e.textContent; })()`); got != "Loading…" {
		t.Errorf("the review queue says %q while it loads, want Loading…", got)
	}
	screenshot(t, ctx, "review-loading")
	g.release()
	waitFor(t, ctx, 15*time.Second, `document.querySelectorAll('#queue tbody tr').length > 0 && document.getElementById('newest-list').children.length > 0`,
		`'queue ' + document.getElementById('queue-count').textContent`, "the queue and the newest defects")
	if got := eval[string](t, ctx, `document.getElementById('queue-count').textContent`); got != "1 of 150 to review" {
		t.Errorf("queue header %q, want \"1 of 150 to review\"", got)
	}
	if got := eval[bool](t, ctx, `document.getElementById('queue-empty').hidden && document.getElementById('newest-empty').hidden`); !got {
		t.Error("an empty-state message is shown beside data")
	}
	screenshot(t, ctx, "review-queue")
	pe.check(t)
}

// TestBrowserMapDetails (issue 15 #9): lanes have one name everywhere; a
// glyph never covers a lane's label; the density strip hatches the
// uninspected range itself, not the whole metre bin it starts in; a crop
// says which way MD and CD run.
func TestBrowserMapDetails(t *testing.T) {
	images := t.TempDir()
	st := openStore(t)
	scheme := rollmap.GradingScheme{Kind: rollmap.SchemeCountPerArea, PerM2: 1, PassLimit: 1}
	r, err := st.StartRoll(rollmap.RollMeta{ID: "R-lanes", Recipe: "fabric-default", Material: "fabric", Source: "sim", WebWidthMM: e2eWebWidthMM, Started: t0,
		Lanes: []rollmap.Lane{{Name: "L1", CDStartMM: 0, CDEndMM: 900}, {Name: "L2", CDStartMM: 900, CDEndMM: 2000}}, Grading: &scheme})
	if err != nil {
		t.Fatal(err)
	}
	r.SetLength(e2eLengthM)
	crop := writeCrop(t, images, 40, 30, 3)
	// Defect 1 sits where lane L2's label is drawn (top-left of the lane).
	if err := r.AddDefects(
		rollmap.Defect{ID: 1, MDStartM: 0.3, MDEndM: 0.4, CDStartMM: 905, CDEndMM: 915, AreaMM2: 50, PeakScore: 60, Class: "hole",
			Severity: "critical", Decision: "mark", Detector: "threshold", Lane: 1, Time: t0},
		rollmap.Defect{ID: 2, MDStartM: 20, MDEndM: 21, CDStartMM: 1500, CDEndMM: 1580, AreaMM2: 50, PeakScore: 60, Class: "stain",
			Severity: "major", Decision: "mark", Detector: "threshold", Lane: 1, Time: t0, ImageRef: crop}); err != nil {
		t.Fatal(err)
	}
	if err := r.AddUninspected(rollmap.Uninspected{MDStartM: 35.5, MDEndM: 36, Camera: -1, Lines: 100, Reason: rollmap.ReasonDropped}); err != nil {
		t.Fatal(err)
	}
	if err := r.Flush(); err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, st, func() status.Status { return status.Status{State: "stopped", DefectsByClass: map[string]int64{}} },
		func(o *Options) { o.Images = DirImages(images) })
	ctx, pe := openPage(t, srv.URL+"/?roll=R-lanes#map", 30*time.Second)
	waitFor(t, ctx, 15*time.Second, `WI.map.mode === 'glyph' && WI.map.summary != null && WI.map.density != null && WI.map.laneLabels && WI.map.laneLabels.length === 2 && !WI.map.dirty`,
		`'mode ' + WI.map.mode + ' labels ' + JSON.stringify(WI.map.laneLabels)`, "the map with its lanes and density strip")

	// The label of L2 is on top of defect 1's glyph.
	box := readCanvasBox(t, ctx)
	gx, gy := box.at(910, 0.35)
	label := eval[struct {
		X, Y, W, H  float64
		Name, Label string
	}](t, ctx, `WI.map.laneLabels[1]`)
	if !(gx >= label.X && gx <= label.X+label.W && gy >= label.Y && gy <= label.Y+label.H) {
		t.Fatalf("the test's defect (at %.0f, %.0f) is not under the label %+v", gx, gy, label)
	}
	px := canvasPixels(t, ctx, [][2]float64{{gx, gy}})[0]
	hole, _ := parseCSSColour(cssRGB(StyleOf("hole").Colour))
	if (rgb{px[0], px[1], px[2]}).near(hole, 40) {
		t.Errorf("defect 1's glyph (%v) covers lane L2's label at (%.0f, %.0f)", px, gx, gy)
	}
	screenshot(t, ctx, "rollmap-lanes")

	// One lane name: the details say what the map says.
	x2, y2 := box.centre(rollmap.Defect{MDStartM: 20, MDEndM: 21, CDStartMM: 1500, CDEndMM: 1580})
	clickAt(t, ctx, box.Left+x2, box.Top+y2, "defect 2")
	waitFor(t, ctx, 10*time.Second, `!document.getElementById('detail-table').hidden && document.querySelector('#detail-table td').textContent === '2'`,
		`document.getElementById('detail').innerText`, "defect 2's details")
	lane := eval[string](t, ctx, `[...document.querySelectorAll('#detail-table tr')].find((tr) => tr.cells[0].textContent === 'Lane').cells[1].textContent`)
	if lane != label.Name || !strings.HasPrefix(label.Label, label.Name) {
		t.Errorf("the details name the lane %q, the map %q", lane, label.Label)
	}
	axes := eval[string](t, ctx, `(() => { const c = document.querySelector('#detail-crop figcaption'); return c ? c.textContent : ''; })()`)
	if !containsAll(axes, "CD", "MD", "across", "down") {
		t.Errorf("the crop does not say how MD and CD run: %q", axes)
	}

	// Zoom to 34..38 m: the gap starts at 35.5 m, mid-bin; the strip must
	// not hatch 35.0..35.5.
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`(() => { WI.map.fitted = false; WI.map.view = {md0: 34, md1: 38, cdc: null}; WI.map.dirty = true; })()`)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, 5*time.Second, `!WI.map.dirty && WI.map.view.md0 === 34`, `JSON.stringify(WI.map.view)`, "the zoomed map")
	stripY := box.Height - mapMarginBottom + 6 + 4 // the strip's top part (bars stand on its bottom)
	at := func(md float64) [2]float64 { x, _ := box.atView(0, md, 34, 38); return [2]float64{x, stripY} }
	pts := [][2]float64{at(35.1), at(35.2), at(35.35), at(35.7), at(35.8)}
	got := canvasPixels(t, ctx, pts)
	reddish := func(p [4]int) bool { return p[0]-p[2] > 12 }
	for i, md := range []float64{35.1, 35.2, 35.35} {
		if reddish(got[i]) {
			t.Errorf("the strip is hatched at %.2f m (%v), before the gap starting at 35.5 m", md, got[i])
		}
	}
	if !reddish(got[3]) && !reddish(got[4]) {
		t.Errorf("the strip is not hatched inside the gap 35.5..36 m: %v %v", got[3], got[4])
	}
	screenshot(t, ctx, "rollmap-gap-zoom")
	pe.check(t)
}

// cssRGB turns #rrggbb into rgb(r, g, b).
func cssRGB(hex string) string {
	var r, g, b int
	fmt.Sscanf(hex, "#%02x%02x%02x", &r, &g, &b)
	return fmt.Sprintf("rgb(%d, %d, %d)", r, g, b)
}

// TestBrowserReportPage (issue 15 #1, #7): the HTML report as a browser
// shows it: the lane table with its total, the density chart's y axis,
// Pareto bars in the class colours.
func TestBrowserReportPage(t *testing.T) {
	st := openStore(t)
	gradedRoll(t, st, "R-yd", rollmap.GradingScheme{Kind: rollmap.SchemeFourPoint, PassLimit: 40})
	srv := startServer(t, st, nil, nil)
	ctx, pe := openPage(t, srv.URL+"/api/rolls/R-yd/report.html", 30*time.Second)
	waitFor(t, ctx, 10*time.Second, `document.readyState === 'complete' && !!document.querySelector('table.grades')`, `document.readyState`, "the report")
	total := eval[string](t, ctx, `document.querySelector('table.grades tr.total').textContent`)
	if !strings.Contains(total, "12") {
		t.Errorf("the lane table's total row %q does not give the roll's 12 defects", total)
	}
	if n := eval[int](t, ctx, `document.querySelectorAll('svg line.yaxis, svg text.ytick').length`); n < 3 {
		t.Errorf("the density chart shows %d y-axis elements, want the axis and two ticks", n)
	}
	fill := eval[string](t, ctx, `getComputedStyle(document.querySelector('rect[data-class="slub"]')).fill`)
	if want := cssRGB(StyleOf("slub").Colour); fill != want {
		t.Errorf("the slub bar is %s, the map draws slub %s", fill, want)
	}
	screenshot(t, ctx, "report")
	pe.check(t)
}

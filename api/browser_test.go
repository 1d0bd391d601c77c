package api

// End-to-end test of the roll map page in headless Chromium, driven with
// chromedp: the page is served by the real Handler over a real rollmap.Store,
// and the test checks what the canvas shows, not only what the script
// computed.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"math"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/webinspect/webinspect/engine"
	"github.com/webinspect/webinspect/rollmap"
)

// chromiumPath is Debian's Chromium; `make deps` installs it.
const chromiumPath = "/usr/bin/chromium"

// Plot geometry of ui/rollmap.js (MARGIN, and the "Last 50 m" view the page
// opens with), mirrored here to find a defect on the screen independently of
// the script. Change both together.
const (
	mapMarginLeft, mapMarginTop, mapMarginRight, mapMarginBottom = 60, 26, 18, 8
	mapViewM                                                     = 50 // the roll below is shorter, so the view is 0..50 m
	e2eWebWidthMM                                                = 2000
	e2eRollID                                                    = "R-e2e"
)

// e2eDefects are the roll's defects: one per class, far apart and big enough
// (about 28 x 12 CSS pixels) that the centre of each is its fill colour.
var e2eDefects = []rollmap.Defect{
	{ID: 101, Class: "hole", MDStartM: 5, MDEndM: 6.2, CDStartMM: 200, CDEndMM: 280},
	{ID: 102, Class: "stain", MDStartM: 18, MDEndM: 19.2, CDStartMM: 900, CDEndMM: 980},
	{ID: 103, Class: "fold", MDStartM: 30, MDEndM: 31.2, CDStartMM: 1500, CDEndMM: 1580},
}

// newE2EStore returns a store holding the open roll e2eRollID, 40 m long,
// with e2eDefects and one uninspected range, flushed to disk.
func newE2EStore(t *testing.T) *rollmap.Store {
	t.Helper()
	st, err := rollmap.OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	roll, err := st.StartRoll(rollmap.RollMeta{
		ID: e2eRollID, Recipe: "fabric-default", Material: "fabric", Source: "sim",
		WebWidthMM: e2eWebWidthMM, Started: t0,
	})
	if err != nil {
		t.Fatal(err)
	}
	roll.SetLength(40)
	ds := make([]rollmap.Defect, len(e2eDefects))
	for i, d := range e2eDefects {
		d.AreaMM2, d.PeakScore, d.MeanScore, d.Contrast, d.Polarity = 96, 55, 31, -28, "dark"
		d.Severity, d.Decision, d.Detector, d.Lane = "major", "mark", "threshold", -1
		d.Time = t0.Add(time.Duration(d.MDStartM) * time.Second)
		ds[i] = d
	}
	if err := roll.AddDefects(ds...); err != nil {
		t.Fatal(err)
	}
	if err := roll.AddUninspected(rollmap.Uninspected{
		MDStartM: 35, MDEndM: 36, Camera: -1, Lines: 8192, Reason: rollmap.ReasonDropped,
	}); err != nil {
		t.Fatal(err)
	}
	if err := roll.Flush(); err != nil {
		t.Fatal(err)
	}
	return st
}

// newBrowser starts headless Chromium for the test and returns its context,
// bounded by timeout. The browser is stopped (and its fresh user-data-dir,
// made by chromedp, removed) at cleanup.
func newBrowser(t *testing.T, timeout time.Duration) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("the browser test needs Chromium at %s (%v): run `make deps` to install it (CI installs it)", chromiumPath, err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.WindowSize(1280, 800),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc) // waits for the browser to exit
	bctx, cancelBrowser := chromedp.NewContext(actx)
	t.Cleanup(cancelBrowser)
	// The first action starts the browser, whose life is tied to bctx; the
	// deadline goes on a child so that it does not end the browser early.
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start %s: %v", chromiumPath, err)
	}
	ctx, cancel := context.WithTimeout(bctx, timeout)
	t.Cleanup(cancel)
	return ctx
}

// pageErrors collects uncaught exceptions and error-level log entries (CSP
// violations, failed loads) of the page, from subscriptions made before
// navigation.
type pageErrors struct {
	mu   sync.Mutex
	errs []string
}

func watchPageErrors(t *testing.T, ctx context.Context) *pageErrors {
	t.Helper()
	pe := &pageErrors{}
	exceptions := chromedp.Events(ctx, runtime.ExceptionThrown)
	entries := chromedp.Events(ctx, cdplog.EntryAdded)
	if _, err := chromedp.Call(ctx, cdplog.Enable, cdp.Empty{}); err != nil {
		t.Fatalf("enable log domain: %v", err)
	}
	go func() {
		for ev, err := range exceptions {
			if err != nil {
				return
			}
			pe.add("exception: " + (&chromedp.ExceptionError{ExceptionDetails: ev.ExceptionDetails}).Error())
		}
	}()
	go func() {
		for ev, err := range entries {
			if err != nil {
				return
			}
			if ev.Entry != nil && ev.Entry.Level == cdplog.EntryLevelError {
				pe.add(fmt.Sprintf("%s error: %s (%s)", ev.Entry.Source, ev.Entry.Text, ev.Entry.URL))
			}
		}
	}()
	return pe
}

func (pe *pageErrors) add(s string) {
	pe.mu.Lock()
	pe.errs = append(pe.errs, s)
	pe.mu.Unlock()
}

func (pe *pageErrors) check(t *testing.T) {
	t.Helper()
	pe.mu.Lock()
	defer pe.mu.Unlock()
	for _, e := range pe.errs {
		t.Errorf("page: %s", e)
	}
}

// eval evaluates a JavaScript expression in the page and decodes its value.
func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// waitFor polls a JavaScript predicate until it is true, failing the test
// with what and the value of describe when wait runs out. (chromedp.Poll
// compiles its predicate with new Function, which the page's CSP forbids.)
func waitFor(t *testing.T, ctx context.Context, wait time.Duration, pred, describe, what string) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](pred))
		if err != nil {
			t.Fatalf("waiting for %s: evaluate %s: %v", what, pred, err)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not happen within %v; %s", what, wait, eval[string](t, ctx, describe))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// canvasBox is where the roll map canvas is: its top-left corner in the
// viewport and its CSS size, all in CSS pixels, and the device pixel ratio.
type canvasBox struct {
	Left   float64 `json:"left"`
	Top    float64 `json:"top"`
	Width  float64 `json:"width"`  // clientWidth, as rollmap.js's geometry uses
	Height float64 `json:"height"` // clientHeight
	DPR    float64 `json:"dpr"`
}

func readCanvasBox(t *testing.T, ctx context.Context) canvasBox {
	t.Helper()
	return eval[canvasBox](t, ctx, `(() => {
		const c = document.getElementById('rollmap'), r = c.getBoundingClientRect();
		return {left: r.left, top: r.top, width: c.clientWidth, height: c.clientHeight, dpr: window.devicePixelRatio || 1};
	})()`)
}

// at returns the position, in CSS pixels from the canvas's top-left corner,
// of CD cd (mm) and MD md (m) in the 0..mapViewM m view.
func (b canvasBox) at(cd, md float64) (x, y float64) {
	pw := b.Width - mapMarginLeft - mapMarginRight
	ph := b.Height - mapMarginTop - mapMarginBottom
	return mapMarginLeft + cd/e2eWebWidthMM*pw, mapMarginTop + md/mapViewM*ph
}

// centre returns the centre of defect d, in CSS pixels from the canvas's
// top-left corner.
func (b canvasBox) centre(d rollmap.Defect) (x, y float64) {
	return b.at((d.CDStartMM+d.CDEndMM)/2, (d.MDStartM+d.MDEndM)/2)
}

type rgb [3]int

func (c rgb) near(o rgb, tol int) bool {
	for i := range c {
		if d := c[i] - o[i]; d < -tol || d > tol {
			return false
		}
	}
	return true
}

func (c rgb) String() string { return fmt.Sprintf("rgb(%d, %d, %d)", c[0], c[1], c[2]) }

// parseCSSColour parses a computed colour, "rgb(r, g, b)".
func parseCSSColour(s string) (rgb, error) {
	var c rgb
	inner, ok := strings.CutPrefix(s, "rgb(")
	inner, ok2 := strings.CutSuffix(inner, ")")
	parts := strings.Split(inner, ",")
	if !ok || !ok2 || len(parts) != 3 {
		return c, fmt.Errorf("colour %q: want rgb(r, g, b)", s)
	}
	for i, p := range parts {
		v, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || v < 0 || v > 255 {
			return c, fmt.Errorf("colour %q: component %d is not 0..255", s, i)
		}
		c[i] = v
	}
	return c, nil
}

// webBackground is the fill of the plot area (#fbfbfc in rollmap.js).
var webBackground = rgb{0xfb, 0xfb, 0xfc}

func TestBrowserRollMap(t *testing.T) {
	o := DefaultOptions()
	o.Store = newE2EStore(t)
	o.Gatherer = prometheus.NewRegistry()
	o.Status = func() engine.Status {
		return engine.Status{
			State: "running", Source: "sim", Recipe: "fabric-default", Material: "fabric",
			RollID: e2eRollID, Started: t0, SpeedMPerMin: 100, MDM: 40, WebWidthMM: e2eWebWidthMM,
			Cameras: 2, LinesIn: 327680, Defects: int64(len(e2eDefects)),
			DefectsByClass: map[string]int64{"hole": 1, "stain": 1, "fold": 1},
		}
	}
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close) // after the browser has stopped: cleanups run last first

	shots := os.Getenv("WEBINSPECT_SHOTS")
	if shots == "" {
		shots = t.TempDir()
	} else if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatalf("WEBINSPECT_SHOTS: %v", err)
	}

	ctx := newBrowser(t, 20*time.Second)
	pe := watchPageErrors(t, ctx)
	if err := chromedp.Do(ctx, chromedp.Navigate(ts.URL+"/")); err != nil {
		t.Fatalf("navigate to %s: %v", ts.URL, err)
	}

	// The map has drawn every defect once its count line says so (draw()
	// writes it last).
	want := fmt.Sprintf("%d of %d defects in view", len(e2eDefects), len(e2eDefects))
	waitFor(t, ctx, 10*time.Second,
		`document.getElementById('map-count').textContent.startsWith(`+strconv.Quote(want)+`)`,
		`'map count: "' + document.getElementById('map-count').textContent + '", message: "' + document.getElementById('message').textContent + '"'`,
		"the roll map drawing its defects")

	// The legend gives each class its colour; classes must differ.
	legendCSS := eval[map[string]string](t, ctx, `Object.fromEntries([...document.querySelectorAll('#legend li')].map(
		(li) => [li.textContent.trim(), getComputedStyle(li.querySelector('.swatch')).backgroundColor]))`)
	colours := make(map[string]rgb)
	for _, d := range e2eDefects {
		css, ok := legendCSS[d.Class]
		if !ok {
			t.Fatalf("legend has no class %q: %v", d.Class, legendCSS)
		}
		c, err := parseCSSColour(css)
		if err != nil {
			t.Fatalf("legend swatch of %s: %v", d.Class, err)
		}
		for cls, other := range colours {
			if other.near(c, 8) {
				t.Fatalf("classes %s and %s share colour %v in the legend", cls, d.Class, c)
			}
		}
		colours[d.Class] = c
	}

	// Probes: each defect's centre must be its class colour, and an empty
	// spot of the web the web's background.
	type probe struct {
		what string
		pos  func(canvasBox) (x, y float64) // CSS pixels from the canvas's top-left corner
		want rgb
	}
	var probes []probe
	for _, d := range e2eDefects {
		probes = append(probes, probe{fmt.Sprintf("defect %d (%s)", d.ID, d.Class),
			func(b canvasBox) (float64, float64) { return b.centre(d) }, colours[d.Class]})
	}
	probes = append(probes, probe{"empty web at CD 1900 mm, MD 12 m",
		func(b canvasBox) (float64, float64) { return b.at(1900, 12) }, webBackground})

	// The canvas bitmap.
	box := readCanvasBox(t, ctx)
	pts := make([][2]float64, len(probes))
	for i, p := range probes {
		pts[i][0], pts[i][1] = p.pos(box)
	}
	ptsJSON, err := json.Marshal(pts)
	if err != nil {
		t.Fatal(err)
	}
	bitmap := eval[[][4]int](t, ctx, `((pts) => {
		const c = document.getElementById('rollmap'), g = c.getContext('2d'), r = window.devicePixelRatio || 1;
		return pts.map(([x, y]) => Array.from(g.getImageData(Math.floor(x * r), Math.floor(y * r), 1, 1).data));
	})(`+string(ptsJSON)+`)`)
	for i, p := range probes {
		px := bitmap[i]
		if got := (rgb{px[0], px[1], px[2]}); px[3] != 255 || !got.near(p.want, 2) {
			t.Errorf("canvas bitmap at %s (%.0f, %.0f): rgba(%d, %d, %d, %d), want %v",
				p.what, pts[i][0], pts[i][1], px[0], px[1], px[2], px[3], p.want)
		}
	}

	// What is on the screen, right after the viewport grows. A resize
	// clears the canvas bitmap, and the page must redraw it before the next
	// paint: a headless --screenshot grows the viewport just before it
	// captures, and the page once showed a blank map there.
	if _, err := chromedp.Call(ctx, emulation.SetDeviceMetricsOverride,
		emulation.SetDeviceMetricsOverrideParams{Width: 1280, Height: 940, DeviceScaleFactor: 1}); err != nil {
		t.Fatalf("resize viewport: %v", err)
	}
	shot, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	shotPath := filepath.Join(shots, "rollmap.png")
	if err := os.WriteFile(shotPath, shot, 0o644); err != nil {
		t.Errorf("save screenshot: %v", err)
	}
	t.Logf("screenshot: %s", shotPath)
	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil {
		t.Fatalf("decode screenshot: %v", err)
	}
	grown := readCanvasBox(t, ctx)
	if grown.Height <= box.Height {
		t.Fatalf("canvas height %v after growing the viewport, was %v: the test no longer resizes the map", grown.Height, box.Height)
	}
	for _, p := range probes {
		x, y := p.pos(grown)
		sx, sy := int(math.Floor((grown.Left+x)*grown.DPR)), int(math.Floor((grown.Top+y)*grown.DPR))
		if got := screenRGB(img, sx, sy); !got.near(p.want, 3) {
			t.Errorf("screenshot at %s (%d, %d) after a resize: %v, want %v (see %s)", p.what, sx, sy, got, p.want, shotPath)
		}
	}

	// Clicking a defect shows its fields in the detail panel.
	picked := e2eDefects[1]
	cx, cy := grown.centre(picked)
	if err := chromedp.Do(ctx, chromedp.MouseClickXY(grown.Left+cx, grown.Top+cy)); err != nil {
		t.Fatalf("click defect %d: %v", picked.ID, err)
	}
	waitFor(t, ctx, 5*time.Second, `!document.getElementById('detail-table').hidden`,
		`'detail panel: ' + document.getElementById('detail').innerText`,
		fmt.Sprintf("the detail panel opening on a click on defect %d", picked.ID))
	fields := eval[map[string]string](t, ctx, `Object.fromEntries([...document.querySelectorAll('#detail-table tr')].map(
		(tr) => [tr.querySelector('th').textContent, tr.querySelector('td').textContent.trim()]))`)
	if got := fields["ID"]; got != strconv.FormatInt(picked.ID, 10) {
		t.Errorf("detail panel ID %q, want %d; fields %v", got, picked.ID, fields)
	}
	if got := fields["Class"]; got != picked.Class {
		t.Errorf("detail panel Class %q, want %q", got, picked.Class)
	}
	if shot, err := chromedp.Run(ctx, chromedp.CaptureScreenshot()); err != nil {
		t.Errorf("screenshot: %v", err)
	} else if err := os.WriteFile(filepath.Join(shots, "rollmap-selected.png"), shot, 0o644); err != nil {
		t.Errorf("save screenshot: %v", err)
	}

	pe.check(t)
}

// screenRGB returns the colour of pixel (x, y) of img, or {-1, -1, -1} when
// it lies outside.
func screenRGB(img image.Image, x, y int) rgb {
	if !(image.Point{x, y}).In(img.Bounds()) {
		return rgb{-1, -1, -1}
	}
	r, g, b, _ := img.At(x, y).RGBA()
	return rgb{int(r >> 8), int(g >> 8), int(b >> 8)}
}

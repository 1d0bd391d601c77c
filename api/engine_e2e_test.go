package api

// End-to-end against the running engine: the simulator feeds the real
// engine, which writes a real roll map and image archive and publishes to
// the event hub, while headless Chromium drives the page the server gives.

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/rs/zerolog"

	"github.com/webinspect/webinspect/acquisition/sim"
	"github.com/webinspect/webinspect/engine"
	"github.com/webinspect/webinspect/rollmap"
	"github.com/webinspect/webinspect/rollmap/archive"
)

// archiveSink hands the engine's crops to the image archive.
type archiveSink struct{ a *archive.Archive }

func (s archiveSink) PutCrop(w, h, stride int, pix []uint8) (string, error) {
	return s.a.Put(archive.Crop{W: w, H: h, Stride: stride, Pix: pix})
}

func TestBrowserAgainstRunningEngine(t *testing.T) {
	cfg := sim.DefaultConfig()
	cfg.Material, cfg.Seed = "fabric", 5
	cfg.WidthMM, cfg.PixelMM, cfg.LineMM = e2eWebWidthMM, 1, 1
	cfg.LengthM, cfg.Defects = 40, 14
	cfg.Realtime, cfg.SpeedMPerMin = true, 600 // 4 s of live web
	src, err := sim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	recipe, err := engine.DefaultRecipe("fabric")
	if err != nil {
		t.Fatal(err)
	}
	st := openStore(t)
	info := src.Info()
	roll, err := st.StartRoll(rollmap.RollMeta{ID: "R-live", Recipe: recipe.Name, Material: info.Material, Source: info.Name,
		WebWidthMM: info.WebWidthMM, Lanes: recipe.Lanes, Grading: recipe.Grading})
	if err != nil {
		t.Fatal(err)
	}
	arch, err := archive.Open(t.TempDir(), archive.DefaultOptions(), zerolog.Nop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { arch.Close() })

	hub := NewHub()
	eng, err := engine.New(engine.Options{Recipe: recipe, Source: src, Roll: roll, Logger: zerolog.Nop(), Images: archiveSink{arch},
		OnDefects: func(ds []rollmap.Defect) {
			for i := range ds {
				hub.Publish("defect", ds[i])
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	// The real server loop (Serve publishes the engine status every
	// second, which the page follows), on a real socket.
	o := DefaultOptions()
	o.Listen = "127.0.0.1:0"
	o.Store, o.Images, o.Events, o.Status = st, arch, hub, eng.Status
	server, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		t.Fatal(err)
	}
	srvCtx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- server.Serve(srvCtx, ln) }()
	t.Cleanup(func() {
		hub.Close()
		stop()
		<-served
	})
	srv := &e2eServer{URL: "http://" + ln.Addr().String(), Hub: hub}
	done := make(chan error, 1)
	go func() { done <- eng.Run(context.Background()) }()

	// While the web runs, the live view fills from the event stream; then
	// the map follows the live roll.
	ctx, pe := openPage(t, srv.URL+"/?roll=R-live#live", 40*time.Second)
	waitFor(t, ctx, 15*time.Second, `document.querySelectorAll('#newest-list img').length > 0`,
		`'newest: ' + document.getElementById('newest').innerText`, "a defect with its crop arriving in the live view")
	screenshot(t, ctx, "engine-live")
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/?roll=R-live#map")); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("engine: %v", err)
	}
	if err := roll.Close(); err != nil {
		t.Fatal(err)
	}
	page := getAPI[struct {
		Defects []rollmap.Defect `json:"defects"`
	}](t, srv, "/api/rolls/R-live/defects")
	if len(page.Defects) < 5 {
		t.Fatalf("the engine found %d defects on the simulated web; the test needs at least 5", len(page.Defects))
	}

	// The roll map shows exactly the defects the API lists.
	want := fmt.Sprintf("%d of %d defects in view", len(page.Defects), len(page.Defects))
	waitFor(t, ctx, 10*time.Second, `document.getElementById('map-count').textContent.startsWith(`+strconv.Quote(want)+`)`,
		`'map count: ' + document.getElementById('map-count').textContent`, "the roll map drawing the engine's defects")
	var apiIDs []int64
	for _, d := range page.Defects {
		apiIDs = append(apiIDs, d.ID)
	}
	if shown := eval[[]int64](t, ctx, `WI.map.defects.map((d) => d.defect_id).sort((a, b) => a - b)`); !slices.Equal(shown, apiIDs) {
		t.Fatalf("the map holds defects %v, the API lists %v", shown, apiIDs)
	}

	// Clicking a defect opens its crop, the one the engine archived.
	var picked rollmap.Defect
	for _, d := range page.Defects {
		if d.ImageRef != "" && d.CDEndMM-d.CDStartMM < 300 && (picked.ID == 0 || d.AreaMM2 > picked.AreaMM2) {
			picked = d
		}
	}
	if picked.ID == 0 {
		t.Fatalf("no defect has a crop: %+v", page.Defects)
	}
	view := eval[struct{ MD0, MD1 float64 }](t, ctx, `({md0: WI.map.view.md0, md1: WI.map.view.md1})`)
	box := readCanvasBox(t, ctx)
	cx, cy := box.atView((picked.CDStartMM+picked.CDEndMM)/2, (picked.MDStartM+picked.MDEndM)/2, view.MD0, view.MD1)
	clickAt(t, ctx, box.Left+cx, box.Top+cy, fmt.Sprintf("defect %d", picked.ID))
	waitFor(t, ctx, 5*time.Second,
		`(() => { const i = document.querySelector('#detail-crop img'); return !!i && i.complete && i.naturalWidth > 0; })()`,
		`'detail: ' + document.getElementById('detail').innerText`, fmt.Sprintf("the crop of defect %d loading", picked.ID))
	if src := eval[string](t, ctx, `document.querySelector('#detail-crop img').getAttribute('src')`); !strings.HasSuffix(src, picked.ImageRef) {
		t.Errorf("the detail panel shows image %q, want defect %d's %q", src, picked.ID, picked.ImageRef)
	}
	screenshot(t, ctx, "engine-map")

	// A review taken in the page is in the API afterwards.
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/?roll=R-live#review")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, 10*time.Second, `WI.review.items.length > 0`, `'queue: ' + document.getElementById('queue').innerText`, "the review queue")
	first := eval[int64](t, ctx, `WI.review.items[WI.review.index].defect_id`)
	if err := chromedp.Do(ctx, chromedp.SendKeys("#reviewer", "Bob R\r")); err != nil {
		t.Fatal(err)
	}
	pressKeys(t, ctx, "f")
	waitFor(t, ctx, 5*time.Second, `document.getElementById('rv-result').textContent.startsWith('#`+strconv.FormatInt(first, 10)+`: false alarm')`,
		`'result: ' + document.getElementById('rv-result').textContent`, "the false alarm being stored")
	got := getAPI[e2eDefectDetail](t, srv, fmt.Sprintf("/api/rolls/R-live/defects/%d", first))
	if got.Defect.ReviewStatus != "false_alarm" || len(got.Reviews) != 1 || got.Reviews[0].Reviewer != "Bob R" {
		t.Fatalf("defect %d after the review: status %q, reviews %+v", first, got.Defect.ReviewStatus, got.Reviews)
	}

	// The report the roll page links to carries the roll's lane grades.
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/?roll=R-live#map")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, 10*time.Second, `document.querySelectorAll('#roll-grades tbody tr').length > 0`,
		`'roll card: ' + document.getElementById('roll-card').innerText`, "the roll card's lane grades")
	href := eval[string](t, ctx, `document.getElementById('report-html').href`)
	res, err := http.Get(href)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	sum, err := st.Summary("R-live")
	if err != nil || len(sum.Grades) == 0 {
		t.Fatalf("summary grades %+v, %v", sum.Grades, err)
	}
	for _, g := range sum.Grades {
		if !strings.Contains(string(body), ">"+g.Grade+"<") || !strings.Contains(string(body), g.Name) {
			t.Errorf("report at %s does not show lane %s graded %s", href, g.Name, g.Grade)
		}
	}
	pe.check(t)
}

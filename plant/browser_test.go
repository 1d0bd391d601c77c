package plant

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/webinspect/webinspect/internal/chromiumtest"
	"github.com/webinspect/webinspect/internal/long"
	"github.com/webinspect/webinspect/internal/poll"
)

// The plant page in headless Chromium shows ten lines live, and its
// trend chart has the API's counts per class and day. The screenshot is
// written to $WEBINSPECT_PLANT_SCREENSHOT when set.
func TestPlantPage(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: no browser")
	}
	if raceEnabled {
		long.Skip(t, "ten lines and a browser under the race detector take minutes")
	}
	bctx := chromiumtest.Start(t, chromiumtest.Options(1280, 1400)) // before the rig: a missing browser fails at once
	g := newRig(t, 10)
	for _, l := range g.lines {
		l.startRoll(t)
		l.web(t, 25)
	}
	g.waitUnion()
	srv := httptest.NewServer(g.svc.Handler())
	defer srv.Close()

	ctx, cancel := context.WithTimeout(bctx, 5*time.Minute)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/")); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 2*time.Minute, "the page shows ten running lines", func() bool {
		running, err := chromedp.Run(ctx, chromedp.Evaluate[int](`[...document.querySelectorAll('#lines .line .state')].filter(e => e.textContent === 'running').length`))
		return err == nil && running == 10
	})
	// The chart's points against the API.
	type point struct {
		Class string `json:"class"`
		Day   string `json:"day"`
		N     string `json:"n"`
	}
	var points []point
	poll.Until(t, time.Minute, "the trend chart is drawn", func() bool {
		var err error
		points, err = chromedp.Run(ctx, chromedp.Evaluate[[]point](`[...document.querySelectorAll('#trend circle')].map(c => ({class: c.dataset.class, day: c.dataset.day, n: c.dataset.n}))`))
		return err == nil && len(points) > 0
	})
	api := g.svc.Trends(false, "")
	want := map[[2]string]int64{}
	for _, c := range api {
		want[[2]string{c.Class, c.Day}] = c.N
	}
	if len(points) != len(api) {
		t.Errorf("chart has %d points, the API %d counts", len(points), len(api))
	}
	for _, p := range points {
		if fmtI(want[[2]string{p.Class, p.Day}]) != p.N {
			t.Errorf("chart point %s %s = %s, API %d", p.Class, p.Day, p.N, want[[2]string{p.Class, p.Day}])
		}
	}
	holdRows, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('#hold tbody tr').length`))
	if err != nil {
		t.Fatal(err)
	}
	if holdRows != len(g.svc.Holds()) {
		t.Errorf("hold list shows %d rolls, the API %d", holdRows, len(g.svc.Holds()))
	}
	if out := os.Getenv("WEBINSPECT_PLANT_SCREENSHOT"); out != "" {
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Clean(out), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, _ := json.Marshal(points)
	t.Logf("10 lines running; chart points %s", b)
}

package chromiumtest

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// A browser that cannot start is tried Attempts times and the error names
// every attempt, so a CI log says it was the browser, not the page.
func TestStartNamesEveryFailedAttempt(t *testing.T) {
	opts := append(Options(640, 480), chromedp.ExecPath(t.TempDir()+"/no-chromium"))
	_, err := start(t, opts, 2)
	if err == nil {
		t.Fatal("a missing browser started")
	}
	for _, want := range []string{"attempt 1", "attempt 2", "start " + Path} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

func TestStartRunsABrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: no browser")
	}
	ctx := Start(t, Options(640, 480))
	if err := chromedp.Do(ctx, chromedp.Navigate("data:text/html,<title>webinspect</title>")); err != nil {
		t.Fatal(err)
	}
	title, err := chromedp.Run(ctx, chromedp.Title())
	if err != nil {
		t.Fatal(err)
	}
	if title != "webinspect" {
		t.Errorf("title %q, want webinspect", title)
	}
}

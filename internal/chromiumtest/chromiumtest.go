// Package chromiumtest starts Debian's headless Chromium for the UI tests
// (api, plant) through chromedp.
//
// Starting the browser is retried: on a loaded machine Chromium's zygote
// can fail to fork its helper processes ("Zygote could not fork") and the
// browser exits before the first command, which has nothing to do with the
// page under test. A start that fails three times fails the test, naming
// every attempt's error; what happens after the start (navigation, the
// page's own errors) is never retried.
package chromiumtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Path is where Debian's chromium package installs the browser.
const Path = "/usr/bin/chromium"

// Attempts is how many times Start tries to start the browser.
const Attempts = 3

// Options are chromedp's defaults for a headless, sandbox-less browser
// without GPU, first-run pages or background networking, at width × height.
func Options(width, height int) []chromedp.ExecAllocatorOption {
	return append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(Path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.WindowSize(width, height),
	)
}

// Start starts the browser with opts and returns its context; the browser
// is stopped (and its user-data-dir removed) at the test's cleanup. It
// fails the test when Chromium is not installed or does not start in
// Attempts tries.
func Start(t testing.TB, opts []chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	if _, err := os.Stat(Path); err != nil {
		t.Fatalf("the browser test needs Chromium at %s (%v): run `make deps` to install it (CI installs it)", Path, err)
	}
	ctx, err := start(t, opts, Attempts)
	if err != nil {
		t.Fatal(err)
	}
	return ctx
}

func start(t testing.TB, opts []chromedp.ExecAllocatorOption, attempts int) (context.Context, error) {
	var errs []error
	for i := range attempts {
		if i > 0 {
			time.Sleep(time.Duration(i) * time.Second) // let a loaded machine's forks through
		}
		actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
		bctx, cancelBrowser := chromedp.NewContext(actx)
		// The first action starts the browser, whose life is tied to bctx.
		err := chromedp.Do(bctx)
		if err == nil {
			t.Cleanup(cancelAlloc) // waits for the browser to exit
			t.Cleanup(cancelBrowser)
			if i > 0 {
				t.Logf("chromium started at attempt %d of %d after: %v", i+1, attempts, errors.Join(errs...))
			}
			return bctx, nil
		}
		cancelBrowser()
		cancelAlloc()
		errs = append(errs, fmt.Errorf("attempt %d: %w", i+1, err))
	}
	return nil, fmt.Errorf("start %s: %w", Path, errors.Join(errs...))
}

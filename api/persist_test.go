package api

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/webinspect/webinspect/rollmap"
)

// failingStore is a real store whose persistence health the test sets, as
// rollmap.Store reports it after a failed flush (rollmap's
// TestPersistenceErrorReported makes the real failure).
type failingStore struct {
	*rollmap.Store
	err atomic.Pointer[rollmap.PersistenceError]
}

func (f *failingStore) PersistenceError() *rollmap.PersistenceError { return f.err.Load() }

// diskFull is the persistence error of roll e2eRollID on a full disk.
func diskFull() *rollmap.PersistenceError {
	since := time.Date(2026, 12, 2, 11, 58, 3, 0, time.UTC)
	return &rollmap.PersistenceError{
		Roll: e2eRollID, Message: "rollmap: roll " + e2eRollID + ": flush: write defects.arrows: no space left on device",
		Since: since, Last: since.Add(41 * time.Second), Failures: 42, Rolls: 1,
	}
}

// /api/status said "running" with no sign of trouble while the roll map
// could not be written (issue 14 #3): persistence_error is null while
// writes succeed and names the roll, the error and since when while they
// fail.
func TestStatusPersistenceError(t *testing.T) {
	st := &failingStore{Store: openStore(t)}
	s := storeServer(t, st.Store, e2eStatus)
	s.opts.Store = st
	rec := do(t, s.Handler(), "GET", "/api/status")
	if !strings.Contains(rec.Body.String(), `"persistence_error":null`) {
		t.Errorf("healthy store: want \"persistence_error\":null in %s", rec.Body)
	}

	st.err.Store(diskFull())
	var ls LiveStatus
	getJSON(t, s.Handler(), "GET", "/api/status", 200, &ls)
	pe := ls.PersistenceError
	if pe == nil || pe.Roll != e2eRollID || !strings.Contains(pe.Message, "no space left on device") ||
		!pe.Since.Equal(diskFull().Since) || pe.Failures != 42 || pe.Lost {
		t.Errorf("status persistence_error %+v, want the store's full-disk error", pe)
	}
	if ls.State != "running" {
		t.Errorf("state %q: the engine still runs, the error is beside it", ls.State)
	}
	for _, k := range []string{`"since":"2026-12-02T11:58:03Z"`, `"message":`, `"failures":42`, `"lost":false`} {
		if rec := do(t, s.Handler(), "GET", "/api/status"); !strings.Contains(rec.Body.String(), k) {
			t.Errorf("status body lacks %s: %s", k, rec.Body)
		}
	}

	// The real store: nothing failed, so null.
	var real LiveStatus
	getJSON(t, storeServer(t, openStore(t), e2eStatus).Handler(), "GET", "/api/status", 200, &real)
	if real.PersistenceError != nil {
		t.Errorf("a fresh rollmap.Store reports %+v", real.PersistenceError)
	}
}

// TestBrowserPersistenceBanner: the live view shows a red banner while the
// roll map cannot be written, naming the error and since when, and takes
// it down once writes succeed again (issue 14 #3).
func TestBrowserPersistenceBanner(t *testing.T) {
	images := t.TempDir()
	base, _ := newE2EStore(t, images)
	st := &failingStore{Store: base}
	st.err.Store(diskFull())
	srv := startServer(t, base, e2eStatus, func(o *Options) { o.Store, o.Images = st, DirImages(images) })
	ctx, pe := openPage(t, srv.URL+"/#live", minWait)

	waitFor(t, ctx, minWait, `!document.getElementById('persist-banner').hidden`,
		`document.getElementById('persist-banner').outerHTML`, "the persistence banner")
	text := eval[string](t, ctx, `document.getElementById('persist-banner').textContent`)
	for _, want := range []string{"NOT being saved", e2eRollID, "no space left on device", "42 failed writes"} {
		if !strings.Contains(text, want) {
			t.Errorf("banner %q lacks %q", text, want)
		}
	}
	colour := eval[string](t, ctx, `getComputedStyle(document.getElementById('persist-banner')).backgroundColor`)
	if c, err := parseCSSColour(colour); err != nil || !c.near(rgb{198, 40, 40}, 10) {
		t.Errorf("banner background %s, want the page's red (--bad)", colour)
	}
	box := eval[[2]float64](t, ctx, `(() => { const r = document.getElementById('persist-banner').getBoundingClientRect(); return [r.top, r.height]; })()`)
	if box[1] < 20 || box[0] > 120 {
		t.Errorf("banner at top %v px, %v px high: want it near the top of the page and readable", box[0], box[1])
	}
	screenshot(t, ctx, "persistence-banner")

	// Writes succeed again: the next status takes the banner down.
	st.err.Store(nil)
	srv.Hub.Publish(EventStatus, LiveStatus{Status: e2eStatus(), CountsFrom: "engine", Scope: statusScope})
	waitFor(t, ctx, minWait, `document.getElementById('persist-banner').hidden`,
		`document.getElementById('persist-banner').outerHTML`, "the banner gone once the roll map is written again")
	pe.check(t)
}

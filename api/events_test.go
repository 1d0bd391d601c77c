package api

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/webinspect/webinspect/engine/status"
	"github.com/webinspect/webinspect/internal/poll"

	"github.com/prometheus/client_golang/prometheus"
)

// sseEvent is one parsed event of a stream.
type sseEvent struct {
	id    uint64
	kind  string
	data  string
	heart bool // a comment line
}

// sseReader parses an event stream.
type sseReader struct {
	r *bufio.Reader
}

func (s *sseReader) next() (sseEvent, error) {
	var e sseEvent
	seen := false
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			return e, err
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			if seen {
				return e, nil
			}
		case strings.HasPrefix(line, ":"):
			return sseEvent{heart: true}, nil
		case strings.HasPrefix(line, "id: "):
			e.id, err = strconv.ParseUint(line[4:], 10, 64)
			if err != nil {
				return e, err
			}
			seen = true
		case strings.HasPrefix(line, "event: "):
			e.kind, seen = line[7:], true
		case strings.HasPrefix(line, "data: "):
			e.data, seen = line[6:], true
		case strings.HasPrefix(line, "retry: "):
		default:
			return e, fmt.Errorf("unexpected line %q", line)
		}
	}
}

// openStream connects to url with an optional Last-Event-ID.
func openStream(t *testing.T, ctx context.Context, url, lastID string) (*sseReader, *http.Response) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("GET %s: %d %q", url, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	return &sseReader{r: bufio.NewReader(resp.Body)}, resp
}

// TestEventsReconnect: a client reads part of a live stream, drops the
// connection, and reconnects with the last ID it saw while the publisher
// keeps going: it must see every event exactly once, in order.
func TestEventsReconnect(t *testing.T) {
	hub := NewHub()
	s, _ := newTestServer(t, func(o *Options) { o.Events = hub })
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close) // after the streams' cleanups: Close waits for them

	const total = 3000
	var wg sync.WaitGroup
	wg.Add(1)
	published := make(chan struct{})
	// The publisher waits for the client's first and second reconnect
	// before its second and third thousand events, so two reconnects
	// happen while it publishes however the two are scheduled.
	reconnected := make(chan struct{}, 64)
	go func() { // the engine side
		defer wg.Done()
		for i := 1; i <= total; i++ {
			if i == 1001 || i == 2001 {
				select {
				case <-reconnected:
				case <-time.After(time.Minute):
					t.Errorf("publisher: no reconnect before event %d", i)
				}
			}
			hub.Publish(EventDefect, map[string]int{"n": i})
			if i%10 == 0 {
				time.Sleep(time.Millisecond) // a live pace, not a burst the subscriber buffer cannot hold
			}
		}
		close(published)
	}()
	reconnectsWhilePublishing := 0
	var last uint64
	seen := 0
	for round := 0; last < total; round++ {
		if round > 50 {
			t.Fatalf("no progress after %d reconnects (last %d)", round, last)
		}
		ctx, cancel := context.WithCancel(context.Background())
		// The first connection asks for everything from the start (the
		// publisher began before it): 0 is "before the first event".
		rd, resp := openStream(t, ctx, srv.URL+"/api/events", strconv.FormatUint(last, 10))
		t.Cleanup(func() { cancel(); resp.Body.Close() })
		for k := 0; k < 400 && last < total; k++ {
			e, err := rd.next()
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
			if e.heart {
				continue
			}
			if e.kind != EventDefect || e.id != last+1 {
				t.Fatalf("round %d: event %d %q after %d: lost or repeated", round, e.id, e.kind, last)
			}
			var v map[string]int
			if err := json.Unmarshal([]byte(e.data), &v); err != nil || v["n"] != int(e.id) {
				t.Fatalf("event %d: data %q", e.id, e.data)
			}
			last = e.id
			seen++
		}
		cancel() // the client disconnects mid-stream
		resp.Body.Close()
		select {
		case <-published:
		default:
			reconnectsWhilePublishing++
			reconnected <- struct{}{}
		}
	}
	wg.Wait()
	if reconnectsWhilePublishing < 2 {
		t.Errorf("only %d reconnects while the publisher ran; the test proves nothing", reconnectsWhilePublishing)
	}
	if seen != total {
		t.Errorf("saw %d events, want %d", seen, total)
	}
}

func TestEventsReset(t *testing.T) {
	hub := NewHub()
	s, _ := newTestServer(t, func(o *Options) { o.Events = hub })
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	for i := range HubHistory + 10 {
		hub.Publish(EventDefect, i)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel) // runs before srv.Close: ends the streams
	// ID 5 was overwritten: reset first, carrying the newest ID.
	rd, resp := openStream(t, ctx, srv.URL+"/api/events", "5")
	e, err := rd.next()
	if err != nil || e.kind != EventReset || e.id != HubHistory+10 {
		t.Fatalf("first event %+v, %v; want reset with id %d", e, err, HubHistory+10)
	}
	hub.Publish(EventRoll, RollEvent{Kind: RollStart, RollID: "R2"})
	if e, err = rd.next(); err != nil || e.kind != EventRoll || e.id != HubHistory+11 || !strings.Contains(e.data, `"roll_id":"R2"`) {
		t.Fatalf("after reset: %+v, %v", e, err)
	}
	resp.Body.Close()

	// An ID from a later (or earlier) process: reset too.
	rd, resp = openStream(t, ctx, srv.URL+"/api/events?last_event_id=99999999", "")
	if e, err = rd.next(); err != nil || e.kind != EventReset {
		t.Fatalf("future ID: %+v, %v", e, err)
	}
	resp.Body.Close()
	// The oldest retained ID minus one still replays everything kept.
	oldest := uint64(HubHistory + 11 - HubHistory + 1)
	rd, resp = openStream(t, ctx, srv.URL+"/api/events?last_event_id="+strconv.FormatUint(oldest-1, 10), "")
	if e, err = rd.next(); err != nil || e.id != oldest {
		t.Fatalf("replay from the oldest: %+v, %v", e, err)
	}
	resp.Body.Close()

	h := s.Handler()
	wantError(t, h, "GET", "/api/events?last_event_id=x", 400, `last_event_id: "x" is not an event ID`)
	wantError(t, h, "GET", "/api/events?since=1", 400, `unknown parameter "since"`)
	s2, _ := newTestServer(t, nil)
	wantError(t, s2.Handler(), "GET", "/api/events", 503, "no event hub")
}

// TestHubSlowSubscriber: a subscriber that does not read is dropped once
// its buffer is full; the publisher never waits for it.
func TestHubSlowSubscriber(t *testing.T) {
	hub := NewHub()
	slow, _, _, _ := hub.subscribe(0, false)
	fast, _, _, _ := hub.subscribe(0, false)
	done := make(chan struct{})
	got := 0
	go func() {
		defer close(done)
		for range fast.ch {
			got++
		}
	}()
	start := time.Now()
	for i := range 20 * HubSubscriberBuffer {
		hub.Publish(EventDefect, i)
	}
	took := time.Since(start)
	if hub.Dropped() < 1 {
		t.Fatal("the slow subscriber was not dropped")
	}
	n := 0
	for range slow.ch { // closed after its buffer filled
		n++
	}
	if n != HubSubscriberBuffer {
		t.Errorf("slow subscriber got %d events before the drop, want %d", n, HubSubscriberBuffer)
	}
	hub.Close()
	<-done
	if got == 0 {
		t.Error("the reading subscriber got nothing")
	}
	t.Logf("published %d events in %v (%.2f µs each)", 20*HubSubscriberBuffer, took, float64(took.Microseconds())/float64(20*HubSubscriberBuffer))
	if id := hub.Publish(EventDefect, 1); id != 0 {
		t.Errorf("Publish on a closed hub: id %d", id)
	}
}

func TestEventsHeartbeatAndStatus(t *testing.T) {
	hub := NewHub()
	s, _ := newTestServer(t, func(o *Options) {
		o.Events = hub
		o.Listen = "127.0.0.1:0"
		o.HeartbeatInterval = 20 * time.Millisecond
		o.StatusInterval = 100 * time.Millisecond
		o.ShutdownTimeout = 10 * time.Minute // an open stream that held up shutdown would show
	})
	ctx, cancel := context.WithCancel(context.Background())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, ln) }()
	url := "http://" + ln.Addr().String() + "/api/events"
	rctx, rcancel := context.WithCancel(context.Background())
	defer rcancel()
	rd, resp := openStream(t, rctx, url, "")
	defer resp.Body.Close()
	beats, statuses := 0, 0
	deadline := time.Now().Add(30 * time.Second)
	for (beats < 2 || statuses < 2) && time.Now().Before(deadline) {
		e, err := rd.next()
		if err != nil {
			t.Fatal(err)
		}
		if e.heart {
			beats++
		} else if e.kind == EventStatus {
			var st status.Status
			if err := json.Unmarshal([]byte(e.data), &st); err != nil || st.RollID != "R1" {
				t.Fatalf("status event %q: %v", e.data, err)
			}
			statuses++
		}
	}
	if beats < 2 || statuses < 2 {
		t.Fatalf("%d heartbeats and %d status events in 30 s", beats, statuses)
	}
	// Shutting down ends the stream at once, not after ShutdownTimeout.
	start := time.Now()
	cancel()
	if err := <-served; err != nil {
		t.Errorf("Serve: %v", err)
	}
	if took := time.Since(start); took > time.Minute {
		t.Errorf("shutdown with an open stream took %v", took)
	}
}

func BenchmarkHubPublish(b *testing.B) {
	for _, subs := range []int{0, 8} {
		b.Run(fmt.Sprintf("subscribers=%d", subs), func(b *testing.B) {
			hub := NewHub()
			var wg sync.WaitGroup
			for range subs {
				sub, _, _, _ := hub.subscribe(0, false)
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range sub.ch {
					}
				}()
			}
			d := RollEvent{Kind: RollSplice, RollID: "R20261127-090000-abcd", MDM: 1234.5, Note: "splice"}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				hub.Publish(EventRoll, d)
			}
			b.StopTimer()
			hub.Close()
			wg.Wait()
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/event")
		})
	}
}

// TestEventsOutliveReadTimeout: the server's ReadTimeout (30 s in Serve)
// must not cut an event stream: net/http would cancel the request's
// context when its background read hits the deadline.
func TestEventsOutliveReadTimeout(t *testing.T) {
	hub := NewHub()
	s, _ := newTestServer(t, func(o *Options) { o.Events = hub; o.HeartbeatInterval = 50 * time.Millisecond })
	srv := httptest.NewUnstartedServer(s.Handler())
	srv.Config.ReadTimeout = 200 * time.Millisecond
	srv.Start()
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	// Opening the stream is not what is tested: on a busy machine the
	// request can reach the server after ReadTimeout, which then closes
	// the connection before the handler runs. Such an attempt is retried.
	var rd *sseReader
	var openErr error
	if poll.Wait(time.Minute, func() bool {
		req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/api/events", nil)
		resp, err := http.DefaultClient.Do(req)
		if openErr = err; err != nil {
			return false
		}
		t.Cleanup(func() { resp.Body.Close() })
		if resp.StatusCode != 200 {
			t.Fatalf("GET /api/events: %d", resp.StatusCode)
		}
		rd = &sseReader{r: bufio.NewReader(resp.Body)}
		return true
	}) != nil {
		t.Fatalf("GET /api/events: %v", openErr)
	}
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		if _, err := rd.next(); err != nil {
			t.Fatalf("stream ended after %v: %v", time.Since(deadline.Add(-time.Second)), err)
		}
	}
	hub.Publish(EventDefect, 1)
	for {
		e, err := rd.next()
		if err != nil {
			t.Fatal(err)
		}
		if !e.heart {
			break
		}
	}
}

func TestHubMetrics(t *testing.T) {
	hub := NewHub()
	reg := prometheus.NewRegistry()
	reg.MustRegister(hub)
	hub.subscribe(0, false) // never reads: dropped once its buffer is full
	for i := range HubSubscriberBuffer + 3 {
		hub.Publish(EventDefect, i)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		m := mf.GetMetric()[0]
		if c := m.GetCounter(); c != nil {
			got[mf.GetName()] = c.GetValue()
		} else {
			got[mf.GetName()] = m.GetGauge().GetValue()
		}
	}
	want := map[string]float64{"webinspect_events_published_total": HubSubscriberBuffer + 3,
		"webinspect_events_subscribers": 0, "webinspect_events_dropped_subscribers_total": 1}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("metrics %v, want %v", got, want)
	}
}

package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/webinspect/webinspect/engine/status"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/webinspect/webinspect/rollmap"
)

// Event kinds on /api/events.
const (
	EventStatus = "status" // status.Status, every Options.StatusInterval
	EventDefect = "defect" // rollmap.Defect, each new defect
	EventRoll   = "roll"   // RollEvent: a roll started or ended, a splice
	EventReview = "review" // ReviewEvent: a defect was reviewed
	EventReset  = "reset"  // the events after Last-Event-ID are no longer retained: refetch
)

// RollEvent is the data of a "roll" event.
type RollEvent = status.RollEvent

// RollEvent kinds.
const (
	RollStart  = status.RollStart
	RollEnd    = status.RollEnd
	RollSplice = status.RollSplice
)

// ReviewEvent is the data of a "review" event: the review recorded and the
// defect with it merged.
type ReviewEvent struct {
	Review rollmap.Review `json:"review"`
	Defect rollmap.Defect `json:"defect"`
}

// Event is one event of a Hub: its ID (1, 2, ... within a Hub), kind and
// JSON data.
type Event struct {
	ID   uint64
	Kind string
	Data []byte // JSON; never modified once published
}

// Sizes of a Hub.
const (
	// HubHistory is how many of the newest events a Hub keeps for clients
	// that reconnect.
	HubHistory = 4096
	// HubSubscriberBuffer is how many events may wait for one client; a
	// client that falls further behind is disconnected (it reconnects
	// with Last-Event-ID and catches up from the history).
	HubSubscriberBuffer = 512
)

// Hub fans events out to the clients of /api/events. Publish never blocks:
// it encodes the value, appends it to a ring of the last HubHistory events
// and offers it to each subscriber's buffered channel; a subscriber whose
// buffer is full is dropped (its stream ends), so a slow client costs the
// publisher nothing. A client that reconnects with the ID of the last
// event it saw gets every retained event after it; if some were already
// overwritten, it gets a "reset" event first and should refetch its state.
//
// IDs start at 1 and increase by one per event; they are meaningful only
// within one Hub (one server process). A Last-Event-ID above the newest ID
// (a client of an earlier process) also gets "reset".
type Hub struct {
	mu     sync.Mutex
	ring   [HubHistory]Event
	last   uint64 // ID of the newest event; 0 before the first
	subs   map[*subscriber]struct{}
	closed bool
	drops  uint64 // subscribers disconnected for falling behind
}

type subscriber struct {
	ch chan Event // closed when the subscriber is dropped or the hub closes
}

// NewHub returns an empty Hub.
func NewHub() *Hub {
	return &Hub{subs: make(map[*subscriber]struct{})}
}

// Publish sends v, encoded as JSON, as an event of the given kind to every
// subscriber and keeps it in the history, and returns its ID. It is safe
// for concurrent use and never blocks on a client. A value that cannot be
// encoded is dropped and 0 returned. Publish on a closed Hub does nothing.
func (h *Hub) Publish(kind string, v any) uint64 {
	data, err := json.Marshal(v)
	if err != nil {
		return 0
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return 0
	}
	h.last++
	e := Event{ID: h.last, Kind: kind, Data: data}
	h.ring[e.ID%HubHistory] = e
	for sub := range h.subs {
		select {
		case sub.ch <- e:
		default: // too slow: drop it rather than wait
			close(sub.ch)
			delete(h.subs, sub)
			h.drops++
		}
	}
	return e.ID
}

// LastID returns the ID of the newest event (0 before the first).
func (h *Hub) LastID() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.last
}

// Dropped returns how many subscribers were disconnected for falling
// behind.
func (h *Hub) Dropped() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.drops
}

// Close ends every subscription; later Publish calls do nothing.
func (h *Hub) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	h.closed = true
	for sub := range h.subs {
		close(sub.ch)
		delete(h.subs, sub)
	}
}

// Hub metrics, read at scrape time (the Hub is a prometheus.Collector:
// register it with the engine's registry).
var (
	hubPublishedDesc = prometheus.NewDesc("webinspect_events_published_total",
		"Live events published to /api/events clients.", nil, nil)
	hubSubscribersDesc = prometheus.NewDesc("webinspect_events_subscribers",
		"Clients connected to /api/events.", nil, nil)
	hubDroppedDesc = prometheus.NewDesc("webinspect_events_dropped_subscribers_total",
		"Clients of /api/events disconnected for falling more than 512 events behind.", nil, nil)
)

// Describe implements prometheus.Collector.
func (h *Hub) Describe(ch chan<- *prometheus.Desc) {
	ch <- hubPublishedDesc
	ch <- hubSubscribersDesc
	ch <- hubDroppedDesc
}

// Collect implements prometheus.Collector.
func (h *Hub) Collect(ch chan<- prometheus.Metric) {
	h.mu.Lock()
	last, subs, drops := h.last, len(h.subs), h.drops
	h.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(hubPublishedDesc, prometheus.CounterValue, float64(last))
	ch <- prometheus.MustNewConstMetric(hubSubscribersDesc, prometheus.GaugeValue, float64(subs))
	ch <- prometheus.MustNewConstMetric(hubDroppedDesc, prometheus.CounterValue, float64(drops))
}

var _ prometheus.Collector = (*Hub)(nil)

// subscribe registers a subscriber and returns the retained events after
// ID after (when resume is set), atomically with the registration so that
// no event falls between the replay and the live channel. reset says that
// events after `after` were lost (or after is from another process): the
// client must refetch; replay is then empty and resetID the newest ID.
func (h *Hub) subscribe(after uint64, resume bool) (sub *subscriber, replay []Event, reset bool, resetID uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	sub = &subscriber{ch: make(chan Event, HubSubscriberBuffer)}
	if h.closed {
		close(sub.ch)
		return sub, nil, false, 0
	}
	h.subs[sub] = struct{}{}
	if !resume {
		return sub, nil, false, 0
	}
	oldest := uint64(1)
	if h.last > HubHistory {
		oldest = h.last - HubHistory + 1
	}
	if after > h.last || after+1 < oldest {
		return sub, nil, true, h.last
	}
	replay = make([]Event, 0, h.last-after)
	for id := after + 1; id <= h.last; id++ {
		replay = append(replay, h.ring[id%HubHistory])
	}
	return sub, replay, false, 0
}

func (h *Hub) unsubscribe(sub *subscriber) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.subs[sub]; ok {
		delete(h.subs, sub)
		close(sub.ch)
	}
}

// streamStopKey is the context key of the channel Serve closes on shutdown.
type streamStopKey struct{}

// sseWriteTimeout bounds one write to an event stream: a client that
// stops reading is cut off instead of holding a goroutine forever.
const sseWriteTimeout = 10 * time.Second

// handleEvents serves GET /api/events as server-sent events.
func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) {
	h := s.opts.Events
	if h == nil {
		s.writeError(w, http.StatusServiceUnavailable, "no live events: this server has no event hub")
		return
	}
	after, resume, err := lastEventID(r)
	if err != nil {
		s.writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	for name := range r.URL.Query() {
		if name != "last_event_id" {
			s.writeError(w, http.StatusBadRequest, fmt.Sprintf("unknown parameter %q (known: last_event_id)", name))
			return
		}
	}
	sub, replay, reset, resetID := h.subscribe(after, resume)
	defer h.unsubscribe(sub)

	hd := w.Header()
	hd.Set("Content-Type", "text/event-stream")
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	buf := make([]byte, 0, 4096)
	send := func(b []byte) bool {
		rc.SetWriteDeadline(time.Now().Add(sseWriteTimeout))
		if _, err := w.Write(b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	buf = append(buf, "retry: 2000\n\n"...)
	if reset {
		buf = appendEvent(buf, Event{ID: resetID, Kind: EventReset,
			Data: []byte(`{"reason":"events after the given Last-Event-ID are no longer retained; refetch"}`)})
	}
	for _, e := range replay {
		buf = appendEvent(buf, e)
		if len(buf) > 64<<10 {
			if !send(buf) {
				return
			}
			buf = buf[:0]
		}
	}
	if !send(buf) {
		return
	}
	var stop <-chan struct{}
	if c, ok := r.Context().Value(streamStopKey{}).(<-chan struct{}); ok {
		stop = c
	}
	beat := time.NewTicker(s.opts.HeartbeatInterval)
	defer beat.Stop()
	for {
		select {
		case e, ok := <-sub.ch:
			if !ok {
				return // dropped for falling behind, or the hub closed
			}
			buf = appendEvent(buf[:0], e)
			// Send what else is waiting in the same write.
			for more := true; more && len(buf) < 64<<10; {
				select {
				case e, ok := <-sub.ch:
					if !ok {
						send(buf)
						return
					}
					buf = appendEvent(buf, e)
				default:
					more = false
				}
			}
			if !send(buf) {
				return
			}
		case <-beat.C:
			if !send([]byte(": heartbeat\n\n")) {
				return
			}
		case <-r.Context().Done():
			return
		case <-stop:
			return
		}
	}
}

// appendEvent appends e in the event-stream format. Data is JSON without
// newlines (encoding/json escapes them), so it fits one data line.
func appendEvent(b []byte, e Event) []byte {
	b = append(b, "id: "...)
	b = strconv.AppendUint(b, e.ID, 10)
	b = append(b, "\nevent: "...)
	b = append(b, e.Kind...)
	b = append(b, "\ndata: "...)
	b = append(b, e.Data...)
	return append(b, "\n\n"...)
}

// lastEventID reads the Last-Event-ID header, or else the last_event_id
// query parameter (for clients that cannot set headers).
func lastEventID(r *http.Request) (uint64, bool, error) {
	v, name := r.Header.Get("Last-Event-ID"), "Last-Event-ID header"
	if v == "" {
		q := r.URL.Query()["last_event_id"]
		if len(q) > 1 {
			return 0, false, fmt.Errorf("last_event_id: given %d times, want at most once", len(q))
		}
		if len(q) == 0 {
			return 0, false, nil
		}
		v, name = q[0], "last_event_id"
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("%s: %q is not an event ID (an integer >= 0)", name, v)
	}
	return n, true, nil
}

// publishStatus publishes the engine status to the hub every
// StatusInterval until ctx is done or stop is closed. One Serve of a
// Server publishes at a time.
func (s *Server) publishStatus(ctx context.Context, stop <-chan struct{}) {
	if !s.statusOn.CompareAndSwap(false, true) {
		return
	}
	defer s.statusOn.Store(false)
	t := time.NewTicker(s.opts.StatusInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-stop:
			return
		case <-t.C:
			s.opts.Events.Publish(EventStatus, s.liveStatus())
		}
	}
}

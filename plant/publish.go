package plant

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/webinspect/webinspect/internal/atomicfile"
	"github.com/webinspect/webinspect/rollmap"
)

// PositionFile is the publish position of a roll, in its directory.
const PositionFile = "plant-position.json"

// PublisherOptions configures a Publisher.
type PublisherOptions struct {
	// URLs are the NATS servers (nats://host:port); the client fails
	// over between them. Required; without credentials in them
	// (user@host is refused: it would show in logs).
	URLs []string
	// Token is the plant's NATS token (ServerOptions.Token), "" for a
	// server without one. It is given to the server only: never logged,
	// counted or written.
	Token string
	// TLSCA is a PEM bundle of the CA certificates to verify the NATS
	// servers with (LoadCA). Set, every connection is TLS, whatever the
	// URL's scheme, and a server that does not speak TLS or whose
	// certificate does not verify for the host dialled is refused
	// (ErrTLS). Empty: tls:// URLs are verified against the system's
	// roots, and nats:// ones are plain unless the server requires TLS.
	TLSCA string
	// Plant and Line name this line on the bus (ValidName). Required.
	Plant, Line string
	// Store is the line's roll map. Required.
	Store *rollmap.Store
	// Interval is how often the store is read for new records, 10 ms to
	// 1 min. Default 100 ms.
	Interval time.Duration
	// Batch bounds the records published per roll and round, awaited
	// together, 1..100000. Default 2000.
	Batch int
	// AckTimeout bounds the wait for a round's acknowledgements, 100 ms to
	// 1 min. Default 5 s; a round that times out is published again.
	AckTimeout time.Duration
	// Status, when set, is called every StatusInterval (default 1 s) and
	// published on the status subject (no acknowledgement, never retried:
	// the next one replaces it).
	Status         func() LineStatus
	StatusInterval time.Duration
	// Replicas is the replication factor of the streams when this
	// publisher is the first to create them (1..5; default 1).
	Replicas int
	// Backfill: a roll started longer ago than this that has no publish
	// position yet is not published (the history of a line that joins the
	// plant stays local). 0: 7 days; negative: every roll.
	Backfill time.Duration
	// Logger receives errors and outages (rate-limited by the state
	// change); default silent.
	Logger zerolog.Logger
	// Registerer gets the publisher's metrics; nil: none.
	Registerer prometheus.Registerer
}

func (o *PublisherOptions) validate() error {
	if err := checkURLs(o.URLs); err != nil {
		return err
	}
	if _, err := clientTLS(o.TLSCA, o.URLs); err != nil {
		return err
	}
	if err := ValidName("plant", o.Plant); err != nil {
		return err
	}
	if err := ValidName("line", o.Line); err != nil {
		return err
	}
	if o.Store == nil {
		return fmt.Errorf("%w: Store is nil", ErrInvalidOptions)
	}
	if o.Interval == 0 {
		o.Interval = 100 * time.Millisecond
	}
	if o.Batch == 0 {
		o.Batch = 2000
	}
	if o.AckTimeout == 0 {
		o.AckTimeout = 5 * time.Second
	}
	if o.StatusInterval == 0 {
		o.StatusInterval = time.Second
	}
	if o.Replicas == 0 {
		o.Replicas = 1
	}
	if o.Backfill == 0 {
		o.Backfill = 7 * 24 * time.Hour
	}
	switch {
	case o.Interval < 10*time.Millisecond || o.Interval > time.Minute:
		return fmt.Errorf("%w: Interval %v, want 10ms to 1m", ErrInvalidOptions, o.Interval)
	case o.Batch < 1 || o.Batch > 100000:
		return fmt.Errorf("%w: Batch %d, want 1 to 100000", ErrInvalidOptions, o.Batch)
	case o.AckTimeout < 100*time.Millisecond || o.AckTimeout > time.Minute:
		return fmt.Errorf("%w: AckTimeout %v, want 100ms to 1m", ErrInvalidOptions, o.AckTimeout)
	case o.Replicas < 1 || o.Replicas > 5:
		return fmt.Errorf("%w: Replicas %d, want 1 to 5", ErrInvalidOptions, o.Replicas)
	case o.StatusInterval < 10*time.Millisecond:
		return fmt.Errorf("%w: StatusInterval %v, want at least 10ms", ErrInvalidOptions, o.StatusInterval)
	}
	return nil
}

// position is a roll's publish position (PositionFile): how much of each
// kind of row is published and acknowledged.
type position struct {
	V           int    `json:"v"`
	Plant       string `json:"plant"`
	Line        string `json:"line"`
	Started     bool   `json:"started"`     // the start event
	DefectID    int64  `json:"defect_id"`   // every defect with ID <= this
	Uninspected int    `json:"uninspected"` // the first so many ranges
	Marks       int    `json:"marks"`       // mark events
	Reviews     int    `json:"reviews"`     // reviews
	Splices     int    `json:"splices"`     // splices
	Contexts    int    `json:"contexts"`    // context changes
	Ended       bool   `json:"ended"`       // the end event: the roll was closed
	EndedAt     string `json:"ended_at,omitempty"`
}

// Publisher publishes a line's roll map to the plant. See the package doc.
type Publisher struct {
	o   PublisherOptions
	log zerolog.Logger

	nc *nats.Conn
	js jetstream.JetStream

	mu        sync.Mutex
	streamsOK bool
	// seen is what a finished roll looked like when last fully published
	// (roll.json and reviews file sizes and times): it is read again only
	// when they change (a late review or context change).
	seen map[string]fingerprint
	// pos is each roll's position as published (ahead of the file by at
	// most PositionEvery); dirty the rolls whose file is behind.
	pos     map[string]position
	dirty   map[string]bool
	written map[string]time.Time

	published prometheus.Counter
	failures  prometheus.Counter
	behind    prometheus.Gauge
	down      bool // the last round failed (logged once per outage)
	downAuth  bool // … because NATS refused the credentials (logged too)
}

type fingerprint struct{ meta, reviews string }

// NewPublisher connects to NATS (in the background: no server needs to be
// up yet) and returns a publisher; Run starts it. A server that is up and
// refuses the credentials is an error (ErrAuth) naming it.
func NewPublisher(o PublisherOptions) (*Publisher, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	nc, err := connect(o.URLs, "webinspect line "+o.Line, o.Token, o.TLSCA, o.Logger.With().Str("line", o.Line).Logger())
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(max(4096, 2*o.Batch)))
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("plant: jetstream: %w", err)
	}
	p := &Publisher{o: o, log: o.Logger.With().Str("plant", o.Plant).Str("line", o.Line).Logger(),
		nc: nc, js: js, seen: make(map[string]fingerprint),
		pos: make(map[string]position), dirty: make(map[string]bool), written: make(map[string]time.Time),
		published: prometheus.NewCounter(prometheus.CounterOpts{Name: "webinspect_plant_published_total", Help: "Roll map records published to the plant and acknowledged."}),
		failures:  prometheus.NewCounter(prometheus.CounterOpts{Name: "webinspect_plant_publish_failures_total", Help: "Publish rounds that failed (NATS down, no acknowledgement)."}),
		behind:    prometheus.NewGauge(prometheus.GaugeOpts{Name: "webinspect_plant_publish_behind", Help: "1 while the last publish round failed: the plant is behind the roll map."}),
	}
	if o.Registerer != nil {
		for _, c := range []prometheus.Collector{p.published, p.failures, p.behind} {
			if err := o.Registerer.Register(c); err != nil {
				nc.Close()
				return nil, fmt.Errorf("plant: register metrics: %w", err)
			}
		}
	}
	return p, nil
}

// Close closes the connection. Run must have returned.
func (p *Publisher) Close() { p.nc.Close() }

// Run publishes until ctx is done; it returns nil then. It never blocks the
// engine: it only reads the store.
func (p *Publisher) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	if p.o.Status != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.statusLoop(ctx)
		}()
	}
	t := time.NewTicker(p.o.Interval)
	defer t.Stop()
	for {
		p.Round(ctx)
		select {
		case <-ctx.Done():
			wg.Wait()
			p.savePositions(true)
			return nil
		case <-t.C:
		}
	}
}

func (p *Publisher) statusLoop(ctx context.Context) {
	t := time.NewTicker(p.o.StatusInterval)
	defer t.Stop()
	subj := Subject(p.o.Plant, p.o.Line, KindStatus)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		st := p.o.Status()
		b, _ := json.Marshal(Message{V: Version, Plant: p.o.Plant, Line: p.o.Line, Kind: KindStatus, Sent: time.Now().UTC(), Status: &st})
		// Core publish: buffered by the client while disconnected, never
		// waited for. The stream keeps the newest per line.
		p.nc.Publish(subj, b)
	}
}

// Drain publishes what the roll map has that the plant has not yet, once,
// within ctx, and saves every position: for a clean stop, after the
// engine has closed its roll, so that the roll's last records and its end
// reach the plant now rather than at the next start. Run must have
// returned.
func (p *Publisher) Drain(ctx context.Context) {
	p.Round(ctx)
	p.savePositions(true)
}

// Round publishes what is new in every roll once; it returns the number
// of records acknowledged. Exported for tests and the bench command.
func (p *Publisher) Round(ctx context.Context) int {
	if !p.nc.IsConnected() {
		p.fail(linkError(p.nc, p.o.URLs, p.o.Token, p.o.TLSCA))
		return 0
	}
	p.mu.Lock()
	ok := p.streamsOK
	p.mu.Unlock()
	if !ok {
		cctx, cancel := context.WithTimeout(ctx, p.o.AckTimeout)
		err := ensureStreams(cctx, p.js, p.o.Replicas)
		cancel()
		if err != nil {
			p.fail(fmt.Errorf("streams: %w", err))
			return 0
		}
		p.mu.Lock()
		p.streamsOK = true
		p.mu.Unlock()
	}
	entries, err := os.ReadDir(p.o.Store.Root())
	if err != nil {
		p.fail(err)
		return 0
	}
	n := 0
	for _, e := range entries {
		id := e.Name()
		if !e.IsDir() || rollmap.ValidRollID(id) != nil {
			continue
		}
		k, err := p.publishRoll(ctx, id)
		n += k
		if err != nil {
			p.fail(fmt.Errorf("roll %s: %w", id, err))
			return n
		}
		if ctx.Err() != nil {
			return n
		}
	}
	p.savePositions(false)
	if p.down {
		p.log.Info().Msg("plant publishing resumed")
	}
	p.down, p.downAuth = false, false
	p.behind.Set(0)
	return n
}

// fail counts a failed round and logs the first of an outage, and the
// first refusal of the credentials within one.
func (p *Publisher) fail(err error) {
	p.failures.Inc()
	p.behind.Set(1)
	auth := errors.Is(err, ErrAuth)
	if !p.down || auth && !p.downAuth {
		p.log.Warn().Err(err).Msg("plant publishing stopped; the roll map keeps everything and publishing resumes from its position")
	}
	p.down = true
	p.downAuth = p.downAuth || auth
}

func (p *Publisher) fingerprintOf(dir string) fingerprint {
	f := func(name string) string {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			return ""
		}
		return fmt.Sprint(st.Size(), st.ModTime().UnixNano())
	}
	return fingerprint{meta: f(rollmap.MetaFile), reviews: f(rollmap.ReviewsFile)}
}

// publishRoll publishes what roll id has on disk beyond its position.
func (p *Publisher) publishRoll(ctx context.Context, id string) (int, error) {
	dir := filepath.Join(p.o.Store.Root(), id)
	fp := p.fingerprintOf(dir)
	if f, ok := p.seen[id]; ok && f == fp {
		return 0, nil // finished and unchanged
	}
	pos, havePos := p.pos[id]
	if !havePos {
		var err error
		if pos, havePos, err = readPosition(dir); err != nil {
			return 0, err
		}
	}
	if havePos && (pos.Plant != p.o.Plant || pos.Line != p.o.Line) {
		pos, havePos = position{}, false // published under another name: publish again under this one
	}
	d, err := p.o.Store.Durable(id, true)
	if errors.Is(err, rollmap.ErrNotFound) {
		return 0, nil // being created
	}
	if err != nil {
		return 0, err
	}
	if !havePos && p.o.Backfill > 0 && time.Since(d.Meta.Started) > p.o.Backfill {
		p.seen[id] = fp
		return 0, nil
	}
	total := 0
	for {
		msgs, next, err := p.collect(id, d, pos)
		if err != nil {
			return total, err
		}
		if len(msgs) == 0 {
			break
		}
		if err := p.send(ctx, msgs); err != nil {
			return total, err
		}
		next.V, next.Plant, next.Line = 1, p.o.Plant, p.o.Line
		p.pos[id], p.dirty[id] = next, true
		total += len(msgs)
		p.published.Add(float64(len(msgs)))
		pos = next
		if len(msgs) < p.o.Batch {
			break
		}
	}
	if pos.Ended && !d.Open {
		if err := p.savePosition(id); err != nil {
			return total, err
		}
		p.seen[id] = fp
		delete(p.pos, id)
	}
	return total, nil
}

// PositionEvery is how often a roll's position file is rewritten while
// records flow (and always when the roll ends or the publisher stops).
// A restart re-publishes at most that much, which the message IDs and
// the plant's keys drop; writing less often keeps the fsyncs off the
// line's disk.
const PositionEvery = 500 * time.Millisecond

func (p *Publisher) savePosition(id string) error {
	if !p.dirty[id] {
		return nil
	}
	if err := writePosition(filepath.Join(p.o.Store.Root(), id), p.pos[id]); err != nil {
		return err
	}
	delete(p.dirty, id)
	p.written[id] = time.Now()
	return nil
}

// savePositions writes the positions due (all with force).
func (p *Publisher) savePositions(force bool) {
	for id := range p.dirty {
		if force || time.Since(p.written[id]) >= PositionEvery {
			if err := p.savePosition(id); err != nil {
				p.log.Warn().Err(err).Str("roll", id).Msg("publish position not saved; a restart publishes again from the previous one")
			}
		}
	}
}

// collect returns the messages of roll id beyond pos (at most Batch) and
// the position after them.
func (p *Publisher) collect(id string, d rollmap.Durable, pos position) ([]pubMsg, position, error) {
	var out []pubMsg
	now := time.Now().UTC()
	m := d.Meta
	add := func(kind, what string, n int64, msg Message) bool {
		msg.V, msg.Plant, msg.Line, msg.Kind, msg.Roll, msg.Seq, msg.Sent = Version, p.o.Plant, p.o.Line, kind, id, n, now
		out = append(out, pubMsg{subj: Subject(p.o.Plant, p.o.Line, kind), id: MsgID(p.o.Line, id, what, n), msg: msg})
		return len(out) < p.o.Batch
	}
	info := func() *RollInfo {
		return &RollInfo{Recipe: m.Recipe, Material: m.Material, WebWidthMM: m.WebWidthMM, Started: m.Started,
			Ended: m.Ended, LengthM: m.LengthM, Context: m.Context}
	}
	if !pos.Started {
		if !add(KindRoll, EventStart, 0, Message{Event: EventStart, RollInfo: info()}) {
			pos.Started = true
			return out, pos, nil
		}
		pos.Started = true
	}
	for pos.Contexts < len(m.ContextHistory) {
		c := m.ContextHistory[pos.Contexts]
		more := add(KindRoll, EventContext, int64(pos.Contexts), Message{Event: EventContext, Context: &c})
		pos.Contexts++
		if !more {
			return out, pos, nil
		}
	}
	for pos.Splices < len(m.Splices) {
		sp := m.Splices[pos.Splices]
		more := add(KindRoll, EventSplice, int64(pos.Splices), Message{Event: EventSplice, Splice: &sp})
		pos.Splices++
		if !more {
			return out, pos, nil
		}
	}
	if pos.DefectID < d.DefectTop {
		ds, err := p.o.Store.Defects(id, rollmap.Query{AfterID: pos.DefectID, Limit: p.o.Batch - len(out)})
		if err != nil && len(ds) == 0 {
			return nil, pos, err
		}
		for i := range ds {
			if ds[i].ID > d.DefectTop {
				break
			}
			dd := ds[i]
			dd.Mark = rollmap.MarkState{}
			more := add(KindDefects, "defect", dd.ID, Message{Defect: &dd})
			pos.DefectID = dd.ID
			if !more {
				return out, pos, nil
			}
		}
		if len(ds) > 0 && len(out) >= p.o.Batch {
			return out, pos, nil
		}
	}
	if pos.Uninspected < d.Uninspected {
		us, err := p.o.Store.Uninspected(id)
		if err != nil && len(us) == 0 {
			return nil, pos, err
		}
		for pos.Uninspected < min(len(us), d.Uninspected) {
			u := us[pos.Uninspected]
			more := add(KindUninspected, "uninspected", int64(pos.Uninspected), Message{Uninspected: &u})
			pos.Uninspected++
			if !more {
				return out, pos, nil
			}
		}
	}
	if pos.Marks < d.MarkEvents {
		evs, err := p.o.Store.MarkEvents(id)
		if err != nil && len(evs) == 0 {
			return nil, pos, err
		}
		for pos.Marks < min(len(evs), d.MarkEvents) {
			ev := evs[pos.Marks]
			more := add(KindMarks, "mark", int64(pos.Marks), Message{Mark: &ev})
			pos.Marks++
			if !more {
				return out, pos, nil
			}
		}
	}
	revs, err := p.o.Store.Reviews(id)
	if err != nil && len(revs) == 0 {
		return nil, pos, err
	}
	for pos.Reviews < len(revs) {
		rv := revs[pos.Reviews]
		more := add(KindReviews, "review", int64(pos.Reviews), Message{Review: &rv})
		pos.Reviews++
		if !more {
			return out, pos, nil
		}
	}
	// The end, once the roll is closed on disk and everything before it
	// is out (a roll left open by a killed engine is not ended: it may be
	// resumed).
	if !m.Open && !d.Open && !pos.Ended && d.DefectTop == math.MaxInt64 {
		add(KindRoll, EventEnd, 0, Message{Event: EventEnd, RollInfo: info()})
		pos.Ended = true
	}
	return out, pos, nil
}

type pubMsg struct {
	subj, id string
	msg      Message
}

// send publishes msgs and waits for every acknowledgement.
func (p *Publisher) send(ctx context.Context, msgs []pubMsg) error {
	futs := make([]jetstream.PubAckFuture, 0, len(msgs))
	for i := range msgs {
		b, err := json.Marshal(&msgs[i].msg)
		if err != nil {
			return err
		}
		m := nats.NewMsg(msgs[i].subj)
		m.Data = b
		f, err := p.js.PublishMsgAsync(m, jetstream.WithMsgID(msgs[i].id), jetstream.WithExpectStream(Stream))
		if err != nil {
			return err
		}
		futs = append(futs, f)
	}
	timeout := time.NewTimer(p.o.AckTimeout)
	defer timeout.Stop()
	for _, f := range futs {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return err
		case <-timeout.C:
			return fmt.Errorf("no acknowledgement within %v", p.o.AckTimeout)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func readPosition(dir string) (position, bool, error) {
	var pos position
	b, err := os.ReadFile(filepath.Join(dir, PositionFile))
	if errors.Is(err, os.ErrNotExist) {
		return pos, false, nil
	}
	if err != nil {
		return pos, false, err
	}
	if err := json.Unmarshal(b, &pos); err != nil || pos.V != 1 {
		// A damaged position publishes the roll again from the start: the
		// message IDs and the plant's keys drop what it already has.
		return position{}, false, nil
	}
	return pos, true, nil
}

// writePosition replaces dir/PositionFile atomically and durably.
func writePosition(dir string, pos position) error {
	b, _ := json.Marshal(pos)
	return atomicfile.WriteFile(dir, PositionFile, b)
}

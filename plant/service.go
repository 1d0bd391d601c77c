package plant

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/webinspect/webinspect/internal/atomicfile"
	"github.com/webinspect/webinspect/rollmap"
)

// ServiceOptions configures the plant service.
type ServiceOptions struct {
	// URLs are the NATS servers. Required (webinspect plant starts an
	// embedded server and passes its URL when none is given); without
	// credentials in them.
	URLs []string
	// Token is the plant's NATS token, and TLSCA the CA bundle to verify
	// the servers with, as for PublisherOptions.
	Token, TLSCA string
	// Data is the directory of the dataset and the roll states. Required.
	Data string
	// Replicas of the streams when the service creates them (1..5).
	// Default 1; 3 on a three-node cluster.
	Replicas int
	// Consumer is the durable consumer's name. Default "plant".
	Consumer string
	// FlushInterval is how often what arrived is written to the dataset
	// and acknowledged, 10 ms to 1 min. Default 250 ms.
	FlushInterval time.Duration
	// AckWait is how long JetStream waits for the service to acknowledge
	// a message before delivering it again (after a crash of the
	// service), 1 s to 10 min. Default 30 s.
	AckWait time.Duration
	// Hold are the rules that put a roll on the hold list.
	Hold HoldRules
	// Compact configures the compaction of the dataset in the service's
	// background (compact.go); zero fields take DefaultCompactOptions.
	Compact CompactOptions
	// Logger, Registerer as for PublisherOptions.
	Logger     zerolog.Logger
	Registerer prometheus.Registerer
}

// HoldRules decide which rolls to hold; a roll is held when any rule
// fires, and the reasons are listed.
type HoldRules struct {
	// MaxPer100m: more defects per 100 m of roll than this (0: off).
	MaxPer100m float64 `json:"max_per_100m"`
	// MaxUninspectedM: more uninspected metres than this (0: off).
	MaxUninspectedM float64 `json:"max_uninspected_m"`
	// Severities: any defect of one of these severities (not reviewed as
	// a false alarm).
	Severities []string `json:"severities"`
}

// DefaultHoldRules: more than 5 defects per 100 m, more than 1 m
// uninspected, or any critical defect.
func DefaultHoldRules() HoldRules {
	return HoldRules{MaxPer100m: 5, MaxUninspectedM: 1, Severities: []string{"critical"}}
}

type rollKey struct{ line, roll string }

// rollState is what the plant knows of one roll (persisted as
// DATA/rolls/<line>/<roll>.json).
type rollState struct {
	Line         string                        `json:"line"`
	Roll         string                        `json:"roll"`
	Info         RollInfo                      `json:"info"`
	Ended        bool                          `json:"ended"`
	Context      rollmap.RollContext           `json:"context"`
	History      []rollmap.ContextChange       `json:"context_history,omitempty"`
	Splices      map[int64]rollmap.Splice      `json:"splices,omitempty"`
	Uninspected  map[int64]rollmap.Uninspected `json:"uninspected,omitempty"`
	Reviews      map[int64]rollmap.Review      `json:"reviews,omitempty"` // by seq
	MarkEvents   int64                         `json:"mark_events"`
	MarkSeqs     map[int64]bool                `json:"-"`
	UninspectedM float64                       `json:"uninspected_m"`
}

type lineState struct {
	Status   LineStatus
	LastSeen time.Time // plant clock
}

// Service is the plant service: it consumes every line, keeps the
// dataset and answers queries. Its query methods are safe for concurrent
// use with Run.
type Service struct {
	o   ServiceOptions
	log zerolog.Logger

	mu    sync.RWMutex
	parts map[partKey]*partition // the dataset's index (index.go)
	rolls map[rollKey]*rollState
	lines map[string]*lineState
	dead  int64
	lat   []latSample // record → queryable, the newest latencyKeep
	comp  *compactor

	// Owned by Run.
	pending   []jetstream.Msg
	newRows   []*defectRow
	dirty     map[rollKey]bool
	dirtyPart map[partKey]bool
	partSeq   int64
	crash     bool // tests: stop as if killed (no last flush)
	durable   prometheus.Counter
	deadCount prometheus.Counter
	latency   prometheus.Histogram
}

const latencyKeep = 1 << 16

// NewService loads the dataset's index (index.go) and the roll states
// from o.Data; it does not read the dataset's rows.
func NewService(o ServiceOptions) (*Service, error) {
	if err := checkURLs(o.URLs); err != nil {
		return nil, err
	}
	if _, err := clientTLS(o.TLSCA, o.URLs); err != nil {
		return nil, err
	}
	if o.Data == "" {
		return nil, fmt.Errorf("%w: Data: no directory", ErrInvalidOptions)
	}
	if o.Replicas == 0 {
		o.Replicas = 1
	}
	if o.Consumer == "" {
		o.Consumer = "plant"
	}
	if o.FlushInterval == 0 {
		o.FlushInterval = 250 * time.Millisecond
	}
	if o.AckWait == 0 {
		o.AckWait = 30 * time.Second
	}
	switch {
	case o.Replicas < 1 || o.Replicas > 5:
		return nil, fmt.Errorf("%w: Replicas %d, want 1 to 5", ErrInvalidOptions, o.Replicas)
	case o.AckWait < time.Second || o.AckWait > 10*time.Minute:
		return nil, fmt.Errorf("%w: AckWait %v, want 1s to 10m", ErrInvalidOptions, o.AckWait)
	case o.FlushInterval < 10*time.Millisecond || o.FlushInterval > time.Minute:
		return nil, fmt.Errorf("%w: FlushInterval %v, want 10ms to 1m", ErrInvalidOptions, o.FlushInterval)
	}
	o.Compact = o.Compact.withDefaults()
	if err := o.Compact.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(o.Data, "rolls"), 0o755); err != nil {
		return nil, fmt.Errorf("plant: %w", err)
	}
	s := &Service{o: o, log: o.Logger, rolls: make(map[rollKey]*rollState),
		lines: make(map[string]*lineState), dirty: make(map[rollKey]bool), dirtyPart: make(map[partKey]bool),
		durable:   prometheus.NewCounter(prometheus.CounterOpts{Name: "webinspect_plant_defects_total", Help: "Defects written to the plant dataset."}),
		deadCount: prometheus.NewCounter(prometheus.CounterOpts{Name: "webinspect_plant_dead_letters_total", Help: "Messages parked in the dead-letter stream."}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "webinspect_plant_record_latency_seconds",
			Help: "From a defect's time at its engine to it being queryable at the plant.", Buckets: prometheus.ExponentialBuckets(0.01, 2, 12)}),
	}
	if o.Registerer != nil {
		for _, c := range []prometheus.Collector{s.durable, s.deadCount, s.latency} {
			if err := o.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("plant: register metrics: %w", err)
			}
		}
	}
	var err error
	if s.comp, err = newCompactor(o.Data, o.Compact, o.Logger, o.Registerer); err != nil {
		return nil, err
	}
	if err := s.load(); err != nil {
		return nil, err
	}
	return s, nil
}

// load recovers a compaction a crash cut short, then loads the index and
// the roll states, holding the data directory's lock meanwhile.
func (s *Service) load() error {
	l, err := lockData(s.o.Data)
	if err != nil {
		return err
	}
	defer l.Release()
	if err := s.comp.recover(); err != nil {
		return err
	}
	start := time.Now()
	parts, rebuilt, err := loadIndex(s.o.Data)
	if err != nil {
		return err
	}
	s.parts = parts
	for _, k := range rebuilt {
		s.log.Warn().Str("line", k.line).Str("day", k.day).Msg("plant index of a partition rebuilt from its Parquet files (a write cut short, or a dataset without an index)")
	}
	if err := s.loadRolls(); err != nil {
		return err
	}
	s.log.Info().Int("partitions", len(s.parts)).Int("rolls", len(s.rolls)).Dur("took", time.Since(start)).Str("data", s.o.Data).Msg("plant index loaded")
	return nil
}

func (s *Service) rollsDir(line string) string { return filepath.Join(s.o.Data, "rolls", line) }

func (s *Service) loadRolls() error {
	lines, err := os.ReadDir(filepath.Join(s.o.Data, "rolls"))
	if err != nil {
		return err
	}
	for _, l := range lines {
		files, err := os.ReadDir(s.rollsDir(l.Name()))
		if err != nil {
			continue
		}
		for _, f := range files {
			if filepath.Ext(f.Name()) != ".json" {
				continue
			}
			b, err := os.ReadFile(filepath.Join(s.rollsDir(l.Name()), f.Name()))
			if err != nil {
				return err
			}
			var st rollState
			if err := json.Unmarshal(b, &st); err != nil {
				return fmt.Errorf("plant: roll state %s: %w", f.Name(), err)
			}
			st.MarkSeqs = make(map[int64]bool)
			s.rolls[rollKey{st.Line, st.Roll}] = &st
		}
	}
	return nil
}

// Run consumes until ctx is done. It reconnects and re-creates its
// consumer as needed; it returns nil when ctx is done, and ErrAuth at
// once when a server that is up refuses the credentials.
func (s *Service) Run(ctx context.Context) error {
	l, err := lockData(s.o.Data)
	if err != nil {
		return err
	}
	defer l.Release()
	defer s.startCompaction()()
	nc, err := connect(s.o.URLs, "webinspect plant", s.o.Token, s.o.TLSCA, s.log)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	msgs := make(chan jetstream.Msg, 8192)
	statuses := make(chan *nats.Msg, 256)
	sub, err := nc.ChanSubscribe(SubjectRoot+".*.*."+KindStatus, statuses)
	if err != nil {
		return err
	}
	defer sub.Unsubscribe()
	tick := time.NewTicker(s.o.FlushInterval)
	defer tick.Stop()
	wctx, wcancel := context.WithCancel(context.Background())
	defer wcancel()
	batches := make(chan *batch)
	idle := make(chan struct{}, 1)
	wdone := make(chan struct{})
	go func() {
		defer close(wdone)
		s.writer(wctx, batches, idle)
	}()
	var held *batch // cut, waiting for the writer
	offer := func() {
		if held == nil {
			held = s.cut()
		}
		if held == nil {
			return
		}
		select {
		case batches <- held:
			held = nil
		default: // the writer is busy: more arrives meanwhile, sent next time
		}
	}
	var cc jetstream.ConsumeContext
	restart := make(chan struct{}, 1)
	defer func() {
		if cc != nil {
			cc.Stop()
		}
	}()
	for {
		if cc == nil && nc.IsConnected() {
			cc, err = s.startConsumer(ctx, js, msgs, restart)
			if err != nil {
				s.log.Debug().Err(err).Msg("plant consumer not ready")
				cc = nil
			}
		}
		select {
		case <-ctx.Done():
			if s.crash {
				wcancel()
				close(batches)
				<-wdone
				return nil
			}
			if held == nil {
				held = s.cut()
			}
			if held != nil {
				batches <- held
			}
			if b := s.cut(); b != nil {
				batches <- b
			}
			close(batches)
			<-wdone
			return nil
		case m := <-msgs:
			s.take(ctx, js, m)
		case m := <-statuses:
			s.takeStatus(m)
		case <-restart:
			if cc != nil {
				cc.Stop()
				cc = nil
			}
		case <-tick.C:
			offer()
		case <-idle:
			offer()
		}
	}
}

func (s *Service) startConsumer(ctx context.Context, js jetstream.JetStream, out chan<- jetstream.Msg, restart chan<- struct{}) (jetstream.ConsumeContext, error) {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := ensureStreams(cctx, js, s.o.Replicas); err != nil {
		return nil, err
	}
	cons, err := js.CreateOrUpdateConsumer(cctx, Stream, jetstream.ConsumerConfig{
		Durable: s.o.Consumer, AckPolicy: jetstream.AckExplicitPolicy, AckWait: s.o.AckWait,
		MaxAckPending: 200000, DeliverPolicy: jetstream.DeliverAllPolicy, Replicas: 0,
	})
	if err != nil {
		return nil, err
	}
	return cons.Consume(func(m jetstream.Msg) { out <- m },
		jetstream.PullMaxMessages(4096),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			if errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, jetstream.ErrConsumerNotFound) {
				select {
				case restart <- struct{}{}:
				default:
				}
			}
		}))
}

func (s *Service) takeStatus(m *nats.Msg) {
	var msg Message
	if json.Unmarshal(m.Data, &msg) != nil || msg.check(m.Subject) != nil {
		return // status is advisory; a bad one is replaced by the next
	}
	s.mu.Lock()
	s.lines[msg.Line] = &lineState{Status: *msg.Status, LastSeen: time.Now()}
	s.mu.Unlock()
}

// take applies one record; bad ones go to the dead-letter stream.
func (s *Service) take(ctx context.Context, js jetstream.JetStream, m jetstream.Msg) {
	var msg Message
	err := json.Unmarshal(m.Data(), &msg)
	if err != nil {
		err = fmt.Errorf("%w: body is not a message: %v", ErrBadMessage, err)
	} else {
		err = msg.check(m.Subject())
	}
	if err != nil {
		s.park(ctx, js, m, err)
		return
	}
	now := time.Now()
	s.mu.Lock()
	rk := rollKey{msg.Line, msg.Roll}
	st := s.rolls[rk]
	if st == nil {
		st = &rollState{Line: msg.Line, Roll: msg.Roll, MarkSeqs: make(map[int64]bool)}
		s.rolls[rk] = st
	}
	if _, ok := s.lines[msg.Line]; !ok {
		s.lines[msg.Line] = &lineState{}
	}
	switch msg.Kind {
	case KindDefects:
		d := msg.Defect
		pk := partKey{msg.Line, d.Time.UTC().Format(time.DateOnly)}
		p := s.parts[pk]
		if p == nil {
			p = newPartition()
			s.parts[pk] = p
		}
		if p.add(msg.Roll, d.ID, d.Class, d.Severity) {
			s.dirtyPart[pk] = true
			r := &defectRow{Line: msg.Line, Roll: msg.Roll, ID: d.ID, MDStart: d.MDStartM, MDEnd: d.MDEndM,
				CDStart: d.CDStartMM, CDEnd: d.CDEndMM, Area: d.AreaMM2, Peak: d.PeakScore, Class: d.Class,
				Severity: d.Severity, Decision: string(d.Decision), Detector: string(d.Detector),
				Camera: int32(d.Camera), Lane: int32(d.Lane), Time: d.Time.UTC(), Received: now.UTC(), Ctx: st.Context}
			s.newRows = append(s.newRows, r)
			lat := now.Sub(d.Time)
			if len(s.lat) >= latencyKeep {
				s.lat = s.lat[:copy(s.lat, s.lat[len(s.lat)/2:])]
			}
			s.lat = append(s.lat, latSample{at: now, d: lat})
			s.latency.Observe(lat.Seconds())
		}
	case KindUninspected:
		if st.Uninspected == nil {
			st.Uninspected = make(map[int64]rollmap.Uninspected)
		}
		st.Uninspected[msg.Seq] = *msg.Uninspected
		st.UninspectedM = uninspectedM(st.Uninspected)
	case KindReviews:
		if st.Reviews == nil {
			st.Reviews = make(map[int64]rollmap.Review)
		}
		st.Reviews[msg.Seq] = *msg.Review
	case KindMarks:
		if !st.MarkSeqs[msg.Seq] {
			st.MarkSeqs[msg.Seq] = true
			st.MarkEvents = max(st.MarkEvents, msg.Seq+1)
		}
	case KindRoll:
		switch msg.Event {
		case EventStart:
			if !st.Ended {
				st.Info = *msg.RollInfo
			}
			if st.Context.IsZero() {
				st.Context = msg.RollInfo.Context
			}
		case EventEnd:
			st.Info, st.Ended = *msg.RollInfo, true
			st.Context = msg.RollInfo.Context
		case EventSplice:
			if st.Splices == nil {
				st.Splices = make(map[int64]rollmap.Splice)
			}
			st.Splices[msg.Seq] = *msg.Splice
		case EventContext:
			if int(msg.Seq) >= len(st.History) {
				st.History = append(st.History, make([]rollmap.ContextChange, int(msg.Seq)+1-len(st.History))...)
			}
			st.History[msg.Seq] = *msg.Context
			st.Context = st.History[len(st.History)-1].Context
		}
	}
	s.mu.Unlock()
	s.dirty[rk] = true
	s.pending = append(s.pending, m)
}

// uninspectedM is the MD length with any uninspected band.
func uninspectedM(us map[int64]rollmap.Uninspected) float64 {
	type iv struct{ a, b float64 }
	var ivs []iv
	for _, u := range us {
		ivs = append(ivs, iv{u.MDStartM, u.MDEndM})
	}
	sort.Slice(ivs, func(i, j int) bool { return ivs[i].a < ivs[j].a })
	total, end := 0.0, -1e300
	for _, v := range ivs {
		if v.b <= end {
			continue
		}
		total += v.b - max(v.a, end)
		end = v.b
	}
	return total
}

// park puts m in the dead-letter stream with the reason, then acknowledges
// it. If the dead-letter stream cannot take it, m is left unacknowledged
// and comes back.
func (s *Service) park(ctx context.Context, js jetstream.JetStream, m jetstream.Msg, reason error) {
	subj := m.Subject()
	dsubj := DeadSubjectRoot + ".unknown.unknown.unknown"
	if p, l, k, err := parseSubject(subj); err == nil {
		dsubj = DeadSubjectRoot + "." + p + "." + l + "." + k
	}
	dm := nats.NewMsg(dsubj)
	dm.Data = m.Data()
	dm.Header.Set(DeadReasonHeader, reason.Error())
	dm.Header.Set(DeadSubjectHeader, subj)
	if md, err := m.Metadata(); err == nil {
		dm.Header.Set(jetstream.MsgIDHeader, fmt.Sprintf("dead/%d", md.Sequence.Stream))
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := js.PublishMsg(cctx, dm); err != nil {
		s.log.Error().Err(err).Str("subject", subj).Msg("could not park a bad message; it will come back")
		m.NakWithDelay(time.Second)
		return
	}
	s.log.Warn().Str("subject", subj).Str("reason", reason.Error()).Msg("message parked in the dead-letter stream")
	s.deadCount.Inc()
	s.mu.Lock()
	s.dead++
	s.mu.Unlock()
	m.Ack()
}

// batch is what one write of the dataset takes: the new rows, the
// changed roll states (as JSON) and the messages to acknowledge once both
// are on disk.
type batch struct {
	rows   []*defectRow
	parts  map[partKey][]byte // the index of the partitions the rows are in
	states map[rollKey][]byte
	msgs   []jetstream.Msg
}

// cut takes what arrived since the last cut as a batch (nil if nothing).
func (s *Service) cut() *batch {
	if len(s.pending) == 0 && len(s.newRows) == 0 && len(s.dirty) == 0 {
		return nil
	}
	b := &batch{rows: s.newRows, msgs: s.pending, states: make(map[rollKey][]byte, len(s.dirty)),
		parts: make(map[partKey][]byte, len(s.dirtyPart))}
	s.mu.RLock()
	for k := range s.dirty {
		b.states[k], _ = json.Marshal(s.rolls[k])
	}
	for k := range s.dirtyPart {
		b.parts[k], _ = json.Marshal(s.parts[k])
	}
	s.mu.RUnlock()
	s.newRows, s.pending = nil, nil
	clear(s.dirty)
	clear(s.dirtyPart)
	return b
}

// writer writes batches in order, each until it succeeds, then
// acknowledges its messages. It runs beside the consumer, so that the
// disk never delays a record being queryable. It returns when in is
// closed, or when ctx is done (the batch in hand stays unacknowledged:
// JetStream delivers it again).
func (s *Service) writer(ctx context.Context, in <-chan *batch, idle chan<- struct{}) {
	for b := range in {
		for {
			err := s.write(b)
			if err == nil {
				break
			}
			s.log.Error().Err(err).Msg("plant dataset write failed; retrying")
			select {
			case <-ctx.Done():
				return
			case <-time.After(500 * time.Millisecond):
			}
		}
		for _, m := range b.msgs {
			m.Ack()
		}
		select {
		case idle <- struct{}{}:
		default:
		}
	}
}

// write puts a batch's rows (one part file per line and day), the index
// of those partitions and the roll states on disk, in the order index.go
// describes. A retry after a failure writes the rows again in new part
// files only for the partitions not written yet.
func (s *Service) write(b *batch) error {
	if len(b.parts) > 0 {
		ks := make([]partKey, 0, len(b.parts))
		for k := range b.parts {
			ks = append(ks, k)
		}
		if err := writePending(s.o.Data, ks); err != nil {
			return err
		}
	}
	parts := make(map[[2]string][]*defectRow)
	for _, r := range b.rows {
		k := [2]string{r.Line, r.day()}
		parts[k] = append(parts[k], r)
	}
	for k, rows := range parts {
		s.partSeq++
		if err := writePart(s.o.Data, s.partSeq, rows); err != nil {
			var rest []*defectRow
			for _, r := range b.rows {
				if _, done := parts[[2]string{r.Line, r.day()}]; !done || [2]string{r.Line, r.day()} == k {
					rest = append(rest, r)
				}
			}
			b.rows = rest
			return err
		}
		delete(parts, k)
		s.durable.Add(float64(len(rows)))
	}
	b.rows = nil
	for k, js := range b.parts {
		if err := writeIndex(s.o.Data, k, js); err != nil {
			return err
		}
		delete(b.parts, k)
	}
	if err := removePending(s.o.Data); err != nil {
		return err
	}
	for k, js := range b.states {
		dir := s.rollsDir(k.line)
		err := os.MkdirAll(dir, 0o755)
		if err == nil {
			err = atomicfile.WriteFile(dir, k.roll+".json", js)
		}
		if err != nil {
			return err
		}
		delete(b.states, k)
	}
	return nil
}

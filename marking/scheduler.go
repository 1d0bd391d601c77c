package marking

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/webinspect/webinspect/internal/metricsreg"
	"github.com/webinspect/webinspect/rollmap"
)

// Status is where a mark stands. Events carry one status each; a defect
// normally sees scheduled, then fired and acknowledged (in either order for
// count-triggered outputs, which acknowledge before the mark fires), or
// late, or scheduled then missed.
type Status uint8

// Mark statuses.
const (
	StatusSkipped      Status = iota // not marked: the recipe does not select it or no head covers it (no event)
	StatusScheduled                  // waiting for the web to reach the marker
	StatusFired                      // the head fired (FireCount set)
	StatusAcknowledged               // the device confirmed the mark
	StatusLate                       // decided after the defect had passed the marker: not marked
	StatusMissed                     // could not be delivered before the defect passed the marker
)

var statusNames = [...]string{"skipped", "scheduled", "fired", "acknowledged", "late", "missed"}

func (s Status) String() string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return fmt.Sprintf("status(%d)", s)
}

// Mark is one firing of one head. Several defects closer than MinSpacingMM
// on the same head share one mark; DefectIDs[0] is the mark's own ID.
// Outputs receive a copy and may keep it; they must not modify DefectIDs.
type Mark struct {
	RollID    string
	DefectIDs []int64
	Head      int     // index into Options.Heads
	HeadName  string  // Options.Heads[Head].Name
	MDM       float64 // MD start of the mark on the roll, m
	CDMM      float64 // CD centre of the (first) defect, mm, in the machine's frame (roll CD + WebEdgeMM)
	LengthMM  float64 // MD length of the mark
	// StartCount is the encoder count at which the defect's MD start was
	// under the camera line; MarkerCount = StartCount + marker distance in
	// counts is the count at which it is under the head.
	StartCount  int64
	MarkerCount int64
	// TargetCount is the count at which the head must be commanded:
	// MarkerCount minus the actuation delay travel at the speed measured when
	// the mark was sent.
	TargetCount int64
	// DelayCounts is the actuation delay travel used for TargetCount.
	DelayCounts int64
	// FireCount and FireTime are the observation at which a time-triggered
	// output is told to fire; zero for marks sent ahead of time.
	FireCount int64
	FireTime  time.Time
}

// MarkEvent reports a status change of one defect's mark. Merged defects
// get their own events.
type MarkEvent struct {
	RollID     string
	DefectID   int64
	MarkID     int64 // DefectIDs[0] of the mark carrying this defect
	Head       int
	HeadName   string
	Status     Status
	MDM        float64 // MD start of the mark, m
	CDMM       float64
	Target     int64     // fire target count at the time of the event
	FireCount  int64     // fired: the count at which the head fired
	Count      int64     // last observed encoder count
	Time       time.Time // time of the last observation
	PassedByMM float64   // late/missed: how far past its fire point the web was
	Err        error     // missed: why
}

// Output is a marking device. Send delivers one mark and returns when the
// device has it (or failed); it is called from the scheduler's output
// goroutine only, one call at a time, and should honour ctx's deadline.
// Close releases the device and makes a blocked Send return.
//
// Optional interfaces: CountTriggered and Acker.
type Output interface {
	Send(ctx context.Context, m Mark) error
	Close() error
}

// CountTriggered is implemented by outputs whose device fires by itself
// when its own encoder reaches the mark: those receive each mark as soon as
// it is scheduled. Other outputs receive a mark when the encoder reaches
// its target count.
type CountTriggered interface {
	CountTriggered() bool
}

// Acker is implemented by outputs whose device confirms marks after Send
// returned (LineOutput's "ACK" lines). The scheduler calls SetAck once,
// before the first Send. For outputs that are not Ackers, a successful Send
// is the acknowledgement.
type Acker interface {
	SetAck(func(defectID int64))
}

// Delivery states of a pending mark.
type delivery uint8

const (
	undelivered delivery = iota // waiting to be queued
	queued                      // in the output queue
	sending                     // taken by the output goroutine
	delivered                   // Send returned nil
)

type pending struct {
	mark   Mark
	state  delivery
	dead   bool  // missed or closed: the output goroutine skips it
	tol    int64 // tolerance in counts
	mpc    float64
	acked  bool
	fired  bool
	sentAt time.Time // wall clock of the last successful Send
}

// Scheduler turns decided defects into marks fired at the right encoder
// count. Schedule and Observe may be called from different goroutines;
// neither blocks on the output.
type Scheduler struct {
	opts    Options
	out     Output
	trig    bool // out is count-triggered
	acker   bool
	log     zerolog.Logger
	onEvent func(MarkEvent)
	met     metrics
	delayNS float64

	mu          sync.Mutex
	closed      bool
	speed       speedometer
	haveObs     bool
	lastC       int64
	lastT       time.Time
	pending     []*pending   // sorted by MarkerCount
	recent      [][]*pending // per head: the last recentFired marks fired, for merging
	awaitAck    []*pending   // delivered, not yet acknowledged (Acker outputs)
	undelivered int          // count-triggered marks waiting to be queued
	unacked     int          // count-triggered marks delivered to an Acker, not yet acknowledged
	ackTimeout  time.Duration

	queue    chan *pending
	inflight atomic.Int64 // marks queued for or being handled by the output goroutine
	ctx      context.Context
	cancel   context.CancelFunc
	done     chan struct{}
}

// recentFired is how many fired marks per head are kept to absorb defects
// decided after their mark fired but lying under it.
const recentFired = 8

// maxAwaitAck bounds the marks kept waiting for an acknowledgement.
const maxAwaitAck = 1024

// NewScheduler makes a scheduler for opts sending marks to out (nil: no
// device, marks fire for the roll map only). reg may be nil. onEvent, if not
// nil, is called for every MarkEvent, in order, with the scheduler's lock
// held: it must be quick, must not block and must not call the Scheduler.
func NewScheduler(opts Options, out Output, reg prometheus.Registerer, log zerolog.Logger, onEvent func(MarkEvent)) (*Scheduler, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts.Heads = slices.Clone(opts.Heads)
	opts.Classes, opts.Severities, opts.Decisions = slices.Clone(opts.Classes), slices.Clone(opts.Severities), slices.Clone(opts.Decisions)
	met, err := newMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("marking: %w", err)
	}
	s := &Scheduler{
		opts:       opts,
		out:        out,
		log:        log.With().Str("component", "marking").Logger(),
		onEvent:    onEvent,
		met:        met,
		delayNS:    opts.ActuationDelayMS * 1e6,
		recent:     make([][]*pending, len(opts.Heads)),
		done:       make(chan struct{}),
		ackTimeout: time.Duration(opts.Output.TimeoutMS) * time.Millisecond,
	}
	s.speed.window = int64(opts.SpeedWindowMS * 1e6)
	if ct, ok := out.(CountTriggered); ok {
		s.trig = ct.CountTriggered()
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if out == nil {
		close(s.done)
		return s, nil
	}
	if a, ok := out.(Acker); ok {
		s.acker = true
		a.SetAck(s.ack)
	}
	s.queue = make(chan *pending, opts.Output.Queue)
	go s.run()
	return s, nil
}

// Schedule plans the marks of one decided defect. startCount is the encoder
// count at which the defect's MD start was under the camera line (the
// assembler's Defect.EncoderCount), originCount the roll's first count and
// mmPerCount the encoder resolution. It returns StatusScheduled if at least
// one head will mark it, StatusLate if every covering head's fire point has
// already passed, StatusSkipped if the recipe does not select it or no head
// covers it. It never blocks.
func (s *Scheduler) Schedule(d rollmap.Defect, startCount, originCount int64, mmPerCount float64) (Status, error) {
	if !(mmPerCount > 0) || math.IsInf(mmPerCount, 0) {
		return StatusSkipped, fmt.Errorf("%w: mmPerCount = %v: must be > 0", ErrEncoder, mmPerCount)
	}
	if !s.opts.Selects(&d) {
		return StatusSkipped, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return StatusSkipped, ErrClosed
	}
	dist := int64(math.Round(s.opts.MarkerDistanceMM / mmPerCount))
	tol := int64(math.Round(s.opts.ToleranceMM / mmPerCount))
	spacing := int64(math.Round(s.opts.MinSpacingMM / mmPerCount))
	delay := s.delayCounts()
	result := StatusSkipped
	for h := range s.opts.Heads {
		head := &s.opts.Heads[h]
		if !head.covers(&d) {
			continue
		}
		m := Mark{
			RollID:      d.RollID,
			Head:        h,
			HeadName:    head.Name,
			MDM:         float64(startCount-originCount) * mmPerCount / 1000,
			CDMM:        (d.CDStartMM+d.CDEndMM)/2 + d.WebEdgeMM, // machine frame, as the heads
			LengthMM:    s.opts.MarkLengthMM,
			StartCount:  startCount,
			MarkerCount: startCount + dist,
			DelayCounts: delay,
		}
		m.TargetCount = m.MarkerCount - delay
		if p := s.mergeTarget(h, m.MarkerCount, spacing); p != nil {
			if m.MarkerCount < p.mark.MarkerCount && p.state == undelivered && !(s.haveObs && s.lastC > m.TargetCount) {
				// Not sent yet: move the mark to the earlier defect.
				p.mark.MarkerCount, p.mark.StartCount, p.mark.MDM = m.MarkerCount, m.StartCount, m.MDM
				p.mark.TargetCount = m.TargetCount
				s.resort()
			}
			p.mark.DefectIDs = append(p.mark.DefectIDs, d.ID)
			s.emit(&p.mark, d.ID, StatusScheduled, 0, 0, nil)
			result = StatusScheduled
			if p.fired {
				s.emit(&p.mark, d.ID, StatusFired, p.mark.FireCount, 0, nil)
			}
			continue
		}
		if s.haveObs && s.lastC > m.TargetCount+tol {
			if result == StatusSkipped {
				result = StatusLate
			}
			m.DefectIDs = []int64{d.ID}
			passed := float64(s.lastC-m.TargetCount) * mmPerCount
			s.emit(&m, d.ID, StatusLate, 0, passed, nil)
			s.log.Warn().Str("roll", d.RollID).Int64("defect", d.ID).Str("head", head.Name).
				Float64("md_m", m.MDM).Float64("passed_by_mm", passed).
				Msg("mark late: the defect was decided after it passed the marker")
			continue
		}
		result = StatusScheduled
		m.DefectIDs = []int64{d.ID}
		p := &pending{mark: m, tol: tol, mpc: mmPerCount}
		i, _ := slices.BinarySearchFunc(s.pending, m.MarkerCount, func(q *pending, c int64) int {
			return cmpInt(q.mark.MarkerCount, c)
		})
		s.pending = slices.Insert(s.pending, i, p)
		s.met.pending.Inc()
		s.emit(&p.mark, d.ID, StatusScheduled, 0, 0, nil)
		if s.trig {
			s.undelivered++
			s.enqueue(p)
		}
	}
	return result, nil
}

// mergeTarget returns the pending or last fired mark of head h whose
// MarkerCount is closer than spacing to c, if any. A fired mark only
// absorbs defects that start under it (at or after its start).
func (s *Scheduler) mergeTarget(h int, c, spacing int64) *pending {
	if spacing <= 0 {
		return nil
	}
	for _, p := range s.pending {
		if p.mark.Head == h && !p.dead && absInt(p.mark.MarkerCount-c) < spacing {
			return p
		}
	}
	for _, p := range s.recent[h] {
		if c >= p.mark.MarkerCount && c-p.mark.MarkerCount < spacing {
			return p
		}
	}
	return nil
}

func (s *Scheduler) resort() {
	slices.SortStableFunc(s.pending, func(a, b *pending) int { return cmpInt(a.mark.MarkerCount, b.mark.MarkerCount) })
}

// Observe feeds the scheduler one encoder observation: the count of a line
// (or block) and its time. Every pending mark whose target count (its
// marker count minus the actuation delay travel at the current speed) is
// <= count fires, in MD order, if the web moved forwards since the previous
// observation. Observe never blocks and does not allocate.
func (s *Scheduler) Observe(count int64, t time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	forward := s.haveObs && count > s.lastC
	s.speed.add(count, t.UnixNano())
	s.haveObs, s.lastC, s.lastT = true, count, t
	if len(s.pending) == 0 || s.closed {
		return
	}
	if s.unacked > 0 {
		s.resendUnacked()
	}
	if s.undelivered > 0 {
		for _, p := range s.pending {
			if p.state == undelivered && !s.enqueue(p) {
				break
			}
		}
	}
	if !forward {
		return // stopped or running backwards: nothing fires
	}
	delay := s.delayCounts()
	n := 0 // leading marks whose target is reached
	for n < len(s.pending) && s.pending[n].mark.MarkerCount-delay <= count {
		n++
	}
	w := 0
	for _, p := range s.pending[:n] {
		if s.due(p, p.mark.MarkerCount-delay, delay, count, t) {
			s.pending[w] = p
			w++
		}
	}
	if w < n {
		k := copy(s.pending[w:], s.pending[n:])
		clear(s.pending[w+k:])
		s.pending = s.pending[:w+k]
	}
}

// resendUnacked offers again the marks an Acker device did not confirm
// within the output timeout (the line may have been lost with its
// connection). Devices treat a repeated MARK as a replacement.
func (s *Scheduler) resendUnacked() {
	now := time.Now()
	for _, p := range s.pending {
		if p.state == delivered && !p.acked && now.Sub(p.sentAt) > s.ackTimeout {
			p.state = undelivered
			s.unacked--
			s.undelivered++
			s.enqueue(p)
		}
	}
}

// due handles a pending mark whose target has been reached and reports
// whether it stays pending.
func (s *Scheduler) due(p *pending, target, delay, count int64, t time.Time) bool {
	passed := count > target+p.tol
	switch {
	case s.out == nil:
		p.mark.FireCount, p.mark.FireTime, p.mark.TargetCount = count, t, target
		s.fired(p, count)
		return false
	case s.trig && p.state == delivered && (p.acked || !s.acker):
		p.mark.TargetCount = target
		s.fired(p, count)
		return false
	case p.state == sending:
		return true // in flight; the output goroutine decides
	case passed:
		s.missed(p, target, "not delivered before the defect passed the marker")
		return false
	case !s.trig && p.state == undelivered:
		p.mark.FireCount, p.mark.FireTime = count, t
		p.mark.TargetCount, p.mark.DelayCounts = target, delay
		s.enqueue(p)
	}
	return true
}

func (s *Scheduler) fired(p *pending, count int64) {
	s.met.pending.Dec()
	p.mark.FireCount = count
	if p.mark.FireTime.IsZero() {
		p.mark.FireTime = s.lastT
	}
	p.fired = true
	r := s.recent[p.mark.Head]
	if len(r) == recentFired {
		r = slices.Delete(r, 0, 1)
	}
	s.recent[p.mark.Head] = append(r, p)
	for _, id := range p.mark.DefectIDs {
		s.emit(&p.mark, id, StatusFired, count, 0, nil)
	}
}

func (s *Scheduler) missed(p *pending, target int64, why string) {
	p.dead = true
	if p.state == undelivered && s.trig {
		s.undelivered--
	}
	if p.state == delivered && s.trig && s.acker && !p.acked {
		s.unacked--
	}
	s.met.pending.Dec()
	passed := float64(s.lastC-target) * p.mpc
	err := fmt.Errorf("%w: %s", ErrMissed, why)
	for _, id := range p.mark.DefectIDs {
		s.emit(&p.mark, id, StatusMissed, 0, passed, err)
	}
	s.log.Warn().Str("roll", p.mark.RollID).Int64("defect", p.mark.DefectIDs[0]).Str("head", p.mark.HeadName).
		Float64("md_m", p.mark.MDM).Float64("passed_by_mm", passed).Msg("mark missed: " + why)
}

// delayCounts is the actuation delay travel at the current speed, in
// counts (0 when stopped or running backwards).
func (s *Scheduler) delayCounts() int64 {
	v := s.speed.countsPerNS()
	if v <= 0 {
		return 0
	}
	return int64(math.Round(v * s.delayNS))
}

// enqueue offers p to the output goroutine without blocking.
func (s *Scheduler) enqueue(p *pending) bool {
	select {
	case s.queue <- p:
		s.inflight.Add(1)
		if s.trig {
			s.undelivered--
		}
		p.state = queued
		return true
	default:
		return false
	}
}

func (s *Scheduler) emit(m *Mark, id int64, st Status, fire int64, passedMM float64, err error) {
	s.met.events[st].Inc()
	if s.onEvent == nil {
		return
	}
	s.onEvent(MarkEvent{
		RollID: m.RollID, DefectID: id, MarkID: m.DefectIDs[0], Head: m.Head, HeadName: m.HeadName,
		Status: st, MDM: m.MDM, CDMM: m.CDMM, Target: m.TargetCount, FireCount: fire,
		Count: s.lastC, Time: s.lastT, PassedByMM: passedMM, Err: err,
	})
}

// WaitIdle waits until the output goroutine has handled every mark queued
// so far, or until max has passed, and reports whether it is idle. The
// engine calls it when replaying a recording as fast as possible, where
// the web "moves" only as fast as inspection runs and must not overtake
// marks still on their way to the device. Live inspection never calls it.
func (s *Scheduler) WaitIdle(max time.Duration) bool {
	deadline := time.Now().Add(max)
	for s.inflight.Load() > 0 {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Microsecond)
	}
	return true
}

// run is the output goroutine: it sends queued marks one at a time and
// backs off exponentially after failures.
func (s *Scheduler) run() {
	defer close(s.done)
	o := s.opts.Output
	minB := time.Duration(o.BackoffMinMS) * time.Millisecond
	maxB := time.Duration(o.BackoffMaxMS) * time.Millisecond
	timeout := time.Duration(o.TimeoutMS) * time.Millisecond
	backoff := minB
	for p := range s.queue {
		m, ok := s.claim(p)
		if !ok {
			s.inflight.Add(-1)
			continue
		}
		ctx, cancel := context.WithTimeout(s.ctx, timeout)
		err := s.out.Send(ctx, m)
		cancel()
		s.sent(p, err)
		s.inflight.Add(-1)
		if err == nil {
			backoff = minB
			continue
		}
		s.met.outputErrors.Inc()
		s.log.Warn().Err(err).Dur("backoff", backoff).Msg("marking output failed; retrying")
		select {
		case <-time.After(backoff):
		case <-s.ctx.Done():
		}
		backoff = min(2*backoff, maxB)
	}
}

func (s *Scheduler) claim(p *pending) (Mark, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p.dead || s.closed {
		return Mark{}, false
	}
	if s.trig && s.haveObs {
		// Refresh the target with the speed now.
		d := s.delayCounts()
		p.mark.DelayCounts, p.mark.TargetCount = d, p.mark.MarkerCount-d
	}
	if s.haveObs && s.lastC > p.mark.TargetCount+p.tol {
		// Waited in the queue until it could no longer be placed.
		s.missed(p, p.mark.TargetCount, "queued until the defect passed the marker")
		if i := slices.Index(s.pending, p); i >= 0 {
			s.pending = slices.Delete(s.pending, i, i+1)
		}
		return Mark{}, false
	}
	p.state = sending
	m := p.mark
	m.DefectIDs = slices.Clip(m.DefectIDs)
	return m, true
}

func (s *Scheduler) sent(p *pending, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	if err != nil {
		p.state = undelivered
		if s.trig {
			s.undelivered++
		}
		return
	}
	p.state = delivered
	p.sentAt = time.Now()
	if s.acker {
		if s.trig {
			s.unacked++
		}
		if len(s.awaitAck) >= maxAwaitAck {
			s.awaitAck = slices.Delete(s.awaitAck, 0, 1)
		}
		s.awaitAck = append(s.awaitAck, p)
	} else {
		s.acknowledged(p)
	}
	if s.trig {
		return // fires when the encoder reaches the target (Observe)
	}
	// Time-triggered: the device fired on receipt.
	if i := slices.Index(s.pending, p); i >= 0 {
		s.pending = slices.Delete(s.pending, i, i+1)
	}
	s.fired(p, p.mark.FireCount)
}

func (s *Scheduler) acknowledged(p *pending) {
	p.acked = true
	for _, id := range p.mark.DefectIDs {
		s.emit(&p.mark, id, StatusAcknowledged, p.mark.FireCount, 0, nil)
	}
}

// ack is the Acker callback: the device confirmed the mark whose first
// defect is id.
func (s *Scheduler) ack(id int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, p := range s.awaitAck {
		if p.mark.DefectIDs[0] == id && !p.acked {
			s.awaitAck = slices.Delete(s.awaitAck, i, i+1)
			if s.trig && p.state == delivered && !p.dead && !p.fired {
				s.unacked--
			}
			s.acknowledged(p)
			return
		}
	}
	s.log.Debug().Int64("defect", id).Msg("acknowledgement for no outstanding mark")
}

// Pending returns the number of marks waiting to fire.
func (s *Scheduler) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pending)
}

// Close stops the output goroutine, closes the output (which must make a
// blocked Send return) and reports every mark still pending as missed.
func (s *Scheduler) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	for _, p := range s.pending {
		if !p.dead {
			s.missed(p, p.mark.TargetCount, "scheduler closed")
		}
	}
	s.pending = nil
	s.closed = true
	if s.queue != nil {
		close(s.queue)
	}
	s.mu.Unlock()
	s.cancel()
	var err error
	if s.out != nil {
		err = s.out.Close()
	}
	<-s.done
	return err
}

type metrics struct {
	events       [len(statusNames)]prometheus.Counter
	outputErrors prometheus.Counter
	pending      prometheus.Gauge
}

// newMetrics makes the collectors and registers them on reg (nil: none);
// a second scheduler on the same registry shares them (metricsreg).
func newMetrics(reg prometheus.Registerer) (metrics, error) {
	ev := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "webinspect_mark_events_total",
		Help: "Mark status changes, per defect: scheduled, fired, acknowledged, late, missed.",
	}, []string{"status"})
	errs := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "webinspect_mark_output_errors_total", Help: "Failed sends to the marking device.",
	})
	pend := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "webinspect_marks_pending", Help: "Marks waiting for the web to reach the marker.",
	})
	var rs metricsreg.Set
	ev = metricsreg.Add(&rs, reg, ev)
	errs = metricsreg.Add(&rs, reg, errs)
	pend = metricsreg.Add(&rs, reg, pend)
	var m metrics
	for i, n := range statusNames {
		m.events[i] = ev.WithLabelValues(n)
	}
	m.outputErrors, m.pending = errs, pend
	return m, rs.Err()
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func absInt(a int64) int64 {
	if a < 0 {
		return -a
	}
	return a
}

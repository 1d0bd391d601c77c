package bench

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/webinspect/webinspect/acquisition"
	"github.com/webinspect/webinspect/rollmap"
)

// latencyMetric is the engine histogram the latency sampler reads.
const latencyMetric = "webinspect_pipeline_latency_seconds"

// pendingCap bounds the blocks per camera that may be in the engine (ring,
// detector, result queue) at once; the engine's own bounds are far lower.
const pendingCap = 1 << 14

// probe wraps a source: it time-stamps every block as it leaves the source
// and tells the blocks that went into a ring slot from those the engine
// read into its scratch block and dropped.
//
// The engine's acquisition loop reads into a ring slot when it has one and
// into one scratch block of its own when the ring is full. A ring of n
// slots always has a free slot for the first n reads, so the first n
// distinct blocks a stream is given are the ring's slots, and any other
// block is the scratch block: a drop. Run cross-checks the count against
// the engine's own.
type probe struct {
	src        acquisition.Source
	ringBlocks int
	streams    []*probeStream

	startOnce sync.Once
	start     time.Time // first read: the clock the arrivals are measured on

	recoverAfter time.Duration // drops at or after start+recoverAfter are counted in dropsAfter; 0 = off

	mu      sync.Mutex
	pending []pendingQueue // per camera: arrivals (s since start) of committed blocks not yet seen decided

	notify                     chan struct{}
	committed, blocks, dropped atomic.Int64
	lines, droppedLines, px    atomic.Int64 // lines over all cameras; px = inspected pixels
	dropsAfter                 atomic.Int64
	lastRead                   atomic.Int64 // ns from start to the last block read
}

type pendingQueue struct {
	a          []float64 // circular, len pendingCap
	head, size int
}

func newProbe(src acquisition.Source, ringBlocks int) *probe {
	p := &probe{src: src, ringBlocks: ringBlocks, notify: make(chan struct{}, 1)}
	for i, s := range src.Streams() {
		p.streams = append(p.streams, &probeStream{p: p, inner: s, cam: i, slots: make([]*acquisition.Block, 0, ringBlocks)})
		p.pending = append(p.pending, pendingQueue{a: make([]float64, pendingCap)})
	}
	return p
}

func (p *probe) Info() acquisition.Info { return p.src.Info() }
func (p *probe) Close() error           { return p.src.Close() }

func (p *probe) Streams() []acquisition.Stream {
	out := make([]acquisition.Stream, len(p.streams))
	for i, s := range p.streams {
		out[i] = s
	}
	return out
}

func (p *probe) epoch() time.Time {
	p.startOnce.Do(func() { p.start = time.Now() })
	return p.start
}

// outstanding is the number of committed blocks minus observed ones.
func (p *probe) outstanding(observed int64) int64 { return p.committed.Load() - observed }

// popOldest removes the n oldest pending arrivals over all cameras and
// appends them to dst.
func (p *probe) popOldest(n int, dst []float64) []float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	for ; n > 0; n-- {
		best := -1
		for c := range p.pending {
			q := &p.pending[c]
			if q.size > 0 && (best < 0 || q.a[q.head] < p.pending[best].a[p.pending[best].head]) {
				best = c
			}
		}
		if best < 0 {
			return dst
		}
		q := &p.pending[best]
		dst = append(dst, q.a[q.head])
		q.head = (q.head + 1) % len(q.a)
		q.size--
	}
	return dst
}

type probeStream struct {
	p     *probe
	inner acquisition.Stream
	cam   int
	slots []*acquisition.Block // the ring's slots, learnt from the first reads
}

func (s *probeStream) Camera() acquisition.CameraInfo { return s.inner.Camera() }
func (s *probeStream) Close() error                   { return s.inner.Close() }

func (s *probeStream) isSlot(b *acquisition.Block) bool {
	for _, x := range s.slots {
		if x == b {
			return true
		}
	}
	if len(s.slots) < s.p.ringBlocks {
		s.slots = append(s.slots, b)
		return true
	}
	return false
}

func (s *probeStream) ReadBlock(ctx context.Context, dst *acquisition.Block) error {
	p := s.p
	start := p.epoch()
	if err := s.inner.ReadBlock(ctx, dst); err != nil {
		return err
	}
	now := time.Now()
	p.lastRead.Store(int64(now.Sub(start)))
	p.blocks.Add(1)
	p.lines.Add(int64(dst.Lines))
	if !s.isSlot(dst) {
		p.dropped.Add(1)
		p.droppedLines.Add(int64(dst.Lines))
		if p.recoverAfter > 0 && now.Sub(start) >= p.recoverAfter {
			p.dropsAfter.Add(1)
		}
		return nil
	}
	p.px.Add(int64(dst.Lines) * int64(dst.Width))
	p.mu.Lock()
	q := &p.pending[s.cam]
	if q.size < len(q.a) {
		q.a[(q.head+q.size)%len(q.a)] = now.Sub(start).Seconds()
		q.size++
	}
	p.mu.Unlock()
	p.committed.Add(1)
	select {
	case p.notify <- struct{}{}:
	default:
	}
	return nil
}

// captureRegisterer is a registry that also keeps the engine's latency
// histogram so the sampler can read it.
type captureRegisterer struct {
	*prometheus.Registry
	hist prometheus.Histogram
}

func (c *captureRegisterer) Register(col prometheus.Collector) error {
	if h, ok := col.(prometheus.Histogram); ok && strings.Contains(h.Desc().String(), `"`+latencyMetric+`"`) {
		c.hist = h
	}
	return c.Registry.Register(col)
}

func (c *captureRegisterer) MustRegister(cs ...prometheus.Collector) {
	for _, col := range cs {
		if err := c.Register(col); err != nil {
			panic(err)
		}
	}
}

// counter sums the samples of a counter family in the registry.
func (c *captureRegisterer) counter(name string) (float64, error) {
	fams, err := c.Gather()
	if err != nil {
		return 0, fmt.Errorf("gather engine metrics: %w", err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		var sum float64
		for _, m := range f.GetMetric() {
			sum += m.GetCounter().GetValue()
		}
		return sum, nil
	}
	return 0, nil
}

// sampler turns the engine's latency histogram into individual latencies.
//
// The engine observes, for every block that reached a detector, the time
// from the block leaving the source to the assembler having decided
// everything it closed. Its buckets are a factor of two apart, too coarse
// for percentiles, but the histogram's count and sum are exact. The sampler
// reads them every interval while blocks are in flight: when one
// observation was added since the last read, the change of the sum is that
// latency exactly; when k > 1 were, they are attributed to the k oldest
// blocks not yet seen decided (whose arrival times the probe recorded) and
// taken to have been decided at one common instant T chosen so that their
// latencies add up to the change of the sum. The error of that case is at
// most the spread of their decision times, under one interval.
type sampler struct {
	h        prometheus.Histogram
	p        *probe
	interval time.Duration

	m            dto.Metric
	lastN        uint64
	lastSum      float64
	polls        atomic.Int64
	observed     atomic.Int64
	multi        int64 // reads that saw more than one new observation
	multiSamples int   // latencies from those reads
	unattributed int64 // observations without a recorded arrival
	lat          []float64
	buf          []float64
}

func newSampler(h prometheus.Histogram, p *probe, interval time.Duration, expect int) *sampler {
	return &sampler{h: h, p: p, interval: interval, lat: make([]float64, 0, expect), buf: make([]float64, 0, 256)}
}

func (s *sampler) poll() {
	if err := s.h.Write(&s.m); err != nil {
		return
	}
	s.polls.Add(1)
	hist := s.m.GetHistogram()
	n, sum := hist.GetSampleCount(), hist.GetSampleSum()
	dn := n - s.lastN
	if dn == 0 {
		return
	}
	dsum := sum - s.lastSum
	s.lastN, s.lastSum = n, sum
	s.observed.Store(int64(n))
	s.buf = s.p.popOldest(int(dn), s.buf[:0])
	if dn == 1 {
		s.lat = append(s.lat, max(0, dsum))
		if len(s.buf) == 0 {
			s.unattributed++
		}
		return
	}
	s.multi++
	s.multiSamples += int(dn)
	if len(s.buf) < int(dn) {
		s.unattributed += int64(dn) - int64(len(s.buf))
		for range dn {
			s.lat = append(s.lat, max(0, dsum/float64(dn)))
		}
		return
	}
	var sa float64
	for _, a := range s.buf {
		sa += a
	}
	t := (dsum + sa) / float64(dn)
	for _, a := range s.buf {
		s.lat = append(s.lat, max(0, t-a))
	}
}

// run reads the histogram every interval while blocks are in flight, and
// once more when done is closed.
func (s *sampler) run(done <-chan struct{}) {
	t := time.NewTimer(s.interval)
	defer t.Stop()
	for {
		if s.p.outstanding(s.observed.Load()) <= 0 {
			select {
			case <-s.p.notify:
			case <-done:
				s.poll()
				return
			}
		}
		t.Reset(s.interval)
		select {
		case <-t.C:
		case <-done:
			s.poll()
			return
		}
		s.poll()
	}
}

// allocsPerWrite measures how many allocations one read of the histogram
// costs, so that the sampler's reads can be taken out of the engine's
// allocation count. Nothing else runs while it measures.
func allocsPerWrite(h prometheus.Histogram) float64 {
	best := math.Inf(1)
	var ms runtime.MemStats
	var m dto.Metric
	for range 3 {
		runtime.ReadMemStats(&ms)
		before := ms.Mallocs
		const n = 64
		for range n {
			_ = h.Write(&m)
		}
		runtime.ReadMemStats(&ms)
		best = min(best, float64(ms.Mallocs-before)/n)
	}
	return math.Round(best)
}

// percentile returns the q-quantile (0 < q <= 1) of sorted values, by the
// nearest-rank rule; NaN when there are none.
func percentile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// countRoll is a roll writer that keeps only counts: the benchmark measures
// the engine, not the roll map's storage.
type countRoll struct {
	defects      int64
	uninspected  int64
	uninspectedM float64
}

func (r *countRoll) ID() string { return "bench" }
func (r *countRoll) AddDefects(ds ...rollmap.Defect) error {
	r.defects += int64(len(ds))
	return nil
}
func (r *countRoll) AddUninspected(us ...rollmap.Uninspected) error {
	for _, u := range us {
		r.uninspected++
		r.uninspectedM += u.MDEndM - u.MDStartM
	}
	return nil
}
func (r *countRoll) SetLength(float64) {}
func (r *countRoll) Flush() error      { return nil }

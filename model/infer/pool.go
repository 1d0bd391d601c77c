package infer

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/webinspect/webinspect/model/edge"
	"github.com/webinspect/webinspect/model/onnx"
)

// queueTiles is the capacity of the pool's tile queue. A detector that
// finds it full waits (its strips are bounded by Options.InFlight anyway).
const queueTiles = 4096

// tileJob is one tile of one strip: the worker reads the strip's pixels at
// the tile's column and writes the tile's map into the strip's map slot.
// It is passed by value through the queue, so queueing allocates nothing.
type tileJob struct {
	s *strip
	i int32
}

// Pool runs a model's tiles on Options.Workers workers, each owning one
// onnx.Session with one intra-op thread. Detectors of all cameras share
// one pool and its queue; tiles are scored in queue order, batched as
// described in the package doc. Close it after every detector is flushed.
type Pool struct {
	m      *onnx.Model
	o      Options
	th, tw int
	batch  int
	thr    float32

	jobs     chan tileJob
	sessions []*onnx.Session
	wg       sync.WaitGroup
	mu       sync.RWMutex // held for reading while queueing, for writing by Close
	closed   bool

	batches, tiles, timeouts, full atomic.Int64
}

// PoolStats counts the pool's work since NewPool.
type PoolStats struct {
	// Batches is the number of session runs and Tiles the tiles they scored.
	Batches, Tiles int64
	// Full is the number of runs with Options.Batch tiles.
	Full int64
	// Timeouts is the number of runs started short because MaxWaitMS passed
	// with the queue empty. A worker waits at most once per run, so a tile
	// never waits in a worker's hands longer than MaxWaitMS.
	Timeouts int64
}

// NewPool checks o against m, resolves the threshold (o.Threshold, else
// the sidecar's) and starts o.Workers workers with a session each.
func NewPool(m *onnx.Model, o Options) (*Pool, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	th, tw := m.TileSize()
	switch {
	case o.OverlapCD >= tw:
		return nil, fmt.Errorf("%w: overlap_cd = %d: must be between 0 and %d (tile width %d - 1)", ErrOptions, o.OverlapCD, tw-1, tw)
	case o.OverlapMD >= th:
		return nil, fmt.Errorf("%w: overlap_md = %d: must be between 0 and %d (tile height %d - 1)", ErrOptions, o.OverlapMD, th-1, th)
	case o.Batch > m.Batch():
		return nil, fmt.Errorf("%w: batch = %d: must be between 0 and %d (the model was loaded with ModelOptions.Batch %d)", ErrOptions, o.Batch, m.Batch(), m.Batch())
	}
	batch := o.Batch
	if batch == 0 {
		batch = m.Batch()
	}
	thr := o.Threshold
	if thr == 0 {
		sc := m.Sidecar()
		if sc.Threshold == nil {
			return nil, fmt.Errorf("%w: Options.Threshold is 0 and sidecar of %s has none", ErrNoThreshold, m.Path())
		}
		thr = *sc.Threshold
	}
	if o.OffWeb.Mode == OffWebAuto {
		e, _, err := edge.FromParams(m.Sidecar().MadeBy.Params)
		if err != nil {
			return nil, fmt.Errorf("%w: Options.OffWeb.Mode auto: model %s: %v", ErrOptions, m.Path(), err)
		}
		o.OffWeb = e
	}
	p := &Pool{m: m, o: o, th: th, tw: tw, batch: batch, thr: float32(thr),
		jobs: make(chan tileJob, queueTiles)}
	for range o.Workers {
		s, err := m.NewSession()
		if err != nil {
			for _, s := range p.sessions {
				s.Close()
			}
			return nil, fmt.Errorf("infer: worker session: %w", err)
		}
		p.sessions = append(p.sessions, s)
	}
	for _, s := range p.sessions {
		p.wg.Add(1)
		go p.work(s)
	}
	return p, nil
}

// Options returns the options the pool runs with.
func (p *Pool) Options() Options { return p.o }

// Threshold returns the anomaly-map threshold in use.
func (p *Pool) Threshold() float32 { return p.thr }

// Stats returns counters of the work done so far.
func (p *Pool) Stats() PoolStats {
	return PoolStats{Batches: p.batches.Load(), Tiles: p.tiles.Load(),
		Full: p.full.Load(), Timeouts: p.timeouts.Load()}
}

// Close stops the workers after they have scored every queued tile and
// releases the sessions. Detectors must be flushed (or abandoned) first;
// their later calls return ErrClosed. Close is safe to call twice.
func (p *Pool) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	close(p.jobs)
	p.mu.Unlock()
	p.wg.Wait()
	var errs []error
	for _, s := range p.sessions {
		errs = append(errs, s.Close())
	}
	return errors.Join(errs...)
}

// submit queues every tile of s. It blocks while the queue is full.
func (p *Pool) submit(s *strip, n int) error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return ErrClosed
	}
	s.pending.Store(int32(n))
	for i := range n {
		p.jobs <- tileJob{s: s, i: int32(i)}
	}
	return nil
}

// work is one worker: take a tile (waiting as long as it takes), then
// whatever else is queued up to the batch size; if the queue runs dry
// before the batch is full, wait for more at most MaxWaitMS once, then run.
func (p *Pool) work(sess *onnx.Session) {
	defer p.wg.Done()
	jobs := make([]tileJob, 0, p.batch)
	tiles := make([]onnx.Tile, 0, p.batch)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		j, ok := <-p.jobs
		if !ok {
			return
		}
		jobs = append(jobs[:0], j)
		open, waited := true, false
	fill:
		for open && len(jobs) < p.batch {
			select {
			case j, ok := <-p.jobs:
				if !ok {
					open = false
					break fill
				}
				jobs = append(jobs, j)
				continue
			default:
			}
			if waited || p.o.MaxWait() <= 0 {
				break
			}
			// The queue is empty: wait once, at most MaxWaitMS, for more.
			waited = true
			timer.Reset(p.o.MaxWait())
			for open && len(jobs) < p.batch {
				select {
				case j, ok := <-p.jobs:
					if !ok {
						open = false
						break
					}
					jobs = append(jobs, j)
				case <-timer.C:
					p.timeouts.Add(1)
					break fill
				}
			}
			timer.Stop()
		}
		tiles = tiles[:0]
		for _, j := range jobs {
			s := j.s
			x := s.d.xs[j.i]
			tiles = append(tiles, onnx.Tile{Pix: s.pix[x:], Stride: s.d.sw, E0: s.e0, E1: s.e1, X0: x, RowW: s.d.bw})
		}
		res, err := sess.RunTiles(tiles)
		p.batches.Add(1)
		p.tiles.Add(int64(len(jobs)))
		if len(jobs) == p.batch {
			p.full.Add(1)
		}
		tpx := p.th * p.tw
		for k, j := range jobs {
			s := j.s
			if err != nil {
				s.fail(err)
			} else {
				copy(s.maps[int(j.i)*tpx:(int(j.i)+1)*tpx], res.Map(k))
			}
			if s.pending.Add(-1) == 0 {
				s.done <- struct{}{}
			}
		}
		clear(tiles) // drop references to strips
		if !open {
			return
		}
	}
}

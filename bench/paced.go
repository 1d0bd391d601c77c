package bench

import (
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/webinspect/webinspect/acquisition"
)

// Rate is one phase of a paced replay: LinesPerSec lines per second per
// camera for Duration.
type Rate struct {
	Duration    time.Duration
	LinesPerSec float64
}

// PacedSource replays a MemorySource live: every stream delivers its
// blocks at the line rate of the current phase, measured from the first
// read of any stream, as a camera would. Info().Live is true, so an engine
// that falls behind drops blocks at its ring exactly as it would with a
// camera. A read that comes after its block was due is served at once (a
// frame grabber with a deep buffer); the largest such lag is reported by
// MaxLag so a source that could not keep up is visible.
type PacedSource struct {
	mem     *MemorySource
	info    acquisition.Info
	phases  []Rate
	perCam  int
	streams []*pacedStream

	epochOnce sync.Once
	epoch     time.Time
	maxLag    atomic.Int64 // ns
}

// NewPaced makes a live source over m's captured blocks that follows the
// given phases; it delivers whole blocks until the phases are over.
func NewPaced(m *MemorySource, phases []Rate) (*PacedSource, error) {
	if len(phases) == 0 {
		return nil, fmt.Errorf("paced source: no phases")
	}
	var lines float64
	for i, p := range phases {
		if p.Duration <= 0 || p.LinesPerSec <= 0 {
			return nil, fmt.Errorf("paced source: phase %d: duration %v and rate %g lines/s must be positive", i, p.Duration, p.LinesPerSec)
		}
		lines += p.Duration.Seconds() * p.LinesPerSec
	}
	lpb := m.info.LinesPerBlock
	s := &PacedSource{mem: m, info: m.info, phases: phases, perCam: max(1, int(lines)/lpb)}
	s.info.Live = true
	s.info.SpeedMPerMin = phases[0].LinesPerSec * m.info.LineMM() * 60 / 1000
	for i := range m.blocks {
		s.streams = append(s.streams, &pacedStream{src: s, mem: memStream{m: m.WithBlocks(s.perCam), cam: i}})
	}
	return s, nil
}

// Info describes the source; Live is true.
func (s *PacedSource) Info() acquisition.Info { return s.info }

// Close does nothing: the captured blocks stay usable.
func (s *PacedSource) Close() error { return nil }

// Streams returns the same streams on every call.
func (s *PacedSource) Streams() []acquisition.Stream {
	out := make([]acquisition.Stream, len(s.streams))
	for i, st := range s.streams {
		out[i] = st
	}
	return out
}

// Blocks is the number of blocks each stream delivers.
func (s *PacedSource) Blocks() int { return s.perCam }

// MaxLag is the longest time a block was handed out after it was due.
func (s *PacedSource) MaxLag() time.Duration { return time.Duration(s.maxLag.Load()) }

// Epoch is the wall-clock time of the first read (zero before it).
func (s *PacedSource) Epoch() time.Time {
	s.epochOnce.Do(func() { s.epoch = time.Now() })
	return s.epoch
}

// lineTime is the time, from the epoch, at which line number n (from 0)
// is triggered under the phases; the last phase's rate continues.
func (s *PacedSource) lineTime(n int64) time.Duration {
	var t time.Duration
	rem := float64(n)
	for i, p := range s.phases {
		inPhase := p.Duration.Seconds() * p.LinesPerSec
		if rem <= inPhase || i == len(s.phases)-1 {
			return t + time.Duration(rem/p.LinesPerSec*1e9)
		}
		rem -= inPhase
		t += p.Duration
	}
	return t
}

type pacedStream struct {
	src   *PacedSource
	mem   memStream
	timer *time.Timer
}

func (st *pacedStream) Camera() acquisition.CameraInfo { return st.mem.Camera() }
func (st *pacedStream) Close() error                   { return nil }

// ReadBlock waits until the next block's last line has been triggered,
// then copies it into dst. It does not allocate after the first call.
func (st *pacedStream) ReadBlock(ctx context.Context, dst *acquisition.Block) error {
	epoch := st.src.Epoch()
	if st.mem.n >= st.mem.m.perCam {
		return io.EOF
	}
	lpb := int64(st.src.info.LinesPerBlock)
	first := int64(st.mem.n) * lpb
	due := epoch.Add(st.src.lineTime(first + lpb - 1))
	if d := time.Until(due); d > 0 {
		if st.timer == nil {
			st.timer = time.NewTimer(d)
		} else {
			st.timer.Reset(d)
		}
		select {
		case <-st.timer.C:
		case <-ctx.Done():
			st.timer.Stop()
			return ctx.Err()
		}
	} else {
		for lag := int64(-d); ; {
			old := st.src.maxLag.Load()
			if lag <= old || st.src.maxLag.CompareAndSwap(old, lag) {
				break
			}
		}
	}
	if err := st.mem.ReadBlock(ctx, dst); err != nil {
		return err
	}
	dst.Time = epoch.Add(st.src.lineTime(first))
	return nil
}

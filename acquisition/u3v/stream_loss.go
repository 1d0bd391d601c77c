package u3v

import (
	"errors"
	"fmt"
	"time"

	"github.com/webinspect/webinspect/acquisition"
)

// maxGapFrames is the largest block ID jump taken as lost frames; a larger
// jump (or one backwards) is the camera restarting its block counter.
const maxGapFrames = 1 << 16

// account checks the block ID of a good frame of lines lines against the
// last one and records the frames in between as lost. first is the
// frame's first encoder count when hasCount.
func (s *Stream) account(id uint64, lines int, first int64, hasCount bool) {
	prev, started := s.lastID, s.started
	s.lastID, s.started = id, true
	if !started {
		return // frames lost before the first good one are not ours to count
	}
	if id <= prev || id-prev-1 > maxGapFrames {
		s.logf("block ID jumped from %d to %d: camera restarted its block counter", prev, id)
		return
	}
	gap := int64(id - prev - 1)
	if gap == 0 {
		return
	}
	n := gap * int64(lines)
	k := int64(s.opt.CountsPerLine)
	ll := acquisition.LostLines{FirstLine: s.nextLine, Lines: n, Reason: ReasonFrameLost}
	if hasCount && first-k >= s.lastCount+k {
		ll.FirstCount, ll.LastCount = s.lastCount+k, first-k
	} else if hasCount {
		ll.LastCount = first - k
		ll.FirstCount = ll.LastCount - (n-1)*k
	} else {
		ll.FirstCount, ll.LastCount = s.nextLine*k, (s.nextLine+n-1)*k
	}
	if s.lost.Empty() {
		s.lost = ll
	} else { // cannot happen with one frame in flight; merge to be safe
		s.lost.Lines = ll.FirstLine + ll.Lines - s.lost.FirstLine
		s.lost.LastCount = ll.LastCount
	}
	s.nextLine += n
	s.mu.Lock()
	s.stats.LostFrames += uint64(gap)
	s.stats.LostLines += uint64(n)
	s.mu.Unlock()
	why := s.lostWhy
	if why == "" {
		why = "the device skipped their block IDs"
	}
	s.logf("lost %d frame(s) (%d lines) before block %d: %s", gap, n, id, why)
	s.lostWhy = ""
}

// count updates the delivered counters and the line rate.
func (s *Stream) count(lines int) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.Frames++
	s.stats.Lines += uint64(lines)
	if s.rateT.IsZero() {
		s.rateT, s.rateN = now, s.stats.Lines
		return
	}
	if d := now.Sub(s.rateT); d >= time.Second {
		s.stats.LineRate = float64(s.stats.Lines-s.rateN) / d.Seconds()
		s.rateT, s.rateN = now, s.stats.Lines
	}
}

func (s *Stream) logf(format string, a ...any) {
	if s.opt.Log != nil {
		s.opt.Log.Warn().Int("camera", s.opt.Camera.Index).Msg(fmt.Sprintf(format, a...))
	}
}

func (r *receiver) statsStalls() uint64 { return r.stalls.Load() }

func (s *Stream) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Close stops the stream: it ends a ReadBlock in progress (which returns
// io.EOF), waits for it, stops acquisition when OpenLineStream started it
// and disables the stream interface. The device stays open.
func (s *Stream) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.readMu.Lock() // wait for ReadBlock to return
	defer s.readMu.Unlock()
	var err error
	if s.stop != nil {
		if serr := s.stop(); serr != nil {
			err = fmt.Errorf("u3v: AcquisitionStop: %w", serr)
		}
	}
	if serr := setStreamEnable(s.dev.ctrl, s.sirm, false); serr != nil && !errors.Is(serr, ErrClosed) {
		err = errors.Join(err, fmt.Errorf("u3v: disabling stream: %w", serr))
	}
	return err
}

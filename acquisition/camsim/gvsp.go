package camsim

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/webinspect/webinspect/acquisition"
	"github.com/webinspect/webinspect/acquisition/gige/wire"
)

// Stats counts what one emulated camera did.
type Stats struct {
	Frames         int64 // frames sent (leader to trailer)
	DroppedFrames  int64 // frames dropped whole (FrameDrop): their block IDs are skipped
	Lines          int64 // lines in sent and dropped frames
	Packets        int64 // stream packets sent, resends excluded
	LostPackets    int64 // stream packets not sent (PacketLoss)
	ResendRequests int64 // PACKETRESEND commands received
	ResentPackets  int64 // packets sent again on request
	Streaming      bool  // an acquisition is running on the stream side
}

type statCounters struct {
	frames, dropped, lines, packets, lost, resendReqs, resent atomic.Int64
	streaming                                                 atomic.Bool
}

func (c *statCounters) snapshot() Stats {
	return Stats{Frames: c.frames.Load(), DroppedFrames: c.dropped.Load(), Lines: c.lines.Load(),
		Packets: c.packets.Load(), LostPackets: c.lost.Load(),
		ResendRequests: c.resendReqs.Load(), ResentPackets: c.resent.Load(), Streaming: c.streaming.Load()}
}

// streamer is one camera's GVSP side: it turns the web's lines into frames
// at the line timing, sends them, and keeps the newest ones for resends.
type streamer struct {
	cam         int
	dev         *device
	conn        *net.UDPConn
	web         *web
	st          acquisition.Stream
	sw          int     // sensor width
	nominalRate float64 // lines/s of the web at its nominal speed (pacing)
	lossP       float64
	dropP       float64
	noResend    bool
	log         zerolog.Logger
	rng         *rand.Rand // streamer goroutine only

	blk     acquisition.Block
	webDone bool
	blockID uint64
	bw      *batchWriter // sender goroutine only

	mu     sync.Mutex // guards everything below: the resend ring
	ring   []*frame   // sent frames, oldest first
	free   []*frame
	raws   []*rawLines
	depth  int
	faults []Fault

	rmu      sync.Mutex   // serialises resends (GVCP goroutines)
	rbw      *batchWriter // under rmu
	byteRate atomic.Int64 // nominal stream bytes/s of the running acquisition

	stats statCounters
}

// run serves acquisitions until ctx ends.
func (s *streamer) run(ctx context.Context) error {
	for ctx.Err() == nil {
		if on, gen, cfg := s.dev.state(); on {
			if err := s.acquire(ctx, gen, cfg); err != nil {
				return err
			}
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-s.dev.wake:
			s.fireTest()
		}
	}
	return nil
}

// acquire sends frames of acquisition gen until it stops. A generator
// goroutine renders frames ahead (genDepth of them) while this one waits for
// each frame's last line and sends it.
func (s *streamer) acquire(ctx context.Context, gen uint64, cfg camConfig) error {
	s.log.Info().Int("width", cfg.width).Int("height", cfg.height).Stringer("pixel_format", cfg.pf).
		Int("payload_size", payloadSize(cfg)).Bool("encoder", cfg.lineTrigger).Bool("chunks", cfg.chunks).
		Stringer("dest", cfg.dest).Msg("camsim: acquisition started")
	s.stats.streaming.Store(true)
	defer s.stats.streaming.Store(false)
	rate := cfg.lineRate
	if cfg.lineTrigger {
		rate = s.nominalRate
	}
	s.byteRate.Store(int64(float64(payloadSize(cfg)) * rate / float64(cfg.height)))
	defer s.log.Info().Msg("camsim: acquisition stopped")
	actx, cancel := context.WithCancel(ctx)
	frames := make(chan *frame, genDepth)
	genErr := make(chan error, 1)
	go func() { genErr <- s.generate(actx, gen, cfg, frames) }()
	defer func() {
		cancel()
		for f := range frames {
			s.putFrame(f)
		}
	}()
	for sent := 0; ; {
		var f *frame
		select {
		case <-ctx.Done():
			return nil
		case <-s.dev.wake:
			s.fireTest()
			if !s.still(gen) {
				return nil
			}
			continue
		case f = <-frames:
		}
		if f == nil { // the web ended or the generator failed
			if err := <-genErr; err != nil && ctx.Err() == nil {
				return err
			}
			s.waitUntil(ctx, gen, time.Now().Add(24*time.Hour))
			return nil
		}
		if !s.waitUntil(ctx, gen, f.raw.due[f.lines-1]) {
			s.putFrame(f)
			return nil
		}
		s.blockID = wire.NextBlockID(s.blockID, false)
		f.blockID = s.blockID
		f.encode(cfg, s.sw, s.dev.timestamp(f.raw.due[0]))
		s.releaseRaw(f)
		s.send(f, cfg)
		if sent++; (cfg.mode == modeSingle && sent >= 1) || (cfg.mode == modeMulti && sent >= cfg.frameCount) {
			s.dev.finished(gen)
			return nil
		}
	}
}

// genDepth is how many frames the generator may render ahead.
const genDepth = 2

// generate renders the frames of one acquisition into out and closes it
// (after a nil frame) when the web ends; it returns when ctx ends.
func (s *streamer) generate(ctx context.Context, gen uint64, cfg camConfig, out chan<- *frame) error {
	defer close(out)
	start := time.Now()
	epoch := s.web.epochAt(start)
	skipBefore, base := start, start
	var seq, nFree int64
	for {
		if cfg.frameTrigger {
			t, ok := s.waitTrigger(ctx, gen)
			if !ok {
				return nil
			}
			skipBefore, base, nFree = t, t, 0
		}
		f := s.getFrame(cfg.height)
		f.lines, f.firstSeq = 0, seq
		for f.lines < cfg.height && !s.webDone {
			i := f.lines
			c, tw, err := s.readLine(ctx, f.raw.pix[i*s.sw:(i+1)*s.sw])
			if errors.Is(err, io.EOF) {
				s.webDone = true
				s.log.Info().Msg("camsim: end of the web")
				break
			}
			if err != nil {
				s.putFrame(f)
				if ctx.Err() != nil {
					return nil
				}
				out <- nil
				return err
			}
			var due time.Time
			if cfg.lineTrigger {
				if due = epoch.Add(tw); due.Before(skipBefore) {
					continue // the web passed before the camera was looking
				}
			} else {
				due = base.Add(time.Duration(float64(nFree) * 1e9 / cfg.lineRate))
				nFree++
			}
			f.raw.counts[i], f.raw.due[i] = c, due
			f.lines++
		}
		if f.lines == 0 {
			s.putFrame(f)
			out <- nil
			return nil
		}
		seq += int64(f.lines)
		select {
		case out <- f:
		case <-ctx.Done():
			s.putFrame(f)
			return nil
		}
	}
}

// readLine renders the web's next line into dst and returns its encoder
// count and trigger time on the web's clock.
func (s *streamer) readLine(ctx context.Context, dst []byte) (int64, time.Duration, error) {
	s.blk.Pix, s.blk.Stride = dst, len(dst)
	if err := s.st.ReadBlock(ctx, &s.blk); err != nil {
		return 0, 0, err
	}
	return s.blk.Counts[0], s.blk.Time.Sub(s.web.start), nil
}

// still reports whether acquisition gen is still running.
func (s *streamer) still(gen uint64) bool {
	on, g, _ := s.dev.state()
	return on && g == gen
}

// waitUntil sleeps until t; false when acquisition gen ended first.
func (s *streamer) waitUntil(ctx context.Context, gen uint64, t time.Time) bool {
	for {
		d := time.Until(t)
		if d <= 0 {
			return s.still(gen)
		}
		tm := time.NewTimer(d)
		select {
		case <-ctx.Done():
			tm.Stop()
			return false
		case <-tm.C:
			return s.still(gen)
		case <-s.dev.wake:
			tm.Stop()
			s.fireTest()
			if !s.still(gen) {
				return false
			}
		}
	}
}

// waitTrigger waits for a TriggerSoftware and returns when it came.
func (s *streamer) waitTrigger(ctx context.Context, gen uint64) (time.Time, bool) {
	for {
		if s.dev.takeTrigger(gen) {
			return time.Now(), true
		}
		select {
		case <-ctx.Done():
			return time.Time{}, false
		case <-s.dev.trig:
		}
	}
}

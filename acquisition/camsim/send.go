package camsim

import (
	"net/netip"
	"time"

	"github.com/webinspect/webinspect/acquisition/gige/wire"
)

// paceGroup is how many packets go out between two looks at the clock, in
// one sendmmsg(2) where the platform has it.
const paceGroup = 16

// send transmits f (or drops it whole), paced over 80 % of the nominal frame
// period so a host's socket buffer never takes a whole frame at once, and
// at least GevSCPD apart. Lost packets (PacketLoss) are skipped but stay
// resendable: the frame joins the resend ring before its first packet.
func (s *streamer) send(f *frame, cfg camConfig) {
	s.stats.lines.Add(int64(f.lines))
	if s.dropP > 0 && s.rng.Float64() < s.dropP {
		s.stats.dropped.Add(1)
		f.dropped = true
		s.pushRing(f)
		s.recordFault(f, 0)
		return
	}
	f.dropped = false
	// Resendable from its first packet on: a host asks as soon as it sees a gap.
	s.pushRing(f)
	if f.dest.Port() == 0 || !f.dest.Addr().IsValid() || f.dest.Addr().IsUnspecified() {
		return // no stream destination configured: the frame goes nowhere
	}
	rate := cfg.lineRate
	if cfg.lineTrigger {
		rate = s.nominalRate
	}
	spread := time.Duration(0.8 * float64(cfg.height) / rate * 1e9)
	spread = min(spread, 200*time.Millisecond)
	n := f.packets()
	t0 := time.Now()
	lost := 0
	for id := range n {
		if id%paceGroup == 0 && id > 0 {
			s.flush(f)
			target := t0.Add(max(spread*time.Duration(id)/time.Duration(n), cfg.packetDelay*time.Duration(id)))
			if d := time.Until(target); d > 100*time.Microsecond {
				time.Sleep(d)
			}
		}
		if s.lossP > 0 && s.rng.Float64() < s.lossP {
			s.stats.lost.Add(1)
			lost++
			continue
		}
		if s.bw.queue(f.packet(s.bw.slot(), id, wire.StatusSuccess)) {
			s.flush(f)
		}
	}
	s.flush(f)
	s.stats.frames.Add(1)
	s.recordFault(f, lost)
}

// flush sends the queued packets of f.
func (s *streamer) flush(f *frame) {
	n, err := s.bw.flush(f.dest)
	s.stats.packets.Add(int64(n))
	if err != nil {
		s.log.Debug().Err(err).Uint64("block", f.blockID).Msg("camsim: stream packets not sent")
	}
}

// resend answers a PACKETRESEND at once, on the GVCP goroutine: a host
// gives a missing packet only a few milliseconds before it asks again or
// gives the frame up.
func (s *streamer) resend(r wire.Resend) {
	s.stats.resendReqs.Add(1)
	s.rmu.Lock()
	defer s.rmu.Unlock()
	s.serveResend(r)
}

// serveResend answers one PACKETRESEND from the ring, in sendmmsg batches
// paced to at most twice the stream's nominal byte rate. A block that left
// the ring (or was dropped whole, or resends are off) gets one error packet
// so the host stops asking.
func (s *streamer) serveResend(r wire.Resend) {
	for id := int(r.First); id <= int(r.Last); {
		s.mu.Lock()
		f := s.inRing(r.BlockID)
		if f == nil || f.dropped || s.noResend {
			st := wire.StatusPacketRemovedFromMemory
			if s.noResend {
				st = wire.StatusPacketUnavailable
			}
			var dest netip.AddrPort
			if n := len(s.ring); n > 0 {
				dest = s.ring[n-1].dest
			}
			s.mu.Unlock()
			if dest.IsValid() {
				h := wire.Packet{Status: st, BlockID: r.BlockID, Format: wire.FormatPayload, PacketID: r.First}
				s.rbw.queue(wire.AppendPacket(s.rbw.slot(), h, nil))
				s.rbw.flush(dest) //nolint:errcheck // best effort, as any lost packet
			}
			return
		}
		n, dest, bytes := f.packets(), f.dest, 0
		for ; id <= int(r.Last) && id < n; id++ {
			p := f.packet(s.rbw.slot(), id, wire.StatusPacketResend)
			bytes += len(p)
			if s.rbw.queue(p) {
				id++
				break
			}
		}
		s.mu.Unlock()
		sent, _ := s.rbw.flush(dest)
		s.stats.resent.Add(int64(sent))
		if id >= n {
			return
		}
		if rate := s.byteRate.Load(); rate > 0 {
			time.Sleep(time.Duration(float64(bytes) / float64(2*rate) * 1e9))
		}
	}
}

// inRing returns the frame of block id in the resend ring, or nil; s.mu
// is held.
func (s *streamer) inRing(id uint64) *frame {
	for i := len(s.ring) - 1; i >= 0; i-- {
		if s.ring[i].blockID == id {
			return s.ring[i]
		}
	}
	return nil
}

// pushRing keeps f for resends and recycles the oldest frame beyond depth.
func (s *streamer) pushRing(f *frame) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ring = append(s.ring, f)
	if len(s.ring) > s.depth {
		s.free = append(s.free, s.ring[0])
		s.ring = append(s.ring[:0], s.ring[1:]...)
	}
}

// getFrame returns a recycled or new frame with lines for height lines.
func (s *streamer) getFrame(height int) *frame {
	s.mu.Lock()
	var f *frame
	if n := len(s.free); n > 0 {
		f, s.free = s.free[n-1], s.free[:n-1]
	}
	var r *rawLines
	if n := len(s.raws); n > 0 {
		r, s.raws = s.raws[n-1], s.raws[:n-1]
	}
	s.mu.Unlock()
	if f == nil {
		f = new(frame)
	}
	if r == nil {
		r = new(rawLines)
	}
	r.grow(height, s.sw)
	f.raw = r
	return f
}

// releaseRaw returns f's rendered lines to their pool (f is encoded).
func (s *streamer) releaseRaw(f *frame) {
	s.mu.Lock()
	s.raws = append(s.raws, f.raw)
	s.mu.Unlock()
	f.raw = nil
}

// putFrame returns an unsent frame.
func (s *streamer) putFrame(f *frame) {
	if f.raw != nil {
		s.releaseRaw(f)
	}
	s.mu.Lock()
	s.free = append(s.free, f)
	s.mu.Unlock()
}

// fireTest sends the test packet GevSCPSFireTestPacket asked for: one
// packet of exactly the stream packet size (IP and UDP headers counted).
func (s *streamer) fireTest() {
	ok, cfg := s.dev.takeFireTest()
	if !ok || cfg.dest.Port() == 0 || cfg.dest.Addr().IsUnspecified() {
		return
	}
	p := wire.AppendPacket(nil, wire.Packet{Format: wire.FormatPayload}, nil)
	p = append(p, make([]byte, max(0, cfg.packetSize-wire.IPUDPOverhead-len(p)))...)
	if _, err := s.conn.WriteToUDPAddrPort(p, cfg.dest); err != nil {
		s.log.Debug().Err(err).Msg("camsim: test packet not sent")
	}
}

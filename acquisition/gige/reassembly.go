package gige

import (
	"time"

	"github.com/webinspect/webinspect/acquisition/gige/wire"
)

// receiver is the reassembly state, owned by the receive goroutine.
//
// Frames in reassembly sit in active, oldest block first. They leave it in
// block order: a complete frame is delivered only when every older one has
// been delivered or declared lost, so the consumer always sees blocks in
// order and LostBefore counts exactly the blocks between two deliveries.
type receiver struct {
	s        *Stream
	active   []*Frame
	last     uint64 // block ID of the last frame delivered or given up; valid if have
	lastExt  bool
	have     bool
	lostRun  int64  // blocks lost since the last delivery
	skip     uint64 // block ID dropped for want of a buffer
	skipping bool
	cmd      []byte    // scratch for PACKETRESEND
	lastHK   time.Time // last housekeeping
	// packets and bytes are counted here and published to the stream's
	// atomic counters once per receive call (publish), not per packet.
	packets, bytes int64
}

// publish adds the counts gathered since the last call to the stats.
func (r *receiver) publish() {
	if r.packets != 0 {
		r.s.stats.packets.Add(r.packets)
		r.s.stats.bytes.Add(r.bytes)
		r.packets, r.bytes = 0, 0
	}
}

func (r *receiver) init(s *Stream) {
	r.s = s
	r.active = make([]*Frame, 0, s.opts.InFlight+1)
	r.cmd = make([]byte, 0, 64)
}

// packet handles one received datagram.
func (r *receiver) packet(b []byte, now time.Time) {
	st := &r.s.stats
	r.packets++
	p, data, err := wire.ParsePacket(b)
	if err != nil || p.BlockID == 0 {
		st.malformed.Add(1)
		return
	}
	f := r.frameFor(p, now)
	if f == nil {
		return
	}
	f.touched = now
	if p.Status.IsError() {
		switch p.Status {
		case wire.StatusPacketNotYetAvailable, wire.StatusPacketTemporarilyUnavail:
		default:
			// PACKET_UNAVAILABLE and the like answer a resend: the block
			// cannot complete any more.
			f.failed = true
			r.flush()
		}
		return
	}
	if p.PacketID >= f.maxPackets() {
		st.malformed.Add(1)
		f.failed = true
		r.flush()
		return
	}
	if f.wasAsked(p.PacketID) && !f.has(p.PacketID) {
		st.resent.Add(1)
	}
	if !f.mark(p.PacketID) {
		st.dups.Add(1)
		return
	}
	r.bytes += int64(len(data))
	if !r.store(f, p, data) {
		st.malformed.Add(1)
		f.failed = true
	}
	r.gap(f, p.PacketID, now)
	if f.complete() || f.failed {
		f.Arrived = now
		r.flush()
	}
}

// store puts a packet's content into f; false if it does not fit.
func (r *receiver) store(f *Frame, p wire.Packet, data []byte) bool {
	switch p.Format {
	case wire.FormatLeader:
		l, err := wire.ParseLeader(data)
		if err != nil || p.PacketID != 0 {
			return false
		}
		f.Leader, f.leader = l, true
	case wire.FormatTrailer:
		t, err := wire.ParseTrailer(data)
		if err != nil || p.PacketID == 0 {
			return false
		}
		f.Trailer, f.trailer, f.lastPID = t, true, p.PacketID
	case wire.FormatPayload:
		pps := r.s.pps
		if p.Extended {
			pps -= wire.GVSPExtendedHeaderSize - wire.GVSPHeaderSize
		}
		off := int(p.PacketID-1) * pps
		if p.PacketID == 0 || len(data) > pps || off+len(data) > len(f.buf) {
			return false
		}
		copy(f.buf[off:], data)
		f.size = max(f.size, off+len(data))
	default:
		return false // all-in, H.264, multi-zone, multi-part: not supported
	}
	return true
}

// frameFor finds or starts the frame of p's block; nil if the packet is
// for a block already finished (a late duplicate) or no buffer is free.
func (r *receiver) frameFor(p wire.Packet, now time.Time) *Frame {
	for i := len(r.active) - 1; i >= 0; i-- {
		if f := r.active[i]; f.BlockID == p.BlockID && f.Extended == p.Extended {
			return f
		}
	}
	if r.skipping && p.BlockID == r.skip {
		return nil // a block we had no buffer for
	}
	if r.have {
		d := wire.BlockDistance(r.last, p.BlockID, p.Extended)
		if d <= 0 && d > -1024 && p.Extended == r.lastExt {
			r.s.stats.dups.Add(1) // late packet of a finished block
			return nil
		}
		if d <= 0 || p.Extended != r.lastExt {
			r.have, r.lostRun = false, 0 // the device restarted its block IDs
		}
	}
	var f *Frame
	select {
	case f = <-r.s.free:
	default:
		// The consumer holds every buffer. The block becomes a gap in the
		// block IDs, counted lost when a later block is resolved.
		r.s.stats.overruns.Add(1)
		r.skip, r.skipping = p.BlockID, true
		return nil
	}
	f.reset(p.BlockID, p.Extended, now)
	r.insert(f)
	if len(r.active) > r.s.opts.InFlight {
		for len(r.active) > r.s.opts.InFlight {
			r.giveUp()
		}
		r.flush()
	}
	return f
}

// insert adds f to active, keeping block order.
func (r *receiver) insert(f *Frame) {
	i := len(r.active)
	for i > 0 && wire.BlockDistance(r.active[i-1].BlockID, f.BlockID, f.Extended) < 0 {
		i--
	}
	r.active = append(r.active, nil)
	copy(r.active[i+1:], r.active[i:])
	r.active[i] = f
}

// popFront removes and returns the oldest active frame. active keeps its
// backing array (no reslicing from the front, which would make insert
// reallocate).
func (r *receiver) popFront() *Frame {
	f := r.active[0]
	n := copy(r.active, r.active[1:])
	r.active[n] = nil
	r.active = r.active[:n]
	return f
}

// resolve moves the delivery point to block id, counting the blocks
// skipped on the way as lost.
func (r *receiver) resolve(id uint64, ext bool) {
	if r.have {
		if gap := wire.BlockDistance(r.last, id, ext) - 1; gap > 0 {
			r.lostRun += gap
			r.s.stats.lost.Add(gap)
		}
	}
	r.last, r.lastExt, r.have = id, ext, true
}

// giveUp declares the oldest active frame lost and recycles its buffer.
func (r *receiver) giveUp() {
	f := r.popFront()
	r.resolve(f.BlockID, f.Extended)
	r.lostRun++
	r.s.stats.lost.Add(1)
	if f.nGot > 0 {
		r.s.stats.incomplete.Add(1)
	}
	f.released.Store(true)
	r.s.free <- f
}

// flush delivers complete frames and gives up failed ones from the front
// of active, in block order.
func (r *receiver) flush() {
	for len(r.active) > 0 {
		f := r.active[0]
		switch {
		case f.failed:
			r.giveUp()
		case f.complete():
			r.popFront()
			r.resolve(f.BlockID, f.Extended)
			f.LostBefore, r.lostRun = r.lostRun, 0
			f.Data = f.buf[:f.size]
			r.publish()
			r.s.stats.frames.Add(1)
			r.s.full <- f // never blocks: it has room for every frame
		default:
			return
		}
	}
}

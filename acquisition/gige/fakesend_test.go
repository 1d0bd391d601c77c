package gige

import (
	"net/netip"
	"time"

	"github.com/webinspect/webinspect/acquisition/gige/wire"
)

// frameSpec describes one block the fake device sends.
type frameSpec struct {
	id       uint64
	ext      bool
	leader   wire.Leader
	payload  []byte
	drop     map[uint32]bool // packet IDs not sent (still stored for resend)
	dup      bool            // send every packet twice
	reverse  bool            // send the packets last first
	onlyKeep bool            // drop means gone: not even stored for resend
}

func after(ms uint16) <-chan time.Time { return time.After(time.Duration(ms) * time.Millisecond) }

// packets builds the block's packets, indexed by packet ID.
func (d *fakeDev) packets(f frameSpec) [][]byte {
	scps := int(d.reg(wire.RegSCPS0) & wire.SCPSSizeMask)
	pps := wire.PayloadPerPacket(scps, f.ext)
	var pk [][]byte
	pk = append(pk, wire.AppendPacket(nil, wire.Packet{BlockID: f.id, Format: wire.FormatLeader, Extended: f.ext},
		wire.AppendLeader(nil, f.leader)))
	pid := uint32(1)
	for off := 0; off < len(f.payload); off += pps {
		end := min(off+pps, len(f.payload))
		pk = append(pk, wire.AppendPacket(nil, wire.Packet{BlockID: f.id, Format: wire.FormatPayload, PacketID: pid,
			Extended: f.ext}, f.payload[off:end]))
		pid++
	}
	tr := wire.Trailer{PayloadType: f.leader.PayloadType, SizeY: f.leader.Height}
	pk = append(pk, wire.AppendPacket(nil, wire.Packet{BlockID: f.id, Format: wire.FormatTrailer, PacketID: pid,
		Extended: f.ext}, wire.AppendTrailer(nil, tr)))
	return pk
}

// sendFrame sends one block to the stream destination (SCDA:SCP).
func (d *fakeDev) sendFrame(f frameSpec) {
	pk := d.packets(f)
	d.mu.Lock()
	if f.onlyKeep {
		stored := make([][]byte, len(pk))
		for i := range pk {
			if !f.drop[uint32(i)] {
				stored[i] = pk[i]
			}
		}
		d.sent[f.id] = stored
	} else {
		d.sent[f.id] = pk
	}
	d.mu.Unlock()
	order := make([]int, len(pk))
	for i := range order {
		order[i] = i
		if f.reverse {
			order[i] = len(pk) - 1 - i
		}
	}
	for _, i := range order {
		if f.drop[uint32(i)] {
			continue
		}
		d.send(pk[i])
		if f.dup {
			d.send(pk[i])
		}
	}
}

func (d *fakeDev) dest() netip.AddrPort {
	ip := d.reg(wire.RegSCDA0)
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{byte(ip >> 24), byte(ip >> 16), byte(ip >> 8), byte(ip)}),
		uint16(d.reg(wire.RegSCP0)))
}

func (d *fakeDev) send(b []byte) {
	if b == nil {
		return
	}
	to := d.dest()
	if to.Port() == 0 {
		d.t.Errorf("fakedev: stream packet with no destination port set")
		return
	}
	_, _ = d.gvsp.WriteToUDPAddrPort(b, to)
}

// imageSpec makes a Mono8 block of w×h pixels whose bytes are id+i.
func imageSpec(id uint64, w, h int) frameSpec {
	p := make([]byte, w*h)
	for i := range p {
		p[i] = byte(int(id) + i)
	}
	return frameSpec{id: id, payload: p, leader: wire.Leader{PayloadType: wire.PayloadImage,
		PixelFormat: wire.Mono8, Width: uint32(w), Height: uint32(h)}}
}

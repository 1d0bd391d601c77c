package gige

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/webinspect/webinspect/acquisition/gige/wire"
)

// FuzzReassembly feeds arbitrary packet sequences to the reassembly state
// (no sockets): it must never panic, never hand out a frame twice and keep
// every buffer accounted for. The input is a list of (length u16, bytes).
func FuzzReassembly(f *testing.F) {
	dev := &fakeDev{t: f}
	dev.mem = make([]byte, fakeMemSize)
	dev.setReg(wire.RegSCPS0, 600)
	var seed []byte
	for _, id := range []uint64{65535, 1, 3} {
		spec := imageSpec(id, 16, 40)
		spec.ext = id == 3
		for i, p := range dev.packets(spec) {
			if i == 2 && id == 1 {
				continue // a gap
			}
			seed = binary.BigEndian.AppendUint16(seed, uint16(len(p)))
			seed = append(seed, p...)
		}
	}
	f.Add(seed)
	f.Add([]byte{0, 8, 0, 0, 0, 1, 3, 0, 0, 1})
	f.Fuzz(func(t *testing.T, in []byte) {
		o := DefaultStreamOptions(16 * 40)
		o.Buffers, o.InFlight, o.NoResend = 4, 2, true
		s := &Stream{opts: o, pps: wire.PayloadPerPacket(600, false),
			free: make(chan *Frame, o.Buffers), full: make(chan *Frame, o.Buffers)}
		s.allocate()
		s.rx.init(s)
		now := time.Unix(1000, 0)
		for len(in) >= 2 {
			n := int(binary.BigEndian.Uint16(in))
			in = in[2:]
			n = min(n, len(in))
			s.rx.packet(in[:n], now)
			in = in[n:]
			now = now.Add(time.Millisecond)
			if n%7 == 0 {
				s.rx.housekeep(now.Add(time.Second), n%2 == 0)
			}
			for len(s.full) > 0 {
				fr := <-s.full
				if fr.released.Load() != true || len(fr.Data) > len(fr.buf) {
					t.Fatal("frame delivered while not owned by the stream, or data past its buffer")
				}
				fr.released.Store(false)
				s.Release(fr)
			}
		}
		if held := len(s.free) + len(s.rx.active); held != o.Buffers {
			t.Fatalf("%d free + %d in reassembly, want %d buffers", len(s.free), len(s.rx.active), o.Buffers)
		}
	})
}

package gige

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/webinspect/webinspect/acquisition/gige/wire"
)

const testW, testH = 64, 100 // 6400-byte frames: 5 payload packets of 1464

func openTestStream(t *testing.T, d *fakeDev, mod func(*StreamOptions)) *Stream {
	t.Helper()
	c := dial(t, d, testOptions())
	o := DefaultStreamOptions(testW * testH)
	o.SocketBuffer = 4 << 20
	o.FrameTimeout = 150 * time.Millisecond
	o.ResendTimeout = 5 * time.Millisecond
	if mod != nil {
		mod(&o)
	}
	s, err := OpenStream(c, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// next returns the next frame or fails after a generous deadline.
func next(t *testing.T, s *Stream) *Frame {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	f, err := s.Next(ctx)
	if err != nil {
		t.Fatalf("Next: %v (stats %+v)", err, s.Stats())
	}
	return f
}

func checkFrame(t *testing.T, s *Stream, f *Frame, spec frameSpec, lostBefore int64) {
	t.Helper()
	if f.BlockID != spec.id || f.LostBefore != lostBefore || !bytes.Equal(f.Data, spec.payload) ||
		f.Leader != spec.leader || f.Trailer.SizeY != spec.leader.Height {
		t.Fatalf("frame %d (lost before %d, %d bytes, equal %v), want %d (lost before %d, %d bytes)",
			f.BlockID, f.LostBefore, len(f.Data), bytes.Equal(f.Data, spec.payload), spec.id, lostBefore, len(spec.payload))
	}
	s.Release(f)
}

func TestStreamConfiguresChannel(t *testing.T) {
	d := newFakeDev(t)
	s := openTestStream(t, d, nil)
	if got := d.dest(); got != s.LocalAddr() {
		t.Fatalf("device streams to %v, stream listens on %v", got, s.LocalAddr())
	}
	if s.PayloadPerPacket() != 1500-36 {
		t.Fatalf("payload per packet %d", s.PayloadPerPacket())
	}
	if st := s.Stats(); st.SocketBuffer < 200<<10 {
		t.Fatalf("socket buffer granted %d", st.SocketBuffer)
	}
	s.Close()
	if d.reg(wire.RegSCP0) != 0 {
		t.Fatal("Close left the channel pointing at us")
	}
}

func TestStreamFramesInOrder(t *testing.T) {
	d := newFakeDev(t)
	s := openTestStream(t, d, nil)
	for id := uint64(1); id <= 20; id++ {
		spec := imageSpec(id, testW, testH)
		d.sendFrame(spec)
		checkFrame(t, s, next(t, s), spec, 0)
	}
	if st := s.Stats(); st.Frames != 20 || st.LostFrames != 0 || st.Packets != 20*7 {
		t.Fatalf("stats %+v", st)
	}
}

func TestStreamResend(t *testing.T) {
	d := newFakeDev(t)
	s := openTestStream(t, d, nil)
	spec := imageSpec(7, testW, testH)
	spec.drop = map[uint32]bool{0: true, 2: true, 3: true} // leader and two payload packets
	d.sendFrame(spec)
	checkFrame(t, s, next(t, s), spec, 0)
	st := s.Stats()
	if st.ResentPackets != 3 || st.ResendRequested < 3 {
		t.Fatalf("stats %+v", st)
	}
	// A lost tail (last payload packet and trailer) is asked for once the
	// next block begins.
	tail := imageSpec(8, testW, testH)
	tail.drop = map[uint32]bool{5: true, 6: true}
	d.sendFrame(tail)
	nextSpec := imageSpec(9, testW, testH)
	d.sendFrame(nextSpec)
	checkFrame(t, s, next(t, s), tail, 0)
	checkFrame(t, s, next(t, s), nextSpec, 0)
}

func TestStreamReorderAndDuplicates(t *testing.T) {
	d := newFakeDev(t)
	s := openTestStream(t, d, nil)
	a := imageSpec(1, testW, testH)
	a.reverse = true
	d.sendFrame(a)
	checkFrame(t, s, next(t, s), a, 0)
	b := imageSpec(2, testW, testH)
	b.dup = true
	d.sendFrame(b)
	checkFrame(t, s, next(t, s), b, 0)
	eventually(t, 2*time.Second, "duplicates counted", func() bool { return s.Stats().Duplicates >= 7 })
	// Packets of a block already delivered are late duplicates.
	d.sendFrame(b)
	c := imageSpec(3, testW, testH)
	d.sendFrame(c)
	checkFrame(t, s, next(t, s), c, 0)
}

func TestStreamTimeoutWithoutResend(t *testing.T) {
	d := newFakeDev(t)
	d.ignoreRsnd = true // like Aravis's fake camera
	s := openTestStream(t, d, nil)
	d.sendFrame(imageSpec(1, testW, testH))
	checkFrame(t, s, next(t, s), imageSpec(1, testW, testH), 0)
	bad := imageSpec(2, testW, testH)
	bad.drop = map[uint32]bool{3: true}
	d.sendFrame(bad)
	// Block 3 never sent at all; block 4 arrives after 2 timed out.
	eventually(t, 3*time.Second, "incomplete frame given up", func() bool { return s.Stats().Incomplete == 1 })
	good := imageSpec(4, testW, testH)
	d.sendFrame(good)
	checkFrame(t, s, next(t, s), good, 2)
	if st := s.Stats(); st.LostFrames != 2 || st.Frames != 2 {
		t.Fatalf("stats %+v", st)
	}
}

func TestStreamPacketUnavailable(t *testing.T) {
	d := newFakeDev(t)
	d.unavail = true
	s := openTestStream(t, d, func(o *StreamOptions) { o.FrameTimeout = 10 * time.Second; o.ResendTimeout = time.Second })
	bad := imageSpec(1, testW, testH)
	bad.drop = map[uint32]bool{2: true}
	d.sendFrame(bad)
	good := imageSpec(2, testW, testH)
	d.sendFrame(good)
	// The device says the packet is gone: no need to wait 10 s.
	checkFrame(t, s, next(t, s), good, 1)
}

func TestStreamBlockIDWrap(t *testing.T) {
	d := newFakeDev(t)
	s := openTestStream(t, d, nil)
	for _, id := range []uint64{65534, 65535, 1, 2} {
		spec := imageSpec(id, testW, testH)
		d.sendFrame(spec)
		checkFrame(t, s, next(t, s), spec, 0)
	}
	spec := imageSpec(5, testW, testH) // 3 and 4 never came
	d.sendFrame(spec)
	checkFrame(t, s, next(t, s), spec, 2)
}

func TestStreamExtendedIDs(t *testing.T) {
	d := newFakeDev(t)
	s := openTestStream(t, d, nil)
	for _, id := range []uint64{1<<64 - 2, 1<<64 - 1, 1, 2} {
		spec := imageSpec(id, testW, testH)
		spec.ext = true
		if id == 1 {
			spec.drop = map[uint32]bool{4: true} // resend in extended mode too
		}
		d.sendFrame(spec)
		f := next(t, s)
		if !f.Extended {
			t.Fatal("frame not marked extended")
		}
		checkFrame(t, s, f, spec, 0)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.resends) == 0 || !d.resends[0].Extended || d.resends[0].BlockID != 1 {
		t.Fatalf("resends %+v", d.resends)
	}
}

func TestStreamOverrun(t *testing.T) {
	d := newFakeDev(t)
	s := openTestStream(t, d, func(o *StreamOptions) { o.Buffers = 3; o.InFlight = 2 })
	var held []*Frame
	for id := uint64(1); id <= 3; id++ {
		spec := imageSpec(id, testW, testH)
		d.sendFrame(spec)
		held = append(held, next(t, s))
	}
	d.sendFrame(imageSpec(4, testW, testH)) // no free buffer: lost
	eventually(t, 2*time.Second, "overrun counted", func() bool { return s.Stats().Overruns == 1 })
	for _, f := range held {
		s.Release(f)
	}
	spec := imageSpec(5, testW, testH)
	d.sendFrame(spec)
	checkFrame(t, s, next(t, s), spec, 1)
}

func TestStreamReleaseTwicePanics(t *testing.T) {
	d := newFakeDev(t)
	s := openTestStream(t, d, nil)
	d.sendFrame(imageSpec(1, testW, testH))
	f := next(t, s)
	s.Release(f)
	defer func() {
		if recover() == nil {
			t.Fatal("second Release did not panic")
		}
	}()
	s.Release(f)
}

func TestStreamHostilePackets(t *testing.T) {
	d := newFakeDev(t)
	s := openTestStream(t, d, nil)
	full := d.packets(imageSpec(9, testW, testH))
	hostile := [][]byte{
		{}, {1}, {0, 0, 0, 9, 0x03}, // too short
		full[2][:5], // truncated header
		wire.AppendPacket(nil, wire.Packet{BlockID: 0, Format: wire.FormatPayload, PacketID: 1}, nil), // block 0
		wire.AppendPacket(nil, wire.Packet{BlockID: 9, Format: wire.FormatPayload, PacketID: 0xffffff}, []byte{1}),
		wire.AppendPacket(nil, wire.Packet{BlockID: 9, Format: wire.FormatPayload, PacketID: 2}, make([]byte, 1490)),
		wire.AppendPacket(nil, wire.Packet{BlockID: 10, Format: wire.FormatLeader}, []byte{0, 0, 0, 1}), // short leader
		wire.AppendPacket(nil, wire.Packet{BlockID: 11, Format: 9, PacketID: 1}, []byte{1, 2}),          // unknown format
		append([]byte{0, 0, 0, 12, 0x80 | 3}, make([]byte, 10)...),                                      // cut extended header
	}
	for _, h := range hostile {
		d.send(append([]byte(nil), h...))
	}
	eventually(t, 2*time.Second, "hostile packets counted", func() bool { return s.Stats().Malformed >= 6 })
	spec := imageSpec(20, testW, testH)
	d.sendFrame(spec)
	f := next(t, s)
	if f.BlockID != 20 || !bytes.Equal(f.Data, spec.payload) {
		t.Fatalf("after hostile packets got block %d", f.BlockID)
	}
	s.Release(f)
}

func TestStreamCameraGone(t *testing.T) {
	d := newFakeDev(t)
	c, err := Dial(context.Background(), d.addr(), Options{Timeout: 20 * time.Millisecond, HeartbeatTimeout: 150 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := OpenStream(c, DefaultStreamOptions(testW*testH))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	d.close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := s.Next(ctx); !errors.Is(err, ErrLostControl) {
		t.Fatalf("Next after the camera went away: %v", err)
	}
}

package camsim

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/webinspect/webinspect/acquisition/gige/wire"
)

// gvcpClient is a plain UDP GVCP client for tests: one command at a time,
// retried on timeout.
type gvcpClient struct {
	t    testing.TB
	conn *net.UDPConn
	dev  netip.AddrPort
	id   uint16
	buf  []byte
}

func dialGVCP(t testing.TB, dev netip.AddrPort) *gvcpClient {
	t.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &gvcpClient{t: t, conn: conn, dev: dev, buf: make([]byte, 2048)}
}

// do sends cmd (built by build with a fresh request ID) and returns the
// matching acknowledge.
func (c *gvcpClient) do(build func(id uint16) []byte) (wire.Ack, []byte) {
	c.t.Helper()
	c.id = wire.NextReqID(c.id)
	pkt := build(c.id)
	for try := 0; try < 5; try++ {
		if _, err := c.conn.WriteToUDPAddrPort(pkt, c.dev); err != nil {
			c.t.Fatal(err)
		}
		deadline := time.Now().Add(500 * time.Millisecond)
		for {
			c.conn.SetReadDeadline(deadline)
			n, err := c.conn.Read(c.buf)
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				break
			}
			if err != nil {
				c.t.Fatal(err)
			}
			ack, payload, err := wire.ParseAck(c.buf[:n])
			if err != nil || ack.AckID != c.id {
				continue
			}
			return ack, slices.Clone(payload)
		}
	}
	c.t.Fatalf("no acknowledge from %v", c.dev)
	return wire.Ack{}, nil
}

func (c *gvcpClient) readReg(addr uint32) (uint32, wire.Status) {
	c.t.Helper()
	ack, p := c.do(func(id uint16) []byte {
		b, _ := wire.AppendReadRegCmd(nil, id, addr)
		return b
	})
	if ack.Status != wire.StatusSuccess {
		return 0, ack.Status
	}
	v, err := wire.ParseReadRegAck(p, nil)
	if err != nil || len(v) != 1 {
		c.t.Fatalf("READREG_ACK %x: %v", p, err)
	}
	return v[0], ack.Status
}

func (c *gvcpClient) writeReg(addr, v uint32) wire.Status {
	c.t.Helper()
	ack, _ := c.do(func(id uint16) []byte {
		b, _ := wire.AppendWriteRegCmd(nil, id, wire.RegWrite{Addr: addr, Value: v})
		return b
	})
	return ack.Status
}

func (c *gvcpClient) mustWrite(addr, v uint32) {
	c.t.Helper()
	if st := c.writeReg(addr, v); st != wire.StatusSuccess {
		c.t.Fatalf("write 0x%x = %d: %v", addr, v, st)
	}
}

func (c *gvcpClient) readMem(addr uint32, n int) ([]byte, wire.Status) {
	c.t.Helper()
	ack, p := c.do(func(id uint16) []byte {
		b, _ := wire.AppendReadMemCmd(nil, id, addr, n)
		return b
	})
	if ack.Status != wire.StatusSuccess {
		return nil, ack.Status
	}
	_, data, err := wire.ParseReadMemAck(p)
	if err != nil {
		c.t.Fatal(err)
	}
	return data, ack.Status
}

func (c *gvcpClient) writeMem(addr uint32, data []byte) wire.Status {
	c.t.Helper()
	ack, _ := c.do(func(id uint16) []byte {
		b, _ := wire.AppendWriteMemCmd(nil, id, addr, data)
		return b
	})
	return ack.Status
}

// rxFrame is one block as a receiver saw it.
type rxFrame struct {
	block   uint64
	leader  wire.Leader
	trailer wire.Trailer
	last    int // trailer packet ID, -1 until seen
	pkts    map[uint32][]byte
	resent  int
	errors  int
}

func (f *rxFrame) complete() bool {
	if f.last < 0 {
		return false
	}
	for id := 0; id <= f.last; id++ {
		if _, ok := f.pkts[uint32(id)]; !ok {
			return false
		}
	}
	return true
}

// payload concatenates the payload packets.
func (f *rxFrame) payload() []byte {
	var p []byte
	for id := 1; id < f.last; id++ {
		p = append(p, f.pkts[uint32(id)]...)
	}
	return p
}

// gvspRx receives one stream on 127.0.0.1.
type gvspRx struct {
	conn     *net.UDPConn
	mu       sync.Mutex
	frames   map[uint64]*rxFrame
	order    []uint64
	tests    int // test packets (block 0)
	testSize int // size of the last one, GVSP header included
	done     chan struct{}
}

func newRx(t testing.TB) *gvspRx {
	t.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	conn.SetReadBuffer(16 << 20)
	r := &gvspRx{conn: conn, frames: map[uint64]*rxFrame{}, done: make(chan struct{})}
	go r.loop()
	t.Cleanup(func() { conn.Close(); <-r.done })
	return r
}

func (r *gvspRx) port() uint16 { return uint16(r.conn.LocalAddr().(*net.UDPAddr).Port) }

func (r *gvspRx) loop() {
	defer close(r.done)
	buf := make([]byte, 65536)
	for {
		n, err := r.conn.Read(buf)
		if err != nil {
			return
		}
		p, data, err := wire.ParsePacket(buf[:n])
		if err != nil {
			continue
		}
		r.mu.Lock()
		r.add(p, data)
		r.mu.Unlock()
	}
}

func (r *gvspRx) add(p wire.Packet, data []byte) {
	if p.BlockID == 0 {
		r.tests++
		r.testSize = wire.GVSPHeaderSize + len(data)
		return
	}
	f := r.frames[p.BlockID]
	if f == nil {
		f = &rxFrame{block: p.BlockID, last: -1, pkts: map[uint32][]byte{}}
		r.frames[p.BlockID] = f
		r.order = append(r.order, p.BlockID)
	}
	if p.Status.IsError() {
		f.errors++
		return
	}
	if p.Status == wire.StatusPacketResend {
		f.resent++
	}
	f.pkts[p.PacketID] = slices.Clone(data)
	switch p.Format {
	case wire.FormatLeader:
		f.leader, _ = wire.ParseLeader(data)
	case wire.FormatTrailer:
		f.trailer, _ = wire.ParseTrailer(data)
		f.last = int(p.PacketID)
	}
}

// snapshot returns the frames seen so far in arrival order.
func (r *gvspRx) snapshot() []*rxFrame {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*rxFrame, 0, len(r.order))
	for _, b := range r.order {
		f := *r.frames[b]
		f.pkts = map[uint32][]byte{}
		for k, v := range r.frames[b].pkts {
			f.pkts[k] = v
		}
		out = append(out, &f)
	}
	return out
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// startEmulator runs an emulator on free loopback ports until the test ends.
func startEmulator(t testing.TB, o Options) *Emulator {
	t.Helper()
	if o.Listen == "" {
		o.Listen = "127.0.0.1:0"
	}
	ctx, cancel := context.WithCancel(context.Background())
	e, err := New(ctx, o)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- e.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return e
}

// stream takes control of camera 0 of e, points its stream at a new
// receiver and starts acquisition.
func stream(t testing.TB, c *gvcpClient) *gvspRx {
	t.Helper()
	rx := newRx(t)
	c.mustWrite(wire.RegCCP, wire.CCPControl)
	c.mustWrite(wire.RegSCDA0, 0x7f000001)
	c.mustWrite(wire.RegSCP0, uint32(rx.port()))
	c.mustWrite(regAcqStart, 1)
	return rx
}

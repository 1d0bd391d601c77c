package gige

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"sync"
	"testing"

	"github.com/webinspect/webinspect/acquisition/gige/wire"
)

// fakeDev is an in-process GigE Vision device on real loopback UDP
// sockets: a GVCP server over a flat register space and a GVSP sender that
// can drop, duplicate, reorder and cut packets. It fails the test on
// protocol misuse by the client (a command without the acknowledge flag, a
// write without control privilege, an unaligned access).
type fakeDev struct {
	t    testing.TB
	ctl  *net.UDPConn
	gvsp *net.UDPConn
	done chan struct{}
	wg   sync.WaitGroup

	mu         sync.Mutex
	mem        []byte // register space from address 0
	controller netip.AddrPort
	dropAcks   int    // drop the next n acknowledges
	pendingMs  uint16 // answer PENDING_ACK first, then wait this long
	ignoreRsnd bool   // ignore PACKETRESEND (like Aravis's fake camera)
	unavail    bool   // answer PACKETRESEND with PACKET_UNAVAILABLE
	resends    []wire.Resend
	sent       map[uint64][][]byte // packets of each block, by packet ID
}

const fakeMemSize = 0x20000

func newFakeDev(t testing.TB) *fakeDev {
	t.Helper()
	ctl, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	gvsp, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	d := &fakeDev{t: t, ctl: ctl, gvsp: gvsp, done: make(chan struct{}), mem: make([]byte, fakeMemSize),
		sent: map[uint64][][]byte{}}
	_ = gvsp.SetWriteBuffer(8 << 20)
	wire.DiscoveryAck{VersionMajor: 2, Manufacturer: "webinspect", Model: "fakedev", Serial: "FD0001",
		MAC: [6]byte{2, 0, 0, 0, 0, 1}, IP: netip.MustParseAddr("127.0.0.1")}.EncodeBootstrap(d.mem)
	d.setReg(wire.RegSCPS0, 1500)
	copy(d.mem[wire.RegFirstURL:], "Local:fake.xml;10000;100")
	d.wg.Add(1)
	go d.serve()
	t.Cleanup(d.close)
	return d
}

func (d *fakeDev) addr() string { return d.ctl.LocalAddr().String() }

func (d *fakeDev) close() {
	select {
	case <-d.done:
		return
	default:
	}
	close(d.done)
	d.ctl.Close()
	d.gvsp.Close()
	d.wg.Wait()
}

func (d *fakeDev) reg(a uint32) uint32 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return binary.BigEndian.Uint32(d.mem[a:])
}

func (d *fakeDev) setReg(a, v uint32) {
	d.mu.Lock()
	defer d.mu.Unlock()
	binary.BigEndian.PutUint32(d.mem[a:], v)
}

func (d *fakeDev) serve() {
	defer d.wg.Done()
	buf := make([]byte, 2048)
	for {
		n, from, err := d.ctl.ReadFromUDPAddrPort(buf)
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				d.t.Errorf("fakedev: read: %v", err)
			}
			return
		}
		h, p, err := wire.ParseCmd(buf[:n])
		if err != nil {
			d.t.Errorf("fakedev: client sent a bad command: %v", err)
			continue
		}
		ack := d.handle(h, p, from)
		if ack == nil {
			continue
		}
		d.mu.Lock()
		drop, pending := d.dropAcks > 0, d.pendingMs
		if drop {
			d.dropAcks--
		}
		d.mu.Unlock()
		if drop {
			continue
		}
		if pending > 0 {
			_, _ = d.ctl.WriteToUDPAddrPort(wire.AppendPendingAck(nil, h.ReqID, pending), from)
			select {
			case <-d.done:
				return
			case <-after(pending):
			}
		}
		_, _ = d.ctl.WriteToUDPAddrPort(ack, from)
	}
}

// handle answers one command; nil means no acknowledge.
func (d *fakeDev) handle(h wire.Cmd, p []byte, from netip.AddrPort) []byte {
	if h.Command == wire.CmdPacketResend {
		d.resend(h, p)
		return nil
	}
	if h.Flags&wire.FlagAckRequired == 0 {
		d.t.Errorf("fakedev: command 0x%04x without the acknowledge flag", h.Command)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	switch h.Command {
	case wire.CmdDiscovery:
		info, _ := wire.ParseDiscoveryAck(d.mem)
		return wire.AppendDiscoveryAck(nil, h.ReqID, info)
	case wire.CmdReadReg:
		addrs, err := wire.ParseReadRegCmd(p, nil)
		vals := make([]uint32, 0, len(addrs))
		for _, a := range addrs {
			if err != nil || a%4 != 0 || a >= fakeMemSize {
				return wire.AppendReadRegAck(nil, h.ReqID, wire.StatusInvalidAddress)
			}
			vals = append(vals, binary.BigEndian.Uint32(d.mem[a:]))
		}
		return wire.AppendReadRegAck(nil, h.ReqID, 0, vals...)
	case wire.CmdWriteReg:
		ws, err := wire.ParseWriteRegCmd(p, nil)
		for i, w := range ws {
			if err != nil {
				return wire.AppendIndexAck(nil, wire.AckWriteReg, h.ReqID, wire.StatusInvalidParameter, uint16(i))
			}
			if st := d.writable(w.Addr, 4, from); st != 0 {
				return wire.AppendIndexAck(nil, wire.AckWriteReg, h.ReqID, st, uint16(i))
			}
			binary.BigEndian.PutUint32(d.mem[w.Addr:], w.Value)
			if w.Addr == wire.RegCCP {
				d.controller = from
				if w.Value == 0 {
					d.controller = netip.AddrPort{}
				}
			}
		}
		return wire.AppendIndexAck(nil, wire.AckWriteReg, h.ReqID, 0, uint16(len(ws)))
	case wire.CmdReadMem:
		a, n, err := wire.ParseReadMemCmd(p)
		if err != nil || a%4 != 0 || n%4 != 0 || int(a)+n > fakeMemSize {
			d.t.Errorf("fakedev: bad READMEM 0x%x+%d", a, n)
			return wire.AppendReadMemAck(nil, h.ReqID, wire.StatusBadAlignment, a, nil)
		}
		return wire.AppendReadMemAck(nil, h.ReqID, 0, a, d.mem[a:int(a)+n])
	case wire.CmdWriteMem:
		a, data, err := wire.ParseWriteMemCmd(p)
		if st := d.writable(a, len(data), from); err != nil || st != 0 {
			return wire.AppendIndexAck(nil, wire.AckWriteMem, h.ReqID, st, 0)
		}
		copy(d.mem[a:], data)
		return wire.AppendIndexAck(nil, wire.AckWriteMem, h.ReqID, 0, uint16(len(data)))
	}
	return wire.AppendAck(nil, wire.Ack{Status: wire.StatusNotImplemented, Ack: h.Command + 1, AckID: h.ReqID}, nil)
}

// writable checks a write: aligned, in range, from the controller (CCP
// itself may be written by anyone while nobody holds it).
func (d *fakeDev) writable(a uint32, n int, from netip.AddrPort) wire.Status {
	if a%4 != 0 || n%4 != 0 || int(a)+n > fakeMemSize {
		d.t.Errorf("fakedev: unaligned or out-of-range write 0x%x+%d", a, n)
		return wire.StatusBadAlignment
	}
	if d.controller.IsValid() && d.controller != from {
		return wire.StatusAccessDenied
	}
	if !d.controller.IsValid() && a != wire.RegCCP {
		d.t.Errorf("fakedev: write 0x%x without control privilege", a)
		return wire.StatusAccessDenied
	}
	return 0
}

func (d *fakeDev) resend(h wire.Cmd, p []byte) {
	r, err := wire.ParseResendCmd(h.Flags, p)
	if err != nil {
		d.t.Errorf("fakedev: bad PACKETRESEND: %v", err)
		return
	}
	d.mu.Lock()
	d.resends = append(d.resends, r)
	ignore, unavail, pkts := d.ignoreRsnd, d.unavail, d.sent[r.BlockID]
	d.mu.Unlock()
	if ignore {
		return
	}
	if unavail || pkts == nil {
		d.send(wire.AppendPacket(nil, wire.Packet{Status: wire.StatusPacketUnavailable, BlockID: r.BlockID,
			Format: wire.FormatPayload, PacketID: r.First, Extended: r.Extended}, nil))
		return
	}
	for pid := r.First; pid <= r.Last && int(pid) < len(pkts); pid++ {
		d.send(pkts[pid])
	}
}

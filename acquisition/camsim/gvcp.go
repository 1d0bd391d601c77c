package camsim

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/webinspect/webinspect/acquisition/gige/wire"
)

// server is one camera's GVCP side: discovery, register and memory access,
// the control channel privilege with its heartbeat, and PACKETRESEND.
type server struct {
	dev    *device
	conn   *net.UDPConn   // the camera's own address (GVCP port)
	bcasts []*net.UDPConn // broadcast discovery listeners on the same port
	resend func(wire.Resend)
	log    zerolog.Logger

	mu         sync.Mutex
	controller netip.AddrPort // zero: nobody has control
	exclusive  bool
	lastSeen   time.Time
}

// listenGVCP opens the camera's GVCP socket (allowed to broadcast, for
// broadcast discovery acknowledges) and, when it can, listeners for
// broadcast discovery on the same port: 255.255.255.255 and, off loopback,
// the subnet's directed broadcast address. They use SO_REUSEADDR, so every
// emulated camera and other emulators on the machine can share them.
func listenGVCP(ctx context.Context, addr netip.AddrPort, log zerolog.Logger) (*net.UDPConn, []*net.UDPConn, error) {
	pc, err := sockOpts(syscall.SO_BROADCAST).ListenPacket(ctx, "udp4", addr.String())
	if err != nil {
		return nil, nil, err
	}
	conn := pc.(*net.UDPConn)
	port := strconv.Itoa(conn.LocalAddr().(*net.UDPAddr).Port)
	var bcasts []*net.UDPConn
	for _, b := range broadcastAddrs(addr.Addr()) {
		pc, err := sockOpts(syscall.SO_REUSEADDR).ListenPacket(ctx, "udp4", net.JoinHostPort(b.String(), port))
		if err != nil {
			log.Warn().Err(err).Stringer("address", b).Msg("camsim: no broadcast discovery listener")
			continue
		}
		bcasts = append(bcasts, pc.(*net.UDPConn))
	}
	return conn, bcasts, nil
}

// sockOpts is a ListenConfig that turns the given SOL_SOCKET options on.
func sockOpts(opts ...int) *net.ListenConfig {
	return &net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			for _, o := range opts {
				if err := syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, o, 1); err != nil && serr == nil {
					serr = err
				}
			}
		}); err != nil {
			return err
		}
		return serr
	}}
}

// broadcastAddrs returns where broadcast discovery for ip arrives: the
// limited broadcast address and the directed broadcast of ip's subnet.
func broadcastAddrs(ip netip.Addr) []netip.Addr {
	out := []netip.Addr{netip.AddrFrom4([4]byte{255, 255, 255, 255})}
	if ip.IsLoopback() {
		return out
	}
	ifaces, _ := net.Interfaces()
	for _, ifc := range ifaces {
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			n, ok := a.(*net.IPNet)
			if !ok || !n.Contains(ip.AsSlice()) || n.IP.To4() == nil {
				continue
			}
			b := n.IP.To4()
			for i := range b {
				b[i] |= ^n.Mask[len(n.Mask)-4+i]
			}
			if d, ok := netip.AddrFromSlice(b); ok && d != out[0] && d != ip {
				out = append(out, d)
			}
		}
	}
	return out
}

// serve answers commands until ctx ends or the sockets close.
func (s *server) serve(ctx context.Context) error {
	var wg sync.WaitGroup
	errc := make(chan error, 1+len(s.bcasts))
	for _, c := range append([]*net.UDPConn{s.conn}, s.bcasts...) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errc <- s.readLoop(ctx, c)
		}()
	}
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	var err error
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case err = <-errc:
			break loop
		case now := <-t.C:
			s.checkHeartbeat(now)
		}
	}
	s.close()
	wg.Wait()
	if ctx.Err() != nil {
		return nil
	}
	return err
}

func (s *server) readLoop(ctx context.Context, c *net.UDPConn) error {
	buf := make([]byte, 2048)
	out := make([]byte, 0, 2048)
	for {
		n, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		out = s.handle(out[:0], buf[:n], from, time.Now())
		if len(out) == 0 {
			continue
		}
		if _, err := s.conn.WriteToUDPAddrPort(out, from); err != nil {
			s.log.Debug().Err(err).Stringer("to", from).Msg("camsim: GVCP reply not sent")
		}
		if n >= 4 && buf[1]&wire.FlagAllowBroadcastAck != 0 && binary.BigEndian.Uint16(buf[2:]) == wire.CmdDiscovery {
			// The host may sit on another subnet: answer by broadcast too.
			to := netip.AddrPortFrom(netip.AddrFrom4([4]byte{255, 255, 255, 255}), from.Port())
			if _, err := s.conn.WriteToUDPAddrPort(out, to); err != nil {
				s.log.Debug().Err(err).Msg("camsim: broadcast discovery acknowledge not sent")
			}
		}
	}
}

// close closes every socket of the server.
func (s *server) close() {
	s.conn.Close()
	for _, c := range s.bcasts {
		c.Close()
	}
}

// handle decodes one command and appends the acknowledge to out (nothing
// when none is due).
func (s *server) handle(out, pkt []byte, from netip.AddrPort, now time.Time) []byte {
	h, payload, err := wire.ParseCmd(pkt)
	if err != nil {
		s.log.Debug().Err(err).Stringer("from", from).Msg("camsim: bad GVCP command")
		return out
	}
	s.checkHeartbeat(now)
	canRead, canWrite := s.access(from, now)
	var ack []byte
	switch h.Command {
	case wire.CmdDiscovery:
		return wire.AppendAck(out, wire.Ack{Ack: wire.AckDiscovery, AckID: h.ReqID}, s.dev.discoveryData())
	case wire.CmdPacketResend:
		if r, err := wire.ParseResendCmd(h.Flags, payload); err == nil && s.resend != nil {
			s.resend(r)
		}
		return out
	case wire.CmdReadReg:
		ack = s.readRegs(out, h.ReqID, payload, canRead, from)
	case wire.CmdWriteReg:
		ack = s.writeRegs(out, h.ReqID, payload, canWrite, from, now)
	case wire.CmdReadMem:
		ack = s.readMem(out, h.ReqID, payload, canRead)
	case wire.CmdWriteMem:
		ack = s.writeMem(out, h.ReqID, payload, canWrite)
	default:
		ack = wire.AppendAck(out, wire.Ack{Status: wire.StatusNotImplemented, Ack: h.Command + 1, AckID: h.ReqID}, nil)
	}
	if h.Flags&wire.FlagAckRequired == 0 {
		return out
	}
	return ack
}

func (s *server) readRegs(out []byte, id uint16, payload []byte, canRead bool, from netip.AddrPort) []byte {
	addrs, err := wire.ParseReadRegCmd(payload, nil)
	if err != nil {
		return wire.AppendReadRegAck(out, id, wire.StatusInvalidParameter)
	}
	if !canRead {
		return wire.AppendReadRegAck(out, id, wire.StatusAccessDenied)
	}
	vals := make([]uint32, 0, len(addrs))
	for _, a := range addrs {
		v, st := s.dev.readReg(a)
		if st != wire.StatusSuccess {
			return wire.AppendReadRegAck(out, id, st, vals...)
		}
		vals = append(vals, v)
	}
	return wire.AppendReadRegAck(out, id, wire.StatusSuccess, vals...)
}

func (s *server) writeRegs(out []byte, id uint16, payload []byte, canWrite bool, from netip.AddrPort, now time.Time) []byte {
	ws, err := wire.ParseWriteRegCmd(payload, nil)
	if err != nil {
		return wire.AppendIndexAck(out, wire.AckWriteReg, id, wire.StatusInvalidParameter, 0)
	}
	for i, w := range ws {
		var st wire.Status
		switch {
		case w.Addr == wire.RegCCP:
			st = s.writeCCP(from, w.Value, now)
		case !canWrite:
			st = wire.StatusAccessDenied
		default:
			st = s.dev.writeReg(w.Addr, w.Value)
		}
		if st != wire.StatusSuccess {
			return wire.AppendIndexAck(out, wire.AckWriteReg, id, st, uint16(i))
		}
	}
	return wire.AppendIndexAck(out, wire.AckWriteReg, id, wire.StatusSuccess, uint16(len(ws)))
}

func (s *server) readMem(out []byte, id uint16, payload []byte, canRead bool) []byte {
	addr, count, err := wire.ParseReadMemCmd(payload)
	switch {
	case err != nil || count > wire.MaxMemBlock:
		return wire.AppendReadMemAck(out, id, wire.StatusInvalidParameter, addr, nil)
	case !canRead:
		return wire.AppendReadMemAck(out, id, wire.StatusAccessDenied, addr, nil)
	}
	data := make([]byte, count)
	if st := s.dev.readMem(addr, data); st != wire.StatusSuccess {
		return wire.AppendReadMemAck(out, id, st, addr, nil)
	}
	return wire.AppendReadMemAck(out, id, wire.StatusSuccess, addr, data)
}

func (s *server) writeMem(out []byte, id uint16, payload []byte, canWrite bool) []byte {
	addr, data, err := wire.ParseWriteMemCmd(payload)
	switch {
	case err != nil || len(data) > wire.MaxMemBlock:
		return wire.AppendIndexAck(out, wire.AckWriteMem, id, wire.StatusInvalidParameter, 0)
	case !canWrite:
		return wire.AppendIndexAck(out, wire.AckWriteMem, id, wire.StatusAccessDenied, 0)
	case addr <= wire.RegCCP && int(addr)+len(data) > int(wire.RegCCP):
		return wire.AppendIndexAck(out, wire.AckWriteMem, id, wire.StatusAccessDenied, 0)
	}
	n, st := s.dev.writeMem(addr, data)
	return wire.AppendIndexAck(out, wire.AckWriteMem, id, st, uint16(n))
}

// access says whether from may read and write now. Any command from the
// controller counts as its heartbeat.
func (s *server) access(from netip.AddrPort, now time.Time) (read, write bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.controller.IsValid() {
		return true, true
	}
	if from == s.controller {
		s.lastSeen = now
		return true, true
	}
	return !s.exclusive, false
}

// writeCCP takes, changes or releases control.
func (s *server) writeCCP(from netip.AddrPort, v uint32, now time.Time) wire.Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.controller.IsValid() && from != s.controller {
		return wire.StatusAccessDenied
	}
	if v&^(wire.CCPControl|wire.CCPExclusive|wire.CCPSwitchoverEnable) != 0 {
		return wire.StatusInvalidParameter
	}
	if v&(wire.CCPControl|wire.CCPExclusive) == 0 {
		if s.controller.IsValid() {
			s.log.Info().Stringer("controller", s.controller).Msg("camsim: control released")
			s.controller = netip.AddrPort{}
			s.dev.stop()
		}
		s.dev.setCCP(0)
		return wire.StatusSuccess
	}
	if !s.controller.IsValid() {
		s.log.Info().Stringer("controller", from).Msg("camsim: control taken")
	}
	s.controller, s.exclusive, s.lastSeen = from, v&wire.CCPExclusive != 0, now
	s.dev.setCCP(v)
	return wire.StatusSuccess
}

// checkHeartbeat drops a controller silent for longer than the heartbeat
// timeout (unless the heartbeat is disabled): acquisition stops and the
// stream channel is reset, as on a real camera.
func (s *server) checkHeartbeat(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.controller.IsValid() {
		return
	}
	tmo, _ := s.dev.readReg(wire.RegHeartbeatTimeout)
	cfg, _ := s.dev.readReg(wire.RegGVCPConfig)
	if cfg&wire.GVCPConfigHeartbeatDisable != 0 || now.Sub(s.lastSeen) <= time.Duration(tmo)*time.Millisecond {
		return
	}
	s.log.Warn().Stringer("controller", s.controller).Uint32("timeout_ms", tmo).Msg("camsim: heartbeat timeout, control lost")
	s.controller = netip.AddrPort{}
	s.dev.setCCP(0)
	s.dev.stop()
	s.dev.streamReset()
}

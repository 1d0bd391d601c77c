package gige

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/webinspect/webinspect/acquisition/gige/wire"
)

// Options configure a control channel.
type Options struct {
	// Timeout is how long one attempt waits for an acknowledge.
	Timeout time.Duration
	// Retries is how many times a command is sent again after a timeout.
	Retries int
	// HeartbeatTimeout is written to the device (register 0x0938): it
	// drops our control privilege when it hears nothing for this long. The
	// heartbeat reads CCP every third of it.
	HeartbeatTimeout time.Duration
	// Exclusive takes exclusive access (no other application may even read).
	Exclusive bool
	// Monitor opens the channel without taking control (read-only access;
	// no heartbeat).
	Monitor bool
	// Log receives warnings (heartbeat failures, stale acknowledges).
	Log zerolog.Logger
}

// DefaultOptions returns the options used when none are given.
func DefaultOptions() Options {
	return Options{Timeout: 200 * time.Millisecond, Retries: 3, HeartbeatTimeout: 3 * time.Second, Log: zerolog.Nop()}
}

// Validate names the first bad field.
func (o Options) Validate() error {
	switch {
	case o.Timeout < time.Millisecond || o.Timeout > time.Minute:
		return fmt.Errorf("%w: Timeout %v (1ms to 1m)", ErrOptions, o.Timeout)
	case o.Retries < 0 || o.Retries > 100:
		return fmt.Errorf("%w: Retries %d (0 to 100)", ErrOptions, o.Retries)
	case !o.Monitor && (o.HeartbeatTimeout < 100*time.Millisecond || o.HeartbeatTimeout > time.Hour):
		return fmt.Errorf("%w: HeartbeatTimeout %v (100ms to 1h)", ErrOptions, o.HeartbeatTimeout)
	}
	return nil
}

// Conn is a GVCP control channel to one device. It implements genicam.Port.
// Commands are serialised: one is in flight at a time. All methods are safe
// for concurrent use.
type Conn struct {
	opts  Options
	sock  *net.UDPConn
	dev   netip.AddrPort
	reqID atomic.Uint32

	mu   sync.Mutex // one transaction at a time; guards rbuf, wbuf
	rbuf []byte
	wbuf []byte

	stop    chan struct{}
	lost    chan struct{} // closed when the heartbeat gives up
	lostErr atomic.Pointer[error]
	hbWG    sync.WaitGroup
	closeMu sync.Mutex
	closed  bool
	stats   struct{ commands, retries, pending, stale atomic.Int64 }
}

// ControlStats are a control channel's counters.
type ControlStats struct {
	Commands int64 // commands acknowledged or timed out
	Retries  int64 // commands sent again after a timeout
	Pending  int64 // PENDING_ACKs received
	Stale    int64 // acknowledges that matched no command in flight
}

// Stats returns the channel's counters.
func (c *Conn) Stats() ControlStats {
	return ControlStats{c.stats.commands.Load(), c.stats.retries.Load(), c.stats.pending.Load(), c.stats.stale.Load()}
}

// Dial opens a control channel to the device at addr (port 3956 if
// addr has none). Unless opts.Monitor, it takes control privilege, sets the
// heartbeat timeout and starts the heartbeat.
func Dial(ctx context.Context, addr string, opts Options) (*Conn, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	dev, err := resolveDevice(addr)
	if err != nil {
		return nil, err
	}
	sock, err := net.ListenUDP("udp4", &net.UDPAddr{})
	if err != nil {
		return nil, fmt.Errorf("gige: control socket: %w", err)
	}
	c := &Conn{opts: opts, sock: sock, dev: dev, rbuf: make([]byte, 1500), wbuf: make([]byte, 0, 1500),
		stop: make(chan struct{}), lost: make(chan struct{})}
	c.reqID.Store(uint32(time.Now().UnixNano()%0xfff0) + 1)
	if err := c.takeControl(ctx); err != nil {
		sock.Close()
		return nil, err
	}
	return c, nil
}

func (c *Conn) takeControl(ctx context.Context) error {
	if c.opts.Monitor {
		return nil
	}
	ccp := wire.CCPControl
	if c.opts.Exclusive {
		ccp = wire.CCPExclusive
	}
	if err := c.WriteReg(wire.RegCCP, ccp); err != nil {
		return fmt.Errorf("gige: take control of %v: %w", c.dev, err)
	}
	if err := c.WriteReg(wire.RegHeartbeatTimeout, uint32(c.opts.HeartbeatTimeout/time.Millisecond)); err != nil {
		c.opts.Log.Warn().Err(err).Msg("gige: heartbeat timeout not set; keeping the device's")
	}
	c.hbWG.Add(1)
	go c.heartbeat(ctx)
	return nil
}

func resolveDevice(addr string) (netip.AddrPort, error) {
	if ap, err := netip.ParseAddrPort(addr); err == nil {
		return ap, nil
	}
	if a, err := netip.ParseAddr(addr); err == nil {
		return netip.AddrPortFrom(a, wire.GVCPPort), nil
	}
	ua, err := net.ResolveUDPAddr("udp4", addr)
	if err != nil {
		ua, err = net.ResolveUDPAddr("udp4", net.JoinHostPort(addr, fmt.Sprint(wire.GVCPPort)))
	}
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%w: %q: %v", ErrAddress, addr, err)
	}
	return ua.AddrPort(), nil
}

// Device returns the device's control address.
func (c *Conn) Device() netip.AddrPort { return c.dev }

// LocalAddr returns the host address the device sees this channel from.
func (c *Conn) LocalAddr() netip.Addr {
	// An unconnected socket is bound to 0.0.0.0; ask the kernel which source
	// address it would use to reach the device.
	u, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(c.dev))
	if err != nil {
		return netip.IPv4Unspecified()
	}
	defer u.Close()
	return u.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap()
}

// Lost is closed when the heartbeat fails: the device no longer hears us and
// has dropped our control privilege. Err then says why.
func (c *Conn) Lost() <-chan struct{} { return c.lost }

// Err returns why the channel was lost, or nil.
func (c *Conn) Err() error {
	if p := c.lostErr.Load(); p != nil {
		return *p
	}
	return nil
}

func (c *Conn) heartbeat(ctx context.Context) {
	defer c.hbWG.Done()
	every := c.opts.HeartbeatTimeout / 3
	t := time.NewTicker(every)
	defer t.Stop()
	fails := 0
	for {
		select {
		case <-c.stop:
			return
		case <-ctx.Done():
			return
		case <-t.C:
		}
		v, err := c.ReadReg(wire.RegCCP)
		if err == nil && v&(wire.CCPControl|wire.CCPExclusive) == 0 {
			err = fmt.Errorf("%w: CCP reads 0x%x", ErrLostControl, v)
			fails = 2
		}
		if err == nil {
			fails = 0
			continue
		}
		if errors.Is(err, ErrClosed) {
			return
		}
		fails++
		c.opts.Log.Warn().Err(err).Int("fails", fails).Stringer("device", c.dev).Msg("gige: heartbeat failed")
		if fails >= 3 {
			e := fmt.Errorf("%w: heartbeat to %v: %w", ErrLostControl, c.dev, err)
			c.lostErr.Store(&e)
			close(c.lost)
			return
		}
	}
}

// Close releases control privilege (when it was taken) and the socket.
func (c *Conn) Close() error {
	c.closeMu.Lock()
	if c.closed {
		c.closeMu.Unlock()
		return nil
	}
	c.closed = true
	c.closeMu.Unlock()
	close(c.stop)
	c.hbWG.Wait()
	var err error
	if !c.opts.Monitor && c.Err() == nil {
		err = c.WriteReg(wire.RegCCP, 0)
	}
	c.mu.Lock()
	cerr := c.sock.Close()
	c.mu.Unlock()
	if err == nil {
		err = cerr
	}
	return err
}

// nextID returns a fresh request ID (never 0).
func (c *Conn) nextID() uint16 {
	for {
		old := c.reqID.Load()
		n := uint32(wire.NextReqID(uint16(old)))
		if c.reqID.CompareAndSwap(old, n) {
			return uint16(n)
		}
	}
}

// transact sends the command build makes (with the request ID it is given)
// and waits for the acknowledge ack, retrying after timeouts. It calls
// handle with the acknowledge payload, under the transaction lock.
func (c *Conn) transact(ack uint16, build func(dst []byte, id uint16) ([]byte, error), handle func([]byte) error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	id := c.nextID()
	cmd, err := build(c.wbuf[:0], id)
	if err != nil {
		return err
	}
	c.wbuf = cmd[:0]
	c.stats.commands.Add(1)
	for attempt := 0; attempt <= c.opts.Retries; attempt++ {
		if attempt > 0 {
			c.stats.retries.Add(1)
		}
		if _, err := c.sock.WriteToUDPAddrPort(cmd, c.dev); err != nil {
			if errors.Is(err, net.ErrClosed) {
				return ErrClosed
			}
			return fmt.Errorf("gige: send to %v: %w", c.dev, err)
		}
		done, err := c.await(ack, id, handle)
		if done {
			return err
		}
	}
	return fmt.Errorf("%w: command 0x%04x to %v, %d attempts of %v", ErrTimeout,
		binary.BigEndian.Uint16(cmd[2:]), c.dev, c.opts.Retries+1, c.opts.Timeout)
}

// await reads acknowledges until the one for id arrives (done) or the
// attempt times out (not done). A PENDING_ACK extends the wait.
func (c *Conn) await(ack, id uint16, handle func([]byte) error) (done bool, err error) {
	deadline := time.Now().Add(c.opts.Timeout)
	for {
		_ = c.sock.SetReadDeadline(deadline)
		n, from, err := c.sock.ReadFromUDPAddrPort(c.rbuf)
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return false, nil
			}
			if errors.Is(err, net.ErrClosed) {
				return true, ErrClosed
			}
			return true, fmt.Errorf("gige: receive from %v: %w", c.dev, err)
		}
		if from.Addr().Unmap() != c.dev.Addr() {
			continue
		}
		h, p, perr := wire.ParseAck(c.rbuf[:n])
		if perr != nil || h.AckID != id {
			c.stats.stale.Add(1)
			continue
		}
		if h.Ack == wire.AckPending {
			ms, _ := wire.ParsePendingAck(p)
			c.stats.pending.Add(1)
			deadline = time.Now().Add(time.Duration(ms)*time.Millisecond + c.opts.Timeout)
			continue
		}
		if h.Ack != ack {
			return true, fmt.Errorf("%w: acknowledge 0x%04x to a command expecting 0x%04x", ErrProtocol, h.Ack, ack)
		}
		if h.Status.IsError() {
			return true, &StatusError{Status: h.Status, Ack: ack}
		}
		return true, handle(p)
	}
}

// StatusError is a device's error acknowledge.
type StatusError struct {
	Status wire.Status
	Ack    uint16
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("gige: device answered %v to command 0x%04x", e.Status, e.Ack-1)
}

// Unwrap lets errors.Is match ErrDevice.
func (e *StatusError) Unwrap() error { return ErrDevice }

// send writes a command that needs no acknowledge (PACKETRESEND). It is
// safe alongside a transaction: UDP writes are atomic per datagram.
func (c *Conn) send(b []byte) {
	_, _ = c.sock.WriteToUDPAddrPort(b, c.dev)
}

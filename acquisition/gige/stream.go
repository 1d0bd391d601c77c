package gige

import (
	"context"
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

// StreamOptions configure a GVSP receiver.
type StreamOptions struct {
	// Channel is the device's stream channel index.
	Channel int
	// PacketSize is written to the channel's SCPS register (bytes per IP
	// packet, headers included); 0 keeps the device's setting.
	PacketSize int
	// MaxPayload is the largest payload of one block in bytes (the device's
	// PayloadSize feature); every frame buffer has this size.
	MaxPayload int
	// Buffers is how many frames are preallocated; they cycle between the
	// receiver and the consumer.
	Buffers int
	// InFlight is how many frames may be reassembled at once; when a newer
	// block would exceed it, the oldest incomplete frame is lost.
	InFlight int
	// SocketBuffer is the SO_RCVBUF asked of the kernel (SO_RCVBUFFORCE
	// when permitted); Stats.SocketBuffer is what it granted.
	SocketBuffer int
	// FrameTimeout: a frame still incomplete this long after its first
	// packet is lost.
	FrameTimeout time.Duration
	// ResendTimeout: missing packets are requested again after this long.
	ResendTimeout time.Duration
	// ResendRetries bounds how many times one gap is requested.
	ResendRetries int
	// ResendRatio bounds the packets requested for one frame, as a share of
	// its packets (at least 8 packets).
	ResendRatio float64
	// NoResend disables PACKETRESEND.
	NoResend bool
	// Host is the local address to receive on; default: the address the
	// control channel reaches the device from.
	Host netip.Addr
	// Log receives warnings.
	Log zerolog.Logger
}

// DefaultStreamOptions returns defaults for a frame of maxPayload bytes.
func DefaultStreamOptions(maxPayload int) StreamOptions {
	return StreamOptions{
		MaxPayload: maxPayload, Buffers: 32, InFlight: 8, SocketBuffer: 64 << 20,
		FrameTimeout: 200 * time.Millisecond, ResendTimeout: 10 * time.Millisecond,
		ResendRetries: 3, ResendRatio: 0.25, Log: zerolog.Nop(),
	}
}

// Validate names the first bad field.
func (o StreamOptions) Validate() error {
	bad := func(f string, v any, r string) error { return fmt.Errorf("%w: %s %v (%s)", ErrOptions, f, v, r) }
	switch {
	case o.Channel < 0 || o.Channel > 511:
		return bad("Channel", o.Channel, "0 to 511")
	case o.PacketSize != 0 && (o.PacketSize < 576 || o.PacketSize > 65500):
		return bad("PacketSize", o.PacketSize, "0 or 576 to 65500")
	case o.MaxPayload < 1 || o.MaxPayload > 1<<30:
		return bad("MaxPayload", o.MaxPayload, "1 to 1 GiB")
	case o.Buffers < 2 || o.Buffers > 4096:
		return bad("Buffers", o.Buffers, "2 to 4096")
	case o.InFlight < 1 || o.InFlight >= o.Buffers:
		return bad("InFlight", o.InFlight, "1 to Buffers-1")
	case o.SocketBuffer < 0:
		return bad("SocketBuffer", o.SocketBuffer, ">= 0")
	case o.FrameTimeout < time.Millisecond:
		return bad("FrameTimeout", o.FrameTimeout, ">= 1ms")
	case !o.NoResend && (o.ResendTimeout < 100*time.Microsecond || o.ResendTimeout >= o.FrameTimeout):
		return bad("ResendTimeout", o.ResendTimeout, "100µs to FrameTimeout")
	case o.ResendRetries < 0 || o.ResendRetries > 100:
		return bad("ResendRetries", o.ResendRetries, "0 to 100")
	case o.ResendRatio < 0 || o.ResendRatio > 1:
		return bad("ResendRatio", o.ResendRatio, "0 to 1")
	}
	return nil
}

// StreamStats are a stream's counters since OpenStream, safe to read from
// any goroutine.
type StreamStats struct {
	Frames          int64 // frames delivered complete
	LostFrames      int64 // blocks lost: never seen, incomplete, or no free buffer
	Incomplete      int64 // of LostFrames: seen but incomplete at their timeout
	Overruns        int64 // of LostFrames: no free buffer (the consumer is behind)
	Packets         int64 // GVSP packets received
	Bytes           int64 // GVSP payload bytes received
	ResendRequested int64 // packets asked for by PACKETRESEND
	ResentPackets   int64 // asked-for packets that arrived
	Duplicates      int64 // packets received twice, or for a finished block
	Malformed       int64 // packets that do not decode or do not fit
	SocketBuffer    int   // receive buffer the kernel granted, bytes
}

// Stream receives one GVSP stream channel on its own goroutine and
// reassembles blocks into preallocated frames.
type Stream struct {
	opts   StreamOptions
	conn   *Conn
	sock   *net.UDPConn
	pps    int // payload bytes per payload packet
	frames []*Frame
	free   chan *Frame
	full   chan *Frame
	done   chan struct{}
	wg     sync.WaitGroup
	err    atomic.Pointer[error]
	once   sync.Once
	rx     receiver // owned by the receive goroutine
	stats  struct {
		frames, lost, incomplete, overruns, packets, bytes atomic.Int64
		asked, resent, dups, malformed                     atomic.Int64
		sockbuf                                            atomic.Int64
	}
}

// OpenStream binds a UDP socket, points the device's stream channel at it
// (SCDA, SCP, SCPS) and starts receiving. Acquisition itself is started by
// the caller (the AcquisitionStart feature).
func OpenStream(c *Conn, opts StreamOptions) (*Stream, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	host := opts.Host
	if !host.IsValid() {
		host = c.LocalAddr()
	}
	sock, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(host, 0)))
	if err != nil {
		return nil, fmt.Errorf("gige: stream socket on %v: %w", host, err)
	}
	s := &Stream{opts: opts, conn: c, sock: sock, done: make(chan struct{}),
		free: make(chan *Frame, opts.Buffers), full: make(chan *Frame, opts.Buffers)}
	granted, err := setRecvBuffer(sock, opts.SocketBuffer)
	if err != nil {
		opts.Log.Warn().Err(err).Msg("gige: socket buffer not set")
	}
	s.stats.sockbuf.Store(int64(granted))
	if granted < opts.SocketBuffer {
		opts.Log.Warn().Int("asked", opts.SocketBuffer).Int("granted", granted).
			Msg("gige: kernel granted a smaller socket buffer (raise net.core.rmem_max or run with CAP_NET_ADMIN)")
	}
	if err := s.configure(host); err != nil {
		sock.Close()
		return nil, err
	}
	s.allocate()
	s.rx.init(s)
	s.wg.Add(1)
	go s.receive()
	return s, nil
}

// configure writes the channel's destination and packet size and reads
// the packet size back to know each payload packet's size.
func (s *Stream) configure(host netip.Addr) error {
	base := uint32(s.opts.Channel) * wire.StreamChannelStride
	if s.opts.PacketSize != 0 {
		if err := s.conn.WriteReg(wire.RegSCPS0+base, uint32(s.opts.PacketSize)); err != nil {
			return fmt.Errorf("gige: set packet size: %w", err)
		}
	}
	scps, err := s.conn.ReadReg(wire.RegSCPS0 + base)
	if err != nil {
		return fmt.Errorf("gige: read packet size: %w", err)
	}
	size := int(scps & wire.SCPSSizeMask)
	if size <= wire.IPUDPOverhead+wire.GVSPExtendedHeaderSize {
		return fmt.Errorf("%w: device packet size %d", ErrProtocol, size)
	}
	s.pps = wire.PayloadPerPacket(size, false)
	ip := host.As4()
	if err := s.conn.WriteReg(wire.RegSCDA0+base, uint32(ip[0])<<24|uint32(ip[1])<<16|uint32(ip[2])<<8|uint32(ip[3])); err != nil {
		return fmt.Errorf("gige: set stream destination: %w", err)
	}
	port := s.sock.LocalAddr().(*net.UDPAddr).Port
	if err := s.conn.WriteReg(wire.RegSCP0+base, uint32(port)); err != nil {
		return fmt.Errorf("gige: set stream port: %w", err)
	}
	return nil
}

func (s *Stream) allocate() {
	// Extended headers carry 12 bytes less per packet: size the bitmaps
	// for the smaller payload so either mode fits.
	pps := s.pps - (wire.GVSPExtendedHeaderSize - wire.GVSPHeaderSize)
	words := ((s.opts.MaxPayload+pps-1)/pps + 2 + 63) / 64
	s.frames = make([]*Frame, s.opts.Buffers)
	for i := range s.frames {
		f := &Frame{buf: make([]byte, s.opts.MaxPayload), got: make([]uint64, words), asked: make([]uint64, words)}
		f.released.Store(true)
		s.frames[i] = f
		s.free <- f
	}
}

// PayloadPerPacket returns the payload bytes of each standard-ID payload
// packet, from the device's packet size.
func (s *Stream) PayloadPerPacket() int { return s.pps }

// LocalAddr returns the address the stream is received on.
func (s *Stream) LocalAddr() netip.AddrPort { return s.sock.LocalAddr().(*net.UDPAddr).AddrPort() }

// Next waits for the next complete frame. The frame belongs to the caller
// until Release. After Close (or a receive error) it returns ErrClosed (or
// that error) once the delivered frames are drained; when the control
// channel's heartbeat fails (the camera is gone) it returns that error,
// wrapping ErrLostControl.
func (s *Stream) Next(ctx context.Context) (*Frame, error) {
	select {
	case f := <-s.full:
		f.released.Store(false)
		return f, nil
	default:
	}
	select {
	case f := <-s.full:
		f.released.Store(false)
		return f, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-s.conn.Lost():
		return nil, s.conn.Err()
	case <-s.done:
		select {
		case f := <-s.full:
			f.released.Store(false)
			return f, nil
		default:
		}
		if p := s.err.Load(); p != nil {
			return nil, *p
		}
		return nil, ErrClosed
	}
}

// Release gives f back to the stream. It panics if f was already released:
// a frame released twice would be filled while its first owner reads it.
func (s *Stream) Release(f *Frame) {
	if f.released.Swap(true) {
		panic("gige: Frame released twice")
	}
	s.free <- f
}

// Stats returns the stream's counters.
func (s *Stream) Stats() StreamStats {
	st := &s.stats
	return StreamStats{
		Frames: st.frames.Load(), LostFrames: st.lost.Load(), Incomplete: st.incomplete.Load(),
		Overruns: st.overruns.Load(), Packets: st.packets.Load(), Bytes: st.bytes.Load(),
		ResendRequested: st.asked.Load(), ResentPackets: st.resent.Load(), Duplicates: st.dups.Load(),
		Malformed: st.malformed.Load(), SocketBuffer: int(st.sockbuf.Load()),
	}
}

// Close stops the receiver, points the channel nowhere (SCP = 0) and
// closes the socket. Frames already delivered stay valid until released.
func (s *Stream) Close() error {
	var err error
	s.once.Do(func() {
		close(s.done)
		s.sock.Close()
		s.wg.Wait()
		base := uint32(s.opts.Channel) * wire.StreamChannelStride
		if e := s.conn.WriteReg(wire.RegSCP0+base, 0); e != nil && !errors.Is(e, ErrClosed) {
			err = e
		}
	})
	return err
}

// recvBatch is how many datagrams one receive system call may return
// (recvmmsg on Linux; one elsewhere).
const recvBatch = 32

// receive is the receive goroutine: read, reassemble, and every few
// milliseconds expire frames and ask for missing packets.
func (s *Stream) receive() {
	defer s.wg.Done()
	br, err := newBatchReader(s.sock, recvBatch, 65536)
	if err != nil {
		s.fail(fmt.Errorf("gige: stream socket: %w", err))
		return
	}
	tick := 2 * time.Millisecond
	if s.opts.ResendTimeout/2 < tick {
		tick = max(s.opts.ResendTimeout/2, 100*time.Microsecond)
	}
	var deadline time.Time
	drained := false
	for {
		now := time.Now()
		if drained || now.After(deadline.Add(-tick/2)) {
			deadline = now.Add(tick)
			_ = s.sock.SetReadDeadline(deadline)
			s.rx.housekeep(now, drained)
		}
		n, err := br.read()
		drained = false
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				drained = true // the socket is empty
				continue
			}
			select {
			case <-s.done:
			default:
				s.fail(fmt.Errorf("gige: stream receive: %w", err))
			}
			return
		}
		now = time.Now()
		for i := range n {
			s.rx.packet(br.packet(i), now)
		}
		s.rx.publish()
	}
}

// fail ends the stream from the receive goroutine: Next returns err once
// the delivered frames are drained.
func (s *Stream) fail(err error) {
	s.err.Store(&err)
	s.once.Do(func() { close(s.done); s.sock.Close() })
}

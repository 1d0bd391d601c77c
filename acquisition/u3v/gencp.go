package u3v

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"
)

// GenCP over the U3V control endpoints (see the package doc for the bytes).
const (
	gencpMagic     = 0x43563355 // "U3VC" little-endian
	prefixLen      = 12         // magic, flags/status, command, length, request ID
	flagRequestAck = 1 << 14
	flagResend     = 1 << 15

	cmdReadMem     = 0x0800
	ackReadMem     = 0x0801
	cmdWriteMem    = 0x0802
	ackWriteMem    = 0x0803
	ackPending     = 0x0805
	readMemSCDLen  = 12 // address u64, reserved u16, length u16
	writeMemHdrLen = 8  // address u64, then the data
	writeAckSCDLen = 4  // reserved u16, length written u16
	pendingSCDLen  = 4  // reserved u16, temporary timeout ms u16

	// Before the SBRM is read the host may only assume small transfers;
	// 1024 bytes (one SuperSpeed packet) holds every ABRM/SBRM read.
	bootstrapMaxTransfer = 1024
	// maxPendingWait bounds the total time pending acks may extend one
	// command, however often the device asks for more.
	maxPendingWait = 10 * time.Second
)

// ack is a decoded acknowledge prefix and its command-specific data.
type ack struct {
	Status  Status
	Command uint16
	ID      uint16
	SCD     []byte // aliases the input
}

// appendCommand appends a GenCP command (prefix + scd) to dst.
func appendCommand(dst []byte, flags, command, id uint16, scd ...[]byte) []byte {
	n := 0
	for _, s := range scd {
		n += len(s)
	}
	dst = binary.LittleEndian.AppendUint32(dst, gencpMagic)
	dst = binary.LittleEndian.AppendUint16(dst, flags)
	dst = binary.LittleEndian.AppendUint16(dst, command)
	dst = binary.LittleEndian.AppendUint16(dst, uint16(n))
	dst = binary.LittleEndian.AppendUint16(dst, id)
	for _, s := range scd {
		dst = append(dst, s...)
	}
	return dst
}

// decodeAck checks and splits one acknowledge transfer.
func decodeAck(b []byte) (ack, error) {
	if len(b) < prefixLen {
		return ack{}, fmt.Errorf("%w: acknowledge of %d bytes, prefix needs %d", ErrMalformed, len(b), prefixLen)
	}
	if m := binary.LittleEndian.Uint32(b); m != gencpMagic {
		return ack{}, fmt.Errorf("%w: acknowledge magic 0x%08x, want 0x%08x (U3VC)", ErrMalformed, m, gencpMagic)
	}
	n := int(binary.LittleEndian.Uint16(b[8:]))
	if n > len(b)-prefixLen {
		return ack{}, fmt.Errorf("%w: acknowledge says %d bytes of data, transfer holds %d", ErrMalformed, n, len(b)-prefixLen)
	}
	return ack{
		Status:  Status(binary.LittleEndian.Uint16(b[4:])),
		Command: binary.LittleEndian.Uint16(b[6:]),
		ID:      binary.LittleEndian.Uint16(b[10:]),
		SCD:     b[prefixLen : prefixLen+n],
	}, nil
}

// ControlOptions tunes the GenCP control channel.
type ControlOptions struct {
	// Timeout is how long to wait for an acknowledge before retrying; the
	// device's ABRM maximum response time raises it when larger.
	Timeout time.Duration
	// Retries is how many times a command is sent again after a timeout or
	// a garbled acknowledge (0 = send once).
	Retries int
}

// DefaultControlOptions returns the defaults: 200 ms, 3 retries.
func DefaultControlOptions() ControlOptions {
	return ControlOptions{Timeout: 200 * time.Millisecond, Retries: 3}
}

// Validate names the bad field.
func (o ControlOptions) Validate() error {
	if o.Timeout < time.Millisecond || o.Timeout > time.Minute {
		return fmt.Errorf("u3v: ControlOptions.Timeout %v outside [1ms, 1m]", o.Timeout)
	}
	if o.Retries < 0 || o.Retries > 100 {
		return fmt.Errorf("u3v: ControlOptions.Retries %d outside [0, 100]", o.Retries)
	}
	return nil
}

// control is the GenCP client on a device's control endpoints. It
// implements genicam.Port. Safe for concurrent use (commands are
// serialised: GenCP allows one outstanding command).
type control struct {
	dev     usbDevice
	out, in uint8
	opt     ControlOptions

	mu     sync.Mutex
	id     uint16
	maxCmd int // max command transfer length (SBRM), bytes incl. prefix
	maxAck int // max acknowledge transfer length (SBRM)
	cmd    []byte
	ackBuf []byte
	// counters for stats and tests
	retries, stale int
}

func newControl(dev usbDevice, info deviceInfo, opt ControlOptions) *control {
	return &control{
		dev: dev, out: info.ControlOut.Addr, in: info.ControlIn.Addr, opt: opt,
		maxCmd: bootstrapMaxTransfer, maxAck: bootstrapMaxTransfer,
		ackBuf: make([]byte, bootstrapMaxTransfer),
	}
}

// setLimits applies the SBRM transfer limits (bounded to sane values).
func (c *control) setLimits(maxCmd, maxAck int) error {
	const lo, hi = prefixLen + readMemSCDLen + 4, 1 << 20
	if maxCmd < lo || maxCmd > hi || maxAck < lo || maxAck > hi {
		return fmt.Errorf("%w: SBRM transfer limits cmd=%d ack=%d outside [%d, %d]", ErrMalformed, maxCmd, maxAck, lo, hi)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.maxCmd, c.maxAck = maxCmd, maxAck
	c.ackBuf = make([]byte, maxAck)
	return nil
}

// setTimeout raises the acknowledge timeout to the device's response time.
func (c *control) setTimeout(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if d > c.opt.Timeout && d <= time.Minute {
		c.opt.Timeout = d
	}
}

// ReadMem reads len(p) bytes at addr, in as many commands as the
// acknowledge limit needs.
func (c *control) ReadMem(addr uint64, p []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	chunk := min(c.maxAck-prefixLen, 0xFFFF)
	for off := 0; off < len(p); off += chunk {
		q := p[off:min(off+chunk, len(p))]
		if err := c.readOnce(addr+uint64(off), q); err != nil {
			return err
		}
	}
	return nil
}

// WriteMem writes p at addr, in as many commands as the command limit needs.
func (c *control) WriteMem(addr uint64, p []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	chunk := min(c.maxCmd-prefixLen-writeMemHdrLen, 0xFFFF-writeMemHdrLen)
	for off := 0; off < len(p); off += chunk {
		q := p[off:min(off+chunk, len(p))]
		if err := c.writeOnce(addr+uint64(off), q); err != nil {
			return err
		}
	}
	return nil
}

func (c *control) readOnce(addr uint64, p []byte) error {
	var scd [readMemSCDLen]byte
	binary.LittleEndian.PutUint64(scd[:], addr)
	binary.LittleEndian.PutUint16(scd[10:], uint16(len(p)))
	a, err := c.transact(cmdReadMem, ackReadMem, scd[:], nil)
	if err != nil {
		return c.wrap("read", addr, len(p), err)
	}
	if len(a.SCD) != len(p) {
		return fmt.Errorf("%w: read of %d bytes at 0x%x answered with %d", ErrMalformed, len(p), addr, len(a.SCD))
	}
	copy(p, a.SCD)
	return nil
}

func (c *control) writeOnce(addr uint64, p []byte) error {
	var hdr [writeMemHdrLen]byte
	binary.LittleEndian.PutUint64(hdr[:], addr)
	a, err := c.transact(cmdWriteMem, ackWriteMem, hdr[:], p)
	if err != nil {
		return c.wrap("write", addr, len(p), err)
	}
	// The write acknowledge may carry the count written; a device that
	// wrote less than asked is refusing part of the command.
	if len(a.SCD) >= writeAckSCDLen {
		if n := int(binary.LittleEndian.Uint16(a.SCD[2:])); n != len(p) {
			return fmt.Errorf("%w: write of %d bytes at 0x%x: device wrote %d", ErrMalformed, len(p), addr, n)
		}
	}
	return nil
}

func (c *control) wrap(op string, addr uint64, n int, err error) error {
	var st statusErr
	if errors.As(err, &st) {
		return &StatusError{Op: op, Addr: addr, Len: n, Status: Status(st)}
	}
	return fmt.Errorf("u3v: %s of %d bytes at 0x%x: %w", op, n, addr, err)
}

// statusErr carries a refused status out of transact.
type statusErr Status

func (s statusErr) Error() string { return Status(s).String() }

// transact sends one command and waits for its acknowledge, retrying on
// timeouts and garbage. Each attempt uses a fresh request ID so that a late
// acknowledge of an earlier attempt is recognised and dropped. c.mu held.
func (c *control) transact(command, want uint16, scd, data []byte) (ack, error) {
	if c.dev == nil {
		return ack{}, ErrClosed
	}
	var last error
	for try := 0; try <= c.opt.Retries; try++ {
		if try > 0 {
			c.retries++
		}
		c.id++
		if c.id == 0 { // 0 is not a valid request ID
			c.id = 1
		}
		flags := uint16(flagRequestAck)
		if try > 0 {
			flags |= flagResend
		}
		c.cmd = appendCommand(c.cmd[:0], flags, command, c.id, scd, data)
		if len(c.cmd) > c.maxCmd {
			return ack{}, fmt.Errorf("%w: command of %d bytes exceeds the device limit %d", ErrUnsupported, len(c.cmd), c.maxCmd)
		}
		a, err := c.attempt(want)
		if err == nil && a.Status == StatusBusy && try < c.opt.Retries {
			last = statusErr(a.Status) // the device asks to be asked again
			continue
		}
		if err == nil {
			if a.Status != StatusSuccess {
				return a, statusErr(a.Status)
			}
			return a, nil
		}
		if errors.Is(err, ErrClosed) {
			return ack{}, err
		}
		last = err
	}
	return ack{}, fmt.Errorf("%w after %d tries: %w", ErrTimeout, c.opt.Retries+1, last)
}

// attempt sends c.cmd once and reads acknowledges until the one for c.id.
func (c *control) attempt(want uint16) (ack, error) {
	start := time.Now()
	deadline := start.Add(c.opt.Timeout)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	_, err := c.dev.bulkOut(ctx, c.out, c.cmd)
	cancel()
	if err != nil {
		return ack{}, fmt.Errorf("sending command: %w", err)
	}
	for {
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		n, err := c.dev.bulkIn(ctx, c.in, c.ackBuf)
		cancel()
		if err != nil {
			if errors.Is(err, errStall) {
				_ = c.dev.clearHalt(c.in)
			}
			return ack{}, fmt.Errorf("reading acknowledge: %w", err)
		}
		a, err := decodeAck(c.ackBuf[:n])
		if err != nil {
			return ack{}, err
		}
		if a.ID != c.id {
			c.stale++ // a late answer to an earlier attempt
			continue
		}
		if a.Command == ackPending {
			if len(a.SCD) < pendingSCDLen {
				return ack{}, fmt.Errorf("%w: pending acknowledge with %d bytes of data", ErrMalformed, len(a.SCD))
			}
			wait := time.Duration(binary.LittleEndian.Uint16(a.SCD[2:])) * time.Millisecond
			if time.Since(start)+wait > maxPendingWait {
				return ack{}, fmt.Errorf("device kept the command pending for over %v", maxPendingWait)
			}
			deadline = time.Now().Add(wait + c.opt.Timeout)
			continue
		}
		if a.Command != want {
			return ack{}, fmt.Errorf("%w: acknowledge command 0x%04x, want 0x%04x", ErrMalformed, a.Command, want)
		}
		return a, nil
	}
}

// close forgets the device; later commands fail with ErrClosed.
func (c *control) close() {
	c.mu.Lock()
	c.dev = nil
	c.mu.Unlock()
}

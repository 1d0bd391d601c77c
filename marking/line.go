package marking

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// LineOutput sends marks over a plain TCP connection, one text line per
// mark, and reads "ACK <defect>" lines back (PROTOCOL.md). The device fires
// at the count in the line, so the output is count-triggered. After an
// error, or when the device closes the connection, the next Send redials.
type LineOutput struct {
	addr    string
	timeout time.Duration
	log     zerolog.Logger

	mu     sync.Mutex
	conn   net.Conn
	closed bool
	ackFn  func(int64)
	buf    []byte
	wg     sync.WaitGroup // readers
}

// NewLineOutput makes a line-protocol output for o (Kind "tcp"). It does not
// connect until the first Send.
func NewLineOutput(o OutputOptions, lg zerolog.Logger) *LineOutput {
	return &LineOutput{
		addr:    o.Address,
		timeout: time.Duration(o.TimeoutMS) * time.Millisecond,
		log:     lg.With().Str("component", "marking-tcp").Logger(),
	}
}

// CountTriggered reports true: the device fires at the count in the line.
func (o *LineOutput) CountTriggered() bool { return true }

// SetAck sets the function called with the defect ID of every ACK line.
func (o *LineOutput) SetAck(fn func(int64)) {
	o.mu.Lock()
	o.ackFn = fn
	o.mu.Unlock()
}

// Send writes one MARK line.
func (o *LineOutput) Send(ctx context.Context, m Mark) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return ErrClosed
	}
	if o.conn == nil {
		d := net.Dialer{Timeout: o.timeout}
		c, err := d.DialContext(ctx, "tcp", o.addr)
		if err != nil {
			return fmt.Errorf("%w: tcp %s: %w", ErrDisconnected, o.addr, err)
		}
		o.conn = c
		o.wg.Add(1)
		go o.read(c)
	}
	dl := time.Now().Add(o.timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(dl) {
		dl = d
	}
	_ = o.conn.SetWriteDeadline(dl)
	o.buf = AppendMarkLine(o.buf[:0], m)
	if _, err := o.conn.Write(o.buf); err != nil {
		o.conn.Close()
		o.conn = nil
		return fmt.Errorf("%w: tcp %s: write: %w", ErrDisconnected, o.addr, err)
	}
	return nil
}

// read handles the device's replies on c until it closes.
func (o *LineOutput) read(c net.Conn) {
	defer o.wg.Done()
	sc := bufio.NewScanner(c)
	for sc.Scan() {
		line := sc.Text()
		id, ok := strings.CutPrefix(line, "ACK ")
		n, err := strconv.ParseInt(strings.TrimSpace(id), 10, 64)
		if !ok || err != nil {
			o.log.Warn().Str("line", line).Msg("unexpected line from marking device; want \"ACK <defect>\"")
			continue
		}
		o.mu.Lock()
		fn := o.ackFn
		o.mu.Unlock()
		if fn != nil {
			fn(n)
		}
	}
	o.mu.Lock()
	if o.conn == c {
		o.conn = nil
	}
	o.mu.Unlock()
	c.Close()
}

// Close closes the connection and waits for its reader.
func (o *LineOutput) Close() error {
	o.mu.Lock()
	o.closed = true
	if o.conn != nil {
		o.conn.Close()
		o.conn = nil
	}
	o.mu.Unlock()
	o.wg.Wait()
	return nil
}

// AppendMarkLine appends the MARK line of m, with its newline, to dst:
//
//	MARK roll=<id> defect=<id> md_m=<m> cd_mm=<mm> head=<name> count=<target> marker_count=<n> length_mm=<mm>[ merged=<id>,<id>...]
func AppendMarkLine(dst []byte, m Mark) []byte {
	var id int64
	if len(m.DefectIDs) > 0 {
		id = m.DefectIDs[0]
	}
	dst = append(dst, "MARK roll="...)
	dst = appendEscaped(dst, m.RollID)
	dst = append(dst, " defect="...)
	dst = strconv.AppendInt(dst, id, 10)
	dst = append(dst, " md_m="...)
	dst = strconv.AppendFloat(dst, m.MDM, 'f', 4, 64)
	dst = append(dst, " cd_mm="...)
	dst = strconv.AppendFloat(dst, m.CDMM, 'f', 1, 64)
	dst = append(dst, " head="...)
	dst = appendEscaped(dst, m.HeadName)
	dst = append(dst, " count="...)
	dst = strconv.AppendInt(dst, m.TargetCount, 10)
	dst = append(dst, " marker_count="...)
	dst = strconv.AppendInt(dst, m.MarkerCount, 10)
	dst = append(dst, " length_mm="...)
	dst = strconv.AppendFloat(dst, m.LengthMM, 'f', 1, 64)
	if len(m.DefectIDs) > 1 {
		dst = append(dst, " merged="...)
		for i, d := range m.DefectIDs[1:] {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = strconv.AppendInt(dst, d, 10)
		}
	}
	return append(dst, '\n')
}

// MarkLine is a parsed MARK line.
type MarkLine struct {
	RollID      string
	DefectID    int64
	MDM         float64
	CDMM        float64
	Head        string
	Count       int64
	MarkerCount int64
	LengthMM    float64
	Merged      []int64
}

// ParseMarkLine parses one MARK line (with or without its newline). Unknown
// key=value fields are ignored, as the protocol asks of receivers.
func ParseMarkLine(line string) (MarkLine, error) {
	var ml MarkLine
	rest, ok := strings.CutPrefix(strings.TrimRight(line, "\r\n"), "MARK ")
	if !ok {
		return ml, fmt.Errorf("%w: %q: must start with \"MARK \"", ErrBadLine, line)
	}
	seen := 0
	for f := range strings.FieldsSeq(rest) {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			return ml, fmt.Errorf("%w: field %q: want key=value", ErrBadLine, f)
		}
		var err error
		switch k {
		case "roll":
			ml.RollID, err = unescape(v)
		case "defect":
			ml.DefectID, err = strconv.ParseInt(v, 10, 64)
		case "md_m":
			ml.MDM, err = strconv.ParseFloat(v, 64)
		case "cd_mm":
			ml.CDMM, err = strconv.ParseFloat(v, 64)
		case "head":
			ml.Head, err = unescape(v)
		case "count":
			ml.Count, err = strconv.ParseInt(v, 10, 64)
		case "marker_count":
			ml.MarkerCount, err = strconv.ParseInt(v, 10, 64)
		case "length_mm":
			ml.LengthMM, err = strconv.ParseFloat(v, 64)
		case "merged":
			for s := range strings.SplitSeq(v, ",") {
				n, e := strconv.ParseInt(s, 10, 64)
				if e != nil {
					err = e
					break
				}
				ml.Merged = append(ml.Merged, n)
			}
		default:
			continue
		}
		if err != nil {
			return ml, fmt.Errorf("%w: field %s = %q: %w", ErrBadLine, k, v, err)
		}
		seen++
	}
	if ml.Head == "" || seen < 6 {
		return ml, fmt.Errorf("%w: %q: needs roll, defect, md_m, cd_mm, head and count", ErrBadLine, line)
	}
	return ml, nil
}

// appendEscaped appends s with '%', '=', bytes <= ' ' and >= 0x7f written
// as %XX, so that a value never contains a space or '='.
func appendEscaped(dst []byte, s string) []byte {
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || c == '%' || c == '=' {
			dst = append(dst, '%', hex[c>>4], hex[c&15])
			continue
		}
		dst = append(dst, c)
	}
	return dst
}

func unescape(s string) (string, error) {
	if !strings.Contains(s, "%") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b.WriteByte(s[i])
			continue
		}
		if i+2 >= len(s) {
			return "", fmt.Errorf("truncated escape")
		}
		n, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
		if err != nil {
			return "", fmt.Errorf("bad escape %q", s[i:i+3])
		}
		b.WriteByte(byte(n))
		i += 2
	}
	return b.String(), nil
}

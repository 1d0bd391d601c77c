package rollmap

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/apache/arrow-go/v18/arrow/ipc"
)

// # Version-2 framing
//
// A version-2 stream is an Arrow IPC stream whose every message carries
// two CRC-32C (Castagnoli) checksums in an 8-byte trailer at the end of
// its metadata, where Arrow readers see only padding (FORMAT.md,
// "Checksums"):
//
//	┌──────────┬──────────┬──────────────────────────┬─────────┬─────────┬──────────────┐
//	│ FFFFFFFF │ int32 L  │ flatbuffer Message, zero │ hdr CRC │ body CRC│ body         │
//	│          │          │ padded to a multiple of 8│ uint32  │ uint32  │ (bodyLength) │
//	└──────────┴──────────┴──────────────────────────┴─────────┴─────────┴──────────────┘
//	 0          4          8                          8+L-8     8+L-4     8+L
//
//	hdr CRC  = CRC-32C(bytes 8 .. 8+L-8, then bytes 0 .. 8)   metadata, then the prefix
//	body CRC = CRC-32C(bytes 8+L .. 8+L+bodyLength)
//
// The header checksum covers the length L, so the lengths a reader
// follows are checked before it trusts them; it runs over the metadata
// first so that a damaged L can be found again (tailDamaged). The EOS
// marker has no checksum: any change to its 8 bytes makes it a bad
// message or a damaged end (see classifyTail).

// trailerLen is the size of the checksum trailer of a version-2 message.
const trailerLen = 8

// minMetaV2 and maxMetaV2 bound L in a version-2 message: the smallest
// flatbuffer Message plus the trailer, and far more than the metadata of
// any schema here (about 60 bytes per column).
const (
	minMetaV2 = 32
	maxMetaV2 = 1 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// headerCRC is the header checksum of a message whose metadata (without
// the trailer) is meta and whose metadata length field is l.
func headerCRC(meta []byte, l int32) uint32 {
	c := crc32.Update(0, castagnoli, meta)
	var p [prefixLen]byte
	binary.LittleEndian.PutUint32(p[:4], continuation)
	binary.LittleEndian.PutUint32(p[4:], uint32(l))
	return crc32.Update(c, castagnoli, p[:])
}

// frameWriter is the ipc.PayloadWriter of every stream this package
// writes: arrow-go's ipc.Writer encodes each message (schema, record
// batch) as a Payload, and frameWriter appends it to buf in the
// version-2 framing. Once it has framed a schema message (or is told
// the file already starts with one, skipSchema), it drops the schema
// message the ipc.Writer emits before its first batch.
type frameWriter struct {
	buf        []byte
	skipSchema bool
}

// Start implements ipc.PayloadWriter.
func (f *frameWriter) Start() error { return nil }

// Close implements ipc.PayloadWriter. The EOS marker is written by
// streamWriter.close, not here: an open stream has none.
func (f *frameWriter) Close() error { return nil }

// WritePayload implements ipc.PayloadWriter.
func (f *frameWriter) WritePayload(p ipc.Payload) error {
	mb := p.Meta()
	if mb == nil {
		return errors.New("rollmap: ipc payload without metadata")
	}
	defer mb.Release()
	meta := mb.Bytes()
	htype, bodyLen, _, err := parseMessage(meta)
	if err != nil {
		return fmt.Errorf("rollmap: ipc writer produced a message this package cannot read back: %w", err)
	}
	switch htype {
	case headerSchema:
		if f.skipSchema {
			return nil
		}
		f.skipSchema = true
	case headerRecordBatch:
	default:
		return fmt.Errorf("rollmap: ipc writer produced a message of type %d (dictionaries are not used)", htype)
	}
	start := len(f.buf)
	padded := (len(meta) + 7) &^ 7
	l := int32(padded + trailerLen)
	f.buf = binary.LittleEndian.AppendUint32(f.buf, continuation)
	f.buf = binary.LittleEndian.AppendUint32(f.buf, uint32(l))
	f.buf = append(f.buf, meta...)
	f.buf = append(f.buf, make([]byte, padded-len(meta))...)
	hcrc := headerCRC(f.buf[start+prefixLen:], l)
	trailer := len(f.buf)
	f.buf = append(f.buf, make([]byte, trailerLen)...)
	w := appendWriter{&f.buf}
	if err := p.SerializeBody(w); err != nil {
		return err
	}
	body := f.buf[trailer+trailerLen:]
	if int64(len(body)) != bodyLen {
		return fmt.Errorf("rollmap: ipc payload body is %d bytes, its metadata says %d", len(body), bodyLen)
	}
	binary.LittleEndian.PutUint32(f.buf[trailer:], hcrc)
	binary.LittleEndian.PutUint32(f.buf[trailer+4:], crc32.Checksum(body, castagnoli))
	return nil
}

type appendWriter struct{ b *[]byte }

func (w appendWriter) Write(p []byte) (int, error) {
	*w.b = append(*w.b, p...)
	return len(p), nil
}

// v2Message is a version-2 message found intact: where it ends, its type
// and its rows.
type v2Message struct {
	end   int64
	htype byte
	rows  int64
}

// msgBuf is scratch space for reading messages during a scan.
type msgBuf struct{ b []byte }

func (m *msgBuf) read(r io.ReaderAt, off, n int64) ([]byte, error) {
	if int64(cap(m.b)) < n {
		m.b = make([]byte, n)
	}
	b := m.b[:n]
	if _, err := r.ReadAt(b, off); err != nil {
		return nil, err
	}
	return b, nil
}

// errDamaged is what readV2 returns for a message that is not intact and
// complete; the scan then decides between damage and a partial tail.
var errDamaged = errors.New("damaged")

// readV2 checks the version-2 message at off: framing, both checksums,
// the flatbuffer and its lengths. It returns errDamaged (wrapped, with
// why) for anything but an intact message, or an I/O error.
func readV2(r io.ReaderAt, off, size int64, buf *msgBuf) (v2Message, error) {
	bad := func(format string, args ...any) (v2Message, error) {
		return v2Message{}, fmt.Errorf("%w: %s", errDamaged, fmt.Sprintf(format, args...))
	}
	if size-off < prefixLen {
		return bad("%d bytes left, a partial message prefix", size-off)
	}
	p, err := buf.read(r, off, prefixLen)
	if err != nil {
		return v2Message{}, err
	}
	if c := binary.LittleEndian.Uint32(p); c != continuation {
		return bad("continuation marker %#08x, want %#08x", c, uint32(continuation))
	}
	l := int64(int32(binary.LittleEndian.Uint32(p[4:])))
	if l == 0 {
		return bad("end-of-stream marker")
	}
	if l < minMetaV2 || l > maxMetaV2 || l%8 != 0 {
		return bad("metadata length %d, want a multiple of 8 in %d..%d", l, minMetaV2, maxMetaV2)
	}
	if off+prefixLen+l > size {
		return bad("metadata of %d bytes runs past the end of the file", l)
	}
	meta, err := buf.read(r, off+prefixLen, l)
	if err != nil {
		return v2Message{}, err
	}
	body := meta[l-trailerLen:]
	if got, want := headerCRC(meta[:l-trailerLen], int32(l)), binary.LittleEndian.Uint32(body); got != want {
		return bad("header CRC-32C %#08x, trailer says %#08x", got, want)
	}
	bodyCRC := binary.LittleEndian.Uint32(body[4:])
	htype, bodyLen, rows, err := parseMessage(meta[:l-trailerLen])
	if err == nil && htype == headerSchema {
		err = checkSchemaMessage(meta[:l-trailerLen])
	}
	if err != nil {
		return bad("metadata: %v", err)
	}
	switch {
	case htype != headerSchema && htype != headerRecordBatch:
		return bad("message type %d", htype)
	case bodyLen < 0 || bodyLen%8 != 0:
		return bad("body length %d", bodyLen)
	case rows < 0 || rows > bodyLen/minRowBytes:
		return bad("%d rows in a %d-byte body", rows, bodyLen)
	}
	end := off + prefixLen + l + bodyLen
	if end > size || end < off {
		return bad("body of %d bytes runs past the end of the file", bodyLen)
	}
	c := crc32.New(castagnoli)
	if _, err := io.Copy(c, io.NewSectionReader(r, off+prefixLen+l, bodyLen)); err != nil {
		return v2Message{}, err
	}
	if got := c.Sum32(); got != bodyCRC {
		return bad("body CRC-32C %#08x, trailer says %#08x", got, bodyCRC)
	}
	return v2Message{end: end, htype: htype, rows: rows}, nil
}

// resyncV2 returns the offset of the first intact record batch message at
// or after from (messages start at multiples of 8), or -1.
func resyncV2(r io.ReaderAt, from, size int64, buf *msgBuf) (int64, v2Message, error) {
	from = (from + 7) &^ 7
	var p [prefixLen]byte
	for at := from; at+prefixLen <= size; at += 8 {
		if _, err := r.ReadAt(p[:], at); err != nil {
			return -1, v2Message{}, err
		}
		if binary.LittleEndian.Uint32(p[:]) != continuation {
			continue
		}
		l := int64(int32(binary.LittleEndian.Uint32(p[4:])))
		if l < minMetaV2 || l > maxMetaV2 || l%8 != 0 || at+prefixLen+l > size {
			continue
		}
		m, err := readV2(r, at, size, buf)
		if errors.Is(err, errDamaged) || err == nil && m.htype != headerRecordBatch {
			continue
		}
		if err != nil {
			return -1, v2Message{}, err
		}
		return at, m, nil
	}
	return -1, v2Message{}, nil
}

// classifyTail decides what the bytes from off to size are, when the
// message there is not intact and no intact message follows: the partial
// message a crash left (truncated: true), or a damaged one (false, why).
//
// A partial message is a prefix of a well-formed one: a continuation
// marker (or its first bytes), a plausible length, and either metadata
// that is cut off, or metadata whose header checksum holds and a body
// that is cut off. A flipped byte in the last complete message fails one
// of these, with two exceptions found here: a length field changed to
// run past the end (the true length is found again by its header
// checksum) and a changed end-of-stream marker (8 bytes left, differing
// from EOS in one byte).
func classifyTail(r io.ReaderAt, off, size int64, buf *msgBuf) (truncated bool, why string, err error) {
	n := size - off
	if n < prefixLen {
		b, err := buf.read(r, off, n)
		if err != nil {
			return false, "", err
		}
		if bytes.Equal(b[:min(n, 4)], eos[:min(n, 4)]) {
			return true, "", nil
		}
		return false, "bad partial continuation marker", nil
	}
	p, err := buf.read(r, off, prefixLen)
	if err != nil {
		return false, "", err
	}
	if binary.LittleEndian.Uint32(p) != continuation {
		return false, fmt.Sprintf("continuation marker %#08x", binary.LittleEndian.Uint32(p)), nil
	}
	l := int64(int32(binary.LittleEndian.Uint32(p[4:])))
	if l < minMetaV2 || l > maxMetaV2 || l%8 != 0 {
		return false, fmt.Sprintf("metadata length %d", l), nil
	}
	if n == prefixLen {
		diff := 0
		for i := range p {
			if p[i] != eos[i] {
				diff++
			}
		}
		if diff == 1 {
			return false, "damaged end-of-stream marker", nil
		}
		return true, "", nil
	}
	if prefixLen+l <= n {
		meta, err := buf.read(r, off+prefixLen, l)
		if err != nil {
			return false, "", err
		}
		if headerCRC(meta[:l-trailerLen], int32(l)) != binary.LittleEndian.Uint32(meta[l-trailerLen:]) {
			return false, "header CRC-32C mismatch", nil
		}
		_, bodyLen, _, err := parseMessage(meta[:l-trailerLen])
		if err != nil || prefixLen+l+bodyLen <= n {
			return false, "damaged message", nil // the lengths checked out, so the body does not
		}
		return true, "", nil
	}
	// The metadata runs past the end: cut off, or L was damaged. Look for
	// a shorter L whose header checksum holds.
	rest, err := buf.read(r, off+prefixLen, n-prefixLen)
	if err != nil {
		return false, "", err
	}
	c := uint32(0)
	for m := int64(0); m+trailerLen <= int64(len(rest)) && m+trailerLen <= maxMetaV2; m += 8 {
		if lm := m + trailerLen; lm >= minMetaV2 {
			var pfx [prefixLen]byte
			binary.LittleEndian.PutUint32(pfx[:4], continuation)
			binary.LittleEndian.PutUint32(pfx[4:], uint32(lm))
			if crc32.Update(c, castagnoli, pfx[:]) == binary.LittleEndian.Uint32(rest[m:]) {
				return false, fmt.Sprintf("metadata length field says %d, the checksum finds %d", l, lm), nil
			}
		}
		c = crc32.Update(c, castagnoli, rest[m:m+8])
	}
	return true, "", nil
}

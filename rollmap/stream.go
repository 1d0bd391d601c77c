package rollmap

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/ipc"
)

// IPC stream framing (see the package doc and FORMAT.md).
const (
	continuation = 0xFFFFFFFF
	prefixLen    = 8 // continuation marker + int32 metadata length
)

// eos is the end-of-stream marker Close writes.
var eos = [prefixLen]byte{0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0}

// Message header types of the flatbuffer Message union (Arrow Message.fbs).
const (
	headerSchema      = 1
	headerRecordBatch = 3
)

// schemaMessage returns the schema message for schema in this version's
// framing: the first message of every stream file this package writes.
// The ipc.Writer encodes it and hands it to a frameWriter.
func schemaMessage(schema *arrow.Schema) ([]byte, error) {
	var fw frameWriter
	w := ipc.NewWriterWithPayloadWriter(&fw, ipc.WithSchema(schema))
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("encode schema: %w", err)
	}
	if !fw.skipSchema {
		return nil, errors.New("encode schema: the ipc writer wrote no schema message")
	}
	return fw.buf, nil
}

var (
	defectHeader      = sync.OnceValues(func() ([]byte, error) { return schemaMessage(DefectSchema) })
	uninspectedHeader = sync.OnceValues(func() ([]byte, error) { return schemaMessage(UninspectedSchema) })
	markEventHeader   = sync.OnceValues(func() ([]byte, error) { return schemaMessage(MarkEventSchema) })
)

// appendFile is what a streamWriter needs of its file: *os.File opened with
// O_APPEND. Tests substitute one that fails.
type appendFile interface {
	Write(p []byte) (int, error)
	Truncate(size int64) error
	Sync() error
	Close() error
}

// streamWriter appends record batches to one Arrow IPC stream file.
//
// The file always starts with the schema message, written and synced at
// creation, so a new roll's files are valid (empty) streams. An
// ipc.Writer encodes each batch and hands its payload to fw, a
// frameWriter that frames it (with its checksums) into a buffer the
// streamWriter owns and reuses; fw drops the schema payload the
// ipc.Writer emits before its first batch, since the file already has
// it. Each batch then reaches the file in one write call. If that write
// fails, the file is cut back to the end of the last complete message
// and the batch can be written again. A resumed roll's writer appends in
// the same way to an existing file, cut back to its last complete batch
// (see reopenStream).
//
// A failed sync, or a failed cut-back, leaves the file in an unknown state:
// the error sticks and every later call returns it.
type streamWriter struct {
	path   string
	f      appendFile
	header []byte // schema message at the start of the file
	w      *ipc.Writer
	fw     frameWriter
	end    int64 // file size after the last complete message
	dirty  bool  // written since the last sync
	err    error // sticky failure
}

// newStreamWriter returns the writer appending to f, whose first end
// bytes are complete messages starting with header.
func newStreamWriter(path string, f appendFile, schema *arrow.Schema, header []byte, end int64) *streamWriter {
	s := &streamWriter{path: path, f: f, header: header, end: end}
	s.fw.skipSchema = true
	s.w = ipc.NewWriterWithPayloadWriter(&s.fw, ipc.WithSchema(schema))
	return s
}

// createStream creates path (which must not exist), writes the schema
// message and syncs it.
func createStream(path string, schema *arrow.Schema, header []byte) (*streamWriter, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	if _, err := f.Write(header); err != nil {
		f.Close()
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, fmt.Errorf("sync %s: %w", path, err)
	}
	return newStreamWriter(path, f, schema, header, int64(len(header))), nil
}

// write appends rec as one record batch message. It does not sync.
func (s *streamWriter) write(rec arrow.RecordBatch) error {
	if s.err != nil {
		return s.err
	}
	s.fw.buf = s.fw.buf[:0]
	if err := s.w.Write(rec); err != nil {
		return fmt.Errorf("encode batch for %s: %w", s.path, err)
	}
	return s.append(s.fw.buf)
}

// append writes msg at the end of the file; on failure it cuts the file back
// to the last complete message so the stream stays well-formed.
func (s *streamWriter) append(msg []byte) error {
	if s.err != nil {
		return s.err
	}
	s.dirty = true
	if _, err := s.f.Write(msg); err != nil {
		if terr := s.f.Truncate(s.end); terr != nil {
			s.err = fmt.Errorf("write %s: %w; cutting it back to %d bytes failed: %w", s.path, err, s.end, terr)
			return s.err
		}
		return fmt.Errorf("write %s: %w", s.path, err)
	}
	s.end += int64(len(msg))
	return nil
}

func (s *streamWriter) sync() error {
	if s.err != nil {
		return s.err
	}
	if !s.dirty {
		return nil
	}
	if err := s.f.Sync(); err != nil {
		s.err = fmt.Errorf("sync %s: %w", s.path, err)
		return s.err
	}
	s.dirty = false
	return nil
}

// close ends the stream with EOS and syncs it (unless the writer failed
// before), then closes the file.
func (s *streamWriter) close() error {
	var err error
	if s.err == nil {
		err = s.append(eos[:])
		if err == nil {
			err = s.sync()
		}
	}
	s.w.Close() // releases the writer's state; it only ever wrote to fw
	if cerr := s.f.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("close %s: %w", s.path, cerr)
	}
	return err
}

// span is the byte range of one message.
type span struct{ off, end int64 }

// streamScan is the result of walking a stream file's message framing.
type streamScan struct {
	version   int   // framing: 1 or 2
	end       int64 // offset after the last complete message (EOS included)
	schemaEnd int64 // offset after the schema message (0: none intact)
	batchEnd  int64 // offset after the last intact message before a partial tail (EOS excluded)
	batches   int   // intact record batch messages
	spans     []span
	rows      int64 // rows in those batches
	err       error // ErrTruncated and/or ErrCorrupt (wrapped) if the walk found damage
}

// scanStream walks the message framing of a stream file of the given size
// without decoding the batches. Version 1 (no checksums): it reads each
// 8-byte prefix and the metadata flatbuffer (for the body length), skips
// the body and stops at the first damage. Version 2: it checks each
// message's checksums, and after damage goes on at the next intact
// record batch, so every intact batch is found (scanV2). Either way it
// finds where the complete messages end, so a partial tail is never
// handed to the Arrow decoder, and it bounds every length by the file
// size before anything is allocated for it.
func scanStream(r io.ReaderAt, size int64) streamScan {
	return scanStreamFrom(r, 0, size, 0, 0)
}

// streamVersion tells the framing of a stream file: 2 when its first
// message is an intact version-2 schema message, or when it is not but
// its schema does not say version 1 and an intact version-2 record batch
// follows (a damaged schema message); 1 otherwise.
func streamVersion(r io.ReaderAt, size int64) int {
	var buf msgBuf
	m, err := readV2(r, 0, size, &buf)
	if err == nil && m.htype == headerSchema {
		return 2
	}
	if v, ok := v1SchemaVersion(r, size, &buf); ok && v == "1" {
		return 1
	}
	if at, _, err := resyncV2(r, prefixLen, size, &buf); err == nil && at >= 0 {
		return 2
	}
	return 1
}

// v1SchemaVersion reads VersionKey from the schema message at offset 0
// framed as in version 1.
func v1SchemaVersion(r io.ReaderAt, size int64, buf *msgBuf) (string, bool) {
	p, err := buf.read(r, 0, min(size, prefixLen))
	if err != nil || len(p) < prefixLen || binary.LittleEndian.Uint32(p) != continuation {
		return "", false
	}
	l := int64(int32(binary.LittleEndian.Uint32(p[4:])))
	if l <= 0 || l > maxMetaV2 || prefixLen+l > size {
		return "", false
	}
	meta, err := buf.read(r, prefixLen, l)
	if err != nil || checkSchemaMessage(meta) != nil {
		return "", false
	}
	return schemaMetadata(meta, VersionKey)
}

// schemaMetadata returns the value of key in the custom metadata of the
// schema message meta (checked by checkSchemaMessage).
func schemaMetadata(meta []byte, key string) (string, bool) {
	fb := flatbuf(meta)
	msg, err := fb.root()
	if err != nil {
		return "", false
	}
	sch, err := fb.tableField(msg, 2)
	if err != nil {
		return "", false
	}
	pos, n, err := fb.vector(sch, 2, 4)
	if err != nil {
		return "", false
	}
	for i := range n {
		kv, err := fb.tableAt(pos + 4*i)
		if err != nil {
			return "", false
		}
		kp, kn, err1 := fb.vector(kv, 0, 1)
		vp, vn, err2 := fb.vector(kv, 1, 1)
		if err1 != nil || err2 != nil {
			return "", false
		}
		if string(meta[kp:kp+kn]) == key {
			return string(meta[vp : vp+vn]), true
		}
	}
	return "", false
}

// headerVersion is the framing of a stream whose schema message is hdr.
func headerVersion(hdr []byte) int {
	var buf msgBuf
	if m, err := readV2(bytes.NewReader(hdr), 0, int64(len(hdr)), &buf); err == nil && m.htype == headerSchema {
		return 2
	}
	return 1
}

// scanStreamFrom is scanStream from offset off, where a message starts;
// msgs is the number of messages before it (0 at the start of the file,
// where the schema message must be) and version the stream's framing
// (found from the file when off is 0).
func scanStreamFrom(r io.ReaderAt, off, size int64, msgs, version int) streamScan {
	if off == 0 {
		version = streamVersion(r, size)
	}
	if version == 2 {
		return scanV2(r, off, size, msgs)
	}
	return scanV1(r, off, size, msgs)
}

// scanV2 walks a version-2 stream from off. Damage (a message that is not
// intact) is skipped to the next intact record batch and reported as
// ErrCorrupt with its byte range; a damaged end with nothing intact after
// it is a partial message (ErrTruncated) or damage (classifyTail).
func scanV2(r io.ReaderAt, off, size int64, msgs int) streamScan {
	sc := streamScan{version: 2, end: off, batchEnd: off}
	var (
		buf   msgBuf
		dmg   []string
		trunc error
	)
	for off < size {
		m, err := readV2(r, off, size, &buf)
		if err == nil && (msgs == 0) != (m.htype == headerSchema) {
			err = fmt.Errorf("%w: message type %d where a %s is due", errDamaged, m.htype, map[bool]string{true: "schema", false: "record batch"}[msgs == 0])
		}
		if err == nil {
			if m.htype == headerSchema {
				sc.schemaEnd = m.end
			} else {
				sc.spans = append(sc.spans, span{off, m.end})
				sc.batches++
				sc.rows += m.rows
			}
			off, msgs = m.end, msgs+1
			sc.end, sc.batchEnd = off, off
			continue
		}
		if !errors.Is(err, errDamaged) {
			sc.err = fmt.Errorf("read at %d: %w", off, err)
			return sc
		}
		if off+prefixLen == size {
			var p [prefixLen]byte
			if _, rerr := r.ReadAt(p[:], off); rerr == nil && p == eos {
				sc.end = size
				break
			}
		}
		why := strings.TrimPrefix(err.Error(), errDamaged.Error()+": ")
		at, _, rerr := resyncV2(r, off+prefixLen, size, &buf)
		if rerr != nil {
			sc.err = fmt.Errorf("read after %d: %w", off, rerr)
			return sc
		}
		if at >= 0 {
			dmg = append(dmg, fmt.Sprintf("bytes %d to %d (message at offset %d: %s)", off, at, off, why))
			off, msgs = at, max(msgs, 1)
			continue
		}
		truncated, twhy, terr := classifyTail(r, off, size, &buf)
		if terr != nil {
			sc.err = fmt.Errorf("read at %d: %w", off, terr)
			return sc
		}
		if truncated {
			if msgs == 0 && off == 0 && size == 0 {
				trunc = fmt.Errorf("%w: empty file, no schema message", ErrTruncated)
			} else {
				trunc = fmt.Errorf("%w: %d bytes at offset %d, a partial message", ErrTruncated, size-off, off)
			}
		} else {
			if twhy != "" {
				why = twhy
			}
			dmg = append(dmg, fmt.Sprintf("bytes %d to %d (message at offset %d: %s)", off, size, off, why))
		}
		break
	}
	if off == 0 && size == 0 {
		trunc = fmt.Errorf("%w: empty file, no schema message", ErrTruncated)
	}
	var errs []error
	if len(dmg) > 0 {
		errs = append(errs, fmt.Errorf("%w: %s", ErrCorrupt, strings.Join(dmg, "; ")))
	}
	if trunc != nil {
		errs = append(errs, trunc)
	}
	sc.err = errors.Join(errs...)
	return sc
}

// scanV1 walks a version-1 stream (no checksums) from off and stops at
// the first damage.
func scanV1(r io.ReaderAt, off, size int64, msgs int) streamScan {
	var (
		sc     = streamScan{version: 1}
		prefix [prefixLen]byte
		meta   []byte
	)
	sc.end, sc.batchEnd = off, off
	for ; ; msgs++ {
		if off == size {
			if msgs == 0 {
				sc.err = fmt.Errorf("%w: empty file, no schema message", ErrTruncated)
			}
			return sc // clean end without EOS: a stream still being written
		}
		if size-off < prefixLen {
			sc.err = fmt.Errorf("%w: %d bytes at offset %d, a partial message prefix", ErrTruncated, size-off, off)
			return sc
		}
		if _, err := r.ReadAt(prefix[:], off); err != nil {
			sc.err = fmt.Errorf("read at %d: %w", off, err)
			return sc
		}
		if c := binary.LittleEndian.Uint32(prefix[:4]); c != continuation {
			sc.err = fmt.Errorf("%w: offset %d: continuation marker %#08x, want %#08x", ErrCorrupt, off, c, uint32(continuation))
			return sc
		}
		metaLen := int64(int32(binary.LittleEndian.Uint32(prefix[4:])))
		if metaLen == 0 { // EOS
			if off+prefixLen != size {
				sc.err = fmt.Errorf("%w: %d bytes after the end-of-stream marker at offset %d", ErrCorrupt, size-off-prefixLen, off)
				return sc
			}
			sc.end = size
			return sc
		}
		if metaLen < 8 || metaLen%8 != 0 {
			sc.err = fmt.Errorf("%w: offset %d: metadata length %d (want a positive multiple of 8)", ErrCorrupt, off, metaLen)
			return sc
		}
		if off+prefixLen+metaLen > size {
			sc.err = fmt.Errorf("%w: message at offset %d needs %d metadata bytes, file has %d", ErrTruncated, off, metaLen, size-off-prefixLen)
			return sc
		}
		if int64(cap(meta)) < metaLen {
			meta = make([]byte, metaLen)
		}
		meta = meta[:metaLen]
		if _, err := r.ReadAt(meta, off+prefixLen); err != nil {
			sc.err = fmt.Errorf("read at %d: %w", off+prefixLen, err)
			return sc
		}
		htype, bodyLen, rows, err := parseMessage(meta)
		if err == nil && htype == headerSchema {
			err = checkSchemaMessage(meta)
		}
		if err != nil {
			sc.err = fmt.Errorf("%w: message at offset %d: %v", ErrCorrupt, off, err)
			return sc
		}
		switch {
		case msgs == 0 && htype != headerSchema:
			sc.err = fmt.Errorf("%w: first message has type %d, want a schema (%d)", ErrCorrupt, htype, headerSchema)
			return sc
		case msgs > 0 && htype != headerRecordBatch:
			sc.err = fmt.Errorf("%w: message at offset %d has type %d, want a record batch (%d)", ErrCorrupt, off, htype, headerRecordBatch)
			return sc
		case bodyLen < 0 || bodyLen%8 != 0:
			sc.err = fmt.Errorf("%w: message at offset %d: body length %d (want a multiple of 8)", ErrCorrupt, off, bodyLen)
			return sc
		case rows < 0 || rows > bodyLen/minRowBytes:
			// Every row of every schema here takes at least one 8-byte
			// value, so this bounds what a reader allocates.
			sc.err = fmt.Errorf("%w: message at offset %d: %d rows in a %d-byte body", ErrCorrupt, off, rows, bodyLen)
			return sc
		}
		next := off + prefixLen + metaLen + bodyLen
		if next > size || next < off { // next < off: overflow
			sc.err = fmt.Errorf("%w: message at offset %d needs %d body bytes, file has %d", ErrTruncated, off, bodyLen, size-off-prefixLen-metaLen)
			return sc
		}
		if htype == headerRecordBatch {
			sc.batches++
			sc.rows += rows
			sc.spans = append(sc.spans, span{off, next})
		} else {
			sc.schemaEnd = next
		}
		off = next
		sc.end, sc.batchEnd = off, off
	}
}

// minRowBytes is the fewest body bytes a row of any roll-map schema takes.
const minRowBytes = 8

// parseMessage reads the header type, body length and, for a record batch,
// the row count from the flatbuffer Message of Arrow's Message.fbs:
//
//	table Message     { version: short; header: MessageHeader (union: type byte + table); bodyLength: long; ... }
//	table RecordBatch { length: long; ... }
//
// Every offset is checked against meta.
func parseMessage(meta []byte) (htype byte, bodyLen, rows int64, err error) {
	fb := flatbuf(meta)
	msg, err := fb.root()
	if err != nil {
		return 0, 0, 0, err
	}
	if o, err := fb.field(msg, 1, 1); err != nil {
		return 0, 0, 0, fmt.Errorf("header_type: %w", err)
	} else if o != 0 {
		htype = meta[o]
	}
	if o, err := fb.field(msg, 3, 8); err != nil {
		return 0, 0, 0, fmt.Errorf("bodyLength: %w", err)
	} else if o != 0 {
		bodyLen = int64(binary.LittleEndian.Uint64(meta[o:]))
	}
	if htype != headerRecordBatch {
		return htype, bodyLen, 0, nil
	}
	rb, err := fb.tableField(msg, 2)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("record batch: %w", err)
	}
	if o, err := fb.field(rb, 0, 8); err != nil {
		return 0, 0, 0, fmt.Errorf("record batch length: %w", err)
	} else if o != 0 {
		rows = int64(binary.LittleEndian.Uint64(meta[o:]))
	}
	// This package never compresses; a compressed buffer states its own
	// uncompressed size, which the Arrow decoder would allocate unchecked.
	if o, err := fb.field(rb, 3, 4); err != nil || o != 0 {
		return 0, 0, 0, errors.New("record batch is compressed (not written by this package)")
	}
	return htype, bodyLen, rows, nil
}

// checkSchemaMessage checks that every vector and string the Arrow decoder
// will size an allocation by lies inside meta (it trusts the lengths).
// Tables of Arrow's Schema.fbs used:
//
//	Schema   { endianness; fields: [Field]; custom_metadata: [KeyValue]; features: [long] }
//	Field    { name: string; nullable; type (union: type byte + table); dictionary: DictionaryEncoding;
//	           children: [Field]; custom_metadata: [KeyValue] }
//	KeyValue { key: string; value: string }
//	Timestamp { unit; timezone: string }   Union { mode; typeIds: [int] }
func checkSchemaMessage(meta []byte) error {
	fb := flatbuf(meta)
	msg, err := fb.root()
	if err != nil {
		return err
	}
	sch, err := fb.tableField(msg, 2)
	if err != nil {
		return fmt.Errorf("schema: %w", err)
	}
	if err := fb.checkFields(sch, 1, 0); err != nil {
		return fmt.Errorf("schema fields: %w", err)
	}
	if err := fb.checkKeyValues(sch, 2); err != nil {
		return fmt.Errorf("schema metadata: %w", err)
	}
	if _, _, err := fb.vector(sch, 3, 8); err != nil {
		return fmt.Errorf("schema features: %w", err)
	}
	return nil
}

// maxFieldDepth bounds the nesting of fields in a schema.
const maxFieldDepth = 16

// Arrow Type union members with vectors or strings inside.
const (
	typeTimestamp = 10
	typeUnion     = 14
)

func (b flatbuf) checkFields(t fbTable, slot int64, depth int) error {
	if depth > maxFieldDepth {
		return errors.New("fields nested too deep")
	}
	pos, n, err := b.vector(t, slot, 4)
	if err != nil {
		return err
	}
	for i := range n {
		f, err := b.tableAt(pos + 4*i)
		if err != nil {
			return fmt.Errorf("field %d: %w", i, err)
		}
		if _, _, err := b.vector(f, 0, 1); err != nil {
			return fmt.Errorf("field %d name: %w", i, err)
		}
		if o, err := b.field(f, 3, 4); err != nil {
			return fmt.Errorf("field %d type: %w", i, err)
		} else if o != 0 {
			ty, err := b.tableAt(o)
			if err != nil {
				return fmt.Errorf("field %d type: %w", i, err)
			}
			var tt byte
			if o, err := b.field(f, 2, 1); err == nil && o != 0 {
				tt = b[o]
			}
			switch tt {
			case typeTimestamp:
				_, _, err = b.vector(ty, 1, 1)
			case typeUnion:
				_, _, err = b.vector(ty, 1, 4)
			}
			if err != nil {
				return fmt.Errorf("field %d type: %w", i, err)
			}
		}
		if o, err := b.field(f, 4, 4); err != nil {
			return fmt.Errorf("field %d dictionary: %w", i, err)
		} else if o != 0 {
			d, err := b.tableAt(o)
			if err == nil {
				_, err = b.tableField(d, 1) // index type
			}
			if err != nil {
				return fmt.Errorf("field %d dictionary: %w", i, err)
			}
		}
		if err := b.checkFields(f, 5, depth+1); err != nil {
			return fmt.Errorf("field %d children: %w", i, err)
		}
		if err := b.checkKeyValues(f, 6); err != nil {
			return fmt.Errorf("field %d metadata: %w", i, err)
		}
	}
	return nil
}

func (b flatbuf) checkKeyValues(t fbTable, slot int64) error {
	pos, n, err := b.vector(t, slot, 4)
	if err != nil {
		return err
	}
	for i := range n {
		kv, err := b.tableAt(pos + 4*i)
		if err == nil {
			_, _, err = b.vector(kv, 0, 1)
		}
		if err == nil {
			_, _, err = b.vector(kv, 1, 1)
		}
		if err != nil {
			return fmt.Errorf("entry %d: %w", i, err)
		}
	}
	return nil
}

// flatbuf reads tables of a flatbuffer with every offset bounds-checked.
type flatbuf []byte

// fbTable is a table's position and its vtable's position and length.
type fbTable struct{ pos, vtable, vtLen int64 }

func (b flatbuf) root() (fbTable, error) {
	if len(b) < 4 {
		return fbTable{}, errors.New("flatbuffer shorter than its root offset")
	}
	return b.table(int64(binary.LittleEndian.Uint32(b)))
}

func (b flatbuf) table(pos int64) (fbTable, error) {
	n := int64(len(b))
	if pos < 0 || pos+4 > n {
		return fbTable{}, errors.New("table offset out of range")
	}
	vt := pos - int64(int32(binary.LittleEndian.Uint32(b[pos:])))
	if vt < 0 || vt+4 > n {
		return fbTable{}, errors.New("vtable offset out of range")
	}
	vtLen := int64(binary.LittleEndian.Uint16(b[vt:]))
	if vtLen < 4 || vt+vtLen > n {
		return fbTable{}, errors.New("vtable length out of range")
	}
	return fbTable{pos: pos, vtable: vt, vtLen: vtLen}, nil
}

// tableAt returns the table that the uoffset stored at pos points to.
func (b flatbuf) tableAt(pos int64) (fbTable, error) {
	if pos < 0 || pos+4 > int64(len(b)) {
		return fbTable{}, errors.New("offset out of range")
	}
	return b.table(pos + int64(binary.LittleEndian.Uint32(b[pos:])))
}

// tableField returns the table in field i of t, which must be present.
func (b flatbuf) tableField(t fbTable, i int64) (fbTable, error) {
	o, err := b.field(t, i, 4)
	if err != nil {
		return fbTable{}, err
	}
	if o == 0 {
		return fbTable{}, errors.New("table missing")
	}
	return b.tableAt(o)
}

// vector returns the position of the first element and the length of the
// vector (or string) in field i of t, checking that its n elements of size
// bytes lie inside b. An absent field is an empty vector.
func (b flatbuf) vector(t fbTable, i, size int64) (pos, n int64, err error) {
	o, err := b.field(t, i, 4)
	if err != nil || o == 0 {
		return 0, 0, err
	}
	v := o + int64(binary.LittleEndian.Uint32(b[o:]))
	if v+4 > int64(len(b)) {
		return 0, 0, errors.New("vector offset out of range")
	}
	n = int64(binary.LittleEndian.Uint32(b[v:]))
	if v+4+n*size > int64(len(b)) {
		return 0, 0, fmt.Errorf("vector of %d elements beyond the buffer", n)
	}
	return v + 4, n, nil
}

// field returns the absolute offset of field i of t, whose value is size
// bytes, or 0 when the field is absent (its default applies).
func (b flatbuf) field(t fbTable, i, size int64) (int64, error) {
	at := 4 + 2*i
	if at+2 > t.vtLen {
		return 0, nil
	}
	o := int64(binary.LittleEndian.Uint16(b[t.vtable+at:]))
	if o == 0 {
		return 0, nil
	}
	if t.pos+o+size > int64(len(b)) {
		return 0, errors.New("field out of range")
	}
	return t.pos + o, nil
}

// readStream reads every complete record batch of the stream file at path
// and appends its rows to dst. It returns what was read together with an
// error wrapping ErrTruncated (partial tail), ErrCorrupt, ErrVersion or the
// I/O error, each naming the file.
func readStream[T any](dst []T, path string, cols []column[T]) ([]T, error) {
	f, err := os.Open(path)
	if err != nil {
		return dst, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return dst, err
	}
	return readStreamFrom(dst, f, st.Size(), path, cols)
}

// readStreamFrom is readStream of the size bytes of r, named name in errors.
func readStreamFrom[T any](dst []T, r io.ReaderAt, size int64, name string, cols []column[T]) ([]T, error) {
	dst, _, err := readBatches(dst, r, nil, 0, size, name, cols)
	return dst, err
}

// readBatches appends the rows of the intact record batches of r between
// off and size to dst. At off 0 the stream starts with its schema
// message; at any other off (where a record batch message starts) hdr
// must hold the stream's schema message, read before. It returns the scan
// of the framing, whose batchEnd is where a later call continues. A
// version-2 stream whose schema message is damaged is decoded with the
// schema message this package writes for cols.
func readBatches[T any](dst []T, r io.ReaderAt, hdr []byte, off, size int64, name string, cols []column[T]) ([]T, streamScan, error) {
	msgs, version := 0, 0
	if off > 0 {
		msgs, version = 1, headerVersion(hdr)
	}
	sc := scanStreamFrom(r, off, size, msgs, version)
	if off == 0 && sc.schemaEnd == 0 && (sc.version != 2 || len(sc.spans) == 0) { // nothing readable
		return dst, sc, fmt.Errorf("%s: %w", name, sc.err)
	}
	if len(sc.spans) > 0 || off == 0 {
		var head io.Reader
		switch {
		case off > 0:
			head = bytes.NewReader(hdr)
		case sc.schemaEnd > 0:
			head = io.NewSectionReader(r, 0, sc.schemaEnd)
		default:
			h, err := schemaMessage(schemaOf(cols))
			if err != nil {
				return dst, sc, err
			}
			head = bytes.NewReader(h)
		}
		in := []io.Reader{head}
		for _, sp := range sc.spans {
			in = append(in, io.NewSectionReader(r, sp.off, sp.end-sp.off))
		}
		dst = slices.Grow(dst, int(sc.rows))
		before := len(dst)
		var err error
		if dst, err = decodeStream(dst, io.MultiReader(in...), cols, strconv.Itoa(sc.version)); err != nil {
			var be *batchError
			if errors.As(err, &be) && be.batch < len(sc.spans) {
				// Say where the readable records stop, in the file's bytes.
				sp := sc.spans[be.batch]
				return dst, sc, fmt.Errorf("%s: %d readable record batches (%d rows), then the batch at bytes %d–%d cannot be decoded, so the readable records stop at byte %d: %w",
					name, be.batch, len(dst)-before, sp.off, sp.end, sp.off, be.err)
			}
			return dst, sc, fmt.Errorf("%s: %w", name, err)
		}
	}
	if sc.err != nil {
		return dst, sc, fmt.Errorf("%s: %d intact batches; %w", name, sc.batches, sc.err)
	}
	return dst, sc, nil
}

// decodeStream decodes a stream that scanStream found complete, whose
// framing is of version framing.
func decodeStream[T any](dst []T, r io.Reader, cols []column[T], framing string) (out []T, err error) {
	rd, err := ipc.NewReader(bufio.NewReaderSize(r, 64<<10))
	if err != nil {
		return dst, fmt.Errorf("%w: schema: %v", ErrCorrupt, err)
	}
	defer rd.Release()
	if v, ok := rd.Schema().Metadata().GetValue(VersionKey); !ok {
		return dst, fmt.Errorf("%w: schema has no %s metadata", ErrCorrupt, VersionKey)
	} else if !readableVersion(v) {
		return dst, fmt.Errorf("%w: %s = %q, this reader reads %q and %q", ErrVersion, VersionKey, v, FormatVersion1, FormatVersion)
	} else if v != framing {
		return dst, fmt.Errorf("%w: the schema says version %s, the messages are framed as version %s", ErrCorrupt, v, framing)
	}
	batch := 0
	defer func() {
		// The framing was checked, but a damaged metadata flatbuffer or
		// buffer layout can still make arrow-go (or a column reader) panic.
		// dst holds the rows of the batches before: the panic's text is
		// the decoder's, of no use to whoever reads the error.
		if p := recover(); p != nil {
			out, err = dst, &batchError{batch: batch, err: fmt.Errorf("%w: the record batch cannot be decoded", ErrCorrupt)}
		}
	}()
	for ; rd.Next(); batch++ {
		if dst, err = appendRows(dst, cols, rd.RecordBatch()); err != nil {
			return dst, &batchError{batch: batch, err: err}
		}
	}
	if err := rd.Err(); err != nil {
		return dst, &batchError{batch: batch, err: fmt.Errorf("%w: %v", ErrCorrupt, err)}
	}
	return dst, nil
}

// batchError is a record batch decodeStream could not decode; batch is its
// index among the stream's record batches (every batch before it was
// decoded).
type batchError struct {
	batch int
	err   error
}

func (e *batchError) Error() string { return fmt.Sprintf("batch %d: %v", e.batch, e.err) }
func (e *batchError) Unwrap() error { return e.err }

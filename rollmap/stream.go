package rollmap

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
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

// schemaMessage returns the bytes of the schema message an ipc.Writer emits
// first for schema: the first message of every stream file.
func schemaMessage(schema *arrow.Schema) ([]byte, error) {
	var buf bytes.Buffer
	w := ipc.NewWriter(&buf, ipc.WithSchema(schema))
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("encode schema: %w", err)
	}
	b := buf.Bytes()
	if !bytes.HasSuffix(b, eos[:]) {
		return nil, errors.New("encode schema: ipc writer did not end the stream with EOS")
	}
	return b[:len(b)-len(eos)], nil
}

var (
	defectHeader      = sync.OnceValues(func() ([]byte, error) { return schemaMessage(DefectSchema) })
	uninspectedHeader = sync.OnceValues(func() ([]byte, error) { return schemaMessage(UninspectedSchema) })
)

// streamWriter appends record batches to one Arrow IPC stream file.
//
// The file always starts with the schema message, written and synced at
// creation, so a new roll's files are valid (empty) streams. The ipc.Writer
// encodes into buf, which streamWriter owns and reuses; the schema message
// the ipc.Writer emits before its first batch is checked against the one
// already in the file and dropped. Each batch then reaches the file in one
// write call. If that write fails, the file is truncated back to the end of
// the last complete batch and the batch can be written again; the same
// mechanism will let a recovered roll append to an existing file.
type streamWriter struct {
	path    string
	f       *os.File
	header  []byte // schema message at the start of the file
	w       *ipc.Writer
	buf     bytes.Buffer
	started bool  // w has emitted its schema message
	end     int64 // file size after the last complete message
	dirty   bool  // written since the last sync
}

// createStream creates path (which must not exist), writes the schema
// message and syncs it.
func createStream(path string, schema *arrow.Schema, header []byte) (*streamWriter, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	s := &streamWriter{path: path, f: f, header: header}
	if _, err := f.Write(header); err != nil {
		f.Close()
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, fmt.Errorf("sync %s: %w", path, err)
	}
	s.end = int64(len(header))
	s.w = ipc.NewWriter(&s.buf, ipc.WithSchema(schema))
	return s, nil
}

// write appends rec as one record batch message. It does not sync.
func (s *streamWriter) write(rec arrow.RecordBatch) error {
	s.buf.Reset()
	if err := s.w.Write(rec); err != nil {
		return fmt.Errorf("encode batch for %s: %w", s.path, err)
	}
	msg := s.buf.Bytes()
	if !s.started {
		if !bytes.HasPrefix(msg, s.header) {
			// The writer's schema message is a pure function of the schema.
			panic("rollmap: ipc writer emitted a schema message different from the file's")
		}
		msg = msg[len(s.header):]
		s.started = true
	}
	return s.append(msg)
}

// append writes msg at the end of the file; on failure it cuts the file back
// to the last complete message so the stream stays well-formed.
func (s *streamWriter) append(msg []byte) error {
	s.dirty = true
	if _, err := s.f.Write(msg); err != nil {
		if terr := s.f.Truncate(s.end); terr != nil {
			return fmt.Errorf("write %s: %w; truncating back to %d bytes also failed: %w", s.path, err, s.end, terr)
		}
		return fmt.Errorf("write %s: %w", s.path, err)
	}
	s.end += int64(len(msg))
	return nil
}

func (s *streamWriter) sync() error {
	if !s.dirty {
		return nil
	}
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", s.path, err)
	}
	s.dirty = false
	return nil
}

// close ends the stream with EOS (when eos is set), syncs and closes the file.
func (s *streamWriter) close(writeEOS bool) error {
	var err error
	if writeEOS {
		err = s.append(eos[:])
		if err == nil {
			err = s.sync()
		}
	}
	s.w.Close() // releases the writer; it only ever wrote to buf
	if cerr := s.f.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("close %s: %w", s.path, cerr)
	}
	return err
}

// streamScan is the result of walking a stream file's message framing.
type streamScan struct {
	end     int64 // offset after the last complete message (EOS included)
	batches int   // complete record batch messages
	err     error // ErrTruncated or ErrCorrupt (wrapped) if the walk stopped early
}

// scanStream walks the message framing of a stream file of the given size
// without decoding the messages: it reads each 8-byte prefix and the
// metadata flatbuffer (for the body length) and skips the body. It finds
// where the complete messages end, so a partial tail is never handed to the
// Arrow decoder, and it bounds every length by the file size before anything
// is allocated for it.
func scanStream(r io.ReaderAt, size int64) streamScan {
	var (
		sc     streamScan
		prefix [prefixLen]byte
		meta   []byte
	)
	off := int64(0)
	for msgs := 0; ; msgs++ {
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
		htype, bodyLen, err := parseMessage(meta)
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
		}
		next := off + prefixLen + metaLen + bodyLen
		if next > size || next < off { // next < off: overflow
			sc.err = fmt.Errorf("%w: message at offset %d needs %d body bytes, file has %d", ErrTruncated, off, bodyLen, size-off-prefixLen-metaLen)
			return sc
		}
		if htype == headerRecordBatch {
			sc.batches++
		}
		off = next
		sc.end = off
	}
}

// parseMessage reads the header type and body length from the flatbuffer
// Message table of Arrow's Message.fbs (fields: version, header_type,
// header, bodyLength, custom_metadata), checking every offset against meta.
func parseMessage(meta []byte) (htype byte, bodyLen int64, err error) {
	n := int64(len(meta))
	u32 := func(at int64) (int64, bool) {
		if at < 0 || at+4 > n {
			return 0, false
		}
		return int64(binary.LittleEndian.Uint32(meta[at:])), true
	}
	table, ok := u32(0)
	if !ok || table+4 > n {
		return 0, 0, errors.New("root table offset out of range")
	}
	soff, _ := u32(table)
	vtable := table - int64(int32(soff))
	if vtable < 0 || vtable+4 > n {
		return 0, 0, errors.New("vtable offset out of range")
	}
	vtLen := int64(binary.LittleEndian.Uint16(meta[vtable:]))
	if vtLen < 4 || vtable+vtLen > n {
		return 0, 0, errors.New("vtable length out of range")
	}
	// field returns the table-relative offset of field i, 0 when absent.
	field := func(i int64) int64 {
		at := 4 + 2*i
		if at+2 > vtLen {
			return 0
		}
		return int64(binary.LittleEndian.Uint16(meta[vtable+at:]))
	}
	if o := field(1); o != 0 {
		if table+o+1 > n {
			return 0, 0, errors.New("header_type out of range")
		}
		htype = meta[table+o]
	}
	if o := field(3); o != 0 {
		if table+o+8 > n {
			return 0, 0, errors.New("bodyLength out of range")
		}
		bodyLen = int64(binary.LittleEndian.Uint64(meta[table+o:]))
	}
	return htype, bodyLen, nil
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
	sc := scanStream(f, st.Size())
	if sc.end == 0 { // not even a complete schema message
		return dst, fmt.Errorf("%s: %w", path, sc.err)
	}
	dst, err = decodeStream(dst, io.NewSectionReader(f, 0, sc.end), cols)
	if err != nil {
		return dst, fmt.Errorf("%s: %w", path, err)
	}
	if sc.err != nil {
		return dst, fmt.Errorf("%s: %d complete batches, then %w", path, sc.batches, sc.err)
	}
	return dst, nil
}

// decodeStream decodes a stream that scanStream found complete.
func decodeStream[T any](dst []T, r io.Reader, cols []column[T]) (out []T, err error) {
	rd, err := ipc.NewReader(bufio.NewReaderSize(r, 64<<10))
	if err != nil {
		return dst, fmt.Errorf("%w: schema: %v", ErrCorrupt, err)
	}
	defer rd.Release()
	if v, ok := rd.Schema().Metadata().GetValue(VersionKey); !ok {
		return dst, fmt.Errorf("%w: schema has no %s metadata", ErrCorrupt, VersionKey)
	} else if v != FormatVersion {
		return dst, fmt.Errorf("%w: %s = %q, this reader reads %q", ErrVersion, VersionKey, v, FormatVersion)
	}
	defer func() {
		// The framing was checked, but a damaged metadata flatbuffer or
		// buffer layout can still make arrow-go (or a column reader) panic.
		if p := recover(); p != nil {
			out, err = dst, fmt.Errorf("%w: decoding panicked: %v", ErrCorrupt, p)
		}
	}()
	for batch := 0; rd.Next(); batch++ {
		if dst, err = appendRows(dst, cols, rd.RecordBatch()); err != nil {
			return dst, fmt.Errorf("batch %d: %w", batch, err)
		}
	}
	if err := rd.Err(); err != nil {
		return dst, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	return dst, nil
}

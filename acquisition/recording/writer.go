package recording

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/webinspect/webinspect/acquisition"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Writer writes a new recording. WriteBlock may be called concurrently for
// different cameras (one goroutine per camera); calls for the same camera
// are serialised.
type Writer struct {
	dir  string
	info acquisition.Info
	cams []*camWriter

	mu     sync.Mutex
	closed bool
}

// camWriter owns one camera file and the buffers to fill it.
type camWriter struct {
	mu    sync.Mutex
	path  string
	f     *os.File
	width int
	enc   *zstd.Encoder
	raw   []byte // uncompressed payload, reused
	frame []byte // frame header + compressed payload, reused
	off   int64  // bytes written
	err   error  // first write error; sticky
}

// Create makes a new recording in dir (created if needed) for a source
// described by info. generator is stored verbatim in recording.json (nil is
// fine). The camera files are created with their headers before
// recording.json appears, so a follower that sees recording.json can open
// every camera file.
func Create(dir string, info acquisition.Info, generator json.RawMessage) (*Writer, error) {
	if len(info.Cameras) == 0 {
		return nil, fmt.Errorf("recording: create %s: info has no cameras", dir)
	}
	for i, c := range info.Cameras {
		if c.Index != i {
			return nil, fmt.Errorf("recording: create %s: camera %d has Index %d: %w", dir, i, c.Index, ErrCameraMismatch)
		}
		if c.Width <= 0 {
			return nil, fmt.Errorf("recording: create %s: camera %d has Width %d: must be > 0", dir, i, c.Width)
		}
	}
	if generator != nil && !json.Valid(generator) {
		return nil, fmt.Errorf("recording: create %s: generator metadata is not valid JSON", dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("recording: create: %w", err)
	}
	metaPath := filepath.Join(dir, MetaFile)
	if _, err := os.Stat(metaPath); err == nil {
		return nil, fmt.Errorf("recording: create %s: %w", dir, ErrExists)
	}
	w := &Writer{dir: dir, info: info}
	fail := func(err error) (*Writer, error) {
		for _, c := range w.cams {
			c.f.Close()
			c.enc.Close()
			os.Remove(c.path)
		}
		return nil, err
	}
	for i, cam := range info.Cameras {
		path := filepath.Join(dir, CameraFile(i))
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			if errors.Is(err, os.ErrExist) {
				err = fmt.Errorf("%s: %w", path, ErrExists)
			}
			return fail(fmt.Errorf("recording: create: %w", err))
		}
		enc, err := zstd.NewWriter(nil,
			zstd.WithEncoderLevel(zstd.SpeedFastest),
			zstd.WithEncoderConcurrency(1),
			zstd.WithEncoderCRC(false), // the frame carries a CRC-32C
			// Pixels rarely repeat exactly but their values are skewed:
			// entropy-code literals even without matches.
			zstd.WithAllLitEntropyCompression(true))
		if err != nil {
			f.Close()
			return fail(fmt.Errorf("recording: create %s: zstd: %w", path, err))
		}
		c := &camWriter{path: path, f: f, width: cam.Width, enc: enc}
		w.cams = append(w.cams, c)
		head, err := json.Marshal(cam)
		if err != nil {
			return fail(fmt.Errorf("recording: create %s: camera header: %w", path, err))
		}
		buf := make([]byte, 0, len(fileMagic)+4+len(head))
		buf = append(buf, fileMagic...)
		buf = binary.LittleEndian.AppendUint32(buf, uint32(len(head)))
		buf = append(buf, head...)
		if err := c.write(buf); err != nil {
			return fail(err)
		}
	}
	meta := Meta{Format: FormatName, Version: Version, Created: time.Now().UTC(), Info: info, Generator: generator}
	js, err := json.MarshalIndent(meta, "", "  ")
	if err != nil {
		return fail(fmt.Errorf("recording: create %s: %w", metaPath, err))
	}
	tmp := metaPath + ".tmp"
	if err := os.WriteFile(tmp, append(js, '\n'), 0o644); err != nil {
		return fail(fmt.Errorf("recording: create: %w", err))
	}
	if err := os.Rename(tmp, metaPath); err != nil {
		os.Remove(tmp)
		return fail(fmt.Errorf("recording: create: %w", err))
	}
	return w, nil
}

// Dir returns the recording's directory.
func (w *Writer) Dir() string { return w.dir }

// write writes p with one call and records the first error.
func (c *camWriter) write(p []byte) error {
	if c.err != nil {
		return c.err
	}
	n, err := c.f.Write(p)
	c.off += int64(n)
	if err != nil {
		c.err = fmt.Errorf("recording: write %s at byte %d: %w", c.path, c.off, err)
	}
	return c.err
}

// WriteBlock appends b as one frame to its camera's file. The frame reaches
// the operating system before WriteBlock returns. WriteBlock does not keep
// b. Blocks with no lines are skipped.
func (w *Writer) WriteBlock(b *acquisition.Block) error {
	if b.Camera < 0 || b.Camera >= len(w.cams) {
		return fmt.Errorf("recording: %s: block of camera %d, recording has %d cameras: %w", w.dir, b.Camera, len(w.cams), ErrCameraMismatch)
	}
	c := w.cams[b.Camera]
	if b.Width != c.width {
		return fmt.Errorf("recording: %s: block of width %d, camera is %d px wide: %w", c.path, b.Width, c.width, ErrCameraMismatch)
	}
	if b.Lines <= 0 {
		return nil
	}
	if b.Stride < b.Width || len(b.Pix) < (b.Lines-1)*b.Stride+b.Width || len(b.Counts) < b.Lines {
		return fmt.Errorf("recording: %s: block of %d lines has stride %d, %d pixel bytes and %d counts: inconsistent",
			c.path, b.Lines, b.Stride, len(b.Pix), len(b.Counts))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.f == nil {
		return fmt.Errorf("recording: %s: %w", c.path, ErrClosed)
	}
	var tns int64
	if !b.Time.IsZero() {
		tns = b.Time.UnixNano()
	}
	raw := c.raw[:0]
	raw = binary.LittleEndian.AppendUint64(raw, uint64(b.FirstLine))
	raw = binary.LittleEndian.AppendUint32(raw, uint32(b.Lines))
	raw = binary.LittleEndian.AppendUint32(raw, uint32(b.Width))
	raw = binary.LittleEndian.AppendUint64(raw, uint64(tns))
	for _, n := range b.Counts[:b.Lines] {
		raw = binary.LittleEndian.AppendUint64(raw, uint64(n))
	}
	if b.Stride == b.Width {
		raw = append(raw, b.Pix[:b.Lines*b.Width]...)
	} else {
		for i := range b.Lines {
			raw = append(raw, b.Line(i)...)
		}
	}
	c.raw = raw
	frame := append(c.frame[:0], make([]byte, frameHead)...)
	frame = c.enc.EncodeAll(raw, frame)
	payload := frame[frameHead:]
	copy(frame, frameBlock)
	binary.LittleEndian.PutUint32(frame[4:], uint32(len(payload)))
	binary.LittleEndian.PutUint32(frame[8:], crc32.Checksum(payload, castagnoli))
	c.frame = frame
	return c.write(frame)
}

// Close writes the end frame of every camera file, syncs and closes them.
// A recording is complete only after Close returns nil.
func (w *Writer) Close() error { return w.close(true) }

// Abort closes the files without end frames, so that a replay reports the
// recording as truncated. Use it when recording failed.
func (w *Writer) Abort() error { return w.close(false) }

func (w *Writer) close(clean bool) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return fmt.Errorf("recording: %s: %w", w.dir, ErrClosed)
	}
	w.closed = true
	var errs []error
	for _, c := range w.cams {
		c.mu.Lock()
		if clean {
			var end [frameHead]byte
			copy(end[:], frameEnd)
			if err := c.write(end[:]); err != nil {
				errs = append(errs, err)
			} else if err := c.f.Sync(); err != nil {
				errs = append(errs, fmt.Errorf("recording: sync %s: %w", c.path, err))
			}
		}
		if err := c.f.Close(); err != nil && clean {
			errs = append(errs, fmt.Errorf("recording: close %s: %w", c.path, err))
		}
		c.f = nil
		c.enc.Close()
		c.mu.Unlock()
	}
	return errors.Join(errs...)
}

// Record drains every stream of src concurrently, one goroutine per camera,
// into a new recording in dir. It returns when all streams have ended
// (io.EOF), the first error, or ctx is done. On success the recording is
// closed cleanly; on failure it is left without end frames (truncated).
// Record does not close src.
func Record(ctx context.Context, src acquisition.Source, dir string, generator json.RawMessage) error {
	info := src.Info()
	w, err := Create(dir, info, generator)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	streams := src.Streams()
	errs := make([]error, len(streams))
	var wg sync.WaitGroup
	for i, st := range streams {
		wg.Go(func() {
			b := acquisition.NewBlock(max(info.LinesPerBlock, 1), st.Camera().Width)
			for {
				err := st.ReadBlock(ctx, b)
				if errors.Is(err, io.EOF) {
					return
				}
				if err == nil {
					err = w.WriteBlock(b)
				} else {
					err = fmt.Errorf("recording: read camera %d: %w", i, err)
				}
				if err != nil {
					errs[i] = err
					cancel()
					return
				}
			}
		})
	}
	wg.Wait()
	// Prefer the error that caused the others to be cancelled.
	var first error
	for _, err := range errs {
		if err != nil && (first == nil || errors.Is(first, context.Canceled) && !errors.Is(err, context.Canceled)) {
			first = err
		}
	}
	if first != nil {
		w.Abort()
		return first
	}
	return w.Close()
}

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
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/webinspect/webinspect/acquisition"
	"github.com/webinspect/webinspect/internal/boundedfile"
)

// Replay reads a recording. It implements acquisition.Source; its streams
// may be read concurrently, one goroutine per stream.
type Replay struct {
	dir     string
	meta    Meta
	info    acquisition.Info
	opts    ReadOptions
	streams []*replayStream

	paceMu  sync.Mutex
	paceSet bool
	paceRec time.Time // recorded time of the first block delivered
	paceAt  time.Time // wall-clock time it was delivered
}

var _ acquisition.Source = (*Replay)(nil)

// Open opens the recording in dir.
func Open(dir string, opts ReadOptions) (*Replay, error) {
	if opts.Follow < 0 {
		return nil, fmt.Errorf("recording: ReadOptions.Follow = %v: must be >= 0", opts.Follow)
	}
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("recording: open: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("recording: open %s: not a directory: %w", dir, ErrNoRecording)
	}
	metaPath := filepath.Join(dir, MetaFile)
	js, err := readSmallFile(metaPath, maxMetaBytes)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("recording: open %s: no %s: %w", dir, MetaFile, ErrNoRecording)
	}
	if err != nil {
		return nil, fmt.Errorf("recording: open: %w", err)
	}
	r := &Replay{dir: dir, opts: opts}
	if err := json.Unmarshal(js, &r.meta); err != nil {
		return nil, fmt.Errorf("recording: open %s: %w", metaPath, err)
	}
	if r.meta.Format != FormatName {
		return nil, fmt.Errorf("recording: open %s: format %q, want %q: %w", metaPath, r.meta.Format, FormatName, ErrNoRecording)
	}
	if r.meta.Version != Version {
		return nil, fmt.Errorf("recording: open %s: version %d, this reader knows %d: %w", metaPath, r.meta.Version, Version, ErrVersion)
	}
	r.info = r.meta.Info
	// The absolute directory, so that a roll map's source names the
	// recording wherever it is read from (webinspect compare re-runs it).
	r.info.Name = dir
	if abs, err := filepath.Abs(dir); err == nil {
		r.info.Name = abs
	}
	n := len(r.info.Cameras)
	if n == 0 {
		return nil, fmt.Errorf("recording: open %s: no cameras listed: %w", metaPath, ErrCameraMismatch)
	}
	if err := r.info.Validate(); err != nil {
		return nil, fmt.Errorf("recording: open %s: info.%w", metaPath, err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "camera-*.wrec"))
	if len(files) != n {
		return nil, fmt.Errorf("recording: open %s: %s lists %d cameras, found %d camera files: %w", dir, MetaFile, n, len(files), ErrCameraMismatch)
	}
	for i := range n {
		s, err := openStream(r, i)
		if err != nil {
			r.Close()
			return nil, err
		}
		r.streams = append(r.streams, s)
	}
	if opts.Follow == 0 {
		// A file being written may still grow; a finished one is counted.
		for _, s := range r.streams {
			s.frames = s.countFrames()
		}
	}
	return r, nil
}

// countFrames walks the block frame headers of a finished camera file
// from the first frame to the end frame, without reading payloads, and
// returns how many block frames it holds; -1 when the framing ends
// without an end frame or is damaged (reading will report that).
func (s *replayStream) countFrames() int64 {
	var head [frameHead]byte
	size, err := s.size()
	if err != nil {
		return -1
	}
	n := int64(0)
	for off := s.off; off+frameHead <= size; n++ {
		if _, err := s.f.ReadAt(head[:], off); err != nil {
			return -1
		}
		l := binary.LittleEndian.Uint32(head[4:])
		switch {
		case string(head[:4]) == frameEnd && l == 0:
			return n
		case string(head[:4]) != frameBlock || int(l) > s.maxPay:
			return -1
		}
		off += frameHead + int64(l)
	}
	return -1
}

// endedEarly returns ErrEndedEarly, naming the cameras, when s reached its
// end frame after fewer blocks than another camera file holds; else nil.
func (s *replayStream) endedEarly() error {
	for _, o := range s.r.streams {
		if o != s && s.frames >= 0 && o.frames > s.frames {
			return fmt.Errorf("%s: end frame after %d blocks, but camera %d recorded %d: %w",
				s.path, s.frames, o.idx, o.frames, ErrEndedEarly)
		}
	}
	return nil
}

// Info describes the recorded source. Name is the recording's absolute
// directory; the original name is in Meta().Info.Name.
func (r *Replay) Info() acquisition.Info { return r.info }

// Meta returns the content of recording.json.
func (r *Replay) Meta() Meta { return r.meta }

// Streams returns one stream per camera. Every call returns the same streams.
func (r *Replay) Streams() []acquisition.Stream {
	out := make([]acquisition.Stream, len(r.streams))
	for i, s := range r.streams {
		out[i] = s
	}
	return out
}

// Close closes every stream.
func (r *Replay) Close() error {
	var errs []error
	for _, s := range r.streams {
		if err := s.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// pace waits until the wall clock has advanced as far past the first
// delivered block as t is past that block's recorded time.
func (r *Replay) pace(ctx context.Context, stop <-chan struct{}, t time.Time) error {
	r.paceMu.Lock()
	if !r.paceSet {
		r.paceSet, r.paceRec, r.paceAt = true, t, time.Now()
	}
	due := r.paceAt.Add(t.Sub(r.paceRec))
	r.paceMu.Unlock()
	return sleepUntil(ctx, stop, due)
}

// sleepUntil waits until due, ctx is done or stop is closed.
func sleepUntil(ctx context.Context, stop <-chan struct{}, due time.Time) error {
	d := time.Until(due)
	if d <= 0 {
		return nil
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-stop:
		return ErrClosed
	}
}

// replayStream reads one camera file.
type replayStream struct {
	r      *Replay
	idx    int
	path   string
	cam    acquisition.CameraInfo
	maxPay int

	mu      sync.Mutex // held by ReadBlock and Close
	f       *os.File
	dec     *zstd.Decoder
	off     int64 // offset of the next frame
	known   int64 // file size at the last stat; files only grow
	head    [frameHead]byte
	payload []byte // compressed, reused
	raw     []byte // decompressed, reused
	err     error  // sticky: io.EOF, truncation or corruption

	closed    atomic.Bool
	stop      chan struct{}
	prevCount int64 // encoder count of the last line delivered
	havePrev  bool
	lastTime  int64 // time of the last block with one, ns
	closeOnce sync.Once
	frames    int64 // block frames in the file (countFrames); -1: unknown
}

func openStream(r *Replay, i int) (*replayStream, error) {
	path := filepath.Join(r.dir, CameraFile(i))
	f, err := openRegular(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("recording: open %s: %s lists %d cameras, %s is missing: %w", r.dir, MetaFile, len(r.info.Cameras), CameraFile(i), ErrCameraMismatch)
	}
	if err != nil {
		return nil, fmt.Errorf("recording: open: %w", err)
	}
	s := &replayStream{r: r, idx: i, path: path, f: f, stop: make(chan struct{}), frames: -1}
	fail := func(err error) (*replayStream, error) {
		f.Close()
		return nil, err
	}
	ctx := context.Background()
	var pre [len(fileMagic) + 4]byte
	if err := s.readAt(ctx, pre[:], 0); err != nil {
		return fail(err)
	}
	if string(pre[:5]) != fileMagic[:5] || pre[5] != 0 || pre[7] != 0 {
		return fail(fmt.Errorf("recording: open %s: magic %q, want %q: %w", path, pre[:8], fileMagic, ErrBadMagic))
	}
	if pre[6] != Version {
		return fail(fmt.Errorf("recording: open %s: camera file version %d, this reader knows %d: %w", path, pre[6], Version, ErrVersion))
	}
	hl := binary.LittleEndian.Uint32(pre[8:])
	if hl > maxHeader {
		return fail(fmt.Errorf("recording: open %s: header length %d exceeds %d: %w", path, hl, maxHeader, acquisition.ErrCorrupt))
	}
	head := make([]byte, hl)
	if err := s.readAt(ctx, head, int64(len(pre))); err != nil {
		return fail(err)
	}
	if err := json.Unmarshal(head, &s.cam); err != nil {
		return fail(fmt.Errorf("recording: open %s: camera header: %v: %w", path, err, acquisition.ErrCorrupt))
	}
	want := r.info.Cameras[i]
	if s.cam.Index != i || s.cam.Width != want.Width {
		return fail(fmt.Errorf("recording: open %s: header says camera %d of %d px, %s says camera %d of %d px: %w",
			path, s.cam.Index, s.cam.Width, MetaFile, i, want.Width, ErrCameraMismatch))
	}
	if err := s.cam.Validate(); err != nil {
		return fail(fmt.Errorf("recording: open %s: camera header: %w", path, err))
	}
	s.off = int64(len(pre)) + int64(hl)
	s.maxPay = maxPayload(r.info, s.cam.Width)
	s.dec, err = zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(1),
		zstd.WithDecoderMaxMemory(uint64(s.maxPay)*2))
	if err != nil {
		return fail(fmt.Errorf("recording: open %s: zstd: %w", path, err))
	}
	return s, nil
}

// Camera describes the stream's camera, from the camera file's header.
func (s *replayStream) Camera() acquisition.CameraInfo { return s.cam }

// Close closes the camera file. A ReadBlock waiting for data or pacing
// returns ErrClosed.
func (s *replayStream) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		close(s.stop)
		s.mu.Lock()
		defer s.mu.Unlock()
		err = s.f.Close()
		if s.dec != nil {
			s.dec.Close()
		}
	})
	return err
}

// ReadBlock delivers the next recorded block. See acquisition.Stream. After
// the last complete frame of a file without an end frame it returns an
// error wrapping acquisition.ErrTruncated; for a frame that fails its CRC
// or cannot be decoded, one wrapping acquisition.ErrCorrupt. Both name the
// file and the byte offset, and are returned again by later calls.
func (s *replayStream) ReadBlock(ctx context.Context, dst *acquisition.Block) error {
	if s.closed.Load() {
		return fmt.Errorf("recording: %s: %w", s.path, ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		return fmt.Errorf("recording: %s: %w", s.path, ErrClosed)
	}
	if s.err != nil {
		return s.err
	}
	t, err := s.next(ctx, dst)
	if errors.Is(err, io.EOF) {
		if early := s.endedEarly(); early != nil {
			err = early
		}
	}
	if err != nil {
		if isFinal(err) {
			s.err = err
		}
		return err
	}
	if s.r.opts.Realtime {
		if err := s.r.pace(ctx, s.stop, t); err != nil {
			return err
		}
	}
	return nil
}

// isFinal reports whether err ends the stream for good.
func isFinal(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, acquisition.ErrTruncated) || errors.Is(err, acquisition.ErrCorrupt)
}

// next reads, checks and decodes the frame at s.off into dst, and returns
// the block's time.
func (s *replayStream) next(ctx context.Context, dst *acquisition.Block) (time.Time, error) {
	off := s.off
	if err := s.readAt(ctx, s.head[:], off); err != nil {
		return time.Time{}, err
	}
	magic := string(s.head[:4])
	l := binary.LittleEndian.Uint32(s.head[4:])
	sum := binary.LittleEndian.Uint32(s.head[8:])
	switch {
	case magic == frameEnd && l == 0:
		return time.Time{}, io.EOF
	case magic != frameBlock:
		return time.Time{}, fmt.Errorf("recording: %s: frame at byte %d: magic %q, want %q or %q: %w", s.path, off, s.head[:4], frameBlock, frameEnd, acquisition.ErrCorrupt)
	case int(l) > s.maxPay:
		return time.Time{}, fmt.Errorf("recording: %s: frame at byte %d: payload length %d exceeds %d: %w", s.path, off, l, s.maxPay, acquisition.ErrCorrupt)
	}
	if cap(s.payload) < int(l) {
		s.payload = make([]byte, l)
	}
	payload := s.payload[:l]
	if err := s.readAt(ctx, payload, off+frameHead); err != nil {
		return time.Time{}, err
	}
	if got := crc32.Checksum(payload, castagnoli); got != sum {
		return time.Time{}, fmt.Errorf("recording: %s: frame at byte %d: CRC-32C %08x, header says %08x: %w", s.path, off, got, sum, acquisition.ErrCorrupt)
	}
	raw, err := s.dec.DecodeAll(payload, s.raw[:0])
	if err != nil {
		return time.Time{}, fmt.Errorf("recording: %s: frame at byte %d: zstd: %v: %w", s.path, off, err, acquisition.ErrCorrupt)
	}
	s.raw = raw
	bad := func(what string, args ...any) (time.Time, error) {
		return time.Time{}, fmt.Errorf("recording: %s: frame at byte %d: %s: %w", s.path, off, fmt.Sprintf(what, args...), acquisition.ErrCorrupt)
	}
	if len(raw) < blockHead {
		return bad("block of %d bytes is shorter than its %d-byte header", len(raw), blockHead)
	}
	first := int64(binary.LittleEndian.Uint64(raw))
	lines := int(binary.LittleEndian.Uint32(raw[8:]))
	width := int(binary.LittleEndian.Uint32(raw[12:]))
	tns := int64(binary.LittleEndian.Uint64(raw[16:]))
	if width != s.cam.Width {
		return bad("block width %d, camera is %d px wide", width, s.cam.Width)
	}
	if want := blockHead + lines*(8+width); lines <= 0 || len(raw) != want {
		return bad("block of %d lines x %d px is %d bytes, want %d", lines, width, len(raw), want)
	}
	if dst.Stride == 0 && len(dst.Pix) > 0 {
		dst.Stride = width
	}
	if dst.Stride < width || dst.Cap() < lines {
		return time.Time{}, fmt.Errorf("recording: %s: block holds %d lines of stride %d, frame at byte %d has %d lines of %d px: %w",
			s.path, dst.Cap(), dst.Stride, off, lines, width, acquisition.ErrBlockTooSmall)
	}
	dst.Camera = s.idx
	dst.FirstLine = first
	dst.Lines = lines
	dst.Width = width
	dst.Time = time.Time{}
	if tns != 0 {
		dst.Time = time.Unix(0, tns)
	}
	if tns != 0 && (tns < minBlockTime || tns > maxBlockTime) {
		return bad("block time %d ns since 1970 is outside 2000..2100", tns)
	}
	if tns != 0 && s.lastTime != 0 && (tns < s.lastTime || tns-s.lastTime > maxBlockGap) {
		return bad("block time steps from %d to %d ns: blocks of a camera go forwards, at most %v apart", s.lastTime, tns, time.Duration(maxBlockGap))
	}
	counts := raw[blockHead:]
	for i := range lines {
		c := int64(binary.LittleEndian.Uint64(counts[8*i:]))
		if err := s.r.info.CheckCount(s.prevCount, s.havePrev, c); err != nil {
			return bad("line %d: %v", first+int64(i), err)
		}
		dst.Counts[i] = c
		s.prevCount, s.havePrev = c, true
	}
	if tns != 0 {
		s.lastTime = tns
	}
	pix := raw[blockHead+8*lines:]
	if dst.Stride == width {
		copy(dst.Pix, pix)
	} else {
		for i := range lines {
			copy(dst.Line(i), pix[i*width:(i+1)*width])
		}
	}
	s.off = off + frameHead + int64(l)
	return dst.Time, nil
}

// readAt fills p from offset off. When the file is too short it waits for
// it to grow if following; otherwise, or once it has not grown for
// Follow, it returns an error wrapping acquisition.ErrTruncated.
func (s *replayStream) readAt(ctx context.Context, p []byte, off int64) error {
	end := off + int64(len(p))
	size := s.known
	if size < end {
		var err error
		if size, err = s.size(); err != nil {
			return err
		}
	}
	if size < end && s.r.opts.Follow > 0 {
		poll := min(max(s.r.opts.Follow/20, time.Millisecond), 50*time.Millisecond)
		lastSize, grew := size, time.Now()
		for size < end {
			if time.Since(grew) >= s.r.opts.Follow {
				break
			}
			if err := sleepUntil(ctx, s.stop, time.Now().Add(poll)); err != nil {
				if errors.Is(err, ErrClosed) {
					return fmt.Errorf("recording: %s: %w", s.path, ErrClosed)
				}
				return err
			}
			var err error
			if size, err = s.size(); err != nil {
				return err
			}
			if size != lastSize {
				lastSize, grew = size, time.Now()
			}
		}
	}
	if size < end {
		if size <= off {
			return fmt.Errorf("recording: %s: file ends at byte %d without an end frame: %w", s.path, size, acquisition.ErrTruncated)
		}
		return fmt.Errorf("recording: %s: file ends at byte %d, inside the frame or header at byte %d (needs bytes up to %d): %w",
			s.path, size, off, end, acquisition.ErrTruncated)
	}
	n, err := s.f.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		// The file shrank under us.
		return fmt.Errorf("recording: %s: short read of %d bytes at byte %d: %w", s.path, n, off, acquisition.ErrTruncated)
	}
	return fmt.Errorf("recording: read %s at byte %d: %w", s.path, off, err)
}

// size returns the file's current size and remembers it in s.known.
func (s *replayStream) size() (int64, error) {
	st, err := s.f.Stat()
	if err != nil {
		return 0, fmt.Errorf("recording: stat %s: %w", s.path, err)
	}
	s.known = st.Size()
	return s.known, nil
}

// Bounds on what a recording may say (see also acquisition's limits).
const (
	maxMetaBytes = 1 << 20                         // recording.json
	minBlockTime = 946684800 * int64(time.Second)  // 2000-01-01
	maxBlockTime = 4102444800 * int64(time.Second) // 2100-01-01
	// maxBlockGap is the longest a recorded line may stand still between
	// two blocks: a day (a replay in real time waits that long).
	maxBlockGap = int64(24 * time.Hour)
)

// openRegular opens path for reading only if it is a regular file (after
// symlinks): a FIFO would block the open and every read, and a device such
// as /dev/zero never ends. Anything else is ErrCorrupt.
func openRegular(path string) (*os.File, error) {
	f, err := boundedfile.Open(path)
	return f, corruptIfNotRegular(err)
}

// readSmallFile reads a regular file of at most limit bytes.
func readSmallFile(path string, limit int64) ([]byte, error) {
	b, err := boundedfile.Read(path, limit)
	return b, corruptIfNotRegular(err)
}

func corruptIfNotRegular(err error) error {
	if errors.Is(err, boundedfile.ErrNotRegular) {
		return fmt.Errorf("%w: %w", err, acquisition.ErrCorrupt)
	}
	return err
}

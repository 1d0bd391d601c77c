package archive

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/webinspect/webinspect/internal/dirlock"
)

var (
	// ErrInvalid is returned (wrapped) by Options.Validate and Open for an
	// option out of range, and by Put for a malformed Crop.
	ErrInvalid = errors.New("archive: invalid argument")
	// ErrBadRef is returned (wrapped) by ValidRef and Archive.Open for a
	// ref that is not 64 lowercase hex characters followed by ".png".
	ErrBadRef = errors.New("archive: bad image ref")
	// ErrNotFound is returned (wrapped) by Archive.Open when no image has
	// the ref: never written, lost to a full disk, or deleted by retention.
	ErrNotFound = errors.New("archive: image not found")
	// ErrQueueFull is returned by Put when the write queue is full; the
	// crop is not archived.
	ErrQueueFull = errors.New("archive: write queue full")
	// ErrStopped is returned by Put while archiving is stopped by a full
	// disk (ENOSPC, EDQUOT or free space below Options.MinFreeBytes).
	ErrStopped = errors.New("archive: stopped, disk full")
	// ErrClosed is returned by Put after Close, and by a second Close.
	ErrClosed = errors.New("archive: closed")
)

// Skip reasons: the values of the reason label of
// webinspect_images_skipped_total.
const (
	ReasonQueueFull  = "queue_full"  // Put found the write queue full
	ReasonDiskFull   = "disk_full"   // stopped: ENOSPC, EDQUOT or free space below MinFreeBytes
	ReasonWriteError = "write_error" // any other error writing the file
	ReasonClosed     = "closed"      // Put after Close
	ReasonInvalid    = "invalid"     // malformed Crop
)

// maxSide bounds a crop's width and height, so that one IDAT chunk (at
// most 2^31-1 bytes) holds any crop even uncompressed.
const maxSide = 8192

// resumeMargin is how much free space must grow after a stop, without a
// sweep having deleted anything, before a stopped archive resumes.
const resumeMargin = 64 << 10

// Crop is an 8-bit grayscale image in the layout of image.Gray: pixel (x, y)
// is Pix[y*Stride+x]. Put reads Pix only during the call; the caller keeps
// ownership and may reuse it at once.
type Crop struct {
	W, H   int // 1 to 8192 each
	Stride int // ≥ W
	Pix    []uint8
}

func (c Crop) validate() error {
	switch {
	case c.W < 1 || c.W > maxSide || c.H < 1 || c.H > maxSide:
		return fmt.Errorf("%w: crop %d×%d, want 1 to %d each", ErrInvalid, c.W, c.H, maxSide)
	case c.Stride < c.W:
		return fmt.Errorf("%w: crop stride %d < width %d", ErrInvalid, c.Stride, c.W)
	case len(c.Pix) < (c.H-1)*c.Stride+c.W:
		return fmt.Errorf("%w: crop %d×%d stride %d needs %d pixels, have %d", ErrInvalid, c.W, c.H, c.Stride, (c.H-1)*c.Stride+c.W, len(c.Pix))
	}
	return nil
}

// SkipCounts counts crops not archived, by reason (see the Reason constants).
type SkipCounts struct {
	QueueFull  uint64 `json:"queue_full"`
	DiskFull   uint64 `json:"disk_full"`
	WriteError uint64 `json:"write_error"`
	Closed     uint64 `json:"closed"`
	Invalid    uint64 `json:"invalid"`
}

// Stats is a snapshot of an Archive.
type Stats struct {
	Root          string     `json:"root"`
	Bytes         int64      `json:"bytes"`  // sum of file sizes in the index
	Files         int        `json:"files"`  // files in the index
	Queued        int        `json:"queued"` // crops accepted by Put and not yet written or dropped
	Written       uint64     `json:"written"`
	Deduplicated  uint64     `json:"deduplicated"`
	DeletedAge    uint64     `json:"deleted_age"`
	DeletedBudget uint64     `json:"deleted_budget"`
	Skipped       SkipCounts `json:"skipped"`
	Stopped       bool       `json:"stopped"`
	StoppedReason string     `json:"stopped_reason,omitempty"` // why, with the error or the free bytes
	StoppedSince  time.Time  `json:"stopped_since,omitzero"`
	FreeBytes     int64      `json:"free_bytes"` // at the last statfs; -1 if unknown
}

// Archive is a directory of crop images. Put, Open and Stats may be called
// from any goroutine.
type Archive struct {
	root string
	lock *dirlock.Lock // the root's writer lock, held until Close
	opts Options
	log  zerolog.Logger
	m    metrics
	h    hooks

	queue chan job
	kick  chan struct{} // cap 1: ask the sweeper for a sweep now
	room  chan struct{} // cap 1: the writer took a job (PutWait waits on it)
	done  chan struct{} // closed by Close after the writer drained
	wg    sync.WaitGroup

	scratch sync.Pool // *encodeScratch

	stopped  atomic.Bool // mirrors st.stopped for Put's fast path
	closed   atomic.Bool
	inflight atomic.Int64
	lastLog  atomic.Int64 // unix nanos of the last rate-limited log

	written, dedup, delAge, delBudget                          atomic.Uint64
	skQueueFull, skDiskFull, skWriteError, skClosed, skInvalid atomic.Uint64

	// fsMu serialises changes to the tree: the writer holds it for one
	// file, the sweeper for one deletion. Put and Open never take it.
	fsMu sync.Mutex

	// mu guards the in-memory state below; held only briefly, never
	// across a system call.
	mu       sync.Mutex
	isClosed bool
	index    map[[32]byte]*entry
	lru      list // oldest first
	total    int64
	prefixN  [256]int32
	pending  map[[32]byte]pendingRef
	st       stopState
	free     int64
}

type job struct {
	sum  [32]byte
	data []byte
}

type pendingRef struct {
	data []byte
	n    int32
}

type stopState struct {
	stopped    bool
	reason     string
	since      time.Time
	freeAtStop int64
	freedSince int64 // bytes deleted by sweeps since the stop
}

// hooks are the archive's seams to the clock and the filesystem; tests
// replace them (a fake clock; a disk that fills when mounting a tmpfs is
// not allowed).
type hooks struct {
	now       func() time.Time
	statfs    func(path string) (free int64, err error)
	writeTemp func(name string, data []byte, sync bool) error
}

func defaultHooks() hooks {
	return hooks{now: time.Now, statfs: statfsFree, writeTemp: writeTempFile}
}

// Open opens (creating it if needed) the archive at root, scans its files
// into the index and starts the writer and the sweeper. reg may be nil.
func Open(root string, o Options, log zerolog.Logger, reg prometheus.Registerer) (*Archive, error) {
	return open(root, o, log, reg, defaultHooks())
}

func open(root string, o Options, log zerolog.Logger, reg prometheus.Registerer, h hooks) (*Archive, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if root == "" {
		return nil, fmt.Errorf("%w: empty root", ErrInvalid)
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("archive: create root: %w", err)
	}
	lock, err := dirlock.Acquire(root, "image archive")
	if err != nil {
		return nil, fmt.Errorf("archive: %w", err)
	}
	m, err := newMetrics(reg)
	if err != nil {
		lock.Release()
		return nil, fmt.Errorf("archive: %w", err)
	}
	a := &Archive{
		lock:    lock,
		root:    root,
		opts:    o,
		log:     log.With().Str("component", "image_archive").Logger(),
		m:       m,
		h:       h,
		queue:   make(chan job, o.Queue),
		kick:    make(chan struct{}, 1),
		room:    make(chan struct{}, 1),
		done:    make(chan struct{}),
		index:   map[[32]byte]*entry{},
		pending: map[[32]byte]pendingRef{},
		free:    -1,
	}
	a.scratch.New = func() any { return new(encodeScratch) }
	t0 := time.Now()
	if err := a.scan(); err != nil {
		lock.Release()
		return nil, err
	}
	a.m.bytes.Set(float64(a.total))
	a.m.files.Set(float64(len(a.index)))
	a.m.stopped.Set(0)
	a.log.Info().Str("root", root).Int("files", len(a.index)).Int64("bytes", a.total).
		Dur("scan", time.Since(t0)).Msg("image archive opened")
	if free, err := a.h.statfs(root); err == nil {
		a.free = free
		if o.MinFreeBytes > 0 && free < o.MinFreeBytes {
			a.stop(fmt.Sprintf("free space %d bytes below Options.MinFreeBytes %d", free, o.MinFreeBytes), free, nil)
		}
	}
	a.wg.Add(2)
	go a.writer()
	go a.sweeper()
	a.kick <- struct{}{} // apply retention to what the scan found
	return a, nil
}

// Put encodes c as PNG, hashes it and queues it for writing; it returns the
// image's ref at once. It never blocks: when the queue is full, archiving
// is stopped or the archive is closed it returns "" and ErrQueueFull,
// ErrStopped or ErrClosed, counting the skip; a malformed crop gives
// ErrInvalid. Put does not keep c.Pix. The encoding runs on the caller's
// goroutine (see BenchmarkEncode); any number of goroutines may call Put.
func (a *Archive) Put(c Crop) (string, error) { return a.put(c, 0) }

// PutWait is Put for a caller that may wait (a replay, whose source waits
// for the engine): when the write queue is full it waits up to timeout
// for room instead of skipping the crop, and returns ErrQueueFull only
// when the writer has not made room by then. Stopped and closed archives
// answer at once, as in Put.
func (a *Archive) PutWait(c Crop, timeout time.Duration) (string, error) { return a.put(c, timeout) }

func (a *Archive) put(c Crop, wait time.Duration) (string, error) {
	switch {
	case a.closed.Load():
		a.skip(ReasonClosed)
		return "", ErrClosed
	case a.stopped.Load():
		a.skip(ReasonDiskFull)
		return "", ErrStopped
	case wait == 0 && len(a.queue) == cap(a.queue):
		a.queueFull()
		return "", ErrQueueFull
	}
	if err := c.validate(); err != nil {
		a.skip(ReasonInvalid)
		return "", err
	}
	data, err := a.encode(c)
	if err != nil {
		a.skip(ReasonInvalid)
		return "", err
	}
	sum := sha256.Sum256(data)

	var deadline time.Time
	for {
		a.mu.Lock()
		switch {
		case a.isClosed:
			a.mu.Unlock()
			a.skip(ReasonClosed)
			return "", ErrClosed
		case a.st.stopped:
			a.mu.Unlock()
			a.skip(ReasonDiskFull)
			return "", ErrStopped
		}
		p, ok := a.pending[sum]
		if !ok {
			p.data = data
		}
		a.inflight.Add(1) // before the send: the writer may finish the job first
		select {
		case a.queue <- job{sum: sum, data: p.data}:
			p.n++
			a.pending[sum] = p
			a.mu.Unlock()
			return refOf(sum), nil
		default:
			a.mu.Unlock()
			a.inflight.Add(-1)
		}
		// Full. The send happens only under mu (Close closes the queue
		// under mu), so waiting is done outside it, on the writer's
		// signal that it took a job, and the send is tried again.
		if deadline.IsZero() {
			deadline = time.Now().Add(wait)
		}
		left := time.Until(deadline)
		if wait == 0 || left <= 0 {
			a.queueFull()
			return "", ErrQueueFull
		}
		t := time.NewTimer(min(left, 50*time.Millisecond)) // a signal taken by another waiter is not waited for long
		select {
		case <-a.room:
		case <-t.C:
		case <-a.done:
		}
		t.Stop()
	}
}

// encodeScratch is one Put's reusable encoder state.
type encodeScratch struct {
	buf bytes.Buffer
	enc grayPNG
}

// encode returns the PNG bytes of c in a new slice of exactly their length
// (it becomes the queued job's and the pending map's, immutable).
func (a *Archive) encode(c Crop) ([]byte, error) {
	s := a.scratch.Get().(*encodeScratch)
	defer a.scratch.Put(s)
	s.buf.Reset()
	if err := s.enc.encode(&s.buf, c, a.opts.Compression); err != nil {
		return nil, fmt.Errorf("archive: encode %d×%d crop: %w", c.W, c.H, err)
	}
	return bytes.Clone(s.buf.Bytes()), nil
}

// Open returns the image with the given ref: its file, or its bytes while
// it waits for the writer. The result also implements io.Seeker (for
// http.ServeContent); its content is immutable (the name is its hash).
func (a *Archive) Open(ref string) (io.ReadCloser, error) {
	if err := ValidRef(ref); err != nil {
		return nil, err
	}
	var sum [32]byte
	_, _ = hex.Decode(sum[:], []byte(ref[:64]))
	a.mu.Lock()
	p, ok := a.pending[sum]
	a.mu.Unlock()
	if ok {
		return bytesFile{bytes.NewReader(p.data)}, nil
	}
	f, err := os.Open(a.path(ref))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s", ErrNotFound, ref)
		}
		return nil, fmt.Errorf("archive: open image %s: %w", ref, err)
	}
	return f, nil
}

type bytesFile struct{ *bytes.Reader }

func (bytesFile) Close() error { return nil }

// ValidRef reports whether ref is an image ref: 64 lowercase hex
// characters (a SHA-256) followed by ".png". It wraps ErrBadRef.
func ValidRef(ref string) error {
	if len(ref) != 68 || ref[64:] != ".png" {
		return fmt.Errorf("%w: %q, want 64 lowercase hex chars + \".png\"", ErrBadRef, ref)
	}
	for i := 0; i < 64; i++ {
		if c := ref[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return fmt.Errorf("%w: %q, want 64 lowercase hex chars + \".png\"", ErrBadRef, ref)
		}
	}
	return nil
}

// Path returns where the file of ref is, or would be, stored. ref must be
// valid (see ValidRef).
func (a *Archive) Path(ref string) string { return a.path(ref) }

func (a *Archive) path(ref string) string { return filepath.Join(a.root, ref[:2], ref) }

func refOf(sum [32]byte) string {
	var b [68]byte
	hex.Encode(b[:64], sum[:])
	copy(b[64:], ".png")
	return string(b[:])
}

// Close stops accepting crops, writes every crop already queued (unless
// archiving is stopped) and stops the sweeper. Open keeps working after
// Close. A second Close returns ErrClosed.
func (a *Archive) Close() error {
	a.mu.Lock()
	if a.isClosed {
		a.mu.Unlock()
		return ErrClosed
	}
	a.isClosed = true
	a.closed.Store(true)
	close(a.queue) // Put sends only under mu after checking isClosed
	a.mu.Unlock()
	close(a.done) // the sweeper returns; the writer drains the queue
	a.wg.Wait()
	return a.lock.Release()
}

// Stats returns a snapshot of the archive's counters and state.
func (a *Archive) Stats() Stats {
	a.mu.Lock()
	s := Stats{
		Root: a.root, Bytes: a.total, Files: len(a.index), FreeBytes: a.free,
		Stopped: a.st.stopped, StoppedReason: a.st.reason, StoppedSince: a.st.since,
	}
	a.mu.Unlock()
	s.Queued = int(a.inflight.Load())
	s.Written, s.Deduplicated = a.written.Load(), a.dedup.Load()
	s.DeletedAge, s.DeletedBudget = a.delAge.Load(), a.delBudget.Load()
	s.Skipped = SkipCounts{
		QueueFull: a.skQueueFull.Load(), DiskFull: a.skDiskFull.Load(), WriteError: a.skWriteError.Load(),
		Closed: a.skClosed.Load(), Invalid: a.skInvalid.Load(),
	}
	return s
}

func (a *Archive) skip(reason string) {
	switch reason {
	case ReasonQueueFull:
		a.skQueueFull.Add(1)
		a.m.skQueueFull.Inc()
	case ReasonDiskFull:
		a.skDiskFull.Add(1)
		a.m.skDiskFull.Inc()
	case ReasonWriteError:
		a.skWriteError.Add(1)
		a.m.skWriteError.Inc()
	case ReasonClosed:
		a.skClosed.Add(1)
		a.m.skClosed.Inc()
	case ReasonInvalid:
		a.skInvalid.Add(1)
		a.m.skInvalid.Inc()
	}
}

func (a *Archive) queueFull() {
	a.skip(ReasonQueueFull)
	if a.logAllowed() {
		a.log.Warn().Str("root", a.root).Int("queue", cap(a.queue)).Uint64("skipped_total", a.skQueueFull.Load()).
			Msg("image archive write queue full; defects recorded without images")
	}
}

// logAllowed rate-limits repeated warnings to one per 10 s.
func (a *Archive) logAllowed() bool {
	now := time.Now().UnixNano()
	last := a.lastLog.Load()
	return now-last >= int64(10*time.Second) && a.lastLog.CompareAndSwap(last, now)
}

package u3v

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/webinspect/webinspect/acquisition"
)

// ReasonFrameLost is the LostLines reason for lines of a lost camera frame.
const ReasonFrameLost = "camera-frame-lost"

// StreamOptions configures a camera stream.
type StreamOptions struct {
	// Camera is the camera's index and geometry in the source. Width must
	// be the camera's Width feature: frames of another width are an error.
	Camera acquisition.CameraInfo
	// CountsPerLine is the trigger divider k: the camera takes one line
	// every k encoder counts.
	CountsPerLine int
	// EncoderChunkID is the chunk ID of ChunkEncoderValue in the device
	// XML (0: the camera sends none). With it, a frame's first line gets
	// the chunk's count (its data: a little-endian int64, or int32); the
	// frame's other lines follow every CountsPerLine counts. Without it,
	// line n of the stream gets count n*CountsPerLine.
	EncoderChunkID uint32
	// PayloadSize is the bytes per block when the SIRM says 0 (the node
	// map's PayloadSize; 0 lets Width*Height*bytes per pixel decide).
	PayloadSize int64
	// Height is the lines per frame (the Height feature), used with Width
	// and PixelFormat when neither the SIRM nor PayloadSize give the size.
	Height      int
	PixelFormat uint32
	// MaxTransfer is the largest payload transfer in bytes (default 1 MiB).
	MaxTransfer int
	// Log receives lost frames and block counter restarts (nil: silent).
	Log *zerolog.Logger
}

// Validate names the bad field.
func (o StreamOptions) Validate() error {
	switch {
	case o.Camera.Width <= 0 || o.Camera.Width > maxSizeX:
		return fmt.Errorf("u3v: StreamOptions.Camera.Width %d outside [1, %d]", o.Camera.Width, maxSizeX)
	case o.CountsPerLine <= 0 || o.CountsPerLine > 1<<20:
		return fmt.Errorf("u3v: StreamOptions.CountsPerLine %d outside [1, %d]", o.CountsPerLine, 1<<20)
	case o.PayloadSize < 0 || o.PayloadSize > maxPayloadSize:
		return fmt.Errorf("u3v: StreamOptions.PayloadSize %d outside [0, %d]", o.PayloadSize, maxPayloadSize)
	case o.Height < 0 || o.Height > maxSizeY:
		return fmt.Errorf("u3v: StreamOptions.Height %d outside [0, %d]", o.Height, maxSizeY)
	case o.MaxTransfer < 0 || o.MaxTransfer > 64<<20:
		return fmt.Errorf("u3v: StreamOptions.MaxTransfer %d outside [0, %d]", o.MaxTransfer, 64<<20)
	}
	return nil
}

// Stats are a camera stream's counters.
type Stats struct {
	Frames     uint64  `json:"frames"`      // complete frames delivered
	LostFrames uint64  `json:"lost_frames"` // frames lost: incomplete, stalled, or missing from the block IDs
	Lines      uint64  `json:"lines"`       // lines delivered
	LostLines  uint64  `json:"lost_lines"`  // lines of the lost frames
	Stalls     uint64  `json:"stalls"`      // stream endpoint halts cleared
	LineRate   float64 `json:"line_rate"`   // lines per second over the last second or more
}

// Stream is one U3V camera's line stream (acquisition.Stream). ReadBlock
// is used from one goroutine; Stats and Close from any.
type Stream struct {
	dev  *Device
	opt  StreamOptions
	rx   *receiver
	sirm uint64

	// line state, owned by the ReadBlock goroutine
	nextLine  int64  // sequence number of the next line (delivered or lost)
	lastID    uint64 // block ID of the last good frame
	started   bool   // a good frame has been seen
	lastCount int64  // encoder count of the last delivered line
	lost      acquisition.LostLines
	lostWhy   string
	frame     []uint8 // converted lines of the current frame
	counts    []int64
	lines     int       // lines in frame
	off       int       // lines of frame already delivered
	firstLine int64     // sequence number of frame line 0
	ftime     time.Time // arrival of the frame

	stop   func() error    // AcquisitionStop, run by Close (nil: none)
	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	readMu sync.Mutex // held by ReadBlock; Close waits on it

	mu     sync.Mutex
	stats  Stats
	rateT  time.Time
	rateN  uint64
	closed bool
}

// OpenStream sets up the stream interface (SIRM) and enables it. Start the
// camera's acquisition (AcquisitionStart) after this.
func (d *Device) OpenStream(opt StreamOptions) (*Stream, error) {
	if err := opt.Validate(); err != nil {
		return nil, err
	}
	if opt.MaxTransfer == 0 {
		opt.MaxTransfer = defaultMaxXfer
	}
	if d.usb.StreamIntf < 0 || d.sbrm.NumStreams == 0 || d.sbrm.SIRMAddr == 0 {
		return nil, fmt.Errorf("%w: device has no streaming interface", ErrUnsupported)
	}
	addr := d.sbrm.SIRMAddr
	if err := setStreamEnable(d.ctrl, addr, false); err != nil {
		return nil, fmt.Errorf("u3v: disabling stream: %w", err)
	}
	regs, err := readSIRM(d.ctrl, addr)
	if err != nil {
		return nil, err
	}
	payload := regs.ReqPayload
	if payload == 0 {
		payload, err = opt.payloadSize()
		if err != nil {
			return nil, err
		}
	}
	align := max(1<<regs.AlignShift, d.usb.StreamIn.MaxPacketSize)
	p, err := makePlan(payload, regs.ReqLeader, regs.ReqTrailer, align, opt.MaxTransfer)
	if err != nil {
		return nil, err
	}
	if err := writePlan(d.ctrl, addr, p); err != nil {
		return nil, err
	}
	if err := setStreamEnable(d.ctrl, addr, true); err != nil {
		return nil, fmt.Errorf("u3v: enabling stream: %w", err)
	}
	s := &Stream{dev: d, opt: opt, rx: newReceiver(d.dev, d.usb.StreamIn.Addr, p), sirm: addr}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s, nil
}

// payloadSize is the block size when the SIRM gives none.
func (o StreamOptions) payloadSize() (uint64, error) {
	if o.PayloadSize > 0 {
		return uint64(o.PayloadSize), nil
	}
	lb, err := lineBytes(o.PixelFormat, o.Camera.Width)
	if err != nil || o.Height == 0 {
		return 0, fmt.Errorf("%w: SIRM has no required payload size and StreamOptions give neither PayloadSize nor Height/PixelFormat (%v)", ErrUnsupported, err)
	}
	return uint64(lb * o.Height), nil
}

// Camera describes this stream's camera.
func (s *Stream) Camera() acquisition.CameraInfo { return s.opt.Camera }

// Stats returns the stream's counters.
func (s *Stream) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Stalls = s.rx.statsStalls()
	return st
}

// ReadBlock fills dst with the next lines, at most one frame's worth; a
// frame larger than dst is delivered over several blocks. Lines of frames
// the camera lost are reported in dst.Lost of the first block after them,
// and dst.FirstLine jumps past them. It returns io.EOF once the stream is
// closed.
func (s *Stream) ReadBlock(ctx context.Context, dst *acquisition.Block) error {
	s.readMu.Lock()
	defer s.readMu.Unlock()
	if s.isClosed() {
		return io.EOF
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(s.ctx, cancel)()
	if dst.Cap() == 0 || dst.Stride < s.opt.Camera.Width {
		return fmt.Errorf("%w: block of %d lines, stride %d for width %d", acquisition.ErrBlockTooSmall, dst.Cap(), dst.Stride, s.opt.Camera.Width)
	}
	for s.off >= s.lines {
		if err := s.nextFrame(ctx); err != nil {
			if s.ctx.Err() != nil {
				return io.EOF
			}
			return err
		}
	}
	n := min(dst.Cap(), s.lines-s.off)
	w := s.opt.Camera.Width
	for i := range n {
		copy(dst.Pix[i*dst.Stride:i*dst.Stride+w], s.frame[(s.off+i)*w:])
	}
	copy(dst.Counts, s.counts[s.off:s.off+n])
	dst.Camera = s.opt.Camera.Index
	dst.FirstLine = s.firstLine + int64(s.off)
	dst.Lines = n
	dst.Width = w
	dst.Time = s.ftime
	dst.Lost = s.lost
	s.lost = acquisition.LostLines{}
	s.off += n
	return nil
}

// nextFrame receives frames until one is complete, accounting for the
// frames lost on the way.
func (s *Stream) nextFrame(ctx context.Context) error {
	for {
		f, err := s.rx.next(ctx)
		var fl *frameLost
		if errors.As(err, &fl) {
			s.lostWhy = fl.Reason
			continue // the block ID gap at the next good frame counts it
		}
		if err != nil {
			return err
		}
		if err := s.accept(f); err != nil {
			var fl *frameLost
			if errors.As(err, &fl) {
				s.lostWhy = fl.Reason
				continue
			}
			return err
		}
		return nil
	}
}

// accept converts a complete frame into lines and counts.
func (s *Stream) accept(f rawFrame) error {
	l := f.Leader
	w := s.opt.Camera.Width
	if int(l.SizeX) != w {
		return fmt.Errorf("%w: frame of %d pixels per line, camera configured for %d", ErrUnsupported, l.SizeX, w)
	}
	lb, err := lineBytes(l.PixelFormat, w)
	if err != nil {
		return err
	}
	lines := int(l.SizeY)
	stride := lb + int(l.PaddingX)
	if f.Trailer.HasSizeY && int(f.Trailer.SizeY) < lines || len(f.Payload) < stride*(lines-1)+lb {
		return &frameLost{Leader: l, HasLeader: true, Reason: fmt.Sprintf("short payload: %d bytes for %d lines of %d", len(f.Payload), lines, stride)}
	}
	first, hasCount, err := s.frameCount(f)
	if err != nil {
		return &frameLost{Leader: l, HasLeader: true, Reason: err.Error()}
	}
	s.account(l.BlockID, lines, first, hasCount)
	if cap(s.frame) < lines*w {
		s.frame = make([]uint8, lines*w)
		s.counts = make([]int64, lines)
	}
	s.frame, s.counts = s.frame[:lines*w], s.counts[:lines]
	for i := range lines {
		to8(s.frame[i*w:(i+1)*w], f.Payload[i*stride:], l.PixelFormat)
	}
	k := int64(s.opt.CountsPerLine)
	if !hasCount {
		first = s.nextLine * k
	}
	for i := range s.counts {
		s.counts[i] = first + int64(i)*k
	}
	s.firstLine, s.lines, s.off, s.ftime = s.nextLine, lines, 0, time.Now()
	s.nextLine += int64(lines)
	s.lastCount = s.counts[lines-1]
	s.count(lines)
	return nil
}

// frameCount reads ChunkEncoderValue (the count of the frame's first
// line) when the stream has one.
func (s *Stream) frameCount(f rawFrame) (int64, bool, error) {
	if s.opt.EncoderChunkID == 0 || !hasChunks(f.Leader.PayloadType) {
		return 0, false, nil
	}
	c, err := findChunk(f.Payload, s.opt.EncoderChunkID)
	switch {
	case err != nil:
		return 0, false, err
	case len(c) == 8:
		return int64(binary.LittleEndian.Uint64(c)), true, nil
	case len(c) == 4:
		return int64(int32(binary.LittleEndian.Uint32(c))), true, nil
	case c == nil:
		return 0, false, nil
	}
	return 0, false, fmt.Errorf("%w: encoder chunk of %d bytes", ErrMalformed, len(c))
}

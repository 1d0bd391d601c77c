package gige

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"sync/atomic"
	"time"

	"github.com/webinspect/webinspect/acquisition"
	"github.com/webinspect/webinspect/acquisition/gige/wire"
	"github.com/webinspect/webinspect/acquisition/pfnc"
)

// ReasonFrameLost is the LostLines reason for lines of a camera frame that
// never arrived complete.
const ReasonFrameLost = "camera-frame-lost"

// LineOptions configure a line-scan stream.
type LineOptions struct {
	// Camera describes the camera; Camera.Width must equal the frames'
	// width (the Width feature).
	Camera acquisition.CameraInfo
	// CountsPerLine is the trigger divider k: one line every k encoder
	// counts. It spaces the counts of lines the camera does not stamp.
	CountsPerLine int
	// EncoderChunkID is the chunk ID of ChunkEncoderValue in this camera's
	// chunk data (from its GenICam XML); 0 when the camera has none.
	EncoderChunkID uint32
	// FirstCount is the encoder count of line 0 when counts are estimated
	// from the divider.
	FirstCount int64
	// Stop, if set, is called by Close before the stream is closed (it
	// executes AcquisitionStop).
	Stop func() error
}

// Validate names the first bad field.
func (o LineOptions) Validate() error {
	switch {
	case o.Camera.Width < 1:
		return fmt.Errorf("%w: Camera.Width %d (>= 1)", ErrOptions, o.Camera.Width)
	case o.CountsPerLine < 1:
		return fmt.Errorf("%w: CountsPerLine %d (>= 1)", ErrOptions, o.CountsPerLine)
	}
	return nil
}

// CameraStats are a line-scan camera's counters, for /metrics and
// /api/status.
type CameraStats struct {
	StreamStats
	Lines     int64   // lines delivered
	LostLines int64   // lines reported in Block.Lost
	LineRate  float64 // lines per second over the last second or so
}

// LineStream turns a GVSP stream of line-scan frames (N lines each) into
// acquisition blocks. It implements acquisition.Stream. ReadBlock is called
// from one goroutine; Stats from any.
type LineStream struct {
	s    *Stream
	opts LineOptions

	cur      *Frame
	img      []byte // the frame's image bytes
	counts   []byte // ChunkEncoderValue data, nil if none
	lines    int    // lines in cur
	pos      int    // next line of cur to deliver
	lineSeq  int64  // sequence number of cur's line 0
	next     int64  // sequence number of the next line to deliver
	height   int    // lines per frame, from the last frame
	prevLast int64  // count of the last line delivered
	havePrev bool
	lost     acquisition.LostLines

	nLines, nLost atomic.Int64
	rate          atomic.Uint64 // float64 bits
	rateT         time.Time
	rateN         int64
}

// NewLineStream wraps s. Acquisition must be started by the caller.
func NewLineStream(s *Stream, opts LineOptions) (*LineStream, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	return &LineStream{s: s, opts: opts}, nil
}

// Camera describes the stream's camera.
func (l *LineStream) Camera() acquisition.CameraInfo { return l.opts.Camera }

// Stream returns the underlying GVSP stream.
func (l *LineStream) Stream() *Stream { return l.s }

// Stats returns the camera's counters.
func (l *LineStream) Stats() CameraStats {
	return CameraStats{StreamStats: l.s.Stats(), Lines: l.nLines.Load(), LostLines: l.nLost.Load(),
		LineRate: math.Float64frombits(l.rate.Load())}
}

// ReadBlock fills dst with the next lines, at most one frame's worth. A
// frame lost before them is reported in dst.Lost, and dst.FirstLine jumps
// past its lines. It returns io.EOF once the stream is closed.
func (l *LineStream) ReadBlock(ctx context.Context, dst *acquisition.Block) error {
	if dst.Stride < l.opts.Camera.Width || dst.Cap() < 1 {
		return fmt.Errorf("%w: block of %d lines × stride %d for width %d", acquisition.ErrBlockTooSmall,
			dst.Cap(), dst.Stride, l.opts.Camera.Width)
	}
	for l.cur == nil {
		f, err := l.s.Next(ctx)
		if errors.Is(err, ErrClosed) {
			return io.EOF
		}
		if err != nil {
			return err
		}
		if err := l.begin(f); err != nil {
			l.s.Release(f)
			return err
		}
	}
	n := min(dst.Cap(), l.lines-l.pos)
	w := l.opts.Camera.Width
	pf := l.cur.Leader.PixelFormat
	lb := pf.LineBytes(w) + int(l.cur.Leader.PaddingX)
	for i := 0; i < n; i++ {
		line := l.pos + i
		if err := pfnc.ToMono8(dst.Pix[i*dst.Stride:], l.img[line*lb:], w, pf); err != nil {
			return fmt.Errorf("%w: line %d of block %d: %w", ErrProtocol, line, l.cur.BlockID, err)
		}
		dst.Counts[i] = l.count(line)
	}
	dst.Camera = l.opts.Camera.Index
	dst.FirstLine = l.next
	dst.Lines = n
	dst.Width = w
	dst.Time = l.cur.Arrived
	dst.Lost, l.lost = l.lost, acquisition.LostLines{}
	l.prevLast, l.havePrev = dst.Counts[n-1], true
	l.next += int64(n)
	l.pos += n
	l.nLines.Add(int64(n))
	l.measure(n)
	if l.pos == l.lines {
		l.s.Release(l.cur)
		l.cur = nil
	}
	return nil
}

// begin takes frame f: checks its format, finds its image and counts, and
// turns the blocks lost before it into lost lines.
func (l *LineStream) begin(f *Frame) error {
	ld := f.Leader
	w := l.opts.Camera.Width
	if !ld.IsImage() || ld.PixelFormat.Depth() == 0 || int(ld.Width) != w {
		return fmt.Errorf("%w: block %d is %v %d px wide, want a mono image %d px wide",
			ErrProtocol, f.BlockID, ld.PixelFormat, ld.Width, w)
	}
	lb := ld.PixelFormat.LineBytes(w) + int(ld.PaddingX)
	if ld.PixelFormat.Bits()*w%8 != 0 {
		return fmt.Errorf("%w: %v lines of %d px do not end on a byte", ErrProtocol, ld.PixelFormat, w)
	}
	img, counts := f.Data, []byte(nil)
	if ld.PayloadType.HasChunks() {
		c, ok := wire.FirstChunk(f.Data)
		if !ok {
			return fmt.Errorf("%w: block %d: broken chunk data", ErrProtocol, f.BlockID)
		}
		img = c.Data
		if l.opts.EncoderChunkID != 0 {
			counts, _ = wire.FindChunk(f.Data, l.opts.EncoderChunkID)
		}
	}
	lines := int(ld.Height)
	if f.Trailer.SizeY > 0 && int(f.Trailer.SizeY) < lines {
		lines = int(f.Trailer.SizeY) // a short last frame
	}
	lines = min(lines, len(img)/lb)
	if lines < 1 {
		return fmt.Errorf("%w: block %d holds %d bytes, less than a line of %d", ErrProtocol, f.BlockID, len(img), lb)
	}
	l.cur, l.img, l.counts, l.lines, l.pos = f, img, counts, lines, 0
	if f.LostBefore > 0 {
		l.noteLost(f.LostBefore * int64(max(l.height, int(ld.Height))))
	}
	l.height = int(ld.Height)
	l.lineSeq = l.next
	return nil
}

// noteLost records n lines lost before the current frame.
func (l *LineStream) noteLost(n int64) {
	k := int64(l.opts.CountsPerLine)
	lost := acquisition.LostLines{FirstLine: l.next, Lines: n, Reason: ReasonFrameLost}
	switch {
	case l.counts != nil && l.havePrev:
		lost.FirstCount = l.prevLast + k
		lost.LastCount = l.chunkCount(0) - k
	case l.counts != nil:
		lost.LastCount = l.chunkCount(0) - k
		lost.FirstCount = lost.LastCount - (n-1)*k
	case l.havePrev:
		lost.FirstCount = l.prevLast + k
		lost.LastCount = lost.FirstCount + (n-1)*k
	default:
		lost.FirstCount = l.opts.FirstCount + l.next*k
		lost.LastCount = lost.FirstCount + (n-1)*k
	}
	l.lost = lost
	l.next += n
	l.nLost.Add(n)
}

// count returns the encoder count of line i of the current frame: from
// ChunkEncoderValue (one per line, or the frame's first line plus the
// divider), else from the line sequence and the divider.
func (l *LineStream) count(i int) int64 {
	if l.counts != nil {
		return l.chunkCount(i)
	}
	return l.opts.FirstCount + (l.lineSeq+int64(i))*int64(l.opts.CountsPerLine)
}

func (l *LineStream) chunkCount(i int) int64 {
	k := int64(l.opts.CountsPerLine)
	switch {
	case len(l.counts) >= 8*l.lines:
		return int64(binary.BigEndian.Uint64(l.counts[8*i:]))
	case len(l.counts) >= 8:
		return int64(binary.BigEndian.Uint64(l.counts)) + int64(i)*k
	case len(l.counts) >= 4:
		return int64(int32(binary.BigEndian.Uint32(l.counts))) + int64(i)*k
	}
	return l.opts.FirstCount + (l.lineSeq+int64(i))*k
}

// measure updates the line rate about once a second.
func (l *LineStream) measure(n int) {
	now := time.Now()
	if l.rateT.IsZero() {
		l.rateT = now
	}
	l.rateN += int64(n)
	if dt := now.Sub(l.rateT); dt >= time.Second {
		l.rate.Store(math.Float64bits(float64(l.rateN) / dt.Seconds()))
		l.rateT, l.rateN = now, 0
	}
}

// Close stops acquisition (LineOptions.Stop) and closes the stream.
func (l *LineStream) Close() error {
	var err error
	if l.opts.Stop != nil {
		err = l.opts.Stop()
	}
	if cerr := l.s.Close(); err == nil {
		err = cerr
	}
	return err
}

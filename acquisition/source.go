// Package acquisition delivers line-scan pixel rows into the engine.
//
// # Model
//
// A line-scan camera takes one row of pixels (a line) each time the web
// encoder has advanced by CountsPerLine counts. Lines are grouped into blocks
// of consecutive lines of one camera; a block is the unit that moves through
// the pipeline. Every line carries the encoder count at which it was
// triggered, so its machine-direction (MD) position on the web is
// count * MMPerCount millimetres from where the encoder started.
//
// Several cameras sit side by side across the web. Each camera is one
// Stream; its pixels map to cross-direction (CD) millimetres through
// CameraInfo.OffsetMM and CameraInfo.PixelMM. Neighbouring cameras overlap
// by a few millimetres so that nothing falls between them.
//
// # Lines are never counted twice on the roll
//
// A web does not only run forwards. It stops (splices, breaks, operator
// stops) and it is jogged backwards to bring a spot back under the cameras.
// The encoder follows every movement, and the trigger divider fires a line
// each time the count reaches a multiple of CountsPerLine in either
// direction. Lines triggered while the web runs backwards, and while it runs
// forwards again over material that was already inspected, image web that is
// already on the roll map. The rule is:
//
//	a line is accepted only if its encoder count is greater than the
//	highest count accepted so far.
//
// So a stopped web produces no lines at all, a backward jog produces lines
// that are all rejected, and after the jog the first accepted line is the
// first one past the high-water mark. Gate implements the rule.
//
// # Motion model
//
// Motion turns a list of constant-speed phases into the exact sequence of
// trigger events (encoder count and time) a real encoder and trigger divider
// would produce. The simulator uses it so that a synthetic web can stop and
// jog like a real one.
//
// # Ownership
//
// Stream.ReadBlock fills a Block the caller owns (typically a preallocated
// ring slot). The stream must not keep any reference to dst after
// ReadBlock returns.
package acquisition

import (
	"context"
	"errors"
	"time"
)

// Errors returned by sources.
var (
	// ErrTruncated is returned (wrapped) by a recording reader that found a
	// partial frame at the end of a file that is no longer being written.
	// Every block before the cut has already been delivered.
	ErrTruncated = errors.New("recording truncated")
	// ErrCorrupt is returned (wrapped) when a recording frame fails its
	// checksum or cannot be decoded.
	ErrCorrupt = errors.New("recording corrupt")
	// ErrBlockTooSmall is returned when the caller's block cannot hold the
	// lines the stream has to deliver.
	ErrBlockTooSmall = errors.New("block buffer too small")
)

// Block is Lines consecutive lines of one camera.
//
// Line i occupies Pix[i*Stride : i*Stride+Width] and was triggered at
// encoder count Counts[i].
type Block struct {
	Camera    int   // camera index, 0 = operator side
	FirstLine int64 // sequence number of line 0: counts every line this camera triggered since the source started, from 0
	Lines     int   // number of valid lines
	Width     int   // pixels per line
	Stride    int   // bytes between line starts (>= Width)
	Pix       []uint8
	Counts    []int64   // encoder count of each line; len >= Lines
	Time      time.Time // trigger time of line 0 (source clock)
	// Arrived is the wall-clock time the block left the source, set by the
	// engine's acquisition loop (not by sources); latency is measured from it.
	Arrived time.Time
	// Lost is what the source lost just before this block; the engine puts
	// it on the roll map as uninspected. Sources set it; zero otherwise.
	Lost LostLines
	// Seam says line 0 does not continue the material of the line before
	// it although the line numbers and encoder counts do: a joint between
	// frames captured separately (the frames source) and played as one
	// web. The engine closes every open region and ends the model's run
	// of lines there, so the joint itself is not inspected as a defect.
	// Sources that never join separate captures leave it false; a source
	// that sets it sets it on every block (slots are reused).
	Seam bool
}

// LostLines is a run of lines a source itself lost (a camera frame that
// never arrived complete). Zero when nothing was lost.
type LostLines struct {
	FirstLine, Lines      int64  // line sequence range [FirstLine, FirstLine+Lines)
	FirstCount, LastCount int64  // encoder counts of the first and last lost line (estimated from the trigger divider when the camera gives none)
	Reason                string // "camera-frame-lost", or "source-error" for lines lost while the camera was gone (a roll-map reason, rollmap/FORMAT.md)
}

// Empty reports whether l records no loss.
func (l LostLines) Empty() bool { return l.Lines == 0 }

// NewBlock allocates a block able to hold lines lines of width pixels.
func NewBlock(lines, width int) *Block {
	return &Block{
		Width:  width,
		Stride: width,
		Pix:    make([]uint8, lines*width),
		Counts: make([]int64, lines),
	}
}

// Line returns the pixels of line i.
func (b *Block) Line(i int) []uint8 { return b.Pix[i*b.Stride : i*b.Stride+b.Width] }

// Cap returns how many lines the block can hold.
func (b *Block) Cap() int {
	if b.Stride == 0 {
		return 0
	}
	n := len(b.Pix) / b.Stride
	if len(b.Counts) < n {
		n = len(b.Counts)
	}
	return n
}

// CameraInfo describes one camera's geometry and calibration.
type CameraInfo struct {
	Index    int     `json:"index"`
	Width    int     `json:"width"`     // pixels per line
	OffsetMM float64 `json:"offset_mm"` // CD position of the left edge of pixel 0, from the operator-side web edge
	PixelMM  float64 `json:"pixel_mm"`  // CD size of one pixel
	// Dark and White are the flat-field references per pixel column: the
	// response with the light off and to a uniform white target. Nil means
	// no correction is needed.
	Dark  []uint8 `json:"dark,omitempty"`
	White []uint8 `json:"white,omitempty"`
}

// Info describes a source: the web, the encoder and the cameras.
type Info struct {
	Name          string  `json:"name"`     // e.g. "sim:fabric" or a recording path
	Material      string  `json:"material"` // fabric, leather, film, or "" when unknown
	WebWidthMM    float64 `json:"web_width_mm"`
	MMPerCount    float64 `json:"mm_per_count"`    // encoder resolution
	CountsPerLine int     `json:"counts_per_line"` // trigger divider k: one line every k counts
	LinesPerBlock int     `json:"lines_per_block"`
	SpeedMPerMin  float64 `json:"speed_m_per_min"` // nominal line speed
	// Live is true when the source runs at line speed and cannot wait: a
	// camera, the simulator in real time, a real-time replay. The engine
	// drops blocks from a live source when it falls behind. A source that is
	// not live (a replay as fast as possible) is read only as fast as the
	// engine inspects, so nothing is dropped.
	Live    bool         `json:"live"`
	Cameras []CameraInfo `json:"cameras"`
}

// LineMM is the MD length one line covers.
func (i Info) LineMM() float64 { return float64(i.CountsPerLine) * i.MMPerCount }

// Stream is one camera's line stream.
type Stream interface {
	// Camera describes this stream's camera.
	Camera() CameraInfo
	// ReadBlock fills dst with the next block. dst.Pix and dst.Counts must
	// have room for Info.LinesPerBlock lines of Camera().Width pixels. The
	// last block may hold fewer lines. It returns io.EOF when the stream has
	// ended, and respects ctx cancellation.
	ReadBlock(ctx context.Context, dst *Block) error
	// Close releases the stream.
	Close() error
}

// Source is a set of camera streams over one web with one encoder.
type Source interface {
	Info() Info
	Streams() []Stream
	Close() error
}

package engine

import (
	"errors"
	"math"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/webinspect/webinspect/acquisition"
	"github.com/webinspect/webinspect/rollmap"
	"github.com/webinspect/webinspect/rollmap/archive"
)

// # Defect crops
//
// Each camera's detector copies every block's raw lines (original pixels,
// before flat-field) into the camera's lineHistory, a ring of the newest
// lines indexed by line number (encoder count / counts per line). When the
// assembly decides a defect it cuts the crop from the history of the
// camera that saw most of it: the defect's bounding box plus
// ImagesOptions.MarginPx on every side, clipped to the camera, at most
// MaxPx columns around the defect's centre and MaxPx lines: a longer
// defect keeps its first MaxPx lines while the history holds them, else
// its last. Lines are counted in line numbers (acquisition.LineIndex), so
// encoder counts that are not a whole number of lines apart cut the same
// rows they size. A line the history no longer (or never) held is filled
// with grey 0 and counted in webinspect_crop_lines_missing_total; the
// defect record is written whatever happens to its image. The crop goes
// to Options.Images, which encodes and archives it and returns the
// reference stored in the defect's image_ref.

// # Crops not kept
//
// Every decided defect either gets a crop (Defect.ImageRef) or the reason
// it has none (Defect.ImageError), counted in
// webinspect_images_skipped_total{reason}: the engine counts the reasons
// it finds itself (the Image constants below), the image archive the ones
// it returns (rollmap/archive's Reason constants: queue_full, disk_full,
// write_error, closed, invalid), which the engine records on the defect.
// rollmap/FORMAT.md lists them all.

// Reasons a defect has no crop, found by the engine.
const (
	// ImageArchiveDisabled: crops are off (no image sink, or the recipe's
	// images.enabled is false).
	ImageArchiveDisabled = "archive_disabled"
	// ImageHistoryEvicted: the line history no longer held any of the
	// defect's lines when it was decided.
	ImageHistoryEvicted = "history_evicted"
	// ImageNoPixels: the defect's box lies outside its camera's columns
	// (a broken invariant; never seen).
	ImageNoPixels = "no_pixels"
	// ImageArchiveError: the image sink failed without naming a reason
	// the engine knows.
	ImageArchiveError = "archive_error"
)

// imageErrorOf is the ImageError of a crop the sink refused with err.
func imageErrorOf(err error) string {
	switch {
	case errors.Is(err, archive.ErrQueueFull):
		return archive.ReasonQueueFull
	case errors.Is(err, archive.ErrStopped):
		return archive.ReasonDiskFull
	case errors.Is(err, archive.ErrClosed):
		return archive.ReasonClosed
	case errors.Is(err, archive.ErrInvalid):
		return archive.ReasonInvalid
	}
	return ImageArchiveError
}

// countedBySink reports whether the sink counts reason itself (the
// archive counts every skip it returns).
func countedBySink(reason string) bool {
	switch reason {
	case archive.ReasonQueueFull, archive.ReasonDiskFull, archive.ReasonClosed, archive.ReasonInvalid, archive.ReasonWriteError:
		return true
	}
	return false
}

// ImageSink archives defect crops: 8-bit grey, w × h pixels, rows stride
// bytes apart. It returns the crop's reference (its content hash file
// name) or an error; it must not block (rollmap/archive queues the write)
// and must not keep pix.
type ImageSink interface {
	PutCrop(w, h, stride int, pix []uint8) (ref string, err error)
}

// lineHistory keeps the newest lines of one camera. put is called by the
// camera's detect stage, crop by the assembly.
type lineHistory struct {
	mu    sync.Mutex
	width int
	k     int64
	pix   []uint8 // len(line) * width
	line  []int64 // line number held in each slot; math.MinInt64 = none
}

func newLineHistory(lines, width int, countsPerLine int64) *lineHistory {
	h := &lineHistory{width: width, k: max(countsPerLine, 1), pix: make([]uint8, lines*width), line: make([]int64, lines)}
	for i := range h.line {
		h.line[i] = math.MinInt64
	}
	return h
}

// lineOf is the line number of encoder count c.
func (h *lineHistory) lineOf(c int64) int64 { return acquisition.LineIndex(c, h.k) }

func (h *lineHistory) slot(n int64) int {
	s := n % int64(len(h.line))
	if s < 0 {
		s += int64(len(h.line))
	}
	return int(s)
}

// put copies a block's lines into the history.
func (h *lineHistory) put(b *acquisition.Block) {
	w := min(h.width, b.Width)
	h.mu.Lock()
	for i := 0; i < b.Lines; i++ {
		n := h.lineOf(b.Counts[i])
		s := h.slot(n)
		copy(h.pix[s*h.width:s*h.width+w], b.Pix[i*b.Stride:i*b.Stride+w])
		h.line[s] = n
	}
	h.mu.Unlock()
}

// crop copies line numbers [n0, n1] and columns [x0, x1) into dst (stride
// x1-x0, at least (n1-n0+1)·(x1-x0) long) and returns the rows written and
// how many of them it did not hold (filled with 0).
func (h *lineHistory) crop(dst []uint8, n0, n1 int64, x0, x1 int) (rows, missing int) {
	w := x1 - x0
	h.mu.Lock()
	defer h.mu.Unlock()
	for n := n0; n <= n1; n++ {
		row := dst[rows*w : rows*w+w]
		if s := h.slot(n); h.line[s] == n {
			copy(row, h.pix[s*h.width+x0:s*h.width+x1])
		} else {
			clear(row)
			missing++
		}
		rows++
	}
	return rows, missing
}

// holds reports whether line number n is still in the history.
func (h *lineHistory) holds(n int64) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.line[h.slot(n)] == n
}

// historyLines is the default history depth: every line that can be in
// flight between a detector and the assembly, plus a whole crop.
func historyLines(r *Recipe, linesPerBlock int) int {
	if r.Images.HistoryLines > 0 {
		return r.Images.HistoryLines
	}
	return (r.Pipeline.RingBlocks+r.Pipeline.ResultQueue+2)*linesPerBlock + 2*r.Images.MaxPx + 2*r.Images.MarginPx
}

// cropper cuts and archives the crops of decided defects, from the
// assembly goroutine.
type cropper struct {
	hist    []*lineHistory // per camera
	cameras []acquisition.CameraInfo
	opts    ImagesOptions
	sink    ImageSink
	// linesMissing counts crop lines the history no longer held, skipped
	// the defects recorded without a crop.
	linesMissing, skipped prometheus.Counter
	// reasons counts the defects without a crop by ImageError, for the
	// reasons the sink does not count itself.
	reasons *skipReasons
	buf     []uint8
	// lastW and lastH are the size of the crop last cut into buf (0 when
	// the last defect got none): the classifier reads it (learned.go).
	lastW, lastH int
}

// last returns the pixels of the crop last cut (stride w), valid until the
// next attach.
func (c *cropper) last() ([]uint8, int, int) {
	return c.buf[:c.lastW*c.lastH], c.lastW, c.lastH
}

// attach cuts d's crop and stores its reference in d.ImageRef, or the
// reason it has none in d.ImageError. c1 is the encoder count of the
// defect's last line.
func (c *cropper) attach(d *rollmap.Defect, c1 int64) {
	if reason := c.cut(d, c1); reason != "" {
		d.ImageRef, d.ImageError = "", reason
		c.skipped.Inc()
		if !countedBySink(reason) {
			c.reasons.inc(reason)
		}
	}
}

// cut cuts and archives d's crop; it returns why it could not.
func (c *cropper) cut(d *rollmap.Defect, c1 int64) string {
	c.lastW, c.lastH = 0, 0
	if d.Camera < 0 || d.Camera >= len(c.hist) {
		return ImageNoPixels
	}
	h := c.hist[d.Camera]
	cam := c.cameras[d.Camera]
	o := c.opts
	// Columns: the defect's CD extent on this camera (machine CD: roll
	// CD + the web edge, webedge.go), plus the margin.
	x0 := int(math.Floor((d.CDStartMM+d.WebEdgeMM-cam.OffsetMM)/cam.PixelMM)) - o.MarginPx
	x1 := int(math.Ceil((d.CDEndMM+d.WebEdgeMM-cam.OffsetMM)/cam.PixelMM)) + o.MarginPx
	x0, x1 = max(x0, 0), min(x1, h.width)
	if x1-x0 > o.MaxPx {
		x0 = (x0+x1)/2 - o.MaxPx/2
		x1 = x0 + o.MaxPx
	}
	// Lines, in line numbers: the defect's MD extent plus the margin. A
	// defect longer than MaxPx keeps the window at its start while the
	// history still holds it (a long streak's start has the most to
	// show), else at its end, which is always the newest.
	n0 := h.lineOf(d.EncoderCount) - int64(o.MarginPx)
	n1 := h.lineOf(c1) + int64(o.MarginPx)
	if n1-n0+1 > int64(o.MaxPx) {
		if h.holds(n0) {
			n1 = n0 + int64(o.MaxPx) - 1
		} else {
			n0 = n1 - int64(o.MaxPx) + 1
		}
	}
	if x1 <= x0 || n1 < n0 {
		return ImageNoPixels
	}
	w := x1 - x0
	need := int(n1-n0+1) * w
	if cap(c.buf) < need {
		c.buf = make([]uint8, need)
	}
	rows, missing := h.crop(c.buf[:need], n0, n1, x0, x1)
	if missing > 0 {
		c.linesMissing.Add(float64(missing))
	}
	if missing == rows {
		return ImageHistoryEvicted
	}
	c.lastW, c.lastH = w, rows
	ref, err := c.sink.PutCrop(w, rows, w, c.buf[:rows*w])
	if err != nil {
		return imageErrorOf(err) // the archive logs why; the defect is kept
	}
	d.ImageRef = ref
	return ""
}

// skipReasons are webinspect_images_skipped_total's counters for the
// engine's reasons, resolved once.
type skipReasons struct {
	vec *prometheus.CounterVec
	by  map[string]prometheus.Counter // assembly goroutine only
}

func (s *skipReasons) inc(reason string) { s.add(reason, 1) }

func (s *skipReasons) add(reason string, n int) {
	c, ok := s.by[reason]
	if !ok {
		c = s.vec.WithLabelValues(reason)
		s.by[reason] = c
	}
	c.Add(float64(n))
}

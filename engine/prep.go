package engine

import (
	"math"

	"github.com/webinspect/webinspect/acquisition"
	"github.com/webinspect/webinspect/kernels"
)

// # Line preparation
//
// Each camera's lines are prepared once, by the camera's linePrep, and
// every detector of the camera reads the result (a preparedBlock)
// through lineDetector:
//
//   - the duplicate-line gate: a line whose encoder count was seen
//     before (re-imaged material after the web stopped and jogged back)
//     is marked not accepted, so no detector inspects it twice;
//   - flat-field: dark and white references turn the raw line into a
//     flat one (FlatFieldTarget grey for the white reference);
//   - the camera's strip of the overlap: the columns this camera is
//     counted for (ownedStrip). Neighbouring cameras see the overlap
//     twice; a defect's area counts each camera only up to the middle
//     of the overlap, whichever detector flagged it.
//
// The gate also decides what a gap (dropped or lost lines) leaves
// uninspected: lines up to the gate's high-water mark were inspected
// before, so they are not claimed again.

// ownedStrip is the columns [x0, x1) of a camera that its flagged pixels
// are counted for in areas.
type ownedStrip struct{ x0, x1 int32 }

// cameraStrip is camera i's owned strip: its own span, with the overlap
// to each neighbour split in the middle.
func cameraStrip(cams []acquisition.CameraInfo, i int) ownedStrip {
	c := cams[i]
	lo, hi := c.OffsetMM, c.OffsetMM+float64(c.Width)*c.PixelMM
	if i > 0 {
		p := cams[i-1]
		pEnd := p.OffsetMM + float64(p.Width)*p.PixelMM
		if pEnd > lo {
			lo = (lo + pEnd) / 2
		}
	}
	if i+1 < len(cams) {
		n := cams[i+1]
		if n.OffsetMM < hi {
			hi = (hi + n.OffsetMM) / 2
		}
	}
	x0 := int32(math.Floor((lo - c.OffsetMM) / c.PixelMM))
	x1 := int32(math.Ceil((hi - c.OffsetMM) / c.PixelMM))
	return ownedStrip{max(x0, 0), min(x1, int32(c.Width))}
}

// share is the part of area, flagged over columns [col0, col1), that
// falls in the strip, for a detector that knows only a component's
// columns and area (the model): the area is taken as spread evenly over
// its columns.
func (s ownedStrip) share(col0, col1 int, area int64) int64 {
	lo, hi := max(col0, int(s.x0)), min(col1, int(s.x1))
	switch {
	case col1 <= col0 || (lo == col0 && hi == col1):
		return area
	case hi <= lo:
		return 0
	}
	return int64(math.Round(float64(area) * float64(hi-lo) / float64(col1-col0)))
}

// preparedBlock is one block after line preparation. It is owned by the
// camera's linePrep and valid until the next call of prepare; detectors
// read it and keep nothing of it.
type preparedBlock struct {
	width int
	lines int
	pix   []uint8 // lines × width flat-fielded pixels, stride width
	// counts are the block's encoder counts (the ring slot's: valid until
	// the slot is released).
	counts []int64
	acc    []bool // acc[i]: line i passed the gate (inspect it)
	strip  ownedStrip
}

// line returns line i's prepared pixels.
func (p *preparedBlock) line(i int) []uint8 { return p.pix[i*p.width : (i+1)*p.width] }

// linePrep prepares one camera's lines. It is used by the camera's
// detect goroutine only.
type linePrep struct {
	k         int64 // counts per line
	gate      acquisition.Gate
	flat      bool
	dark      []uint8
	gain      []uint16
	out       preparedBlock
	lastCount int64 // last accepted count
	haveLast  bool
}

func newLinePrep(cam acquisition.CameraInfo, info acquisition.Info, flatTarget int, strip ownedStrip) *linePrep {
	w := cam.Width
	p := &linePrep{
		k: int64(max(info.CountsPerLine, 1)),
		out: preparedBlock{width: w, strip: strip,
			pix: make([]uint8, w*max(info.LinesPerBlock, 1))},
	}
	if len(cam.Dark) == w && len(cam.White) == w {
		p.flat = true
		p.dark = cam.Dark
		p.gain = make([]uint16, w)
		kernels.FlatFieldGains(p.gain, cam.Dark, cam.White, uint8(flatTarget))
	}
	return p
}

// prepare flat-fields block b and gates its lines.
func (p *linePrep) prepare(b *acquisition.Block) *preparedBlock {
	o := &p.out
	w := o.width
	if need := b.Lines * w; len(o.pix) < need {
		o.pix = make([]uint8, need)
	}
	switch {
	case p.flat && b.Stride == w:
		kernels.FlatField(o.pix[:b.Lines*w], b.Pix[:b.Lines*w], p.dark, p.gain)
	case p.flat:
		for i := 0; i < b.Lines; i++ {
			kernels.FlatField(o.line(i), b.Line(i), p.dark, p.gain)
		}
	default:
		for i := 0; i < b.Lines; i++ {
			copy(o.line(i), b.Line(i))
		}
	}
	if cap(o.acc) < b.Lines {
		o.acc = make([]bool, b.Lines)
	}
	o.lines, o.counts, o.acc = b.Lines, b.Counts[:b.Lines], o.acc[:b.Lines]
	for i, c := range o.counts {
		o.acc[i] = p.gate.Accept(c)
		if o.acc[i] {
			p.lastCount, p.haveLast = c, true
		}
	}
	return o
}

// gap moves the gate past lines that were not inspected, with encoder
// counts from first to last (either order), and returns the MD range
// [c0, c1) they leave uninspected, if any: lines up to the gate's
// high-water mark were inspected before.
func (p *linePrep) gap(first, last int64) (c0, c1 int64, ok bool) {
	lo, hi := min(first, last), max(first, last)
	start := lo
	if hw := p.gate.HighWater(); hw != math.MinInt64 && hw+p.k > start {
		start = hw + p.k
	}
	p.gate.Accept(hi) // the material not inspected counts as passed
	if start > hi {
		return 0, 0, false
	}
	return start, hi + p.k, true
}

// frontier is the count of the next line the gate can accept
// (math.MinInt64 before the first).
func (p *linePrep) frontier() int64 {
	if !p.haveLast {
		return math.MinInt64
	}
	return p.lastCount + p.k
}

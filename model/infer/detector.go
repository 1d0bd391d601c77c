package infer

import (
	"fmt"
	"math"
	"sync"
	"sync/atomic"

	"github.com/webinspect/webinspect/acquisition"
	"github.com/webinspect/webinspect/kernels"
)

// Component is a connected region of flagged anomaly-map pixels of one
// camera, in camera pixels at full resolution (binning undone).
type Component struct {
	// Line0 and Line1 are camera line sequence numbers [Line0, Line1), as
	// given by Process's firstLine (Block.FirstLine).
	Line0, Line1 int64
	// Count0 and Count1 are the encoder counts of the first and the last
	// line (the line numbers when Process was given no counts).
	Count0, Count1 int64
	// Col0 and Col1 are camera columns [Col0, Col1).
	Col0, Col1 int
	// Area is the flagged area in camera pixels (model pixels × Bin²).
	Area int64
	// Peak and Mean are the largest and the mean anomaly score over the
	// flagged pixels.
	Peak, Mean float32
}

// strip is one tile-high band of model-resolution rows across the whole
// width, with the maps of its tiles. A detector cycles Options.InFlight
// of them; while queued in the pool, pix is read by workers and maps is
// written by them (each tile its own slot), and the detector touches
// neither until done has delivered the strip back.
type strip struct {
	d      *Detector
	pix    []uint8   // th rows of sw pixels
	e0, e1 []int32   // web extent per row (model columns)
	c0, c1 []int64   // encoder counts of each row's first and last camera line
	maps   []float32 // one th×tw map per tile

	row0        int64 // detector row of the first row to stitch (strip row off)
	off         int   // strip rows before row0 that are already emitted (last strip)
	rows        int   // rows to emit after stitching
	first, last bool  // first strip of a run of contiguous lines / final strip

	pending atomic.Int32  // tiles not yet scored
	done    chan struct{} // receives once when pending reaches 0
	ready   bool          // done has been received (detector only)

	errMu sync.Mutex
	err   error
}

func (s *strip) fail(err error) {
	s.errMu.Lock()
	if s.err == nil {
		s.err = err
	}
	s.errMu.Unlock()
}

// Detector runs one camera's lines through the pool: it bins them, cuts
// strips into tiles, and stitches, thresholds and labels the maps that
// come back, in line order. It is used by one goroutine; make one per
// camera with Pool.NewDetector.
type Detector struct {
	p     *Pool
	o     *Options
	width int // camera pixels per line
	bin   int
	bw    int // model pixels per row (width / Bin)
	sw    int // strip row stride: max(bw, tile width); columns ≥ bw replicate bw-1
	th    int
	tw    int
	omd   int
	thr   float32

	xs       []int // column of each tile in the strip
	ox0, ox1 []int // columns each tile owns (StitchCentre)

	strips   []*strip
	head, nq int    // oldest submitted strip not yet collected; how many are submitted
	cur      *strip // strip being filled
	prev     *strip // last strip submitted
	fill     int    // rows of cur filled

	started  bool  // inside a run of contiguous lines
	segFirst bool  // no strip of this run submitted yet
	nextLine int64 // line sequence number expected next
	segLine0 int64 // first line of the run
	segRow0  int64 // detector row of the run's first row
	curRow0  int64 // detector row of cur's row 0
	nextRow  int64 // detector row where the next run starts
	labelY   int64 // detector row to label next

	pair     []uint8 // a camera line waiting for its partner (Bin 2), 2*width
	havePair bool
	pairC    int64
	pairLine int64

	acc, cnt []float32 // stitched map rows (th×bw) and tile counts (StitchMean)
	lab      *kernels.Labeler
	runs     []kernels.Run
	comps    []kernels.Component
	lastC1   int64 // count of the last camera line of the last labelled row

	dst     []Component // output during one call
	dropped int64
	err     error

	// mapHook, when set (tests), sees every stitched map row after the
	// off-web area is zeroed: detector row, its first camera line, map.
	mapHook func(row, line int64, m []float32)
}

// NewDetector returns a detector for a camera of width pixels per line.
func (p *Pool) NewDetector(width int) (*Detector, error) {
	o := &p.o
	if width < o.Bin || width > 1<<20 {
		return nil, fmt.Errorf("%w: camera width %d, want %d..%d", ErrOptions, width, o.Bin, 1<<20)
	}
	bw := width / o.Bin
	d := &Detector{
		p: p, o: o, width: width, bin: o.Bin, bw: bw, sw: max(bw, p.tw),
		th: p.th, tw: p.tw, omd: o.OverlapMD, thr: p.thr,
		lab:      kernels.NewLabeler(bw),
		runs:     make([]kernels.Run, 0, 64),
		pair:     make([]uint8, 2*width),
		acc:      make([]float32, p.th*bw),
		segFirst: true,
	}
	if o.Stitch == StitchMean {
		d.cnt = make([]float32, p.th*bw)
	}
	step := p.tw - o.OverlapCD
	for x := 0; ; x += step {
		if x+p.tw >= d.sw {
			d.xs = append(d.xs, d.sw-p.tw)
			break
		}
		d.xs = append(d.xs, x)
	}
	// Tile i owns the columns nearer its centre than its neighbours'.
	for i, x := range d.xs {
		lo, hi := 0, bw
		if i > 0 {
			lo = (x + d.xs[i-1] + p.tw) / 2
		}
		if i+1 < len(d.xs) {
			hi = min((d.xs[i+1]+x+p.tw)/2, bw)
		}
		d.ox0, d.ox1 = append(d.ox0, lo), append(d.ox1, max(hi, lo))
	}
	nt := len(d.xs)
	for range o.InFlight {
		d.strips = append(d.strips, &strip{
			d:    d,
			pix:  make([]uint8, p.th*d.sw),
			e0:   make([]int32, p.th),
			e1:   make([]int32, p.th),
			c0:   make([]int64, p.th),
			c1:   make([]int64, p.th),
			maps: make([]float32, nt*p.th*p.tw),
			done: make(chan struct{}, 1),
		})
	}
	d.cur = d.strips[0]
	return d, nil
}

// Tiles returns the number of tiles per strip.
func (d *Detector) Tiles() int { return len(d.xs) }

// Dropped returns how many camera lines were left uninspected: with Bin 2,
// the odd last line of each run of contiguous lines.
func (d *Detector) Dropped() int64 { return d.dropped }

// ProcessBlock is Process for an acquisition block.
func (d *Detector) ProcessBlock(dst []Component, b *acquisition.Block) ([]Component, error) {
	if b.Width != d.width {
		return dst, fmt.Errorf("%w: block of camera %d is %d pixels wide, detector %d", ErrBlock, b.Camera, b.Width, d.width)
	}
	return d.Process(dst, b.Pix, b.Stride, b.Lines, b.FirstLine, b.Counts)
}

// Process adds lines camera lines: line i is pix[i*stride : i*stride+width]
// with sequence number firstLine+i and encoder count counts[i] (counts may
// be nil: counts are then the line numbers). Blocks must come in line
// order; a firstLine other than the previous block's end ends the run of
// contiguous lines first (as Flush does), so no component spans a gap.
// Components closed so far are appended to dst, which is returned; they
// lag the input by up to InFlight strips. pix is not kept after Process
// returns. After an inference failure every call returns ErrRun.
func (d *Detector) Process(dst []Component, pix []uint8, stride, lines int, firstLine int64, counts []int64) ([]Component, error) {
	if d.err != nil {
		return dst, d.err
	}
	if lines <= 0 {
		return dst, nil
	}
	w := d.width
	switch {
	case stride < w:
		return dst, fmt.Errorf("%w: stride %d < width %d", ErrBlock, stride, w)
	case len(pix) < (lines-1)*stride+w:
		return dst, fmt.Errorf("%w: %d lines of stride %d need %d bytes, have %d", ErrBlock, lines, stride, (lines-1)*stride+w, len(pix))
	case counts != nil && len(counts) < lines:
		return dst, fmt.Errorf("%w: %d counts for %d lines", ErrBlock, len(counts), lines)
	}
	d.dst = dst
	defer func() { d.dst = nil }()
	if d.started && firstLine != d.nextLine {
		if err := d.endRun(); err != nil {
			return d.dst, err
		}
	}
	if !d.started {
		d.started, d.segFirst = true, true
		d.segLine0, d.segRow0, d.curRow0, d.labelY = firstLine, d.nextRow, d.nextRow, d.nextRow
		d.fill = 0
	}
	d.nextLine = firstLine + int64(lines)
	count := func(i int) int64 {
		if counts == nil {
			return firstLine + int64(i)
		}
		return counts[i]
	}
	for i := 0; i < lines; i++ {
		line := pix[i*stride : i*stride+w]
		var err error
		switch {
		case d.bin == 1:
			copy(d.row(), line)
			err = d.rowDone(count(i), count(i))
		case d.havePair:
			copy(d.pair[w:], line)
			kernels.Bin2(d.row()[:d.bw], d.pair, w)
			d.havePair = false
			err = d.rowDone(d.pairC, count(i))
		case i+1 < lines && stride == w:
			// Two contiguous lines: bin them in place.
			kernels.Bin2(d.row()[:d.bw], pix[i*w:(i+2)*w], w)
			err = d.rowDone(count(i), count(i+1))
			i++
		default:
			copy(d.pair[:w], line)
			d.havePair, d.pairC, d.pairLine = true, count(i), firstLine+int64(i)
		}
		if err != nil {
			return d.dst, err
		}
	}
	err := d.poll() // before reading d.dst: poll appends to it
	return d.dst, err
}

// Flush ends the run of contiguous lines: the rows not yet emitted are
// scored with a last strip, every strip in flight is collected and every
// open component is closed and appended to dst. See the package doc for
// how the last strip is made.
func (d *Detector) Flush(dst []Component) ([]Component, error) {
	if d.err != nil {
		return dst, d.err
	}
	d.dst = dst
	defer func() { d.dst = nil }()
	err := d.endRun()
	return d.dst, err
}

// Frontier returns the first camera line at which a component returned
// in the future can start: the first line of the oldest row not yet
// labelled (queued, in flight or still filling a strip), of a line
// waiting for its binning partner, or of a component still open,
// whichever is earliest. ok is false when nothing given so far can
// produce a component any more (after Flush): future components then
// start at lines not given yet. The engine's assembler uses it, as it uses
// the threshold detector's frontier, to know which MD range is complete.
func (d *Detector) Frontier() (line int64, ok bool) {
	line = math.MaxInt64
	if d.started {
		if d.labelY < d.curRow0+int64(d.fill) {
			line, ok = d.rowLine(d.labelY), true
		}
		if d.havePair {
			line, ok = min(line, d.pairLine), true
		}
	}
	if y, open := d.lab.MinOpenY(); open {
		line, ok = min(line, d.rowLine(y)), true
	}
	return line, ok
}

// rowLine returns the first camera line of detector row y of this run.
func (d *Detector) rowLine(y int64) int64 {
	return d.segLine0 + int64(d.bin)*(y-d.segRow0)
}

// row returns the strip row to fill next.
func (d *Detector) row() []uint8 {
	return d.cur.pix[d.fill*d.sw : (d.fill+1)*d.sw]
}

// rowDone finishes the row just written: pad, off-web search, counts; a
// full strip is submitted.
func (d *Detector) rowDone(c0, c1 int64) error {
	s, r := d.cur, d.fill
	row := s.pix[r*d.sw : (r+1)*d.sw]
	e0, e1 := offWeb(row[:d.bw], &d.o.OffWeb)
	if d.sw > d.bw {
		v := row[d.bw-1]
		for x := d.bw; x < d.sw; x++ {
			row[x] = v
		}
	}
	s.e0[r], s.e1[r] = int32(e0), int32(e1)
	s.c0[r], s.c1[r] = c0, c1
	d.fill++
	if d.fill < d.th {
		return nil
	}
	s.off, s.rows, s.first, s.last, s.row0 = 0, d.th-d.omd, d.segFirst, false, d.curRow0
	if err := d.submit(s); err != nil {
		return err
	}
	if err := d.nextStrip(); err != nil {
		return err
	}
	return d.poll()
}

func (d *Detector) submit(s *strip) error {
	if err := d.p.submit(s, len(d.xs)); err != nil {
		d.err = err
		return err
	}
	d.segFirst = false
	d.prev = s
	d.nq++
	return nil
}

// nextStrip makes the next free strip current, collecting the oldest
// first if all are in flight, and carries the last OverlapMD rows of the
// strip just submitted into it.
func (d *Detector) nextStrip() error {
	n := len(d.strips)
	if d.nq == n {
		if err := d.collect(); err != nil {
			return err
		}
	}
	s, p := d.strips[(d.head+d.nq)%n], d.prev
	k, th, sw := d.omd, d.th, d.sw
	copy(s.pix[:k*sw], p.pix[(th-k)*sw:th*sw])
	copy(s.e0[:k], p.e0[th-k:])
	copy(s.e1[:k], p.e1[th-k:])
	copy(s.c0[:k], p.c0[th-k:])
	copy(s.c1[:k], p.c1[th-k:])
	d.cur, d.fill = s, k
	d.curRow0 = p.row0 + int64(th-k)
	return nil
}

// endRun scores the rows not yet emitted with a last strip, collects
// everything in flight and closes every component.
func (d *Detector) endRun() error {
	if !d.started {
		return d.drain()
	}
	if d.havePair {
		d.havePair = false
		d.dropped++
	}
	if f := d.fill; f > 0 {
		s, th, sw := d.cur, d.th, d.sw
		if d.segFirst {
			// Shorter than one strip: replicate the last row downwards.
			for r := f; r < th; r++ {
				copy(s.pix[r*sw:(r+1)*sw], s.pix[(f-1)*sw:f*sw])
				s.e0[r], s.e1[r], s.c0[r], s.c1[r] = s.e0[f-1], s.e1[f-1], s.c0[f-1], s.c1[f-1]
			}
			s.off = 0
		} else {
			// Align the last strip with the last row: its top comes from
			// the previous strip, whose rows are already emitted.
			off, p, k := th-f, d.prev, d.omd
			copy(s.pix[off*sw:], s.pix[:f*sw])
			copy(s.e0[off:], s.e0[:f])
			copy(s.e1[off:], s.e1[:f])
			copy(s.c0[off:], s.c0[:f])
			copy(s.c1[off:], s.c1[:f])
			copy(s.pix[:off*sw], p.pix[(f-k)*sw:(th-k)*sw])
			copy(s.e0[:off], p.e0[f-k:th-k])
			copy(s.e1[:off], p.e1[f-k:th-k])
			copy(s.c0[:off], p.c0[f-k:th-k])
			copy(s.c1[:off], p.c1[f-k:th-k])
			s.off = off
		}
		s.rows, s.first, s.last, s.row0 = f, d.segFirst, true, d.curRow0
		if err := d.submit(s); err != nil {
			return err
		}
	}
	d.started, d.fill = false, 0
	d.nextRow = d.curRow0 + int64(d.th) + 1 // a gap: nothing connects across runs
	d.segFirst, d.prev = true, nil
	return d.drain()
}

// drain collects every strip in flight and closes every open component.
func (d *Detector) drain() error {
	for d.nq > 0 {
		if err := d.collect(); err != nil {
			return err
		}
	}
	d.comps = d.lab.Flush(d.comps[:0])
	d.emit()
	if d.nq == 0 {
		d.cur = d.strips[d.head]
	}
	return nil
}

// poll collects, in order, the strips that are done, without waiting.
func (d *Detector) poll() error {
	for d.nq > 0 {
		s := d.strips[d.head]
		if !s.ready {
			select {
			case <-s.done:
				s.ready = true
			default:
				return nil
			}
		}
		if err := d.collect(); err != nil {
			return err
		}
	}
	return nil
}

// collect waits for the oldest strip in flight and stitches it.
func (d *Detector) collect() error {
	s := d.strips[d.head]
	if !s.ready {
		<-s.done
	}
	s.ready = false
	d.head = (d.head + 1) % len(d.strips)
	d.nq--
	if s.err != nil {
		d.err = fmt.Errorf("%w: %w", ErrRun, s.err)
		return d.err
	}
	d.stitch(s)
	return nil
}

// stitch combines the tile maps of s into the map rows, then thresholds
// and labels the rows no later strip touches.
func (d *Detector) stitch(s *strip) {
	th, tw, bw, omd, off := d.th, d.tw, d.bw, d.omd, s.off
	tpx := th * tw
	carry := omd // leading rows of acc that hold the previous strip's values
	if s.first {
		carry = 0
	}
	span := th - off // acc rows this strip covers
	acc := d.acc
	switch d.o.Stitch {
	case StitchMean:
		clear(acc[carry*bw : span*bw])
		clear(d.cnt[carry*bw : span*bw])
	case StitchMax:
		for i := carry * bw; i < span*bw; i++ {
			acc[i] = float32(math.Inf(-1))
		}
	}
	for i, x := range d.xs {
		m := s.maps[i*tpx : (i+1)*tpx]
		switch d.o.Stitch {
		case StitchCentre:
			top, bot := off, th
			if !s.first {
				top += omd - omd/2
			}
			if !s.last {
				bot -= omd / 2
			}
			c0, c1 := d.ox0[i], d.ox1[i]
			for r := top; r < bot; r++ {
				a := (r - off) * bw
				copy(acc[a+c0:a+c1], m[r*tw+c0-x:r*tw+c1-x])
			}
		case StitchMean:
			n := min(x+tw, bw) - x
			for r := off; r < th; r++ {
				a := (r-off)*bw + x
				dst, cnt, src := acc[a:a+n], d.cnt[a:a+n], m[r*tw:r*tw+n]
				for k, v := range src {
					dst[k] += v
					cnt[k]++
				}
			}
		case StitchMax:
			n := min(x+tw, bw) - x
			for r := off; r < th; r++ {
				a := (r-off)*bw + x
				dst, src := acc[a:a+n], m[r*tw:r*tw+n]
				for k, v := range src {
					dst[k] = max(dst[k], v)
				}
			}
		}
	}
	for a := 0; a < s.rows; a++ {
		row := acc[a*bw : (a+1)*bw]
		if d.o.Stitch == StitchMean {
			for k, c := range d.cnt[a*bw : (a+1)*bw] {
				row[k] /= c
			}
		}
		e0, e1 := int(s.e0[a+off]), int(s.e1[a+off])
		clear(row[:e0])
		clear(row[e1:])
		y := s.row0 + int64(a)
		if d.mapHook != nil {
			d.mapHook(y, d.rowLine(y), row)
		}
		d.runs = encodeRuns(d.runs[:0], row[e0:e1], d.thr, e0)
		d.comps = d.lab.AddLine(d.comps[:0], y, s.c0[a+off], d.runs)
		d.emit()
		d.lastC1 = s.c1[a+off]
		d.labelY = y + 1
	}
	if !s.last && omd > 0 {
		copy(acc[:omd*bw], acc[(th-omd)*bw:th*bw])
		if d.cnt != nil {
			copy(d.cnt[:omd*bw], d.cnt[(th-omd)*bw:th*bw])
		}
	}
}

// emit converts the components in d.comps, which all ended on the last
// labelled row, to camera coordinates and appends them to d.dst.
func (d *Detector) emit() {
	b := int64(d.bin)
	for _, k := range d.comps {
		area := k.Area * b * b
		if area < d.o.MinAreaPx {
			continue
		}
		d.dst = append(d.dst, Component{
			Line0:  d.rowLine(k.Y0),
			Line1:  d.rowLine(k.Y1),
			Count0: k.C0, Count1: d.lastC1,
			Col0: int(k.X0) * d.bin, Col1: int(k.X1) * d.bin,
			Area: area,
			Peak: k.Peak, Mean: float32(k.Sum / float64(k.Area)),
		})
	}
	d.comps = d.comps[:0]
}

// encodeRuns appends the runs of row above thr as bright runs whose
// columns are offset by x0; Sum and Peak are the run's score sum and
// maximum.
func encodeRuns(dst []kernels.Run, row []float32, thr float32, x0 int) []kernels.Run {
	for x := 0; x < len(row); {
		if !(row[x] > thr) {
			x++
			continue
		}
		s := x
		var sum, peak float32
		for ; x < len(row) && row[x] > thr; x++ {
			sum += row[x]
			peak = max(peak, row[x])
		}
		dst = append(dst, kernels.Run{X0: int32(s + x0), X1: int32(x + x0), Pol: 1, Sum: sum, Peak: peak})
	}
	return dst
}

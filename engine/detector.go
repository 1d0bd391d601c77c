package engine

import (
	"math"
	"slices"

	"github.com/webinspect/webinspect/acquisition"
	"github.com/webinspect/webinspect/kernels"
	"github.com/webinspect/webinspect/model/edge"
	"github.com/webinspect/webinspect/rollmap"
)

// region is a connected flagged region of one camera, in web coordinates
// (encoder counts along MD, millimetres across).
type region struct {
	cam      int
	c0, c1   int64   // encoder counts of the first and last line
	cd0, cd1 float64 // CD extent in mm [cd0, cd1)
	area     int64   // flagged pixels
	owned    int64   // flagged pixels inside the camera's owned CD band
	bright   int64
	dark     int64
	sum      float64 // signed contrast sum
	sumAbs   float64
	peak     float64 // threshold detector: largest |contrast|, grey levels
	// Model detector: anomaly score peak, sum over and area of its pixels.
	score, scoreSum float64
	scoreArea       int64
	detectorID      rollmap.Detector
}

// gapRange is an MD range (in encoder counts, [c0, c1)) of one camera that
// was not inspected.
type gapRange struct {
	cam    int
	c0, c1 int64
	lines  int64
	blocks int64 // blocks the ring dropped (reasonDropped), else 0
	reason rollmap.Reason
}

// lineDetector is a detector of one camera, driven by the camera's detect
// goroutine: the threshold detector and the model detector. Both read the
// camera's prepared lines (see prep.go) and report regions in web
// coordinates; region slices are appended to dst and returned.
type lineDetector interface {
	// process inspects the accepted lines of a prepared block.
	process(dst []region, p *preparedBlock) []region
	// flush closes every open region: at a gap (the image is not
	// continuous across it) and at the end of the stream.
	flush(dst []region) []region
	// frontier is the smallest encoder count of a region that is still
	// open (math.MaxInt64 when none is).
	frontier() int64
}

// bgGuardPx is how many pixels beside a flagged run are kept out of the
// background update.
const bgGuardPx = 2

// thresholdDetector runs the threshold detector for one camera. It is used
// by one goroutine. Per accepted line it compares against the per-column
// background, run-length encodes the flagged pixels, labels connected
// components and updates the background from unflagged pixels.
type thresholdDetector struct {
	cam        acquisition.CameraInfo
	opts       ThresholdOptions
	k          int64 // counts per line
	mean, vari []float32
	lo, hi     []uint8
	mask       []int8
	bgMask     []int8 // mask dilated by bgGuardPx: columns the background must not learn from
	runs       []kernels.Run
	comps      []kernels.Component
	lab        *kernels.Labeler
	learned    int
	sinceThr   int
	alpha      float32
	alphaFlag  float32
	minDelta   float32
	kSigma     float32
	// offWeb is the edge search (threshold.off_web); while its mode is
	// auto, the first lines wait in pending until Learn decides it.
	offWeb  edge.Options
	pending [][]uint8
	filled  []uint8 // the line with its off-web background filled by mirrored web
	// seamLeft lines after a seam still re-learn the background's mean,
	// summed in seamSum (see seam).
	seamLeft int
	seamSum  []float32
	// edgeWin accumulates the operator-side edge over the lines of the
	// current window; edges holds the block's samples (takeEdges).
	edgeWin edgeWindowSum
	edges   []edgeSample
}

// edgeWindowSum sums the left edge's pixel over a window of lines.
type edgeWindowSum struct {
	lines      int // lines in the window, with or without an edge
	sum        float64
	n          int
	first, end int64 // counts of the window's first and last line
}

// seamLines is how many lines after a seam (acquisition.Block.Seam) the
// threshold detector takes to re-learn its background's per-column mean
// (4 mm at 0.25 mm per line). It does not inspect them: the frame before
// was lit differently, so its background would flag the whole width. The
// model detector, which needs no background, inspects them as usual. The
// variance is kept: the texture is the same material's.
const seamLines = 16

// edgeLearnLines is how many of the first lines decide an auto off-web
// mode (at most the recipe's learn lines).
const edgeLearnLines = 64

func newThresholdDetector(cam acquisition.CameraInfo, info acquisition.Info, opts ThresholdOptions, strip ownedStrip) *thresholdDetector {
	w := cam.Width
	d := &thresholdDetector{
		cam:      cam,
		opts:     opts,
		k:        int64(max(info.CountsPerLine, 1)),
		mean:     make([]float32, w),
		vari:     make([]float32, w),
		lo:       make([]uint8, w),
		hi:       make([]uint8, w),
		mask:     make([]int8, w),
		bgMask:   make([]int8, w),
		runs:     make([]kernels.Run, 0, 256),
		lab:      kernels.NewLabeler(w),
		alpha:    float32(1 / float64(opts.BackgroundLines)),
		minDelta: float32(opts.MinContrast),
		kSigma:   float32(opts.KSigma),
		offWeb:   opts.OffWeb,
		edges:    make([]edgeSample, 0, maxEdgeSamples),
	}
	if d.offWeb.Mode == "" {
		d.offWeb.Mode = edge.Auto
	}
	if d.offWeb.Mode != edge.None {
		d.filled = make([]uint8, w)
	}
	if opts.AdaptFlaggedLines > 0 {
		d.alphaFlag = float32(1 / float64(opts.AdaptFlaggedLines))
	}
	// Pixels are counted in areas (owned) inside the camera's strip.
	d.lab.SetOwned(strip.x0, strip.x1)
	return d
}

// process inspects the accepted lines of p and appends closed regions to dst.
func (d *thresholdDetector) process(dst []region, p *preparedBlock) []region {
	win := edgeWindow(p.lines)
	for i := 0; i < p.lines; i++ {
		if !p.acc[i] {
			continue // re-imaged material after a jog back: never inspected twice
		}
		line, c := p.line(i), p.counts[i]
		if d.offWeb.Mode == edge.Auto {
			d.decideOffWeb(line)
			continue
		}
		e0, e1 := 0, len(line)
		if d.offWeb.Active() {
			copy(d.filled, line)
			e0, e1 = edge.FindFill(d.filled, &d.offWeb)
			line = d.filled
			d.sampleEdge(c, e0, e1, win)
		}
		if d.learned < d.opts.LearnLines {
			d.learn(line)
			continue
		}
		if d.seamLeft > 0 {
			d.relearn(line)
			continue
		}
		if d.sinceThr == 0 {
			kernels.Thresholds(d.lo, d.hi, d.mean, d.vari, d.kSigma, d.minDelta)
		}
		d.sinceThr = (d.sinceThr + 1) % 16
		y := acquisition.LineIndex(c, d.k)
		n := kernels.ThresholdMask(d.mask, line, d.lo, d.hi)
		if n > 0 && (e0 > 0 || e1 < len(line)) {
			// Beyond the edges lies the mirrored web, not material.
			clear(d.mask[:e0])
			clear(d.mask[max(e1, e0):])
		}
		d.runs = d.runs[:0]
		if n > 0 {
			d.runs = kernels.EncodeRuns(d.runs, d.mask, line, d.mean)
		}
		d.comps = d.lab.AddLine(d.comps[:0], y, c, d.runs)
		dst = d.appendRegions(dst)
		kernels.UpdateBackground(d.mean, d.vari, line, d.backgroundMask(n), d.alpha, d.alphaFlag)
	}
	return dst
}

// sampleEdge adds line c's left edge (e0 less the search's guard: the
// first web pixel) to the current window, and closes the window after win
// lines into a sample at its middle count. Lines without a left edge
// count toward the window but not the mean.
func (d *thresholdDetector) sampleEdge(c int64, e0, e1, win int) {
	if d.cam.Index != 0 {
		return // only camera 0 sees the operator-side edge
	}
	w := &d.edgeWin
	if w.lines == 0 {
		w.first = c
	}
	w.lines++
	w.end = c
	if e0 > 0 && e1 > e0 {
		w.sum += float64(e0 - d.offWeb.Guard)
		w.n++
	}
	if w.lines >= win {
		d.closeEdgeWindow()
	}
}

// closeEdgeWindow turns the window into a sample when it saw an edge.
func (d *thresholdDetector) closeEdgeWindow() {
	w := &d.edgeWin
	if w.n > 0 && len(d.edges) < maxEdgeSamples {
		d.edges = append(d.edges, edgeSample{
			count: w.first + (w.end-w.first)/2,
			mm:    d.cam.OffsetMM + w.sum/float64(w.n)*d.cam.PixelMM,
		})
	}
	*w = edgeWindowSum{}
}

// takeEdges closes the current window and moves the block's edge samples
// into dst, returning how many there were.
func (d *thresholdDetector) takeEdges(dst *[maxEdgeSamples]edgeSample) int {
	if d.edgeWin.lines > 0 {
		d.closeEdgeWindow()
	}
	n := copy(dst[:], d.edges)
	d.edges = d.edges[:0]
	return n
}

// decideOffWeb keeps the first lines until there are enough to decide an
// auto off-web mode (edge.Learn: do most lines end in a saturated band?),
// then decides and inspects them as any other lines (they are all learn
// lines: none of them can hold a reported defect).
func (d *thresholdDetector) decideOffWeb(line []uint8) {
	d.pending = append(d.pending, slices.Clone(line))
	if len(d.pending) < min(edgeLearnLines, d.opts.LearnLines) {
		return
	}
	widths := make([]int, len(d.pending))
	for i := range widths {
		widths[i] = len(line)
	}
	d.offWeb = edge.Learn(d.offWeb, widths, d.pending)
	if !d.offWeb.Active() {
		d.filled = nil
	}
	for _, l := range d.pending {
		if d.offWeb.Active() {
			edge.FindFill(l, &d.offWeb)
		}
		d.learn(l)
	}
	d.pending = nil
}

// seam starts re-learning the background's mean over the next seamLines
// lines, which follow a joint between separately captured frames. While
// the first LearnLines are still being learned there is nothing to redo.
func (d *thresholdDetector) seam() {
	if d.learned < d.opts.LearnLines {
		return
	}
	if d.seamSum == nil {
		d.seamSum = make([]float32, len(d.mean))
	}
	clear(d.seamSum)
	d.seamLeft = seamLines
}

// relearn adds one line after a seam to the new mean; the last one sets it.
func (d *thresholdDetector) relearn(line []uint8) {
	for x, v := range line {
		d.seamSum[x] += float32(v)
	}
	if d.seamLeft--; d.seamLeft == 0 {
		for x, v := range d.seamSum {
			d.mean[x] = v / seamLines
		}
		d.sinceThr = 0 // thresholds from the new mean on the next line
	}
}

// learn feeds one of the first LearnLines lines to the background model.
func (d *thresholdDetector) learn(line []uint8) {
	if d.learned == 0 {
		kernels.InitBackground(d.mean, d.vari, line, d.minDelta*d.minDelta/4)
	} else {
		clear(d.mask)
		kernels.UpdateBackground(d.mean, d.vari, line, d.mask, d.alpha*4, 0)
	}
	d.learned++
}

// backgroundMask is the mask of columns the background must not learn
// from after a line with n flagged pixels (runs in d.runs).
func (d *thresholdDetector) backgroundMask(n int) []int8 {
	if n == 0 {
		return d.mask
	}
	// The faint fringe of a defect (partly covered pixels below the
	// threshold) must not pull the background either, or the defect's
	// edge columns drift and flag clean web afterwards.
	bg, w := d.bgMask, len(d.bgMask)
	copy(bg, d.mask)
	for _, r := range d.runs {
		lo, hi := max(int(r.X0)-bgGuardPx, 0), min(int(r.X1)+bgGuardPx, w)
		for x := lo; x < hi; x++ {
			if bg[x] == 0 {
				bg[x] = r.Pol
			}
		}
	}
	return bg
}

// flush closes every open region (a gap or the end of the stream).
func (d *thresholdDetector) flush(dst []region) []region {
	d.comps = d.lab.Flush(d.comps[:0])
	return d.appendRegions(dst)
}

// frontier is the smallest encoder count of a region still open.
func (d *thresholdDetector) frontier() int64 {
	if y, ok := d.lab.MinOpenY(); ok {
		return y * d.k
	}
	return math.MaxInt64
}

func (d *thresholdDetector) appendRegions(dst []region) []region {
	for _, c := range d.comps {
		if c.Area < int64(d.opts.MinAreaPx) {
			continue
		}
		dst = append(dst, region{
			cam:        d.cam.Index,
			c0:         c.C0,
			c1:         c.C1,
			cd0:        d.cam.OffsetMM + float64(c.X0)*d.cam.PixelMM,
			cd1:        d.cam.OffsetMM + float64(c.X1)*d.cam.PixelMM,
			area:       c.Area,
			owned:      c.OwnedArea,
			bright:     c.BrightArea,
			dark:       c.DarkArea,
			sum:        c.Sum,
			sumAbs:     c.SumAbs,
			peak:       float64(c.Peak),
			detectorID: rollmap.DetectorThreshold,
		})
	}
	return dst
}

package engine

import (
	"math"

	"github.com/webinspect/webinspect/acquisition"
	"github.com/webinspect/webinspect/acquisition/ring"
	"github.com/webinspect/webinspect/kernels"
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
	detectorID      string
}

// gapRange is an MD range (in encoder counts, [c0, c1)) of one camera that
// was not inspected.
type gapRange struct {
	cam    int
	c0, c1 int64
	lines  int64
	reason string
}

// bgGuardPx is how many pixels beside a flagged run are kept out of the
// background update.
const bgGuardPx = 2

// thresholdDetector runs the threshold detector for one camera. It is used
// by one goroutine. Per line it flat-fields, compares against the
// per-column background, run-length encodes the flagged pixels, labels
// connected components and updates the background from unflagged pixels.
type thresholdDetector struct {
	cam        acquisition.CameraInfo
	opts       ThresholdOptions
	k          int64 // counts per line
	gate       acquisition.Gate
	flat       bool
	dark       []uint8
	gain       []uint16
	corr       []uint8
	mean, vari []float32
	lo, hi     []uint8
	mask       []int8
	acc        []bool // acc[i]: line i of the last block was accepted (not re-imaged)
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
	owned0     int32
	owned1     int32
	lastCount  int64 // last accepted count
	haveLast   bool
}

func newThresholdDetector(cam acquisition.CameraInfo, info acquisition.Info, opts ThresholdOptions, ownedMM [2]float64) *thresholdDetector {
	w := cam.Width
	d := &thresholdDetector{
		cam:      cam,
		opts:     opts,
		k:        int64(max(info.CountsPerLine, 1)),
		corr:     make([]uint8, w*max(info.LinesPerBlock, 1)),
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
	}
	if opts.AdaptFlaggedLines > 0 {
		d.alphaFlag = float32(1 / float64(opts.AdaptFlaggedLines))
	}
	if len(cam.Dark) == w && len(cam.White) == w {
		d.flat = true
		d.dark = cam.Dark
		d.gain = make([]uint16, w)
		kernels.FlatFieldGains(d.gain, cam.Dark, cam.White, uint8(opts.FlatFieldTarget))
	}
	// Pixels are owned (counted in areas) inside [ownedMM[0], ownedMM[1]).
	o0 := int32(math.Floor((ownedMM[0] - cam.OffsetMM) / cam.PixelMM))
	o1 := int32(math.Ceil((ownedMM[1] - cam.OffsetMM) / cam.PixelMM))
	d.owned0, d.owned1 = max(o0, 0), min(o1, int32(w))
	d.lab.SetOwned(d.owned0, d.owned1)
	return d
}

// process inspects one block and appends closed regions to dst.
func (d *thresholdDetector) process(dst []region, b *acquisition.Block) []region {
	w := d.cam.Width
	if d.flat {
		if b.Stride == w {
			kernels.FlatField(d.corr[:b.Lines*w], b.Pix[:b.Lines*w], d.dark, d.gain)
		} else {
			for i := 0; i < b.Lines; i++ {
				kernels.FlatField(d.corr[i*w:(i+1)*w], b.Line(i), d.dark, d.gain)
			}
		}
	} else {
		for i := 0; i < b.Lines; i++ {
			copy(d.corr[i*w:(i+1)*w], b.Line(i))
		}
	}
	if cap(d.acc) < b.Lines {
		d.acc = make([]bool, b.Lines)
	}
	d.acc = d.acc[:b.Lines]
	for i := 0; i < b.Lines; i++ {
		c := b.Counts[i]
		d.acc[i] = d.gate.Accept(c)
		if !d.acc[i] {
			continue // re-imaged material after a jog back: never inspected twice
		}
		line := d.corr[i*w : (i+1)*w]
		d.lastCount, d.haveLast = c, true
		if d.learned < d.opts.LearnLines {
			if d.learned == 0 {
				kernels.InitBackground(d.mean, d.vari, line, d.minDelta*d.minDelta/4)
			} else {
				clear(d.mask)
				kernels.UpdateBackground(d.mean, d.vari, line, d.mask, d.alpha*4, 0)
			}
			d.learned++
			continue
		}
		if d.sinceThr == 0 {
			kernels.Thresholds(d.lo, d.hi, d.mean, d.vari, d.kSigma, d.minDelta)
		}
		d.sinceThr = (d.sinceThr + 1) % 16
		y := acquisition.LineIndex(c, d.k)
		n := kernels.ThresholdMask(d.mask, line, d.lo, d.hi)
		d.runs = d.runs[:0]
		if n > 0 {
			d.runs = kernels.EncodeRuns(d.runs, d.mask, line, d.mean)
		}
		d.comps = d.lab.AddLine(d.comps[:0], y, c, d.runs)
		dst = d.appendRegions(dst)
		bg := d.mask
		if n > 0 {
			// The faint fringe of a defect (partly covered pixels below the
			// threshold) must not pull the background either, or the
			// defect's edge columns drift and flag clean web afterwards.
			bg = d.bgMask
			copy(bg, d.mask)
			for _, r := range d.runs {
				lo, hi := max(int(r.X0)-bgGuardPx, 0), min(int(r.X1)+bgGuardPx, w)
				for x := lo; x < hi; x++ {
					if bg[x] == 0 {
						bg[x] = r.Pol
					}
				}
			}
		}
		kernels.UpdateBackground(d.mean, d.vari, line, bg, d.alpha, d.alphaFlag)
	}
	return dst
}

// gap handles lines the ring dropped: it closes every open region (the
// image is not continuous across the gap), moves the gate past the dropped
// material and returns the MD range that was not inspected, if any.
func (d *thresholdDetector) gap(dst []region, dr ring.Dropped) ([]region, gapRange, bool) {
	d.comps = d.lab.Flush(d.comps[:0])
	dst = d.appendRegions(dst)
	lo, hi := min(dr.FirstCount, dr.LastCount), max(dr.FirstCount, dr.LastCount)
	start := lo
	if hw := d.gate.HighWater(); hw != math.MinInt64 && hw+d.k > start {
		start = hw + d.k // lines up to the high-water mark were inspected before
	}
	d.gate.Accept(hi) // the dropped material counts as passed
	if start > hi {
		return dst, gapRange{}, false
	}
	return dst, gapRange{cam: d.cam.Index, c0: start, c1: hi + d.k, lines: dr.Lines, reason: "dropped-block"}, true
}

// flush closes every open region (end of stream).
func (d *thresholdDetector) flush(dst []region) []region {
	d.comps = d.lab.Flush(d.comps[:0])
	return d.appendRegions(dst)
}

// frontier is the smallest encoder count a region this detector emits in
// the future can start at.
func (d *thresholdDetector) frontier() int64 {
	f := int64(math.MinInt64)
	if d.haveLast {
		f = d.lastCount + d.k
	}
	if y, ok := d.lab.MinOpenY(); ok {
		f = min(f, y*d.k)
	}
	return f
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
			detectorID: "threshold",
		})
	}
	return dst
}

// Package sim is a deterministic synthetic web: cameras, encoder, material
// texture, calibration, noise and injected defects with exact ground truth,
// all from a seed.
//
// # Geometry
//
// Cameras sit side by side and cover exactly [0, WidthMM] of the web; each
// neighbouring pair shares OverlapMM. With n cameras each spans
// span = (WidthMM + (n-1)*OverlapMM)/n, is ceil(span/PixelMM) pixels wide
// and starts at OffsetMM = i*(span-OverlapMM):
//
//	CD 0                                                       WidthMM
//	|<-------- camera 0 -------->|
//	                       |<-------- camera 1 -------->|
//	                       |<-->| OverlapMM
//
// All cameras are triggered by the same encoder: a line every CountsPerLine
// counts of LineMM/CountsPerLine mm (acquisition.Motion, which also models
// stops and backward jogs). The pixel at column x of camera i in a line
// triggered at count c images the web area
//
//	MD [c*MMPerCount, c*MMPerCount + LineMM) x CD [OffsetMM + x*PixelMM, OffsetMM + (x+1)*PixelMM)
//
// and its content depends on that position only, so a jog back re-images
// the same material (with fresh noise). Each Stream runs its own copy of the
// motion and generates independently; streams may be read concurrently.
//
// # Pixel model
//
// The true grey value v (0..255) of a pixel is the material texture plus any
// defect, anti-aliased by coverage (4x4 supersampling of the pixel area). The
// camera turns it into
//
//	raw = clamp(dark[x] + v*g[x] + noise, 0, 255)
//	g[x] = vignette(x) * prnu(x) * 0.93
//
// and reports CameraInfo.Dark[x] = dark[x] and CameraInfo.White[x] =
// round(dark[x] + 255*g[x]) (<= 255), so the engine's flat-field
// (raw-dark)*255/(white-dark) recovers v within the noise. Noise is Gaussian
// with sigma Noise, drawn through a 256-entry quantile table indexed by bytes
// of a fast generator seeded per line from (seed, camera, line number).
//
// # Materials
//
// fabric: plain weave around 130, warp yarns along MD every ~1 mm of CD and
// weft yarns along CD every ~1 mm of MD, each with a bright crown and dark
// edges and its own tone. leather: around 110, a smooth grain tile plus slow
// tone variation over metres in MD and CD. film: around 170, nearly uniform,
// with faint die lines (constant 1-3 grey-level column offsets) and very
// slow MD variation. Every texture stays within about ±12 grey levels of a
// per-column running mean so good material does not look like a defect.
//
// # Yarn lots
//
// Config.Lot makes a stretch of the web from another yarn lot: over it
// the material's true value becomes base + Contrast·(v - base) + Shift
// across the whole width, blending in over RampM at each end. It is good
// material, absent from the truth: the benign change a model taught on
// the first metres has never seen (webinspect reteach learns it from
// reviews). `webinspect simulate --lot-at` sets it.
//
// # Defects and truth
//
// Config.Defects defects of eight classes (hole, stain, streak, knot, slub,
// crease, gel, scratch) are placed from the seed after LearnM, before the
// end of the roll, at least 30 mm apart, about 15 % of them below the 1 mm
// detection limit and several straddling a camera overlap. Truth returns
// their exact bounding boxes; WriteTruthCSV and ReadTruthCSV store them.
package sim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/webinspect/webinspect/acquisition"
)

// Errors returned by the simulator.
var (
	// ErrClosed is returned by ReadBlock after the stream or the Sim was
	// closed.
	ErrClosed = errors.New("sim: closed")
)

// Sim is a simulated source. It implements acquisition.Source.
type Sim struct {
	cfg     Config
	info    acquisition.Info
	defects []defect // sorted by mdLo, read-only
	maxLen  float64  // longest defect MD extent, mm
	start   time.Time
	streams []*stream

	epochOnce sync.Once // wall clock of the first read, for Realtime
	epoch     time.Time
}

var _ acquisition.Source = (*Sim)(nil)

// New makes a simulator. It validates cfg and places the defects.
func New(cfg Config) (*Sim, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.Motion = append([]acquisition.Phase(nil), cfg.phases()...)
	motion, err := acquisition.NewMotion(cfg.Motion, cfg.MMPerCount(), cfg.CountsPerLine)
	if err != nil {
		return nil, fmt.Errorf("sim: %w", err)
	}
	defects, err := placeDefects(&cfg)
	if err != nil {
		return nil, err
	}
	s := &Sim{cfg: cfg, defects: defects, start: cfg.Start}
	if s.start.IsZero() {
		s.start = time.Now()
	}
	for i := range defects {
		s.maxLen = max(s.maxLen, defects[i].mdHi-defects[i].mdLo)
	}
	s.info = acquisition.Info{
		Name:          "sim:" + cfg.Material,
		Material:      cfg.Material,
		WebWidthMM:    cfg.WidthMM,
		MMPerCount:    cfg.MMPerCount(),
		CountsPerLine: cfg.CountsPerLine,
		LinesPerBlock: cfg.LinesPerBlock,
		SpeedMPerMin:  cfg.SpeedMPerMin,
		Live:          cfg.Realtime,
	}
	var tile []int8
	if cfg.Material == Leather {
		tile = leatherGrain(uint64(cfg.Seed))
	}
	noise := noiseTable(cfg.Noise)
	span := cfg.cameraSpanMM()
	width := cfg.cameraWidth()
	for i := range cfg.Cameras {
		offset := float64(i) * (span - cfg.OverlapMM)
		st := newStream(s, i, width, offset, tile, noise, motion.Clone())
		s.streams = append(s.streams, st)
		s.info.Cameras = append(s.info.Cameras, st.cam)
	}
	return s, nil
}

// Info describes the simulated web, encoder and cameras.
func (s *Sim) Info() acquisition.Info { return s.info }

// Streams returns one stream per camera, operator side first. Every call
// returns the same streams.
func (s *Sim) Streams() []acquisition.Stream {
	out := make([]acquisition.Stream, len(s.streams))
	for i, st := range s.streams {
		out[i] = st
	}
	return out
}

// Close closes every stream.
func (s *Sim) Close() error {
	for _, st := range s.streams {
		st.Close()
	}
	return nil
}

// Truth returns the injected defects in MD order.
func (s *Sim) Truth() []Truth {
	out := make([]Truth, len(s.defects))
	for i := range s.defects {
		out[i] = s.defects[i].truth
	}
	return out
}

// Config returns the configuration in force (Motion filled in).
func (s *Sim) Config() Config {
	c := s.cfg
	c.Motion = append([]acquisition.Phase(nil), c.Motion...)
	c.Start = s.start
	return c
}

// noiseTable returns Gaussian quantiles at (i+0.5)/256 in 1/65536 grey
// levels, rescaled so the table's standard deviation is exactly sigma.
func noiseTable(sigma float64) *[256]int32 {
	var q [256]float64
	var s2 float64
	for i := range q {
		p := (float64(i) + 0.5) / 256
		q[i] = math.Sqrt2 * math.Erfinv(2*p-1)
		s2 += q[i] * q[i]
	}
	scale := sigma / math.Sqrt(s2/256) * 65536
	var t [256]int32
	for i := range q {
		t[i] = int32(math.Round(q[i] * scale))
	}
	return &t
}

// stream is one camera.
type stream struct {
	sim       *Sim
	cam       acquisition.CameraInfo
	tex       *texture
	darkq     []int32 // dark<<16 + rounding
	gq        []int32 // gain in 1/65536
	noise     *[256]int32
	noiseSeed uint64
	motion    *acquisition.Motion
	k         int64
	endLine   int64 // first line index (MD) not generated
	v         []int32

	subMD, subCD [supersample]float64 // sample offsets within a line/pixel, mm

	seq    int64
	done   bool
	closed atomic.Bool
}

func newStream(s *Sim, i, width int, offset float64, tile []int8, noise *[256]int32, m *acquisition.Motion) *stream {
	cfg := &s.cfg
	seed := uint64(cfg.Seed)
	st := &stream{
		sim:       s,
		tex:       newTexture(cfg, tile, width, offset),
		darkq:     make([]int32, width),
		gq:        make([]int32, width),
		noise:     noise,
		noiseSeed: hash(seed, 0x6e6f697365, uint64(i)),
		motion:    m,
		k:         int64(cfg.CountsPerLine),
		endLine:   int64(math.Ceil(cfg.LengthM*1000/cfg.LineMM - 1e-9)),
		v:         make([]int32, width),
	}
	for j := range supersample {
		st.subMD[j] = (float64(j) + 0.5) / supersample * cfg.LineMM
		st.subCD[j] = (float64(j) + 0.5) / supersample * cfg.PixelMM
	}
	cam := acquisition.CameraInfo{
		Index:    i,
		Width:    width,
		OffsetMM: offset,
		PixelMM:  cfg.PixelMM,
		Dark:     make([]uint8, width),
		White:    make([]uint8, width),
	}
	r := wyrand(hash(seed, 0x63616c6962, uint64(i)))
	half := float64(width) / 2
	for x := range width {
		dark := math.Round(cfg.DarkLevel + 0.75*r.norm())
		dark = max(0, min(96, dark))
		rel := (float64(x) + 0.5 - half) / half
		vig := 1 - cfg.Vignetting*rel*rel
		prnu := 1 + cfg.GainSpread*max(-3, min(3, r.norm()))
		g := vig * prnu * 0.93
		g = max(0.02, min(g, (255-dark)/255))
		gq := int32(math.Round(g * 65536))
		white := dark + math.Round(255*float64(gq)/65536)
		for white > 255 {
			gq -= 64
			white = dark + math.Round(255*float64(gq)/65536)
		}
		st.gq[x] = gq
		st.darkq[x] = int32(dark)<<16 + 1<<15
		cam.Dark[x] = uint8(dark)
		cam.White[x] = uint8(white)
	}
	st.cam = cam
	return st
}

// Camera describes the stream's camera.
func (st *stream) Camera() acquisition.CameraInfo { return st.cam }

// Close stops the stream; later reads return ErrClosed.
func (st *stream) Close() error {
	st.closed.Store(true)
	return nil
}

// ReadBlock generates the next LinesPerBlock lines into dst. See
// acquisition.Stream.
func (st *stream) ReadBlock(ctx context.Context, dst *acquisition.Block) error {
	if st.closed.Load() {
		return fmt.Errorf("camera %d: %w", st.cam.Index, ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if st.done {
		return io.EOF
	}
	cfg := &st.sim.cfg
	w := st.cam.Width
	if dst.Stride == 0 && len(dst.Pix) > 0 {
		dst.Stride = w
	}
	if dst.Stride < w || dst.Cap() < cfg.LinesPerBlock {
		return fmt.Errorf("camera %d: block holds %d lines of stride %d, need %d lines of %d px: %w",
			st.cam.Index, dst.Cap(), dst.Stride, cfg.LinesPerBlock, w, acquisition.ErrBlockTooSmall)
	}
	if cfg.Realtime {
		st.sim.epochOnce.Do(func() { st.sim.epoch = time.Now() })
	}
	dst.Camera = st.cam.Index
	dst.Width = w
	dst.FirstLine = st.seq
	n := 0
	var tLast float64
	for n < cfg.LinesPerBlock {
		c, t := st.motion.Next()
		if acquisition.LineIndex(c, st.k) >= st.endLine {
			st.done = true
			break
		}
		if n == 0 {
			dst.Time = st.sim.start.Add(time.Duration(t * 1e9))
		}
		st.line(c, st.seq, dst.Pix[n*dst.Stride:][:w])
		dst.Counts[n] = c
		tLast = t
		st.seq++
		n++
	}
	dst.Lines = n
	if n == 0 {
		return io.EOF
	}
	if cfg.Realtime {
		due := st.sim.epoch.Add(time.Duration(tLast * 1e9))
		if d := time.Until(due); d > 0 {
			tm := time.NewTimer(d)
			select {
			case <-tm.C:
			case <-ctx.Done():
				tm.Stop()
				return ctx.Err()
			}
		}
	}
	return nil
}

// line renders the line triggered at count c with sequence number seq.
func (st *stream) line(c, seq int64, out []uint8) {
	y := acquisition.LineIndex(c, st.k)
	st.tex.line(y, st.v)
	if len(st.sim.defects) > 0 {
		st.renderDefects(y, st.v)
	}
	st.expose(seq, st.v, out)
}

// renderDefects adds every defect that covers line y to v, by coverage.
func (st *stream) renderDefects(y int64, v []int32) {
	lineMM := st.sim.cfg.LineMM
	lo := float64(y) * lineMM
	hi := lo + lineMM
	ds := st.sim.defects
	// First defect whose box could reach this line: mdLo >= lo - maxLen.
	from := lo - st.sim.maxLen
	i, j := 0, len(ds)
	for i < j {
		h := int(uint(i+j) >> 1)
		if ds[h].mdLo < from {
			i = h + 1
		} else {
			j = h
		}
	}
	for ; i < len(ds) && ds[i].mdLo < hi; i++ {
		if ds[i].mdHi > lo {
			st.renderDefect(&ds[i], lo, v)
		}
	}
}

// renderDefect adds defect d to the line starting at MD lo (mm).
func (st *stream) renderDefect(d *defect, lo float64, v []int32) {
	off, pmm := st.cam.OffsetMM, st.cam.PixelMM
	x0 := max(0, int(math.Floor((d.cdLo-off)/pmm)))
	x1 := min(len(v), int(math.Ceil((d.cdHi-off)/pmm)))
	for x := x0; x < x1; x++ {
		left := off + float64(x)*pmm
		var sum float64
		for _, sm := range st.subMD {
			for _, sc := range st.subCD {
				sum += d.value(lo+sm, left+sc)
			}
		}
		if sum == 0 {
			continue
		}
		nv := v[x] + int32(math.Round(d.amp*sum/(supersample*supersample)))
		v[x] = max(0, min(255, nv))
	}
}

// expose turns true grey values into raw camera output with noise.
func (st *stream) expose(seq int64, v []int32, out []uint8) {
	r := wyrand(mix64(st.noiseSeed ^ mix64(uint64(seq))))
	nz := st.noise
	w := len(out)
	v, dq, gq := v[:w], st.darkq[:w], st.gq[:w]
	x := 0
	for ; x+8 <= w; x += 8 {
		rb := r.next()
		vv, d, g, o := v[x:x+8:x+8], dq[x:x+8:x+8], gq[x:x+8:x+8], out[x:x+8:x+8]
		for j := range 8 {
			acc := (d[j] + vv[j]*g[j] + nz[uint8(rb>>(8*j))]) >> 16
			o[j] = clamp8(acc)
		}
	}
	if x < w {
		rb := r.next()
		for ; x < w; x++ {
			acc := (dq[x] + v[x]*gq[x] + nz[uint8(rb)]) >> 16
			out[x] = clamp8(acc)
			rb >>= 8
		}
	}
}

func clamp8(v int32) uint8 {
	if v < 0 {
		return 0
	}
	if v > 255 {
		return 255
	}
	return uint8(v)
}

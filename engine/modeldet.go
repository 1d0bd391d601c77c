package engine

import (
	"fmt"
	"math"
	"path/filepath"

	"github.com/webinspect/webinspect/acquisition"
	"github.com/webinspect/webinspect/model/infer"
	"github.com/webinspect/webinspect/model/onnx"
	"github.com/webinspect/webinspect/model/teach"
	"github.com/webinspect/webinspect/rollmap"
)

// # The model detector
//
// With a model (Options.Model), every camera's detect goroutine also feeds
// the camera's prepared lines (flat-fielded, and only those the
// duplicate-line gate accepted: never a line re-imaged after a jog back;
// see prep.go) to an infer.Detector; all cameras share one infer.Pool of
// ONNX Runtime sessions. Its components become regions like the threshold
// detector's, so a defect both detectors see is one defect (detector
// "threshold+onnx:<model>"). A model region carries its anomaly score, not
// a grey-level contrast: its polarity is "mixed" unless the threshold
// detector saw the same defect. Its area counts, like the threshold
// detector's, only the part in the camera's strip of the overlap: a
// component knows its columns and area, not each pixel, so the area is
// shared out over its columns (ownedStrip.share).

// LoadModel loads a model directory for a recipe: the sidecar's tile size
// and channels must fit, the batch and one thread per session come from
// the recipe's model options.
func LoadModel(dir string, r *Recipe) (*onnx.Model, error) {
	o := onnx.DefaultModelOptions()
	o.Batch = max(r.Model.Batch, 1)
	path := dir
	if filepath.Ext(dir) != ".onnx" {
		path = filepath.Join(dir, onnx.ModelFileName)
	}
	m, err := onnx.Load(path, o)
	if err != nil {
		return nil, fmt.Errorf("model %s: %w", dir, err)
	}
	return m, nil
}

// modelInferOptions is the recipe's model options for model m: a taught
// model's sidecar says how it was taught (binning, the context its map
// values depend on), which overrides the recipe's bin and raises the
// overlaps to twice the context so the stitched map has no seams. A
// model taught on whole resized or contrast-normalised images cannot run
// on a line stream and is refused.
func modelInferOptions(mo ModelOptions, m *onnx.Model) (infer.Options, error) {
	o := mo.inferOptions()
	prep, err := teach.PrepFromSidecar(m.Sidecar())
	if err != nil {
		return o, err
	}
	if prep.Normalize != "none" || prep.ResizeW > 0 {
		return o, fmt.Errorf("model %s was taught on whole images (normalize %q, resize %dx%d); the engine feeds it web lines: teach it with normalize none and no resize",
			m.Path(), prep.Normalize, prep.ResizeW, prep.ResizeH)
	}
	if _, ok := m.Sidecar().MadeBy.Params["bin"]; ok {
		o.Bin = prep.Bin
	}
	o.OverlapCD = max(o.OverlapCD, 2*prep.Context)
	o.OverlapMD = max(o.OverlapMD, 2*prep.Context)
	return o, nil
}

// inferOptions is the recipe's model section as infer.Options (it embeds them).
func (m ModelOptions) inferOptions() infer.Options {
	return m.Options
}

// modelDetector is one camera's model detector.
type modelDetector struct {
	det   *infer.Detector
	cam   acquisition.CameraInfo
	k     int64
	id    rollmap.Detector
	strip ownedStrip
	comps []infer.Component
	err   error
}

func newModelDetector(p *infer.Pool, cam acquisition.CameraInfo, k int64, id rollmap.Detector, strip ownedStrip) (*modelDetector, error) {
	d, err := p.NewDetector(cam.Width)
	if err != nil {
		return nil, err
	}
	return &modelDetector{det: d, cam: cam, k: k, id: id, strip: strip}, nil
}

// process feeds the accepted lines of p, in runs of consecutive lines.
func (m *modelDetector) process(dst []region, p *preparedBlock) []region {
	if m.err != nil {
		return dst
	}
	w := p.width
	for i := 0; i < p.lines; {
		if !p.acc[i] {
			i++
			continue
		}
		j := i + 1
		for j < p.lines && p.acc[j] && acquisition.LineIndex(p.counts[j], m.k) == acquisition.LineIndex(p.counts[j-1], m.k)+1 {
			j++
		}
		first := acquisition.LineIndex(p.counts[i], m.k)
		m.comps, m.err = m.det.Process(m.comps[:0], p.pix[i*w:], w, j-i, first, p.counts[i:j])
		dst = m.appendRegions(dst)
		if m.err != nil {
			return dst
		}
		i = j
	}
	return dst
}

// flush closes every open component (a gap or the end of the stream).
func (m *modelDetector) flush(dst []region) []region {
	if m.err != nil {
		return dst
	}
	m.comps, m.err = m.det.Flush(m.comps[:0])
	return m.appendRegions(dst)
}

// frontier is the smallest encoder count a region this detector returns
// later can start at (math.MaxInt64 when none can).
func (m *modelDetector) frontier() int64 {
	if m.err != nil {
		return math.MaxInt64
	}
	line, ok := m.det.Frontier()
	if !ok {
		return math.MaxInt64
	}
	return line * m.k
}

func (m *modelDetector) appendRegions(dst []region) []region {
	for _, c := range m.comps {
		dst = append(dst, region{
			cam:        m.cam.Index,
			c0:         c.Count0,
			c1:         c.Count1,
			cd0:        m.cam.OffsetMM + float64(c.Col0)*m.cam.PixelMM,
			cd1:        m.cam.OffsetMM + float64(c.Col1)*m.cam.PixelMM,
			area:       c.Area,
			owned:      m.strip.share(c.Col0, c.Col1, c.Area),
			score:      float64(c.Peak),
			scoreSum:   float64(c.Mean) * float64(c.Area),
			scoreArea:  c.Area,
			detectorID: m.id,
		})
	}
	return dst
}

// failure is the error that stopped the detector, or nil.
func (m *modelDetector) failure() error { return m.err }

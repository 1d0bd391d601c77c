package teach

import (
	"fmt"
	"math"

	"github.com/webinspect/webinspect/model/onnx"
)

// Scorer scores whole images with a loaded model through ONNX Runtime: it
// prepares the image as the model was taught (PrepFromSidecar), cuts it
// into the model's tiles (the last tile of a row or column overlaps its
// neighbour; an image smaller than a tile is mirrored out to the tile
// size), runs each tile, and stitches the anomaly maps (maximum where tiles
// overlap). A Scorer owns one Session and is not safe for concurrent use;
// make one per worker. Score allocates per image (preparation, padding,
// the full-size map): it serves teaching and evaluation; the engine's
// line-rate path feeds tiles to onnx.Session itself.
type Scorer struct {
	m    *onnx.Model
	sess *onnx.Session
	prep Prep
	amap []float32 // stitched map at prepared resolution, reused
	e0   []int32   // web extent per prepared row, reused
	e1   []int32
}

// NewScorer opens a session on m.
func NewScorer(m *onnx.Model) (*Scorer, error) {
	p, err := PrepFromSidecar(m.Sidecar())
	if err != nil {
		return nil, err
	}
	if m.Channels() != 1 && m.Channels() != 3 {
		return nil, fmt.Errorf("%w: model takes %d channels", ErrOptions, m.Channels())
	}
	s, err := m.NewSession()
	if err != nil {
		return nil, err
	}
	return &Scorer{m: m, sess: s, prep: p}, nil
}

// keep returns the part [a, b) of a tile at origin o (side t, image side
// n) whose scores are used: a margin m is dropped on sides that face
// another tile, since patches there miss their context.
func keep(o, t, n, m int) (a, b int) {
	a, b = 0, t
	if o > 0 {
		a = m
	}
	if o+t < n {
		b = t - m
	}
	return a, b
}

// Prep returns how the scorer prepares images.
func (s *Scorer) Prep() Prep { return s.prep }

// Close releases the session.
func (s *Scorer) Close() error { return s.sess.Close() }

// Score returns the image score (maximum of the anomaly map over the
// image) and, when dst is not nil, the anomaly map at the image's own size
// appended to dst[:0] (resized back from the model's resolution).
func (s *Scorer) Score(im Image, dst []float32) (float32, []float32, error) {
	if err := im.check(0); err != nil {
		return 0, dst, err
	}
	pim := s.prep.Apply(im)
	th, tw := s.prep.TileH, s.prep.TileW
	edges := s.prep.Edge.Active()
	if edges {
		s.e0, s.e1 = s.prep.Edges(pim, s.e0, s.e1)
	}
	pad := padReflect(pim, tw, th)
	if edges {
		// Rows and columns added by padding mirror the image: a row that
		// reaches the image's right end shows no edge there.
		for y := range pim.H {
			if int(s.e1[y]) == pim.W && s.e1[y] > s.e0[y] {
				s.e1[y] = int32(pad.W)
			}
		}
		for y := pim.H; y < pad.H; y++ {
			r := reflectIndex(y, pim.H)
			s.e0, s.e1 = append(s.e0, s.e0[r]), append(s.e1, s.e1[r])
		}
	}
	if cap(s.amap) < pad.W*pad.H {
		s.amap = make([]float32, pad.W*pad.H)
	}
	amap := s.amap[:pad.W*pad.H]
	for i := range amap {
		amap[i] = float32(math.Inf(-1))
	}
	tile := []onnx.Tile{{Stride: pad.W}}
	my, mx := s.prep.margin(th), s.prep.margin(tw)
	for _, y0 := range tileOrigins(pad.H, th, my) {
		ya, yb := keep(y0, th, pad.H, my)
		for _, x0 := range tileOrigins(pad.W, tw, mx) {
			xa, xb := keep(x0, tw, pad.W, mx)
			tile[0].Pix = pad.Pix[y0*pad.W+x0:]
			if edges {
				tile[0].E0, tile[0].E1 = s.e0[y0:y0+th], s.e1[y0:y0+th]
				tile[0].X0, tile[0].RowW = x0, pad.W
			}
			res, err := s.sess.RunTiles(tile)
			if err != nil {
				return 0, dst, fmt.Errorf("teach: score tile at (%d,%d): %w", x0, y0, err)
			}
			tm := res.Map(0)
			for y := ya; y < yb; y++ {
				row := amap[(y0+y)*pad.W+x0 : (y0+y)*pad.W+x0+tw]
				src := tm[y*tw : (y+1)*tw]
				for x := xa; x < xb; x++ {
					row[x] = max(row[x], src[x])
				}
			}
		}
	}
	// Off the web nothing is scored.
	if edges {
		for y := range pim.H {
			row := amap[y*pad.W : (y+1)*pad.W]
			e0, e1 := int(s.e0[y]), min(int(s.e1[y]), pad.W)
			if e1 <= e0 {
				clear(row)
				continue
			}
			clear(row[:e0])
			clear(row[e1:])
		}
	}
	// Crop to the prepared image and take the score there.
	score := float32(math.Inf(-1))
	crop := amap
	if pad.W != pim.W || pad.H != pim.H {
		crop = make([]float32, pim.W*pim.H)
		for y := range pim.H {
			copy(crop[y*pim.W:(y+1)*pim.W], amap[y*pad.W:y*pad.W+pim.W])
		}
	}
	for _, v := range crop[:pim.W*pim.H] {
		score = max(score, v)
	}
	if dst == nil {
		return score, nil, nil
	}
	dst = dst[:0]
	if cap(dst) < im.W*im.H {
		dst = make([]float32, im.W*im.H)
	}
	dst = dst[:im.W*im.H]
	if pim.W == im.W && pim.H == im.H {
		copy(dst, crop[:im.W*im.H])
	} else {
		// The map covers the binned area (2·pim.W × 2·pim.H when binning
		// dropped an odd column or row); resize onto that and clamp.
		cw, ch := im.W, im.H
		if s.prep.ResizeW == 0 && s.prep.Bin == 2 {
			cw, ch = 2*pim.W, 2*pim.H
		}
		if cw == im.W && ch == im.H {
			resizeF32(dst, im.W, im.H, crop[:pim.W*pim.H], pim.W, pim.H)
		} else {
			tmp := make([]float32, cw*ch)
			resizeF32(tmp, cw, ch, crop[:pim.W*pim.H], pim.W, pim.H)
			for y := range im.H {
				sy := min(y, ch-1)
				for x := range im.W {
					dst[y*im.W+x] = tmp[sy*cw+min(x, cw-1)]
				}
			}
		}
	}
	return score, dst, nil
}

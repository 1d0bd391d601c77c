package teach

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/webinspect/webinspect/kernels"
	"github.com/webinspect/webinspect/model/edge"
	"github.com/webinspect/webinspect/model/onnx"
)

// Prep is how pixels are prepared before they reach the model: contrast
// normalisation, resize, binning and the tile size. Teach records it in the
// sidecar's made_by.params; PrepFromSidecar reads it back.
type Prep struct {
	Normalize        string // "image" or "none"
	ResizeW, ResizeH int    // 0: keep size
	Bin              int    // 1 or 2
	TileH, TileW     int    // model input tile
	// Context is how far, in prepared pixels, a map value depends on its
	// neighbours (patch, smoothing, scales); tiles overlap by twice it so
	// that no scored pixel lacks context. 0 for imported models.
	Context int
	// Edge finds the web's edges on prepared lines (mode none: no edges).
	Edge edge.Options
}

// margin is the overlap margin for tiles of side t: Context, or 0 when
// the tile is too small to keep an interior.
func (p Prep) margin(t int) int {
	if 4*p.Context >= t {
		return 0
	}
	return p.Context
}

func (o *Options) prep() Prep {
	n := o.Normalize
	if n == "" {
		n = "none"
	}
	e := o.Edge
	if e.Mode == edge.Auto {
		e.Mode = edge.None
	}
	return Prep{Normalize: n, ResizeW: o.ResizeW, ResizeH: o.ResizeH, Bin: o.Bin, TileH: o.TileH, TileW: o.TileW,
		Context: (o.Patch/2 + o.Smooth/2 + 1) << (o.Scales - 1), Edge: e}
}

// params writes p into made_by params.
func (p Prep) params(dst map[string]string) {
	dst["normalize"] = p.Normalize
	dst["bin"] = strconv.Itoa(p.Bin)
	dst["tile"] = fmt.Sprintf("%dx%d", p.TileH, p.TileW)
	dst["context"] = strconv.Itoa(p.Context)
	p.Edge.Params(dst)
	dst["resize"] = ""
	if p.ResizeW > 0 {
		dst["resize"] = fmt.Sprintf("%dx%d", p.ResizeW, p.ResizeH)
	}
}

// PrepFromSidecar returns the preparation a model expects: the tile from
// the input shape, and bin, resize and normalize from made_by.params
// (defaults for an imported model: no binning, no resize, no normalisation).
func PrepFromSidecar(sc onnx.Sidecar) (Prep, error) {
	p := Prep{Normalize: "none", Bin: 1, TileH: sc.Height(), TileW: sc.Width()}
	pm := sc.MadeBy.Params
	if v := pm["bin"]; v != "" {
		b, err := strconv.Atoi(v)
		if err != nil || (b != 1 && b != 2) {
			return p, fmt.Errorf("%w: sidecar made_by.params.bin is %q, want 1 or 2", ErrOptions, v)
		}
		p.Bin = b
	}
	if v := pm["resize"]; v != "" {
		w, h, ok := strings.Cut(v, "x")
		rw, err1 := strconv.Atoi(w)
		rh, err2 := strconv.Atoi(h)
		if !ok || err1 != nil || err2 != nil || rw < 1 || rh < 1 {
			return p, fmt.Errorf("%w: sidecar made_by.params.resize is %q, want WxH", ErrOptions, v)
		}
		p.ResizeW, p.ResizeH = rw, rh
	}
	if v := pm["context"]; v != "" {
		c, err := strconv.Atoi(v)
		if err != nil || c < 0 {
			return p, fmt.Errorf("%w: sidecar made_by.params.context is %q, want a pixel count ≥ 0", ErrOptions, v)
		}
		p.Context = c
	}
	e, _, err := edge.FromParams(pm)
	if err != nil {
		return p, fmt.Errorf("%w: %v", ErrOptions, err)
	}
	p.Edge = e
	switch v := pm["normalize"]; v {
	case "", "none":
	case "image":
		p.Normalize = "image"
	default:
		return p, fmt.Errorf("%w: sidecar made_by.params.normalize is %q, want none or image", ErrOptions, v)
	}
	return p, nil
}

// Apply prepares im for the model: normalise, resize, bin. The result is
// owned by the caller; im is not modified.
func (p Prep) Apply(im Image) Image {
	out := Image{W: im.W, H: im.H, Pix: im.Pix[:im.W*im.H]}
	if p.Normalize == "image" {
		out = normalizeImage(out)
	}
	if p.ResizeW > 0 && (p.ResizeW != out.W || p.ResizeH != out.H) {
		out = resizeGray(out, p.ResizeW, p.ResizeH)
	}
	if p.Bin == 2 && out.W >= 2 && out.H >= 2 {
		b := Image{W: out.W / 2, H: out.H / 2}
		b.Pix = make([]uint8, b.W*b.H)
		kernels.Bin2(b.Pix, out.Pix, out.W)
		out = b
	}
	if &out.Pix[0] == &im.Pix[0] {
		out.Pix = append([]uint8(nil), out.Pix...)
	}
	return out
}

// Edges finds the web's edges on every row of a prepared image and fills
// the background with the mirrored web (in place); e0 and e1 receive
// each row's extent (see model/edge), grown to im.H rows.
func (p Prep) Edges(im Image, e0, e1 []int32) ([]int32, []int32) {
	e0, e1 = e0[:0], e1[:0]
	for y := range im.H {
		a, b := edge.FindFill(im.Pix[y*im.W:(y+1)*im.W], &p.Edge)
		e0, e1 = append(e0, int32(a)), append(e1, int32(b))
	}
	return e0, e1
}

// normalizeImage maps the image to mean 128 and standard deviation 40.
func normalizeImage(im Image) Image {
	var s, s2 float64
	for _, v := range im.Pix {
		f := float64(v)
		s += f
		s2 += f * f
	}
	n := float64(len(im.Pix))
	mean := s / n
	sd := math.Sqrt(max(s2/n-mean*mean, 1))
	var lut [256]uint8
	for i := range lut {
		lut[i] = clamp8(128 + 40*(float64(i)-mean)/sd)
	}
	out := Image{W: im.W, H: im.H, Pix: make([]uint8, len(im.Pix))}
	for i, v := range im.Pix {
		out.Pix[i] = lut[v]
	}
	return out
}

func clamp8(v float64) uint8 {
	switch {
	case v <= 0:
		return 0
	case v >= 255:
		return 255
	}
	return uint8(v + 0.5)
}

// resizeGray resizes bilinearly with pixel centres aligned (half-pixel).
func resizeGray(im Image, w, h int) Image {
	out := Image{W: w, H: h, Pix: make([]uint8, w*h)}
	f := make([]float32, im.W*im.H)
	for i, v := range im.Pix {
		f[i] = float32(v)
	}
	g := make([]float32, w*h)
	resizeF32(g, w, h, f, im.W, im.H)
	for i, v := range g {
		out.Pix[i] = clamp8(float64(v))
	}
	return out
}

// resizeF32 resizes src (sw×sh) bilinearly into dst (dw×dh), half-pixel
// aligned, clamping at the borders.
func resizeF32(dst []float32, dw, dh int, src []float32, sw, sh int) {
	sx := float64(sw) / float64(dw)
	sy := float64(sh) / float64(dh)
	x0s := make([]int, dw)
	x1s := make([]int, dw)
	fxs := make([]float32, dw)
	for x := range dw {
		fx := (float64(x)+0.5)*sx - 0.5
		fx = min(max(fx, 0), float64(sw-1))
		x0 := int(fx)
		x0s[x], x1s[x], fxs[x] = x0, min(x0+1, sw-1), float32(fx-float64(x0))
	}
	for y := range dh {
		fy := (float64(y)+0.5)*sy - 0.5
		fy = min(max(fy, 0), float64(sh-1))
		y0 := int(fy)
		y1 := min(y0+1, sh-1)
		wy := float32(fy - float64(y0))
		r0, r1 := src[y0*sw:(y0+1)*sw], src[y1*sw:(y1+1)*sw]
		d := dst[y*dw : (y+1)*dw]
		for x := range d {
			a := r0[x0s[x]] + (r0[x1s[x]]-r0[x0s[x]])*fxs[x]
			b := r1[x0s[x]] + (r1[x1s[x]]-r1[x0s[x]])*fxs[x]
			d[x] = a + (b-a)*wy
		}
	}
}

// tileOrigins returns tile start positions covering n pixels with tiles of
// side t overlapping by 2m: stride t-2m, the last tile aligned to the end.
// n ≤ t gives one tile at 0 (the caller pads).
func tileOrigins(n, t, m int) []int {
	if n <= t {
		return []int{0}
	}
	var o []int
	for x := 0; x+t < n; x += t - 2*m {
		o = append(o, x)
	}
	return append(o, n-t)
}

// padReflect returns im grown to at least w×h by mirroring its borders
// (without repeating the edge pixel when the image is wide enough).
func padReflect(im Image, w, h int) Image {
	if im.W >= w && im.H >= h {
		return im
	}
	ow, oh := max(im.W, w), max(im.H, h)
	out := Image{W: ow, H: oh, Pix: make([]uint8, ow*oh)}
	for y := range oh {
		sy := reflectIndex(y, im.H)
		for x := range ow {
			out.Pix[y*ow+x] = im.Pix[sy*im.W+reflectIndex(x, im.W)]
		}
	}
	return out
}

func reflectIndex(i, n int) int {
	if n == 1 {
		return 0
	}
	p := 2 * (n - 1)
	i %= p
	if i >= n {
		i = p - i
	}
	return i
}

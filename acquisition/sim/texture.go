package sim

import (
	"math"
)

// Texture parameters. Each material keeps every column's texture within
// about ±12 grey levels of its running mean (per-column sigma <= ~6), so a
// per-column background model does not flag good material.
const (
	fabricBase       = 130
	fabricWarpPitch  = 1.05 // mm, CD spacing of the warp yarns (running along MD)
	fabricWeftPitch  = 0.95 // mm, MD spacing of the weft yarns (running along CD)
	fabricTopOffset  = 3.5  // warp on top is this much brighter than the base, weft on top this much darker
	fabricYarnAmp    = 2.0  // bright crown, dark gaps across each yarn
	fabricToneAmp    = 2.0  // per-yarn tone variation
	leatherBase      = 110
	leatherTile      = 1024 // grain tile size in pixels/lines (power of two)
	leatherGrainSig  = 2.2  // grain standard deviation before clamping
	leatherGrainPeak = 5    // grain clamp
	filmBase         = 170
)

// texture makes the true grey value of good material for one camera. The
// per-column tables are the camera's; tile is shared read-only between
// cameras.
type texture struct {
	material string
	seed     uint64
	lineMM   float64

	col  []int32 // fabric: value where the warp is on top; leather, film: base + CD profile
	mask []int32 // fabric: -1 where the warp is on top on even weft yarns, else 0
	tx   []int32 // leather: tile column of each pixel
	tile []int8  // leather: grain tile, leatherTile x leatherTile, row-major

	md [4]float64 // phases of the slow MD tone waves

	// lot: lines lotLo ≤ y < lotHi are of another yarn lot (Config.Lot),
	// blending in over lotRamp lines at each end.
	lotLo, lotHi, lotRamp int64
	base                  int32
	lotContrast, lotShift float64
}

// newTexture builds the tables for a camera whose pixel x covers CD
// [offsetMM+x*pixelMM, offsetMM+(x+1)*pixelMM).
func newTexture(cfg *Config, tile []int8, width int, offsetMM float64) *texture {
	seed := uint64(cfg.Seed)
	t := &texture{
		material: cfg.Material,
		seed:     seed,
		lineMM:   cfg.LineMM,
		col:      make([]int32, width),
		tile:     tile,
	}
	for i := range t.md {
		t.md[i] = 2 * math.Pi * unitHash(hash(seed, 0x6d64, uint64(i)))
	}
	switch cfg.Material {
	case Fabric:
		t.base = fabricBase
	case Leather:
		t.base = leatherBase
	case Film:
		t.base = filmBase
	}
	if l := cfg.Lot; l != nil {
		c := l.Contrast
		if c == 0 {
			c = 1
		}
		t.lotLo = int64(math.Ceil(l.AtM*1000/cfg.LineMM - 0.5))
		t.lotHi = int64(math.Ceil((l.AtM+l.LengthM)*1000/cfg.LineMM - 0.5))
		t.lotRamp = int64(math.Round(l.RampM * 1000 / cfg.LineMM))
		t.lotContrast, t.lotShift = c, l.Shift
	}
	cdPhase := func(i uint64) float64 { return 2 * math.Pi * unitHash(hash(seed, 0x6364, i)) }
	switch cfg.Material {
	case Fabric:
		t.mask = make([]int32, width)
		for x := range width {
			cd := offsetMM + (float64(x)+0.5)*cfg.PixelMM
			yarn := int64(math.Floor(cd / fabricWarpPitch))
			u := cd/fabricWarpPitch - float64(yarn)
			tone := fabricToneAmp * unitHash(hash(seed, 0x77617270, uint64(yarn)))
			t.col[x] = int32(math.Round(fabricBase + fabricTopOffset + fabricYarnAmp*yarnProfile(u) + tone))
			if yarn&1 == 0 {
				t.mask[x] = -1
			}
		}
	case Leather:
		t.tx = make([]int32, width)
		p1, p2 := cdPhase(1), cdPhase(2)
		for x := range width {
			cd := offsetMM + (float64(x)+0.5)*cfg.PixelMM
			// Slow natural tone across the hide: ±7.5 over metres.
			tone := 5*math.Sin(2*math.Pi*cd/1700+p1) + 2.5*math.Sin(2*math.Pi*cd/530+p2)
			t.col[x] = int32(math.Round(leatherBase + tone))
			t.tx[x] = int32(floorMod(int64(math.Floor(cd/cfg.PixelMM)), leatherTile))
		}
	case Film:
		// Die lines: constant offsets of 1-3 grey levels on narrow CD bands,
		// about one per 150 mm, plus a faint thickness profile.
		prof := make([]float64, width)
		p1 := cdPhase(1)
		for x := range width {
			cd := offsetMM + (float64(x)+0.5)*cfg.PixelMM
			prof[x] = filmBase + 1.5*math.Sin(2*math.Pi*cd/900+p1)
		}
		n := int(cfg.WidthMM/150) + 1
		for i := range n {
			h := hash(seed, 0x6469, uint64(i))
			center := (unitHash(h) + 1) / 2 * cfg.WidthMM
			half := (0.5 + 3.5*(unitHash(mix64(h))+1)/2) / 2
			off := 1 + float64(mix64(h^0x55)%3)
			if mix64(h^0xaa)&1 == 0 {
				off = -off
			}
			for x := range width {
				cd := offsetMM + (float64(x)+0.5)*cfg.PixelMM
				if math.Abs(cd-center) <= half {
					prof[x] += off
				}
			}
		}
		for x := range width {
			t.col[x] = int32(math.Round(prof[x]))
		}
	}
	return t
}

// yarnProfile is the brightness across one yarn, u in [0, 1): a bright crown
// (+1) falling to dark gaps (-1) at the edges.
func yarnProfile(u float64) float64 {
	d := 2*u - 1
	return 1 - 2*d*d
}

// line fills v with the texture of MD line y, which covers
// [y*lineMM, (y+1)*lineMM).
func (t *texture) line(y int64, v []int32) {
	v = v[:len(t.col)]
	if y >= t.lotLo && y < t.lotHi {
		defer t.lot(y, v)
	}
	md := (float64(y) + 0.5) * t.lineMM // mm
	switch t.material {
	case Fabric:
		yarn := int64(math.Floor(md / fabricWeftPitch))
		u := md/fabricWeftPitch - float64(yarn)
		tone := fabricToneAmp * unitHash(hash(t.seed, 0x77656674, uint64(yarn)))
		weft := int32(math.Round(fabricBase - fabricTopOffset + fabricYarnAmp*yarnProfile(u) + tone))
		var flip int32
		if yarn&1 != 0 {
			flip = -1
		}
		col, mask := t.col[:len(v)], t.mask[:len(v)]
		for x := range v {
			m := mask[x] ^ flip
			v[x] = col[x]&m | weft&^m
		}
	case Leather:
		m := md / 1000
		tone := int32(math.Round(5*math.Sin(2*math.Pi*m/4.3+t.md[0]) + 2.5*math.Sin(2*math.Pi*m/1.7+t.md[1])))
		row := t.tile[floorMod(y, leatherTile)*leatherTile:][:leatherTile]
		col, tx := t.col[:len(v)], t.tx[:len(v)]
		for x := range v {
			v[x] = col[x] + tone + int32(row[tx[x]&(leatherTile-1)])
		}
	case Film:
		m := md / 1000
		tone := int32(math.Round(2*math.Sin(2*math.Pi*m/23+t.md[0]) + math.Sin(2*math.Pi*m/7+t.md[1])))
		col := t.col[:len(v)]
		for x := range v {
			v[x] = col[x] + tone
		}
	}
}

// lot turns line y's texture into the other yarn lot's (Config.Lot).
func (t *texture) lot(y int64, v []int32) {
	f := 1.0
	if t.lotRamp > 0 {
		f = min(1, float64(y-t.lotLo+1)/float64(t.lotRamp), float64(t.lotHi-y)/float64(t.lotRamp))
	}
	mul := int32(math.Round((1 + f*(t.lotContrast-1)) * 256))
	add := int32(math.Round(f * t.lotShift))
	for x, p := range v {
		v[x] = t.base + (mul*(p-t.base))>>8 + add
	}
}

// leatherGrain makes the shared grain tile: three octaves of smooth value
// noise on lattices that divide the tile, so the tile wraps seamlessly,
// scaled to leatherGrainSig and clamped to ±leatherGrainPeak.
func leatherGrain(seed uint64) []int8 {
	const n = leatherTile
	acc := make([]float64, n*n)
	for o, oct := range []struct {
		cell   int
		weight float64
	}{{32, 0.3}, {8, 1.0}, {4, 0.6}} {
		l := n / oct.cell
		r := wyrand(hash(seed, 0x6772, uint64(o)))
		lat := make([]float64, l*l)
		for i := range lat {
			lat[i] = r.norm() * oct.weight
		}
		for y := range n {
			gy := y / oct.cell
			fy := smooth(float64(y%oct.cell) / float64(oct.cell))
			y0, y1 := gy*l, ((gy+1)%l)*l
			for x := range n {
				gx := x / oct.cell
				fx := smooth(float64(x%oct.cell) / float64(oct.cell))
				x1 := (gx + 1) % l
				a := lat[y0+gx] + (lat[y0+x1]-lat[y0+gx])*fx
				b := lat[y1+gx] + (lat[y1+x1]-lat[y1+gx])*fx
				acc[y*n+x] += a + (b-a)*fy
			}
		}
	}
	var s2 float64
	for _, a := range acc {
		s2 += a * a
	}
	scale := leatherGrainSig / math.Sqrt(s2/float64(len(acc)))
	tile := make([]int8, n*n)
	for i, a := range acc {
		v := math.Round(a * scale)
		tile[i] = int8(max(-leatherGrainPeak, min(leatherGrainPeak, v)))
	}
	return tile
}

// smooth is the smoothstep interpolation weight.
func smooth(f float64) float64 { return f * f * (3 - 2*f) }

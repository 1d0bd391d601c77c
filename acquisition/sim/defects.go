package sim

import (
	"fmt"
	"math"
	"slices"
)

// Defect classes the simulator injects.
const (
	ClassHole    = "hole"
	ClassStain   = "stain"
	ClassStreak  = "streak"
	ClassKnot    = "knot"
	ClassSlub    = "slub"
	ClassCrease  = "crease"
	ClassGel     = "gel"
	ClassScratch = "scratch"
)

// Polarities of a defect's contrast.
const (
	Bright = "bright"
	Dark   = "dark"
	Mixed  = "mixed" // crease: one side bright, the other dark
)

// Placement rules.
const (
	clearanceMM    = 30   // minimum gap between two defects' bounding boxes
	edgeMarginMM   = 5    // keep defects this far inside the web edges
	endMarginMM    = 10   // and this far before the end of the roll
	smallFraction  = 0.15 // share of defects below the 1 mm detection limit
	detectLimitMM  = 1.0
	minWidthMM     = 0.5 // narrowest dimension of any defect
	straddleShare  = 0.15
	placeTries     = 400 // positions tried for one shape
	reshapeTries   = 30  // shapes tried for one defect
	supersample    = 4   // coverage by supersample x supersample points per pixel
	maxStainParts  = 4
	contrastMin    = 45.0
	contrastMax    = 90.0
	contrastMinSub = 25.0 // below the detection limit
	contrastMaxSub = 60.0
)

// shapeKind is the geometry of a part.
type shapeKind uint8

const (
	ellipse   shapeKind = iota
	rectangle           // value +1 on both sides of its axis
	crease              // rectangle, +1 on the w >= 0 side, -1 on the other
	gel                 // circle: 1 in the inner 60 % of the radius, 0.5 in the rim
)

// part is one primitive in web coordinates (MD mm, CD mm). u runs along the
// primitive's main axis, at angle theta from MD towards CD; w across it.
type part struct {
	kind     shapeKind
	cm, cc   float64 // centre MD, CD (mm)
	cos, sin float64
	a, b     float64 // half-length along u, half-width along w
}

// bbox returns the exact bounding box of the part.
func (p *part) bbox() (mdLo, mdHi, cdLo, cdHi float64) {
	c, s := math.Abs(p.cos), math.Abs(p.sin)
	var hm, hc float64
	if p.kind == ellipse || p.kind == gel {
		hm = math.Sqrt(p.a*p.a*c*c + p.b*p.b*s*s)
		hc = math.Sqrt(p.a*p.a*s*s + p.b*p.b*c*c)
	} else {
		hm = p.a*c + p.b*s
		hc = p.a*s + p.b*c
	}
	return p.cm - hm, p.cm + hm, p.cc - hc, p.cc + hc
}

// value returns the part's shape value at a point: 0 outside.
func (p *part) value(md, cd float64) float64 {
	dm, dc := md-p.cm, cd-p.cc
	u := dm*p.cos + dc*p.sin
	w := -dm*p.sin + dc*p.cos
	switch p.kind {
	case ellipse:
		if (u*u)/(p.a*p.a)+(w*w)/(p.b*p.b) <= 1 {
			return 1
		}
	case gel:
		r2 := (u*u)/(p.a*p.a) + (w*w)/(p.b*p.b)
		if r2 <= 0.36 {
			return 1
		}
		if r2 <= 1 {
			return 0.5
		}
	case rectangle:
		if math.Abs(u) <= p.a && math.Abs(w) <= p.b {
			return 1
		}
	case crease:
		if math.Abs(u) <= p.a && math.Abs(w) <= p.b {
			if w >= 0 {
				return 1
			}
			return -1
		}
	}
	return 0
}

// defect is an injected defect: a union of parts, all with the same signed
// amplitude, and its truth record.
type defect struct {
	truth                  Truth
	mdLo, mdHi, cdLo, cdHi float64 // bounding box, mm
	amp                    float64 // signed contrast in grey levels
	parts                  []part
}

// value is the shape value at a point: the strongest part wins, so
// overlapping stain blobs do not add up.
func (d *defect) value(md, cd float64) float64 {
	var best float64
	for i := range d.parts {
		if v := d.parts[i].value(md, cd); math.Abs(v) > math.Abs(best) {
			best = v
		}
	}
	return best
}

func (d *defect) setBBox() {
	d.mdLo, d.cdLo = math.Inf(1), math.Inf(1)
	d.mdHi, d.cdHi = math.Inf(-1), math.Inf(-1)
	for i := range d.parts {
		a, b, c, e := d.parts[i].bbox()
		d.mdLo, d.mdHi = min(d.mdLo, a), max(d.mdHi, b)
		d.cdLo, d.cdHi = min(d.cdLo, c), max(d.cdHi, e)
	}
}

// move shifts the defect so its bounding box starts at (mdLo, cdLo).
func (d *defect) move(mdLo, cdLo float64) {
	dm, dc := mdLo-d.mdLo, cdLo-d.cdLo
	for i := range d.parts {
		d.parts[i].cm += dm
		d.parts[i].cc += dc
	}
	d.mdLo, d.mdHi = d.mdLo+dm, d.mdHi+dm
	d.cdLo, d.cdHi = d.cdLo+dc, d.cdHi+dc
}

// classWeights are the relative frequencies of the classes per material.
var classWeights = map[string][]struct {
	class  string
	weight float64
}{
	Fabric: {
		{ClassHole, 2}, {ClassStain, 3}, {ClassStreak, 2}, {ClassKnot, 3},
		{ClassSlub, 3}, {ClassCrease, 1}, {ClassGel, 0.5}, {ClassScratch, 1},
	},
	Leather: {
		{ClassHole, 2}, {ClassStain, 3}, {ClassStreak, 0.5}, {ClassKnot, 1},
		{ClassSlub, 0.5}, {ClassCrease, 2}, {ClassGel, 0.5}, {ClassScratch, 3},
	},
	Film: {
		{ClassHole, 1}, {ClassStain, 1}, {ClassStreak, 2}, {ClassKnot, 0.5},
		{ClassCrease, 1.5}, {ClassGel, 4}, {ClassScratch, 2},
	},
}

func pickClass(r *wyrand, material string) string {
	ws := classWeights[material]
	var total float64
	for _, w := range ws {
		total += w.weight
	}
	x := r.float() * total
	for _, w := range ws {
		if x < w.weight {
			return w.class
		}
		x -= w.weight
	}
	return ws[len(ws)-1].class
}

func rot(theta float64) (float64, float64) { return math.Cos(theta), math.Sin(theta) }

// shape draws a defect of class class at the origin. small asks for one
// below the detection limit (largest dimension < 1 mm).
func shape(r *wyrand, class string, small bool) defect {
	d := defect{}
	pol := r.sign()
	contrast := r.uniform(contrastMin, contrastMax)
	if small {
		contrast = r.uniform(contrastMinSub, contrastMaxSub)
		// Small defects are round or nearly so; 0.5-0.95 mm.
		switch class {
		case ClassHole, ClassGel, ClassKnot:
		default:
			class = ClassGel
		}
		a := r.uniform(minWidthMM, 0.95) / 2
		b := r.uniform(minWidthMM, 0.95) / 2
		c, s := rot(r.uniform(0, math.Pi))
		k := ellipse
		if class == ClassGel {
			k = gel
		}
		d.parts = []part{{kind: k, cos: c, sin: s, a: a, b: b}}
		if class == ClassHole || class == ClassGel {
			pol = 1
		}
		d.truth.Class = class
		d.amp = pol * contrast
		d.truth.Contrast = contrast
		d.truth.Polarity = polarity(pol)
		d.setBBox()
		return d
	}
	switch class {
	case ClassHole:
		pol = 1
		a := r.logUniform(1, 20) / 2
		b := max(minWidthMM/2, a*r.uniform(0.5, 1))
		c, s := rot(r.uniform(0, math.Pi))
		d.parts = []part{{kind: ellipse, cos: c, sin: s, a: a, b: b}}
	case ClassStain:
		size := r.logUniform(3, 60)
		n := 2 + r.intn(maxStainParts-1)
		for range n {
			c, s := rot(r.uniform(0, math.Pi))
			d.parts = append(d.parts, part{
				kind: ellipse,
				cm:   r.uniform(-size/4, size/4),
				cc:   r.uniform(-size/4, size/4),
				cos:  c, sin: s,
				a: r.uniform(size/8, size/4),
				b: r.uniform(size/8, size/4),
			})
		}
	case ClassStreak:
		d.parts = []part{{kind: rectangle, cos: 1, a: r.logUniform(50, 1500) / 2, b: r.uniform(0.5, 1.5) / 2}}
	case ClassKnot:
		a := r.uniform(1, 4) / 2
		d.parts = []part{{kind: ellipse, cos: 1, a: a, b: a * r.uniform(0.85, 1)}}
	case ClassSlub:
		// Elongated along CD: u runs across the web (theta = 90 degrees).
		d.parts = []part{{kind: ellipse, cos: 0, sin: 1, a: r.uniform(5, 30) / 2, b: r.uniform(1, 2) / 2}}
	case ClassCrease:
		pol = 0
		theta := 0.0
		if r.next()&1 == 0 {
			theta = r.uniform(-5, 5) * math.Pi / 180
		}
		c, s := rot(theta)
		d.parts = []part{{kind: crease, cos: c, sin: s, a: r.uniform(100, 600) / 2, b: r.uniform(1, 2.5) / 2}}
	case ClassGel:
		pol = 1
		a := r.uniform(1, 3) / 2
		d.parts = []part{{kind: gel, cos: 1, a: a, b: a}}
	case ClassScratch:
		c, s := rot(r.uniform(0, math.Pi))
		d.parts = []part{{kind: rectangle, cos: c, sin: s, a: r.logUniform(10, 200) / 2, b: r.uniform(0.5, 1) / 2}}
	default:
		panic("sim: unknown class " + class)
	}
	d.truth.Class = class
	d.truth.Contrast = contrast
	d.truth.Polarity = polarity(pol)
	if pol == 0 {
		pol = 1 // crease: parts carry the sign
	}
	d.amp = pol * contrast
	d.setBBox()
	// A rotated shape's box can be smaller than its diameter: keep every
	// defect meant to be detectable at or above the detection limit.
	if size := max(d.mdHi-d.mdLo, d.cdHi-d.cdLo); size < detectLimitMM*1.001 {
		k := detectLimitMM * 1.001 / size
		for i := range d.parts {
			p := &d.parts[i]
			p.a, p.b, p.cm, p.cc = p.a*k, p.b*k, p.cm*k, p.cc*k
		}
		d.setBBox()
	}
	return d
}

func polarity(p float64) string {
	switch {
	case p > 0:
		return Bright
	case p < 0:
		return Dark
	}
	return Mixed
}

// overlapZones returns the CD intervals shared by neighbouring cameras.
func overlapZones(cfg *Config) [][2]float64 {
	var z [][2]float64
	span := cfg.cameraSpanMM()
	for i := 1; i < cfg.Cameras; i++ {
		lo := float64(i) * (span - cfg.OverlapMM)
		z = append(z, [2]float64{lo, lo + cfg.OverlapMM})
	}
	return z
}

// placeDefects draws cfg.Defects defects and places them on the web:
// after LearnM, before the end of the roll, inside the web, with at least
// clearanceMM between any two bounding boxes. About 15 % are below the
// detection limit and about 15 % (at least two) straddle a camera overlap
// zone. The result is sorted by MD start and numbered from 1 in that order.
func placeDefects(cfg *Config) ([]defect, error) {
	n := cfg.Defects
	if n == 0 {
		return nil, nil
	}
	var mat uint64
	for _, ch := range cfg.Material {
		mat = mat*31 + uint64(ch)
	}
	r := wyrand(hash(uint64(cfg.Seed), 0x646566656374, mat))
	nSmall := int(math.Round(smallFraction * float64(n)))
	nStraddle := 0
	zones := overlapZones(cfg)
	if len(zones) > 0 {
		nStraddle = min(n-nSmall, max(2, int(math.Round(straddleShare*float64(n)))))
	}
	roles := make([]int, n) // 0 plain, 1 small, 2 straddling
	for i := range nSmall {
		roles[i] = 1
	}
	for i := nSmall; i < nSmall+nStraddle; i++ {
		roles[i] = 2
	}
	for i := n - 1; i > 0; i-- { // Fisher-Yates
		j := r.intn(i + 1)
		roles[i], roles[j] = roles[j], roles[i]
	}

	mdMin := cfg.LearnM * 1000
	mdMax := cfg.LengthM*1000 - endMarginMM
	cdMin, cdMax := float64(edgeMarginMM), cfg.WidthMM-edgeMarginMM
	placed := make([]defect, 0, n) // sorted by mdLo
	maxLen := 0.0                  // longest MD extent placed so far

	fits := func(d *defect) bool {
		// Candidates whose box could come within clearance in MD.
		lo := d.mdLo - clearanceMM - maxLen
		i, _ := slices.BinarySearchFunc(placed, lo, func(p defect, v float64) int {
			if p.mdLo < v {
				return -1
			}
			return 1
		})
		for ; i < len(placed) && placed[i].mdLo < d.mdHi+clearanceMM; i++ {
			p := &placed[i]
			if p.mdHi+clearanceMM > d.mdLo && p.mdLo < d.mdHi+clearanceMM &&
				p.cdHi+clearanceMM > d.cdLo && p.cdLo < d.cdHi+clearanceMM {
				return false
			}
		}
		return true
	}

	for k := range n {
		ok := false
		for try := 0; try < reshapeTries && !ok; try++ {
			d := shape(&r, pickClass(&r, cfg.Material), roles[k] == 1)
			if cs := cfg.ContrastScale; cs > 0 && cs != 1 {
				d.amp *= cs
				d.truth.Contrast *= cs
			}
			w, l := d.cdHi-d.cdLo, d.mdHi-d.mdLo
			if l > mdMax-mdMin || w > cdMax-cdMin {
				continue
			}
			for range placeTries {
				md := r.uniform(mdMin, mdMax-l)
				var cd float64
				if roles[k] == 2 {
					z := zones[r.intn(len(zones))]
					centre := r.uniform(z[0], z[1])
					cd = math.Max(cdMin, math.Min(cdMax-w, centre-w/2))
					if cd > z[1] || cd+w < z[0] {
						continue
					}
				} else {
					cd = r.uniform(cdMin, cdMax-w)
				}
				d.move(md, cd)
				if fits(&d) {
					ok = true
					break
				}
			}
			if ok {
				i, _ := slices.BinarySearchFunc(placed, d.mdLo, func(p defect, v float64) int {
					if p.mdLo < v {
						return -1
					}
					return 1
				})
				placed = slices.Insert(placed, i, d)
				maxLen = max(maxLen, l)
			}
		}
		if !ok {
			return nil, fmt.Errorf("sim: cannot place defect %d of %d with %v mm clearance between %v m and %v m on a %v mm web: lower Defects or raise LengthM",
				k+1, n, clearanceMM, cfg.LearnM, cfg.LengthM, cfg.WidthMM)
		}
	}
	for i := range placed {
		d := &placed[i]
		d.truth.ID = i + 1
		d.truth.MDStartM = d.mdLo / 1000
		d.truth.MDEndM = d.mdHi / 1000
		d.truth.CDStartMM = d.cdLo
		d.truth.CDEndMM = d.cdHi
		d.truth.SizeMM = max(d.mdHi-d.mdLo, d.cdHi-d.cdLo)
	}
	return placed, nil
}

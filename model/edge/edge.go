// Package edge finds the web's edges on every line and describes each
// pixel by its distance from the nearest edge. The engine (model/infer),
// teaching (model/teach) and evaluation (model/eval) all call it, so an
// evaluation measures exactly what the engine does at the edge.
//
// # What a line looks like
//
// A line-scan camera is usually wider than the web. A line then holds, from
// one end to the other:
//
//	off-web background │ selvage │ web … web │ selvage │ off-web background
//	(backlight: bright;  ▲ left edge e0     right edge e1 ▲
//	 black roller: dark)
//
// The background is a band of pixels at or beyond Level (≥ Level for a
// bright background, ≤ Level for a dark one) that touches a line end and
// is at least MinBand pixels wide; anything shorter is web (a hole or a
// bright fleck at the edge is a defect, not background). Guard more pixels
// beside the band are taken as background too: the partly covered pixels
// of the edge itself. The web is what lies between: [e0, e1). e0 = 0 means
// the line shows no left edge (the web runs past the camera's end), e1 =
// len(row) no right edge.
//
// # Distance from the edge
//
// A web pixel x has distance d = min(x - e0, e1 - 1 - x) from the nearest
// edge that the line shows (a side without an edge is infinitely far).
// Teaching fits one model per CD zone of d (the selvage band, the band next
// to it, the interior), so the zones follow the web wherever it wanders in
// the camera's field of view; off-web pixels have d < 0 and are not scored.
//
// # Filling the background
//
// Fill replaces the background with the web mirrored across the edge, so a
// model sees web texture on both sides of the edge instead of a step: the
// edge scores like web, and a defect touching the edge still scores like a
// defect. A bright defect touching a bright background (or a dark one a dark
// background) cannot be told from the background and is taken as off-web.
//
// # Choosing the settings
//
// Learn looks at good material: when most lines of it end in a band of
// near-saturated (≥ 250) or near-black (≤ 5) pixels, the mode is bright or
// dark and Level sits halfway between the band and the brightest (darkest)
// 1 % of the web; otherwise the web fills every line and the mode is none.
package edge

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
)

// ErrOptions is returned (wrapped, naming the field) by Options.Validate
// and FromParams.
var ErrOptions = errors.New("edge: invalid options")

// Mode says how the background beyond the web's edges looks.
type Mode string

// Modes.
const (
	None   Mode = "none"   // the web fills every line: no edges
	Bright Mode = "bright" // background at or above Level (backlight, white roller)
	Dark   Mode = "dark"   // background at or below Level (black roller)
	// Auto, in a recipe or teach options, means: take the mode the model
	// was taught with (Learn picks it from good material).
	Auto Mode = "auto"
)

// Far is the distance of a pixel from a side that shows no edge; it is
// also what tiles carry for such a side (±Far in tile columns).
const Far = 1 << 20

// Options configure Find. Widths are in the pixels of the row searched
// (model pixels after binning in the engine).
type Options struct {
	// Mode is none, bright, dark (or auto before it is resolved).
	Mode Mode `json:"mode"`
	// Level is the 8-bit value at or beyond which a pixel is background.
	Level int `json:"level"` // 0..255 (Validate)
	// MinBand is the narrowest band touching a line end that counts as
	// background, 1..4096.
	MinBand int `json:"min_band"`
	// Guard is how many pixels next to a band count as background too,
	// 0..64.
	Guard int `json:"guard"`
}

// DefaultOptions returns mode none with the settings measured on AITEX
// fabric 00 once a mode is chosen: Level 240, MinBand 8, Guard 2 (the
// edge passes from 255 to web grey over 2–3 camera pixels).
func DefaultOptions() Options {
	return Options{Mode: None, Level: 240, MinBand: 8, Guard: 2}
}

// Modes lists every Mode a recipe or teach options may name.
var Modes = []Mode{None, Bright, Dark, Auto}

// Field is one of Options' numeric fields with its allowed range: the one
// table that teach (ValidateAt), the model recipe (model/infer) and the
// threshold recipe (engine) check against.
type Field struct {
	JSON, Go string // recipe name (min_band) and Go name (MinBand)
	Lo, Hi   int    // allowed range, inclusive
	Get      func(*Options) int
}

// Fields are Options' numeric fields: Level 0..255, MinBand 1..4096,
// Guard 0..64.
var Fields = []Field{
	{"level", "Level", 0, 255, func(o *Options) int { return o.Level }},
	{"min_band", "MinBand", 1, 4096, func(o *Options) int { return o.MinBand }},
	{"guard", "Guard", 0, 64, func(o *Options) int { return o.Guard }},
}

// BadField returns the first numeric field out of its range, checked
// whatever the mode (a recipe that turns the search on later is already
// valid), or false.
func (o *Options) BadField() (Field, bool) {
	for _, f := range Fields {
		if v := f.Get(o); v < f.Lo || v > f.Hi {
			return f, true
		}
	}
	return Field{}, false
}

// Validate names the first bad field and its allowed range. Auto is
// valid: it is resolved against a model before use.
func (o *Options) Validate() error { return o.ValidateAt("Options") }

// ValidateAt is Validate naming fields under prefix (e.g.
// "Options.OffWeb" gives "Options.OffWeb.MinBand"). The ranges are checked
// only when the mode searches (bright or dark).
func (o *Options) ValidateAt(prefix string) error {
	switch o.Mode {
	case None, Auto:
		return nil
	case Bright, Dark:
	default:
		return fmt.Errorf("%w: %s.Mode is %q, want none, bright, dark or auto", ErrOptions, prefix, o.Mode)
	}
	if f, bad := o.BadField(); bad {
		return fmt.Errorf("%w: %s.%s is %d, want %d..%d", ErrOptions, prefix, f.Go, f.Get(o), f.Lo, f.Hi)
	}
	return nil
}

// Active reports whether o searches for edges at all.
func (o *Options) Active() bool { return o.Mode == Bright || o.Mode == Dark }

// Find returns the web's extent [e0, e1) on row: e0 > 0 when the line
// shows a left edge, e1 < len(row) when it shows a right one. A line that
// is background from end to end gives e0 = e1 = 0. row is not modified.
func Find(row []uint8, o *Options) (e0, e1 int) {
	n := len(row)
	if !o.Active() {
		return 0, n
	}
	l, r := 0, n
	if lv := uint8(min(max(o.Level, 0), 255)); o.Mode == Bright {
		for l < n && row[l] >= lv {
			l++
		}
		if l == n {
			return 0, 0
		}
		for r > l && row[r-1] >= lv {
			r--
		}
	} else {
		for l < n && row[l] <= lv {
			l++
		}
		if l == n {
			return 0, 0
		}
		for r > l && row[r-1] <= lv {
			r--
		}
	}
	e0, e1 = 0, n
	if l >= o.MinBand {
		e0 = min(l+o.Guard, n)
	}
	if n-r >= o.MinBand {
		e1 = max(r-o.Guard, 0)
	}
	if e1 <= e0 {
		return 0, 0
	}
	return e0, e1
}

// Fill overwrites the background of row outside [e0, e1) with the web
// mirrored across each edge: pixel e0-1-k takes pixel e0+k. A row without
// web (e1 ≤ e0) is left as it is.
func Fill(row []uint8, e0, e1 int) {
	if e1 <= e0 {
		return
	}
	last := e1 - 1
	for k := 0; k < e0; k++ {
		row[e0-1-k] = row[min(e0+k, last)]
	}
	for k := 0; e1+k < len(row); k++ {
		row[e1+k] = row[max(e1-1-k, e0)]
	}
}

// FindFill is Find then Fill.
func FindFill(row []uint8, o *Options) (e0, e1 int) {
	e0, e1 = Find(row, o)
	Fill(row, e0, e1)
	return e0, e1
}

// Distance returns the distance of column x from the nearest edge of a
// row of width n with web extent [e0, e1): negative off the web, Far when
// neither side shows an edge.
func Distance(x, e0, e1, n int) int {
	if e1 <= e0 {
		return -1
	}
	d := Far
	if e0 > 0 {
		d = x - e0
	}
	if e1 < n {
		d = min(d, e1-1-x)
	}
	return d
}

// Learn picks the settings for good images (8-bit, row-major, image i
// widths[i] pixels wide) from defaults d: see the package doc. It returns
// d with Mode none when fewer than half the lines end in a saturated band
// of d.MinBand pixels.
func Learn(d Options, widths []int, imgs [][]uint8) Options {
	type side struct {
		mode  Mode
		sat   func(uint8) bool
		lines int
		band  []uint8
	}
	sides := []*side{
		{mode: Bright, sat: func(p uint8) bool { return p >= 250 }},
		{mode: Dark, sat: func(p uint8) bool { return p <= 5 }},
	}
	var rows int
	var web []uint8
	for i, im := range imgs {
		w := widths[i]
		for y := 0; w > 0 && (y+1)*w <= len(im); y++ {
			row := im[y*w : (y+1)*w]
			rows++
			for _, s := range sides {
				l := 0
				for l < w && s.sat(row[l]) {
					l++
				}
				r := w
				for r > l && s.sat(row[r-1]) {
					r--
				}
				if l >= d.MinBand && l < w || w-r >= d.MinBand && r > 0 {
					s.lines++
					if y%8 == 0 {
						s.band = append(s.band, row[:l]...)
						s.band = append(s.band, row[r:]...)
					}
				}
				if s.mode == Bright && y%8 == 0 {
					web = append(web, row[l:r]...)
				}
			}
		}
	}
	d.Mode = None
	if rows == 0 {
		return d
	}
	best := sides[0]
	if sides[1].lines > best.lines {
		best = sides[1]
	}
	if 2*best.lines < rows || len(web) == 0 || len(best.band) == 0 {
		return d
	}
	slices.Sort(web)
	slices.Sort(best.band)
	d.Mode = best.mode
	bandMid := int(best.band[len(best.band)/2])
	if best.mode == Bright {
		top := int(web[len(web)*99/100])
		d.Level = max((bandMid+top+1)/2, top+1)
	} else {
		bot := int(web[len(web)/100])
		d.Level = min((bandMid+bot)/2, max(bot-1, 0))
	}
	return d
}

// Params writes o into a sidecar's made_by.params.
func (o Options) Params(dst map[string]string) {
	dst["edge_mode"] = string(o.Mode)
	dst["edge_level"] = strconv.Itoa(int(o.Level))
	dst["edge_min_band"] = strconv.Itoa(o.MinBand)
	dst["edge_guard"] = strconv.Itoa(o.Guard)
}

// FromParams reads the settings Params wrote; ok is false when the params
// hold none (a model taught before edges were first-class, or imported).
func FromParams(p map[string]string) (o Options, ok bool, err error) {
	m, has := p["edge_mode"]
	if !has {
		return DefaultOptions(), false, nil
	}
	o = DefaultOptions()
	o.Mode = Mode(m)
	for _, f := range []struct {
		key string
		dst *int
	}{{"edge_min_band", &o.MinBand}, {"edge_guard", &o.Guard}} {
		if v, has := p[f.key]; has {
			n, err := strconv.Atoi(v)
			if err != nil {
				return o, false, fmt.Errorf("%w: made_by.params.%s is %q, want an integer", ErrOptions, f.key, v)
			}
			*f.dst = n
		}
	}
	if v, has := p["edge_level"]; has {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 255 {
			return o, false, fmt.Errorf("%w: made_by.params.edge_level is %q, want 0..255", ErrOptions, v)
		}
		o.Level = n
	}
	if o.Mode == Auto {
		return o, false, fmt.Errorf("%w: made_by.params.edge_mode is auto, want none, bright or dark", ErrOptions)
	}
	if err := o.Validate(); err != nil {
		return o, false, fmt.Errorf("made_by.params: %w", err)
	}
	return o, true, nil
}

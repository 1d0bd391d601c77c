package api

import (
	"fmt"
	"hash/fnv"
	"math"
	"strings"
)

// # Class colours and shapes
//
// A defect class is drawn in one colour and one glyph shape everywhere:
// the roll map, its legend and filters, the live view, the review queue
// and the roll report. Both are a fixed function of the class name, the
// same in every session and every process: the classes of the built-in
// recipes and of the simulator have a fixed pair each (no two share one),
// and any other name takes palette[h % 10] and shapes[(h / 10) % 8] of
// h = FNV-1a 32 of its UTF-8 bytes. ui/app.js implements the same
// function; TestBrowserClassStyles checks that the two agree.

// ClassPalette are the class colours (colour-blind friendly, Tableau 10).
var ClassPalette = [...]string{"#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#e15759",
	"#76b7b2", "#edc948", "#ff9da7", "#9c755f", "#3b3b3b"}

// ClassShapes are the glyph shapes, so that colour is never the only cue.
var ClassShapes = [...]string{"circle", "square", "triangle", "diamond", "hexagon", "triangle-down", "star", "plus"}

// knownClasses are the classes of the built-in recipes and the simulator,
// each with its own colour and shape. Keep in step with KNOWN in ui/app.js.
var knownClasses = map[string]ClassStyle{
	"hole":        {Colour: "#e15759", Shape: "circle"},
	"stain":       {Colour: "#9c755f", Shape: "square"},
	"streak":      {Colour: "#4e79a7", Shape: "triangle"},
	"knot":        {Colour: "#f28e2b", Shape: "diamond"},
	"slub":        {Colour: "#59a14f", Shape: "hexagon"},
	"crease":      {Colour: "#b07aa1", Shape: "triangle-down"},
	"gel":         {Colour: "#76b7b2", Shape: "star"},
	"scratch":     {Colour: "#edc948", Shape: "plus"},
	"other":       {Colour: "#3b3b3b", Shape: "circle"},
	"grain-fault": {Colour: "#ff9da7", Shape: "diamond"},
	"scar":        {Colour: "#b07aa1", Shape: "star"},
	"":            {Colour: "#3b3b3b", Shape: "plus"},
}

// ClassStyle is how a class is drawn.
type ClassStyle struct {
	Colour string `json:"colour"` // #rrggbb
	Shape  string `json:"shape"`  // one of ClassShapes
}

// StyleOf returns the colour and shape of class name.
func StyleOf(name string) ClassStyle {
	if s, ok := knownClasses[name]; ok {
		return s
	}
	h := fnv.New32a()
	h.Write([]byte(name))
	v := h.Sum32()
	return ClassStyle{Colour: ClassPalette[v%uint32(len(ClassPalette))], Shape: ClassShapes[(v/uint32(len(ClassPalette)))%uint32(len(ClassShapes))]}
}

// rgb returns the style's colour as 0..255 components.
func (s ClassStyle) rgb() (r, g, b int) {
	fmt.Sscanf(s.Colour, "#%02x%02x%02x", &r, &g, &b)
	return r, g, b
}

// shapePoints returns the outline of shape of radius r around (x, y) as a
// polygon, in the coordinates given (y down); nil for a circle.
func shapePoints(shape string, x, y, r float64) [][2]float64 {
	poly := func(n int, rot, rr float64) [][2]float64 {
		p := make([][2]float64, n)
		for i := range n {
			a := rot + float64(i)*2*math.Pi/float64(n)
			p[i] = [2]float64{x + rr*math.Cos(a), y + rr*math.Sin(a)}
		}
		return p
	}
	switch shape {
	case "square":
		s := r * 0.85
		return [][2]float64{{x - s, y - s}, {x + s, y - s}, {x + s, y + s}, {x - s, y + s}}
	case "triangle":
		return poly(3, -math.Pi/2, r*1.15)
	case "triangle-down":
		return poly(3, math.Pi/2, r*1.15)
	case "diamond":
		return poly(4, 0, r*1.1)
	case "hexagon":
		return poly(6, 0, r)
	case "star":
		p := make([][2]float64, 10)
		for i := range 10 {
			a := -math.Pi/2 + float64(i)*math.Pi/5
			rr := r * 1.2
			if i%2 == 1 {
				rr = r * 0.5
			}
			p[i] = [2]float64{x + rr*math.Cos(a), y + rr*math.Sin(a)}
		}
		return p
	case "plus":
		t := r * 0.4
		return [][2]float64{{x - t, y - r}, {x + t, y - r}, {x + t, y - t}, {x + r, y - t}, {x + r, y + t}, {x + t, y + t},
			{x + t, y + r}, {x - t, y + r}, {x - t, y + t}, {x - r, y + t}, {x - r, y - t}, {x - t, y - t}}
	}
	return nil
}

// svgGlyph returns an SVG element drawing class style s at (x, y), radius r.
func svgGlyph(s ClassStyle, x, y, r float64) string {
	pts := shapePoints(s.Shape, x, y, r)
	if pts == nil {
		return fmt.Sprintf(`<circle cx="%.1f" cy="%.1f" r="%.1f" fill="%s" data-shape="circle"></circle>`, x, y, r, s.Colour)
	}
	var b strings.Builder
	for i, p := range pts {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%.1f,%.1f", p[0], p[1])
	}
	return fmt.Sprintf(`<polygon points="%s" fill="%s" data-shape="%s"></polygon>`, b.String(), s.Colour, s.Shape)
}

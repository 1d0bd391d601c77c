package api

// Report tests of issue 15 (#1 class styles, #7 report errors).

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/webinspect/webinspect/rollmap"
)

// classRoll writes a closed 50 m roll id with one defect of each class.
func classRoll(t *testing.T, st *rollmap.Store, id string, classes ...string) {
	t.Helper()
	r, err := st.StartRoll(rollmap.RollMeta{ID: id, Recipe: "fabric-default", Material: "fabric", Source: "sim", WebWidthMM: 2000, Started: t0})
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range classes {
		md := float64(5 * (i + 1))
		if err := r.AddDefects(rollmap.Defect{ID: int64(i + 1), MDStartM: md, MDEndM: md + 0.01, CDStartMM: 100, CDEndMM: 110,
			AreaMM2: 10, PeakScore: 40, Class: c, Severity: "major", Decision: "mark", Detector: "threshold", Lane: -1, Time: t0}); err != nil {
			t.Fatal(err)
		}
	}
	r.SetLength(50)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestReportClassStyles (issue 15 #1): the report's Pareto bars are drawn
// in each class's colour and glyph, the same whatever other classes the
// roll holds.
func TestReportClassStyles(t *testing.T) {
	st := openStore(t)
	classRoll(t, st, "R-a", "slub")
	classRoll(t, st, "R-b", "zebra", "hole", "slub", "aaa")
	for _, id := range []string{"R-a", "R-b"} {
		var buf bytes.Buffer
		if err := WriteReport(&buf, ReportHTML, st, nil, id); err != nil {
			t.Fatal(err)
		}
		s := StyleOf("slub")
		bar := fmt.Sprintf(`fill="%s" data-class="slub"`, s.Colour)
		if !strings.Contains(buf.String(), bar) {
			t.Errorf("roll %s: the report's slub bar is not drawn in %s (want %s)", id, s.Colour, bar)
		}
		if glyph := fmt.Sprintf(`fill="%s" data-shape="%s"`, s.Colour, s.Shape); !strings.Contains(buf.String(), glyph) {
			t.Errorf("roll %s: the report has no slub glyph %s", id, glyph)
		}
	}
}

// TestStyleOf: fixed styles for the built-in classes, all different; any
// other name gets a style from its name alone.
func TestStyleOf(t *testing.T) {
	seen := map[ClassStyle]string{}
	for n, s := range knownClasses {
		if o, ok := seen[s]; ok {
			t.Errorf("classes %q and %q share %v", o, n, s)
		}
		seen[s] = n
	}
	// FNV-1a 32 of "zebra" is 0x7499948f = 1956222095.
	if got, want := StyleOf("zebra"), (ClassStyle{Colour: ClassPalette[1956222095%10], Shape: ClassShapes[(1956222095/10)%8]}); got != want {
		t.Errorf("StyleOf(zebra) = %v, want %v", got, want)
	}
}

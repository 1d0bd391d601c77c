package api

// Browser tests of issue 15 ("what quality staff see must be true"): stable
// class styles, counts from the roll map with their scope, loading states,
// lane labels, the density strip's gaps, crop orientation and the review
// queue's count. The harness is browser_test.go's.

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// styleNames are classes the class-style tests ask for: the built-in
// recipes' and the simulator's, and names of no recipe.
var styleNames = []string{"slub", "hole", "stain", "streak", "knot", "crease", "gel", "scratch", "other",
	"grain-fault", "scar", "", "fold", "zebra-mark", "Ölfleck", "spot"}

// TestBrowserClassStyles (issue 15 #1): a class keeps its colour and shape
// across page loads whatever order the page meets the classes in, and the
// page's style is the report's (StyleOf). The classes of the built-in
// recipes and the simulator all differ.
func TestBrowserClassStyles(t *testing.T) {
	images := t.TempDir()
	st, _ := newE2EStore(t, images)
	srv := startServer(t, st, e2eStatus, func(o *Options) { o.Images = DirImages(images) })

	type style struct {
		Colour string `json:"colour"`
		Shape  string `json:"shape"`
	}
	names, _ := json.Marshal(styleNames)
	reversed := make([]string, len(styleNames))
	for i, n := range styleNames {
		reversed[len(styleNames)-1-i] = n
	}
	rnames, _ := json.Marshal(reversed)
	load := func(order []byte) map[string]style {
		ctx, pe := openPage(t, srv.URL+"/#map", 25*time.Second)
		waitFor(t, ctx, 10*time.Second, `WI.map.mode !== ''`, `'mode ' + WI.map.mode`, "the map's first drawing")
		got := eval[[]style](t, ctx, `((names) => names.map((n) => { const s = WI.classStyle(n); return {colour: s.colour, shape: s.shape}; }))(`+string(order)+`)`)
		var order2 []string
		json.Unmarshal(order, &order2)
		m := map[string]style{}
		for i, n := range order2 {
			m[n] = got[i]
		}
		pe.check(t)
		return m
	}
	first, second := load(names), load(rnames)
	seen := map[style]string{}
	for _, n := range styleNames {
		if first[n] != second[n] {
			t.Errorf("class %q: %v on one page load, %v on the next", n, first[n], second[n])
		}
		want := StyleOf(n)
		if first[n].Colour != want.Colour || first[n].Shape != want.Shape {
			t.Errorf("class %q: the page draws %v, the report %v", n, first[n], want)
		}
		if _, ok := knownClasses[n]; ok {
			if o, dup := seen[first[n]]; dup {
				t.Errorf("classes %q and %q share %v", o, n, first[n])
			}
			seen[first[n]] = n
		}
	}
}

// containsAll reports whether s contains every one of subs.
func containsAll(s string, subs ...string) bool {
	for _, x := range subs {
		if !strings.Contains(s, x) {
			return false
		}
	}
	return true
}

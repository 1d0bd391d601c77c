package edge

import (
	"errors"
	"strings"
	"testing"
)

func TestFindFill(t *testing.T) {
	o := Options{Mode: Dark, Level: 20, MinBand: 3, Guard: 1}
	row := []uint8{5, 5, 5, 5, 100, 101, 102, 103, 104, 105, 0, 0}
	e0, e1 := FindFill(row, &o)
	// Left band 4 ≥ 3 plus guard 1; right band 2 < MinBand is web.
	if e0 != 5 || e1 != 12 {
		t.Fatalf("extent [%d,%d), want [5,12)", e0, e1)
	}
	want := []uint8{105, 104, 103, 102, 101, 101, 102, 103, 104, 105, 0, 0}
	if string(row) != string(want) {
		t.Errorf("filled row %v, want %v", row, want)
	}
	if e0, e1 := Find([]uint8{1, 2, 3}, &o); e0 != 0 || e1 != 0 {
		t.Errorf("all off-web: [%d,%d), want empty", e0, e1)
	}
	b := Options{Mode: Bright, Level: 240, MinBand: 2, Guard: 0}
	row = []uint8{90, 91, 92, 93, 250, 255, 255}
	if e0, e1 := Find(row, &b); e0 != 0 || e1 != 4 {
		t.Errorf("bright right band: [%d,%d), want [0,4)", e0, e1)
	}
	n := DefaultOptions()
	if e0, e1 := Find(row, &n); e0 != 0 || e1 != len(row) {
		t.Errorf("mode none: [%d,%d), want the whole row", e0, e1)
	}
}

func TestDistance(t *testing.T) {
	for _, c := range []struct{ x, e0, e1, n, want int }{
		{10, 5, 100, 100, 5},   // left edge only (e1 = n: no right edge)
		{90, 0, 95, 100, 4},    // right edge only
		{50, 0, 100, 100, Far}, // no edges
		{3, 5, 100, 100, -2},   // off the web
		{50, 10, 60, 100, 9},   // nearer the right edge
		{5, 7, 7, 100, -1},     // a row without web
	} {
		if got := Distance(c.x, c.e0, c.e1, c.n); got != c.want {
			t.Errorf("Distance(%d, %d, %d, %d) = %d, want %d", c.x, c.e0, c.e1, c.n, got, c.want)
		}
	}
}

func TestLearn(t *testing.T) {
	const w, h = 64, 20
	band := make([]uint8, w*h)
	flat := make([]uint8, w*h)
	for y := range h {
		for x := range w {
			v := uint8(80 + (x*7+y*3)%40)
			flat[y*w+x] = v
			if x < 10+y%3 {
				v = 255
			}
			band[y*w+x] = v
		}
	}
	d := DefaultOptions()
	got := Learn(d, []int{w}, [][]uint8{band})
	if got.Mode != Bright || got.Level <= 119 {
		t.Errorf("band: learned %+v, want bright with a level between the web's top (119) and 255", got)
	}
	if got := Learn(d, []int{w}, [][]uint8{flat}); got.Mode != None {
		t.Errorf("no band: learned %+v, want mode none", got)
	}
	dark := make([]uint8, w*h)
	for i, v := range flat {
		dark[i] = v
		if i%w >= w-12 {
			dark[i] = 0
		}
	}
	if got := Learn(d, []int{w}, [][]uint8{dark}); got.Mode != Dark || got.Level >= 80 {
		t.Errorf("dark band: learned %+v, want dark below the web's bottom (80)", got)
	}
}

func TestParamsRoundTrip(t *testing.T) {
	o := Options{Mode: Bright, Level: 183, MinBand: 9, Guard: 3}
	p := map[string]string{}
	o.Params(p)
	got, ok, err := FromParams(p)
	if err != nil || !ok || got != o {
		t.Fatalf("FromParams = %+v, %v, %v; want %+v", got, ok, err, o)
	}
	if _, ok, err := FromParams(map[string]string{}); ok || err != nil {
		t.Errorf("no params: ok %v err %v, want false, nil", ok, err)
	}
	p["edge_guard"] = "99"
	if _, _, err := FromParams(p); !errors.Is(err, ErrOptions) || !strings.Contains(err.Error(), "Guard") {
		t.Errorf("bad guard: %v, want ErrOptions naming Guard", err)
	}
	bad := Options{Mode: "grey"}
	if err := bad.ValidateAt("Options.OffWeb"); !errors.Is(err, ErrOptions) || !strings.Contains(err.Error(), "Options.OffWeb.Mode") {
		t.Errorf("bad mode: %v", err)
	}
}

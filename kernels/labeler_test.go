package kernels

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// testImage is a sequence of lines as the labeler sees them: each row has
// its line number y, its encoder count c, its mask, pixels and background
// mean. Rows whose y values are not consecutive are not connected.
type testImage struct {
	w            int
	ys, cs       []int64
	mask         [][]int8
	line         [][]uint8
	mean         [][]float32
	ownX0, ownX1 int32
}

func (im *testImage) rows() int { return len(im.ys) }

// runs encodes row i with EncodeRuns (itself tested against a reference).
func (im *testImage) runs(i int) []Run {
	return EncodeRuns(nil, im.mask[i], im.line[i], im.mean[i])
}

// adjacent reports whether rows i and i+1 are consecutive lines.
func (im *testImage) adjacent(i int) bool { return im.ys[i+1] == im.ys[i]+1 }

// floodFill labels the 8-connected flagged pixels of rows [0, n) by a
// breadth-first flood fill and returns the label of every pixel (-1 for
// unflagged) and the number of labels.
func (im *testImage) floodFill(n int) ([][]int, int) {
	lab := make([][]int, n)
	for i := range lab {
		lab[i] = make([]int, im.w)
		for x := range lab[i] {
			lab[i][x] = -1
		}
	}
	type px struct{ r, x int }
	var queue []px
	next := 0
	for r0 := range n {
		for x0 := range im.w {
			if im.mask[r0][x0] == 0 || lab[r0][x0] >= 0 {
				continue
			}
			lab[r0][x0] = next
			queue = append(queue[:0], px{r0, x0})
			for len(queue) > 0 {
				p := queue[len(queue)-1]
				queue = queue[:len(queue)-1]
				for dr := -1; dr <= 1; dr++ {
					r := p.r + dr
					if r < 0 || r >= n {
						continue
					}
					if dr == -1 && !im.adjacent(r) || dr == 1 && !im.adjacent(p.r) {
						continue
					}
					for dx := -1; dx <= 1; dx++ {
						x := p.x + dx
						if x < 0 || x >= im.w || im.mask[r][x] == 0 || lab[r][x] >= 0 {
							continue
						}
						lab[r][x] = next
						queue = append(queue, px{r, x})
					}
				}
			}
			next++
		}
	}
	return lab, next
}

// refComponents measures the components of rows [0, n) from a flood fill.
// Areas and extents are counted per pixel; Sum, SumAbs and Peak are taken
// from the runs of each row, as the Component documentation defines them.
// lastRow[k] is the last row holding component k.
func (im *testImage) refComponents(n int) (comps []Component, lastRow []int) {
	lab, k := im.floodFill(n)
	comps = make([]Component, k)
	lastRow = make([]int, k)
	for i := range comps {
		comps[i] = Component{X0: math.MaxInt32, X1: math.MinInt32, Y0: math.MaxInt64, Y1: math.MinInt64}
	}
	for r := range n {
		for x, l := range lab[r] {
			if l < 0 {
				continue
			}
			c := &comps[l]
			c.X0, c.X1 = min(c.X0, int32(x)), max(c.X1, int32(x+1))
			if im.ys[r] < c.Y0 {
				c.Y0, c.C0 = im.ys[r], im.cs[r]
			}
			if im.ys[r]+1 > c.Y1 {
				c.Y1, c.C1 = im.ys[r]+1, im.cs[r]
			}
			lastRow[l] = max(lastRow[l], r)
			c.Area++
			if int32(x) >= im.ownX0 && int32(x) < im.ownX1 {
				c.OwnedArea++
			}
			if im.mask[r][x] > 0 {
				c.BrightArea++
			} else {
				c.DarkArea++
			}
		}
		for _, run := range im.runs(r) {
			c := &comps[lab[r][run.X0]]
			c.Sum += float64(run.Sum)
			c.SumAbs += math.Abs(float64(run.Sum))
			c.Peak = max(c.Peak, run.Peak)
		}
	}
	return comps, lastRow
}

func sortComponents(cs []Component) {
	slices.SortFunc(cs, func(a, b Component) int {
		return cmp.Or(cmp.Compare(a.Y0, b.Y0), cmp.Compare(a.X0, b.X0),
			cmp.Compare(a.Y1, b.Y1), cmp.Compare(a.X1, b.X1), cmp.Compare(a.Area, b.Area),
			cmp.Compare(a.C0, b.C0), cmp.Compare(a.C1, b.C1), cmp.Compare(a.BrightArea, b.BrightArea),
			cmp.Compare(a.Peak, b.Peak))
	})
}

// sameComponents compares two sets of components: exact on every integer
// field and Peak, within rounding on the float64 sums (they add the same
// float32 run sums in a different order).
func sameComponents(got, want []Component) error {
	got, want = slices.Clone(got), slices.Clone(want)
	sortComponents(got)
	sortComponents(want)
	if len(got) != len(want) {
		return fmt.Errorf("%d components, want %d\n got %+v\nwant %+v", len(got), len(want), got, want)
	}
	for i := range got {
		g, w := got[i], want[i]
		tol := 1e-9 * (1 + w.SumAbs)
		if math.Abs(g.Sum-w.Sum) <= tol && math.Abs(g.SumAbs-w.SumAbs) <= tol {
			g.Sum, g.SumAbs = w.Sum, w.SumAbs
		}
		if g != w {
			return fmt.Errorf("component %d:\n got %+v\nwant %+v", i, got[i], w)
		}
	}
	return nil
}

// checkLabeler feeds im to a labeler in blocks of the given sizes (cycled)
// and checks, after every block, what was emitted so far and what is open
// against flood fills of the image up to that row, and at the end the
// complete set of components.
func checkLabeler(im *testImage, blocks []int) error {
	l := NewLabeler(im.w)
	l.SetOwned(im.ownX0, im.ownX1)
	full, lastRow := im.refComponents(im.rows())
	var got []Component
	row := 0
	for bi := 0; row < im.rows(); bi++ {
		end := min(row+max(blocks[bi%len(blocks)], 1), im.rows())
		for ; row < end; row++ {
			got = l.AddLine(got, im.ys[row], im.cs[row], im.runs(row))
		}
		last := row - 1
		// Emitted so far: exactly the components that end before the last row.
		var want []Component
		for k, c := range full {
			if lastRow[k] < last {
				want = append(want, c)
			}
		}
		if err := sameComponents(got, want); err != nil {
			return fmt.Errorf("after row %d: emitted: %w", last, err)
		}
		// Open: the pieces of rows [0, last] that touch the last row.
		lab, _ := im.floodFill(row)
		pieces, _ := im.refComponents(row)
		seen := map[int]bool{}
		minY := int64(math.MaxInt64)
		for _, k := range lab[last] {
			if k >= 0 && !seen[k] {
				seen[k] = true
				minY = min(minY, pieces[k].Y0)
			}
		}
		if l.Open() != len(seen) {
			return fmt.Errorf("after row %d: Open() = %d, want %d", last, l.Open(), len(seen))
		}
		y, ok := l.MinOpenY()
		if ok != (len(seen) > 0) || ok && y != minY {
			return fmt.Errorf("after row %d: MinOpenY() = %d, %v, want %d, %v", last, y, ok, minY, len(seen) > 0)
		}
	}
	got = l.Flush(got)
	if l.Open() != 0 {
		return fmt.Errorf("Open() = %d after Flush", l.Open())
	}
	if _, ok := l.MinOpenY(); ok {
		return fmt.Errorf("MinOpenY() ok after Flush")
	}
	if err := sameComponents(got, full); err != nil {
		return fmt.Errorf("all components: %w", err)
	}
	return nil
}

func newTestImage(w, h int) *testImage {
	im := &testImage{w: w, ownX0: 0, ownX1: int32(w)}
	for i := range h {
		im.ys = append(im.ys, int64(i))
		im.cs = append(im.cs, int64(1000+4*i))
		im.mask = append(im.mask, make([]int8, w))
		im.line = append(im.line, make([]uint8, w))
		im.mean = append(im.mean, make([]float32, w))
		for x := range w {
			im.line[i][x] = uint8(100 + (x*7+i*13)%50)
			im.mean[i][x] = 120.25
		}
	}
	return im
}

// fromPicture builds an image from rows of '.', '+' (bright) and '-' (dark).
func fromPicture(rows ...string) *testImage {
	im := newTestImage(len(rows[0]), len(rows))
	for i, s := range rows {
		for x, ch := range s {
			switch ch {
			case '+':
				im.mask[i][x] = 1
			case '-':
				im.mask[i][x] = -1
			}
		}
	}
	return im
}

// randomImage draws an image with noise specks, blobs of both polarities,
// long vertical strokes, and optionally gaps in the line numbers.
func randomImage(r *rand.Rand, w, h int, gaps bool) *testImage {
	im := newTestImage(w, h)
	density := r.Float64() * r.Float64() * 0.7
	for i := range h {
		for x := range w {
			if r.Float64() < density {
				im.mask[i][x] = int8(1 - 2*int(r.UintN(2)))
			}
		}
	}
	for range r.IntN(6) { // blobs
		cx, cy := r.Float64()*float64(w), r.Float64()*float64(h)
		rx, ry := 1+r.Float64()*float64(w)/3, 1+r.Float64()*float64(h)/3
		pol := int8(1 - 2*int(r.UintN(2)))
		for i := range h {
			for x := range w {
				dx, dy := (float64(x)-cx)/rx, (float64(i)-cy)/ry
				if dx*dx+dy*dy <= 1 {
					im.mask[i][x] = pol
				}
			}
		}
	}
	for range r.IntN(3) { // strokes, possibly wandering sideways
		x := r.IntN(w)
		for i := r.IntN(h); i < h; i++ {
			im.mask[i][x] = -1
			x = min(max(x+r.IntN(3)-1, 0), w-1)
		}
	}
	for i := range h {
		for x := range w {
			im.line[i][x] = uint8(r.UintN(256))
			im.mean[i][x] = float32(r.UintN(25600)) / 100
		}
	}
	if gaps {
		y := int64(r.IntN(100)) - 50
		for i := range h {
			im.ys[i] = y
			switch r.IntN(20) {
			case 0:
				y += 2 + int64(r.IntN(4)) // dropped lines
			case 1:
				y -= int64(r.IntN(3)) // repeated or earlier line
			default:
				y++
			}
		}
	}
	im.ownX0 = int32(r.IntN(w+6)) - 3
	im.ownX1 = im.ownX0 + int32(r.IntN(w+6))
	return im
}

func TestLabelerShapes(t *testing.T) {
	cases := []struct {
		name  string
		rows  []string
		comps int
	}{
		{"empty", []string{"....", "...."}, 0},
		{"U", []string{
			"+...+",
			"+...+",
			"+++++",
		}, 1},
		{"V", []string{
			"+.....+",
			".+...+.",
			"..+.+..",
			"...+...",
		}, 1},
		{"Λ split", []string{
			"...+...",
			"..+.+..",
			".+...+.",
			"+.....+",
		}, 1},
		{"diagonal touch", []string{
			"+.",
			".+",
		}, 1},
		{"no touch", []string{
			"+.+",
			"...",
			"+.+",
		}, 4},
		{"polarities touch", []string{"++--..+-"}, 2},
		{"comb merge", []string{
			"+.+.+.+.+",
			"+.+.+.+.+",
			"+++++++++",
			"....-....",
		}, 1},
		{"W then split", []string{
			"+..+..+",
			".+.+.+.",
			"..+++..",
			".+...+.",
			"+.....+",
		}, 1},
		{"nested", []string{
			"+++++++",
			"+.....+",
			"+..-..+",
			"+.....+",
			"+++++++",
		}, 2},
		{"late merge of old and new", []string{
			"+......",
			"+......",
			"+.....-",
			"+....-.",
			"++++-..",
		}, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			im := fromPicture(tc.rows...)
			full, _ := im.refComponents(im.rows())
			if len(full) != tc.comps {
				t.Fatalf("reference found %d components, picture has %d", len(full), tc.comps)
			}
			for _, blocks := range [][]int{{1}, {2, 1}, {100}} {
				if err := checkLabeler(im, blocks); err != nil {
					t.Fatalf("blocks %v: %v", blocks, err)
				}
			}
		})
	}
}

func TestLabelerComponentFields(t *testing.T) {
	l := NewLabeler(8)
	l.SetOwned(2, 5)
	mean := make([]float32, 8)
	line := []uint8{0, 9, 9, 0, 0, 0, 0, 0}
	mask := []int8{0, 1, 1, -1, 0, 0, 0, 0}
	var got []Component
	got = l.AddLine(got, 10, 500, EncodeRuns(nil, mask, line, mean))
	got = l.AddLine(got, 11, 504, EncodeRuns(nil, []int8{0, 0, 0, 0, -1, 0, 0, 0}, []uint8{0, 0, 0, 0, 3, 0, 0, 0}, mean))
	if len(got) != 0 || l.Open() != 1 {
		t.Fatalf("after two lines: emitted %v, open %d", got, l.Open())
	}
	got = l.AddLine(got, 12, 508, nil)
	want := Component{X0: 1, X1: 5, Y0: 10, Y1: 12, C0: 500, C1: 504, Area: 4, OwnedArea: 3,
		BrightArea: 2, DarkArea: 2, Sum: 18 + 0 + 3, SumAbs: 18 + 0 + 3, Peak: 9}
	if len(got) != 1 || got[0] != want {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
}

func TestLabelerGap(t *testing.T) {
	l := NewLabeler(4)
	run := []Run{{X0: 0, X1: 2, Pol: 1, Sum: 1, Peak: 1}}
	var got []Component
	got = l.AddLine(got, 5, 50, run)
	got = l.AddLine(got, 7, 70, run) // line 6 missing: no connection
	if len(got) != 1 || got[0].Y0 != 5 || got[0].Y1 != 6 {
		t.Fatalf("gap did not close the component: %+v", got)
	}
	got = l.AddLine(got[:0], 7, 71, run) // same y again: also a break
	if len(got) != 1 || got[0].Y0 != 7 || got[0].C0 != 70 {
		t.Fatalf("repeated y did not close the component: %+v", got)
	}
	if y, ok := l.MinOpenY(); !ok || y != 7 || l.Open() != 1 {
		t.Fatalf("MinOpenY %d %v, Open %d", y, ok, l.Open())
	}
}

func TestLabelerRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	n := 300
	if testing.Short() {
		n = 60
	}
	for i := range n {
		w, h := 1+r.IntN(48), 1+r.IntN(60)
		im := randomImage(r, w, h, i%3 == 0)
		blocks := []int{1 + r.IntN(16), 1 + r.IntN(4), 1 + r.IntN(32)}
		if err := checkLabeler(im, blocks); err != nil {
			t.Fatalf("image %d (%dx%d, blocks %v): %v", i, w, h, blocks, err)
		}
	}
}

func TestLabelerLongComponents(t *testing.T) {
	// A zig-zag stroke 5000 lines long beside a ladder whose rungs merge two
	// rails every 100 lines, and specks between them.
	const w, h = 64, 5000
	l := NewLabeler(w)
	var got []Component
	mask := make([]int8, w)
	line := make([]uint8, w)
	mean := make([]float32, w)
	var runs []Run
	for y := range int64(h) {
		clear(mask)
		x := int(y/50) % 20
		if (y/1000)%2 == 1 {
			x = 19 - x
		}
		mask[x] = 1
		mask[30], mask[40] = -1, -1
		if y%100 == 0 {
			for c := 30; c <= 40; c++ {
				mask[c] = 1
			}
		}
		if y%7 == 0 {
			mask[50+int(y%13)] = 1
		}
		runs = EncodeRuns(runs[:0], mask, line, mean)
		got = l.AddLine(got, y, 3*y, runs)
		if l.Open() > 4 {
			t.Fatalf("line %d: %d open components", y, l.Open())
		}
	}
	got = l.Flush(got)
	var long []Component
	for _, c := range got {
		if c.Y1-c.Y0 > 1 {
			long = append(long, c)
		}
	}
	if len(long) != 2 || len(got) != 2+(h+6)/7 {
		t.Fatalf("%d components, %d long, want %d and 2: %+v", len(got), len(long), 2+(h+6)/7, long)
	}
	sortComponents(long)
	if long[0].X0 != 0 || long[0].X1 != 20 || long[0].Y0 != 0 || long[0].Y1 != h || long[0].Area != h || long[0].C1 != 3*(h-1) {
		t.Fatalf("stroke: %+v", long[0])
	}
	if long[1].X0 != 30 || long[1].X1 != 41 || long[1].Area != 2*h+9*h/100 || long[1].BrightArea != 11*h/100 {
		t.Fatalf("ladder: %+v", long[1])
	}
}

func TestLabelerNoAllocSteadyState(t *testing.T) {
	const w = 4096
	r := rand.New(rand.NewPCG(23, 24))
	masks := sparseMasks(r, w, 256)
	mean := make([]float32, w)
	line := make([]uint8, w)
	runs := make([][]Run, len(masks))
	for i, m := range masks {
		runs[i] = EncodeRuns(nil, m, line, mean)
	}
	l := NewLabeler(w)
	dst := make([]Component, 0, 4096)
	y := int64(0)
	feed := func() {
		for i := range runs {
			dst = l.AddLine(dst[:0], y, y, runs[i])
			y++
		}
	}
	feed() // grow to the high-water mark
	feed()
	if a := testing.AllocsPerRun(5, feed); a != 0 {
		t.Fatalf("%v allocations per 256 lines in steady state, want 0", a)
	}
}

// sparseMasks draws a realistic defect mask: rare noise specks (1-3 px),
// a few blobs of either polarity, and a thin streak along the web.
func sparseMasks(r *rand.Rand, w, h int) [][]int8 {
	m := make([][]int8, h)
	for i := range m {
		m[i] = make([]int8, w)
		for range r.IntN(4) { // ~2 specks per line
			x := r.IntN(w - 3)
			for j := range 1 + r.IntN(3) {
				m[i][x+j] = 1
			}
		}
		m[i][w/3+(i/16)%3] = -1 // streak
	}
	for range 4 {
		cx, cy := r.Float64()*float64(w), r.Float64()*float64(h)
		rx, ry := 5+r.Float64()*60, 3+r.Float64()*40
		pol := int8(1 - 2*int(r.UintN(2)))
		for i := max(0, int(cy-ry)); i < min(h, int(cy+ry)+1); i++ {
			for x := max(0, int(cx-rx)); x < min(w, int(cx+rx)+1); x++ {
				dx, dy := (float64(x)-cx)/rx, (float64(i)-cy)/ry
				if dx*dx+dy*dy <= 1 && r.UintN(8) != 0 { // holey blob
					m[i][x] = pol
				}
			}
		}
	}
	return m
}

// imageFromBytes decodes a fuzz input: byte 0 is the width (1..32), byte 1
// the owned range, then per row one header byte (low 3 bits 0: a gap
// before the row; bit 3: a block boundary) and 2 bits per pixel (0, 1:
// clear, 2: bright, 3: dark).
func imageFromBytes(data []byte) (*testImage, []int) {
	if len(data) < 3 {
		return nil, nil
	}
	w := 1 + int(data[0])%32
	rowBytes := 1 + (w+3)/4
	h := min((len(data)-2)/rowBytes, 96)
	if h == 0 {
		return nil, nil
	}
	im := newTestImage(w, h)
	im.ownX0 = int32(data[1]%16) - 2
	im.ownX1 = im.ownX0 + int32(data[1]>>4)*3
	var blocks []int
	start := 0
	y := int64(0)
	for i := range h {
		row := data[2+i*rowBytes : 2+(i+1)*rowBytes]
		if i > 0 && row[0]&7 == 0 {
			y += int64(row[0] >> 4) // 0: repeated line; >1: dropped lines
		} else if i > 0 {
			y++
		}
		im.ys[i] = y
		if row[0]&8 != 0 && i > start {
			blocks = append(blocks, i-start)
			start = i
		}
		for x := range w {
			switch (row[1+x/4] >> (2 * (x % 4))) & 3 {
			case 2:
				im.mask[i][x] = 1
			case 3:
				im.mask[i][x] = -1
			}
			im.line[i][x] = row[1+x/4] ^ uint8(x*37)
			im.mean[i][x] = float32(x%5) * 31.5
		}
	}
	blocks = append(blocks, h-start)
	return im, blocks
}

func FuzzLabeler(f *testing.F) {
	f.Add([]byte{4, 0x50, 1, 0xAA, 1, 0x82, 1, 0xFE})
	f.Add([]byte{7, 0x31, 1, 0x82, 0x20, 9, 0x8A, 0x02, 0x20, 0x08, 0, 0xF3})
	f.Add([]byte{31, 0xF0, 1, 0xFF, 0x00, 0xAA, 0xFF, 0x55, 0xAA, 0x02, 0x80, 0x20, 0x08, 0x40, 0x20, 0x02, 0x08})
	r := rand.New(rand.NewPCG(25, 26))
	for range 8 {
		b := make([]byte, 20+r.IntN(400))
		for i := range b {
			b[i] = byte(r.UintN(256))
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		im, blocks := imageFromBytes(data)
		if im == nil {
			return
		}
		if err := checkLabeler(im, blocks); err != nil {
			t.Fatal(err)
		}
	})
}

package kernels

import "math"

// Component is a closed connected region of flagged pixels.
type Component struct {
	X0, X1     int32   // column extent [X0, X1)
	Y0, Y1     int64   // line sequence extent [Y0, Y1) (the y values passed to AddLine)
	C0, C1     int64   // encoder count of the first and of the last line
	Area       int64   // flagged pixels
	OwnedArea  int64   // flagged pixels inside the owned column range (see SetOwned)
	BrightArea int64   // pixels of runs with Pol > 0
	DarkArea   int64   // pixels of runs with Pol < 0
	Sum        float64 // signed contrast sum: the sum of Run.Sum over its runs
	SumAbs     float64 // sum over its runs of |Run.Sum| (per run, not per pixel)
	Peak       float32 // max Run.Peak over its runs
}

// Labeler finds 8-connected components of flagged pixels in a stream of
// lines, one line at a time, so that a component may continue across any
// number of blocks. Runs of either polarity connect to each other, including
// a bright and a dark run that touch on the same line.
//
// # Algorithm
//
// The labeler keeps only the runs of the previous line, each labelled with
// the slot of the open component it belongs to. For a new line it sweeps the
// previous and the current runs together (both sorted by X0): a current run
// joins every previous run it touches (columns overlapping or diagonally
// adjacent) and the current run just before it if they touch. Joining is
// union-find over slots: when two open components meet (the bottom of a U
// or V), their statistics are added into one root slot and the other slot
// points at it. At the end of the line every current run is relabelled with
// its root, absorbed slots are freed, and a component that has no run on the
// new line is closed and emitted. Union-find state therefore never lives
// longer than one line, and the cost of a line is proportional to the runs
// on it and on the line before, however long the components are.
//
// Slots, run lists and the free list are reused, so once they have grown to
// the largest number of runs per line there is no allocation.
//
// A Labeler is used by one goroutine.
type Labeler struct {
	width    int
	ox0, ox1 int32

	recs   []compRec // slot -> statistics (valid for roots)
	parent []int32   // slot -> parent slot during the current line
	stamp  []uint64  // slot -> last line generation it was seen on
	free   []int32   // free slots

	open    []int32 // root slots of components open after the last line
	next    []int32 // scratch: open list being built
	created []int32 // slots created on the current line

	prev, cur []span // runs of the previous and current line

	gen      uint64
	lastY    int64
	haveLast bool
}

type span struct {
	x0, x1 int32
	slot   int32
}

type compRec struct {
	x0, x1                    int32
	y0, y1                    int64
	c0, c1                    int64
	area, owned, bright, dark int64
	sum, sumAbs               float64
	peak                      float32
}

// NewLabeler returns a labeler for lines of width pixels, owning all of
// them (see SetOwned).
func NewLabeler(width int) *Labeler {
	if width < 0 {
		panic("kernels: NewLabeler: negative width")
	}
	c := width/2 + 1 // most runs a line can hold
	if c > 1024 {
		c = 1024 // grows on demand beyond that
	}
	return &Labeler{
		width:  width,
		ox0:    0,
		ox1:    int32(width),
		recs:   make([]compRec, 0, 2*c),
		parent: make([]int32, 0, 2*c),
		stamp:  make([]uint64, 0, 2*c),
		free:   make([]int32, 0, 2*c),
		open:   make([]int32, 0, c),
		next:   make([]int32, 0, c),
		prev:   make([]span, 0, c),
		cur:    make([]span, 0, c),
	}
}

// SetOwned sets the column range [x0, x1) counted in OwnedArea (default:
// the whole width). Typically the part of a camera's line that is not
// covered by a neighbouring camera with a higher claim, so that a defect
// in the overlap is counted once. It applies to runs added from now on.
func (l *Labeler) SetOwned(x0, x1 int32) { l.ox0, l.ox1 = x0, x1 }

// AddLine adds line y (triggered at encoder count c) with its runs, sorted
// by X0 and not overlapping, as EncodeRuns produces. Runs with X1 <= X0 are
// ignored. If y is not the previous line's y + 1, every open component is
// closed first: a gap breaks connectivity. Components that do not continue
// onto line y are closed and appended to dst, which is returned.
func (l *Labeler) AddLine(dst []Component, y, c int64, runs []Run) []Component {
	if l.haveLast && y != l.lastY+1 {
		dst = l.Flush(dst)
	}
	l.gen++
	l.cur = l.cur[:0]
	l.created = l.created[:0]
	prev := l.prev
	j := 0
	for i := range runs {
		r := &runs[i]
		if r.X1 <= r.X0 {
			continue
		}
		slot := int32(-1)
		if n := len(l.cur); n > 0 && l.cur[n-1].x1 >= r.X0 {
			slot = l.cur[n-1].slot // touches the run to its left
		}
		// Previous runs ending before r.X0-1 cannot touch r or any later run.
		for j < len(prev) && prev[j].x1 < r.X0 {
			j++
		}
		// Runs from j on with x0 <= r.X1 touch r (8-connectivity). Leave j
		// there: the last of them may touch the next current run as well.
		for k := j; k < len(prev) && prev[k].x0 <= r.X1; k++ {
			if slot < 0 {
				slot = prev[k].slot
			} else {
				slot = l.union(slot, prev[k].slot)
			}
		}
		if slot < 0 {
			slot = l.newSlot(y, c)
			l.created = append(l.created, slot)
		}
		root := l.find(slot)
		l.addRun(&l.recs[root], r, y, c)
		l.cur = append(l.cur, span{x0: r.X0, x1: r.X1, slot: root})
	}

	// Relabel the current runs with their roots; the roots seen are the
	// components that stay open.
	next := l.next[:0]
	for i := range l.cur {
		s := l.find(l.cur[i].slot)
		l.cur[i].slot = s
		if l.stamp[s] != l.gen {
			l.stamp[s] = l.gen
			next = append(next, s)
		}
	}
	// Retire what was open before and what was created and absorbed on this
	// line: absorbed slots are freed, roots not seen on this line close.
	for _, s := range l.open {
		dst = l.retire(dst, s)
	}
	for _, s := range l.created {
		dst = l.retire(dst, s)
	}
	l.open, l.next = next, l.open
	l.prev, l.cur = l.cur, l.prev
	l.lastY, l.haveLast = y, true
	return dst
}

// retire frees slot s if it was absorbed into another component, or closes
// it (appending it to dst) if it is a root that no run of the current line
// reached.
func (l *Labeler) retire(dst []Component, s int32) []Component {
	switch {
	case l.parent[s] != s:
		l.release(s)
	case l.stamp[s] != l.gen:
		dst = append(dst, l.recs[s].component())
		l.release(s)
	}
	return dst
}

// Flush closes every open component, appending it to dst, and returns dst.
// The next AddLine starts afresh whatever its y.
func (l *Labeler) Flush(dst []Component) []Component {
	for _, s := range l.open {
		dst = append(dst, l.recs[s].component())
		l.release(s)
	}
	l.open = l.open[:0]
	l.prev = l.prev[:0]
	l.haveLast = false
	return dst
}

// Open returns the number of open components: connected pieces with a run
// on the last line added. Pieces that will merge further down count
// separately until they do.
func (l *Labeler) Open() int { return len(l.open) }

// MinOpenY returns the smallest Y0 among open components and true, or false
// if none are open. No component closed in the future can start before it.
func (l *Labeler) MinOpenY() (int64, bool) {
	if len(l.open) == 0 {
		return 0, false
	}
	y := int64(math.MaxInt64)
	for _, s := range l.open {
		y = min(y, l.recs[s].y0)
	}
	return y, true
}

func (l *Labeler) newSlot(y, c int64) int32 {
	var s int32
	if n := len(l.free); n > 0 {
		s = l.free[n-1]
		l.free = l.free[:n-1]
	} else {
		s = int32(len(l.recs))
		l.recs = append(l.recs, compRec{})
		l.parent = append(l.parent, 0)
		l.stamp = append(l.stamp, 0)
	}
	l.recs[s] = compRec{x0: math.MaxInt32, x1: math.MinInt32, y0: y, y1: y + 1, c0: c, c1: c}
	l.parent[s] = s
	l.stamp[s] = 0
	return s
}

func (l *Labeler) release(s int32) {
	l.parent[s] = -1
	l.free = append(l.free, s)
}

// find returns the root of slot s, compressing the path behind it.
func (l *Labeler) find(s int32) int32 {
	r := s
	for l.parent[r] != r {
		r = l.parent[r]
	}
	for l.parent[s] != r {
		l.parent[s], s = r, l.parent[s]
	}
	return r
}

// union joins the components of slots a and b and returns the root. The
// component that started earlier stays root, so long components keep their
// slot and short paths.
func (l *Labeler) union(a, b int32) int32 {
	ra, rb := l.find(a), l.find(b)
	if ra == rb {
		return ra
	}
	if l.recs[rb].y0 < l.recs[ra].y0 {
		ra, rb = rb, ra
	}
	l.recs[ra].merge(&l.recs[rb])
	l.parent[rb] = ra
	return ra
}

func (l *Labeler) addRun(p *compRec, r *Run, y, c int64) {
	n := int64(r.X1 - r.X0)
	p.x0 = min(p.x0, r.X0)
	p.x1 = max(p.x1, r.X1)
	if y+1 > p.y1 {
		p.y1, p.c1 = y+1, c
	}
	p.area += n
	if o := min(r.X1, l.ox1) - max(r.X0, l.ox0); o > 0 {
		p.owned += int64(o)
	}
	switch {
	case r.Pol > 0:
		p.bright += n
	case r.Pol < 0:
		p.dark += n
	}
	p.sum += float64(r.Sum)
	p.sumAbs += math.Abs(float64(r.Sum))
	p.peak = max(p.peak, r.Peak)
}

func (p *compRec) merge(q *compRec) {
	p.x0 = min(p.x0, q.x0)
	p.x1 = max(p.x1, q.x1)
	if q.y0 < p.y0 {
		p.y0, p.c0 = q.y0, q.c0
	}
	if q.y1 > p.y1 {
		p.y1, p.c1 = q.y1, q.c1
	}
	p.area += q.area
	p.owned += q.owned
	p.bright += q.bright
	p.dark += q.dark
	p.sum += q.sum
	p.sumAbs += q.sumAbs
	p.peak = max(p.peak, q.peak)
}

func (p *compRec) component() Component {
	return Component{
		X0: p.x0, X1: p.x1,
		Y0: p.y0, Y1: p.y1,
		C0: p.c0, C1: p.c1,
		Area: p.area, OwnedArea: p.owned,
		BrightArea: p.bright, DarkArea: p.dark,
		Sum: p.sum, SumAbs: p.sumAbs,
		Peak: p.peak,
	}
}

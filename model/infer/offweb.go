package infer

// offWeb finds the web's extent [e0, e1) on one model-resolution row and
// overwrites the off-web pixels outside it with the web mirrored across
// the edge, so that the model sees web texture there instead of a step to
// the background: the band edge then scores like web, and a defect at the
// edge still scores like a defect. The caller zeroes the map outside
// [e0, e1) after inference.
//
// A band is the longest run of off-web pixels (≥ Level for bright, ≤ Level
// for dark) that touches a line end; it counts when it is at least MinBand
// wide, and then Guard more pixels beside it are treated as off-web too.
// A line that is off-web from end to end gives e0 = e1 = 0 and is left as
// it is.
func offWeb(row []uint8, o *OffWebOptions) (e0, e1 int) {
	n := len(row)
	if o.Mode != OffWebBright && o.Mode != OffWebDark {
		return 0, n
	}
	lv := uint8(o.Level) // 0..255 (Options.Validate)
	off := func(p uint8) bool { return p >= lv }
	if o.Mode == OffWebDark {
		off = func(p uint8) bool { return p <= lv }
	}
	l := 0
	for l < n && off(row[l]) {
		l++
	}
	if l == n {
		return 0, 0
	}
	r := n
	for r > l && off(row[r-1]) {
		r--
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
	// Mirror the web across each edge: pixel e0-1-k takes pixel e0+k.
	last := e1 - 1
	for k := 0; k < e0; k++ {
		row[e0-1-k] = row[min(e0+k, last)]
	}
	for k := 0; e1+k < n; k++ {
		row[e1+k] = row[max(e1-1-k, e0)]
	}
	return e0, e1
}

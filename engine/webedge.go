package engine

import "sort"

// Positions across the web (CD). The cameras' geometry (acquisition.Info:
// each camera's OffsetMM and PixelMM) places every pixel in the machine's
// frame, in millimetres from where the recipe's geometry puts the
// operator-side web edge. A real web does not stay there: it runs
// narrower than the cameras' view, with background beyond its edge, and
// wanders across the line by centimetres over a roll. The roll map's CD
// is on the roll (rollmap.Defect), so the engine measures it from the web
// edge actually found on the defect's lines:
//
//	roll-map CD = machine CD - web_edge_mm
//
// where web_edge_mm is the machine CD of the operator-side edge that the
// threshold detector's edge search (threshold.off_web) found on camera 0
// near the defect's first line. When no edge is found there (the web
// fills camera 0's operator-side end, or the search is off) web_edge_mm is
// 0 and the roll-map CD is the machine CD, as the geometry places it. The
// marking unit's heads and the crops work in the machine's frame: they
// add web_edge_mm back.

// edgeSample is the operator-side web edge over a window of lines: its
// machine CD, at the window's middle count.
type edgeSample struct {
	count int64
	mm    float64
}

// maxEdgeSamples bounds the samples one block reports (detMsg.edges); the
// window is at least edgeWindowLines lines and grows with longer blocks.
const (
	maxEdgeSamples  = 16
	edgeWindowLines = 32
)

// edgeWindow is the sampling window for a block of n lines.
func edgeWindow(n int) int {
	return max(edgeWindowLines, (n+maxEdgeSamples-1)/maxEdgeSamples)
}

// edgeTrack keeps the recent operator-side edge samples in count order
// (the assembly's, one goroutine). It holds edgeTrackLen samples: at
// 32 lines a sample, over 2 million lines, far more than a defect stays
// pending.
type edgeTrack struct {
	s    []edgeSample // ring of edgeTrackLen, oldest at head once full
	head int
}

const edgeTrackLen = 1 << 16

// add appends samples that lie beyond the last one (a jog back re-images
// material whose edge is already known).
func (t *edgeTrack) add(ss []edgeSample) {
	for _, s := range ss {
		if n := len(t.s); n > 0 && s.count <= t.at(n-1).count {
			continue
		}
		if len(t.s) < edgeTrackLen {
			t.s = append(t.s, s)
			continue
		}
		t.s[t.head] = s
		t.head = (t.head + 1) % edgeTrackLen
	}
}

// at returns the i-th oldest sample.
func (t *edgeTrack) at(i int) edgeSample {
	return t.s[(t.head+i)%len(t.s)]
}

// edgeAt returns the web edge's machine CD at count c: interpolated
// between the samples around c, the nearest sample beyond either end, and
// 0 when nothing was found.
func (t *edgeTrack) edgeAt(c int64) float64 {
	n := len(t.s)
	if n == 0 {
		return 0
	}
	i := sort.Search(n, func(i int) bool { return t.at(i).count >= c })
	switch {
	case i == 0:
		return t.at(0).mm
	case i == n:
		return t.at(n - 1).mm
	}
	a, b := t.at(i-1), t.at(i)
	f := float64(c-a.count) / float64(b.count-a.count)
	return a.mm + f*(b.mm-a.mm)
}

package engine

import "math"

// mdPosition tracks where along the web (MD, in encoder counts) the
// cameras are, from what their detectors report. It is the assembly's.
//
//   - origin: the lowest count of the session's first message, the
//     session's start (where a camera that never reported starts its
//     uninspected range).
//   - newest: the highest count any camera has reported, a line it
//     inspected or the end of a gap. The web position the cameras see next
//     is newest plus one line (next); the current roll's length is
//     measured to it.
//   - per camera, its newest count and whether it has ended:
//     slowestCamera is how far every camera still running has got.
type mdPosition struct {
	k          int64 // counts per line
	origin     int64
	originSet  bool
	newest     int64
	haveNewest bool
	last       []int64 // per camera: newest count reported
	have       []bool  // per camera: last is set
	ended      []bool  // per camera: its stream has ended
}

func newMDPosition(cameras int, k int64) mdPosition {
	return mdPosition{k: k, last: make([]int64, cameras), have: make([]bool, cameras), ended: make([]bool, cameras)}
}

// observe takes in one detector message; it reports whether the message
// set the session's origin.
func (p *mdPosition) observe(m *detMsg) (originSet bool) {
	if !p.originSet && m.firstSeen != math.MaxInt64 {
		p.origin, p.originSet, originSet = m.firstSeen, true, true
	}
	if m.hasCount {
		p.advance(m.cam, m.lastCount)
	}
	for _, g := range m.gaps {
		p.advance(m.cam, g.c1-p.k) // the gap's last line has passed the camera
	}
	if m.end {
		p.ended[m.cam] = true
	}
	return originSet
}

// advance records that camera cam has reached count c.
func (p *mdPosition) advance(cam int, c int64) {
	if !p.have[cam] || c > p.last[cam] {
		p.last[cam], p.have[cam] = c, true
	}
	if !p.haveNewest || c > p.newest {
		p.newest, p.haveNewest = c, true
	}
}

// next is the count of the line the cameras see next.
func (p *mdPosition) next() int64 { return p.newest + p.k }

// slowestCamera is the newest count of the slowest camera still running:
// math.MinInt64 while a running camera has reported nothing yet,
// math.MaxInt64 when every camera has ended.
func (p *mdPosition) slowestCamera() int64 {
	s := int64(math.MaxInt64)
	for c := range p.last {
		switch {
		case p.ended[c]:
		case !p.have[c]:
			return math.MinInt64
		default:
			s = min(s, p.last[c])
		}
	}
	return s
}

// endGaps returns, once every camera has ended, the rest of the web each
// camera did not see: from its newest count (or the origin) to the newest
// count of all. A camera whose stream failed (srcErrs) leaves a
// source-error gap, one that ran out early a camera-ended gap.
func (p *mdPosition) endGaps(srcErrs []error) []gapRange {
	if !p.haveNewest {
		return nil
	}
	var gs []gapRange
	end := p.next()
	for i := range p.last {
		start := p.origin
		if p.have[i] {
			start = p.last[i] + p.k
		}
		if start > p.newest {
			continue
		}
		reason := reasonCameraEnded
		if srcErrs[i] != nil {
			reason = reasonSourceError
		}
		gs = append(gs, gapRange{cam: i, c0: start, c1: end, lines: (end - start) / p.k, reason: reason})
	}
	return gs
}

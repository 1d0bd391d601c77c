package marking

// speedRing is the number of encoder observations a speedometer keeps.
const speedRing = 64

// speedometer measures the web speed from encoder observations: the count
// difference over the time difference between the newest observation and
// the oldest one that is still within the window (at least the previous
// observation). It keeps the last speedRing observations in a fixed array,
// so adding one never allocates. Not safe for concurrent use.
type speedometer struct {
	c      [speedRing]int64
	t      [speedRing]int64 // UnixNano
	n      int              // observations stored, <= speedRing
	next   int              // index of the next write
	window int64            // ns
}

func (s *speedometer) add(count, tNS int64) {
	s.c[s.next] = count
	s.t[s.next] = tNS
	s.next = (s.next + 1) % speedRing
	if s.n < speedRing {
		s.n++
	}
}

// countsPerNS returns the signed speed in counts per nanosecond, 0 until two
// observations are known.
func (s *speedometer) countsPerNS() float64 {
	if s.n < 2 {
		return 0
	}
	last := (s.next - 1 + speedRing) % speedRing
	k := s.n - 1
	for k > 1 && s.t[last]-s.t[(last-k+speedRing)%speedRing] > s.window {
		k /= 2
	}
	j := (last - k + speedRing) % speedRing
	dt := s.t[last] - s.t[j]
	if dt <= 0 {
		return 0
	}
	return float64(s.c[last]-s.c[j]) / float64(dt)
}

package marking

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sort"
	"sync"
	"time"
)

// simHistory is how many encoder observations a SimMarker keeps to find
// where the web was when a mark landed.
const simHistory = 1 << 15

// SimMarker is a simulated marking unit: a head DistanceMM downstream of the
// camera line whose ink reaches the web DelayMS after the fire command. It
// observes the same encoder feed as the scheduler (Observe) and records
// where every mark landed (Landings).
//
// # Physics
//
// A fire command at time tf (encoder count cf) puts ink on the web at
// tl = tf + delay. The encoder count at tl, cl, is found from the observed
// feed by linear interpolation between the observations around tl (exact
// at constant speed; within one observation step across a stop). The web
// point under the head at tl is the one that was under the camera line at
// count cl − D, D = DistanceMM / mmPerCount, so the mark starts at MD
//
//	landed = MDM + ((cl − D) − StartCount) · mmPerCount / 1000   [m]
//
// and covers [landed, landed + LengthMM]. ErrorMM = (landed − MDM)·1000.
//
// # Triggering
//
// Count-triggered (the default, like a marker controller with dead-time
// compensation): marks arrive ahead of time and the head fires at the first
// forward observation with count >= MarkerCount − v·delay, v being its own
// speed measurement. Time-triggered: the head fires at the Mark's FireCount
// and FireTime, the observation at which the scheduler decided to fire.
//
// A mark sent twice (same head and first defect ID) is refused with
// ErrDuplicate.
type SimMarker struct {
	dist    int64   // counts
	delayNS float64 // ns
	mpc     float64
	trig    bool

	mu       sync.Mutex
	closed   bool
	speed    speedometer
	haveObs  bool
	last     int64
	hc, ht   []int64 // history ring of counts and UnixNano times
	hn, hi   int
	armed    []Mark // count-triggered, sorted by MarkerCount
	inFlight []flight
	seen     map[[2]int64]bool
	landings []Landing
}

type flight struct {
	m      Mark
	fireC  int64
	fireT  int64 // UnixNano
	landAt int64 // UnixNano
}

// Landing is one mark put on the web by a SimMarker.
type Landing struct {
	Mark       Mark
	FireCount  int64     // count at which the head fired
	FireTime   time.Time // time at which it fired
	LandCount  int64     // encoder count when the ink reached the web (rounded)
	MDStartM   float64   // MD where the mark starts on the roll, m
	MDEndM     float64   // MDStartM + mark length
	ErrorMM    float64   // MDStartM − Mark.MDM, in mm
	SpeedMPMin float64   // web speed at fire time, m/min
}

// NewSimMarker makes a simulated marker with the geometry and delay of opts
// for an encoder of mmPerCount. countTriggered chooses how it fires (see
// the type's documentation).
func NewSimMarker(opts Options, mmPerCount float64, countTriggered bool) (*SimMarker, error) {
	if !(mmPerCount > 0) || math.IsInf(mmPerCount, 0) {
		return nil, fmt.Errorf("%w: mmPerCount = %v: must be > 0", ErrEncoder, mmPerCount)
	}
	s := &SimMarker{
		dist:    int64(math.Round(opts.MarkerDistanceMM / mmPerCount)),
		delayNS: opts.ActuationDelayMS * 1e6,
		mpc:     mmPerCount,
		trig:    countTriggered,
		hc:      make([]int64, simHistory),
		ht:      make([]int64, simHistory),
		seen:    map[[2]int64]bool{},
	}
	s.speed.window = int64(opts.SpeedWindowMS * 1e6)
	if s.speed.window <= 0 {
		s.speed.window = 10e6
	}
	return s, nil
}

// CountTriggered reports whether marks are sent ahead of time.
func (s *SimMarker) CountTriggered() bool { return s.trig }

// Send arms (count-triggered) or fires (time-triggered) one mark.
func (s *SimMarker) Send(_ context.Context, m Mark) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	key := [2]int64{int64(m.Head), m.DefectIDs[0]}
	if s.seen[key] {
		return fmt.Errorf("%w: head %d defect %d", ErrDuplicate, m.Head, m.DefectIDs[0])
	}
	s.seen[key] = true
	m.DefectIDs = slices.Clone(m.DefectIDs)
	if !s.trig {
		s.fire(m, m.FireCount, m.FireTime.UnixNano())
		s.land()
		return nil
	}
	i, _ := slices.BinarySearchFunc(s.armed, m.MarkerCount, func(a Mark, c int64) int { return cmpInt(a.MarkerCount, c) })
	s.armed = slices.Insert(s.armed, i, m)
	return nil
}

// Observe feeds the marker's encoder.
func (s *SimMarker) Observe(count int64, t time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ns := t.UnixNano()
	forward := s.haveObs && count > s.last
	s.haveObs, s.last = true, count
	s.speed.add(count, ns)
	s.hc[s.hi], s.ht[s.hi] = count, ns
	s.hi = (s.hi + 1) % simHistory
	s.hn = min(s.hn+1, simHistory)
	if forward && len(s.armed) > 0 {
		delay := int64(0)
		if v := s.speed.countsPerNS(); v > 0 {
			delay = int64(math.Round(v * s.delayNS))
		}
		n := 0
		for n < len(s.armed) && s.armed[n].MarkerCount-delay <= count {
			s.fire(s.armed[n], count, ns)
			n++
		}
		s.armed = slices.Delete(s.armed, 0, n)
	}
	s.land()
}

func (s *SimMarker) fire(m Mark, c, tNS int64) {
	s.inFlight = append(s.inFlight, flight{m: m, fireC: c, fireT: tNS, landAt: tNS + int64(math.Round(s.delayNS))})
}

// land records every mark in flight whose landing time is covered by the
// history.
func (s *SimMarker) land() {
	if s.hn == 0 {
		return
	}
	newest := s.ht[(s.hi-1+simHistory)%simHistory]
	keep := s.inFlight[:0]
	for _, f := range s.inFlight {
		if f.landAt > newest {
			keep = append(keep, f)
			continue
		}
		cl := s.countAt(f.landAt)
		start := f.m.MDM + ((cl-float64(s.dist))-float64(f.m.StartCount))*s.mpc/1000
		s.landings = append(s.landings, Landing{
			Mark: f.m, FireCount: f.fireC, FireTime: time.Unix(0, f.fireT),
			LandCount: int64(math.Round(cl)), MDStartM: start, MDEndM: start + f.m.LengthMM/1000,
			ErrorMM: (start - f.m.MDM) * 1000, SpeedMPMin: s.speedAt(f.fireT),
		})
	}
	s.inFlight = keep
}

// countAt interpolates the encoder count at time tNS from the history.
func (s *SimMarker) countAt(tNS int64) float64 {
	idx := func(k int) int { return (s.hi - s.hn + k + simHistory) % simHistory } // k-th oldest
	k := sort.Search(s.hn, func(k int) bool { return s.ht[idx(k)] >= tNS })
	switch {
	case k == 0:
		return float64(s.hc[idx(0)])
	case k == s.hn:
		return float64(s.hc[idx(s.hn-1)])
	}
	a, b := idx(k-1), idx(k)
	f := float64(tNS-s.ht[a]) / float64(s.ht[b]-s.ht[a])
	return float64(s.hc[a]) + f*float64(s.hc[b]-s.hc[a])
}

// speedAt is the speed between the observations around tNS, in m/min.
func (s *SimMarker) speedAt(tNS int64) float64 {
	idx := func(k int) int { return (s.hi - s.hn + k + simHistory) % simHistory }
	k := sort.Search(s.hn, func(k int) bool { return s.ht[idx(k)] >= tNS })
	if k == 0 || k >= s.hn {
		return 0
	}
	a, b := idx(k-1), idx(k)
	return float64(s.hc[b]-s.hc[a]) * s.mpc / float64(s.ht[b]-s.ht[a]) * 60e6
}

// Landings returns a copy of the marks landed so far, in landing order.
func (s *SimMarker) Landings() []Landing {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.landings)
}

// Armed returns the number of marks waiting to fire.
func (s *SimMarker) Armed() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.armed) + len(s.inFlight)
}

// Close stops the marker; later Sends return ErrClosed.
func (s *SimMarker) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	return nil
}

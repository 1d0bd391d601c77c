package acquisition

import (
	"fmt"
	"math"
)

// Gate applies the rule "a line is never counted twice on the roll": it
// accepts an encoder count only if it is greater than every count it
// accepted before. The first count offered is always accepted.
//
// The zero Gate is ready to use. A Gate is not safe for concurrent use; each
// camera's pipeline keeps its own.
type Gate struct {
	high    int64
	started bool
}

// Accept reports whether a line triggered at encoder count count images new
// web, and if so raises the high-water mark to count.
func (g *Gate) Accept(count int64) bool {
	if g.started && count <= g.high {
		return false
	}
	g.high = count
	g.started = true
	return true
}

// HighWater returns the highest count accepted so far, or math.MinInt64 when
// nothing has been accepted since the Gate was made or Reset.
func (g *Gate) HighWater() int64 {
	if !g.started {
		return math.MinInt64
	}
	return g.high
}

// Reset forgets the high-water mark (for example at a roll change, where MD
// restarts). The next count offered is accepted.
func (g *Gate) Reset() { *g = Gate{} }

// Phase is a stretch of time at constant web speed.
type Phase struct {
	// Seconds is how long the phase lasts. The last phase of a list repeats
	// forever, so its Seconds is ignored.
	Seconds float64 `json:"seconds"`
	// SpeedMPerMin is the web speed: positive forwards, negative when the
	// web runs backwards, 0 when it is stopped.
	SpeedMPerMin float64 `json:"speed_m_per_min"`
}

// ConstantSpeed returns the phase list of a web that runs forwards at
// speedMPerMin for ever.
func ConstantSpeed(speedMPerMin float64) []Phase {
	return []Phase{{SpeedMPerMin: speedMPerMin}}
}

// StopAndJog returns the phases of a typical operator intervention: run
// forwards at speedMPerMin until the web has advanced stopAtM metres, stand
// still for stopSeconds, jog back jogBackM metres at a quarter of the speed,
// stand still for half a second, then run forwards at speedMPerMin for ever.
func StopAndJog(speedMPerMin, stopAtM, stopSeconds, jogBackM float64) []Phase {
	jog := speedMPerMin / 4
	return []Phase{
		{Seconds: stopAtM / (speedMPerMin / 60), SpeedMPerMin: speedMPerMin},
		{Seconds: stopSeconds, SpeedMPerMin: 0},
		{Seconds: jogBackM / (jog / 60), SpeedMPerMin: -jog},
		{Seconds: 0.5, SpeedMPerMin: 0},
		{SpeedMPerMin: speedMPerMin},
	}
}

// ValidatePhases checks a phase list: at least one phase, finite values,
// non-negative durations, |speed| <= 10000 m/min, and a last phase that runs
// forwards (otherwise the web would never reach its end).
func ValidatePhases(phases []Phase) error {
	if len(phases) == 0 {
		return fmt.Errorf("motion: no phases: need at least one")
	}
	for i, p := range phases {
		if math.IsNaN(p.Seconds) || math.IsInf(p.Seconds, 0) || p.Seconds < 0 {
			return fmt.Errorf("motion: phase %d: Seconds = %v: must be finite and >= 0", i, p.Seconds)
		}
		if math.IsNaN(p.SpeedMPerMin) || math.Abs(p.SpeedMPerMin) > 10000 {
			return fmt.Errorf("motion: phase %d: SpeedMPerMin = %v: must be in [-10000, 10000]", i, p.SpeedMPerMin)
		}
	}
	if last := phases[len(phases)-1]; last.SpeedMPerMin <= 0 {
		return fmt.Errorf("motion: last phase SpeedMPerMin = %v: must be > 0 (the last phase repeats forever)", last.SpeedMPerMin)
	}
	return nil
}

// snapEps is how close (in counts) a position must be to an integer to be
// taken as that integer. It absorbs the rounding of seconds*rate products so
// that a phase that ends exactly on a trigger position triggers there.
const snapEps = 1e-6

// Motion yields the trigger events of an encoder and trigger divider
// following a list of phases. It is deterministic: the same phases and
// resolution always give the same events. A Motion is not safe for
// concurrent use; give each consumer its own (see Clone).
//
// The encoder count is the last integer position the web has reached: it
// steps up when the position reaches count+1 and down when it reaches
// count-1. A line is triggered whenever the count becomes a multiple of
// countsPerLine, so running backwards triggers at descending multiples, and
// reversing right after a trigger does not trigger the same count again.
type Motion struct {
	phases []Phase
	k      int64
	perSec []float64 // counts per second of each phase (signed)

	started bool
	phase   int     // current phase
	tPhase  float64 // time at which the current phase started
	t       float64 // time of the last event or phase boundary
	pos     float64 // position in counts at t
	count   int64   // last integer position reached
}

// NewMotion makes a Motion over phases for an encoder of mmPerCount
// millimetres per count and a trigger divider of countsPerLine.
func NewMotion(phases []Phase, mmPerCount float64, countsPerLine int) (*Motion, error) {
	if err := ValidatePhases(phases); err != nil {
		return nil, err
	}
	if !(mmPerCount > 0) || math.IsInf(mmPerCount, 0) {
		return nil, fmt.Errorf("motion: mmPerCount = %v: must be > 0", mmPerCount)
	}
	if countsPerLine < 1 {
		return nil, fmt.Errorf("motion: countsPerLine = %d: must be >= 1", countsPerLine)
	}
	m := &Motion{
		phases: append([]Phase(nil), phases...),
		k:      int64(countsPerLine),
		perSec: make([]float64, len(phases)),
	}
	for i, p := range phases {
		m.perSec[i] = p.SpeedMPerMin * 1000 / 60 / mmPerCount
	}
	return m, nil
}

// Clone returns an independent Motion with the same phases and resolution,
// starting from the beginning.
func (m *Motion) Clone() *Motion {
	return &Motion{phases: m.phases, k: m.k, perSec: m.perSec}
}

// Next returns the next trigger event: the encoder count at which the line
// is triggered and its time in seconds since the start. The first event is
// count 0 at t = 0. Stopped phases only advance time.
func (m *Motion) Next() (count int64, t float64) {
	if !m.started {
		m.started = true
		return 0, 0
	}
	for {
		last := m.phase == len(m.phases)-1
		rate := m.perSec[m.phase]
		remaining := math.Inf(1)
		if !last {
			remaining = m.tPhase + m.phases[m.phase].Seconds - m.t
			if remaining < 0 {
				remaining = 0
			}
		}
		if rate != 0 {
			var target int64
			if rate > 0 {
				target = floorDiv(m.count, m.k)*m.k + m.k // smallest multiple > count
			} else {
				target = floorDiv(m.count-1, m.k) * m.k // largest multiple < count
			}
			dist := math.Abs(float64(target) - m.pos)
			if reach := math.Abs(rate) * remaining; dist <= reach+snapEps {
				dt := dist / math.Abs(rate)
				if dt > remaining {
					dt = remaining
				}
				m.t += dt
				m.pos = float64(target)
				m.count = target
				return target, m.t
			}
			// The phase ends before the next trigger: move to its end.
			m.pos += rate * remaining
			if r := math.Round(m.pos); math.Abs(m.pos-r) < snapEps {
				m.pos = r
			}
			if rate > 0 {
				if c := int64(math.Floor(m.pos)); c > m.count {
					m.count = c
				}
			} else if c := int64(math.Ceil(m.pos)); c < m.count {
				m.count = c
			}
		}
		// Stopped, or no trigger before the phase ends.
		m.t = m.tPhase + m.phases[m.phase].Seconds
		m.tPhase = m.t
		m.phase++
	}
}

// LineIndex is the trigger number of encoder count: floor(count /
// countsPerLine), also for negative counts. Consecutive lines of a web
// running forwards have consecutive indices, so a jump means lines are
// missing between them.
func LineIndex(count, countsPerLine int64) int64 { return floorDiv(count, countsPerLine) }

// floorDiv returns floor(a/b) for b > 0.
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

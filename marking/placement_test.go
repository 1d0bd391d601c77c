package marking

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"

	"github.com/webinspect/webinspect/acquisition"
	"github.com/webinspect/webinspect/internal/poll"
	"github.com/webinspect/webinspect/rollmap"
)

// Test encoder: 0.05 mm per count, a line every 5 counts (0.25 mm lines).
const (
	testMPC = 0.05
	testCPL = 5
)

var testBase = time.Unix(1_700_000_000, 0)

func at(sec float64) time.Time { return testBase.Add(time.Duration(math.Round(sec * 1e9))) }

// ramp changes speed from v0 to v1 over metres in n constant-speed steps,
// which is how a drive accelerates (a step change of speed within the
// actuation delay cannot be compensated by anyone).
func ramp(v0, v1, metres float64, n int) []acquisition.Phase {
	var ps []acquisition.Phase
	for i := 0; i < n; i++ {
		v := v0 + (v1-v0)*(float64(i)+0.5)/float64(n)
		ps = append(ps, acquisition.Phase{Seconds: metres / float64(n) / (v / 60), SpeedMPerMin: v})
	}
	return ps
}

func run(v, metres float64) acquisition.Phase {
	return acquisition.Phase{Seconds: metres / (v / 60), SpeedMPerMin: v}
}

// lineProfile runs at v, slows to v/2 and back, slows to v/20, stops, jogs
// back 0.2 m, and runs up to v again.
func lineProfile(v float64) []acquisition.Phase {
	ps := []acquisition.Phase{run(v, 6)}
	ps = append(ps, ramp(v, v/2, 3, 40)...)
	ps = append(ps, run(v/2, 3))
	ps = append(ps, ramp(v/2, v, 3, 40)...)
	ps = append(ps, run(v, 3))
	ps = append(ps, ramp(v, v/20, 3, 40)...)
	sj := acquisition.StopAndJog(v/20, 0.5, 0.4, 0.2)
	sj[len(sj)-1].Seconds = 1.0 / (v / 20 / 60) // 1 m at v/20, then ramp up
	ps = append(ps, sj...)
	ps = append(ps, ramp(v/20, v, 3, 40)...)
	return append(ps, acquisition.Phase{SpeedMPerMin: v})
}

type feed struct {
	c []int64
	t []float64
}

func makeFeed(t testing.TB, phases []acquisition.Phase, untilCount int64) feed {
	m, err := acquisition.NewMotion(phases, testMPC, testCPL)
	if err != nil {
		t.Fatal(err)
	}
	var f feed
	for {
		c, s := m.Next()
		f.c, f.t = append(f.c, c), append(f.t, s)
		if c >= untilCount {
			return f
		}
	}
}

// countAt is the last observed count at or before sec.
func (f *feed) countAt(sec float64) int64 {
	i := sort.Search(len(f.t), func(i int) bool { return f.t[i] > sec })
	return f.c[max(i-1, 0)]
}

type testDefect struct {
	d        rollmap.Defect
	c0       int64
	decideAt float64
	markable bool
	late     bool
	heads    []int
}

// recorder collects events.
type recorder struct {
	mu sync.Mutex
	ev []MarkEvent
}

func (r *recorder) add(e MarkEvent) {
	r.mu.Lock()
	r.ev = append(r.ev, e)
	r.mu.Unlock()
}

func (r *recorder) count(id int64, head int, st Status) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, e := range r.ev {
		if e.DefectID == id && e.Head == head && e.Status == st {
			n++
		}
	}
	return n
}

func (r *recorder) find(id int64, head int, st Status) (MarkEvent, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.ev {
		if e.DefectID == id && e.Head == head && e.Status == st {
			return e, true
		}
	}
	return MarkEvent{}, false
}

// busy reports whether a mark is waiting for the output goroutine.
func (s *Scheduler) busy() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.undelivered > 0 {
		return true
	}
	for _, p := range s.pending {
		if p.state == queued || p.state == sending || (!s.trig && p.state == undelivered && p.mark.FireCount != 0) {
			return true
		}
	}
	return false
}

// settle waits (wall clock) until the output goroutine has caught up, so a
// feed that runs far faster than real time keeps real-time ordering.
func settle(t testing.TB, s *Scheduler) {
	t.Helper()
	poll.Until(t, 10*time.Second, "the output goroutine to catch up", func() bool { return !s.busy() })
}

func placementOptions() Options {
	o := DefaultOptions()
	o.MarkerDistanceMM = 2000
	o.ActuationDelayMS = 4
	o.MarkLengthMM = 30
	o.MinSpacingMM = 20
	o.ToleranceMM = 2
	o.Heads = []Head{{Name: "op", CDStartMM: 0, CDEndMM: 1000}, {Name: "drive", CDStartMM: 1000, CDEndMM: 2000}}
	o.Classes = []string{"hole", "stain"}
	o.Decisions = []rollmap.Decision{rollmap.DecisionMark}
	o.Output.Kind = OutputSim
	return o
}

func TestPlacement(t *testing.T) {
	for _, speed := range []float64{100, 600} {
		for _, trig := range []bool{true, false} {
			mode := map[bool]string{true: "count-triggered", false: "time-triggered"}[trig]
			t.Run(fmt.Sprintf("speed=%g/%s", speed, mode), func(t *testing.T) {
				testPlacement(t, speed, trig)
			})
		}
	}
}

func testPlacement(t *testing.T, speed float64, trig bool) {
	opts := placementOptions()
	dist := int64(opts.MarkerDistanceMM / testMPC)
	tol := int64(opts.ToleranceMM / testMPC)
	maxDelay := int64(math.Ceil(speed * 1000 / 60 * opts.ActuationDelayMS / 1000 / testMPC))
	lastDefectM := 30.0
	f := makeFeed(t, lineProfile(speed), int64((lastDefectM+8)*1000/testMPC))

	// Defects on new web every ~0.5 m, decided some hundreds of ms later.
	rng := rand.New(rand.NewPCG(uint64(speed), 7))
	transit := opts.MarkerDistanceMM / (speed * 1000 / 60) // s at full speed
	var defects []*testDefect
	hw, next := int64(-1), int64(500/testMPC)
	for i := range f.c {
		c := f.c[i]
		if c <= hw {
			continue
		}
		hw = c
		if c < next || float64(c)*testMPC/1000 > lastDefectM {
			continue
		}
		next = c + int64((400+rng.Float64()*300)/testMPC)
		id := int64(len(defects) + 1)
		td := &testDefect{c0: c}
		cd := rng.Float64() * 1900
		if id%9 == 4 {
			cd = 950 // spans both heads
		}
		td.d = rollmap.Defect{RollID: "R1", ID: id, MDStartM: float64(c) * testMPC / 1000, CDStartMM: cd, CDEndMM: cd + 100,
			Class: "hole", Severity: "critical", Decision: rollmap.DecisionMark, Lane: -1, EncoderCount: c}
		switch {
		case id%7 == 3:
			td.d.Class = "wrinkle" // not selected by the recipe
		case id%5 == 2:
			td.d.Decision = rollmap.DecisionReview
		}
		td.markable = opts.Selects(&td.d)
		for h := range opts.Heads {
			if opts.Heads[h].covers(&td.d) {
				td.heads = append(td.heads, h)
			}
		}
		wantLate := id%6 == 5
		ok := false
		for try := 0; try < 20 && !ok; try++ {
			delay := transit*(0.3+0.45*rng.Float64()) + 0.05 // within the transit at full speed
			if wantLate {
				delay = transit*1.5 + 0.3*rng.Float64()
			}
			td.decideAt = f.t[i] + delay
			cd := f.countAt(td.decideAt)
			switch {
			case cd < c+dist-maxDelay-20*tol: // clearly ahead of the fire point
				ok, td.late = true, false
			case cd > c+dist+20*tol: // clearly past the marker
				ok, td.late = true, true
			}
		}
		if !ok {
			continue
		}
		defects = append(defects, td)
	}

	rec := &recorder{}
	reg := prometheus.NewRegistry()
	sim, err := NewSimMarker(opts, testMPC, trig)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewScheduler(opts, sim, reg, zerolog.Nop(), rec.add)
	if err != nil {
		t.Fatal(err)
	}
	// Decisions in time order.
	order := make([]*testDefect, len(defects))
	copy(order, defects)
	sortByDecision(order)
	k := 0
	for i := range f.c {
		tm := at(f.t[i])
		s.Observe(f.c[i], tm)
		sim.Observe(f.c[i], tm)
		for k < len(order) && order[k].decideAt <= f.t[i] {
			td := order[k]
			k++
			st, err := s.Schedule(td.d, td.c0, 0, testMPC)
			if err != nil {
				t.Fatal(err)
			}
			want := StatusSkipped
			if td.markable && len(td.heads) > 0 {
				want = map[bool]Status{false: StatusScheduled, true: StatusLate}[td.late]
			}
			if st != want {
				t.Fatalf("defect %d (decided at count %d, start %d): Schedule = %v, want %v", td.d.ID, f.c[i], td.c0, st, want)
			}
		}
		settle(t, s)
	}
	if k != len(order) {
		t.Fatalf("feed ended before all decisions: %d of %d", k, len(order))
	}
	if n := s.Pending(); n != 0 {
		t.Fatalf("%d marks still pending at the end of the feed", n)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	landings := sim.Landings()
	byMark := map[[2]int64]Landing{}
	for _, l := range landings {
		for _, id := range l.Mark.DefectIDs {
			key := [2]int64{int64(l.Mark.Head), id}
			if _, dup := byMark[key]; dup {
				t.Errorf("defect %d head %d marked twice", id, l.Mark.Head)
			}
			byMark[key] = l
		}
	}
	var marked, late, worst float64
	for _, td := range defects {
		for _, h := range td.heads {
			key := [2]int64{int64(h), td.d.ID}
			l, landed := byMark[key]
			switch {
			case !td.markable:
				if landed || rec.count(td.d.ID, h, StatusScheduled) != 0 {
					t.Errorf("defect %d (%s/%s) is not markable but was scheduled or marked", td.d.ID, td.d.Class, td.d.Decision)
				}
			case td.late:
				late++
				if landed || rec.count(td.d.ID, h, StatusLate) != 1 {
					t.Errorf("defect %d head %d decided after passing the marker: landed=%v, late events=%d; want no mark, 1 late event",
						td.d.ID, h, landed, rec.count(td.d.ID, h, StatusLate))
				}
			default:
				marked++
				if !landed {
					t.Errorf("defect %d head %d (md %.4f m) was not marked", td.d.ID, h, td.d.MDStartM)
					continue
				}
				// The mark covers [start, start+length]; the defect's MD start
				// must be within ±tolerance of the mark's start.
				errMM := (l.MDStartM - td.d.MDStartM) * 1000
				worst = math.Max(worst, math.Abs(errMM))
				if math.Abs(errMM) > opts.ToleranceMM {
					t.Errorf("defect %d head %d: mark starts at %.4f m, defect at %.4f m: %.2f mm off (fired at count %d, %.0f m/min)",
						td.d.ID, h, l.MDStartM, td.d.MDStartM, errMM, l.FireCount, l.SpeedMPMin)
				}
				if l.MDEndM-l.MDStartM < opts.MarkLengthMM/1000-1e-9 {
					t.Errorf("defect %d: mark length %.1f mm, want %.1f", td.d.ID, (l.MDEndM-l.MDStartM)*1000, opts.MarkLengthMM)
				}
				if n := rec.count(td.d.ID, h, StatusFired); n != 1 {
					t.Errorf("defect %d head %d: %d fired events, want 1", td.d.ID, h, n)
				}
				if e, _ := rec.find(td.d.ID, h, StatusFired); e.FireCount != l.FireCount {
					t.Errorf("defect %d head %d: fired event count %d, marker fired at %d", td.d.ID, h, e.FireCount, l.FireCount)
				}
				if rec.count(td.d.ID, h, StatusAcknowledged) != 1 {
					t.Errorf("defect %d head %d: not acknowledged", td.d.ID, h)
				}
			}
		}
	}
	if marked < 20 || late < 3 {
		t.Fatalf("test generated %v marked and %v late marks; want >= 20 and >= 3", marked, late)
	}
	if got := testutil.ToFloat64(s.met.events[StatusLate]); got != late {
		t.Errorf("late metric = %v, want %v", got, late)
	}
	if got := testutil.ToFloat64(s.met.outputErrors); got != 0 {
		t.Errorf("output errors = %v, want 0", got)
	}
	slow := 0
	for _, l := range landings {
		if l.SpeedMPMin < 0.95*speed {
			slow++
		}
	}
	if slow < 3 {
		t.Errorf("only %d marks fired below full speed; the profile must exercise ramps and the slow run", slow)
	}
	t.Logf("%v marks placed (%d below full speed), worst error %.2f mm; %v late", marked, slow, worst, late)
}

func sortByDecision(ds []*testDefect) {
	for i := 1; i < len(ds); i++ {
		for j := i; j > 0 && ds[j].decideAt < ds[j-1].decideAt; j-- {
			ds[j], ds[j-1] = ds[j-1], ds[j]
		}
	}
}

package marking

import (
	"fmt"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/webinspect/webinspect/acquisition"
	"github.com/webinspect/webinspect/rollmap"
)

// BenchmarkSchedule runs the scheduler with a count-triggered SimMarker on a
// web at constant speed, 2 m marker distance, 5 ms actuation. Each defect
// is decided pipeline ms after it was imaged plus the measured wall time of
// Schedule until the device holds the mark. Reported: the margin from
// decision to fire (ms, p50 and min: how much later the decision could
// have come), the scheduling latency (µs, p50 and max), and the cost of
// one iteration (40 lines observed and one defect scheduled).
func BenchmarkSchedule(b *testing.B) {
	for _, speed := range []float64{100, 600} {
		for _, pipeline := range []float64{0, 100} {
			b.Run(fmt.Sprintf("speed=%g/pipeline=%gms", speed, pipeline), func(b *testing.B) {
				benchSchedule(b, speed, pipeline)
			})
		}
	}
}

func benchSchedule(b *testing.B, speed, pipelineMS float64) {
	opts := DefaultOptions()
	opts.Output.Kind = OutputSim
	opts.Output.Queue = 1024
	sim, err := NewSimMarker(opts, testMPC, true)
	if err != nil {
		b.Fatal(err)
	}
	var mu sync.Mutex
	fireAt := map[int64]time.Time{}
	s, err := NewScheduler(opts, sim, nil, zerolog.Nop(), func(e MarkEvent) {
		if e.Status == StatusFired {
			mu.Lock()
			fireAt[e.DefectID] = e.Time
			mu.Unlock()
		}
	})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	m, err := acquisition.NewMotion(acquisition.ConstantSpeed(speed), testMPC, testCPL)
	if err != nil {
		b.Fatal(err)
	}
	countsPerSec := speed * 1000 / 60 / testMPC
	pipeline := int64(pipelineMS / 1000 * countsPerSec)
	var c int64
	var sec float64
	observe := func() {
		c, sec = m.Next()
		tm := at(sec)
		s.Observe(c, tm)
		sim.Observe(c, tm)
	}
	for c < pipeline+100 {
		observe()
	}
	decided := map[int64]time.Time{}
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for l := 0; l < 40; l++ {
			observe()
		}
		id := int64(i + 1)
		c0 := c - pipeline
		d := rollmap.Defect{RollID: "B", ID: id, CDStartMM: 10, CDEndMM: 20, Class: "hole", Severity: "critical", Decision: rollmap.DecisionMark, Lane: -1}
		t0 := time.Now()
		if st, err := s.Schedule(d, c0, 0, testMPC); st != StatusScheduled || err != nil {
			b.Fatalf("Schedule: %v %v", st, err)
		}
		for s.busy() {
			runtime.Gosched()
		}
		w := time.Since(t0)
		lat = append(lat, w)
		decided[id] = at(sec).Add(w)
	}
	b.StopTimer()
	for s.Pending() > 0 {
		observe()
	}
	var margins []float64
	mu.Lock()
	for id, td := range decided {
		tf, ok := fireAt[id]
		if !ok {
			b.Fatalf("defect %d never fired", id)
		}
		margins = append(margins, tf.Sub(td).Seconds()*1000)
	}
	mu.Unlock()
	slices.Sort(margins)
	slices.Sort(lat)
	b.ReportMetric(margins[len(margins)/2], "margin_p50_ms")
	b.ReportMetric(margins[0], "margin_min_ms")
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds())/1000, "sched_p50_µs")
	b.ReportMetric(float64(lat[len(lat)-1].Nanoseconds())/1000, "sched_max_µs")
}

// BenchmarkObserve measures one encoder observation with pending marks far
// ahead (the common case: nothing fires).
func BenchmarkObserve(b *testing.B) {
	for _, n := range []int{0, 200} {
		b.Run(fmt.Sprintf("pending=%d", n), func(b *testing.B) {
			s, err := NewScheduler(DefaultOptions(), nil, nil, zerolog.Nop(), nil)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			s.Observe(0, at(0))
			for i := 0; i < n; i++ {
				c0 := int64(1e12) + int64(i)*1000
				s.Schedule(rollmap.Defect{ID: int64(i), Class: "x", Severity: "y", Decision: rollmap.DecisionMark}, c0, 0, testMPC)
			}
			t := at(0)
			var c int64
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				c += 5
				t = t.Add(25 * time.Microsecond)
				s.Observe(c, t)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lines/s")
		})
	}
}

package plant

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/webinspect/webinspect/internal/poll"
	"github.com/webinspect/webinspect/rollmap"
)

// BenchmarkRecordToQueryable measures, under a ten-line load, the time
// from a defect being recorded by its line (its time, set when the line
// adds it to its roll map) to it being queryable at the plant (the plant
// service has taken it; the same clock, one machine). Each iteration
// adds one defect to each of ten lines and waits 10 ms: 1000 defects/s
// into the plant, far above what ten real lines record. Publishers read
// every 100 ms (the default) and the rolls flush by themselves every
// second, as the engine's do (pipeline.flush_ms); the plant flushes its
// dataset every 250 ms.
//
//	go test ./plant -run '^$' -bench RecordToQueryable -benchtime 2000x
var benchInterval = 100 * time.Millisecond

func BenchmarkRecordToQueryable(b *testing.B) {
	dir := b.TempDir()
	node := newNode(b, ServerOptions{Name: "bench", Port: freePort(b), StoreDir: filepath.Join(dir, "nats")})
	const nLines = 10
	var lines []*line
	var pubs []*running
	for i := range nLines {
		l := newLine(b, filepath.Join(dir, "lines"), "L"+fmtI(int64(i)), uint64(i+1))
		lines = append(lines, l)
		p, err := NewPublisher(PublisherOptions{URLs: []string{node.url()}, Plant: "mill", Line: l.name, Store: l.store, Logger: zerolog.Nop(), Interval: benchInterval})
		if err != nil {
			b.Fatal(err)
		}
		pubs = append(pubs, goRun(func(ctx context.Context) { p.Run(ctx); p.Close() }))
		l.startRoll(b)
	}
	svc, err := NewService(ServiceOptions{URLs: []string{node.url()}, Data: filepath.Join(dir, "plant")})
	if err != nil {
		b.Fatal(err)
	}
	run := goRun(func(ctx context.Context) { svc.Run(ctx) })
	defer run.stop()
	defer func() {
		for _, p := range pubs {
			p.stop()
		}
	}()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, l := range lines {
			d := rollmap.Defect{MDStartM: l.md, MDEndM: l.md + 0.01, CDStartMM: 10, CDEndMM: 15, Class: "hole",
				Decision: rollmap.DecisionPass, Detector: rollmap.DetectorThreshold, Time: time.Now()}
			if err := l.roll.AddDefects(d); err != nil {
				b.Fatal(err)
			}
			l.md += 0.1
		}
		time.Sleep(10 * time.Millisecond)
	}
	want := b.N * nLines
	poll.Until(b, 2*time.Minute, "every defect at the plant", func() bool { return len(svc.Latencies()) >= want })
	b.StopTimer()
	lat := svc.Latencies()
	slices.Sort(lat)
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))]) / 1e6 }
	b.ReportMetric(q(0.5), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
	b.ReportMetric(float64(lat[len(lat)-1])/1e6, "max-ms")
	b.ReportMetric(float64(len(lat)), "defects")
}

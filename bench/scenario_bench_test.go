package bench

import (
	"context"
	"testing"
	"time"
)

// BenchmarkScenarios runs every scenario live for a short time and reports
// what `webinspect bench` prints. One iteration is one whole scenario run
// (capture, copy and capacity measurement, then the live run), so ns/op is
// its wall time; b.SetBytes is not used because bytes per ns/op would mix
// set-up into the throughput: the Mpx/s metric is the live run's.
func BenchmarkScenarios(b *testing.B) {
	for _, sc := range Scenarios() {
		b.Run("scenario="+sc.Name, func(b *testing.B) {
			o := DefaultOptions()
			o.Duration = time.Second
			o.CapacityDuration = 300 * time.Millisecond
			o.CopyDuration = 50 * time.Millisecond
			if sc.Overload {
				o.Duration, o.RecoveryGrace = 2*time.Second, 500*time.Millisecond
			}
			b.ReportAllocs()
			var r Result
			for b.Loop() {
				var err error
				if r, err = Run(context.Background(), sc, o); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(r.MpxS, "Mpx/s")
			b.ReportMetric(r.OfferedMpxS, "offered-Mpx/s")
			b.ReportMetric(r.CopyMpxS, "copy-Mpx/s")
			b.ReportMetric(r.CapacityMpxS, "capacity-Mpx/s")
			b.ReportMetric(r.LinesS, "lines/s")
			b.ReportMetric(r.LatencyP50Ms, "p50-ms")
			b.ReportMetric(r.LatencyP99Ms, "p99-ms")
			b.ReportMetric(r.LatencyP999Ms, "p99.9-ms")
			b.ReportMetric(float64(r.DroppedBlocks), "dropped-blocks")
			b.ReportMetric(float64(r.DroppedLines), "dropped-lines")
			b.ReportMetric(r.UninspectedM, "uninspected-m")
			b.ReportMetric(r.AllocsPerBlock, "allocs/block")
			b.ReportMetric(r.RSSMB, "RSS-MiB")
			if r.DropsAfterRecovery != nil {
				b.ReportMetric(float64(*r.DropsAfterRecovery), "drops-after-recovery")
			}
		})
	}
}

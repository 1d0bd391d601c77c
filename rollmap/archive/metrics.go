package archive

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/webinspect/webinspect/internal/metricsreg"
)

// metrics holds the archive's collectors with their label values resolved
// once; only the writer, the sweeper and Put's skip path touch them.
type metrics struct {
	written, dedup                                             prometheus.Counter
	skQueueFull, skDiskFull, skWriteError, skClosed, skInvalid prometheus.Counter
	delAge, delBudget                                          prometheus.Counter
	bytes, files, stopped                                      prometheus.Gauge
}

// newMetrics makes the collectors and registers them on reg (nil: none);
// an archive reopened on the same registry shares them (metricsreg).
func newMetrics(reg prometheus.Registerer) (metrics, error) {
	written := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "webinspect_images_written_total", Help: "Defect image files written to the archive.",
	})
	dedup := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "webinspect_images_deduplicated_total", Help: "Defect images whose identical file was already archived.",
	})
	skipped := NewSkippedVec()
	deleted := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "webinspect_images_deleted_total", Help: "Defect image files deleted by retention, by reason (age, budget).",
	}, []string{"reason"})
	bytes := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "webinspect_image_archive_bytes", Help: "Sum of the sizes of the archived defect image files.",
	})
	files := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "webinspect_image_archive_files", Help: "Archived defect image files.",
	})
	stopped := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "webinspect_image_archive_stopped", Help: "1 while image archiving is stopped because the disk is full.",
	})
	var rs metricsreg.Set
	written = metricsreg.Add(&rs, reg, written)
	dedup = metricsreg.Add(&rs, reg, dedup)
	skipped = metricsreg.Add(&rs, reg, skipped)
	deleted = metricsreg.Add(&rs, reg, deleted)
	bytes = metricsreg.Add(&rs, reg, bytes)
	files = metricsreg.Add(&rs, reg, files)
	stopped = metricsreg.Add(&rs, reg, stopped)
	return metrics{
		written: written, dedup: dedup,
		skQueueFull:  skipped.WithLabelValues(ReasonQueueFull),
		skDiskFull:   skipped.WithLabelValues(ReasonDiskFull),
		skWriteError: skipped.WithLabelValues(ReasonWriteError),
		skClosed:     skipped.WithLabelValues(ReasonClosed),
		skInvalid:    skipped.WithLabelValues(ReasonInvalid),
		delAge:       deleted.WithLabelValues("age"),
		delBudget:    deleted.WithLabelValues("budget"),
		bytes:        bytes, files: files, stopped: stopped,
	}, rs.Err()
}

// NewSkippedVec returns a new, unregistered webinspect_images_skipped_total
// counter: crops not kept, by reason. The archive counts its own reasons
// (Reason constants); the engine registers the same collector (metricsreg
// shares it) and counts the reasons it finds before a crop reaches the
// archive (history_evicted, archive_disabled, archive_error).
func NewSkippedVec() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "webinspect_images_skipped_total",
		Help: "Defect crops not kept, by reason (archive: queue_full, disk_full, write_error, closed, invalid; engine: history_evicted, archive_disabled, archive_error).",
	}, []string{"reason"})
}

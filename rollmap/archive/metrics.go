package archive

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics holds the archive's collectors with their label values resolved
// once; only the writer, the sweeper and Put's skip path touch them.
type metrics struct {
	written, dedup                                             prometheus.Counter
	skQueueFull, skDiskFull, skWriteError, skClosed, skInvalid prometheus.Counter
	delAge, delBudget                                          prometheus.Counter
	bytes, files, stopped                                      prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) metrics {
	written := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "webinspect_images_written_total", Help: "Defect image files written to the archive.",
	})
	dedup := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "webinspect_images_deduplicated_total", Help: "Defect images whose identical file was already archived.",
	})
	skipped := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "webinspect_images_skipped_total", Help: "Defect images not archived, by reason (queue_full, disk_full, write_error, closed, invalid).",
	}, []string{"reason"})
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
	if reg != nil {
		written = register(reg, written)
		dedup = register(reg, dedup)
		skipped = register(reg, skipped)
		deleted = register(reg, deleted)
		bytes = register(reg, bytes)
		files = register(reg, files)
		stopped = register(reg, stopped)
	}
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
	}
}

// register registers c, or returns the collector already registered under
// the same name (a second archive on one registry shares its collectors).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if old, ok := are.ExistingCollector.(C); ok {
				return old
			}
		}
	}
	return c
}

package engine

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/webinspect/webinspect/internal/metricsreg"
	"github.com/webinspect/webinspect/rollmap/archive"
)

// metrics holds the engine's Prometheus collectors. Label values are
// resolved once, so the hot path only touches counters.
type metrics struct {
	linesIn       []prometheus.Counter
	blocksDropped []prometheus.Counter
	linesDropped  []prometheus.Counter
	uninspectedM  prometheus.Counter
	defects       *prometheus.CounterVec
	byClass       map[string]prometheus.Counter // assembler goroutine only
	latency       prometheus.Histogram
	rollErrors    prometheus.Counter
	// Defect crops (images.go).
	cropLinesMissing prometheus.Counter
	imagesSkipped    prometheus.Counter
	modelFailures    prometheus.Counter
	// skipReasons is webinspect_images_skipped_total, shared with the
	// image archive (images.go).
	skipReasons *skipReasons
	// The learned defect classifier (learned.go).
	classifySeconds  prometheus.Histogram
	classifyFailures prometheus.Counter
}

// newMetrics returns the engine's collectors for cameras cameras,
// registered on reg (nil: not registered). An engine started again on the
// same registry shares the collectors registered first, so the counters
// go on counting (metricsreg.Register); any other registration failure is
// returned.
func newMetrics(reg prometheus.Registerer, cameras int) (*metrics, error) {
	lines := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "webinspect_lines_total", Help: "Lines received from the cameras.",
	}, []string{"camera"})
	blocks := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "webinspect_blocks_dropped_total", Help: "Blocks dropped at the ring because the pipeline was behind.",
	}, []string{"camera"})
	ldrop := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "webinspect_lines_dropped_total", Help: "Lines dropped at the ring because the pipeline was behind.",
	}, []string{"camera"})
	m := &metrics{
		uninspectedM: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "webinspect_uninspected_meters_total", Help: "MD metres recorded as uninspected, summed over cameras.",
		}),
		defects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "webinspect_defects_total", Help: "Defects decided, by class.",
		}, []string{"class"}),
		byClass: map[string]prometheus.Counter{},
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "webinspect_pipeline_latency_seconds",
			Help:    "Time from a block leaving the camera to the assembler having decided everything it closed.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
		rollErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "webinspect_rollmap_write_errors_total", Help: "Failed roll map writes or flushes.",
		}),
		cropLinesMissing: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "webinspect_crop_lines_missing_total", Help: "Crop lines no longer in the line history when the defect was decided (filled with 0).",
		}),
		modelFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "webinspect_model_detector_failures_total", Help: "Cameras whose model detector stopped on an inference error (the threshold detector goes on).",
		}),
		imagesSkipped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "webinspect_defects_without_image_total", Help: "Defects recorded without a crop (archive stopped, full or failing, or no lines left).",
		}),
		classifySeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "webinspect_defect_classifier_seconds",
			Help:    "Time to compute a defect's features and run the learned classifier on them, per defect.",
			Buckets: prometheus.ExponentialBuckets(1e-5, 2, 14),
		}),
		classifyFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "webinspect_defect_classifier_failures_total", Help: "Defects the learned classifier failed on (their rule-based class stands).",
		}),
	}
	var rs metricsreg.Set
	lines = metricsreg.Add(&rs, reg, lines)
	blocks = metricsreg.Add(&rs, reg, blocks)
	ldrop = metricsreg.Add(&rs, reg, ldrop)
	m.uninspectedM = metricsreg.Add(&rs, reg, m.uninspectedM)
	m.defects = metricsreg.Add(&rs, reg, m.defects)
	m.latency = metricsreg.Add(&rs, reg, m.latency)
	m.rollErrors = metricsreg.Add(&rs, reg, m.rollErrors)
	m.cropLinesMissing = metricsreg.Add(&rs, reg, m.cropLinesMissing)
	m.imagesSkipped = metricsreg.Add(&rs, reg, m.imagesSkipped)
	m.modelFailures = metricsreg.Add(&rs, reg, m.modelFailures)
	m.classifySeconds = metricsreg.Add(&rs, reg, m.classifySeconds)
	m.classifyFailures = metricsreg.Add(&rs, reg, m.classifyFailures)
	m.skipReasons = &skipReasons{vec: metricsreg.Add(&rs, reg, archive.NewSkippedVec()), by: map[string]prometheus.Counter{}}
	for i := 0; i < cameras; i++ {
		c := strconv.Itoa(i)
		m.linesIn = append(m.linesIn, lines.WithLabelValues(c))
		m.blocksDropped = append(m.blocksDropped, blocks.WithLabelValues(c))
		m.linesDropped = append(m.linesDropped, ldrop.WithLabelValues(c))
	}
	return m, rs.Err()
}

// unregisteredMetrics returns collectors registered nowhere (tests).
func unregisteredMetrics(cameras int) *metrics {
	m, _ := newMetrics(nil, cameras) // nothing to register: cannot fail
	return m
}

func (m *metrics) defect(class string) {
	c, ok := m.byClass[class]
	if !ok {
		c = m.defects.WithLabelValues(class)
		m.byClass[class] = c
	}
	c.Inc()
}

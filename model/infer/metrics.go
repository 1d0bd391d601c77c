package infer

import "github.com/prometheus/client_golang/prometheus"

// Collector returns a Prometheus collector that reads the pool's Stats at
// scrape time (the workers only bump atomic counters). Register it once,
// with metricsreg.Replace, so a new pool on the same registry replaces
// the previous one's collector.
func (p *Pool) Collector() prometheus.Collector { return poolCollector{p} }

var (
	descBatches = prometheus.NewDesc("webinspect_onnx_batches_total",
		"Session runs of the ONNX inference pool.", nil, nil)
	descTiles = prometheus.NewDesc("webinspect_onnx_tiles_total",
		"Tiles scored by the ONNX inference pool.", nil, nil)
	descFull = prometheus.NewDesc("webinspect_onnx_full_batches_total",
		"Session runs with a full batch.", nil, nil)
	descTimeouts = prometheus.NewDesc("webinspect_onnx_batch_timeouts_total",
		"Session runs started short because MaxWaitMS passed with the queue empty.", nil, nil)
	descQueued = prometheus.NewDesc("webinspect_onnx_queued_tiles",
		"Tiles waiting in the pool's queue.", nil, nil)
)

type poolCollector struct{ p *Pool }

func (c poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descBatches, descTiles, descFull, descTimeouts, descQueued} {
		ch <- d
	}
}

func (c poolCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.p.Stats()
	ch <- prometheus.MustNewConstMetric(descBatches, prometheus.CounterValue, float64(st.Batches))
	ch <- prometheus.MustNewConstMetric(descTiles, prometheus.CounterValue, float64(st.Tiles))
	ch <- prometheus.MustNewConstMetric(descFull, prometheus.CounterValue, float64(st.Full))
	ch <- prometheus.MustNewConstMetric(descTimeouts, prometheus.CounterValue, float64(st.Timeouts))
	ch <- prometheus.MustNewConstMetric(descQueued, prometheus.GaugeValue, float64(len(c.p.jobs)))
}

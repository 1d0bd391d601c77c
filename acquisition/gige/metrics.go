package gige

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Collector exports line-scan cameras' CameraStats to Prometheus. It reads
// the counters when scraped, so the receive path does no metric work.
type Collector struct {
	cams []collected
}

type collected struct {
	label string
	stats func() CameraStats
}

var (
	descFrames = prometheus.NewDesc("webinspect_camera_frames_total",
		"Camera frames received complete.", []string{"camera"}, nil)
	descLost = prometheus.NewDesc("webinspect_camera_lost_frames_total",
		"Camera frames lost (never seen, incomplete at their timeout, or no free buffer).", []string{"camera"}, nil)
	descLostLines = prometheus.NewDesc("webinspect_camera_lost_lines_total",
		"Lines of lost camera frames reported as uninspected.", []string{"camera"}, nil)
	descPackets = prometheus.NewDesc("webinspect_camera_packets_total",
		"GVSP packets received.", []string{"camera"}, nil)
	descResendAsked = prometheus.NewDesc("webinspect_camera_resend_requested_packets_total",
		"Packets asked for again with PACKETRESEND.", []string{"camera"}, nil)
	descResent = prometheus.NewDesc("webinspect_camera_resent_packets_total",
		"Packets asked for again that arrived.", []string{"camera"}, nil)
	descLineRate = prometheus.NewDesc("webinspect_camera_line_rate",
		"Lines per second delivered over the last second or so.", []string{"camera"}, nil)
	descSockBuf = prometheus.NewDesc("webinspect_camera_socket_buffer_bytes",
		"Receive buffer the kernel granted to the stream socket.", []string{"camera"}, nil)
)

// Add registers a camera under label (e.g. its index or serial); stats is
// typically (*LineStream).Stats. Call Add before registering c.
func (c *Collector) Add(label string, stats func() CameraStats) {
	c.cams = append(c.cams, collected{label, stats})
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descFrames, descLost, descLostLines, descPackets, descResendAsked,
		descResent, descLineRate, descSockBuf} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	for _, cam := range c.cams {
		st := cam.stats()
		counter := func(d *prometheus.Desc, v int64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), cam.label)
		}
		counter(descFrames, st.Frames)
		counter(descLost, st.LostFrames)
		counter(descLostLines, st.LostLines)
		counter(descPackets, st.Packets)
		counter(descResendAsked, st.ResendRequested)
		counter(descResent, st.ResentPackets)
		ch <- prometheus.MustNewConstMetric(descLineRate, prometheus.GaugeValue, st.LineRate, cam.label)
		ch <- prometheus.MustNewConstMetric(descSockBuf, prometheus.GaugeValue, float64(st.SocketBuffer), cam.label)
	}
}

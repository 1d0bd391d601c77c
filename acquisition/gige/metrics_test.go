package gige

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestCollector(t *testing.T) {
	var c Collector
	c.Add("0", func() CameraStats {
		return CameraStats{StreamStats: StreamStats{Frames: 10, LostFrames: 2, Packets: 70, SocketBuffer: 1 << 20}, LostLines: 256, LineRate: 1234.5}
	})
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(&c)
	want := `
# HELP webinspect_camera_frames_total Camera frames received complete.
# TYPE webinspect_camera_frames_total counter
webinspect_camera_frames_total{camera="0"} 10
# HELP webinspect_camera_lost_lines_total Lines of lost camera frames reported as uninspected.
# TYPE webinspect_camera_lost_lines_total counter
webinspect_camera_lost_lines_total{camera="0"} 256
# HELP webinspect_camera_line_rate Lines per second delivered over the last second or so.
# TYPE webinspect_camera_line_rate gauge
webinspect_camera_line_rate{camera="0"} 1234.5
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "webinspect_camera_frames_total",
		"webinspect_camera_lost_lines_total", "webinspect_camera_line_rate"); err != nil {
		t.Fatal(err)
	}
	if n, err := testutil.GatherAndCount(reg); err != nil || n != 8 {
		t.Fatalf("%d metrics, %v", n, err)
	}
}

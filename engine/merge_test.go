package engine

import (
	"testing"

	"github.com/webinspect/webinspect/rollmap"
)

// A defect's detector names each detector once, the threshold detector
// first, whatever order its parts were merged in (before, merging a part
// seen by both into one seen by the threshold detector alone gave
// "threshold+threshold+onnx:m").
func TestJoinDetectors(t *testing.T) {
	const th, m, both = "threshold", "onnx:m", "threshold+onnx:m"
	for _, tc := range [][3]rollmap.Detector{
		{th, th, th}, {m, m, m}, {th, m, both}, {m, th, both},
		{th, both, both}, {both, th, both}, {m, both, both}, {both, m, both}, {both, both, both},
		{"", th, th}, {m, "", m},
	} {
		if got := joinDetectors(tc[0], tc[1]); got != tc[2] {
			t.Errorf("joinDetectors(%q, %q) = %q, want %q", tc[0], tc[1], got, tc[2])
		}
	}
}

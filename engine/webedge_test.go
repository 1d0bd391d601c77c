package engine

import (
	"math"
	"testing"
)

// TestEdgeTrack: the roll-map CD is measured from the web edge at the
// defect's count, interpolated between samples; a jog back does not
// rewrite the track; the oldest samples give way when it is full; with no
// sample the geometry's edge (0) stands.
func TestEdgeTrack(t *testing.T) {
	var tr edgeTrack
	if got := tr.edgeAt(100); got != 0 {
		t.Fatalf("empty track: edge %v, want 0 (the geometry's)", got)
	}
	tr.add([]edgeSample{{count: 100, mm: 10}, {count: 200, mm: 20}})
	tr.add([]edgeSample{{count: 150, mm: 99}}) // re-imaged after a jog back: ignored
	tr.add([]edgeSample{{count: 300, mm: 10}})
	for _, c := range []struct {
		count int64
		want  float64
	}{
		{0, 10}, {100, 10}, {150, 15}, {200, 20}, {250, 15}, {300, 10}, {1000, 10},
	} {
		if got := tr.edgeAt(c.count); math.Abs(got-c.want) > 1e-9 {
			t.Errorf("edge at count %d: %v mm, want %v", c.count, got, c.want)
		}
	}
	// Fill past the ring: the oldest go, order and lookups hold.
	for i := range edgeTrackLen + 10 {
		tr.add([]edgeSample{{count: int64(1000 + i), mm: float64(i)}})
	}
	if n := len(tr.s); n != edgeTrackLen {
		t.Fatalf("%d samples kept, want %d", n, edgeTrackLen)
	}
	if got := tr.at(0).count; got != 1010 {
		t.Errorf("oldest sample at count %d, want 1010", got)
	}
	if got := tr.edgeAt(1000 + edgeTrackLen); got != float64(edgeTrackLen) {
		t.Errorf("edge at the newest count: %v, want %d", got, edgeTrackLen)
	}
}

// TestThresholdDetectorEdgeSamples: camera 0's threshold detector reports
// the web edge in at most maxEdgeSamples windows per block, each the mean
// first web pixel of its lines in machine mm; other cameras report none.
func TestThresholdDetectorEdgeSamples(t *testing.T) {
	if w := edgeWindow(256); w != 32 {
		t.Errorf("window for 256 lines: %d, want 32", w)
	}
	if w := edgeWindow(4096); w != 256 {
		t.Errorf("window for 4096 lines: %d, want 256 (16 samples)", w)
	}
	d := &thresholdDetector{edges: make([]edgeSample, 0, maxEdgeSamples)}
	d.cam.OffsetMM, d.cam.PixelMM = -50, 0.5
	d.offWeb.Guard = 2
	for c := range int64(100) {
		d.sampleEdge(c, 102+int(c%2), 1000, 32) // first web pixel 100 or 101
	}
	var got [maxEdgeSamples]edgeSample
	n := d.takeEdges(&got)
	if n != 4 {
		t.Fatalf("%d samples over 100 lines in windows of 32, want 4", n)
	}
	if s := got[0]; s.count != 15 || math.Abs(s.mm-(-50+100.5*0.5)) > 1e-9 {
		t.Errorf("first sample %+v, want count 15 and %v mm", s, -50+100.5*0.5)
	}
	if s := got[3]; s.count != 97 {
		t.Errorf("last (partial) window's sample at count %d, want 97", s.count)
	}
	d.cam.Index = 1
	d.sampleEdge(200, 102, 1000, 32)
	if n := d.takeEdges(&got); n != 0 {
		t.Errorf("camera 1 reported %d edge samples, want none", n)
	}
}

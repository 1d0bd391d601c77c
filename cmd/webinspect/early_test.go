package main

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/webinspect/webinspect/acquisition/recording"
	"github.com/webinspect/webinspect/rollmap"
)

// A camera that ended early (its file closed cleanly while the other
// camera went on) made replay exit 0 (issue 14 #11). It exits non-zero
// naming the camera, and the roll records the missing band as uninspected.
func TestReplayCameraEndsEarly(t *testing.T) {
	dir := t.TempDir()
	rec, rolls := filepath.Join(dir, "D"), filepath.Join(dir, "R")
	simulate(t, rec)
	path := filepath.Join(rec, recording.CameraFile(0))
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Keep the first half of camera 0's block frames, then an end frame.
	var frames []int
	for off := 12 + int(binary.LittleEndian.Uint32(b[8:])); string(b[off:off+4]) == "WBLK"; off += 12 + int(binary.LittleEndian.Uint32(b[off+4:])) {
		frames = append(frames, off)
	}
	cut := frames[len(frames)/2]
	if err := os.WriteFile(path, append(b[:cut:cut], "WEND\x00\x00\x00\x00\x00\x00\x00\x00"...), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runCLI(t, "replay", rec, "--rolls", rolls)
	oneLineError(t, code, stderr, "camera-0.wrec", "ended early")
	meta, _, unins, err := rollmap.ReadRoll(rollDir(t, rolls))
	if err != nil {
		t.Fatal(err)
	}
	if meta.Open {
		t.Error("roll left open")
	}
	var gap *rollmap.Uninspected
	for i := range unins {
		if unins[i].Camera == 0 && unins[i].Reason == rollmap.ReasonSourceError {
			gap = &unins[i]
		}
	}
	if gap == nil || gap.MDEndM < 19 {
		t.Errorf("camera 0's missing half is not recorded as uninspected: %+v", unins)
	}
}

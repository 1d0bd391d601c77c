package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/webinspect/webinspect/rollmap"
)

// A replay keeps a crop of every defect it finds, or records why it could
// not on the defect and in its summary (issue 15 #3: a replay left 23 of
// 52 defects without image_ref, silently).
func TestReplayKeepsEveryCropOrSaysWhy(t *testing.T) {
	dir := t.TempDir()
	rec := filepath.Join(dir, "D")
	simulate(t, rec, "--length", "10m", "--defects", "8")

	rolls := filepath.Join(dir, "R")
	code, out, stderr := runCLI(t, "replay", rec, "--rolls", rolls)
	if code != 0 {
		t.Fatalf("replay: exit %d: %s %s", code, out, stderr)
	}
	_, ds, _, err := rollmap.ReadRoll(rollDir(t, rolls))
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) < 4 {
		t.Fatalf("only %d defects: the test proves nothing", len(ds))
	}
	for _, d := range ds {
		if d.ImageRef == "" || d.ImageError != "" {
			t.Errorf("defect %d: image_ref %q, image_error %q; want a crop", d.ID, d.ImageRef, d.ImageError)
			continue
		}
		if _, err := os.Stat(filepath.Join(rolls, imagesDirName, d.ImageRef[:2], d.ImageRef)); err != nil {
			t.Errorf("defect %d: crop not in the archive: %v", d.ID, err)
		}
	}
	if want := fmt.Sprintf("crops: %d of %d defects\n", len(ds), len(ds)); !strings.Contains(out, want) {
		t.Errorf("replay summary %q does not say %q", out, want)
	}

	// A free-space reserve the disk cannot meet stops the archive: every
	// defect says disk_full, and so does the summary.
	rolls = filepath.Join(dir, "R2")
	code, out, stderr = runCLI(t, "replay", rec, "--rolls", rolls, "--images-min-free", fmt.Sprint(int64(1)<<62))
	if code != 0 {
		t.Fatalf("replay with a full disk: exit %d: %s %s", code, out, stderr)
	}
	_, ds2, _, err := rollmap.ReadRoll(rollDir(t, rolls))
	if err != nil {
		t.Fatal(err)
	}
	if len(ds2) != len(ds) {
		t.Fatalf("a full disk cost defect records: %d, want %d", len(ds2), len(ds))
	}
	for _, d := range ds2 {
		if d.ImageRef != "" || d.ImageError != "disk_full" {
			t.Errorf("full disk: defect %d image_ref %q image_error %q, want none and disk_full", d.ID, d.ImageRef, d.ImageError)
		}
	}
	if want := fmt.Sprintf("crops: 0 of %d defects; without: %d disk_full\n", len(ds2), len(ds2)); !strings.Contains(out, want) {
		t.Errorf("replay summary %q does not say %q", out, want)
	}

	// Crops off.
	rolls = filepath.Join(dir, "R3")
	if code, out, stderr = runCLI(t, "replay", rec, "--rolls", rolls, "--images=false"); code != 0 {
		t.Fatalf("replay --images=false: exit %d: %s %s", code, out, stderr)
	}
	if want := fmt.Sprintf("without: %d archive_disabled\n", len(ds)); !strings.Contains(out, want) {
		t.Errorf("replay summary %q does not say %q", out, want)
	}
}

package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/webinspect/webinspect/acquisition/camera"
	"github.com/webinspect/webinspect/engine"
	"github.com/webinspect/webinspect/internal/boundedfile"
	"github.com/webinspect/webinspect/model/onnx"
	"github.com/webinspect/webinspect/rollmap"
)

// writeRecipe writes the built-in fabric recipe, edited, to a file.
func writeRecipe(t *testing.T, edit func(*engine.Recipe)) string {
	t.Helper()
	r, err := engine.DefaultRecipe("fabric")
	if err != nil {
		t.Fatal(err)
	}
	edit(r)
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "recipe.json")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// noRolls fails the test when the rolls directory holds a roll.
func noRolls(t *testing.T, rolls string) {
	t.Helper()
	if ds, _ := rollDirs(rolls); len(ds) != 0 {
		t.Errorf("a configuration error left rolls %v in %s", ds, rolls)
	}
}

// A recipe whose buffers need more memory than the machine may give ran
// out of memory (pipeline.ring_blocks 4096: 8.5 GB on two fabric-2m
// cameras; pipeline.result_queue 65536: 136 GB of crop history), and
// every configuration error left an empty open roll that the next start
// resumed (issue 14 #5). Now the error names the fields and the bytes,
// and comes before any roll is opened, for run and replay.
func TestMemoryBudgetRefusedBeforeTheRoll(t *testing.T) {
	rec := filepath.Join(t.TempDir(), "rec")
	if code, _, stderr := runCLI(t, "simulate", "--out", rec, "--length", "12m", "--width", "400mm", "--defects", "2"); code != 0 {
		t.Fatalf("simulate: %s", stderr)
	}
	ring := writeRecipe(t, func(r *engine.Recipe) { r.Pipeline.RingBlocks, r.Pipeline.MaxMemoryMB = 4096, 1000 })
	queue := writeRecipe(t, func(r *engine.Recipe) { r.Pipeline.ResultQueue = 65536 })
	for _, c := range []struct {
		name string
		args []string
		want []string
	}{
		{"run ring_blocks", []string{"run", "--recipe", ring, "--listen", "127.0.0.1:0"},
			[]string{"pipeline.ring_blocks 4096 needs ", " bytes (", "pipeline.max_memory_mb"}},
		{"run result_queue", []string{"run", "--recipe", queue, "--listen", "127.0.0.1:0"},
			[]string{"pipeline.result_queue 65536 needs ", "images.history_lines 0 (auto", " bytes ("}},
		{"replay result_queue", []string{"replay", rec, "--recipe", queue},
			[]string{"pipeline.result_queue 65536 needs "}},
		{"run recipe /dev/zero", []string{"run", "--recipe", "/dev/zero", "--listen", "127.0.0.1:0"},
			[]string{"/dev/zero", "not a regular file"}},
		{"replay recipe /dev/zero", []string{"replay", rec, "--recipe", "/dev/zero"},
			[]string{"/dev/zero", "not a regular file"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			rolls := filepath.Join(t.TempDir(), "rolls")
			code, _, stderr := runCLI(t, append(c.args, "--rolls", rolls)...)
			oneLineError(t, code, stderr, c.want...)
			noRolls(t, rolls)
		})
	}
}

// Every file read by path is capped and must be a regular file: a recipe,
// model.json, a geometry file or roll.json naming /dev/zero was read
// until memory ran out, and a FIFO blocked for ever (issue 14 #5, #6).
func TestFileReadsCapped(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	rollDir := filepath.Join(dir, "R")
	if err := os.Mkdir(rollDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/dev/zero", filepath.Join(rollDir, rollmap.MetaFile)); err != nil {
		t.Fatal(err)
	}
	readers := map[string]func(string) error{
		"recipe":   func(p string) error { _, err := engine.LoadRecipe(p); return err },
		"geometry": func(p string) error { _, err := camera.ReadGeometry(p); return err },
		"sidecar":  func(p string) error { _, err := onnx.ReadSidecar(p); return err },
	}
	for name, read := range readers {
		for _, p := range []string{"/dev/zero", fifo} {
			done := make(chan error, 1)
			go func() { done <- read(p) }()
			select {
			case err := <-done:
				if !errors.Is(err, boundedfile.ErrNotRegular) && !strings.Contains(fmt.Sprint(err), "not a regular file") {
					t.Errorf("%s %s: %v, want not a regular file", name, p, err)
				}
			case <-time.After(time.Minute): // a hang guard
				t.Fatalf("%s %s: still reading after a minute", name, p)
			}
		}
	}
	if _, _, _, err := rollmap.ReadRoll(rollDir); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("roll.json linked to /dev/zero: %v, want not a regular file", err)
	}
}

package engine

import (
	"errors"
	"runtime"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/webinspect/webinspect/acquisition/sim"
)

// onMachine makes the engine see a machine of total bytes of memory, all
// of it available, for the test.
func onMachine(t *testing.T, total float64) {
	t.Helper()
	old := meminfo
	meminfo = func() (float64, float64) { return total, total }
	t.Cleanup(func() { meminfo = old })
}

// fabric2m is the fabric-2m line: 2 m of fabric, 2 cameras at 0.25 mm/px
// (4000 px and more each), 256-line blocks.
func fabric2m(t *testing.T) *sim.Sim {
	t.Helper()
	cfg := sim.DefaultConfig()
	cfg.WidthMM, cfg.LengthM = 2000, 10
	s, err := sim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// pipeline.ring_blocks 4096 (the documented maximum) needed 4.3 GB and
// pipeline.result_queue 65536 tens of GB: the engine allocated until the
// machine ran out (issue 14 #5). The need is checked against the budget
// before anything is allocated, and the error names the fields and bytes.
func TestMemoryBudgetRefusesBeforeAllocating(t *testing.T) {
	onMachine(t, 8e9) // budget: half, 4 GB
	src := fabric2m(t)
	for _, c := range []struct {
		name  string
		edit  func(*Recipe)
		field string
	}{
		{"ring_blocks", func(r *Recipe) { r.Pipeline.RingBlocks = 4096 }, "pipeline.ring_blocks 4096 needs "},
		{"result_queue", func(r *Recipe) { r.Pipeline.ResultQueue = 65536 }, "pipeline.result_queue 65536 needs "},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, err := DefaultRecipe("fabric")
			if err != nil {
				t.Fatal(err)
			}
			c.edit(r)
			if err := CheckConfig(r, src.Info(), true); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), c.field) ||
				!strings.Contains(err.Error(), "GB)") || !strings.Contains(err.Error(), "half of this machine's 8000000000 bytes") {
				t.Errorf("CheckConfig: %v\nwant ErrConfig naming %q, the bytes needed and the budget", err, c.field)
			}
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, err = New(Options{Recipe: r, Source: src, Roll: &memRoll{}, Images: discardCrops{}, Logger: zerolog.Nop()})
			runtime.ReadMemStats(&after)
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), c.field) {
				t.Errorf("New: %v, want the memory error", err)
			}
			if grew := after.TotalAlloc - before.TotalAlloc; grew > 64<<20 {
				t.Errorf("New allocated %d bytes before refusing", grew)
			}
		})
	}

	// The defaults fit easily; a bigger budget lets the big ring through;
	// without crops the history is not needed.
	r, _ := DefaultRecipe("fabric")
	if err := CheckConfig(r, src.Info(), true); err != nil {
		t.Errorf("default recipe on fabric-2m: %v", err)
	}
	need := EstimateMemory(r, src.Info(), true)
	// 2 cameras of 4040 px: rings 2 × 17 × 256 lines, history 2 × 21 536 lines.
	if need.Total() < 150e6 || need.Total() > 300e6 {
		t.Errorf("default recipe on fabric-2m needs %.0f bytes, want about 210 MB (2 cameras × 17 blocks and 84 blocks of history of 256 × 4040 px)", need.Total())
	}
	r.Pipeline.RingBlocks = 4096
	if got := EstimateMemory(r, src.Info(), false).Rings; got < 8e9 || got > 9e9 {
		t.Errorf("ring_blocks 4096 on fabric-2m: %.0f bytes of rings, want 4.2 GB per camera, as the issue measured", got)
	}
	if err := CheckConfig(r, src.Info(), true); err == nil {
		t.Error("ring_blocks 4096 with crops fits a 4 GB budget?")
	}
	onMachine(t, 64e9)
	r.Pipeline.MaxMemoryMB = 20000
	if err := CheckConfig(r, src.Info(), true); err != nil {
		t.Errorf("ring_blocks 4096 with max_memory_mb 20000 on a 64 GB machine: %v", err)
	}
	r.Pipeline.MaxMemoryMB = 1000
	if err := CheckConfig(r, src.Info(), false); err == nil || !strings.Contains(err.Error(), "pipeline.max_memory_mb") {
		t.Errorf("ring_blocks 4096 within max_memory_mb 1000: %v, want the budget named", err)
	}
	// Never more than the machine has available now.
	old := meminfo
	meminfo = func() (float64, float64) { return 64e9, 1e9 }
	defer func() { meminfo = old }()
	r.Pipeline.MaxMemoryMB = 20000
	if err := CheckConfig(r, src.Info(), false); err == nil || !strings.Contains(err.Error(), "available") {
		t.Errorf("4.3 GB on a machine with 1 GB available: %v", err)
	}
}

// discardCrops is an image sink that keeps nothing.
type discardCrops struct{}

func (discardCrops) PutCrop(w, h, stride int, pix []uint8) (string, error) { return "", nil }

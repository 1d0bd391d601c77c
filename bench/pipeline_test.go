package bench

import (
	"context"
	"fmt"
	"runtime"
	"testing"

	"github.com/rs/zerolog"

	"github.com/webinspect/webinspect/acquisition/sim"
	"github.com/webinspect/webinspect/engine"
	"github.com/webinspect/webinspect/rollmap"
)

type discardRoll struct{ n int }

func (d *discardRoll) ID() string                                  { return "bench" }
func (d *discardRoll) AddDefects(ds ...rollmap.Defect) error       { d.n += len(ds); return nil }
func (d *discardRoll) AddUninspected(...rollmap.Uninspected) error { return nil }
func (d *discardRoll) SetLength(float64)                           {}
func (d *discardRoll) Flush() error                                { return nil }

// captureSim captures 24 blocks per camera of a simulated 2 m web of
// material with defects, and returns them with the material's recipe.
func captureSim(b *testing.B, material string) (*MemorySource, *engine.Recipe) {
	b.Helper()
	cfg := sim.DefaultConfig()
	cfg.Material = material
	cfg.LengthM = 8
	cfg.Defects = 10
	s, err := sim.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	mem, err := Capture(context.Background(), s, 24)
	if err != nil {
		b.Fatal(err)
	}
	recipe, err := engine.DefaultRecipe(material)
	if err != nil {
		b.Fatal(err)
	}
	return mem, recipe
}

// BenchmarkPipeline runs the whole threshold pipeline (rings, flat-field,
// background, thresholds, runs, labelling, assembly, classification) over
// simulated web held in memory.
func BenchmarkPipeline(b *testing.B) {
	for _, material := range []string{"fabric", "film"} {
		b.Run(fmt.Sprintf("material=%s/width=2000mm", material), func(b *testing.B) {
			mem, recipe := captureSim(b, material)
			mem = mem.WithBlocks(96)
			b.SetBytes(mem.Pixels())
			b.ReportAllocs()
			b.ResetTimer()
			defects := 0
			for i := 0; i < b.N; i++ {
				roll := &discardRoll{}
				e, err := engine.New(engine.Options{Recipe: recipe, Source: mem, Roll: roll, Logger: zerolog.Nop()})
				if err != nil {
					b.Fatal(err)
				}
				if err := e.Run(context.Background()); err != nil {
					b.Fatal(err)
				}
				defects = roll.n
			}
			b.StopTimer()
			sec := b.Elapsed().Seconds() / float64(b.N)
			b.ReportMetric(float64(mem.Pixels())/sec/1e6, "Mpx/s")
			b.ReportMetric(float64(mem.Lines())/sec, "lines/s")
			b.ReportMetric(float64(defects), "defects/run")
		})
	}
}

// BenchmarkSteadyState measures what the threshold pipeline allocates per
// block once it is running: one engine inspects b.N blocks per camera
// after 64 warm-up blocks (set-up, rings, buffers growing to their working
// size), and allocs/block counts runtime mallocs from the end of the
// warm-up to the end of the run, divided by the blocks inspected. Defects
// are found and assembled all the way through.
func BenchmarkSteadyState(b *testing.B) {
	const warmup = 64
	for _, material := range []string{"fabric", "film"} {
		b.Run(fmt.Sprintf("material=%s", material), func(b *testing.B) {
			mem, recipe := captureSim(b, material)
			mem = mem.WithBlocks(warmup + b.N)
			var start runtime.MemStats
			blocks := 0
			roll := &discardRoll{}
			e, err := engine.New(engine.Options{Recipe: recipe, Source: mem, Roll: roll, Logger: zerolog.Nop(),
				BeforeBlock: func(cam int) {
					if cam != 0 {
						return
					}
					if blocks++; blocks == warmup {
						runtime.ReadMemStats(&start)
					}
				}})
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(mem.Pixels() / int64(warmup+b.N))
			b.ResetTimer()
			if err := e.Run(context.Background()); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			var end runtime.MemStats
			runtime.ReadMemStats(&end)
			cams := len(mem.Info().Cameras)
			b.ReportMetric(float64(end.Mallocs-start.Mallocs)/float64(b.N*cams), "allocs/block")
			b.ReportMetric(float64(roll.n), "defects")
		})
	}
}

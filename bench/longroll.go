package bench

import (
	"context"
	"fmt"
	"io"
	"math"
	"runtime"
	"time"

	"github.com/rs/zerolog"

	"github.com/webinspect/webinspect/acquisition/sim"
	"github.com/webinspect/webinspect/engine"
	"github.com/webinspect/webinspect/rollmap"
)

// LongRollOptions configures RunLongRoll: one long simulated roll run
// through the engine into a real roll map store as fast as the machine
// allows, to show that the engine's memory is set by its configuration and
// not by the roll's length.
type LongRollOptions struct {
	// LengthM is the roll length. [1000, 100000].
	LengthM float64
	// Defects is how many defects the simulator injects. [0, 100000].
	Defects int
	// WidthMM, PixelMM and LineMM set the web's geometry; the defaults
	// (400 mm at 1 mm/px, 1 mm lines) keep a 10 km roll at 4 Gpx.
	WidthMM, PixelMM, LineMM float64
	// Dir is the roll map store's directory (it must not hold rolls yet).
	Dir string
	// SampleEveryM is how often RSS is read along the roll. [1, LengthM/10].
	SampleEveryM float64
	// BaselineM is where the reference RSS is taken. [SampleEveryM, LengthM/2].
	BaselineM float64
	// GC runs a garbage collection before each sample, so that samples
	// compare what the engine holds rather than where the collector's
	// pacing happens to be (without it, RSS also holds garbage up to the
	// heap goal, twice the live heap by default).
	GC bool
}

// DefaultLongRollOptions is a 10 km roll with 100 000 defects, RSS read
// every 100 m, the reference at 1 km.
func DefaultLongRollOptions(dir string) LongRollOptions {
	return LongRollOptions{LengthM: 10000, Defects: 100000, WidthMM: 400, PixelMM: 1, LineMM: 1,
		Dir: dir, SampleEveryM: 100, BaselineM: 1000, GC: true}
}

// Validate names the first bad field and its allowed range.
func (o LongRollOptions) Validate() error {
	bad := func(f string, v any, rng string) error {
		return fmt.Errorf("%w: LongRollOptions.%s = %v: want %s", ErrOptions, f, v, rng)
	}
	switch {
	case !(o.LengthM >= 1000 && o.LengthM <= 100000):
		return bad("LengthM", o.LengthM, "1000..100000")
	case o.Defects < 0 || o.Defects > 100000:
		return bad("Defects", o.Defects, "0..100000")
	case o.Dir == "":
		return bad("Dir", `""`, "a directory")
	case !(o.SampleEveryM >= 1 && o.SampleEveryM <= o.LengthM/10):
		return bad("SampleEveryM", o.SampleEveryM, fmt.Sprintf("1..%g", o.LengthM/10))
	case !(o.BaselineM >= o.SampleEveryM && o.BaselineM <= o.LengthM/2):
		return bad("BaselineM", o.BaselineM, fmt.Sprintf("%g..%g", o.SampleEveryM, o.LengthM/2))
	}
	return nil
}

// RSSSample is the process's resident memory at one position on the roll.
type RSSSample struct {
	MDM   float64 `json:"md_m"`
	RSSMB float64 `json:"rss_mb"`  // VmRSS
	HeapM float64 `json:"heap_mb"` // Go heap in use
}

// LongRollResult is what RunLongRoll measured.
type LongRollResult struct {
	LengthM    float64     `json:"length_m"`
	Defects    int64       `json:"defects"`
	Seconds    float64     `json:"seconds"`
	MpxS       float64     `json:"mpx_s"`
	GC         bool        `json:"gc_before_sample"`
	BaselineMB float64     `json:"baseline_rss_mb"` // RSS at BaselineM
	MaxAfterMB float64     `json:"max_rss_after_baseline_mb"`
	FinalMB    float64     `json:"final_rss_mb"`
	Growth     float64     `json:"growth"` // MaxAfterMB / BaselineMB - 1
	Samples    []RSSSample `json:"samples"`
	RollDir    string      `json:"roll_dir"`
}

// RunLongRoll runs the long roll and samples RSS along it.
func RunLongRoll(ctx context.Context, o LongRollOptions, log zerolog.Logger) (LongRollResult, error) {
	if err := o.Validate(); err != nil {
		return LongRollResult{}, err
	}
	cfg := sim.DefaultConfig()
	cfg.Material = sim.Fabric
	cfg.Seed = 10
	cfg.LengthM, cfg.Defects = o.LengthM, o.Defects
	cfg.WidthMM, cfg.PixelMM, cfg.LineMM = o.WidthMM, o.PixelMM, o.LineMM
	cfg.Cameras = 1
	cfg.OverlapMM = 0
	src, err := sim.New(cfg)
	if err != nil {
		return LongRollResult{}, err
	}
	defer src.Close()
	recipe, err := engine.DefaultRecipe("fabric")
	if err != nil {
		return LongRollResult{}, err
	}
	store, err := rollmap.OpenStore(o.Dir)
	if err != nil {
		return LongRollResult{}, err
	}
	defer store.Close()
	info := src.Info()
	roll, err := store.StartRoll(rollmap.RollMeta{Recipe: recipe.Name, Material: info.Material, Source: info.Name,
		WebWidthMM: info.WebWidthMM, Lanes: recipe.Lanes, Grading: recipe.Grading})
	if err != nil {
		return LongRollResult{}, err
	}
	eng, err := engine.New(engine.Options{Recipe: recipe, Source: src, Roll: roll, Logger: log})
	if err != nil {
		roll.Close()
		return LongRollResult{}, err
	}
	res := LongRollResult{RollDir: o.Dir + "/" + roll.ID(), GC: o.GC}
	sample := func(md float64) {
		if o.GC {
			runtime.GC()
		}
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		res.Samples = append(res.Samples, RSSSample{MDM: md, RSSMB: rssMB(), HeapM: float64(ms.HeapInuse) / (1 << 20)})
	}
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- eng.Run(ctx) }()
	next := o.SampleEveryM
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	var runErr error
loop:
	for {
		select {
		case runErr = <-done:
			break loop
		case <-tick.C:
			if md := eng.Status().MDM; md >= next {
				sample(md)
				next = (math.Floor(md/o.SampleEveryM) + 1) * o.SampleEveryM
			}
		}
	}
	res.Seconds = time.Since(start).Seconds()
	sample(eng.Status().MDM)
	if cerr := roll.Close(); runErr == nil {
		runErr = cerr
	}
	if runErr != nil {
		return res, runErr
	}
	st := eng.Status()
	res.LengthM, res.Defects = st.MDM, st.Defects
	res.MpxS = float64(st.LinesIn) * float64(info.Cameras[0].Width) / res.Seconds / 1e6
	for _, s := range res.Samples {
		switch {
		case s.MDM < o.BaselineM:
		case res.BaselineMB == 0:
			res.BaselineMB = s.RSSMB
		default:
			res.MaxAfterMB = max(res.MaxAfterMB, s.RSSMB)
		}
	}
	res.FinalMB = res.Samples[len(res.Samples)-1].RSSMB
	if res.BaselineMB > 0 {
		res.Growth = res.MaxAfterMB/res.BaselineMB - 1
	}
	return res, nil
}

// WriteLongRoll prints a LongRollResult as a short table.
func WriteLongRoll(w io.Writer, r LongRollResult) error {
	how := "as found"
	if r.GC {
		how = "right after a GC"
	}
	_, err := fmt.Fprintf(w, "long roll: %.0f m, %d defects in %.1f s (%.0f Mpx/s); RSS %s\n"+
		"RSS at the baseline %.1f MiB, max after it %.1f MiB (%+.1f %%), at the end %.1f MiB\n",
		r.LengthM, r.Defects, r.Seconds, r.MpxS, how, r.BaselineMB, r.MaxAfterMB, 100*r.Growth, r.FinalMB)
	if err != nil {
		return err
	}
	for _, s := range r.Samples {
		if _, err := fmt.Fprintf(w, "  %8.0f m  RSS %7.1f MiB  heap in use %7.1f MiB\n", s.MDM, s.RSSMB, s.HeapM); err != nil {
			return err
		}
	}
	return nil
}

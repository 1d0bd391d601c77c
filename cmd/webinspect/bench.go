package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/webinspect/webinspect/bench"
	"github.com/webinspect/webinspect/engine"
	"github.com/webinspect/webinspect/model/onnx"
)

// cmdBench runs the named benchmark scenarios live on the simulator and
// prints one table row (or, with --json, one JSON object) per scenario.
func cmdBench(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	def := bench.DefaultOptions()
	name := fs.String("scenario", "", "run only this scenario (default: all)")
	asJSON := fs.Bool("json", false, "print one JSON object per scenario instead of a table")
	dur := fs.Duration("duration", def.Duration, "how long each scenario's live load runs")
	source := fs.String("source", def.Source, "source: auto, sim-live (simulator in real time) or memory-paced (pre-generated blocks replayed at line rate)")
	poll := fs.Duration("poll", def.PollInterval, "how often the latency histogram is read while blocks are in flight")
	capDur := fs.Duration("capacity", def.CapacityDuration, "unpaced run measuring the engine's capacity and headroom (0: only for overload)")
	grace := fs.Duration("recovery-grace", def.RecoveryGrace, "overload: drops later than this after the load falls count as not recovered")
	list := fs.Bool("list", false, "list the scenarios and exit")
	model := fs.String("model", "", "run the scenarios with the ONNX model in `DIR` (as webinspect teach writes it) beside the threshold detector")
	ortLib := fs.String("ort-lib", "", "ONNX Runtime library `FILE` (default: $"+onnx.EnvLibrary+" or "+onnx.LibraryRelPath+")")
	longRoll := fs.String("long-roll", "", "instead of the scenarios: run one long simulated roll (10 km, 100 000 defects) into a roll map store in this directory, reading RSS every 100 m")
	longLen := fs.Float64("long-length-m", 10000, "--long-roll: roll length, m")
	longDefects := fs.Int("long-defects", 100000, "--long-roll: defects injected")
	longGC := fs.Bool("long-gc", true, "--long-roll: collect garbage before each RSS sample (false: RSS as found, garbage included)")
	soakDur := fs.Duration("soak", 0, "instead of the scenarios: soak for `DURATION` (e.g. 1h): 'webinspect run' as a child at the fabric-2m load with roll changes, reviews, exports and 5 kill -9/restart cycles, sampled every 1/60 of the time (see bench/soak.go)")
	soakDir := fs.String("soak-dir", "", "--soak: the roll map store `DIR` (default: a new temporary directory, kept)")
	pos, err := parseFlags(fs, args, stdout)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageError{fmt.Sprintf("unexpected argument %q", pos[0])}
	}
	if *soakDur != 0 {
		return benchSoak(ctx, *soakDur, *soakDir, *model, *ortLib, *asJSON, stdout)
	}
	if *longRoll != "" {
		o := bench.DefaultLongRollOptions(*longRoll)
		o.LengthM, o.Defects, o.GC = *longLen, *longDefects, *longGC
		o.BaselineM = min(o.BaselineM, o.LengthM/2)
		o.SampleEveryM = min(o.SampleEveryM, o.LengthM/10)
		if err := o.Validate(); err != nil {
			return usageError{err.Error()}
		}
		r, err := bench.RunLongRoll(ctx, o, log)
		if err != nil {
			return err
		}
		if *asJSON {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(r)
		}
		return bench.WriteLongRoll(stdout, r)
	}
	if *list {
		for _, s := range bench.Scenarios() {
			fmt.Fprintf(stdout, "%-10s %s\n", s.Name, s.Doc)
		}
		return nil
	}
	scs := bench.Scenarios()
	if *name != "" {
		s, err := bench.Lookup(*name)
		if err != nil {
			return usageError{err.Error()}
		}
		scs = []bench.Scenario{s}
	}
	o := def
	if *model != "" {
		recipe, err := engine.DefaultRecipe(scs[0].Material)
		if err != nil {
			return err
		}
		if o.Model, err = loadModel(*model, *ortLib, recipe); err != nil {
			return err
		}
	}
	o.Duration, o.Source, o.PollInterval, o.CapacityDuration, o.RecoveryGrace = *dur, *source, *poll, *capDur, *grace
	if err := o.Validate(); err != nil {
		return usageError{err.Error()}
	}
	if !*asJSON {
		fmt.Fprintf(stdout, "webinspect bench: %d cores (GOMAXPROCS %d), %s/%s, %s, %v per scenario, latency resolution %v\n",
			runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.GOOS, runtime.GOARCH, time.Now().UTC().Format(time.RFC3339), o.Duration, o.PollInterval)
	}
	var rs []bench.Result
	for _, s := range scs {
		r, err := bench.Run(ctx, s, o)
		if err != nil {
			if errors.Is(err, bench.ErrOptions) {
				return usageError{err.Error()}
			}
			return err
		}
		if *asJSON {
			if err := bench.WriteJSON(stdout, r); err != nil {
				return err
			}
		}
		rs = append(rs, r)
	}
	if *asJSON {
		return nil
	}
	return bench.WriteTable(stdout, rs...)
}

// benchSoak runs bench --soak: this executable as the engine and exporter.
func benchSoak(ctx context.Context, d time.Duration, dir, model, ortLib string, asJSON bool, stdout io.Writer) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	if dir == "" {
		if dir, err = os.MkdirTemp("", "webinspect-soak-"); err != nil {
			return err
		}
		dir = filepath.Join(dir, "rolls")
	}
	o := bench.DefaultSoakOptions(d, dir)
	o.Log = log
	o.Command = func(args ...string) *exec.Cmd { return exec.Command(exe, args...) }
	if model != "" {
		o.RunArgs = append(o.RunArgs, "--model", model)
	}
	if ortLib != "" {
		o.RunArgs = append(o.RunArgs, "--ort-lib", ortLib)
	}
	if err := o.Validate(); err != nil {
		return usageError{err.Error()}
	}
	log.Info().Str("rolls", dir).Dur("duration", d).Str("model", model).Msg("soak")
	r, err := bench.RunSoak(ctx, o)
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if jerr := enc.Encode(r); jerr != nil {
			return jerr
		}
	} else if werr := bench.WriteSoak(stdout, r); werr != nil {
		return werr
	}
	if err != nil {
		return err
	}
	if !r.Pass() {
		return fmt.Errorf("soak failed: %s", strings.Join(r.Failures, "; "))
	}
	return nil
}

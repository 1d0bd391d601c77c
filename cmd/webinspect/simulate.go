package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/webinspect/webinspect/acquisition"
	"github.com/webinspect/webinspect/acquisition/recording"
	"github.com/webinspect/webinspect/acquisition/sim"
)

// simFlags are the simulator settings shared by simulate and run.
type simFlags struct {
	length, speed, width, stopAt, jogBack *string
	seed                                  *int64
	material                              *string
	defects, cameras                      *int
	lotAt, lotLength, lotRamp             *string
	lotShift, lotContrast                 *float64
	contrastScale                         *float64
}

func addSimFlags(fs *flag.FlagSet, defLength string, defDefects int) simFlags {
	return simFlags{
		length:        fs.String("length", defLength, "web length to simulate (e.g. 200m, 1.5km)"),
		speed:         fs.String("speed", "100m/min", "line speed (m/min or m/s)"),
		width:         fs.String("width", "2000mm", "web width (mm, cm or m)"),
		seed:          fs.Int64("seed", 1, "random seed: the same seed gives the same web"),
		material:      fs.String("material", "fabric", "material: fabric, leather or film"),
		defects:       fs.Int("defects", defDefects, "number of defects to inject (-1: one per 10 m)"),
		cameras:       fs.Int("cameras", 2, "number of cameras across the web"),
		stopAt:        fs.String("stop-at", "", "stop the web at this MD position, jog back and restart (e.g. 100m)"),
		jogBack:       fs.String("jog-back", "0.5m", "how far the web jogs back after --stop-at"),
		contrastScale: fs.Float64("contrast-scale", 1, "multiply every defect's contrast (0..2; below 1 makes subtle defects, 0.25 puts most under the threshold detector's reach)"),
		lotAt:         fs.String("lot-at", "", "a benign change of yarn lot starts at this MD position (e.g. 40m): good material, not a defect, absent from truth.csv"),
		lotLength:     fs.String("lot-length", "10m", "how long the yarn lot of --lot-at lasts"),
		lotRamp:       fs.String("lot-ramp", "0.5m", "how long the yarn lot of --lot-at takes to blend in at each end (0: an abrupt step, a shade bar)"),
		lotShift:      fs.Float64("lot-shift", 6, "the yarn lot's change of mean level, grey levels (-40..40)"),
		lotContrast:   fs.Float64("lot-contrast", 1.3, "the yarn lot's texture contrast relative to the rest (0..3)"),
	}
}

func (f simFlags) config() (sim.Config, error) {
	cfg := sim.DefaultConfig()
	var err error
	if cfg.LengthM, err = parseLengthM("length", *f.length); err != nil {
		return cfg, err
	}
	if cfg.SpeedMPerMin, err = parseSpeed("speed", *f.speed); err != nil {
		return cfg, err
	}
	if cfg.WidthMM, err = parseWidthMM("width", *f.width); err != nil {
		return cfg, err
	}
	cfg.Seed = *f.seed
	cfg.Material = *f.material
	cfg.Cameras = *f.cameras
	cfg.Defects = *f.defects
	cfg.ContrastScale = *f.contrastScale
	if cfg.Defects < 0 {
		cfg.Defects = int(cfg.LengthM / 10)
	}
	if *f.stopAt != "" {
		at, err := parseLengthM("stop-at", *f.stopAt)
		if err != nil {
			return cfg, err
		}
		back, err := parseLengthM("jog-back", *f.jogBack)
		if err != nil {
			return cfg, err
		}
		cfg.Motion = acquisition.StopAndJog(cfg.SpeedMPerMin, at, 2, back)
	}
	if *f.lotAt != "" {
		at, err := parseLengthM("lot-at", *f.lotAt)
		if err != nil {
			return cfg, err
		}
		length, err := parseLengthM("lot-length", *f.lotLength)
		if err != nil {
			return cfg, err
		}
		ramp, err := parseLengthM("lot-ramp", *f.lotRamp)
		if err != nil {
			return cfg, err
		}
		cfg.Lot = &sim.Lot{AtM: at, LengthM: length, Shift: *f.lotShift, Contrast: *f.lotContrast, RampM: ramp}
	}
	if err := cfg.Validate(); err != nil {
		return cfg, usageError{err.Error()}
	}
	return cfg, nil
}

func cmdSimulate(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("simulate", flag.ContinueOnError)
	out := fs.String("out", "", "output `DIR` for the recording and truth.csv (required)")
	realtime := fs.Bool("realtime", false, "generate at line speed instead of as fast as possible")
	sf := addSimFlags(fs, "200m", -1)
	pos, err := parseFlags(fs, args, stdout)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageError{fmt.Sprintf("unexpected argument %q", pos[0])}
	}
	if *out == "" {
		return usageError{"--out DIR is required"}
	}
	cfg, err := sf.config()
	if err != nil {
		return err
	}
	cfg.Realtime = *realtime
	s, err := sim.New(cfg)
	if err != nil {
		return err
	}
	defer s.Close()
	gen, _ := json.Marshal(map[string]any{"generator": "webinspect simulate", "config": cfg})
	log.Info().Str("out", *out).Str("material", cfg.Material).Float64("length_m", cfg.LengthM).
		Int("defects", cfg.Defects).Int64("seed", cfg.Seed).Msg("simulating")
	if err := recording.Record(ctx, s, *out, gen); err != nil {
		return err
	}
	tf, err := os.Create(filepath.Join(*out, "truth.csv"))
	if err != nil {
		return err
	}
	if err := sim.WriteTruthCSV(tf, s.Truth()); err != nil {
		tf.Close()
		return fmt.Errorf("write truth.csv: %w", err)
	}
	if err := tf.Close(); err != nil {
		return fmt.Errorf("write truth.csv: %w", err)
	}
	fmt.Fprintf(stdout, "wrote %s: %s, %.0f m, %d cameras, %d defects (truth.csv)\n",
		*out, cfg.Material, cfg.LengthM, cfg.Cameras, len(s.Truth()))
	return nil
}

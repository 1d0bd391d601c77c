package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/webinspect/webinspect/acquisition"
	"github.com/webinspect/webinspect/acquisition/recording"
	"github.com/webinspect/webinspect/acquisition/sim"
	"github.com/webinspect/webinspect/api"
	"github.com/webinspect/webinspect/engine"
	"github.com/webinspect/webinspect/rollmap"
)

func cmdRun(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	recipeF := fs.String("recipe", "", "recipe file or built-in name (default: the source's material)")
	source := fs.String("source", "sim", "sim, replay:DIR or u3v:SERIAL")
	listen := fs.String("listen", "127.0.0.1:8080", "address of the UI and API")
	rolls := fs.String("rolls", "rolls", "directory roll maps are written to")
	rollID := fs.String("roll", "", "roll ID (default: generated)")
	sf := addSimFlags(fs, "10km", -1)
	ef := addEngineFlags(fs)
	token := fs.String("token", "", "bearer token that changes (reviews, roll start/end, splices) must carry; required when --listen is not a loopback address (default: $WEBINSPECT_TOKEN)")
	pos, err := parseFlags(fs, args, stdout)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageError{fmt.Sprintf("unexpected argument %q", pos[0])}
	}
	var src acquisition.Source
	switch {
	case *source == "sim":
		cfg, err := sf.config()
		if err != nil {
			return err
		}
		cfg.Realtime = true
		s, err := sim.New(cfg)
		if err != nil {
			return err
		}
		src = s
	case strings.HasPrefix(*source, "replay:"):
		r, err := recording.Open(strings.TrimPrefix(*source, "replay:"), recording.ReadOptions{Realtime: true})
		if err != nil {
			return err
		}
		src = r
	case strings.HasPrefix(*source, "u3v:"):
		return usageError{fmt.Sprintf("--source %s: USB3 Vision cameras are not supported by this build yet (use sim or replay:DIR)", *source)}
	default:
		return usageError{fmt.Sprintf("--source %q: must be sim, replay:DIR or u3v:SERIAL", *source)}
	}
	defer src.Close()
	recipe, err := loadRecipe(*recipeF, src.Info())
	if err != nil {
		return err
	}
	store, err := openStore(*rolls, recipe)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// A roll left open by an engine that was killed is continued, not
	// abandoned: the newest such roll (or the one --roll names).
	recs, rerr := store.Recover()
	if rerr != nil {
		log.Warn().Err(rerr).Msg("roll map recovery found damaged files; every readable record is kept")
	}
	w, err := ef.setup(recipe, *rolls, reg)
	if err != nil {
		return err
	}
	defer w.close()
	hub := api.NewHub()
	defer hub.Close()
	onDefects, onRoll := publishTo(hub)
	extra := func(o *engine.Options) {
		w.options(o)
		o.OnDefects, o.OnRoll = onDefects, onRoll
	}
	var s *session
	resumed := -1
	for i := len(recs) - 1; i >= 0 && s == nil; i-- {
		if *rollID == "" || recs[i].Info.ID == *rollID {
			if s, err = resumeSession(src, recipe, store, recs[i], reg, extra); err != nil {
				return err
			}
			resumed = i
		}
	}
	// Any other roll left open (ended by a roll change just before a
	// crash, say) is closed as it was flushed, so it gets its Parquet
	// files and summary instead of staying open for ever.
	for i, rec := range recs {
		if i == resumed {
			continue
		}
		r, _, err := store.ResumeRoll(rec.Info.ID, rec.FlushedLengthM)
		if err == nil {
			err = r.Close()
		}
		if err != nil {
			log.Error().Err(err).Str("roll", rec.Info.ID).Msg("closing a roll left open")
		} else {
			log.Warn().Str("roll", rec.Info.ID).Float64("length_m", rec.FlushedLengthM).Msg("closed a roll left open by an engine that stopped")
		}
	}
	if s == nil {
		if s, err = startSession(src, recipe, store, *rollID, reg, extra); err != nil {
			return err
		}
	}
	o := api.DefaultOptions()
	o.Listen = *listen
	o.Store = store
	o.Status = s.engine.Status
	o.Gatherer = reg
	o.Logger = log
	o.Events = hub
	o.Line = lineControl{s.engine}
	o.Token = *token
	if o.Token == "" {
		o.Token = os.Getenv("WEBINSPECT_TOKEN")
	}
	o.DetectionThresholds = map[rollmap.Detector]float64{rollmap.DetectorThreshold: recipe.Threshold.MinContrast}
	if w.archive != nil {
		o.Images = w.archive
	}
	srv, err := api.New(o)
	if err != nil {
		s.engine.Close() // the roll stays open: the next start resumes it
		return err
	}
	srvErr := make(chan error, 1)
	go func() { srvErr <- srv.ListenAndServe(ctx) }()

	log.Info().Str("ui", "http://"+*listen).Str("source", src.Info().Name).Str("recipe", recipe.Name).
		Str("roll", s.roll.ID()).Msg("inspecting")
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	runDone := make(chan error, 1)
	go func() { runDone <- s.run(runCtx) }()
	select {
	case err := <-srvErr:
		// The UI could not start (e.g. the port is taken): stop inspecting cleanly.
		cancel()
		<-runDone
		return err
	case err := <-runDone:
		if err != nil && !errors.Is(err, context.Canceled) {
			log.Error().Err(err).Msg("inspection stopped")
		} else {
			log.Info().Str("roll", s.engine.Roll().ID()).Msg("source ended; roll closed. The UI stays up until Ctrl-C")
		}
		serr := <-srvErr
		if err != nil && !errors.Is(err, context.Canceled) {
			return err
		}
		if serr != nil && !errors.Is(serr, context.Canceled) {
			return serr
		}
		return nil
	}
}

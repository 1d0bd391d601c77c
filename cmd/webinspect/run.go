package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	neturl "net/url"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/webinspect/webinspect/acquisition"
	"github.com/webinspect/webinspect/acquisition/camera"
	"github.com/webinspect/webinspect/acquisition/recording"
	"github.com/webinspect/webinspect/acquisition/sim"
	"github.com/webinspect/webinspect/api"
	"github.com/webinspect/webinspect/api/opcua"
	"github.com/webinspect/webinspect/engine"
	"github.com/webinspect/webinspect/engine/status"
	"github.com/webinspect/webinspect/rollmap"
)

func cmdRun(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	recipeF := fs.String("recipe", "", "recipe `FILE` or built-in name (default: the source's material)")
	source := fs.String("source", "sim", "sim, replay:DIR, frames:DIR (a folder of real frames played as one web), gige:ADDR|SERIAL[,…] (GigE Vision cameras on one encoder, camera 0 first) or u3v:SERIAL")
	listen := fs.String("listen", "127.0.0.1:8080", "`HOST:PORT` of the UI and API")
	rolls := fs.String("rolls", "rolls", "`DIR` the roll maps are written to")
	rollID := fs.String("roll", "", "`ID` of the roll (default: generated)")
	sf := addSimFlags(fs, "10km", -1)
	ef := addEngineFlags(fs)
	cf := addCameraFlags(fs)
	pf := addPlantFlags(fs)
	ff := addFramesFlags(fs)
	tokenFile := fs.String("token-file", "", "`FILE` holding the bearer token that changes (reviews, roll start/end, splices) must carry, readable by its owner only; "+
		"required when --listen is not a loopback address (default: $WEBINSPECT_TOKEN)")
	fs.Func("token", "refused: a token on the command line is visible to every user in ps; use --token-file or $WEBINSPECT_TOKEN", func(string) error {
		return errors.New("a token on the command line is visible to every user of this machine in ps: put it in a file readable only by you (--token-file F) or in $WEBINSPECT_TOKEN")
	})
	protectReads := fs.Bool("protect-reads", false, "reads (the API, /metrics, the event stream, crops) need the token too; the page itself stays open")
	opcuaURL := fs.String("opcua", "", "serve an OPC UA endpoint at `URL` (opc.tcp://127.0.0.1:4840); off when empty. A non-loopback address needs the token, "+
		"which clients give as the password of a user name identity (see api/README.md, OPC UA)")
	var allowHosts []string
	fs.Func("allow-host", "a host name or address the UI may be reached by besides loopback names and the --listen host (repeatable, comma-separated; * for any)", func(v string) error {
		for _, h := range strings.Split(v, ",") {
			if h = strings.TrimSpace(h); h != "" {
				allowHosts = append(allowHosts, h)
			}
		}
		return nil
	})
	pos, err := parseFlags(fs, args, stdout)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageError{fmt.Sprintf("unexpected argument %q", pos[0])}
	}
	if err := pf.check(); err != nil {
		return err
	}
	token, err := readToken(*tokenFile)
	if err != nil {
		return err
	}
	if err := checkListen(*listen, token, *protectReads); err != nil {
		return err
	}
	if err := checkOPCUA(*opcuaURL, token, *protectReads); err != nil {
		return err
	}
	var src acquisition.Source
	var cams *camera.Source
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
	case strings.HasPrefix(*source, "frames:"):
		f, err := ff.open(*source, *cf.geometry, sf)
		if err != nil {
			return err
		}
		src = f
	case strings.HasPrefix(*source, "gige:") && len(*source) > len("gige:"), strings.HasPrefix(*source, "u3v:"):
		c, err := cf.open(ctx, *source)
		if err != nil {
			return err
		}
		src, cams = c, c
	default:
		return usageError{fmt.Sprintf("--source %q: must be sim, replay:DIR, frames:DIR, gige:ADDR|SERIAL[,…] or u3v:SERIAL", *source)}
	}
	defer src.Close()
	recipe, err := loadRecipe(*recipeF, src.Info())
	if err != nil {
		return err
	}
	// Every configuration error before a roll is opened: an error after
	// it would leave an empty open roll that the next start resumes.
	if err := engine.CheckConfig(recipe, src.Info(), ef.crops(recipe)); err != nil {
		return err
	}
	need := engine.EstimateMemory(recipe, src.Info(), ef.crops(recipe)).Total()
	if p, set := tuneGC(need); set {
		log.Info().Int("gogc", p).Float64("preallocated_mb", need/1e6).Msg("garbage collector sized to the preallocated buffers (GOGC in the environment overrides)")
	}
	store, err := openStore(*rolls, recipe)
	if err != nil {
		return err
	}
	defer store.Unlock()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if cams != nil {
		reg.MustRegister(cams.Collector())
	}
	if err := pf.connect(store, reg); err != nil {
		return err
	}
	defer pf.close()
	// A roll left open by an engine that was killed is continued, not
	// abandoned: the newest such roll (or the one --roll names).
	recs, rerr := store.Recover()
	if rerr != nil {
		log.Warn().Err(rerr).Msg("roll map recovery found damaged files; every readable record is kept")
	}
	ef.recipeFrom = *recipeF
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
	if cams != nil {
		o.Status = func() status.Status {
			st := s.engine.Status()
			for _, c := range cams.Stats() {
				st.CameraStats = append(st.CameraStats, status.CameraStats(c))
			}
			return st
		}
	}
	o.Gatherer = reg
	o.Logger = log
	o.Events = hub
	o.Line = lineControl{s.engine}
	o.Token = token
	o.ProtectReads = *protectReads
	o.AllowedHosts = allowHosts
	o.DetectionThresholds = map[rollmap.Detector]float64{rollmap.DetectorThreshold: max(recipe.Threshold.MinContrast, recipe.Threshold.MinPeakContrast)}
	o.Calibrator = recipeCalibrator{root: *rolls}
	if w.archive != nil {
		o.Images = w.archive
	}
	srv, err := api.New(o)
	if err != nil {
		s.engine.Close() // the roll stays open: the next start resumes it
		return err
	}
	if *opcuaURL != "" {
		ua, err := startOPCUA(ctx, *opcuaURL, token, *protectReads, srv, store, lineControl{s.engine}, recipe)
		if err != nil {
			s.engine.Close() // the roll stays open: the next start resumes it
			return err
		}
		defer ua.Close()
	}
	// The plant publisher reads the roll map on its own goroutine: a NATS
	// outage never reaches the engine.
	stopPlant := pf.start(o.Status)
	defer stopPlant()
	srvErr := make(chan error, 1)
	go func() { srvErr <- srv.ListenAndServe(ctx) }()

	log.Info().Str("ui", "http://"+*listen).Str("source", src.Info().Name).Str("recipe", recipeOrigin(*recipeF, recipe)).
		Str("model", w.describeModel()).Str("roll", s.roll.ID()).Msg("inspecting")
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	runDone := make(chan error, 1)
	go func() { runDone <- s.run(runCtx) }()
	if w.classifierDir != "" {
		// SIGHUP loads the classifier directory again (webinspect learn
		// wrote a new one); one that does not load leaves the engine with
		// the classifier it has.
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
		go func() {
			for {
				select {
				case <-hup:
					if err := w.reloadClassifier(s.engine); err != nil {
						log.Error().Err(err).Msg("classifier not reloaded; the engine keeps the one it has")
					}
				case <-runCtx.Done():
					return
				}
			}
		}()
	}
	select {
	case err := <-srvErr:
		// The UI stopped first: it could not start (the port is taken), or
		// the process was told to stop (SIGTERM, Ctrl-C). Stop inspecting
		// cleanly; an error of the run (a final flush that failed, say)
		// must reach the exit status, whatever the server said.
		cancel()
		runErr := <-runDone
		if runErr != nil && !errors.Is(runErr, context.Canceled) {
			log.Error().Err(runErr).Msg("inspection stopped")
			return runErr
		}
		logClosed(store, s.engine.Roll().ID(), "stopped")
		return err
	case err := <-runDone:
		if err != nil && !errors.Is(err, context.Canceled) {
			log.Error().Err(err).Msg("inspection stopped")
		} else {
			logClosed(store, s.engine.Roll().ID(), "source ended")
			log.Info().Msg("the UI stays up until Ctrl-C")
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

// logClosed logs that the inspection stopped (why) and the roll it wrote
// was closed, with its length and defects as the roll map has them.
func logClosed(store *rollmap.Store, id, why string) {
	ev := log.Info().Str("roll", id)
	if info, err := store.Roll(id); err == nil {
		ev = ev.Float64("length_m", roundMM(info.LengthM)).Int64("defects", info.Defects).Bool("open", info.Open)
		if info.Open {
			log.Warn().Str("roll", id).Msg(why + "; the roll is still open: the next start resumes it")
			return
		}
	}
	ev.Msg(why + "; roll closed")
}

// roundMM rounds metres to the millimetre for logs.
func roundMM(m float64) float64 { return math.Round(m*1000) / 1000 }

// recipeOrigin names the recipe for the start-up log: its name and where
// it came from.
func recipeOrigin(flagValue string, r *engine.Recipe) string {
	switch {
	case flagValue == "":
		return r.Name + " (built-in, for the source's material)"
	case r.Name != flagValue:
		return r.Name + " (" + flagValue + ")"
	}
	return r.Name
}

// maxTokenFileBytes caps the token file: a token is at most 4096 bytes.
const maxTokenFileBytes = 8192

// readToken returns the API token from path (when set) or $WEBINSPECT_TOKEN.
func readToken(path string) (string, error) {
	return readSecret("--token-file", "WEBINSPECT_TOKEN", path)
}

// readSecret returns the token in the file path (given by flag) or, when
// path is empty, in the environment variable env. The file must be a
// regular file that only its owner can read: a token others can read
// protects nothing. Errors name the file and what is wrong with it, never
// its contents.
func readSecret(flag, env, path string) (string, error) {
	if path == "" {
		return os.Getenv(env), nil
	}
	fi, err := os.Stat(path)
	if err != nil {
		return "", usageError{fmt.Sprintf("%s: %v", flag, err)}
	}
	if !fi.Mode().IsRegular() {
		return "", usageError{fmt.Sprintf("%s %s: not a regular file", flag, path)}
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return "", usageError{fmt.Sprintf("%s %s: mode %v lets others read the token: chmod 600 it", flag, path, fi.Mode().Perm())}
	}
	if fi.Size() > maxTokenFileBytes {
		return "", usageError{fmt.Sprintf("%s %s: %d bytes, a token is at most 4096", flag, path, fi.Size())}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", usageError{fmt.Sprintf("%s: %v", flag, err)}
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", usageError{fmt.Sprintf("%s %s: the file is empty", flag, path)}
	}
	return tok, nil
}

// checkListen refuses, as a command-line mistake naming the flags, a
// --listen address other machines can reach without a token, and
// --protect-reads without one.
func checkListen(listen, token string, protectReads bool) error {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return usageError{fmt.Sprintf("--listen %q: want host:port, e.g. 127.0.0.1:8080", listen)}
	}
	ip := net.ParseIP(host)
	loopback := host == "localhost" || ip != nil && ip.IsLoopback()
	if token == "" && !loopback {
		return usageError{fmt.Sprintf("--listen %s can be reached from other machines: give a token (--token-file F or $WEBINSPECT_TOKEN) "+
			"that changes must carry, or listen on 127.0.0.1", listen)}
	}
	if protectReads && token == "" {
		return usageError{"--protect-reads needs a token (--token-file F or $WEBINSPECT_TOKEN)"}
	}
	return nil
}

// opcuaOptions returns the OPC UA server's options for --opcua url.
func opcuaOptions(url, token string, protectReads bool) opcua.Options {
	o := opcua.DefaultOptions()
	o.Endpoint, o.Token, o.ProtectReads, o.Logger = url, token, protectReads, log
	return o
}

// checkOPCUA refuses, as a command-line mistake, an --opcua URL that is
// malformed or reachable from other machines without a token.
func checkOPCUA(url, token string, protectReads bool) error {
	if url == "" {
		return nil
	}
	if u, err := neturl.Parse(url); err == nil && u.Scheme == "opc.tcp" && token == "" {
		if h := u.Hostname(); h != "" && !api.LoopbackHost(h) {
			return usageError{fmt.Sprintf("--opcua %s can be reached from other machines: give a token (--token-file F or $WEBINSPECT_TOKEN) "+
				"that OPC UA clients give as the password of a user name identity, or listen on 127.0.0.1", url)}
		}
	}
	o := opcuaOptions(url, token, protectReads)
	o.Status = func() status.Status { return status.Status{} }
	if err := o.Validate(); err != nil {
		return usageError{fmt.Sprintf("--opcua: %v", strings.TrimPrefix(err.Error(), opcua.ErrInvalidOptions.Error()+": "))}
	}
	return nil
}

// startOPCUA serves the OPC UA endpoint with the HTTP API's live status
// (so that both show the same counts) and the same line control.
func startOPCUA(ctx context.Context, url, token string, protectReads bool, srv *api.Server, store *rollmap.Store,
	line opcua.Line, recipe *engine.Recipe) (*opcua.Server, error) {
	o := opcuaOptions(url, token, protectReads)
	o.Status = func() status.Status { return srv.LiveStatus().Status }
	o.Rolls, o.Line = store, line
	for _, c := range recipe.Classes {
		if c.Name != "" && !slices.Contains(o.Classes, c.Name) {
			o.Classes = append(o.Classes, c.Name)
		}
	}
	u, err := opcua.New(o)
	if err != nil {
		return nil, usageError{fmt.Sprintf("--opcua: %v", err)}
	}
	if err := u.Start(ctx); err != nil {
		return nil, err
	}
	return u, nil
}

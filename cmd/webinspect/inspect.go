package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/webinspect/webinspect/acquisition"
	"github.com/webinspect/webinspect/engine"
	"github.com/webinspect/webinspect/rollmap"
)

// loadRecipe loads --recipe, or the built-in recipe for the source's material.
func loadRecipe(flagValue string, info acquisition.Info) (*engine.Recipe, error) {
	if flagValue != "" {
		r, err := engine.LoadRecipe(flagValue)
		if err != nil {
			// A name that is neither a file nor a built-in recipe is a
			// command-line mistake (exit 2); a file that does not load
			// is not.
			if _, serr := os.Stat(flagValue); errors.Is(err, engine.ErrUnknownRecipe) || errors.Is(serr, fs.ErrNotExist) {
				return nil, usageError{fmt.Sprintf("--recipe %s: no such file and no built-in recipe of that name (built-in: %s)",
					flagValue, strings.Join(engine.BuiltinRecipes(), ", "))}
			}
		}
		return r, err
	}
	m := info.Material
	switch m {
	case "fabric", "leather", "film":
	default:
		m = "fabric"
	}
	return engine.DefaultRecipe(m)
}

// session is one inspection of one source, into one roll and the rolls
// that follow it at roll changes.
type session struct {
	engine *engine.Engine
	roll   *rollmap.Roll // the first roll
}

// rollMeta is the metadata of a new roll of this source and recipe.
func rollMeta(src acquisition.Source, recipe *engine.Recipe, rollID string) rollmap.RollMeta {
	info := src.Info()
	return rollmap.RollMeta{
		ID: rollID, Recipe: recipe.Name, Material: info.Material, Source: info.Name, WebWidthMM: info.WebWidthMM,
		Lanes: recipe.Lanes, Grading: recipe.Grading,
	}
}

// extraOptions fills engine options beyond the session's own (model,
// image archive, live events); nil for none.
type extraOptions func(*engine.Options)

func startSession(src acquisition.Source, recipe *engine.Recipe, store *rollmap.Store, rollID string, reg prometheus.Registerer, extra extraOptions) (*session, error) {
	roll, err := store.StartRoll(rollMeta(src, recipe, rollID))
	if err != nil {
		return nil, err
	}
	return newSession(src, recipe, store, roll, 0, 0, reg, extra)
}

// resumeSession continues a roll that was open when the engine stopped
// (killed, crashed, power lost). Everything flushed before the stop is
// kept; the roll continues from its last flushed length, and the stretch
// the engine could not see is recorded as uninspected (engine-restart).
func resumeSession(src acquisition.Source, recipe *engine.Recipe, store *rollmap.Store, rec rollmap.RecoveredRoll, reg prometheus.Registerer, extra extraOptions) (*session, error) {
	// Without an absolute encoder the distance the web ran while the engine
	// was down is unknown: the roll continues at its last flushed length and
	// the restart is recorded there.
	roll, rep, err := store.ResumeRoll(rec.Info.ID, rec.FlushedLengthM)
	if err != nil {
		return nil, err
	}
	if rep.Damage != nil {
		log.Warn().Err(rep.Damage).Str("roll", rec.Info.ID).Msg("resumed roll had damaged files; every readable record was kept")
	}
	log.Warn().Str("roll", rec.Info.ID).Float64("md_m", rep.FlushedLengthM).Int64("defects", rep.Defects).
		Msg("resuming a roll left open by an engine that stopped without closing it")
	return newSession(src, recipe, store, roll, rep.FlushedLengthM, rep.MaxDefectID, reg, extra)
}

func newSession(src acquisition.Source, recipe *engine.Recipe, store *rollmap.Store, roll *rollmap.Roll, startM float64, lastID int64, reg prometheus.Registerer, extra extraOptions) (*session, error) {
	o := engine.Options{Recipe: recipe, Source: src, Roll: roll, Registerer: reg, Logger: log,
		StartMDM: startM, FirstDefectID: lastID,
		NewRoll: func(id string) (engine.RollWriter, error) {
			return store.StartRoll(rollMeta(src, recipe, id))
		}}
	if extra != nil {
		extra(&o)
	}
	eng, err := engine.New(o)
	if err != nil {
		roll.Close()
		return nil, err
	}
	return &session{engine: eng, roll: roll}, nil
}

// openStore opens the roll map store with the recipe's flush interval.
func openStore(dir string, recipe *engine.Recipe) (*rollmap.Store, error) {
	o := rollmap.DefaultOptions()
	o.FlushInterval = time.Duration(recipe.Pipeline.FlushMillis) * time.Millisecond
	store, err := rollmap.OpenStoreOptions(dir, o)
	if err != nil {
		return nil, err
	}
	// One writer per store: a second engine on the same --rolls would
	// resume the same open roll and interleave its records with ours.
	if err := store.Lock(); err != nil {
		return nil, err
	}
	return store, nil
}

// run inspects until the source ends, then closes the current roll (the
// engine closed the rolls that roll changes ended). Whatever happens, the
// roll is closed with everything read so far.
func (s *session) run(ctx context.Context) error {
	err := s.engine.Run(ctx)
	cur := s.engine.Roll()
	if c, ok := cur.(io.Closer); ok {
		if cerr := c.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("close roll %s: %w", cur.ID(), cerr))
		}
	}
	return err
}

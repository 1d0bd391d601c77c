package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/webinspect/webinspect/acquisition"
	"github.com/webinspect/webinspect/engine"
	"github.com/webinspect/webinspect/rollmap"
)

// loadRecipe loads --recipe, or the built-in recipe for the source's material.
func loadRecipe(flagValue string, info acquisition.Info) (*engine.Recipe, error) {
	if flagValue != "" {
		return engine.LoadRecipe(flagValue)
	}
	m := info.Material
	switch m {
	case "fabric", "leather", "film":
	default:
		m = "fabric"
	}
	return engine.DefaultRecipe(m)
}

// session is one inspection of one source into one new roll.
type session struct {
	engine *engine.Engine
	roll   *rollmap.Roll
}

func startSession(src acquisition.Source, recipe *engine.Recipe, store *rollmap.Store, rollID string, reg prometheus.Registerer) (*session, error) {
	info := src.Info()
	roll, err := store.StartRoll(rollmap.RollMeta{
		ID: rollID, Recipe: recipe.Name, Material: info.Material, Source: info.Name, WebWidthMM: info.WebWidthMM,
		Lanes: recipe.Lanes, Grading: recipe.Grading,
	})
	if err != nil {
		return nil, err
	}
	eng, err := engine.New(engine.Options{Recipe: recipe, Source: src, Roll: roll, Registerer: reg, Logger: log})
	if err != nil {
		roll.Close()
		return nil, err
	}
	return &session{engine: eng, roll: roll}, nil
}

// run inspects until the source ends, then closes the roll. Whatever
// happens, the roll is closed with everything read so far.
func (s *session) run(ctx context.Context) error {
	err := s.engine.Run(ctx)
	if cerr := s.roll.Close(); cerr != nil {
		err = errors.Join(err, fmt.Errorf("close roll %s: %w", s.roll.ID(), cerr))
	}
	return err
}

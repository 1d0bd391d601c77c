package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"path/filepath"
	"slices"
	"strings"

	"github.com/webinspect/webinspect/acquisition/recording"
	"github.com/webinspect/webinspect/engine"
	"github.com/webinspect/webinspect/rollmap"
)

func cmdReplay(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	rolls := fs.String("rolls", "", "`OUTDIR` the roll map is written to (required)")
	recipeF := fs.String("recipe", "", "recipe `FILE` or built-in name (default: the recording's material)")
	realtime := fs.Bool("realtime", false, "replay at the recorded line speed instead of as fast as possible")
	rollID := fs.String("roll", "", "`ID` of the roll (default: generated)")
	ef := addEngineFlags(fs)
	pos, err := parseFlags(fs, args, stdout)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError{"expected exactly one recording directory: webinspect replay DIR --rolls OUTDIR"}
	}
	if *rolls == "" {
		return usageError{"--rolls OUTDIR is required"}
	}
	ef.recipeFrom = *recipeF
	_, err = replayInto(ctx, pos[0], *realtime, *recipeF, nil, ef, *rolls, *rollID, stdout)
	return err
}

// replayInto inspects the recording in recDir into a new roll of the store
// in rollsDir, with the recipe recipeF names (recipe, when not nil, wins)
// and what ef sets up, and prints the roll's line and crop summary.
func replayInto(ctx context.Context, recDir string, realtime bool, recipeF string, recipe *engine.Recipe, ef *engineFlags, rollsDir, rollID string, stdout io.Writer) (string, error) {
	src, err := recording.Open(recDir, recording.ReadOptions{Realtime: realtime})
	if err != nil {
		return "", err
	}
	defer src.Close()
	if recipe == nil {
		if recipe, err = loadRecipe(recipeF, src.Info()); err != nil {
			return "", err
		}
	}
	// Every configuration error before a roll is opened: an error after
	// it would leave an empty open roll that the next start resumes.
	if err := engine.CheckConfig(recipe, src.Info(), ef.crops(recipe)); err != nil {
		return "", err
	}
	store, err := openStore(rollsDir, recipe)
	if err != nil {
		return "", err
	}
	defer store.Unlock()
	w, err := ef.setup(recipe, rollsDir, nil)
	if err != nil {
		return "", err
	}
	defer w.close()
	s, err := startSession(src, recipe, store, rollID, nil, w.options)
	if err != nil {
		return "", err
	}
	log.Info().Str("recording", recDir).Str("roll", s.roll.ID()).Str("recipe", recipeOrigin(recipeF, recipe)).
		Str("model", w.describeModel()).Msg("replaying")
	runErr := s.run(ctx)
	info, ierr := store.Roll(s.roll.ID())
	if ierr == nil {
		fmt.Fprintf(stdout, "roll %s: %.3f m, %d defects, %d uninspected ranges (%.3f m) -> %s\n",
			info.ID, info.LengthM, info.Defects, info.Uninspected, info.UninspectedM, filepath.Join(store.Root(), info.ID))
		if ds, err := store.Defects(info.ID, rollmap.Query{}); err == nil {
			fmt.Fprintln(stdout, cropSummary(ds))
		}
	}
	if runErr != nil && !errors.Is(runErr, context.Canceled) {
		return s.roll.ID(), fmt.Errorf("%w (the roll map keeps everything inspected before the error)", runErr)
	}
	return s.roll.ID(), runErr
}

// cropSummary says how many of ds have a crop, and why the others have
// none (their image_error), as "crops: 50 of 52 defects; without: 2
// disk_full".
func cropSummary(ds []rollmap.Defect) string {
	with := 0
	why := map[string]int{}
	for i := range ds {
		switch {
		case ds[i].ImageRef != "":
			with++
		case ds[i].ImageError != "":
			why[ds[i].ImageError]++
		default:
			why["unknown"]++
		}
	}
	s := fmt.Sprintf("crops: %d of %d defects", with, len(ds))
	if len(why) == 0 {
		return s
	}
	var parts []string
	for _, r := range slices.Sorted(maps.Keys(why)) {
		parts = append(parts, fmt.Sprintf("%d %s", why[r], r))
	}
	return s + "; without: " + strings.Join(parts, ", ")
}

package engine

import (
	"testing"

	"github.com/webinspect/webinspect/acquisition/sim"
	"github.com/webinspect/webinspect/bench/score"
	"github.com/webinspect/webinspect/internal/long"
)

// The default recipes' class rules alone (size, aspect, fill, polarity,
// contrast) give at least 85 % of the found defects their true class on
// the simulator's webs of all three materials, and every class the
// simulator draws is produced (issue 15 #5). bench/RESULTS.md holds the
// confusion matrix of the long run (WEBINSPECT_LONG=1).
func TestDefaultRecipesClassifySimulatorClasses(t *testing.T) {
	longUnderRace(t, "three 60 m runs take about 6 minutes under -race")
	seeds := []int64{101}
	if long.Enabled() {
		seeds = []int64{101, 202, 303, 404}
	}
	var all score.Score
	for _, mat := range []string{"fabric", "leather", "film"} {
		for _, seed := range seeds {
			cfg := testSimConfig(mat, seed)
			cfg.LengthM, cfg.Defects = 60, 40
			roll, s, err := runSim(t, cfg, nil, Options{})
			if err != nil {
				t.Fatal(err)
			}
			sc := scoreRoll(t, cfg, nil, roll, s.Truth())
			t.Logf("%s seed %d: %s; classes right %d/%d", mat, seed, sc, sc.ClassRight, sc.Found)
			all.Add(sc)
		}
	}
	t.Logf("class confusion, %d runs:\n%s", 3*len(seeds), all.ConfusionTable())
	if acc := all.ClassAccuracy(); acc < 0.85 || all.Found < 60 {
		t.Errorf("%d of %d found defects got their true class (%.1f %%), want at least 85 %%", all.ClassRight, all.Found, 100*acc)
	}
	given := map[string]bool{}
	for _, row := range all.Confusion {
		for c := range row {
			given[c] = true
		}
	}
	for _, c := range []string{sim.ClassHole, sim.ClassStain, sim.ClassStreak, sim.ClassKnot, sim.ClassSlub, sim.ClassCrease, sim.ClassGel, sim.ClassScratch} {
		if !given[c] {
			t.Errorf("no defect was classed %s: the default recipes do not produce the simulator's class", c)
		}
	}
}

// longUnderRace skips t under the race detector unless long tests are on
// (the test takes well over 20 s there; without -race it always runs).
func longUnderRace(t *testing.T, why string) {
	t.Helper()
	if raceEnabled {
		long.Skip(t, why)
	}
}

// A faint speck of half a square millimetre is no critical hole: the
// default recipes grade holes critical only from 2 mm and 40 grey levels.
func TestFaintSpeckIsNotCriticalHole(t *testing.T) {
	for _, mat := range BuiltinRecipes() {
		r, err := DefaultRecipe(mat)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range []Measure{
			{LengthMM: 0.75, WidthMM: 0.75, AreaMM2: 0.5, Polarity: "bright", PeakAbs: 30, MeanAbs: 24},
			{LengthMM: 1, WidthMM: 0.75, AreaMM2: 0.5, Polarity: "bright", PeakAbs: 30, MeanAbs: 18},
			{LengthMM: 1, WidthMM: 1, AreaMM2: 0.5, Polarity: "dark", PeakAbs: 25, MeanAbs: 20},
		} {
			class, sev, dec := r.Classify(m)
			if sev == "critical" {
				t.Errorf("%s: a %.1f mm² speck of contrast %.0f is %s %s (%s)", mat, m.AreaMM2, m.PeakAbs, sev, class, dec)
			}
		}
		// A real hole still is.
		if class, sev, _ := r.Classify(Measure{LengthMM: 8, WidthMM: 7, AreaMM2: 44, Polarity: "bright", PeakAbs: 80, MeanAbs: 66}); class != sim.ClassHole || sev != "critical" {
			t.Errorf("%s: an 8 mm bright hole is %s %s, want critical hole", mat, sev, class)
		}
	}
}

package rollmap

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the golden files and fixtures under testdata")

// tokyo is a non-UTC zone: stored times must come back in UTC.
var tokyo = time.FixedZone("JST", 9*3600)

// makeDefects returns n defects with every field set and varied, IDs 1..n
// in MD order, times with nanoseconds in a non-UTC zone.
func makeDefects(n int, seed uint64) []Defect {
	rng := rand.New(rand.NewPCG(seed, 7))
	classes := []string{"hole", "stain", "thin-spot", "fly, yarn", "Ölfleck"}
	decisions := []Decision{DecisionPass, DecisionMark, DecisionReview}
	polarity := []string{"bright", "dark", "mixed"}
	review := []string{"", "confirmed", "false_alarm", "reclassified"}
	base := time.Date(2025, 3, 14, 15, 15, 2, 0, tokyo)
	ds := make([]Defect, n)
	md := 0.0
	for i := range ds {
		md += rng.Float64() * 0.5
		cd := rng.Float64() * 2000
		ds[i] = Defect{
			ID:            int64(i + 1),
			MDStartM:      md,
			MDEndM:        md + rng.Float64()*0.05,
			CDStartMM:     cd,
			CDEndMM:       cd + rng.Float64()*20,
			AreaMM2:       float64(rng.IntN(4000)) * 0.0625,
			PeakScore:     rng.Float64() * 100,
			MeanScore:     rng.Float64() * 40,
			Contrast:      rng.NormFloat64() * 30,
			Polarity:      polarity[rng.IntN(len(polarity))],
			Class:         classes[rng.IntN(len(classes))],
			Severity:      fmt.Sprintf("S%d", rng.IntN(4)),
			Decision:      decisions[rng.IntN(len(decisions))],
			Detector:      []Detector{DetectorThreshold, ModelDetector("fabric-v2")}[rng.IntN(2)],
			Camera:        rng.IntN(4),
			Lane:          rng.IntN(6) - 1,
			Time:          base.Add(time.Duration(i)*time.Millisecond + time.Duration(rng.IntN(1e6))),
			EncoderCount:  int64(md * 4000),
			ImageRef:      fmt.Sprintf("crops/%06d.png", i+1),
			ReviewStatus:  review[rng.IntN(len(review))],
			ReviewLabel:   []string{"", "knot", `label "quoted"`, "two\nlines"}[rng.IntN(4)],
			RecipeVersion: []string{"", "3f9a2b1c0d4e5f60"}[rng.IntN(2)],
			ModelVersion:  []string{"", "0a1b2c3d4e5f6071"}[rng.IntN(2)],
		}
		if rng.IntN(2) == 0 {
			ds[i].WebEdgeMM = rng.Float64()*60 - 30 // a web wandering ±30 mm
		}
	}
	return ds
}

func makeUninspected(n int, seed uint64) []Uninspected {
	rng := rand.New(rand.NewPCG(seed, 11))
	us := make([]Uninspected, n)
	md := 0.0
	for i := range us {
		md += rng.Float64() * 10
		us[i] = Uninspected{
			MDStartM:  md,
			MDEndM:    md + rng.Float64(),
			CDStartMM: 0,
			CDEndMM:   500 * float64(1+rng.IntN(4)),
			Camera:    rng.IntN(5) - 1,
			Lines:     rng.Int64N(10000),
			Reason:    []Reason{ReasonDropped, ReasonSourceError, ReasonRestart}[rng.IntN(3)],
		}
	}
	return us
}

// stored returns what the roll map keeps of ds for roll id: RollID set,
// times in UTC truncated to the microsecond.
func stored(id string, ds []Defect) []Defect {
	out := make([]Defect, len(ds))
	for i, d := range ds {
		d.RollID = id
		d.Time = d.Time.UTC().Truncate(time.Microsecond)
		out[i] = d
	}
	return out
}

func storedU(id string, us []Uninspected) []Uninspected {
	out := make([]Uninspected, len(us))
	for i, u := range us {
		u.RollID = id
		out[i] = u
	}
	return out
}

// equalRows fails the test at the first row that differs.
func equalRows[T any](t *testing.T, what string, got, want []T) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d rows, want %d", what, len(got), len(want))
	}
	for i := range got {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Fatalf("%s: row %d:\n got %+v\nwant %+v", what, i, got[i], want[i])
		}
	}
}

// writeRoll starts roll id in s, adds ds and us in the given number of
// flushes and returns the open roll.
func writeRoll(t testing.TB, s *Store, id string, ds []Defect, us []Uninspected, flushes int) *Roll {
	t.Helper()
	r, err := s.StartRoll(RollMeta{ID: id, Recipe: "fabric-2m", Material: "fabric", Source: "sim",
		WebWidthMM: 2000, Started: time.Date(2025, 3, 14, 6, 15, 2, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	for k := range flushes {
		lo, hi := len(ds)*k/flushes, len(ds)*(k+1)/flushes
		if err := r.AddDefects(ds[lo:hi]...); err != nil {
			t.Fatal(err)
		}
		lo, hi = len(us)*k/flushes, len(us)*(k+1)/flushes
		if err := r.AddUninspected(us[lo:hi]...); err != nil {
			t.Fatal(err)
		}
		if err := r.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

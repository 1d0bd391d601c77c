package engine

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParseRecipe: ParseRecipe never panics, and a recipe it accepts is
// valid, survives a JSON round trip unchanged, and classifies a defect
// into a decision the engine knows.
func FuzzParseRecipe(f *testing.F) {
	for _, n := range BuiltinRecipes() {
		b, err := os.ReadFile(filepath.Join("recipes", n+".json"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"name":"x","material":"fabric","classes":[{"name":"spot"}]}`))
	f.Add([]byte(`{"name":"x","material":"film","classes":[{"name":"a"}],"severity":[{"class":"a","severity":"Critical"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseRecipe("fuzz.json", data)
		if err != nil {
			return
		}
		if err := r.Validate(); err != nil {
			t.Fatalf("accepted recipe fails Validate: %v", err)
		}
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatalf("accepted recipe does not encode: %v", err)
		}
		r2, err := ParseRecipe("again.json", b)
		if err != nil {
			t.Fatalf("accepted recipe, encoded, is refused: %v\n%s", err, b)
		}
		b2, _ := json.Marshal(r2)
		if string(b) != string(b2) {
			t.Fatalf("round trip changed the recipe:\n%s\n%s", b, b2)
		}
		for _, m := range []Measure{{Polarity: "bright", LengthMM: 3, WidthMM: 3, AreaMM2: 7, PeakAbs: 80},
			{Polarity: "dark", LengthMM: 100, WidthMM: 2, AreaMM2: 150, PeakAbs: 20}} {
			if _, _, d := r.Classify(m); d != DecisionPass && d != DecisionMark && d != DecisionReview {
				t.Fatalf("Classify gave decision %q", d)
			}
		}
	})
}

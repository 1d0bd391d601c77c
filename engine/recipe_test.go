package engine

import (
	"errors"
	"strings"
	"testing"

	"github.com/webinspect/webinspect/rollmap"
)

func TestBuiltinRecipesLoadAndValidate(t *testing.T) {
	names := BuiltinRecipes()
	for _, want := range []string{"fabric", "leather", "film"} {
		if !strings.Contains(strings.Join(names, ","), want) {
			t.Errorf("built-in recipes %v lack %q", names, want)
		}
	}
	for _, n := range names {
		r, err := LoadRecipe(n)
		if err != nil {
			t.Fatalf("built-in recipe %s: %v", n, err)
		}
		if r.Material != n {
			t.Errorf("built-in recipe %s has material %q", n, r.Material)
		}
	}
}

func TestRecipeErrorsNameTheProblem(t *testing.T) {
	base := `{"name":"x","material":"fabric","classes":[{"name":"spot"}]`
	cases := []struct {
		name, doc string
		want      []string
	}{
		{"syntax", "{\n\"name\": \"x\",\n\"material\": fabric\n}", []string{"line 3", "invalid JSON"}},
		{"unknown field", base + `,"threshold":{"k_sigmaa":3}}`, []string{"unknown field", "k_sigmaa"}},
		{"wrong type", base + `,"threshold":{"k_sigma":"high"}}`, []string{"threshold.k_sigma", "float64"}},
		{"out of range", base + `,"threshold":{"k_sigma":0.5}}`, []string{"threshold.k_sigma = 0.5", "between 2 and 50"}},
		{"ring", base + `,"pipeline":{"ring_blocks":1}}`, []string{"pipeline.ring_blocks = 1", "between 2 and 4096"}},
		{"material", `{"name":"x","material":"steel","classes":[{"name":"spot"}]}`, []string{"material = \"steel\"", "fabric"}},
		{"no classes", `{"name":"x","material":"film"}`, []string{"classes"}},
		{"decision", base + `,"decisions":[{"class":"spot","severity":"*","decision":"burn"}]}`, []string{"decisions[0].decision", "pass, review, mark"}},
		{"unknown class", base + `,"decisions":[{"class":"hole","severity":"*","decision":"mark"}]}`, []string{"decisions[0].class = \"hole\""}},
		{"min>max", `{"name":"x","material":"film","classes":[{"name":"a","min_size_mm":5,"max_size_mm":2}]}`, []string{"classes[0].min_size_mm = 5 is greater than max_size_mm"}},
		{"trailing", base + `}{}`, []string{"unexpected data"}},
		{"empty", ``, []string{"unexpected end"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseRecipe("r.json", []byte(c.doc))
			if err == nil {
				t.Fatal("accepted a bad recipe")
			}
			if !errors.Is(err, ErrRecipe) {
				t.Errorf("error does not wrap ErrRecipe: %v", err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line: %q", err)
			}
		})
	}
}

func TestLoadRecipeMissingFileAndUnknownName(t *testing.T) {
	if _, err := LoadRecipe("/nonexistent/r.json"); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("missing file: %v", err)
	}
	if _, err := LoadRecipe("steel"); !errors.Is(err, ErrUnknownRecipe) {
		t.Errorf("unknown built-in: %v", err)
	}
}

func TestClassifyRules(t *testing.T) {
	r, err := LoadRecipe("fabric")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		m          Measure
		class, sev string
		decision   rollmap.Decision
	}{
		{Measure{LengthMM: 400, WidthMM: 1, AreaMM2: 300, Polarity: "dark", PeakAbs: 60}, "streak", "critical", "mark"},
		{Measure{LengthMM: 300, WidthMM: 6, AreaMM2: 600, Polarity: "mixed", PeakAbs: 60}, "crease", "critical", "mark"},
		{Measure{LengthMM: 1.5, WidthMM: 12, AreaMM2: 15, Polarity: "dark", PeakAbs: 60}, "slub", "major", "review"},
		{Measure{LengthMM: 3, WidthMM: 3, AreaMM2: 7, Polarity: "bright", PeakAbs: 60}, "hole", "critical", "mark"},
		{Measure{LengthMM: 30, WidthMM: 25, AreaMM2: 500, Polarity: "dark", PeakAbs: 60}, "stain", "critical", "mark"},
		{Measure{LengthMM: 2, WidthMM: 2, AreaMM2: 3, Polarity: "dark", PeakAbs: 60}, "knot", "minor", "pass"},
		{Measure{LengthMM: 8, WidthMM: 4, AreaMM2: 25, Polarity: "dark", PeakAbs: 60}, "other", "major", "review"},
	}
	for _, c := range cases {
		class, sev, dec := r.Classify(c.m)
		if class != c.class || sev != c.sev || dec != c.decision {
			t.Errorf("%+v: got %s/%s/%s, want %s/%s/%s", c.m, class, sev, dec, c.class, c.sev, c.decision)
		}
	}
}

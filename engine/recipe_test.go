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

// TestRecipeModelRanges checks every field of the model section (which is
// infer.Options, plus path and false_alarms_per_100m) from both sides of
// its range: the recipe refuses the value when it loads, naming the field
// by its recipe path, and every value the recipe accepts infer.Options
// accepts too (the recipe used to take off_web.min_band 5000, which the
// model detector then refused at run time).
func TestRecipeModelRanges(t *testing.T) {
	base := `{"name":"x","material":"fabric","classes":[{"name":"spot"}],"model":`
	cases := []struct {
		path, model string
		ok          bool
	}{
		{"model.bin", `{"bin":0}`, false},
		{"model.bin", `{"bin":1}`, true},
		{"model.bin", `{"bin":3}`, false},
		{"model.overlap_cd", `{"overlap_cd":-1}`, false},
		{"model.overlap_cd", `{"overlap_cd":4096}`, true},
		{"model.overlap_cd", `{"overlap_cd":4097}`, false},
		{"model.overlap_md", `{"overlap_md":-1}`, false},
		{"model.overlap_md", `{"overlap_md":4097}`, false},
		{"model.workers", `{"workers":0}`, false},
		{"model.workers", `{"workers":64}`, true},
		{"model.workers", `{"workers":65}`, false},
		{"model.batch", `{"batch":-1}`, false},
		{"model.batch", `{"batch":64}`, true},
		{"model.batch", `{"batch":65}`, false},
		{"model.max_wait_ms", `{"max_wait_ms":-1}`, false},
		{"model.max_wait_ms", `{"max_wait_ms":1000}`, true},
		{"model.max_wait_ms", `{"max_wait_ms":1001}`, false},
		{"model.in_flight", `{"in_flight":1}`, false},
		{"model.in_flight", `{"in_flight":16}`, true},
		{"model.in_flight", `{"in_flight":17}`, false},
		{"model.threshold", `{"threshold":-0.5}`, false},
		{"model.threshold", `{"threshold":0.5}`, true},
		{"model.threshold", `{"threshold":2e9}`, false},
		{"model.min_area_px", `{"min_area_px":-1}`, false},
		{"model.min_area_px", `{"min_area_px":1000000}`, true},
		{"model.min_area_px", `{"min_area_px":1000001}`, false},
		{"model.stitch", `{"stitch":"median"}`, false},
		{"model.stitch", `{"stitch":"mean"}`, true},
		{"model.false_alarms_per_100m", `{"false_alarms_per_100m":0}`, false},
		{"model.false_alarms_per_100m", `{"false_alarms_per_100m":100}`, true},
		{"model.false_alarms_per_100m", `{"false_alarms_per_100m":101}`, false},
		{"model.off_web.mode", `{"off_web":{"mode":"grey"}}`, false},
		{"model.off_web.mode", `{"off_web":{"mode":"bright"}}`, true},
		{"model.off_web.level", `{"off_web":{"level":-1}}`, false},
		{"model.off_web.level", `{"off_web":{"level":255}}`, true},
		{"model.off_web.level", `{"off_web":{"level":256}}`, false},
		{"model.off_web.min_band", `{"off_web":{"min_band":0}}`, false},
		{"model.off_web.min_band", `{"off_web":{"min_band":4096}}`, true},
		{"model.off_web.min_band", `{"off_web":{"min_band":5000}}`, false},
		{"model.off_web.min_band", `{"off_web":{"mode":"dark","min_band":5000}}`, false},
		{"model.off_web.guard", `{"off_web":{"guard":-1}}`, false},
		{"model.off_web.guard", `{"off_web":{"guard":64}}`, true},
		{"model.off_web.guard", `{"off_web":{"guard":65}}`, false},
	}
	for _, c := range cases {
		r, err := ParseRecipe("r.json", []byte(base+c.model+"}"))
		if c.ok {
			if err != nil {
				t.Errorf("%s: %s refused: %v", c.path, c.model, err)
				continue
			}
			if o := r.Model.inferOptions(); o.Validate() != nil {
				t.Errorf("%s: %s: the recipe accepts what infer.Options refuses: %v", c.path, c.model, o.Validate())
			}
			continue
		}
		if !errors.Is(err, ErrRecipe) || !strings.Contains(err.Error(), "r.json: "+c.path+" = ") || !strings.Contains(err.Error(), "must be") {
			t.Errorf("%s: %s: got %v, want ErrRecipe naming %s and its range", c.path, c.model, err, c.path)
		}
	}
	// The message the issue quotes.
	_, err := ParseRecipe("r.json", []byte(base+`{"off_web":{"min_band":5000}}}`))
	if want := "r.json: model.off_web.min_band = 5000: must be between 1 and 4096"; err == nil || !strings.HasSuffix(err.Error(), want) {
		t.Errorf("got %v, want ...%s", err, want)
	}
	// Every built-in recipe's model section is valid infer.Options.
	for _, n := range BuiltinRecipes() {
		r, err := LoadRecipe(n)
		if err != nil {
			t.Fatal(err)
		}
		if o := r.Model.inferOptions(); o.Validate() != nil {
			t.Errorf("built-in %s: %v", n, o.Validate())
		}
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
		{Measure{LengthMM: 6, WidthMM: 5, AreaMM2: 24, Polarity: "bright", PeakAbs: 60, MeanAbs: 48}, "hole", "critical", "mark"},
		{Measure{LengthMM: 3, WidthMM: 3, AreaMM2: 7, Polarity: "bright", PeakAbs: 60, MeanAbs: 48}, "knot", "minor", "pass"},
		{Measure{LengthMM: 2, WidthMM: 2, AreaMM2: 3, Polarity: "bright", PeakAbs: 80, MeanAbs: 48}, "gel", "minor", "pass"},
		{Measure{LengthMM: 40, WidthMM: 30, AreaMM2: 60, Polarity: "dark", PeakAbs: 60, MeanAbs: 48}, "scratch", "critical", "mark"},
		{Measure{LengthMM: 30, WidthMM: 25, AreaMM2: 500, Polarity: "dark", PeakAbs: 60}, "stain", "critical", "mark"},
		{Measure{LengthMM: 2, WidthMM: 2, AreaMM2: 3, Polarity: "dark", PeakAbs: 60}, "knot", "minor", "pass"},
		{Measure{LengthMM: 8, WidthMM: 4, AreaMM2: 25, Polarity: "dark", PeakAbs: 60}, "stain", "major", "review"},
	}
	for _, c := range cases {
		class, sev, dec := r.Classify(c.m)
		if class != c.class || sev != c.sev || dec != c.decision {
			t.Errorf("%+v: got %s/%s/%s, want %s/%s/%s", c.m, class, sev, dec, c.class, c.sev, c.decision)
		}
	}
}

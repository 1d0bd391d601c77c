package engine

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/webinspect/webinspect/internal/textcheck"
)

// A severity typo ("Critical") matched no decision rule, so holes were
// passed (issue 14 #8). Severities are a closed set and every severity a
// rule gives meets a decision.
func TestSeveritiesClosedAndDecided(t *testing.T) {
	const head = `{"name":"x","material":"fabric","classes":[{"name":"hole","polarity":"bright"},{"name":"other"}],`
	cases := []struct {
		name, tail string
		want       []string // nil: valid
	}{
		{"typo in severity", `"severity":[{"class":"hole","severity":"Critical"}],"decisions":[{"class":"*","severity":"critical","decision":"mark"}]}`,
			[]string{`severity[0].severity = "Critical"`, "minor, major, critical"}},
		{"typo in decision", `"severity":[{"class":"hole","severity":"critical"}],"decisions":[{"class":"*","severity":"crit","decision":"mark"}]}`,
			[]string{`decisions[0].severity = "crit"`}},
		{"severity without decision", `"severity":[{"class":"hole","severity":"critical"},{"class":"*","min_size_mm":5,"severity":"major"}],"decisions":[{"class":"*","severity":"critical","decision":"mark"}]}`,
			[]string{`severity[1]`, `severity "major"`, "no decision rule"}},
		{"decision only for one class", `"severity":[{"class":"*","min_size_mm":5,"severity":"major"}],"decisions":[{"class":"hole","severity":"major","decision":"mark"}]}`,
			[]string{`class "other" with severity "major"`}},
		{"star decision", `"severity":[{"class":"hole","severity":"critical"},{"class":"*","severity":"major"}],"decisions":[{"class":"*","severity":"*","decision":"review"}]}`, nil},
		{"each decided", `"severity":[{"class":"hole","severity":"critical"},{"class":"*","min_size_mm":5,"severity":"major"}],"decisions":[{"class":"*","severity":"critical","decision":"mark"},{"class":"*","severity":"major","decision":"pass"}]}`, nil},
		{"no severity rules", `"decisions":[]}`, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := parseUnchecked(t, head+c.tail)
			err := r.ValidateSeverities()
			if c.want == nil {
				if err != nil {
					t.Fatalf("valid recipe refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

// With the check passed, Classify never hands a rule-given severity to the
// silent default: every class and severity it gives has a decision rule.
func TestValidatedRecipeDecidesEverySeverity(t *testing.T) {
	for _, n := range BuiltinRecipes() {
		r, err := LoadRecipe(n)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.ValidateSeverities(); err != nil {
			t.Errorf("built-in recipe %s: %v", n, err)
		}
		if err := r.ValidateText(); err != nil {
			t.Errorf("built-in recipe %s: %v", n, err)
		}
		for _, pol := range []string{"bright", "dark", "mixed"} {
			for _, size := range []float64{0.5, 3, 8, 30, 200} {
				m := Measure{Polarity: pol, LengthMM: size, WidthMM: size / 2, AreaMM2: size * size / 2, PeakAbs: 60}
				class, sev, _ := r.Classify(m)
				if !slices.Contains(Severities, sev) {
					t.Errorf("%s: Classify(%+v) severity %q outside the closed set", n, m, sev)
				}
				if sev != DefaultSeverity && !r.hasDecision(class, sev) {
					t.Errorf("%s: Classify(%+v) = %s/%s without a decision rule", n, m, class, sev)
				}
			}
		}
	}
}

// Recipe text fields are bounded and refuse control and bidirectional
// formatting characters (issue 14 #9): a 100 MB name made every flush
// rewrite 100 MB of roll.json.
func TestRecipeTextFields(t *testing.T) {
	for _, c := range []struct {
		name, doc string
		want      error
		field     string
	}{
		{"long name", `{"name":"` + strings.Repeat("n", 1<<20) + `","material":"film","classes":[{"name":"a"}]}`, textcheck.ErrTooLong, "name"},
		{"NUL in name", `{"name":"a\u0000b","material":"film","classes":[{"name":"a"}]}`, textcheck.ErrControl, "name"},
		{"newline in name", `{"name":"a\nb","material":"film","classes":[{"name":"a"}]}`, textcheck.ErrControl, "name"},
		{"RLO in name", `{"name":"a\u202eb","material":"film","classes":[{"name":"a"}]}`, textcheck.ErrBidi, "name"},
		{"class name", `{"name":"x","material":"film","classes":[{"name":"ho\u2066le"}]}`, textcheck.ErrBidi, "classes[0].name"},
		{"lane name", `{"name":"x","material":"film","classes":[{"name":"a"}],"lanes":[{"name":"L\u0007","cd_start_mm":0,"cd_end_mm":10}]}`, textcheck.ErrControl, "lanes[0].name"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := parseUnchecked(t, c.doc).ValidateText()
			if !errors.Is(err, c.want) || !strings.HasPrefix(err.Error(), c.field) {
				t.Errorf("ValidateText = %.200v, want %v naming %s", err, c.want, c.field)
			}
		})
	}
	if err := parseUnchecked(t, `{"name":"Gewebe — Köper 2/1","material":"fabric","classes":[{"name":"Loch"}]}`).ValidateText(); err != nil {
		t.Errorf("good names refused: %v", err)
	}
}

// parseUnchecked parses a recipe through ParseRecipe's decoder, ignoring
// the validation these checks are to be part of (so the test does not
// depend on whether Validate already calls them).
func parseUnchecked(t *testing.T, doc string) *Recipe {
	t.Helper()
	r, err := ParseRecipe("r.json", []byte(doc))
	if err == nil {
		return r
	}
	if strings.Contains(err.Error(), "invalid JSON") || strings.Contains(err.Error(), "unknown field") {
		t.Fatalf("recipe does not parse: %v", err)
	}
	r = defaultRecipeValues()
	if err := json.Unmarshal([]byte(doc), r); err != nil {
		t.Fatal(err)
	}
	return r
}

package genicam

import (
	"errors"
	"math"
	"strings"
	"testing"
)

// testVars are the variables formula tests may use.
var testVars = map[string]float64{"A": 7, "B": -3, "Width": 4096, "ZERO": 0, "x.y": 5}

func knownTestVar(s string) bool { _, ok := testVars[s]; return ok }

func evalTest(t *testing.T, src string) (int64, float64, error) {
	t.Helper()
	f, err := parseFormula(src, knownTestVar)
	if err != nil {
		return 0, 0, err
	}
	iv, ierr := f.evalInt(func(s int) (int64, error) { return int64(testVars[f.vars[s]]), nil })
	fv, ferr := f.evalFloat(func(s int) (float64, error) { return testVars[f.vars[s]], nil })
	if ierr != nil {
		return 0, fv, ierr
	}
	return iv, fv, ferr
}

func TestFormulaValues(t *testing.T) {
	for _, tc := range []struct {
		src string
		i   int64
		f   float64
	}{
		{"1+2*3", 7, 7},
		{"(1+2)*3", 9, 9},
		{"7/2", 3, 3.5},
		{"-7/2", -3, -3.5},
		{"7%3", 1, 1},
		{"2**10", 1024, 1024},
		{"2**3**2", 512, 512},
		{"-2**2", -4, -4},
		{"2**-1", 0, 0.5},
		{"0x10 + 0XfF", 271, 271},
		{"1<<4 | 1", 17, 17},
		{"0xF0 >> 4 & 0x3", 3, 3},
		{"6 ^ 3", 5, 5},
		{"~0", -1, -1},
		{"!0 + !5", 1, 1},
		{"A = 7", 1, 1},
		{"A <> 7", 0, 0},
		{"A < B || B < A", 1, 1},
		{"A > 0 && B > 0", 0, 0},
		{"3 <= 3 && 3 >= 4", 0, 0},
		{"A > 0 ? Width : 0", 4096, 4096},
		{"ZERO ? 1 : ZERO ? 2 : 3", 3, 3},
		{"ZERO = 0 ? 0 : A / ZERO", 0, 0}, // the untaken branch is not evaluated
		{"ZERO && A / ZERO", 0, 0},
		{"A || A / ZERO", 1, 1},
		{"SGN(B) + SGN(A) + SGN(ZERO)", 0, 0},
		{"NEG(A)", -7, -7},
		{"ABS(B)", 3, 3},
		{"SQRT(49)", 7, 7},
		{"SQRT(50)", 7, math.Sqrt(50)},
		{"TRUNC(7.9)", 7, 7},
		{"FLOOR(-0.5)", 0, -1},
		{"CEIL(0.2)", 0, 1},
		{"ROUND(2.567, 2)", 2, 2.57},
		{"round(2.5)", 2, 3},
		{"PI", 3, math.Pi},
		{"E()", 2, math.E},
		{"Width * 12 / 8", 6144, 6144},
		{"x.y + 1", 6, 6},
		{"1.5e3", 1500, 1500},
		{".5 * 4", 0, 2},
		{"1 << 64", 0, 0},
		{"-8 >> 70", -1, -1},
		{"1 - - 1", 2, 2},
	} {
		i, f, err := evalTest(t, tc.src)
		if err != nil {
			t.Errorf("%q: %v", tc.src, err)
			continue
		}
		if i != tc.i || math.Abs(f-tc.f) > 1e-12 {
			t.Errorf("%q = %d (int), %v (float); want %d, %v", tc.src, i, f, tc.i, tc.f)
		}
	}
}

func TestFormulaErrors(t *testing.T) {
	for _, tc := range []struct{ src, msg string }{
		{"", "unexpected end"},
		{"1 +", "unexpected end"},
		{"(1", "missing ')'"},
		{"1)", `unexpected ")"`},
		{"A ? 1", "missing ':'"},
		{"FOO + 1", `unknown variable "FOO"`},
		{"FOO(1)", `unknown function "FOO"`},
		{"ROUND()", "ROUND takes one or two arguments"},
		{"ABS(1,2)", "ABS takes one argument"},
		{"ABS(1 2)", "missing ','"},
		{"1 $ 2", "unexpected character"},
		{"12abc", "bad number"},
		{"0xZZ", "bad hexadecimal"},
		{strings.Repeat("(", 200) + "1" + strings.Repeat(")", 200), "nesting deeper"},
		{strings.Repeat("-", 300) + "1", "nesting deeper"},
	} {
		_, err := parseFormula(tc.src, knownTestVar)
		if !errors.Is(err, ErrFormula) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%q: error %v, want ErrFormula containing %q", tc.src, err, tc.msg)
		}
	}
	if _, err := parseFormula(strings.Repeat("1+", maxFormulaLen), knownTestVar); !errors.Is(err, ErrTooLarge) {
		t.Errorf("huge formula: %v, want ErrTooLarge", err)
	}
	for _, src := range []string{"A / ZERO", "A % ZERO", "SQRT(B)"} {
		f, err := parseFormula(src, knownTestVar)
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.evalInt(func(s int) (int64, error) { return int64(testVars[f.vars[s]]), nil })
		if !errors.Is(err, ErrFormula) {
			t.Errorf("%q in integer mode: %v, want ErrFormula", src, err)
		}
	}
	// Float division by zero follows IEEE.
	f, _ := parseFormula("A / ZERO", knownTestVar)
	if v, err := f.evalFloat(func(s int) (float64, error) { return testVars[f.vars[s]], nil }); err != nil || !math.IsInf(v, 1) {
		t.Errorf("7.0/0 = %v, %v; want +Inf", v, err)
	}
	// Variable errors pass through.
	boom := errors.New("boom")
	f, _ = parseFormula("1 + A", knownTestVar)
	if _, err := f.evalInt(func(int) (int64, error) { return 0, boom }); !errors.Is(err, boom) {
		t.Errorf("variable error: %v", err)
	}
}

package genicam

import (
	"os"
	"testing"
)

// nullPort reads zeros everywhere and discards writes, in constant memory.
type nullPort struct{}

func (nullPort) ReadMem(addr uint64, p []byte) error {
	clear(p)
	return nil
}

func (nullPort) WriteMem(addr uint64, p []byte) error { return nil }

// FuzzParse parses arbitrary descriptions and evaluates, lists and writes
// every node of those that parse. Nothing may panic or hang. Seeds are in
// testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	if b, err := os.ReadFile("testdata/linescan.xml"); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 64<<10 {
			return
		}
		m, err := Parse(data)
		if err != nil {
			return
		}
		m.Connect(nullPort{})
		m.Features()
		m.Problems()
		for _, n := range m.order {
			_, _ = m.Value(n.name)
			_, _ = m.Access(n.name)
			_, _, _ = m.FloatRange(n.name)
			_ = m.SetValue(n.name, "1")
		}
	})
}

// FuzzFormula parses arbitrary formulas over the variables A, B and C and
// evaluates those that parse in both integer and float semantics. Seeds
// are in testdata/fuzz/FuzzFormula.
func FuzzFormula(f *testing.F) {
	for _, s := range []string{"A + B * C", "(A >> 2) & 0xFF ? SQRT(B) : ROUND(C, 2)", "A ** B ** C", "-A % B / C", "~A | B ^ C << 70"} {
		f.Add(s, int64(3), int64(-2), int64(0))
	}
	known := func(s string) bool { return s == "A" || s == "B" || s == "C" || s == "A.x" }
	f.Fuzz(func(t *testing.T, src string, a, b, c int64) {
		fo, err := parseFormula(src, known)
		if err != nil {
			return
		}
		vals := []int64{a, b, c}
		get := func(slot int) int64 {
			switch fo.vars[slot] {
			case "A":
				return vals[0]
			case "B":
				return vals[1]
			}
			return vals[2]
		}
		i1, e1 := fo.evalInt(func(s int) (int64, error) { return get(s), nil })
		i2, e2 := fo.evalInt(func(s int) (int64, error) { return get(s), nil })
		if i1 != i2 || (e1 == nil) != (e2 == nil) {
			t.Fatalf("%q not deterministic: %d %v / %d %v", src, i1, e1, i2, e2)
		}
		_, _ = fo.evalFloat(func(s int) (float64, error) { return float64(get(s)), nil })
	})
}

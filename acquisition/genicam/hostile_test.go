package genicam

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func doc(body string) []byte {
	return []byte(`<?xml version="1.0"?><RegisterDescription ModelName="H" VendorName="T" xmlns="http://www.genicam.org/GenApi/Version_1_1">` +
		body + `<Port Name="Device"/></RegisterDescription>`)
}

func TestParseRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		xml  []byte
		want error
		text string
	}{
		{"not xml", []byte("hello"), ErrMalformed, "no XML element"},
		{"empty", nil, ErrMalformed, "no XML element"},
		{"wrong root", []byte("<Foo/>"), ErrMalformed, "<Foo>"},
		{"broken", []byte("<RegisterDescription><Integer Name='a'>"), ErrMalformed, "XML"},
		{"duplicate", doc(`<Integer Name="A"><Value>1</Value></Integer><Float Name="A"><Value>1</Value></Float>`), ErrMalformed, `two nodes named "A"`},
		{"no name", doc(`<Integer><Value>1</Value></Integer>`), ErrMalformed, "without a Name"},
		{"bad number", doc(`<Integer Name="A"><Value>12abc</Value></Integer>`), ErrMalformed, "not a number"},
		{"bad access", doc(`<IntReg Name="A"><AccessMode>XX</AccessMode></IntReg>`), ErrMalformed, "RO, WO, RW"},
		{"bad bit", doc(`<MaskedIntReg Name="A"><Bit>99</Bit></MaskedIntReg>`), ErrMalformed, "bit number"},
		{"deep", doc(strings.Repeat("<Group>", 100) + strings.Repeat("</Group>", 100)), ErrTooLarge, "deeper"},
		{"duplicate entry", doc(`<Enumeration Name="E"><EnumEntry Name="X"><Value>1</Value></EnumEntry><EnumEntry Name="X"><Value>2</Value></EnumEntry><Value>1</Value></Enumeration>`), ErrMalformed, "two entries"},
	} {
		_, err := Parse(tc.xml)
		if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.text) {
			t.Errorf("%s: %v, want %v containing %q", tc.name, err, tc.want, tc.text)
		}
	}
}

func TestParseEncodings(t *testing.T) {
	latin := []byte("<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><RegisterDescription ModelName=\"Cam\xe9ra\"><String Name=\"S\"><Value>\xb5s</Value></String></RegisterDescription>")
	m, err := Parse(latin)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := m.String("S"); err != nil || v != "µs" || m.ModelName != "Caméra" {
		t.Errorf("latin-1: %q %q %v", m.ModelName, v, err)
	}
	if _, err := Parse(append([]byte("\xef\xbb\xbf"), doc("")...)); err != nil {
		t.Errorf("byte order mark: %v", err)
	}
	if _, err := Parse([]byte(`<?xml version="1.0" encoding="EBCDIC"?><RegisterDescription/>`)); !errors.Is(err, ErrMalformed) {
		t.Errorf("EBCDIC: %v", err)
	}
}

// hostile parses a description that must parse, connects a zero port and
// returns the map.
func hostile(t *testing.T, body string) *NodeMap {
	t.Helper()
	m, err := Parse(doc(body))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	m.Connect(&zeroPort{mem: map[uint64]byte{}})
	return m
}

func TestHostileEvaluation(t *testing.T) {
	for _, tc := range []struct {
		name, body, feature string
		want                error
	}{
		{"pValue cycle", `<Integer Name="A"><pValue>B</pValue></Integer><Integer Name="B"><pValue>A</pValue></Integer>`, "A", ErrRecursion},
		{"self", `<Integer Name="A"><pValue>A</pValue></Integer>`, "A", ErrRecursion},
		{"formula cycle", `<IntSwissKnife Name="A"><pVariable Name="X">B</pVariable><Formula>X+1</Formula></IntSwissKnife>
			<IntSwissKnife Name="B"><pVariable Name="Y">A</pVariable><Formula>Y+1</Formula></IntSwissKnife>`, "A", ErrRecursion},
		{"expression cycle", `<IntSwissKnife Name="A"><Expression Name="P">Q+1</Expression><Expression Name="Q">P+1</Expression><Formula>P</Formula></IntSwissKnife>`, "A", ErrRecursion},
		{"address cycle", `<IntReg Name="R"><pAddress>R</pAddress><Length>4</Length><pPort>Device</pPort></IntReg>`, "R", ErrRecursion},
		{"pMax cycle", `<Integer Name="A"><Value>1</Value><pMax>A</pMax></Integer>`, "A", nil}, // reads are fine
		{"available is own value", `<Integer Name="A"><Value>1</Value><pIsAvailable>A</pIsAvailable></Integer>`, "A", nil},
		{"converter cycle", `<Converter Name="C"><FormulaTo>FROM</FormulaTo><FormulaFrom>TO</FormulaFrom><pValue>C</pValue></Converter>`, "C", ErrRecursion},
		{"huge length", `<StringReg Name="S"><Address>0</Address><Length>0x7fffffffffffffff</Length><pPort>Device</pPort></StringReg>`, "S", ErrTooLarge},
		{"negative length", `<StringReg Name="S"><Address>0</Address><Length>-4</Length><pPort>Device</pPort></StringReg>`, "S", ErrMalformed},
		{"long IntReg", `<IntReg Name="R"><Address>0</Address><Length>16</Length><pPort>Device</pPort></IntReg>`, "R", ErrMalformed},
		{"odd FloatReg", `<FloatReg Name="R"><Address>0</Address><Length>2</Length><pPort>Device</pPort></FloatReg>`, "R", ErrMalformed},
		{"dangling", `<Integer Name="A"><pValue>Nowhere</pValue></Integer>`, "A", ErrMalformed},
		{"unsupported", `<ConfRom Name="CR"/><Integer Name="A"><pValue>CR</pValue></Integer>`, "A", ErrMalformed},
		{"bad formula", `<IntSwissKnife Name="A"><Formula>1 +* 2</Formula></IntSwissKnife>`, "A", ErrFormula},
		{"unknown var", `<IntSwissKnife Name="A"><Formula>Q + 2</Formula></IntSwissKnife>`, "A", ErrFormula},
		{"no formula", `<IntSwissKnife Name="A"></IntSwissKnife>`, "A", ErrMalformed},
		{"div zero", `<IntSwissKnife Name="A"><Formula>1/0</Formula></IntSwissKnife>`, "A", ErrFormula},
		{"no value", `<Integer Name="A"></Integer>`, "A", ErrMalformed},
		{"masked outside", `<MaskedIntReg Name="R"><Address>0</Address><Length>1</Length><LSB>0</LSB><MSB>12</MSB><pPort>Device</pPort></MaskedIntReg>`, "R", ErrMalformed},
		{"no port", `<IntReg Name="R"><Address>0</Address><Length>4</Length><pPort>Nope</pPort></IntReg>`, "R", ErrMalformed},
	} {
		m := hostile(t, tc.body)
		_, err := m.Value(tc.feature)
		if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}

// TestHostileExponential is a DAG where every node reads the one below
// twice: 2^60 paths. The step budget stops it.
func TestHostileExponential(t *testing.T) {
	var b strings.Builder
	b.WriteString(`<Integer Name="N0"><Value>1</Value></Integer>`)
	for i := 1; i <= 60; i++ {
		fmt.Fprintf(&b, `<IntSwissKnife Name="N%d"><pVariable Name="A">N%d</pVariable><pVariable Name="B">N%[2]d</pVariable><Expression Name="C">A+B</Expression><Formula>C+C</Formula></IntSwissKnife>`, i, i-1)
	}
	// The same through pValue chains of Integers with two dependencies each.
	for i := 1; i <= 60; i++ {
		fmt.Fprintf(&b, `<Integer Name="M%d"><pValue>M%d</pValue><pMin>M%[2]d</pMin></Integer>`, i, i-1)
	}
	b.WriteString(`<Integer Name="M0"><Value>1</Value></Integer>`)
	m := hostile(t, b.String())
	start := time.Now()
	if _, err := m.Int("N60"); !errors.Is(err, ErrTooLarge) && !errors.Is(err, ErrRecursion) {
		t.Errorf("N60: %v", err)
	}
	if v, err := m.Int("N3"); err != nil || v != 64 {
		t.Errorf("N3 = %d, %v; want 64", v, err)
	}
	if err := m.SetInt("M60", 1); err != nil && !errors.Is(err, ErrTooLarge) && !errors.Is(err, ErrRecursion) {
		t.Errorf("M60: %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %v", d)
	}
}

// TestHostileDepth is a chain longer than the evaluation depth limit.
func TestHostileDepth(t *testing.T) {
	var b strings.Builder
	for i := range 10000 {
		fmt.Fprintf(&b, `<Integer Name="A%d"><pValue>A%d</pValue></Integer>`, i, i+1)
	}
	b.WriteString(`<Integer Name="A10000"><Value>5</Value></Integer>`)
	m := hostile(t, b.String())
	if _, err := m.Int("A0"); !errors.Is(err, ErrRecursion) {
		t.Errorf("A0: %v", err)
	}
	if v, err := m.Int("A9990"); err != nil || v != 5 {
		t.Errorf("A9990 = %d, %v", v, err)
	}
	if len(m.Problems()) != 0 {
		t.Errorf("problems: %v", m.Problems())
	}
}

func TestProblems(t *testing.T) {
	m := hostile(t, `<ConfRom Name="CR"/><Integer Name="A"><pValue>Nowhere</pValue><pIsAvailable>CR</pIsAvailable></Integer>
		<IntSwissKnife Name="S"><Formula>(</Formula></IntSwissKnife>`)
	probs := m.Problems()
	if len(probs) != 3 {
		t.Fatalf("problems %v, want 3", probs)
	}
	text := fmt.Sprint(probs)
	for _, want := range []string{"Nowhere, which does not exist", "CR, a <ConfRom>", "unexpected end"} {
		if !strings.Contains(text, want) {
			t.Errorf("problems %q lack %q", text, want)
		}
	}
}

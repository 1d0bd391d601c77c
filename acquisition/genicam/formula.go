package genicam

import (
	"fmt"
	"strconv"
	"strings"
)

// Formula limits.
const (
	maxFormulaLen   = 64 << 10 // bytes of formula text
	maxFormulaDepth = 128      // nesting of parentheses and operators
)

// opcode is one operation of a parsed formula.
type opcode uint8

const (
	opConst opcode = iota
	opVar
	opNeg
	opPlus
	opBitNot
	opNot
	opAdd
	opSub
	opMul
	opDiv
	opMod
	opPow
	opShl
	opShr
	opBitAnd
	opBitOr
	opBitXor
	opEq
	opNe
	opLt
	opGt
	opLe
	opGe
	opAnd
	opOr
	opCond
	opFunc
)

// expr is one node of a parsed formula.
type expr struct {
	op   opcode
	a, b *expr   // operands; b is nil for unary operators
	c    *expr   // else branch of ?:
	args []*expr // function arguments
	fn   string  // function name, upper case
	i    int64   // constant as integer
	f    float64 // constant as float
	slot int     // variable index into formula.vars
}

// formula is a parsed GenICam formula (SwissKnife Formula, Converter
// FormulaTo/FormulaFrom, Expression). It is immutable and evaluated many
// times.
type formula struct {
	src  string
	root *expr
	vars []string // identifiers, in order of first use
	// hasFloat is set when the formula has a fractional literal (0.1,
	// 1e-3); integer nodes then evaluate it in floating point.
	hasFloat bool
	// active is set while the formula is evaluated as a named Expression
	// (to detect an expression that uses itself); guarded by NodeMap.mu.
	active bool
}

// builtin functions and how many arguments each takes (-1: one or two).
var formulaFuncs = map[string]int{
	"SGN": 1, "NEG": 1, "ABS": 1, "SQRT": 1, "TRUNC": 1, "FLOOR": 1, "CEIL": 1,
	"ROUND": -1, "E": 0, "PI": 0,
}

// parseFormula parses src. known reports whether an identifier names a
// variable; identifiers that are not variables must be builtin constants
// (E, PI).
func parseFormula(src string, known func(string) bool) (*formula, error) {
	if len(src) > maxFormulaLen {
		return nil, fmt.Errorf("%w: formula of %d bytes exceeds %d", ErrTooLarge, len(src), maxFormulaLen)
	}
	toks, err := lexFormula(src)
	if err != nil {
		return nil, fmt.Errorf("%w: %v in %q", ErrFormula, err, clip(src))
	}
	p := &formulaParser{src: src, toks: toks, known: known, f: &formula{src: src}}
	root, err := p.ternary()
	if err == nil && p.pos < len(p.toks) {
		err = p.errAt("unexpected %q", p.toks[p.pos].text)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v in %q", ErrFormula, err, clip(src))
	}
	p.f.root = root
	return p.f, nil
}

func clip(s string) string {
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}

// token is one lexeme of a formula.
type token struct {
	kind byte // 'n' number, 'i' identifier, 'o' operator
	text string
	pos  int
	i    int64
	f    float64
	isF  bool // number written with a fraction or exponent
}

var formulaOps2 = []string{"**", "<<", ">>", "<=", ">=", "<>", "&&", "||"}

func lexFormula(s string) ([]token, error) {
	var toks []token
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			i++
		case isDigit(c) || (c == '.' && i+1 < len(s) && isDigit(s[i+1])):
			t, n, err := lexNumber(s, i)
			if err != nil {
				return nil, err
			}
			toks = append(toks, t)
			i = n
		case isIdentStart(c):
			j := i + 1
			for j < len(s) && isIdentChar(s[j]) {
				j++
			}
			toks = append(toks, token{kind: 'i', text: s[i:j], pos: i})
			i = j
		default:
			op := ""
			for _, o := range formulaOps2 {
				if strings.HasPrefix(s[i:], o) {
					op = o
					break
				}
			}
			if op == "" && strings.IndexByte("+-*/%&|^~!=<>?:(),", c) >= 0 {
				op = s[i : i+1]
			}
			if op == "" {
				return nil, fmt.Errorf("unexpected character %q at offset %d", c, i)
			}
			toks = append(toks, token{kind: 'o', text: op, pos: i})
			i += len(op)
		}
	}
	return toks, nil
}

func isDigit(c byte) bool      { return c >= '0' && c <= '9' }
func isIdentStart(c byte) bool { return c == '_' || (c|0x20 >= 'a' && c|0x20 <= 'z') }
func isIdentChar(c byte) bool  { return isIdentStart(c) || isDigit(c) || c == '.' }

func lexNumber(s string, i int) (token, int, error) {
	j := i
	if strings.HasPrefix(s[i:], "0x") || strings.HasPrefix(s[i:], "0X") {
		j = i + 2
		for j < len(s) && strings.IndexByte("0123456789abcdefABCDEF", s[j]) >= 0 {
			j++
		}
		u, err := strconv.ParseUint(s[i+2:j], 16, 64)
		if err != nil {
			return token{}, 0, fmt.Errorf("bad hexadecimal number %q at offset %d", s[i:j], i)
		}
		return token{kind: 'n', text: s[i:j], pos: i, i: int64(u), f: float64(u)}, j, nil
	}
	isF := false
	for j < len(s) && isDigit(s[j]) {
		j++
	}
	if j < len(s) && s[j] == '.' {
		isF = true
		j++
		for j < len(s) && isDigit(s[j]) {
			j++
		}
	}
	if j < len(s) && (s[j] == 'e' || s[j] == 'E') {
		k := j + 1
		if k < len(s) && (s[k] == '+' || s[k] == '-') {
			k++
		}
		if k < len(s) && isDigit(s[k]) {
			isF = true
			for k < len(s) && isDigit(s[k]) {
				k++
			}
			j = k
		}
	}
	if j < len(s) && isIdentChar(s[j]) {
		return token{}, 0, fmt.Errorf("bad number %q at offset %d", s[i:j+1], i)
	}
	f, err := strconv.ParseFloat(s[i:j], 64)
	if err != nil && !isF {
		return token{}, 0, fmt.Errorf("bad number %q at offset %d", s[i:j], i)
	}
	t := token{kind: 'n', text: s[i:j], pos: i, f: f, isF: isF}
	if v, err := strconv.ParseInt(s[i:j], 10, 64); err == nil {
		t.i = v
	} else {
		t.i = saturate(f)
	}
	return t, j, nil
}

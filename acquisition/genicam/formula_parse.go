package genicam

import (
	"fmt"
	"strings"
)

// formulaParser is a recursive-descent parser over the tokens of one
// formula. Precedence, lowest first:
//
//	?:  ||  &&  |  ^  &  = <>  < > <= >=  << >>  + -  * / %  **  unary - + ~ !
type formulaParser struct {
	src   string
	toks  []token
	pos   int
	depth int
	known func(string) bool
	f     *formula
}

func (p *formulaParser) errAt(format string, args ...any) error {
	off := len(p.src)
	if p.pos < len(p.toks) {
		off = p.toks[p.pos].pos
	}
	return fmt.Errorf(format+" at offset %d", append(args, off)...)
}

func (p *formulaParser) peekOp(ops ...string) string {
	if p.pos >= len(p.toks) || p.toks[p.pos].kind != 'o' {
		return ""
	}
	for _, o := range ops {
		if p.toks[p.pos].text == o {
			return o
		}
	}
	return ""
}

func (p *formulaParser) enter() error {
	p.depth++
	if p.depth > maxFormulaDepth {
		return p.errAt("nesting deeper than %d", maxFormulaDepth)
	}
	return nil
}

func (p *formulaParser) ternary() (*expr, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer func() { p.depth-- }()
	cond, err := p.binary(0)
	if err != nil || p.peekOp("?") == "" {
		return cond, err
	}
	p.pos++
	then, err := p.ternary()
	if err != nil {
		return nil, err
	}
	if p.peekOp(":") == "" {
		return nil, p.errAt("missing ':' of '?'")
	}
	p.pos++
	els, err := p.ternary()
	if err != nil {
		return nil, err
	}
	return &expr{op: opCond, a: cond, b: then, c: els}, nil
}

// binaryLevels lists the left-associative binary operators by precedence,
// lowest first.
var binaryLevels = [][]string{
	{"||"}, {"&&"}, {"|"}, {"^"}, {"&"}, {"=", "<>"}, {"<", ">", "<=", ">="},
	{"<<", ">>"}, {"+", "-"}, {"*", "/", "%"},
}

var binaryOps = map[string]opcode{
	"||": opOr, "&&": opAnd, "|": opBitOr, "^": opBitXor, "&": opBitAnd,
	"=": opEq, "<>": opNe, "<": opLt, ">": opGt, "<=": opLe, ">=": opGe,
	"<<": opShl, ">>": opShr, "+": opAdd, "-": opSub, "*": opMul, "/": opDiv, "%": opMod,
}

func (p *formulaParser) binary(level int) (*expr, error) {
	if level == len(binaryLevels) {
		return p.unary()
	}
	left, err := p.binary(level + 1)
	if err != nil {
		return nil, err
	}
	for {
		op := p.peekOp(binaryLevels[level]...)
		if op == "" {
			return left, nil
		}
		p.pos++
		right, err := p.binary(level + 1)
		if err != nil {
			return nil, err
		}
		left = &expr{op: binaryOps[op], a: left, b: right}
	}
}

func (p *formulaParser) unary() (*expr, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer func() { p.depth-- }()
	if op := p.peekOp("-", "+", "~", "!"); op != "" {
		p.pos++
		a, err := p.unary()
		if err != nil {
			return nil, err
		}
		code := map[string]opcode{"-": opNeg, "+": opPlus, "~": opBitNot, "!": opNot}[op]
		return &expr{op: code, a: a}, nil
	}
	base, err := p.primary()
	if err != nil || p.peekOp("**") == "" {
		return base, err
	}
	p.pos++
	exp, err := p.unary() // right-associative; 2**-1 allowed
	if err != nil {
		return nil, err
	}
	return &expr{op: opPow, a: base, b: exp}, nil
}

func (p *formulaParser) primary() (*expr, error) {
	if p.pos >= len(p.toks) {
		return nil, p.errAt("unexpected end")
	}
	t := p.toks[p.pos]
	switch {
	case t.kind == 'n':
		p.pos++
		p.f.hasFloat = p.f.hasFloat || t.isF
		return &expr{op: opConst, i: t.i, f: t.f}, nil
	case t.kind == 'o' && t.text == "(":
		p.pos++
		e, err := p.ternary()
		if err != nil {
			return nil, err
		}
		if p.peekOp(")") == "" {
			return nil, p.errAt("missing ')'")
		}
		p.pos++
		return e, nil
	case t.kind == 'i':
		p.pos++
		return p.ident(t)
	}
	return nil, p.errAt("unexpected %q", t.text)
}

func (p *formulaParser) ident(t token) (*expr, error) {
	call := p.peekOp("(") != ""
	if !call && p.known(t.text) {
		return &expr{op: opVar, slot: p.slot(t.text)}, nil
	}
	up := strings.ToUpper(t.text)
	nargs, isFunc := formulaFuncs[up]
	if !isFunc {
		if call {
			return nil, fmt.Errorf("unknown function %q at offset %d", t.text, t.pos)
		}
		return nil, fmt.Errorf("unknown variable %q at offset %d", t.text, t.pos)
	}
	e := &expr{op: opFunc, fn: up}
	if call {
		p.pos++
		for p.peekOp(")") == "" {
			if len(e.args) > 0 {
				if p.peekOp(",") == "" {
					return nil, p.errAt("missing ',' or ')' in call of %s", up)
				}
				p.pos++
			}
			a, err := p.ternary()
			if err != nil {
				return nil, err
			}
			e.args = append(e.args, a)
		}
		p.pos++
	}
	if n := len(e.args); (nargs >= 0 && n != nargs) || (nargs < 0 && (n < 1 || n > 2)) {
		return nil, fmt.Errorf("%s takes %s, got %d at offset %d", up, argCount(nargs), n, t.pos)
	}
	return e, nil
}

func argCount(n int) string {
	switch n {
	case -1:
		return "one or two arguments"
	case 0:
		return "no arguments"
	case 1:
		return "one argument"
	}
	return fmt.Sprint(n, " arguments")
}

func (p *formulaParser) slot(name string) int {
	for i, v := range p.f.vars {
		if v == name {
			return i
		}
	}
	p.f.vars = append(p.f.vars, name)
	return len(p.f.vars) - 1
}

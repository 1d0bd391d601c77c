package genicam

import (
	"math"
	"strings"
)

// formulaEnv resolves the variables of one evaluation of a node's formula.
// Each variable is evaluated at most once per evaluation.
type formulaEnv struct {
	m       *NodeMap
	n       *node
	f       *formula
	to      float64 // TO (Converter FormulaFrom) or FROM (FormulaTo)
	intMode bool
	ints    []int64
	floats  []float64
	done    []bool
}

func (m *NodeMap) newEnv(n *node, f *formula, intMode bool, special float64) *formulaEnv {
	k := len(f.vars)
	return &formulaEnv{m: m, n: n, f: f, to: special, intMode: intMode,
		ints: make([]int64, k), floats: make([]float64, k), done: make([]bool, k)}
}

func (e *formulaEnv) value(slot int) error {
	if e.done[slot] {
		return nil
	}
	name := e.f.vars[slot]
	var err error
	if name == "TO" || name == "FROM" {
		if e.n.kind == kindConverter || e.n.kind == kindIntConverter {
			e.floats[slot], e.ints[slot] = e.to, saturate(math.Round(e.to))
			e.done[slot] = true
			return nil
		}
	}
	v, entry := e.lookup(name)
	switch {
	case v == nil:
		err = errf(e.n.name, ErrFormula, "unknown variable %s", name)
	case entry != "":
		err = e.entryValue(slot, v, entry)
	case v.expr != nil:
		err = e.expression(slot, v)
	case e.intMode:
		e.ints[slot], err = e.m.refInt(e.n, &v.ref, "pVariable "+v.name)
	default:
		e.floats[slot], err = e.m.refFloat(e.n, &v.ref, "pVariable "+v.name)
	}
	if err != nil {
		return err
	}
	if e.intMode {
		e.floats[slot] = float64(e.ints[slot])
	} else {
		e.ints[slot] = saturate(e.floats[slot])
	}
	e.done[slot] = true
	return nil
}

// lookup finds the variable called name, or for "VAR.Entry" the
// enumeration variable VAR and the entry name.
func (e *formulaEnv) lookup(name string) (*variable, string) {
	vars := e.n.vars
	for i := range vars {
		if vars[i].name == name {
			return &vars[i], ""
		}
	}
	for i := range vars {
		if rest, ok := strings.CutPrefix(name, vars[i].name+"."); ok {
			return &vars[i], rest
		}
	}
	return nil, ""
}

// entryValue resolves VAR.Entry to the numeric value of an entry of the
// enumeration VAR refers to.
func (e *formulaEnv) entryValue(slot int, v *variable, entry string) error {
	en := v.ref.node
	if en == nil || en.kind != kindEnumeration {
		return errf(e.n.name, ErrFormula, "%s.%s: %s is not an enumeration", v.name, entry, v.name)
	}
	x := en.entry(entry)
	if x == nil {
		return errf(e.n.name, ErrFormula, "%s.%s: no such entry of %s", v.name, entry, en.name)
	}
	e.ints[slot], e.floats[slot] = x.entryValue, float64(x.entryValue)
	return nil
}

// expression evaluates a named <Expression> of the node.
func (e *formulaEnv) expression(slot int, v *variable) error {
	if v.expr.active {
		return errf(e.n.name, ErrRecursion, "expression %s depends on itself", v.name)
	}
	if e.m.depth >= maxDepth {
		return errf(e.n.name, ErrRecursion, "expressions nested deeper than %d", maxDepth)
	}
	v.expr.active = true
	e.m.depth++
	defer func() { v.expr.active = false; e.m.depth-- }()
	var err error
	if e.intMode {
		e.ints[slot], err = e.m.formulaInt(e.n, v.expr, e.to)
	} else {
		e.floats[slot], err = e.m.formulaFloat(e.n, v.expr, e.to)
	}
	return err
}

func (e *formulaEnv) getInt(slot int) (int64, error) {
	err := e.value(slot)
	return e.ints[slot], err
}

func (e *formulaEnv) getFloat(slot int) (float64, error) {
	err := e.value(slot)
	return e.floats[slot], err
}

// formulaInt evaluates f for n with integer semantics. A formula written
// with a fractional literal (0.1 * TO) is evaluated in floating point and
// truncated towards zero, as Aravis does, rather than reading 0.1 as 0.
func (m *NodeMap) formulaInt(n *node, f *formula, special float64) (int64, error) {
	if f.hasFloat {
		v, err := m.formulaFloat(n, f, special)
		if err != nil {
			return 0, err
		}
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return 0, errf(n.name, ErrFormula, "%v is no integer (formula %q)", v, clip(f.src))
		}
		return saturate(v), nil
	}
	env := m.newEnv(n, f, true, special)
	v, err := f.evalInt(env.getInt)
	return v, wrapFormula(n, err)
}

// formulaFloat evaluates f for n with floating-point semantics.
func (m *NodeMap) formulaFloat(n *node, f *formula, special float64) (float64, error) {
	env := m.newEnv(n, f, false, special)
	v, err := f.evalFloat(env.getFloat)
	return v, wrapFormula(n, err)
}

func wrapFormula(n *node, err error) error {
	if err != nil {
		return errf(n.name, err, "")
	}
	return nil
}

func (m *NodeMap) swissInt(n *node) (int64, error) {
	if n.formulaErr != nil {
		return 0, n.formulaErr
	}
	if n.kind == kindSwissKnife {
		f, err := m.swissFloat(n)
		if err != nil {
			return 0, err
		}
		return floatToInt(n, f)
	}
	return m.formulaInt(n, n.formula, 0)
}

func (m *NodeMap) swissFloat(n *node) (float64, error) {
	if n.formulaErr != nil {
		return 0, n.formulaErr
	}
	if n.kind == kindIntSwissKnife {
		v, err := m.formulaInt(n, n.formula, 0)
		return float64(v), err
	}
	return m.formulaFloat(n, n.formula, 0)
}

// convFrom reads a converter: FormulaFrom with TO = the pValue's value.
func (m *NodeMap) convFrom(n *node) (float64, error) {
	if n.formulaErr != nil {
		return 0, n.formulaErr
	}
	to, err := m.refFloat(n, &n.value, "pValue")
	if err != nil {
		return 0, err
	}
	if n.kind == kindIntConverter {
		v, err := m.formulaInt(n, n.formulaFrom, to)
		return float64(v), err
	}
	return m.formulaFloat(n, n.formulaFrom, to)
}

func (m *NodeMap) convInt(n *node) (int64, error) {
	v, err := m.convFrom(n)
	if err != nil {
		return 0, err
	}
	return floatToInt(n, v)
}

func (m *NodeMap) convFloat(n *node) (float64, error) { return m.convFrom(n) }

// convSet writes a converter: FormulaTo with FROM = v, written to pValue.
func (m *NodeMap) convSet(n *node, v float64) error {
	if n.formulaErr != nil {
		return n.formulaErr
	}
	t := n.value.node
	if t == nil {
		return missing(n, &n.value, "pValue")
	}
	if n.kind == kindIntConverter {
		raw, err := m.formulaInt(n, n.formulaTo, v)
		if err != nil {
			return err
		}
		return m.setInt(t, raw)
	}
	raw, err := m.formulaFloat(n, n.formulaTo, v)
	if err != nil {
		return err
	}
	if t.isIntLike() {
		iv, err := floatToInt(n, raw)
		if err != nil {
			return err
		}
		return m.setInt(t, iv)
	}
	return m.setFloat(t, raw)
}

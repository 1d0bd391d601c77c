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
	sub := e.m.newEnv(e.n, v.expr, e.intMode, e.to)
	var err error
	if e.intMode {
		e.ints[slot], err = v.expr.evalInt(sub.getInt)
	} else {
		e.floats[slot], err = v.expr.evalFloat(sub.getFloat)
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
	env := m.newEnv(n, n.formula, true, 0)
	v, err := n.formula.evalInt(env.getInt)
	if err != nil {
		return 0, errf(n.name, err, "")
	}
	return v, nil
}

func (m *NodeMap) swissFloat(n *node) (float64, error) {
	if n.formulaErr != nil {
		return 0, n.formulaErr
	}
	env := m.newEnv(n, n.formula, false, 0)
	v, err := n.formula.evalFloat(env.getFloat)
	if err != nil {
		return 0, errf(n.name, err, "")
	}
	return v, nil
}

// convFrom reads a converter: FormulaFrom with TO = the pValue's value.
func (m *NodeMap) convFrom(n *node) (float64, error) {
	if n.formulaErr != nil {
		return 0, n.formulaErr
	}
	intMode := n.kind == kindIntConverter
	to, err := m.refFloat(n, &n.value, "pValue")
	if err != nil {
		return 0, err
	}
	env := m.newEnv(n, n.formulaFrom, intMode, to)
	if intMode {
		v, err := n.formulaFrom.evalInt(env.getInt)
		return float64(v), wrapFormula(n, err)
	}
	v, err := n.formulaFrom.evalFloat(env.getFloat)
	return v, wrapFormula(n, err)
}

func wrapFormula(n *node, err error) error {
	if err != nil {
		return errf(n.name, err, "")
	}
	return nil
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
	env := m.newEnv(n, n.formulaTo, n.kind == kindIntConverter, v)
	if n.kind == kindIntConverter || t.isIntLike() {
		var raw int64
		var err error
		if n.kind == kindIntConverter {
			raw, err = n.formulaTo.evalInt(env.getInt)
		} else {
			var f float64
			if f, err = n.formulaTo.evalFloat(env.getFloat); err == nil {
				raw, err = floatToInt(n, f)
			}
		}
		if err != nil {
			return errf(n.name, err, "")
		}
		return m.setInt(t, raw)
	}
	raw, err := n.formulaTo.evalFloat(env.getFloat)
	if err != nil {
		return errf(n.name, err, "")
	}
	return m.setFloat(t, raw)
}

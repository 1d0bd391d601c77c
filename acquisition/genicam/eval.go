package genicam

import "math"

// Evaluation limits.
const (
	maxDepth     = 64      // nested node evaluations (a -> b -> c ...)
	maxEvalSteps = 1 << 14 // node evaluations for one feature access
)

// enter marks n as being evaluated. Reaching a node that is already being
// evaluated is a cycle (ErrRecursion); the depth and the number of steps
// of one access are bounded so that a hostile description can neither
// overflow the stack nor make an access take exponential time.
func (m *NodeMap) enter(n *node) error {
	if n.active {
		return errf(n.name, ErrRecursion, "%s depends on itself", n.name)
	}
	if m.depth >= maxDepth {
		return errf(n.name, ErrRecursion, "references nested deeper than %d", maxDepth)
	}
	m.steps++
	if m.steps > maxEvalSteps {
		return errf(n.name, ErrTooLarge, "evaluation takes more than %d steps", maxEvalSteps)
	}
	m.depth++
	n.active = true
	return nil
}

func (m *NodeMap) leave(n *node) {
	n.active = false
	m.depth--
}

// missing is the error for a reference that did not resolve.
func missing(owner *node, r *ref, what string) error {
	if r.name == "" {
		return errf(owner.name, ErrMalformed, "%s has no %s", owner.name, what)
	}
	return errf(owner.name, ErrMalformed, "%s %s of %s does not exist or is not supported", what, r.name, owner.name)
}

// refInt is the integer value of a reference or constant.
func (m *NodeMap) refInt(owner *node, r *ref, what string) (int64, error) {
	if r.name == "" {
		return r.i, nil
	}
	if r.node == nil {
		return 0, missing(owner, r, what)
	}
	return m.getInt(r.node)
}

// refFloat is the float value of a reference or constant.
func (m *NodeMap) refFloat(owner *node, r *ref, what string) (float64, error) {
	if r.name == "" {
		return r.f, nil
	}
	if r.node == nil {
		return 0, missing(owner, r, what)
	}
	return m.getFloat(r.node)
}

// refBool is a pIsAvailable/pIsImplemented/pIsLocked reference; def when
// absent.
func (m *NodeMap) refBool(owner *node, r *ref, what string, def bool) (bool, error) {
	if !r.set {
		return def, nil
	}
	if r.node != nil && r.node.kind == kindBoolean {
		return m.getBool(r.node)
	}
	v, err := m.refInt(owner, r, what)
	return v != 0, err
}

// getInt evaluates any numeric node as an integer.
func (m *NodeMap) getInt(n *node) (int64, error) {
	if err := m.enter(n); err != nil {
		return 0, err
	}
	defer m.leave(n)
	return m.intOf(n)
}

func (m *NodeMap) intOf(n *node) (int64, error) {
	switch n.kind {
	case kindInteger, kindEnumeration, kindBoolean, kindCommand:
		return m.valueInt(n)
	case kindIntReg, kindMaskedIntReg, kindStructEntry:
		return m.regInt(n)
	case kindIntSwissKnife:
		return m.swissInt(n)
	case kindIntConverter:
		return m.convInt(n)
	case kindEnumEntry:
		return n.entryValue, nil
	case kindFloat, kindFloatReg, kindConverter, kindSwissKnife:
		f, err := m.floatOf(n)
		if err != nil {
			return 0, err
		}
		return floatToInt(n, f)
	}
	return 0, errf(n.name, ErrWrongType, "%s is a %s and has no integer value", n.name, n.kind)
}

// getFloat evaluates any numeric node as a float.
func (m *NodeMap) getFloat(n *node) (float64, error) {
	if err := m.enter(n); err != nil {
		return 0, err
	}
	defer m.leave(n)
	return m.floatOf(n)
}

func (m *NodeMap) floatOf(n *node) (float64, error) {
	switch n.kind {
	case kindFloat:
		return m.valueFloat(n)
	case kindFloatReg:
		return m.regFloat(n)
	case kindSwissKnife:
		return m.swissFloat(n)
	case kindConverter:
		return m.convFloat(n)
	}
	v, err := m.intOf(n)
	return float64(v), err
}

// floatToInt rounds v to the nearest integer, refusing NaN and values
// outside the int64 range.
func floatToInt(n *node, v float64) (int64, error) {
	r := math.Round(v)
	if math.IsNaN(r) || r < math.MinInt64 || r >= math.MaxInt64 {
		return 0, errf(n.name, ErrOutOfRange, "%v is not an integer in the int64 range", v)
	}
	return int64(r), nil
}

// setInt writes an integer to n (no access or range checks of n itself;
// registers check that the value fits).
func (m *NodeMap) setInt(n *node, v int64) error {
	if err := m.enter(n); err != nil {
		return err
	}
	defer m.leave(n)
	err := m.setIntOf(n, v)
	if err == nil {
		m.written(n)
	}
	return err
}

func (m *NodeMap) setIntOf(n *node, v int64) error {
	switch n.kind {
	case kindInteger, kindEnumeration, kindBoolean, kindCommand:
		return m.setValueInt(n, v)
	case kindIntReg, kindMaskedIntReg, kindStructEntry:
		return m.setRegInt(n, v)
	case kindIntConverter, kindConverter:
		return m.convSet(n, float64(v))
	case kindFloat, kindFloatReg:
		return m.setFloatOf(n, float64(v))
	case kindIntSwissKnife, kindSwissKnife:
		return errf(n.name, ErrReadOnly, "%s is a %s", n.name, n.kind)
	}
	return errf(n.name, ErrWrongType, "%s is a %s and takes no integer", n.name, n.kind)
}

// setFloat writes a float to n.
func (m *NodeMap) setFloat(n *node, v float64) error {
	if err := m.enter(n); err != nil {
		return err
	}
	defer m.leave(n)
	err := m.setFloatOf(n, v)
	if err == nil {
		m.written(n)
	}
	return err
}

func (m *NodeMap) setFloatOf(n *node, v float64) error {
	switch n.kind {
	case kindFloat:
		return m.setValueFloat(n, v)
	case kindFloatReg:
		return m.setRegFloat(n, v)
	case kindConverter, kindIntConverter:
		return m.convSet(n, v)
	case kindSwissKnife, kindIntSwissKnife:
		return errf(n.name, ErrReadOnly, "%s is a %s", n.name, n.kind)
	}
	if !n.isIntLike() {
		return errf(n.name, ErrWrongType, "%s is a %s and takes no number", n.name, n.kind)
	}
	iv, err := floatToInt(n, v)
	if err != nil {
		return err
	}
	return m.setIntOf(n, iv)
}

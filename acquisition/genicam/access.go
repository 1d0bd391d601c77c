package genicam

import (
	"math"
)

// checkPresent fails when n's pIsImplemented or pIsAvailable is false.
func (m *NodeMap) checkPresent(n *node) error {
	impl, err := m.refBool(n, &n.isImplemented, "pIsImplemented", true)
	if err != nil {
		return err
	}
	if !impl {
		return errf(n.name, ErrNotImplemented, "%s is not implemented", n.name)
	}
	avail, err := m.refBool(n, &n.isAvailable, "pIsAvailable", true)
	if err != nil {
		return err
	}
	if !avail {
		return errf(n.name, ErrNotAvailable, "%s is not available now", n.name)
	}
	return nil
}

func (m *NodeMap) checkReadable(n *node) error {
	if err := m.checkPresent(n); err != nil {
		return err
	}
	a, err := m.effAccess(n)
	if err != nil {
		return err
	}
	if a == accessWO {
		return errf(n.name, ErrWriteOnly, "%s is write-only", n.name)
	}
	return nil
}

func (m *NodeMap) checkWritable(n *node) error {
	if err := m.checkPresent(n); err != nil {
		return err
	}
	locked, err := m.refBool(n, &n.isLocked, "pIsLocked", false)
	if err != nil {
		return err
	}
	if locked {
		return errf(n.name, ErrLocked, "%s is locked now", n.name)
	}
	a, err := m.effAccess(n)
	if err != nil {
		return err
	}
	if a == accessRO {
		return errf(n.name, ErrReadOnly, "%s is read-only", n.name)
	}
	return nil
}

// combine is the access through two nodes in series.
func combine(a, b accessMode) accessMode {
	switch {
	case a == b || b == accessRW:
		return a
	case a == accessRW:
		return b
	}
	return accessRO // RO over WO: neither reads nor writes make sense
}

// effAccess is n's access mode: its own, narrowed by what its value node
// allows. SwissKnives are read-only.
func (m *NodeMap) effAccess(n *node) (accessMode, error) {
	switch {
	case n.kind == kindSwissKnife || n.kind == kindIntSwissKnife:
		return accessRO, nil
	case n.isRegister() || n.kind == kindString:
		return n.declared(), nil
	}
	own := n.declared()
	if len(n.indexed) > 0 || n.value.node == nil {
		return own, nil
	}
	if err := m.enter(n); err != nil {
		return 0, err
	}
	defer m.leave(n)
	t, err := m.effAccess(n.value.node)
	return combine(own, t), err
}

// intRange is the Min, Max and Inc an integer node enforces.
func (m *NodeMap) intRange(n *node) (lo, hi, inc int64, err error) {
	if err := m.enter(n); err != nil {
		return 0, 0, 0, err
	}
	defer m.leave(n)
	lo, hi, inc = math.MinInt64, math.MaxInt64, 1
	switch n.kind {
	case kindIntReg, kindMaskedIntReg, kindStructEntry:
		k, err := m.regLocation(n)
		if err != nil {
			return 0, 0, 0, err
		}
		_, width, err := bitField(n, k.length)
		if err != nil {
			return 0, 0, 0, err
		}
		lo, hi = fieldRange(width, n.signed)
		return lo, hi, 1, nil
	case kindIntConverter:
		flo, fhi, err := m.convRange(n)
		if err != nil {
			return 0, 0, 0, err
		}
		return saturate(math.Ceil(flo)), saturate(math.Floor(fhi)), 1, nil
	case kindInteger:
		if t := n.value.node; t != nil && t.isIntLike() && len(n.indexed) == 0 && (!n.min.set || !n.max.set) {
			if lo, hi, _, err = m.intRange(t); err != nil {
				return 0, 0, 0, err
			}
		}
	}
	if n.min.set {
		if lo, err = m.refInt(n, &n.min, "pMin"); err != nil {
			return 0, 0, 0, err
		}
	}
	if n.max.set {
		if hi, err = m.refInt(n, &n.max, "pMax"); err != nil {
			return 0, 0, 0, err
		}
	}
	if n.inc.set {
		if inc, err = m.refInt(n, &n.inc, "pInc"); err != nil {
			return 0, 0, 0, err
		}
		if inc <= 0 {
			return 0, 0, 0, errf(n.name, ErrMalformed, "Inc %d is not positive", inc)
		}
	}
	return lo, hi, inc, nil
}

// checkIntRange fails with ErrOutOfRange (or ErrNotEnumEntry) when v is
// not a value n accepts.
func (m *NodeMap) checkIntRange(n *node, v int64) error {
	if n.kind == kindEnumeration {
		for _, e := range n.entries {
			if e.entryValue == v {
				return m.checkPresent(e)
			}
		}
		return errf(n.name, ErrNotEnumEntry, "%d is the value of none of %s", v, entryNames(n))
	}
	if n.isFloatLike() {
		return m.checkFloatRange(n, float64(v))
	}
	lo, hi, inc, err := m.intRange(n)
	if err != nil {
		return err
	}
	if v < lo || v > hi {
		return errf(n.name, ErrOutOfRange, "%d is outside [%d, %d]", v, lo, hi)
	}
	if inc > 1 && (uint64(v)-uint64(lo))%uint64(inc) != 0 {
		return errf(n.name, ErrOutOfRange, "%d is not %d plus a multiple of %d", v, lo, inc)
	}
	return nil
}

// floatRange is the Min and Max (and Inc, 0 if none) a number node
// enforces as floats.
func (m *NodeMap) floatRange(n *node) (lo, hi, inc float64, err error) {
	if n.isIntLike() && n.kind != kindIntConverter {
		ilo, ihi, iinc, err := m.intRange(n)
		return float64(ilo), float64(ihi), float64(iinc), err
	}
	if err := m.enter(n); err != nil {
		return 0, 0, 0, err
	}
	defer m.leave(n)
	lo, hi = -math.MaxFloat64, math.MaxFloat64
	switch n.kind {
	case kindFloatReg:
		if k, err := m.regLocation(n); err == nil && k.length == 4 {
			lo, hi = -math.MaxFloat32, math.MaxFloat32
		}
		return lo, hi, 0, nil
	case kindConverter, kindIntConverter:
		if !n.min.set || !n.max.set {
			if lo, hi, err = m.convRange(n); err != nil {
				return 0, 0, 0, err
			}
		}
	case kindFloat:
		if t := n.value.node; t != nil && len(n.indexed) == 0 && (!n.min.set || !n.max.set) {
			if lo, hi, _, err = m.floatRange(t); err != nil {
				return 0, 0, 0, err
			}
		}
	}
	if n.min.set {
		if lo, err = m.refFloat(n, &n.min, "pMin"); err != nil {
			return 0, 0, 0, err
		}
	}
	if n.max.set {
		if hi, err = m.refFloat(n, &n.max, "pMax"); err != nil {
			return 0, 0, 0, err
		}
	}
	if n.inc.set {
		if inc, err = m.refFloat(n, &n.inc, "pInc"); err != nil {
			return 0, 0, 0, err
		}
	}
	return lo, hi, inc, nil
}

// convRange maps the pValue's range through FormulaFrom. Formulas that
// fail on the extremes (overflow, division) leave the range open.
func (m *NodeMap) convRange(n *node) (lo, hi float64, err error) {
	t := n.value.node
	if t == nil || n.formulaErr != nil {
		return -math.MaxFloat64, math.MaxFloat64, nil
	}
	tlo, thi, _, err := m.floatRange(t)
	if err != nil {
		return 0, 0, err
	}
	from := func(x float64) (float64, bool) {
		if n.kind == kindIntConverter {
			v, err := m.formulaInt(n, n.formulaFrom, x)
			return float64(v), err == nil
		}
		v, err := m.formulaFloat(n, n.formulaFrom, x)
		return v, err == nil && !math.IsNaN(v)
	}
	a, ok1 := from(tlo)
	b, ok2 := from(thi)
	if !ok1 || !ok2 || math.Abs(tlo) >= math.MaxInt64 || math.Abs(thi) >= math.MaxInt64 {
		return -math.MaxFloat64, math.MaxFloat64, nil
	}
	return min(a, b), max(a, b), nil
}

func (m *NodeMap) checkFloatRange(n *node, v float64) error {
	if math.IsNaN(v) {
		return errf(n.name, ErrOutOfRange, "NaN")
	}
	lo, hi, inc, err := m.floatRange(n)
	if err != nil {
		return err
	}
	if v < lo || v > hi {
		return errf(n.name, ErrOutOfRange, "%v is outside [%v, %v]", v, lo, hi)
	}
	if inc > 0 {
		k := (v - lo) / inc
		if math.Abs(k-math.Round(k)) > 1e-6*math.Max(1, math.Abs(k)) {
			return errf(n.name, ErrOutOfRange, "%v is not %v plus a multiple of %v", v, lo, inc)
		}
	}
	return nil
}

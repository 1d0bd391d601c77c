package genicam

import "strings"

// valueSource picks where a value node's value lives: the pValueIndexed
// entry for the current pIndex (or the default), pValue, or its own
// constant.
func (m *NodeMap) valueSource(n *node) (*ref, error) {
	if len(n.indexed) > 0 {
		idx, err := m.refInt(n, &n.pIndex, "pIndex")
		if err != nil {
			return nil, err
		}
		for i := range n.indexed {
			if n.indexed[i].index == idx {
				return &n.indexed[i].val, nil
			}
		}
		if !n.valueDefault.set {
			return nil, errf(n.name, ErrOutOfRange, "no value for index %d and no default", idx)
		}
		return &n.valueDefault, nil
	}
	if !n.value.set {
		return nil, errf(n.name, ErrMalformed, "%s has neither Value nor pValue", n.name)
	}
	return &n.value, nil
}

func (m *NodeMap) valueInt(n *node) (int64, error) {
	r, err := m.valueSource(n)
	if err != nil {
		return 0, err
	}
	return m.refInt(n, r, "pValue")
}

func (m *NodeMap) valueFloat(n *node) (float64, error) {
	r, err := m.valueSource(n)
	if err != nil {
		return 0, err
	}
	return m.refFloat(n, r, "pValue")
}

// setValueInt writes a value node: through its pValue (and pValueCopy), or
// into its own constant.
func (m *NodeMap) setValueInt(n *node, v int64) error {
	r, err := m.valueSource(n)
	if err != nil {
		return err
	}
	if r.name == "" {
		r.i, r.f = v, float64(v)
	} else if r.node == nil {
		return missing(n, r, "pValue")
	} else if err := m.setInt(r.node, v); err != nil {
		return err
	}
	for i := range n.valueCopies {
		c := &n.valueCopies[i]
		if c.node == nil {
			return missing(n, c, "pValueCopy")
		}
		if err := m.setInt(c.node, v); err != nil {
			return err
		}
	}
	return nil
}

func (m *NodeMap) setValueFloat(n *node, v float64) error {
	r, err := m.valueSource(n)
	if err != nil {
		return err
	}
	if r.name == "" {
		r.f, r.i = v, saturate(v)
		return nil
	}
	if r.node == nil {
		return missing(n, r, "pValue")
	}
	return m.setFloat(r.node, v)
}

// getEnum returns the entry matching an Enumeration's current value.
func (m *NodeMap) getEnum(n *node) (*node, error) {
	if err := m.enter(n); err != nil {
		return nil, err
	}
	defer m.leave(n)
	v, err := m.valueInt(n)
	if err != nil {
		return nil, err
	}
	for _, e := range n.entries {
		if e.entryValue == v {
			return e, nil
		}
	}
	return nil, errf(n.name, ErrNotEnumEntry, "value %d matches no entry of %s", v, n.name)
}

// entry finds an Enumeration entry by symbolic or node name.
func (n *node) entry(name string) *node {
	for _, e := range n.entries {
		if e.symbolic == name || e.name == name {
			return e
		}
	}
	return nil
}

func entryNames(n *node) string {
	var names []string
	for i, e := range n.entries {
		if i == 32 {
			names = append(names, "…")
			break
		}
		names = append(names, e.symbolic)
	}
	return strings.Join(names, ", ")
}

// setEnum selects an entry by name, refusing unknown, unimplemented and
// unavailable entries.
func (m *NodeMap) setEnum(n *node, name string) error {
	e := n.entry(name)
	if e == nil {
		return errf(n.name, ErrNotEnumEntry, "%q is none of %s", name, entryNames(n))
	}
	if err := m.checkPresent(e); err != nil {
		return err
	}
	return m.setInt(n, e.entryValue)
}

func (m *NodeMap) getBool(n *node) (bool, error) {
	v, err := m.getInt(n)
	switch {
	case err != nil:
		return false, err
	case v == n.onValue:
		return true, nil
	case v == n.offValue:
		return false, nil
	}
	return false, errf(n.name, ErrOutOfRange, "value %d is neither OnValue %d nor OffValue %d", v, n.onValue, n.offValue)
}

func (m *NodeMap) setBool(n *node, v bool) error {
	if v {
		return m.setInt(n, n.onValue)
	}
	return m.setInt(n, n.offValue)
}

func (m *NodeMap) getString(n *node) (string, error) {
	if n.kind == kindString {
		return n.strValue, nil
	}
	if err := m.enter(n); err != nil {
		return "", err
	}
	defer m.leave(n)
	b, err := m.readReg(n)
	if err != nil {
		return "", err
	}
	for i, c := range b {
		if c == 0 {
			return string(b[:i]), nil
		}
	}
	return string(b), nil
}

// setString writes a String node's value or a StringReg, padded with NULs
// to the register's length.
func (m *NodeMap) setString(n *node, v string) error {
	if n.kind == kindString {
		n.strValue = v
		m.written(n)
		return nil
	}
	if err := m.enter(n); err != nil {
		return err
	}
	defer m.leave(n)
	k, err := m.regLocation(n)
	if err != nil {
		return err
	}
	if len(v) > k.length {
		return errf(n.name, ErrOutOfRange, "%d bytes do not fit a register of %d", len(v), k.length)
	}
	b := make([]byte, k.length)
	copy(b, v)
	if err := m.writeReg(n, b); err != nil {
		return err
	}
	m.written(n)
	return nil
}

// execute writes a Command's CommandValue to its pValue.
func (m *NodeMap) execute(n *node) error {
	if err := m.enter(n); err != nil {
		return err
	}
	defer m.leave(n)
	if !n.commandValue.set {
		return errf(n.name, ErrMalformed, "command %s has no CommandValue", n.name)
	}
	v, err := m.refInt(n, &n.commandValue, "pCommandValue")
	if err != nil {
		return err
	}
	if err := m.setValueInt(n, v); err != nil {
		return err
	}
	m.written(n)
	return nil
}

// written runs after a successful write to n: it drops the caches of the
// registers whose pInvalidator names n and, when n is a selector, of the
// registers its selected features read.
func (m *NodeMap) written(n *node) {
	for _, r := range m.invalidates[n] {
		m.forget(r)
	}
	if len(n.selected) == 0 {
		return
	}
	seen := map[*node]bool{}
	for i := range n.selected {
		m.forgetBelow(n.selected[i].node, seen, 0)
	}
}

// forgetBelow drops the caches of every register n reads through.
func (m *NodeMap) forgetBelow(n *node, seen map[*node]bool, depth int) {
	if n == nil || seen[n] || depth > maxDepth || len(seen) > maxEvalSteps {
		return
	}
	seen[n] = true
	if n.isRegister() {
		m.forget(n)
	}
	for _, r := range n.refs() {
		m.forgetBelow(r.node, seen, depth+1)
	}
}

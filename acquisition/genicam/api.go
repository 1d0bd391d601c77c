package genicam

// Int returns an integer feature (Integer, IntReg, MaskedIntReg,
// StructEntry, IntConverter, IntSwissKnife; an Enumeration's numeric value).
func (m *NodeMap) Int(name string) (v int64, err error) {
	err = m.access("get", name, func(n *node) error {
		if !n.isIntLike() {
			return errf(n.name, ErrWrongType, "%s is a %s, not an integer", n.name, n.kind)
		}
		if err := m.checkReadable(n); err != nil {
			return err
		}
		v, err = m.getInt(n)
		return err
	})
	return v, err
}

// SetInt writes an integer feature after checking access, lock, and its
// Min, Max and Inc.
func (m *NodeMap) SetInt(name string, v int64) error {
	return m.access("set", name, func(n *node) error {
		if !n.isIntLike() {
			return errf(n.name, ErrWrongType, "%s is a %s, not an integer", n.name, n.kind)
		}
		if err := m.checkWritable(n); err != nil {
			return err
		}
		if err := m.checkIntRange(n, v); err != nil {
			return err
		}
		return m.setInt(n, v)
	})
}

// Float returns a floating-point feature (Float, FloatReg, Converter,
// SwissKnife) or an integer feature converted to float64.
func (m *NodeMap) Float(name string) (v float64, err error) {
	err = m.access("get", name, func(n *node) error {
		if !n.isFloatLike() && !n.isIntLike() {
			return errf(n.name, ErrWrongType, "%s is a %s, not a number", n.name, n.kind)
		}
		if err := m.checkReadable(n); err != nil {
			return err
		}
		v, err = m.getFloat(n)
		return err
	})
	return v, err
}

// SetFloat writes a floating-point feature after checking access, lock,
// Min and Max (and Inc when the feature has one). On an integer feature the
// value is rounded to the nearest integer first.
func (m *NodeMap) SetFloat(name string, v float64) error {
	return m.access("set", name, func(n *node) error {
		if !n.isFloatLike() && !n.isIntLike() {
			return errf(n.name, ErrWrongType, "%s is a %s, not a number", n.name, n.kind)
		}
		if err := m.checkWritable(n); err != nil {
			return err
		}
		if n.isIntLike() {
			iv, err := floatToInt(n, v)
			if err != nil {
				return err
			}
			if err := m.checkIntRange(n, iv); err != nil {
				return err
			}
			return m.setInt(n, iv)
		}
		if err := m.checkFloatRange(n, v); err != nil {
			return err
		}
		return m.setFloat(n, v)
	})
}

// Enum returns the symbolic name of an Enumeration's current entry.
func (m *NodeMap) Enum(name string) (v string, err error) {
	err = m.access("get", name, func(n *node) error {
		if n.kind != kindEnumeration {
			return errf(n.name, ErrWrongType, "%s is a %s, not an Enumeration", n.name, n.kind)
		}
		if err := m.checkReadable(n); err != nil {
			return err
		}
		e, err := m.getEnum(n)
		if err == nil {
			v = e.symbolic
		}
		return err
	})
	return v, err
}

// SetEnum sets an Enumeration to the entry with the given symbolic name.
func (m *NodeMap) SetEnum(name, entry string) error {
	return m.access("set", name, func(n *node) error {
		if n.kind != kindEnumeration {
			return errf(n.name, ErrWrongType, "%s is a %s, not an Enumeration", n.name, n.kind)
		}
		if err := m.checkWritable(n); err != nil {
			return err
		}
		return m.setEnum(n, entry)
	})
}

// Bool returns a Boolean feature.
func (m *NodeMap) Bool(name string) (v bool, err error) {
	err = m.access("get", name, func(n *node) error {
		if n.kind != kindBoolean {
			return errf(n.name, ErrWrongType, "%s is a %s, not a Boolean", n.name, n.kind)
		}
		if err := m.checkReadable(n); err != nil {
			return err
		}
		v, err = m.getBool(n)
		return err
	})
	return v, err
}

// SetBool writes a Boolean feature (its OnValue or OffValue).
func (m *NodeMap) SetBool(name string, v bool) error {
	return m.access("set", name, func(n *node) error {
		if n.kind != kindBoolean {
			return errf(n.name, ErrWrongType, "%s is a %s, not a Boolean", n.name, n.kind)
		}
		if err := m.checkWritable(n); err != nil {
			return err
		}
		return m.setBool(n, v)
	})
}

// String returns a String or StringReg feature.
func (m *NodeMap) String(name string) (v string, err error) {
	err = m.access("get", name, func(n *node) error {
		if n.kind != kindString && n.kind != kindStringReg {
			return errf(n.name, ErrWrongType, "%s is a %s, not a String", n.name, n.kind)
		}
		if err := m.checkReadable(n); err != nil {
			return err
		}
		v, err = m.getString(n)
		return err
	})
	return v, err
}

// SetString writes a String or StringReg feature; a StringReg refuses
// strings longer than its register with ErrOutOfRange.
func (m *NodeMap) SetString(name, v string) error {
	return m.access("set", name, func(n *node) error {
		if n.kind != kindString && n.kind != kindStringReg {
			return errf(n.name, ErrWrongType, "%s is a %s, not a String", n.name, n.kind)
		}
		if err := m.checkWritable(n); err != nil {
			return err
		}
		return m.setString(n, v)
	})
}

// Execute runs a Command: it writes the command's CommandValue to its
// pValue.
func (m *NodeMap) Execute(name string) error {
	return m.access("execute", name, func(n *node) error {
		if n.kind != kindCommand {
			return errf(n.name, ErrWrongType, "%s is a %s, not a Command", n.name, n.kind)
		}
		if err := m.checkWritable(n); err != nil {
			return err
		}
		return m.execute(n)
	})
}

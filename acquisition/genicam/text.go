package genicam

import (
	"encoding/hex"
	"strconv"
	"strings"
)

// Value returns any readable feature as text: integers in decimal, floats
// in the shortest form that round-trips, enumerations as their entry name,
// booleans as true/false, Register nodes as hexadecimal bytes.
func (m *NodeMap) Value(name string) (s string, err error) {
	err = m.access("get", name, func(n *node) error {
		switch n.kind {
		case kindCategory, kindPort, kindCommand, kindEnumEntry:
			return errf(n.name, ErrWrongType, "%s is a %s and has no value", n.name, n.kind)
		}
		if err := m.checkReadable(n); err != nil {
			return err
		}
		var err error
		s, err = m.text(n)
		return err
	})
	return s, err
}

func (m *NodeMap) text(n *node) (string, error) {
	switch {
	case n.kind == kindEnumeration:
		e, err := m.getEnum(n)
		if err != nil {
			return "", err
		}
		return e.symbolic, nil
	case n.isIntLike():
		v, err := m.getInt(n)
		return strconv.FormatInt(v, 10), err
	case n.isFloatLike():
		v, err := m.getFloat(n)
		return strconv.FormatFloat(v, 'g', -1, 64), err
	case n.kind == kindBoolean:
		v, err := m.getBool(n)
		return strconv.FormatBool(v), err
	case n.kind == kindString || n.kind == kindStringReg:
		return m.getString(n)
	case n.kind == kindRegister:
		b, err := m.readReg(n)
		return hex.EncodeToString(b), err
	}
	return "", errf(n.name, ErrWrongType, "%s has no value", n.kind)
}

// SetValue writes any writable feature from text: integers in decimal or
// 0x hexadecimal, floats, enumeration entry names, true/false/1/0 for
// booleans, hexadecimal bytes for Register nodes. On a Command, "", "1",
// "true" and "execute" execute it.
func (m *NodeMap) SetValue(name, text string) error {
	return m.access("set", name, func(n *node) error {
		switch n.kind {
		case kindCategory, kindPort, kindEnumEntry:
			return errf(n.name, ErrWrongType, "%s is a %s and has no value", n.name, n.kind)
		}
		if err := m.checkWritable(n); err != nil {
			return err
		}
		return m.setText(n, strings.TrimSpace(text))
	})
}

func (m *NodeMap) setText(n *node, t string) error {
	bad := func(what string) error {
		return errf(n.name, ErrOutOfRange, "%q is not %s", t, what)
	}
	switch {
	case n.kind == kindCommand:
		switch strings.ToLower(t) {
		case "", "1", "true", "execute":
			return m.execute(n)
		}
		return bad(`"execute"`)
	case n.kind == kindEnumeration:
		return m.setEnum(n, t)
	case n.isIntLike():
		v, err := parseInt(t)
		if err != nil {
			return bad("an integer")
		}
		if err := m.checkIntRange(n, v); err != nil {
			return err
		}
		return m.setInt(n, v)
	case n.isFloatLike():
		v, err := strconv.ParseFloat(t, 64)
		if err != nil {
			return bad("a number")
		}
		if err := m.checkFloatRange(n, v); err != nil {
			return err
		}
		return m.setFloat(n, v)
	case n.kind == kindBoolean:
		v, err := strconv.ParseBool(t)
		if err != nil {
			return bad("a boolean")
		}
		return m.setBool(n, v)
	case n.kind == kindString || n.kind == kindStringReg:
		return m.setString(n, t)
	case n.kind == kindRegister:
		b, err := hex.DecodeString(strings.TrimPrefix(strings.TrimPrefix(t, "0x"), "0X"))
		if err != nil {
			return bad("hexadecimal bytes")
		}
		return m.writeReg(n, b)
	}
	return errf(n.name, ErrWrongType, "%s cannot be set", n.kind)
}

// parseInt parses decimal or 0x hexadecimal, allowing hexadecimal values
// above MaxInt64 (taken as their two's complement).
func parseInt(s string) (int64, error) {
	v, err := strconv.ParseInt(s, 0, 64)
	if err == nil {
		return v, nil
	}
	if u, uerr := strconv.ParseUint(s, 0, 64); uerr == nil {
		return int64(u), nil
	}
	return 0, err
}

// Features lists the nodes the description shows to users: every node
// reachable from the Root category (categories included), in tree order,
// followed by no others. Without a Root category it lists every value node
// in document order.
func (m *NodeMap) Features() []FeatureInfo {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []FeatureInfo
	seen := map[*node]bool{}
	var walk func(n *node, parent string, depth int)
	walk = func(n *node, parent string, depth int) {
		if n == nil || seen[n] || depth > maxDepth {
			return
		}
		seen[n] = true
		out = append(out, info(n, parent))
		for _, f := range n.features {
			walk(f.node, n.name, depth+1)
		}
	}
	if root := m.nodes["Root"]; root != nil && root.kind == kindCategory {
		walk(root, "", 0)
		return out
	}
	for _, n := range m.order {
		switch n.kind {
		case kindPort, kindEnumEntry:
			continue
		}
		if !seen[n] {
			walk(n, "", 0)
		}
	}
	return out
}

func info(n *node, parent string) FeatureInfo {
	fi := FeatureInfo{
		Name: n.name, Kind: n.kind.String(), Category: parent,
		DisplayName: n.displayName, Description: n.toolTip,
		Unit: n.unit, Visibility: n.visibility, Access: n.declared().String(),
	}
	if fi.Description == "" {
		fi.Description = n.description
	}
	for _, e := range n.entries {
		fi.Entries = append(fi.Entries, e.symbolic)
	}
	for _, s := range n.selected {
		fi.Selected = append(fi.Selected, s.name)
	}
	return fi
}

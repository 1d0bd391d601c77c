package genicam

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// number parses an integer (decimal or 0x hexadecimal, hex up to 2^64-1
// taken as two's complement) or a float constant of the description.
func number(s string) (int64, float64, bool) {
	s = strings.TrimSpace(s)
	if v, err := parseInt(s); err == nil {
		if u, err := strconv.ParseUint(s, 0, 64); err == nil && u > math.MaxInt64 {
			return v, float64(u), true
		}
		return v, float64(v), true
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil && !strings.Contains(err.Error(), "range") {
		return 0, 0, false
	}
	return saturate(f), f, true
}

func (b *builder) constRef(n *node, c *elem) (ref, error) {
	i, f, ok := number(c.text)
	if !ok {
		return ref{}, fmt.Errorf("genicam: %w: node %s: <%s> %q is not a number", ErrMalformed, n.name, c.name, clip(c.text))
	}
	return ref{i: i, f: f, set: true}, nil
}

func nameRef(c *elem) ref { return ref{name: c.text, set: true} }

// child applies one child element to n.
func (b *builder) child(n *node, c *elem) error {
	if done, err := b.valueChild(n, c); done || err != nil {
		return err
	}
	if n.isRegister() {
		if done, err := b.registerChild(n, c); done || err != nil {
			return err
		}
	}
	switch c.name {
	case "ToolTip":
		n.toolTip = c.text
	case "Description":
		n.description = c.text
	case "DisplayName":
		n.displayName = c.text
	case "Visibility":
		n.visibility = c.text
	case "Unit":
		n.unit = c.text
	case "pIsImplemented":
		n.isImplemented = nameRef(c)
	case "pIsAvailable":
		n.isAvailable = nameRef(c)
	case "pIsLocked":
		n.isLocked = nameRef(c)
	case "ImposedAccessMode", "AccessMode":
		return b.accessMode(n, c)
	case "pInvalidator":
		n.invalidators = append(n.invalidators, nameRef(c))
	case "pSelected":
		n.selected = append(n.selected, nameRef(c))
	case "pFeature":
		n.features = append(n.features, nameRef(c))
	case "pPort":
		n.port = nameRef(c)
	case "ChunkID":
		n.chunkID = c.text
	case "EnumEntry":
		return b.enumEntry(n, c)
	case "pVariable":
		n.vars = append(n.vars, variable{name: c.attr("Name"), ref: nameRef(c)})
	case "Constant":
		r, err := b.constRef(n, c)
		n.vars = append(n.vars, variable{name: c.attr("Name"), ref: r})
		return err
	}
	return nil // PollingTime, Representation, Slope, Extension, ... carry nothing we evaluate
}

// accessMode reads AccessMode or ImposedAccessMode. Values other than RO,
// WO and RW are read by their letters ("R" is RO) and reported in
// Problems; real descriptions contain them.
func (b *builder) accessMode(n *node, c *elem) error {
	var a accessMode
	switch t := strings.ToUpper(c.text); {
	case t == "RO", t == "R":
		a = accessRO
	case t == "WO", t == "W":
		a = accessWO
	case t == "RW":
		a = accessRW
	default:
		return fmt.Errorf("genicam: %w: node %s: <%s> %q is none of RO, WO, RW", ErrMalformed, n.name, c.name, c.text)
	}
	if c.text != "RO" && c.text != "WO" && c.text != "RW" {
		b.m.problems = append(b.m.problems, errf(n.name, ErrMalformed, "<%s> %q taken as %s", c.name, c.text, a))
	}
	if c.name == "ImposedAccessMode" {
		n.imposed = a
	} else {
		n.access = a
	}
	return nil
}

// valueChild handles the value, range and selector children of value nodes.
func (b *builder) valueChild(n *node, c *elem) (bool, error) {
	var err error
	switch c.name {
	case "Value":
		if n.kind == kindString {
			n.strValue = c.text
		} else {
			n.value, err = b.constRef(n, c)
		}
	case "pValue":
		n.value = nameRef(c)
	case "pValueCopy":
		n.valueCopies = append(n.valueCopies, nameRef(c))
	case "Min":
		n.min, err = b.constRef(n, c)
	case "pMin":
		n.min = nameRef(c)
	case "Max":
		n.max, err = b.constRef(n, c)
	case "pMax":
		n.max = nameRef(c)
	case "Inc":
		n.inc, err = b.constRef(n, c)
	case "pInc":
		n.inc = nameRef(c)
	case "ValueIndexed", "pValueIndexed":
		iv := indexedValue{val: nameRef(c)}
		idx, _, ok := number(c.attr("Index"))
		if !ok {
			return true, fmt.Errorf("genicam: %w: node %s: <%s Index=%q> is not a number", ErrMalformed, n.name, c.name, c.attr("Index"))
		}
		iv.index = idx
		if c.name == "ValueIndexed" {
			iv.val, err = b.constRef(n, c)
		}
		n.indexed = append(n.indexed, iv)
	case "ValueDefault":
		n.valueDefault, err = b.constRef(n, c)
	case "pValueDefault":
		n.valueDefault = nameRef(c)
	case "OnValue":
		n.onValue, _, _ = number(c.text)
	case "OffValue":
		n.offValue, _, _ = number(c.text)
	case "CommandValue":
		n.commandValue, err = b.constRef(n, c)
	case "pCommandValue":
		n.commandValue = nameRef(c)
	case "pIndex":
		if n.isRegister() {
			return false, nil
		}
		n.pIndex = nameRef(c)
	default:
		return false, nil
	}
	return true, err
}

// registerChild handles the addressing and encoding children of registers.
func (b *builder) registerChild(n *node, c *elem) (bool, error) {
	var err error
	switch c.name {
	case "Address":
		var r ref
		r, err = b.constRef(n, c)
		n.addresses = append(n.addresses, r)
	case "pAddress":
		n.addresses = append(n.addresses, nameRef(c))
	case "IntSwissKnife": // an inline address computation
		b.anon++
		var k *node
		k, err = b.node(c, fmt.Sprintf("%s.Address#%d", n.name, b.anon))
		if err == nil {
			n.addresses = append(n.addresses, ref{name: k.name, set: true})
		}
	case "pIndex":
		ir := indexRef{idx: nameRef(c)}
		if s := c.attr("Offset"); s != "" {
			i, f, ok := number(s)
			if !ok {
				return true, fmt.Errorf("genicam: %w: node %s: <pIndex Offset=%q> is not a number", ErrMalformed, n.name, s)
			}
			ir.offset = ref{i: i, f: f, set: true}
		} else if s := c.attr("pOffset"); s != "" {
			ir.offset = ref{name: s, set: true}
		}
		n.indexes = append(n.indexes, ir)
	case "Length":
		n.length, err = b.constRef(n, c)
	case "pLength":
		n.length = nameRef(c)
	case "Endianess", "Endianness":
		n.bigEndian = c.text == "BigEndian"
	case "Sign":
		n.signed = c.text == "Signed"
	case "Bit", "LSB", "MSB":
		v, _, ok := number(c.text)
		if !ok || v < 0 || v > 63 {
			return true, fmt.Errorf("genicam: %w: node %s: <%s> %q is not a bit number 0..63", ErrMalformed, n.name, c.name, c.text)
		}
		n.masked = true
		if c.name != "MSB" {
			n.lsb = int(v)
		}
		if c.name != "LSB" {
			n.msb = int(v)
		}
	case "PollingTime":
		n.polled = true
	case "Cachable":
		switch c.text {
		case "NoCache":
			n.cache = cacheNone
		case "WriteAround":
			n.cache = cacheWriteAround
		default:
			n.cache = cacheWriteThrough
		}
	default:
		return false, nil
	}
	return true, err
}

func (b *builder) enumEntry(n *node, c *elem) error {
	e := &node{name: c.attr("Name"), kind: kindEnumEntry, enum: n}
	if e.name == "" {
		return fmt.Errorf("genicam: %w: an entry of %s has no Name", ErrMalformed, n.name)
	}
	// Entry names need only be unique within their enumeration; references
	// (pIsAvailable of another node ...) find the first entry of a name
	// when no other node has it.
	if _, dup := b.entries[e.name]; !dup {
		b.entries[e.name] = e
	}
	if n.entry(e.name) != nil {
		return fmt.Errorf("genicam: %w: %s has two entries named %q", ErrMalformed, n.name, e.name)
	}
	for _, k := range c.kids {
		switch k.name {
		case "Value":
			v, _, ok := number(k.text)
			if !ok {
				return fmt.Errorf("genicam: %w: entry %s of %s: <Value> %q is not a number", ErrMalformed, e.name, n.name, k.text)
			}
			e.entryValue = v
		case "Symbolic":
			e.symbolic = k.text
		default:
			if err := b.child(e, k); err != nil {
				return err
			}
		}
	}
	if e.symbolic == "" {
		e.symbolic = e.name
	}
	n.entries = append(n.entries, e)
	return nil
}

// structReg expands a StructReg into one StructEntry node per entry, each
// carrying the register's address, length, port and encoding.
func (b *builder) structReg(e *elem) error {
	var shared []*elem
	for _, c := range e.kids {
		if c.name != "StructEntry" {
			shared = append(shared, c)
		}
	}
	for _, c := range e.kids {
		if c.name != "StructEntry" {
			continue
		}
		n := &node{name: c.attr("Name"), kind: kindStructEntry, access: accessRO}
		if err := b.add(n); err != nil {
			return err
		}
		for _, k := range append(append([]*elem(nil), shared...), c.kids...) {
			if err := b.child(n, k); err != nil {
				return err
			}
		}
	}
	return nil
}

package genicam

// kind is a node's element name in the device description.
type kind uint8

const (
	kindInvalid kind = iota
	kindCategory
	kindPort
	kindInteger
	kindFloat
	kindEnumeration
	kindEnumEntry
	kindCommand
	kindBoolean
	kindString
	kindStringReg
	kindRegister
	kindIntReg
	kindMaskedIntReg
	kindStructEntry
	kindFloatReg
	kindConverter
	kindIntConverter
	kindSwissKnife
	kindIntSwissKnife
)

var kindNames = [...]string{
	kindInvalid:       "Invalid",
	kindCategory:      "Category",
	kindPort:          "Port",
	kindInteger:       "Integer",
	kindFloat:         "Float",
	kindEnumeration:   "Enumeration",
	kindEnumEntry:     "EnumEntry",
	kindCommand:       "Command",
	kindBoolean:       "Boolean",
	kindString:        "String",
	kindStringReg:     "StringReg",
	kindRegister:      "Register",
	kindIntReg:        "IntReg",
	kindMaskedIntReg:  "MaskedIntReg",
	kindStructEntry:   "StructEntry",
	kindFloatReg:      "FloatReg",
	kindConverter:     "Converter",
	kindIntConverter:  "IntConverter",
	kindSwissKnife:    "SwissKnife",
	kindIntSwissKnife: "IntSwissKnife",
}

func (k kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "Invalid"
}

// accessMode is a declared or effective access mode.
type accessMode uint8

const (
	accessRW accessMode = iota
	accessRO
	accessWO
)

func (a accessMode) String() string {
	switch a {
	case accessRO:
		return "RO"
	case accessWO:
		return "WO"
	}
	return "RW"
}

// cachable says how a register's cache follows writes.
type cachable uint8

const (
	cacheWriteThrough cachable = iota // a write stores the written bytes in the cache
	cacheWriteAround                  // a write drops the cache; the next read reads back
	cacheNone                         // never cached
)

// ref is a reference to another node by name, or a constant. A value given
// by a constant element (<Min>16</Min>) has name == "" and set.
type ref struct {
	name string  // node referenced by a p… element
	node *node   // resolved at the end of Parse; nil if dangling
	i    int64   // constant value (integer nodes)
	f    float64 // constant value (float nodes)
	set  bool    // something was given
}

// indexRef is one <pIndex> (or the address part of a pValueIndexed) of a
// register: address += value(node) * offset.
type indexRef struct {
	idx    ref
	offset ref // Offset attribute (constant) or pOffset attribute (node)
}

// indexedValue is one <ValueIndexed>/<pValueIndexed Index="i"> entry.
type indexedValue struct {
	index int64
	val   ref
}

// variable is one <pVariable Name="X">, <Constant Name="X"> or
// <Expression Name="X"> of a formula node.
type variable struct {
	name string
	ref  ref      // pVariable / Constant
	expr *formula // Expression
}

// node is one element of the node graph. It is a union: each kind uses the
// fields its element can hold.
type node struct {
	name string
	kind kind

	displayName, toolTip, description, visibility, unit string

	// availability and access
	isImplemented, isAvailable, isLocked ref
	access                               accessMode // AccessMode (registers; RO unless given)
	imposed                              accessMode // ImposedAccessMode (RW: no restriction)
	invalidators                         []ref      // pInvalidator
	selected                             []ref      // pSelected
	features                             []ref      // Category pFeature

	// value nodes (Integer, Float, Enumeration, Boolean, Command, Converter)
	value, min, max, inc ref
	valueCopies          []ref
	indexed              []indexedValue
	valueDefault         ref
	pIndex               ref // selector of pValueIndexed
	strValue             string

	// Boolean
	onValue, offValue int64
	// Command
	commandValue ref
	// Enumeration
	entries    []*node
	enum       *node // EnumEntry: its enumeration
	entryValue int64
	symbolic   string

	// registers
	port      ref
	addresses []ref // <Address> constants and <pAddress> nodes (and inline IntSwissKnife)
	indexes   []indexRef
	length    ref
	bigEndian bool
	signed    bool
	lsb, msb  int // bit numbers as written (MaskedIntReg, StructEntry)
	masked    bool
	cache     cachable
	polled    bool       // has a PollingTime: the device changes it, never cached
	keys      []cacheKey // cache entries this register stored

	// formulas (SwissKnife, Converter)
	vars        []variable
	formula     *formula // SwissKnife Formula
	formulaTo   *formula // Converter FormulaTo
	formulaFrom *formula // Converter FormulaFrom
	formulaErr  error    // a formula that did not parse

	// Port
	portIO  Port
	chunkID string

	// evaluation guard
	active bool
}

// declared is the access mode the description gives n, before looking at
// the nodes it reads or writes through.
func (n *node) declared() accessMode {
	switch {
	case n.imposed == accessRW:
		return n.access
	case n.access == accessRW || n.access == n.imposed:
		return n.imposed
	}
	return accessRO
}

func (n *node) isIntLike() bool {
	switch n.kind {
	case kindInteger, kindIntReg, kindMaskedIntReg, kindStructEntry, kindIntConverter, kindIntSwissKnife, kindEnumeration:
		return true
	}
	return false
}

func (n *node) isFloatLike() bool {
	switch n.kind {
	case kindFloat, kindFloatReg, kindConverter, kindSwissKnife:
		return true
	}
	return false
}

func (n *node) isRegister() bool {
	switch n.kind {
	case kindStringReg, kindRegister, kindIntReg, kindMaskedIntReg, kindStructEntry, kindFloatReg:
		return true
	}
	return false
}

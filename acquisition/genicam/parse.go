package genicam

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"strings"
)

// Parse limits beyond MaxXMLSize.
const (
	maxXMLDepth    = 64      // element nesting
	maxXMLElements = 4 << 20 // elements in one document
	maxNodes       = 1 << 20 // nodes in one NodeMap
)

// elem is one XML element of the device description.
type elem struct {
	name  string
	attrs []xml.Attr
	kids  []*elem
	text  string
}

func (e *elem) attr(name string) string {
	for _, a := range e.attrs {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

// readTree decodes the document into elements, refusing documents that are
// too large or too deep.
func readTree(data []byte) (*elem, error) {
	if len(data) > MaxXMLSize {
		return nil, fmt.Errorf("genicam: %w: XML of %d bytes exceeds %d", ErrTooLarge, len(data), MaxXMLSize)
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")) // UTF-8 byte order mark
	d := xml.NewDecoder(bytes.NewReader(data))
	d.Strict = true
	d.CharsetReader = charsetReader
	var stack []*elem
	var root *elem
	var text strings.Builder
	count := 0
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("genicam: %w: XML: %v", ErrMalformed, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			count++
			if count > maxXMLElements {
				return nil, fmt.Errorf("genicam: %w: more than %d XML elements", ErrTooLarge, maxXMLElements)
			}
			if len(stack) >= maxXMLDepth {
				return nil, fmt.Errorf("genicam: %w: XML nested deeper than %d at <%s>", ErrTooLarge, maxXMLDepth, t.Name.Local)
			}
			e := &elem{name: t.Name.Local, attrs: t.Attr}
			if len(stack) > 0 {
				p := stack[len(stack)-1]
				p.kids = append(p.kids, e)
			} else if root == nil {
				root = e
			}
			stack = append(stack, e)
			text.Reset()
		case xml.CharData:
			if len(stack) > 0 && text.Len() < maxFormulaLen+1 {
				text.Write(t)
			}
		case xml.EndElement:
			e := stack[len(stack)-1]
			if len(e.kids) == 0 {
				e.text = strings.TrimSpace(text.String())
			}
			text.Reset()
			stack = stack[:len(stack)-1]
		}
	}
	if root == nil {
		return nil, fmt.Errorf("genicam: %w: no XML element", ErrMalformed)
	}
	if root.name != "RegisterDescription" {
		return nil, fmt.Errorf("genicam: %w: root element is <%s>, want <RegisterDescription>", ErrMalformed, root.name)
	}
	return root, nil
}

// charsetReader accepts the single-byte encodings device descriptions
// declare besides UTF-8 (ISO-8859-1 and US-ASCII), mapping each byte to the
// code point of the same number.
func charsetReader(label string, in io.Reader) (io.Reader, error) {
	switch strings.ToLower(label) {
	case "iso-8859-1", "iso8859-1", "latin1", "latin-1", "us-ascii", "ascii":
	default:
		return nil, fmt.Errorf("encoding %q is not supported", label)
	}
	b, err := io.ReadAll(in)
	if err != nil {
		return nil, err
	}
	var out strings.Builder
	out.Grow(len(b))
	for _, c := range b {
		out.WriteRune(rune(c))
	}
	return strings.NewReader(out.String()), nil
}

// Parse reads a GenICam device description (a RegisterDescription
// document). Structural faults (bad XML, duplicate node names, sizes over
// the limits) fail Parse. Faults confined to one node (a dangling
// reference, a formula that does not parse) do not: that node's accesses
// fail with the reason, and Problems lists them all.
func Parse(data []byte) (*NodeMap, error) {
	root, err := readTree(data)
	if err != nil {
		return nil, err
	}
	m := &NodeMap{
		nodes:             map[string]*node{},
		invalidates:       map[*node][]*node{},
		ModelName:         root.attr("ModelName"),
		VendorName:        root.attr("VendorName"),
		ToolTip:           root.attr("ToolTip"),
		StandardNameSpace: root.attr("StandardNameSpace"),
		DeviceVersion:     root.attr("Version"),
	}
	if v := root.attr("SchemaMajorVersion"); v != "" {
		m.SchemaVersion = v + "." + root.attr("SchemaMinorVersion") + "." + root.attr("SchemaSubMinorVersion")
	}
	b := &builder{m: m, unsupported: map[string]string{}, entries: map[string]*node{}}
	if err := b.elems(root.kids, 0); err != nil {
		return nil, err
	}
	b.finish()
	return m, nil
}

// Problems lists the faults Parse found in single nodes: references to
// nodes that do not exist or that this package does not evaluate, and
// formulas that do not parse. Accessing an affected feature fails with
// the same reason.
func (m *NodeMap) Problems() []error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]error(nil), m.problems...)
}

// builder turns elements into nodes.
type builder struct {
	m           *NodeMap
	unsupported map[string]string // name -> element of nodes not evaluated
	entries     map[string]*node  // EnumEntry nodes by name
	anon        int
}

var kindByElem = map[string]kind{
	"Category": kindCategory, "Port": kindPort, "Integer": kindInteger, "Float": kindFloat,
	"Enumeration": kindEnumeration, "Command": kindCommand, "Boolean": kindBoolean,
	"String": kindString, "StringReg": kindStringReg, "Register": kindRegister,
	"IntReg": kindIntReg, "MaskedIntReg": kindMaskedIntReg, "FloatReg": kindFloatReg,
	"Converter": kindConverter, "IntConverter": kindIntConverter,
	"SwissKnife": kindSwissKnife, "IntSwissKnife": kindIntSwissKnife,
}

func (b *builder) elems(es []*elem, depth int) error {
	for _, e := range es {
		switch {
		case e.name == "Group":
			if err := b.elems(e.kids, depth+1); err != nil {
				return err
			}
		case e.name == "StructReg":
			if err := b.structReg(e); err != nil {
				return err
			}
		case kindByElem[e.name] != kindInvalid:
			if _, err := b.node(e, e.attr("Name")); err != nil {
				return err
			}
		default:
			if name := e.attr("Name"); name != "" {
				b.unsupported[name] = e.name // ConfRom, TextDesc, IntKey, AdvFeatureLock, SmartFeature, ...
			}
		}
	}
	return nil
}

// add registers a node under its name.
func (b *builder) add(n *node) error {
	if n.name == "" {
		return fmt.Errorf("genicam: %w: <%s> without a Name", ErrMalformed, n.kind)
	}
	if _, dup := b.m.nodes[n.name]; dup {
		return fmt.Errorf("genicam: %w: two nodes named %q", ErrMalformed, n.name)
	}
	if len(b.m.nodes) >= maxNodes {
		return fmt.Errorf("genicam: %w: more than %d nodes", ErrTooLarge, maxNodes)
	}
	b.m.nodes[n.name] = n
	b.m.order = append(b.m.order, n)
	if n.kind == kindPort {
		b.m.ports = append(b.m.ports, n)
	}
	return nil
}

// node builds one node from its element.
func (b *builder) node(e *elem, name string) (*node, error) {
	n := &node{name: name, kind: kindByElem[e.name], onValue: 1}
	if n.isRegister() {
		n.access = accessRO
	}
	if err := b.add(n); err != nil {
		return nil, err
	}
	for _, c := range e.kids {
		if err := b.child(n, c); err != nil {
			return nil, err
		}
	}
	b.formulas(n, e)
	return n, nil
}

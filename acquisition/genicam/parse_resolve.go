package genicam

// formulas parses the formula children of a SwissKnife or Converter once
// all its variables are known. A formula that does not parse is recorded
// on the node (its reads fail) and in Problems.
func (b *builder) formulas(n *node, e *elem) {
	switch n.kind {
	case kindSwissKnife, kindIntSwissKnife, kindConverter, kindIntConverter:
	default:
		return
	}
	conv := n.kind == kindConverter || n.kind == kindIntConverter
	// Expressions may use each other in any order; cycles are found when
	// they are evaluated.
	exprs := map[string]bool{}
	for _, c := range e.kids {
		if c.name == "Expression" {
			exprs[c.attr("Name")] = true
		}
	}
	known := func(s string) bool {
		if exprs[s] {
			return true
		}
		if conv && (s == "TO" || s == "FROM") {
			return true
		}
		for _, v := range n.vars {
			if v.name == s || (len(s) > len(v.name) && s[len(v.name)] == '.' && s[:len(v.name)] == v.name) {
				return true
			}
		}
		return false
	}
	parse := func(c *elem) *formula {
		f, err := parseFormula(c.text, known)
		if err != nil && n.formulaErr == nil {
			n.formulaErr = errf(n.name, err, "<%s>", c.name)
		}
		return f
	}
	for _, c := range e.kids {
		switch c.name {
		case "Formula":
			n.formula = parse(c)
		case "FormulaTo":
			n.formulaTo = parse(c)
		case "FormulaFrom":
			n.formulaFrom = parse(c)
		case "Expression":
			f := parse(c)
			n.vars = append(n.vars, variable{name: c.attr("Name"), expr: f})
		}
	}
	missing := func(what string) {
		if n.formulaErr == nil {
			n.formulaErr = errf(n.name, ErrMalformed, "%s has no <%s>", n.kind, what)
		}
	}
	switch {
	case conv && n.formulaTo == nil:
		missing("FormulaTo")
	case conv && n.formulaFrom == nil:
		missing("FormulaFrom")
	case !conv && n.formula == nil:
		missing("Formula")
	}
}

// refs returns pointers to every reference a node holds.
func (n *node) refs() []*ref {
	rs := []*ref{&n.isImplemented, &n.isAvailable, &n.isLocked, &n.value, &n.min, &n.max,
		&n.inc, &n.valueDefault, &n.pIndex, &n.commandValue, &n.port, &n.length}
	for _, s := range [][]ref{n.invalidators, n.selected, n.features, n.valueCopies, n.addresses} {
		for i := range s {
			rs = append(rs, &s[i])
		}
	}
	for i := range n.indexed {
		rs = append(rs, &n.indexed[i].val)
	}
	for i := range n.indexes {
		rs = append(rs, &n.indexes[i].idx, &n.indexes[i].offset)
	}
	for i := range n.vars {
		rs = append(rs, &n.vars[i].ref)
	}
	return rs
}

// finish resolves every reference, builds the invalidation map and
// records the problems of single nodes.
func (b *builder) finish() {
	m := b.m
	all := append([]*node(nil), m.order...)
	for _, en := range m.order {
		all = append(all, en.entries...)
	}
	for _, n := range all {
		for _, r := range n.refs() {
			if r.name == "" {
				continue
			}
			r.node = m.nodes[r.name]
			if r.node == nil {
				r.node = b.entries[r.name]
			}
			if r.node != nil {
				continue
			}
			if el, ok := b.unsupported[r.name]; ok {
				m.problems = append(m.problems, errf(n.name, ErrUnsupported, "references %s, a <%s>", r.name, el))
			} else {
				m.problems = append(m.problems, errf(n.name, ErrMalformed, "references %s, which does not exist", r.name))
			}
		}
		if n.formulaErr != nil {
			m.problems = append(m.problems, n.formulaErr)
		}
		for _, inv := range n.invalidators {
			if inv.node != nil {
				m.invalidates[inv.node] = append(m.invalidates[inv.node], n)
			}
		}
		if n.isRegister() && !n.port.set {
			n.port = defaultPort(m)
		}
	}
}

// defaultPort is the port of registers without pPort: the Port named
// Device, else the only port that is not a chunk port.
func defaultPort(m *NodeMap) ref {
	if d := m.nodes["Device"]; d != nil && d.kind == kindPort {
		return ref{name: d.name, node: d, set: true}
	}
	var only *node
	for _, p := range m.ports {
		if p.chunkID == "" {
			if only != nil {
				return ref{}
			}
			only = p
		}
	}
	if only == nil {
		return ref{}
	}
	return ref{name: only.name, node: only, set: true}
}

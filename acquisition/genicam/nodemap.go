package genicam

import (
	"errors"
	"sync"
)

// NodeMap is a parsed device description: the node graph, its register
// caches and the Ports its registers reach. All methods are safe for
// concurrent use; they serialise on one mutex, so a slow Port blocks other
// callers of the same NodeMap.
type NodeMap struct {
	mu    sync.Mutex
	nodes map[string]*node
	order []*node // document order
	ports []*node
	// invalidates maps a node to the register nodes whose caches a write to
	// it invalidates (their pInvalidator lists it).
	invalidates map[*node][]*node
	depth       int // current evaluation depth (guarded by mu)
	steps       int // node evaluations of the current access
	problems    []error
	cache       map[cacheKey][]byte // register contents by port, address, length

	// Attributes of the RegisterDescription root.
	ModelName, VendorName, ToolTip, StandardNameSpace string
	SchemaVersion, DeviceVersion                      string
}

// FeatureInfo describes one node for listings (`webinspect cameras`). It is
// static: it says what the description declares, not what the device
// currently allows (use Access for that).
type FeatureInfo struct {
	Name        string
	Kind        string   // element name: Integer, Float, Enumeration, Command, Boolean, String, IntReg, ..., Category
	Category    string   // the Category listing it; "" if none does
	DisplayName string   // may be empty
	Description string   // ToolTip or Description; may be empty
	Unit        string   // may be empty
	Visibility  string   // Beginner, Expert, Guru or Invisible; "" means Beginner
	Access      string   // declared access mode: RO, WO or RW
	Entries     []string // enumeration entry names, in document order
	Selected    []string // features this selector selects (pSelected)
}

// Connect attaches p to every Port node of the description that is not a
// chunk port (has no ChunkID). It replaces a previous port and drops every
// register cache.
func (m *NodeMap) Connect(p Port) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, n := range m.ports {
		if n.chunkID == "" {
			n.portIO = p
		}
	}
	m.invalidateAll()
}

// ConnectPort attaches p to the Port node called name (e.g. a chunk port)
// and drops every register cache.
func (m *NodeMap) ConnectPort(name string, p Port) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := m.nodes[name]
	if n == nil || n.kind != kindPort {
		return &FeatureError{Feature: name, Op: "connect", Err: ErrNotFound, Detail: "no Port node of that name"}
	}
	n.portIO = p
	m.invalidateAll()
	return nil
}

// Invalidate drops every register cache, so the next reads go to the device.
func (m *NodeMap) Invalidate() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.invalidateAll()
}

// Has reports whether a node called name exists.
func (m *NodeMap) Has(name string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.nodes[name] != nil
}

// access runs f on the named node under the lock and wraps its error.
func (m *NodeMap) access(op, name string, f func(n *node) error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.depth, m.steps = 0, 0
	n := m.nodes[name]
	if n == nil {
		return &FeatureError{Feature: name, Op: op, Err: ErrNotFound}
	}
	if err := f(n); err != nil {
		var fe *FeatureError
		if errors.As(err, &fe) {
			return err
		}
		return &FeatureError{Feature: name, Op: op, Err: err}
	}
	return nil
}

// Access returns a feature's access mode now: "RW", "RO", "WO", "NA" (not
// available) or "NI" (not implemented). A locked feature is "RO".
func (m *NodeMap) Access(name string) (mode string, err error) {
	err = m.access("access", name, func(n *node) error {
		mode = "RW"
		if err := m.checkPresent(n); err != nil {
			switch {
			case errors.Is(err, ErrNotImplemented):
				mode = "NI"
				return nil
			case errors.Is(err, ErrNotAvailable):
				mode = "NA"
				return nil
			}
			return err
		}
		a, err := m.effAccess(n)
		if err != nil {
			return err
		}
		mode = a.String()
		locked, err := m.refBool(n, &n.isLocked, "pIsLocked", false)
		if locked && a == accessRW {
			mode = "RO"
		}
		return err
	})
	return mode, err
}

// IntRange returns the Min, Max and Inc an integer feature accepts now.
func (m *NodeMap) IntRange(name string) (lo, hi, inc int64, err error) {
	err = m.access("range", name, func(n *node) error {
		if !n.isIntLike() || n.kind == kindEnumeration {
			return errf(n.name, ErrWrongType, "%s is a %s, not an integer", n.name, n.kind)
		}
		lo, hi, inc, err = m.intRange(n)
		return err
	})
	return lo, hi, inc, err
}

// FloatRange returns the Min and Max a numeric feature accepts now.
func (m *NodeMap) FloatRange(name string) (lo, hi float64, err error) {
	err = m.access("range", name, func(n *node) error {
		if !n.isFloatLike() && !n.isIntLike() {
			return errf(n.name, ErrWrongType, "%s is a %s, not a number", n.name, n.kind)
		}
		lo, hi, _, err = m.floatRange(n)
		return err
	})
	return lo, hi, err
}

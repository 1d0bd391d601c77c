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

package genicam

const maxDepth = 64


// Parse reads a GenICam device description.
func Parse(xml []byte) (*NodeMap, error) { return nil, ErrUnsupported }

func (m *NodeMap) invalidateAll()                           {}
func (m *NodeMap) checkReadable(n *node) error              { return ErrUnsupported }
func (m *NodeMap) checkWritable(n *node) error              { return ErrUnsupported }
func (m *NodeMap) checkIntRange(n *node, v int64) error     { return ErrUnsupported }
func (m *NodeMap) checkFloatRange(n *node, v float64) error { return ErrUnsupported }
func (m *NodeMap) getInt(n *node) (int64, error)            { return 0, ErrUnsupported }
func (m *NodeMap) setInt(n *node, v int64) error            { return ErrUnsupported }
func (m *NodeMap) getFloat(n *node) (float64, error)        { return 0, ErrUnsupported }
func (m *NodeMap) setFloat(n *node, v float64) error        { return ErrUnsupported }
func floatToInt(n *node, v float64) (int64, error)          { return 0, ErrUnsupported }
func (m *NodeMap) getEnum(n *node) (*node, error)           { return nil, ErrUnsupported }
func (m *NodeMap) setEnum(n *node, e string) error          { return ErrUnsupported }
func (m *NodeMap) getBool(n *node) (bool, error)            { return false, ErrUnsupported }
func (m *NodeMap) setBool(n *node, v bool) error            { return ErrUnsupported }
func (m *NodeMap) getString(n *node) (string, error)        { return "", ErrUnsupported }
func (m *NodeMap) setString(n *node, v string) error        { return ErrUnsupported }
func (m *NodeMap) execute(n *node) error                    { return ErrUnsupported }
func (m *NodeMap) readReg(n *node) ([]byte, error)          { return nil, ErrUnsupported }
func (m *NodeMap) writeReg(n *node, b []byte) error         { return ErrUnsupported }

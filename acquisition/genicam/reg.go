package genicam

import (
	"encoding/binary"
	"fmt"
	"math"
)

// cacheKey names one register read: the Port node, address and length.
type cacheKey struct {
	port   *node
	addr   uint64
	length int
}

// maxCacheKeys bounds the addresses one register node remembers having
// cached (a register indexed by a selector has one per selector value).
const maxCacheKeys = 64

// regLocation computes where a register is: its Port node, address and
// length, checking the length against the node kind and the limits.
func (m *NodeMap) regLocation(n *node) (cacheKey, error) {
	var k cacheKey
	if n.port.node == nil || n.port.node.kind != kindPort {
		return k, missing(n, &n.port, "pPort")
	}
	k.port = n.port.node
	if k.port.portIO == nil {
		return k, errf(n.name, ErrNotConnected, "port %s of %s", k.port.name, n.name)
	}
	length, err := m.refInt(n, &n.length, "Length")
	if err != nil {
		return k, err
	}
	if err := checkLength(n, length); err != nil {
		return k, err
	}
	k.length = int(length)
	for i := range n.addresses {
		a, err := m.refInt(n, &n.addresses[i], "Address")
		if err != nil {
			return k, err
		}
		k.addr += uint64(a)
	}
	for i := range n.indexes {
		ix := &n.indexes[i]
		idx, err := m.refInt(n, &ix.idx, "pIndex")
		if err != nil {
			return k, err
		}
		off := length
		if ix.offset.set {
			if off, err = m.refInt(n, &ix.offset, "pIndex Offset"); err != nil {
				return k, err
			}
		}
		k.addr += uint64(idx * off)
	}
	return k, nil
}

func checkLength(n *node, length int64) error {
	switch {
	case length <= 0:
		return errf(n.name, ErrMalformed, "register length %d", length)
	case length > MaxRegisterLength:
		return errf(n.name, ErrTooLarge, "register length %d exceeds %d", length, MaxRegisterLength)
	case (n.kind == kindIntReg || n.kind == kindMaskedIntReg || n.kind == kindStructEntry) && length > 8:
		return errf(n.name, ErrMalformed, "%s of %d bytes; at most 8", n.kind, length)
	case n.kind == kindFloatReg && length != 4 && length != 8:
		return errf(n.name, ErrMalformed, "FloatReg of %d bytes; want 4 or 8", length)
	}
	return nil
}

// cachable reports whether n's reads may be served from the cache. A
// register the description polls (PollingTime) changes by itself and is
// never cached.
func (n *node) cachable() bool { return n.cache != cacheNone && !n.polled }

// readReg returns the bytes of a register, from the cache when allowed.
// The slice may be the cache's own: callers must not modify it.
func (m *NodeMap) readReg(n *node) ([]byte, error) {
	k, err := m.regLocation(n)
	if err != nil {
		return nil, err
	}
	if n.declared() == accessWO {
		return nil, errf(n.name, ErrWriteOnly, "register %s is write-only", n.name)
	}
	if n.cachable() {
		if b, ok := m.cache[k]; ok {
			return b, nil
		}
	}
	b := make([]byte, k.length)
	if err := k.port.portIO.ReadMem(k.addr, b); err != nil {
		return nil, fmt.Errorf("%s: reading %d bytes at 0x%x through %s: %w", n.name, k.length, k.addr, k.port.name, err)
	}
	if n.cachable() {
		m.remember(n, k, b)
	}
	return b, nil
}

// remember stores b as the cached contents at k, on behalf of n.
func (m *NodeMap) remember(n *node, k cacheKey, b []byte) {
	if m.cache == nil {
		m.cache = map[cacheKey][]byte{}
	}
	m.cache[k] = b
	for _, have := range n.keys {
		if have == k {
			return
		}
	}
	if len(n.keys) >= maxCacheKeys {
		m.forget(n)
	}
	n.keys = append(n.keys, k)
}

// forget drops every cache entry n has stored.
func (m *NodeMap) forget(n *node) {
	for _, k := range n.keys {
		delete(m.cache, k)
	}
	n.keys = n.keys[:0]
}

// writeReg writes the bytes of a register and updates the cache as its
// Cachable mode says. Every cached range that overlaps the write is
// dropped first, so registers sharing bytes never disagree.
func (m *NodeMap) writeReg(n *node, b []byte) error {
	k, err := m.regLocation(n)
	if err != nil {
		return err
	}
	if len(b) != k.length {
		return errf(n.name, ErrOutOfRange, "%d bytes for a register of %d", len(b), k.length)
	}
	if n.declared() == accessRO {
		return errf(n.name, ErrReadOnly, "register %s is read-only", n.name)
	}
	for c := range m.cache {
		if c.port == k.port && c.addr < k.addr+uint64(k.length) && k.addr < c.addr+uint64(c.length) {
			delete(m.cache, c)
		}
	}
	if err := k.port.portIO.WriteMem(k.addr, b); err != nil {
		return fmt.Errorf("%s: writing %d bytes at 0x%x through %s: %w", n.name, k.length, k.addr, k.port.name, err)
	}
	if n.cache == cacheWriteThrough && n.cachable() {
		m.remember(n, k, append([]byte(nil), b...))
	}
	return nil
}

// invalidateAll drops the whole register cache.
func (m *NodeMap) invalidateAll() {
	clear(m.cache)
	for _, n := range m.order {
		n.keys = n.keys[:0]
	}
}

// bitField returns the shift and width of n's bits in a register of
// length bytes. For BigEndian registers GenICam numbers bits from the most
// significant one (bit 0 is the MSB).
func bitField(n *node, length int) (shift, width uint, err error) {
	bits := 8 * length
	if !n.masked {
		return 0, uint(bits), nil
	}
	lo, hi := n.lsb, n.msb
	if n.bigEndian {
		lo, hi = bits-1-n.lsb, bits-1-n.msb
	}
	if lo > hi {
		lo, hi = hi, lo
	}
	if lo < 0 || hi >= bits {
		return 0, 0, errf(n.name, ErrMalformed, "bits %d..%d outside a register of %d bits", n.lsb, n.msb, bits)
	}
	return uint(lo), uint(hi - lo + 1), nil
}

func decodeUint(b []byte, big bool) uint64 {
	var buf [8]byte
	if big {
		copy(buf[8-len(b):], b)
		return binary.BigEndian.Uint64(buf[:])
	}
	copy(buf[:], b)
	return binary.LittleEndian.Uint64(buf[:])
}

func encodeUint(b []byte, v uint64, big bool) {
	var buf [8]byte
	if big {
		binary.BigEndian.PutUint64(buf[:], v)
		copy(b, buf[8-len(b):])
		return
	}
	binary.LittleEndian.PutUint64(buf[:], v)
	copy(b, buf[:len(b)])
}

// fieldRange is the integer range a field of width bits holds.
func fieldRange(width uint, signed bool) (lo, hi int64) {
	switch {
	case signed:
		return -1 << (width - 1), 1<<(width-1) - 1
	case width >= 64:
		return 0, math.MaxInt64
	}
	return 0, 1<<width - 1
}

// regInt decodes an IntReg, MaskedIntReg or StructEntry.
func (m *NodeMap) regInt(n *node) (int64, error) {
	b, err := m.readReg(n)
	if err != nil {
		return 0, err
	}
	shift, width, err := bitField(n, len(b))
	if err != nil {
		return 0, err
	}
	u := decodeUint(b, n.bigEndian) >> shift
	if width < 64 {
		u &= 1<<width - 1
		if n.signed && u&(1<<(width-1)) != 0 {
			u |= ^uint64(0) << width
		}
	}
	return int64(u), nil
}

// setRegInt encodes v into its register; a masked field is written by
// read-modify-write (from the cache, or zeros, when the register is WO).
func (m *NodeMap) setRegInt(n *node, v int64) error {
	k, err := m.regLocation(n)
	if err != nil {
		return err
	}
	shift, width, err := bitField(n, k.length)
	if err != nil {
		return err
	}
	if lo, hi := fieldRange(width, n.signed); v < lo || v > hi {
		return errf(n.name, ErrOutOfRange, "%d does not fit %d bits (%d..%d)", v, width, lo, hi)
	}
	b := make([]byte, k.length)
	if width < uint(8*k.length) {
		if n.declared() != accessWO {
			old, err := m.readReg(n)
			if err != nil {
				return err
			}
			copy(b, old)
		} else if old, ok := m.cache[k]; ok {
			copy(b, old)
		}
		mask := (uint64(1)<<width - 1) << shift
		u := decodeUint(b, n.bigEndian)&^mask | uint64(v)<<shift&mask
		encodeUint(b, u, n.bigEndian)
	} else {
		encodeUint(b, uint64(v), n.bigEndian)
	}
	return m.writeReg(n, b)
}

func (m *NodeMap) regFloat(n *node) (float64, error) {
	b, err := m.readReg(n)
	if err != nil {
		return 0, err
	}
	u := decodeUint(b, n.bigEndian)
	if len(b) == 4 {
		return float64(math.Float32frombits(uint32(u))), nil
	}
	return math.Float64frombits(u), nil
}

func (m *NodeMap) setRegFloat(n *node, v float64) error {
	k, err := m.regLocation(n)
	if err != nil {
		return err
	}
	b := make([]byte, k.length)
	if k.length == 4 {
		if math.Abs(v) > math.MaxFloat32 && !math.IsInf(v, 0) {
			return errf(n.name, ErrOutOfRange, "%v does not fit a 32-bit float", v)
		}
		encodeUint(b, uint64(math.Float32bits(float32(v))), n.bigEndian)
	} else {
		encodeUint(b, math.Float64bits(v), n.bigEndian)
	}
	return m.writeReg(n, b)
}

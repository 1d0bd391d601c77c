package genicam

import (
	"encoding/binary"
	"math"
	"os"
	"testing"
)

func be32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

// testCamera is testdata/linescan.xml over an emulated register space.
type testCamera struct {
	m *NodeMap
	p *memPort
	// activation holds TriggerActivationReg's value per trigger selector;
	// the emulated device swaps it in when the selector changes.
	activation [2]uint32
}

func str(s string, n int) []byte {
	b := make([]byte, n)
	copy(b, s)
	return b
}

func newTestCamera(t testing.TB) *testCamera {
	t.Helper()
	xml, err := os.ReadFile("testdata/linescan.xml")
	if err != nil {
		t.Fatal(err)
	}
	m, err := Parse(xml)
	if err != nil {
		t.Fatal(err)
	}
	if probs := m.Problems(); len(probs) > 0 {
		t.Fatalf("linescan.xml has problems: %v", probs)
	}
	p := newMemPort(t)
	c := &testCamera{m: m, p: p, activation: [2]uint32{0, 1}}
	p.add(0x48, str("WebInspect", 32), "RO")
	p.add(0x68, str("LS4096 emulated", 32), "RO")
	p.add(0xE8, make([]byte, 16), "RW")
	p.add(0x0D04, be32(0x8000_05DC), "RW") // fire-test-packet flag + 1500 bytes
	regs := []struct {
		addr uint64
		v    uint32
		mode string
	}{
		{0x10000, 1, "RW"}, {0x10004, 4096, "RO"}, {0x10008, uint32(int32(45*256 + 128)), "RO"}, {0x1000C, 0, "WO"},
		{0x10100, 4096, "RW"}, {0x10104, 256, "RW"}, {0x10108, 0, "RW"}, {0x1010C, 0x01080001, "RW"},
		{0x10110, 1, "RO"}, {0x10114, 0, "RW"},
		{0x10200, 0, "RW"}, {0x10204, 0, "WO"}, {0x10208, math.Float32bits(10000), "RW"}, {0x1020C, 500, "RW"},
		{0x10210, 0, "RW"}, {0x10220, 1, "RW"}, {0x10224, 0, "RW"}, {0x10230, 2, "RW"}, {0x10234, 0, "RW"},
		{0x10240, 0, "RW"}, {0x10244, 0, "WO"},
		{0x10300, 4, "RW"}, {0x10400, 0, "RW"},
		{0x10410, 1, "RW"}, {0x10414, 0, "RW"}, {0x10418, 0, "RW"}, {0x1041C, 0, "RW"},
		{0x10500, 0, "RW"}, {0x10518, 0, "RW"}, {0x1051C, 0, "RW"}, {0x10520, 0, "WO"},
	}
	for _, r := range regs {
		p.add(r.addr, be32(r.v), r.mode)
	}
	p.add(0x10308, binary.BigEndian.AppendUint64(nil, uint64(1)<<40), "RO")
	p.add(0x10508, make([]byte, 8), "RW")
	p.add(0x10510, make([]byte, 8), "RW")
	p.onWrite = func(addr uint64, b []byte) {
		switch addr {
		case 0x10240: // the register holds the selected trigger's activation
			sel := binary.BigEndian.Uint32(p.peek(0x10210, 4)) & 1
			c.activation[sel] = binary.BigEndian.Uint32(b)
		case 0x10210:
			p.poke(0x10240, be32(c.activation[binary.BigEndian.Uint32(b)&1]))
		}
	}
	m.Connect(p)
	return c
}

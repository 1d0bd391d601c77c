package genicam

import (
	"os"
	"testing"
)

// BenchmarkParse parses testdata/linescan.xml.
func BenchmarkParse(b *testing.B) {
	xml, err := os.ReadFile("testdata/linescan.xml")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(xml)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(xml); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRead reads features of the line-scan test camera through the
// in-memory port: cached (registers served from the cache) and uncached
// (the cache dropped before every read, so every register is read from
// the port; a real transport adds its round trip per register).
func BenchmarkRead(b *testing.B) {
	for _, f := range []struct {
		name string
		get  func(m *NodeMap) error
	}{
		{"Width", func(m *NodeMap) error { _, err := m.Int("Width"); return err }},
		{"PixelFormat", func(m *NodeMap) error { _, err := m.Enum("PixelFormat"); return err }},
		{"ExposureTime", func(m *NodeMap) error { _, err := m.Float("ExposureTime"); return err }},
		{"PayloadSize", func(m *NodeMap) error { _, err := m.Int("PayloadSize"); return err }},
		{"TriggerMode", func(m *NodeMap) error { _, err := m.Enum("TriggerMode"); return err }},
	} {
		for _, cached := range []bool{true, false} {
			b.Run("feature="+f.name+"/cached="+map[bool]string{true: "yes", false: "no"}[cached], func(b *testing.B) {
				c := newTestCamera(b)
				if err := f.get(c.m); err != nil { // check once before timing
					b.Fatal(err)
				}
				reads := c.p.reads
				b.ReportAllocs()
				for b.Loop() {
					if !cached {
						c.m.Invalidate()
					}
					if err := f.get(c.m); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(c.p.reads-reads)/float64(b.N), "portreads/op")
			})
		}
	}
}

// BenchmarkWrite writes Width (range checks through WidthMax, a register
// write, the cache update).
func BenchmarkWrite(b *testing.B) {
	c := newTestCamera(b)
	b.ReportAllocs()
	v := int64(16)
	for b.Loop() {
		if err := c.m.SetInt("Width", v); err != nil {
			b.Fatal(err)
		}
		v = 16 + (v+16)%4096
	}
}

// BenchmarkFormula evaluates a parsed formula with integer semantics.
func BenchmarkFormula(b *testing.B) {
	f, err := parseFormula("(W * H * ((PF >> 16) & 0xFF) + 7) / 8 + (C ? 40 : 0)", func(s string) bool { return len(s) <= 2 })
	if err != nil {
		b.Fatal(err)
	}
	vals := []int64{4096, 256, 0x010C0047, 1}
	get := func(s int) (int64, error) { return vals[s], nil }
	b.ReportAllocs()
	for b.Loop() {
		if v, err := f.evalInt(get); err != nil || v != (4096*256*12+7)/8+40 {
			b.Fatal(v, err)
		}
	}
}

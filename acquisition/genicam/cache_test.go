package genicam

import (
	"encoding/binary"
	"testing"
)

func TestCaching(t *testing.T) {
	c := newTestCamera(t)
	m, p := c.m, c.p
	if _, err := m.Int("Width"); err != nil {
		t.Fatal(err)
	}
	reads := p.reads
	for range 3 {
		if v, _ := m.Int("Width"); v != 4096 {
			t.Fatalf("Width %d", v)
		}
	}
	if p.reads != reads {
		t.Errorf("cached Width read the device %d times", p.reads-reads)
	}
	// WriteThrough: the written value is served without reading back.
	if err := m.SetInt("Width", 1024); err != nil {
		t.Fatal(err)
	}
	reads = p.reads
	if v, _ := m.Int("Width"); v != 1024 || p.reads != reads {
		t.Errorf("after write: Width %d, %d reads", v, p.reads-reads)
	}
	// A device-side change is invisible until the cache is dropped.
	p.poke(0x10100, be32(2048))
	if v, _ := m.Int("Width"); v != 1024 {
		t.Errorf("cached Width changed to %d without a read", v)
	}
	m.Invalidate()
	if v, _ := m.Int("Width"); v != 2048 {
		t.Errorf("Width after Invalidate %d", v)
	}
	// NoCache and PollingTime registers are read every time.
	for _, name := range []string{"EncoderValue", "DeviceTemperature"} {
		reads = p.reads
		_, _ = m.Float(name)
		_, _ = m.Float(name)
		if p.reads-reads != 2 {
			t.Errorf("%s: %d reads for 2 gets; want 2", name, p.reads-reads)
		}
	}
	p.poke(0x10308, binary.BigEndian.AppendUint64(nil, 99))
	if v, _ := m.Int("EncoderValue"); v != 99 {
		t.Errorf("EncoderValue %d", v)
	}
	// pInvalidator: writing ExposureTimeRaw drops the line rate register's
	// cache (the device clamps the rate to the new exposure).
	if _, err := m.Float("AcquisitionLineRate"); err != nil {
		t.Fatal(err)
	}
	p.onWrite = func(addr uint64, b []byte) {
		if addr == 0x1020C {
			p.poke(0x10208, be32(0x45bb8000)) // 6000.0
		}
	}
	if err := m.SetFloat("ExposureTime", 100); err != nil {
		t.Fatal(err)
	}
	if v, _ := m.Float("AcquisitionLineRate"); v != 6000 {
		t.Errorf("line rate after exposure change %v, want 6000 (pInvalidator)", v)
	}
}

func TestSelectors(t *testing.T) {
	c := newTestCamera(t)
	m := c.m
	// TriggerMode/TriggerSource: one register per selector value.
	if v, _ := m.Enum("TriggerMode"); v != "On" {
		t.Fatalf("LineStart TriggerMode %s", v)
	}
	if err := m.SetEnum("TriggerSelector", "FrameStart"); err != nil {
		t.Fatal(err)
	}
	if v, _ := m.Enum("TriggerMode"); v != "Off" {
		t.Errorf("FrameStart TriggerMode %s", v)
	}
	if v, _ := m.Enum("TriggerSource"); v != "Software" {
		t.Errorf("FrameStart TriggerSource %s", v)
	}
	if err := m.SetEnum("TriggerMode", "On"); err != nil {
		t.Fatal(err)
	}
	if got := be32u(c.p.peek(0x10224, 4)); got != 1 {
		t.Errorf("FrameStart TriggerMode register %d", got)
	}
	if got := be32u(c.p.peek(0x10220, 4)); got != 1 {
		t.Errorf("LineStart TriggerMode register changed to %d", got)
	}
	// Now TriggerMode=On and TriggerSource=Software: TriggerSoftware is available.
	if err := m.Execute("TriggerSoftware"); err != nil {
		t.Errorf("TriggerSoftware: %v", err)
	}
	if v, _ := m.Int("TestIndexed"); v != 0 { // pValueIndexed Index=1 -> TestRegister
		t.Errorf("TestIndexed at FrameStart %d", v)
	}
	// TriggerActivation: one multiplexed register, invalidated by the selector.
	if err := m.SetEnum("TriggerActivation", "RisingEdge"); err != nil {
		t.Fatal(err)
	}
	if err := m.SetEnum("TriggerSelector", "LineStart"); err != nil {
		t.Fatal(err)
	}
	if v, _ := m.Enum("TriggerActivation"); v != "RisingEdge" {
		t.Errorf("LineStart TriggerActivation %s", v)
	}
	if err := m.SetEnum("TriggerActivation", "FallingEdge"); err != nil {
		t.Fatal(err)
	}
	if err := m.SetEnum("TriggerSelector", "FrameStart"); err != nil {
		t.Fatal(err)
	}
	if v, _ := m.Enum("TriggerActivation"); v != "RisingEdge" {
		t.Errorf("FrameStart TriggerActivation %s after LineStart's was set to FallingEdge", v)
	}
	if err := m.SetEnum("TriggerSelector", "LineStart"); err != nil {
		t.Fatal(err)
	}
	if v, _ := m.Enum("TriggerActivation"); v != "FallingEdge" {
		t.Errorf("LineStart TriggerActivation %s", v)
	}
	if v, _ := m.Int("TestIndexed"); v != 100 {
		t.Errorf("TestIndexed at LineStart %d", v)
	}
	// ChunkSelector (an in-memory selector) with an indexed register.
	for _, sel := range []string{"Timestamp", "EncoderValue"} {
		if err := m.SetEnum("ChunkSelector", sel); err != nil {
			t.Fatal(err)
		}
		if err := m.SetBool("ChunkEnable", true); err != nil {
			t.Fatalf("ChunkEnable[%s]: %v", sel, err)
		}
	}
	if got := []uint32{be32u(c.p.peek(0x10410, 4)), be32u(c.p.peek(0x10414, 4)), be32u(c.p.peek(0x10418, 4)), be32u(c.p.peek(0x1041C, 4))}; got[1] != 1 || got[2] != 1 || got[3] != 0 {
		t.Errorf("chunk enable registers %v", got)
	}
	if err := m.SetEnum("ChunkSelector", "LineCounter"); err != nil {
		t.Fatal(err)
	}
	if v, _ := m.Bool("ChunkEnable"); v {
		t.Error("ChunkEnable[LineCounter] true")
	}
}

func TestChunkPort(t *testing.T) {
	c := newTestCamera(t)
	if _, err := c.m.Int("ChunkEncoderValue"); err == nil {
		t.Fatal("chunk port read without a chunk port connected")
	}
	chunk := newMemPort(t)
	chunk.add(0, append(binary.BigEndian.AppendUint64(nil, uint64(0xFFFFFFFFFFFFFFF6)), binary.BigEndian.AppendUint64(nil, 123456789)...), "RO")
	if err := c.m.ConnectPort("ChunkPort", chunk); err != nil {
		t.Fatal(err)
	}
	if v, err := c.m.Int("ChunkEncoderValue"); err != nil || v != -10 {
		t.Errorf("ChunkEncoderValue %d %v", v, err)
	}
	if v, err := c.m.Int("ChunkTimestamp"); err != nil || v != 123456789 {
		t.Errorf("ChunkTimestamp %d %v", v, err)
	}
	if err := c.m.ConnectPort("Width", chunk); err == nil {
		t.Error("ConnectPort to a non-port node")
	}
}

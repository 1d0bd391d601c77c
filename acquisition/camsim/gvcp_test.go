package camsim

import (
	"bytes"
	"encoding/binary"
	"math"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/webinspect/webinspect/acquisition/genicam"
	"github.com/webinspect/webinspect/acquisition/gige/wire"
)

func smallOptions() Options {
	o := DefaultOptions()
	o.Listen = "127.0.0.1:0"
	o.Width = 512
	o.LinesPerFrame = 64
	o.LineRate = 20000
	o.Web.LengthM = 50
	o.Web.Defects = 5
	return o
}

func TestDiscoveryUnicast(t *testing.T) {
	e := startEmulator(t, smallOptions())
	c := dialGVCP(t, e.Addrs()[0])
	ack, p := c.do(func(id uint16) []byte { return wire.AppendDiscoveryCmd(nil, id, false) })
	if ack.Ack != wire.AckDiscovery || ack.Status != wire.StatusSuccess {
		t.Fatalf("ack %+v", ack)
	}
	d, err := wire.ParseDiscoveryAck(p)
	if err != nil {
		t.Fatal(err)
	}
	if d.Model != "WI-LS-Sim" || d.Manufacturer != "webinspect" || d.Serial != "camsim-0" || d.IP != e.Addrs()[0].Addr() {
		t.Errorf("discovery: %+v", d)
	}
	if d.DeviceMode&wire.DeviceModeBigEndian == 0 {
		t.Errorf("device mode 0x%x: want big-endian", d.DeviceMode)
	}
}

// TestDiscoveryBroadcast sends DISCOVERY to 255.255.255.255 on the
// camera's port from a loopback socket, as Aravis does, and expects a
// unicast answer from the camera's own address.
func TestDiscoveryBroadcast(t *testing.T) {
	e := startEmulator(t, smallOptions())
	if len(e.cams[0].srv.bcasts) == 0 {
		t.Skip("no broadcast listener on this machine")
	}
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	raw, _ := conn.SyscallConn()
	raw.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_BROADCAST, 1) })
	dst := &net.UDPAddr{IP: net.IPv4bcast, Port: int(e.Addrs()[0].Port())}
	if _, err := conn.WriteToUDP(wire.AppendDiscoveryCmd(nil, 0xffff, false), dst); err != nil {
		t.Skipf("broadcast send refused here: %v", err)
	}
	conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 1024)
	n, from, err := conn.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatalf("no discovery answer to a broadcast: %v", err)
	}
	ack, p, err := wire.ParseAck(buf[:n])
	if err != nil || ack.Ack != wire.AckDiscovery || ack.AckID != 0xffff {
		t.Fatalf("answer %+v %v", ack, err)
	}
	if from != e.Addrs()[0] {
		t.Errorf("answer from %v, want the camera's address %v", from, e.Addrs()[0])
	}
	if d, _ := wire.ParseDiscoveryAck(p); d.Serial != "camsim-0" {
		t.Errorf("serial %q", d.Serial)
	}
}

func TestRegisterRoundTrip(t *testing.T) {
	e := startEmulator(t, smallOptions())
	c := dialGVCP(t, e.Addrs()[0])
	c.mustWrite(regTest, 0xdeadbeef)
	if v, st := c.readReg(regTest); st != wire.StatusSuccess || v != 0xdeadbeef {
		t.Fatalf("TestRegister = 0x%x (%v)", v, st)
	}
	c.mustWrite(regWidth, 256)
	if v, _ := c.readReg(regWidth); v != 256 {
		t.Errorf("Width = %d after writing 256", v)
	}
	for _, tc := range []struct {
		name string
		addr uint32
		v    uint32
		want wire.Status
	}{
		{"Width not a multiple of 8", regWidth, 100, wire.StatusInvalidParameter},
		{"Width beyond the sensor", regWidth, 1024, wire.StatusInvalidParameter},
		{"unknown pixel format", regPixelFormat, 0x01080099, wire.StatusInvalidParameter},
		{"read-only SensorWidth", regSensorWidth, 8, wire.StatusWriteProtect},
		{"EncoderDivider other than the web's", regEncoderDivider, 7, wire.StatusInvalidParameter},
		{"LineStart from software", regTrigBase + 4, srcSoftware, wire.StatusInvalidParameter},
		{"unaligned", regTest + 1, 1, wire.StatusBadAlignment},
		{"unmapped", 0x20000, 1, wire.StatusInvalidAddress},
		{"packet size too small", wire.RegSCPS0, 100, wire.StatusInvalidParameter},
	} {
		if st := c.writeReg(tc.addr, tc.v); st != tc.want {
			t.Errorf("%s: status %v, want %v", tc.name, st, tc.want)
		}
	}
	if _, st := c.readReg(0x20000); st != wire.StatusInvalidAddress {
		t.Errorf("read unmapped: %v", st)
	}
	// Selector-indexed registers keep one value per selector.
	c.mustWrite(regTrigSelector, selFrameStart)
	c.mustWrite(regTrigBase+0x10, 1)
	if v, _ := c.readReg(regTrigBase); v != 1 {
		t.Errorf("LineStart TriggerMode = %d, want its power-on On", v)
	}
}

func TestMemoryRoundTrip(t *testing.T) {
	e := startEmulator(t, smallOptions())
	c := dialGVCP(t, e.Addrs()[0])
	name := []byte("line-left\x00\x00\x00\x00\x00\x00\x00")
	if st := c.writeMem(wire.RegUserName, name); st != wire.StatusSuccess {
		t.Fatal(st)
	}
	got, st := c.readMem(wire.RegUserName, 16)
	if st != wire.StatusSuccess || !bytes.Equal(got, name) {
		t.Fatalf("user name %q (%v)", got, st)
	}
	rate := binary.BigEndian.AppendUint64(nil, math.Float64bits(12345.5))
	if st := c.writeMem(regLineRate, rate); st != wire.StatusSuccess {
		t.Fatalf("write AcquisitionLineRate: %v", st)
	}
	got, _ = c.readMem(regLineRate, 8)
	if v := math.Float64frombits(binary.BigEndian.Uint64(got)); v != 12345.5 {
		t.Errorf("AcquisitionLineRate = %v", v)
	}
	bad := binary.BigEndian.AppendUint64(nil, math.Float64bits(1e9))
	if st := c.writeMem(regLineRate, bad); st != wire.StatusInvalidParameter {
		t.Errorf("line rate 1e9: %v, want invalid parameter", st)
	}
	// A READMEM of 6 bytes (the encoder refuses to build one).
	ack, _ := c.do(func(id uint16) []byte {
		p := binary.BigEndian.AppendUint32(nil, regTest)
		p = binary.BigEndian.AppendUint32(p, 6)
		return wire.AppendCmd(nil, wire.Cmd{Flags: wire.FlagAckRequired, Command: wire.CmdReadMem, ReqID: id}, p)
	})
	if ack.Status != wire.StatusBadAlignment {
		t.Errorf("READMEM of 6 bytes: %v", ack.Status)
	}
	// The first URL points at the XML, which reads back as a zip.
	u, _ := c.readMem(wire.RegFirstURL, wire.URLSize)
	url := wire.CString(u)
	if !strings.HasPrefix(url, "Local:webinspect-linescan.zip;100000;") {
		t.Fatalf("first URL %q", url)
	}
}

// TestGenICamThroughGVCP fetches the XML with the project's GenICam
// package over this server and drives features by SFNC name.
func TestGenICamThroughGVCP(t *testing.T) {
	e := startEmulator(t, smallOptions())
	c := dialGVCP(t, e.Addrs()[0])
	port := clientPort{c}
	u, _ := c.readMem(wire.RegFirstURL, wire.URLSize)
	xml, err := genicam.FetchXML(port, wire.CString(u))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(xml, DeviceXML()) {
		t.Fatalf("fetched XML (%d bytes) differs from device.xml (%d bytes)", len(xml), len(DeviceXML()))
	}
	m, err := genicam.Parse(xml)
	if err != nil {
		t.Fatal(err)
	}
	m.Connect(port)
	if s, err := m.Enum("DeviceScanType"); err != nil || s != "Linescan" {
		t.Errorf("DeviceScanType = %q, %v", s, err)
	}
	mustSet := func(name, v string) {
		t.Helper()
		if err := m.SetValue(name, v); err != nil {
			t.Fatalf("set %s=%s: %v", name, v, err)
		}
	}
	mustSet("Width", "256")
	mustSet("Height", "100")
	mustSet("PixelFormat", "Mono12p")
	mustSet("ChunkModeActive", "1")
	mustSet("ChunkSelector", "EncoderValue")
	mustSet("ChunkEnable", "1")
	if ps, err := m.Int("PayloadSize"); err != nil || ps != 256*100*12/8+8+8*100+8 {
		t.Errorf("PayloadSize = %d, %v; want %d", ps, err, 256*100*12/8+8+8*100+8)
	}
	mustSet("TriggerSelector", "FrameStart")
	if s, err := m.Enum("TriggerSource"); err != nil || s != "Software" {
		t.Errorf("FrameStart TriggerSource = %q, %v", s, err)
	}
	if err := m.SetValue("Width", "100"); err == nil {
		t.Error("Width=100 (not a multiple of 8) accepted")
	}
	if v, err := m.Float("AcquisitionLineRate"); err != nil || v != 20000 {
		t.Errorf("AcquisitionLineRate = %v, %v", v, err)
	}
	if v, err := m.Int("GevTimestampTickFrequency"); err != nil || v != 1e9 {
		t.Errorf("GevTimestampTickFrequency = %v, %v", v, err)
	}
}

// clientPort is genicam.Port over the test client, in READMEM/WRITEMEM
// blocks.
type clientPort struct{ c *gvcpClient }

func (p clientPort) ReadMem(addr uint64, b []byte) error {
	for off := 0; off < len(b); off += wire.MaxMemBlock {
		n := min(wire.MaxMemBlock, len(b)-off)
		data, st := p.c.readMem(uint32(addr)+uint32(off), n)
		if st != wire.StatusSuccess {
			return st
		}
		copy(b[off:], data)
	}
	return nil
}

func (p clientPort) WriteMem(addr uint64, b []byte) error {
	if len(b) == 4 {
		if st := p.c.writeReg(uint32(addr), binary.BigEndian.Uint32(b)); st != wire.StatusSuccess {
			return st
		}
		return nil
	}
	if st := p.c.writeMem(uint32(addr), b); st != wire.StatusSuccess {
		return st
	}
	return nil
}

func TestControlPrivilege(t *testing.T) {
	e := startEmulator(t, smallOptions())
	a := dialGVCP(t, e.Addrs()[0])
	b := dialGVCP(t, e.Addrs()[0])
	a.mustWrite(wire.RegCCP, wire.CCPControl)
	if st := b.writeReg(regTest, 1); st != wire.StatusAccessDenied {
		t.Errorf("write by a non-controller: %v", st)
	}
	if st := b.writeReg(wire.RegCCP, wire.CCPControl); st != wire.StatusAccessDenied {
		t.Errorf("control taken from the controller: %v", st)
	}
	if _, st := b.readReg(regTest); st != wire.StatusSuccess {
		t.Errorf("read by a monitor under control access: %v", st)
	}
	a.mustWrite(wire.RegCCP, wire.CCPExclusive)
	if _, st := b.readReg(regTest); st != wire.StatusAccessDenied {
		t.Errorf("read by another application under exclusive access: %v", st)
	}
	a.mustWrite(wire.RegCCP, 0)
	b.mustWrite(wire.RegCCP, wire.CCPControl)
	b.mustWrite(regTest, 7)
}

func TestHeartbeatTimeout(t *testing.T) {
	e := startEmulator(t, smallOptions())
	a := dialGVCP(t, e.Addrs()[0])
	b := dialGVCP(t, e.Addrs()[0])
	a.mustWrite(wire.RegCCP, wire.CCPControl)
	a.mustWrite(wire.RegHeartbeatTimeout, 200)
	rx := newRx(t)
	a.mustWrite(wire.RegSCDA0, 0x7f000001)
	a.mustWrite(wire.RegSCP0, uint32(rx.port()))
	a.mustWrite(regAcqStart, 1)
	// a falls silent: the camera must give control up, stop and forget the
	// stream destination.
	waitFor(t, 5*time.Second, "control lost after the heartbeat timeout", func() bool {
		v, _ := b.readReg(wire.RegCCP)
		return v == 0
	})
	if v, _ := b.readReg(regTLLocked); v != 0 {
		t.Error("acquisition still on after control was lost")
	}
	if v, _ := b.readReg(wire.RegSCP0); v != 0 {
		t.Errorf("stream port %d kept after control was lost", v)
	}
	b.mustWrite(wire.RegCCP, wire.CCPControl)
}

func TestLockedWhileAcquiring(t *testing.T) {
	e := startEmulator(t, smallOptions())
	c := dialGVCP(t, e.Addrs()[0])
	stream(t, c)
	if st := c.writeReg(regWidth, 256); st != wire.StatusBusy {
		t.Errorf("Width written during acquisition: %v", st)
	}
	if v, _ := c.readReg(regTLLocked); v != 1 {
		t.Error("TLParamsLocked is not set during acquisition")
	}
	c.mustWrite(regAcqStop, 1)
	c.mustWrite(regWidth, 256)
}

func TestFireTestPacket(t *testing.T) {
	e := startEmulator(t, smallOptions())
	c := dialGVCP(t, e.Addrs()[0])
	rx := newRx(t)
	c.mustWrite(wire.RegCCP, wire.CCPControl)
	c.mustWrite(wire.RegSCDA0, 0x7f000001)
	c.mustWrite(wire.RegSCP0, uint32(rx.port()))
	c.mustWrite(wire.RegSCPS0, wire.SCPSFireTest|wire.SCPSDoNotFragment|4000)
	waitFor(t, 3*time.Second, "a test packet", func() bool {
		rx.mu.Lock()
		defer rx.mu.Unlock()
		return rx.tests > 0
	})
	if rx.testSize != 4000-wire.IPUDPOverhead {
		t.Errorf("test packet of %d bytes, want %d", rx.testSize, 4000-wire.IPUDPOverhead)
	}
	if v, _ := c.readReg(wire.RegSCPS0); v&wire.SCPSSizeMask != 4000 || v&wire.SCPSFireTest != 0 {
		t.Errorf("SCPS = 0x%x after the test packet", v)
	}
}

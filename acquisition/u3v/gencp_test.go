package u3v

import (
	"archive/zip"
	"bytes"
	"crypto/sha1"
	"encoding/binary"
	"errors"
	"os"
	"strings"
	"testing"
)

func testXML(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/emuline.xml")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// openEmu opens an emulated camera serving xml (zipped when zip).
func openEmu(t testing.TB, xml []byte, zip bool) (*Device, *emuDevice) {
	t.Helper()
	emu := newEmu(t, xml, zip)
	bus := &emuBus{t: t, devs: []*emuDevice{emu}, infos: []deviceInfo{emuInfo}}
	d, err := openDevice(bus, emuInfo, DefaultControlOptions())
	if err != nil {
		t.Fatal(err)
	}
	d.bus = bus
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Error(err)
		}
	})
	return d, emu
}

func TestGenCPRegisterRoundTrip(t *testing.T) {
	d, emu := openEmu(t, testXML(t), false)
	info := d.Info()
	if info.Manufacturer != "webinspect" || info.Model != "EmuLine U3V" || info.Serial != "EMU0001" {
		t.Fatalf("ABRM: %+v", info)
	}
	if d.ctrl.maxAck != 512 || d.ctrl.maxCmd != 512 {
		t.Fatalf("SBRM limits not applied: cmd %d ack %d", d.ctrl.maxCmd, d.ctrl.maxAck)
	}
	if err := writeU32(d.ctrl, regTestReg, 0xC0FFEE); err != nil {
		t.Fatal(err)
	}
	if v, err := readU32(d.ctrl, regTestReg); err != nil || v != 0xC0FFEE {
		t.Fatalf("TestRegister = 0x%x, %v", v, err)
	}
	if emu.u32(regTestReg) != 0xC0FFEE {
		t.Fatal("write did not reach the device")
	}
	// A block larger than one acknowledge or command: split into several.
	big := make([]byte, 3000)
	for i := range big {
		big[i] = byte(i * 7)
	}
	before := emu.cmds
	if err := d.WriteMem(emuRegs+0x100, big); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(big))
	if err := d.ReadMem(emuRegs+0x100, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, big) {
		t.Fatal("3000-byte round trip differs")
	}
	// 512-byte limits: writes carry 492 bytes, reads 500: 7 + 6 commands.
	if n := emu.cmds - before; n != 13 {
		t.Fatalf("%d commands for a 3000-byte write and read, want 13", n)
	}
}

func TestGenCPPendingAck(t *testing.T) {
	d, emu := openEmu(t, testXML(t), false)
	emu.pending[regTestReg] = 3
	if err := writeU32(d.ctrl, regTestReg, 42); err != nil {
		t.Fatal(err)
	}
	if emu.u32(regTestReg) != 42 || emu.pending[regTestReg] != 0 {
		t.Fatal("write behind pending acks did not happen")
	}
	if d.ctrl.retries != 0 {
		t.Fatalf("pending acks caused %d retries", d.ctrl.retries)
	}
}

func TestGenCPBadStatus(t *testing.T) {
	d, emu := openEmu(t, testXML(t), false)
	emu.status[regTestReg] = StatusAccessDenied
	err := writeU32(d.ctrl, regTestReg, 1)
	var se *StatusError
	if !errors.Is(err, ErrStatus) || !errors.As(err, &se) || se.Status != StatusAccessDenied || se.Addr != regTestReg || se.Op != "write" {
		t.Fatalf("err = %v", err)
	}
	if !strings.Contains(err.Error(), "access denied") {
		t.Fatalf("error does not name the status: %v", err)
	}
	// Writing the read-only SBRM is refused by the device itself.
	if err := writeU32(d.ctrl, emuSBRM, 1); !errors.As(err, &se) || se.Status != StatusWriteProtect {
		t.Fatalf("SBRM write: %v", err)
	}
	// Reads past the register space.
	var b [4]byte
	if err := d.ReadMem(emuMemSize, b[:]); !errors.As(err, &se) || se.Status != StatusInvalidAddress {
		t.Fatalf("read past the end: %v", err)
	}
}

func TestGenCPWrongRequestID(t *testing.T) {
	d, emu := openEmu(t, testXML(t), false)
	emu.stale = 1 // an acknowledge with a wrong request ID comes first
	if v, err := readU32(d.ctrl, regWidth); err != nil || v != 64 {
		t.Fatalf("Width = %d, %v", v, err)
	}
	if d.ctrl.stale != 1 || d.ctrl.retries != 0 {
		t.Fatalf("stale %d retries %d, want 1 and 0", d.ctrl.stale, d.ctrl.retries)
	}
	// A lost acknowledge: the command is sent again with a new ID.
	emu.dropAck = 1
	if v, err := readU32(d.ctrl, regWidth); err != nil || v != 64 {
		t.Fatalf("after a lost ack: %d, %v", v, err)
	}
	if d.ctrl.retries != 1 {
		t.Fatalf("retries %d, want 1", d.ctrl.retries)
	}
	// A device that never answers: ErrTimeout after every retry.
	emu.dropAck = 100
	if _, err := readU32(d.ctrl, regWidth); !errors.Is(err, ErrTimeout) {
		t.Fatalf("silent device: %v", err)
	}
	emu.dropAck = 0
}

func TestGenCPClosed(t *testing.T) {
	d, _ := openEmu(t, testXML(t), false)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := readU32(d.ctrl, regWidth); !errors.Is(err, ErrClosed) {
		t.Fatalf("read after close: %v", err)
	}
}

func zipped(t *testing.T, name string, b []byte) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestManifestXML(t *testing.T) {
	xml := testXML(t)
	for _, tc := range []struct {
		name string
		zip  bool
	}{{"raw", false}, {"zip", true}} {
		t.Run("schema="+tc.name, func(t *testing.T) {
			file := xml
			if tc.zip {
				file = zipped(t, "emuline.xml", xml)
			}
			d, _ := openEmu(t, file, tc.zip)
			m, err := d.Manifest()
			if err != nil {
				t.Fatal(err)
			}
			if len(m) != 1 || m[0].Major != 1 || m[0].Minor != 2 || m[0].Subminor != 3 || m[0].Addr != emuXML || m[0].Size != uint64(len(file)) {
				t.Fatalf("manifest %+v", m)
			}
			got, err := d.XML()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(bytes.TrimRight(got, "\x00"), bytes.TrimRight(xml, "\x00")) {
				t.Fatalf("XML differs (%d bytes, want %d)", len(got), len(xml))
			}
		})
	}
}

func TestManifestSHA1(t *testing.T) {
	xml := testXML(t)
	d, emu := openEmu(t, xml, false)
	entry := emu.mem[emuManifest+8:]
	sum := sha1.Sum(xml)
	copy(entry[24:44], sum[:])
	if _, err := d.XML(); err != nil {
		t.Fatalf("matching SHA1: %v", err)
	}
	entry[24] ^= 1
	if _, err := d.XML(); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "SHA1") {
		t.Fatalf("wrong SHA1: %v", err)
	}
}

func TestManifestHostile(t *testing.T) {
	d, emu := openEmu(t, testXML(t), false)
	le := binary.LittleEndian
	le.PutUint64(emu.mem[emuManifest:], 1<<40)
	if _, err := d.Manifest(); !errors.Is(err, ErrMalformed) {
		t.Fatalf("huge entry count: %v", err)
	}
	le.PutUint64(emu.mem[emuManifest:], 1)
	le.PutUint64(emu.mem[emuManifest+8+16:], 1<<40)
	if _, err := d.Manifest(); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "size") {
		t.Fatalf("huge file: %v", err)
	}
}

func TestGenCPBusyRetried(t *testing.T) {
	d, emu := openEmu(t, testXML(t), false)
	emu.status[regTestReg] = StatusBusy // once: the second try succeeds
	if err := writeU32(d.ctrl, regTestReg, 9); err != nil {
		t.Fatal(err)
	}
	if emu.u32(regTestReg) != 9 || d.ctrl.retries != 1 {
		t.Fatalf("register %d after %d retries", emu.u32(regTestReg), d.ctrl.retries)
	}
}

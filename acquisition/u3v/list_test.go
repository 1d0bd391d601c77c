package u3v

import (
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/google/gousb"
)

// TestDescribeThisMachine runs the real libusb enumeration. On a machine
// without a USB bus (like the build machine) it must say so in one line.
func TestDescribeThisMachine(t *testing.T) {
	line := Describe()
	t.Log(line)
	if strings.Contains(line, "\n") || !strings.HasPrefix(line, "usb3 vision: ") {
		t.Fatalf("not one line: %q", line)
	}
	if _, err := os.Stat("/dev/bus/usb"); err != nil {
		if !strings.Contains(line, "no USB bus") {
			t.Fatalf("no /dev/bus/usb here, but Describe says %q", line)
		}
		if _, err := List(); !errors.Is(err, ErrNoUSB) {
			t.Fatalf("List without USB: %v", err)
		}
		if _, err := Open("", DefaultControlOptions()); !errors.Is(err, ErrNoUSB) {
			t.Fatalf("Open without USB: %v", err)
		}
	}
}

// withEmuBus makes newBus return a bus with the given devices.
func withEmuBus(t *testing.T, devs ...*emuDevice) {
	t.Helper()
	old := newBus
	t.Cleanup(func() { newBus = old })
	newBus = func() (usbBus, error) {
		b := &emuBus{t: t, devs: devs}
		for i, d := range devs {
			info := emuInfo
			info.Address += i
			info.Serial = string(d.mem[abrmSerial : abrmSerial+7])
			b.infos = append(b.infos, info)
		}
		return b, nil
	}
}

func TestDiscovery(t *testing.T) {
	xml := testXML(t)
	a, b := newEmu(t, xml, false), newEmu(t, xml, false)
	copy(b.mem[abrmSerial:], "EMU0002")
	withEmuBus(t, a, b)

	list, err := List()
	if err != nil || len(list) != 2 || list[0].Serial != "EMU0001" || list[1].Serial != "EMU0002" || list[1].Address != 8 {
		t.Fatalf("List = %+v, %v", list, err)
	}
	if line := Describe(); !strings.Contains(line, "2 cameras") || !strings.Contains(line, "EMU0002") {
		t.Fatalf("Describe = %q", line)
	}
	d, err := Open("EMU0002", DefaultControlOptions())
	if err != nil {
		t.Fatal(err)
	}
	if d.Info().Serial != "EMU0002" || !b.open || a.open {
		t.Fatalf("opened %q (a open %v, b open %v)", d.Info().Serial, a.open, b.open)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if !b.closed {
		t.Fatal("Close did not close the device")
	}
	if _, err := Open("NOPE", DefaultControlOptions()); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "EMU0001") {
		t.Fatalf("unknown serial: %v", err)
	}
	if _, err := Open("", DefaultControlOptions()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("no serial with two devices: %v", err)
	}
}

func TestDiscoveryNone(t *testing.T) {
	withEmuBus(t)
	if _, err := List(); !errors.Is(err, ErrNoDevices) {
		t.Fatalf("List on an empty bus: %v", err)
	}
	if _, err := Open("", DefaultControlOptions()); !errors.Is(err, ErrNoDevices) {
		t.Fatalf("Open on an empty bus: %v", err)
	}
	if line := Describe(); line != "usb3 vision: no USB3 Vision camera attached" {
		t.Fatalf("Describe = %q", line)
	}
}

func u3vDesc(class gousb.Class) *gousb.DeviceDesc {
	bulk := func(addr int, in bool) gousb.EndpointDesc {
		dir := gousb.EndpointDirectionOut
		if in {
			dir = gousb.EndpointDirectionIn
		}
		return gousb.EndpointDesc{Address: gousb.EndpointAddress(addr), Number: addr & 0xF, Direction: dir,
			MaxPacketSize: 1024, TransferType: gousb.TransferTypeBulk}
	}
	set := func(n int, proto gousb.Protocol, eps ...gousb.EndpointDesc) gousb.InterfaceDesc {
		m := map[gousb.EndpointAddress]gousb.EndpointDesc{}
		for _, e := range eps {
			m[e.Address] = e
		}
		return gousb.InterfaceDesc{Number: n, AltSettings: []gousb.InterfaceSetting{{
			Number: n, Class: class, SubClass: subclassU3V, Protocol: proto, Endpoints: m}}}
	}
	return &gousb.DeviceDesc{Bus: 3, Address: 9, Vendor: 0x2676, Product: 0xBA02,
		Class: classMisc, SubClass: subclassCommon, Protocol: protocolIAD,
		Configs: map[int]gousb.ConfigDesc{1: {Number: 1, Interfaces: []gousb.InterfaceDesc{
			set(0, protoControl, bulk(0x81, true), bulk(0x01, false)),
			set(1, protoEvent, bulk(0x82, true)),
			set(2, protoStreaming, bulk(0x83, true)),
		}}}}
}

func TestInfoFromDesc(t *testing.T) {
	di, ok := infoFromDesc(u3vDesc(classMisc))
	want := deviceInfo{Bus: 3, Address: 9, Vendor: 0x2676, Product: 0xBA02, Config: 1,
		ControlIntf: 0, ControlIn: endpoint{0x81, 1024}, ControlOut: endpoint{0x01, 1024},
		EventIntf: 1, EventIn: endpoint{0x82, 1024}, StreamIntf: 2, StreamIn: endpoint{0x83, 1024}}
	if !ok || di != want {
		t.Fatalf("U3V device: %v %+v", ok, di)
	}
	// A device whose interfaces are of another class is not a camera.
	if _, ok := infoFromDesc(u3vDesc(gousb.ClassVendorSpec)); ok {
		t.Fatal("vendor-specific device taken for U3V")
	}
}

// TestGousbHandleField guards the reach into gousb for libusb_clear_halt:
// the libusb handle must be where gousb v1.1.3 keeps it.
func TestGousbHandleField(t *testing.T) {
	v := reflect.ValueOf(&gousb.Device{}).Elem().FieldByName("handle")
	if !v.IsValid() || v.Kind() != reflect.Pointer {
		t.Fatal("gousb.Device has no handle pointer: clearHalt would fall back to a plain CLEAR_FEATURE")
	}
	if libusbHandle(&gousb.Device{}) != nil {
		t.Fatal("handle of an unopened device is not nil")
	}
}

package u3v

import (
	"errors"
	"fmt"
	"sync"

	"github.com/webinspect/webinspect/acquisition/genicam"
)

// Device is an opened USB3 Vision camera: its GenCP control channel and
// bootstrap registers. It implements genicam.Port. Safe for concurrent use.
type Device struct {
	usb  deviceInfo
	dev  usbDevice
	bus  usbBus // closed with the device when Open made it
	ctrl *control
	info DeviceInfo
	sbrm sbrm

	mu     sync.Mutex
	closed bool
}

var _ genicam.Port = (*Device)(nil)

// openDevice opens di on bus, reads the ABRM and SBRM and applies the
// device's transfer limits and response time.
func openDevice(bus usbBus, di deviceInfo, opt ControlOptions) (*Device, error) {
	if err := opt.Validate(); err != nil {
		return nil, err
	}
	dev, err := bus.open(di)
	if err != nil {
		return nil, fmt.Errorf("u3v: opening %s: %w", di.name(), err)
	}
	d := &Device{usb: di, dev: dev, ctrl: newControl(dev, di, opt)}
	if err := d.bootstrap(); err != nil {
		d.ctrl.close()
		return nil, errors.Join(err, dev.close())
	}
	return d, nil
}

func (di deviceInfo) name() string {
	return fmt.Sprintf("USB device %d:%d (%04x:%04x serial %q)", di.Bus, di.Address, di.Vendor, di.Product, di.Serial)
}

func (d *Device) bootstrap() error {
	abrm := make([]byte, abrmLen)
	if err := d.ctrl.ReadMem(0, abrm); err != nil {
		return fmt.Errorf("u3v: reading ABRM: %w", err)
	}
	d.info = parseABRM(abrm)
	d.ctrl.setTimeout(d.info.MaxResponse)
	if d.info.Capability&capSBRMSupported == 0 || d.info.SBRMAddr == 0 {
		return fmt.Errorf("%w: device has no SBRM (capability 0x%x)", ErrUnsupported, d.info.Capability)
	}
	b := make([]byte, sbrmLen)
	if err := d.ctrl.ReadMem(d.info.SBRMAddr, b); err != nil {
		return fmt.Errorf("u3v: reading SBRM at 0x%x: %w", d.info.SBRMAddr, err)
	}
	d.sbrm = parseSBRM(b)
	return d.ctrl.setLimits(int(d.sbrm.MaxCmd), int(d.sbrm.MaxAck))
}

// Info returns what the ABRM says about the camera.
func (d *Device) Info() DeviceInfo { return d.info }

// ReadMem reads device memory (genicam.Port).
func (d *Device) ReadMem(addr uint64, p []byte) error { return d.ctrl.ReadMem(addr, p) }

// WriteMem writes device memory (genicam.Port).
func (d *Device) WriteMem(addr uint64, p []byte) error { return d.ctrl.WriteMem(addr, p) }

// Manifest returns the device description files the device offers, best
// (newest) first.
func (d *Device) Manifest() ([]ManifestEntry, error) {
	if d.info.ManifestAddr == 0 {
		return nil, fmt.Errorf("%w: device has no manifest table", ErrUnsupported)
	}
	return readManifest(d.ctrl, d.info.ManifestAddr)
}

// XML fetches the device's GenICam description (unzipped) through the
// newest manifest entry, checking its SHA1 when the device gives one.
func (d *Device) XML() ([]byte, error) {
	entries, err := d.Manifest()
	if err != nil {
		return nil, err
	}
	e := entries[0]
	hp := newHashingPort(d.ctrl, e)
	xml, err := genicam.FetchXML(hp, e.URL())
	if err != nil {
		return nil, fmt.Errorf("u3v: device XML (%s): %w", e.URL(), err)
	}
	if err := hp.check(e.SHA1); err != nil {
		return nil, err
	}
	return xml, nil
}

// NodeMap fetches and parses the device XML and connects it to the device.
func (d *Device) NodeMap() (*genicam.NodeMap, error) {
	xml, err := d.XML()
	if err != nil {
		return nil, err
	}
	m, err := genicam.Parse(xml)
	if err != nil {
		return nil, fmt.Errorf("u3v: device XML: %w", err)
	}
	m.Connect(d)
	return m, nil
}

// Close releases the device (and the bus when Open opened it).
func (d *Device) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	d.ctrl.close()
	err := d.dev.close()
	if d.bus != nil {
		err = errors.Join(err, d.bus.close())
	}
	return err
}

package u3v

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
)

// newBus opens the USB bus; tests replace it with an emulated one.
var newBus = func() (usbBus, error) {
	b, err := newGousbBus()
	if err != nil {
		return nil, err
	}
	return &checkedBus{b}, nil
}

// checkedBus turns an empty enumeration on a machine without a USB bus
// into ErrNoUSB, so the user learns why nothing is listed.
type checkedBus struct{ *gousbBus }

func (b *checkedBus) list() ([]deviceInfo, error) {
	infos, err := b.gousbBus.list()
	if err == nil && len(infos) == 0 && runtime.GOOS == "linux" {
		if _, serr := os.Stat("/dev/bus/usb"); serr != nil {
			return nil, fmt.Errorf("%w: /dev/bus/usb does not exist", ErrNoUSB)
		}
	}
	return infos, err
}

// Summary is one attached U3V device as enumeration sees it (without
// opening its control channel).
type Summary struct {
	Serial       string `json:"serial"`
	Manufacturer string `json:"manufacturer"`
	Model        string `json:"model"`
	Bus          int    `json:"bus"`
	Address      int    `json:"address"`
	Vendor       uint16 `json:"vendor"`
	Product      uint16 `json:"product"`
}

func (s Summary) String() string {
	return fmt.Sprintf("%s (%s %s, USB %04x:%04x on bus %d address %d)",
		orDash(s.Serial), orDash(s.Manufacturer), orDash(s.Model), s.Vendor, s.Product, s.Bus, s.Address)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// List enumerates the attached USB3 Vision devices. It returns ErrNoUSB
// when the machine has no USB bus libusb can use and ErrNoDevices when the
// bus has no U3V device.
func List() ([]Summary, error) {
	bus, err := newBus()
	if err != nil {
		return nil, err
	}
	infos, err := bus.list()
	err = errors.Join(err, bus.close())
	if err != nil {
		return nil, err
	}
	if len(infos) == 0 {
		return nil, ErrNoDevices
	}
	out := make([]Summary, len(infos))
	for i, di := range infos {
		out[i] = Summary{Serial: di.Serial, Manufacturer: di.Manufacturer, Model: di.Model,
			Bus: di.Bus, Address: di.Address, Vendor: di.Vendor, Product: di.Product}
	}
	return out, nil
}

// Open opens the U3V device with USB serial number serial ("" when only
// one device is attached) and reads its bootstrap registers. Close the
// device when done.
func Open(serial string, opt ControlOptions) (*Device, error) {
	bus, err := newBus()
	if err != nil {
		return nil, err
	}
	di, err := pick(bus, serial)
	if err != nil {
		return nil, errors.Join(err, bus.close())
	}
	d, err := openDevice(bus, di, opt)
	if err != nil {
		return nil, errors.Join(err, bus.close())
	}
	d.bus = bus
	return d, nil
}

// pick chooses the device with the serial number.
func pick(bus usbBus, serial string) (deviceInfo, error) {
	infos, err := bus.list()
	if err != nil {
		return deviceInfo{}, err
	}
	if len(infos) == 0 {
		return deviceInfo{}, ErrNoDevices
	}
	var have []string
	for _, di := range infos {
		if di.Serial == serial || serial == "" && len(infos) == 1 {
			return di, nil
		}
		have = append(have, orDash(di.Serial))
	}
	if serial == "" {
		return deviceInfo{}, fmt.Errorf("%w: %d devices attached, name one by serial (%s)", ErrNotFound, len(infos), strings.Join(have, ", "))
	}
	return deviceInfo{}, fmt.Errorf("%w: %q (attached: %s)", ErrNotFound, serial, strings.Join(have, ", "))
}

// Describe returns one line on the U3V cameras of this machine for
// `webinspect cameras`: how many and which, or plainly why there are none.
// A machine without USB is not an error.
func Describe() string {
	list, err := List()
	switch {
	case errors.Is(err, ErrNoUSB):
		why := strings.TrimPrefix(err.Error(), ErrNoUSB.Error()+": ")
		return "usb3 vision: no USB bus on this machine (" + why + "), so no USB3 Vision cameras"
	case errors.Is(err, ErrNoDevices):
		return "usb3 vision: no USB3 Vision camera attached"
	case err != nil:
		return "usb3 vision: cannot list cameras: " + err.Error()
	}
	parts := make([]string, len(list))
	for i, s := range list {
		parts[i] = s.String()
	}
	noun := "camera"
	if len(list) > 1 {
		noun = "cameras"
	}
	return fmt.Sprintf("usb3 vision: %d %s: %s", len(list), noun, strings.Join(parts, "; "))
}

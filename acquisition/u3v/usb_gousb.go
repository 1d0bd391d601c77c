package u3v

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/google/gousb"
)

// gousbBus is the real bus: libusb through gousb.
type gousbBus struct {
	ctx *gousb.Context
}

// newGousbBus initialises libusb. gousb panics when libusb_init fails (no
// usbfs, a sandbox without USB); that becomes ErrNoUSB.
func newGousbBus() (b *gousbBus, err error) {
	defer func() {
		if r := recover(); r != nil {
			b, err = nil, fmt.Errorf("%w: libusb could not start: %v", ErrNoUSB, r)
		}
	}()
	return &gousbBus{ctx: gousb.NewContext()}, nil
}

// infoFromDesc recognises a U3V device from its descriptors: a U3V control
// interface (class 0xEF, subclass 0x05, protocol 0) with a bulk IN and a
// bulk OUT endpoint, in any configuration. The device class is normally
// Miscellaneous/Common/IAD (0xEF/0x02/0x01), but the interface class is
// what decides.
func infoFromDesc(desc *gousb.DeviceDesc) (deviceInfo, bool) {
	di := deviceInfo{Bus: desc.Bus, Address: desc.Address, Vendor: uint16(desc.Vendor),
		Product: uint16(desc.Product), StreamIntf: -1, EventIntf: -1}
	cfgs := make([]int, 0, len(desc.Configs))
	for n := range desc.Configs {
		cfgs = append(cfgs, n)
	}
	sort.Ints(cfgs)
	for _, n := range cfgs {
		cfg := desc.Configs[n]
		found := false
		for _, intf := range cfg.Interfaces {
			if len(intf.AltSettings) == 0 {
				continue
			}
			alt := intf.AltSettings[0]
			if alt.Class != classMisc || alt.SubClass != subclassU3V {
				continue
			}
			in, out := endpoints(alt)
			switch alt.Protocol {
			case protoControl:
				if in.Addr != 0 && out.Addr != 0 {
					di.ControlIntf, di.ControlIn, di.ControlOut, found = intf.Number, in, out, true
				}
			case protoEvent:
				if in.Addr != 0 {
					di.EventIntf, di.EventIn = intf.Number, in
				}
			case protoStreaming:
				if in.Addr != 0 {
					di.StreamIntf, di.StreamIn = intf.Number, in
				}
			}
		}
		if found {
			di.Config = n
			return di, true
		}
		di.StreamIntf, di.EventIntf = -1, -1
	}
	return di, false
}

// endpoints returns the first bulk (or, for events, interrupt) IN and OUT
// endpoints of an interface setting, lowest address first.
func endpoints(s gousb.InterfaceSetting) (in, out endpoint) {
	addrs := make([]int, 0, len(s.Endpoints))
	for a := range s.Endpoints {
		addrs = append(addrs, int(a))
	}
	sort.Ints(addrs)
	for _, a := range addrs {
		e := s.Endpoints[gousb.EndpointAddress(a)]
		if e.TransferType != gousb.TransferTypeBulk && e.TransferType != gousb.TransferTypeInterrupt {
			continue
		}
		ep := endpoint{Addr: uint8(e.Address), MaxPacketSize: e.MaxPacketSize}
		if e.Direction == gousb.EndpointDirectionIn && in.Addr == 0 {
			in = ep
		} else if e.Direction == gousb.EndpointDirectionOut && out.Addr == 0 {
			out = ep
		}
	}
	return in, out
}

func (b *gousbBus) list() ([]deviceInfo, error) {
	var infos []deviceInfo
	devs, err := b.ctx.OpenDevices(func(desc *gousb.DeviceDesc) bool {
		di, ok := infoFromDesc(desc)
		if ok {
			infos = append(infos, di)
		}
		return ok // opened to read the strings
	})
	for _, d := range devs {
		for i := range infos {
			if infos[i].Bus == d.Desc.Bus && infos[i].Address == d.Desc.Address {
				infos[i].Serial, _ = d.SerialNumber()
				infos[i].Manufacturer, _ = d.Manufacturer()
				infos[i].Model, _ = d.Product()
			}
		}
		d.Close()
	}
	if err != nil && len(infos) == 0 {
		return nil, fmt.Errorf("%w: enumerating USB devices: %w", ErrNoUSB, err)
	}
	return infos, nil
}

func (b *gousbBus) open(info deviceInfo) (usbDevice, error) {
	devs, err := b.ctx.OpenDevices(func(desc *gousb.DeviceDesc) bool {
		return desc.Bus == info.Bus && desc.Address == info.Address
	})
	if len(devs) == 0 {
		if err == nil {
			err = errors.New("device is gone")
		}
		return nil, err
	}
	for _, d := range devs[1:] {
		d.Close()
	}
	g := &gousbDevice{dev: devs[0], in: map[uint8]*gousb.InEndpoint{}}
	if err := g.claim(info); err != nil {
		return nil, errors.Join(err, g.close())
	}
	return g, nil
}

func (b *gousbBus) close() error { return b.ctx.Close() }

// gousbDevice is an opened device with its U3V interfaces claimed.
type gousbDevice struct {
	dev   *gousb.Device
	cfg   *gousb.Config
	intfs []*gousb.Interface
	out   *gousb.OutEndpoint
	in    map[uint8]*gousb.InEndpoint

	mu     sync.Mutex
	closed bool
}

func (g *gousbDevice) claim(info deviceInfo) error {
	if err := g.dev.SetAutoDetach(true); err != nil {
		return fmt.Errorf("kernel driver auto-detach: %w", err)
	}
	cfg, err := g.dev.Config(info.Config)
	if err != nil {
		return fmt.Errorf("configuration %d: %w", info.Config, err)
	}
	g.cfg = cfg
	ctl, err := cfg.Interface(info.ControlIntf, 0)
	if err != nil {
		return fmt.Errorf("claiming control interface %d: %w", info.ControlIntf, err)
	}
	g.intfs = append(g.intfs, ctl)
	if g.out, err = ctl.OutEndpoint(int(info.ControlOut.Addr & 0x0F)); err != nil {
		return err
	}
	if g.in[info.ControlIn.Addr], err = ctl.InEndpoint(int(info.ControlIn.Addr & 0x0F)); err != nil {
		return err
	}
	if info.StreamIntf >= 0 {
		st, err := cfg.Interface(info.StreamIntf, 0)
		if err != nil {
			return fmt.Errorf("claiming stream interface %d: %w", info.StreamIntf, err)
		}
		g.intfs = append(g.intfs, st)
		if g.in[info.StreamIn.Addr], err = st.InEndpoint(int(info.StreamIn.Addr & 0x0F)); err != nil {
			return err
		}
	}
	return nil
}

// usbErr maps gousb errors onto the seam's.
func usbErr(ctx context.Context, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, gousb.TransferStall) || errors.Is(err, gousb.ErrorPipe):
		return errStall
	case errors.Is(err, gousb.TransferTimedOut) || errors.Is(err, gousb.ErrorTimeout):
		return errTimeout
	case ctx.Err() != nil:
		return ctx.Err()
	}
	return err
}

func (g *gousbDevice) bulkOut(ctx context.Context, ep uint8, p []byte) (int, error) {
	if g.out == nil || uint8(g.out.Desc.Address) != ep {
		return 0, fmt.Errorf("no OUT endpoint %s", epString(ep))
	}
	n, err := g.out.WriteContext(ctx, p)
	return n, usbErr(ctx, err)
}

func (g *gousbDevice) bulkIn(ctx context.Context, ep uint8, p []byte) (int, error) {
	e := g.in[ep]
	if e == nil {
		return 0, fmt.Errorf("no IN endpoint %s", epString(ep))
	}
	n, err := e.ReadContext(ctx, p)
	return n, usbErr(ctx, err)
}

// clearHalt clears a stall with libusb_clear_halt (device and host side
// of the pipe, see clearhalt.go); if gousb's handle cannot be found it
// falls back to the standard CLEAR_FEATURE(ENDPOINT_HALT) request.
func (g *gousbDevice) clearHalt(ep uint8) error {
	if h := libusbHandle(g.dev); h != nil {
		return libusbClearHalt(h, ep)
	}
	_, err := g.dev.Control(reqTypeEndpoint, stdReqClear, featureHalt, uint16(ep), nil)
	return err
}

func (g *gousbDevice) close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return ErrClosed
	}
	g.closed = true
	for _, i := range g.intfs {
		i.Close()
	}
	var err error
	if g.cfg != nil {
		err = g.cfg.Close()
	}
	return errors.Join(err, g.dev.Close())
}

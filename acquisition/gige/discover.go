package gige

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/webinspect/webinspect/acquisition/gige/wire"
)

// Device is a GigE Vision device found by discovery.
type Device struct {
	Addr             netip.AddrPort // where its GVCP answered from: give it to Dial
	IP               netip.Addr     // current IP the device reports
	MAC              net.HardwareAddr
	Manufacturer     string
	Model            string
	Version          string
	ManufacturerInfo string
	Serial           string
	UserName         string
	Interface        string // host interface it was found on ("" for unicast)
}

// String is a one-line description for `webinspect cameras`.
func (d Device) String() string {
	return fmt.Sprintf("%s %s serial %s at %v (MAC %v)", d.Manufacturer, d.Model, d.Serial, d.Addr, d.MAC)
}

// DiscoverTimeout is how long Discover listens for broadcast answers when
// ctx has no earlier deadline.
const DiscoverTimeout = 500 * time.Millisecond

// Discover finds GigE Vision devices. target selects where to look:
//
//   - "" : broadcast on every up IPv4 interface (unicast to the address of
//     a loopback interface, which cannot broadcast);
//   - an interface name ("eth1", "lo"): that interface only;
//   - an address ("192.168.1.20", "127.0.0.1:3957"): unicast to that
//     device; Discover returns as soon as it answers.
//
// It listens until ctx is done or DiscoverTimeout has passed and returns
// the devices that answered, each once. No answer is ErrNotFound.
func Discover(ctx context.Context, target string) ([]Device, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DiscoverTimeout)
		defer cancel()
	}
	probes, err := discoveryProbes(target)
	if err != nil {
		return nil, err
	}
	var found []Device
	seen := map[netip.AddrPort]bool{}
	for _, p := range probes {
		devs, err := p.run(ctx)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return found, err
		}
		for _, d := range devs {
			if !seen[d.Addr] {
				seen[d.Addr] = true
				found = append(found, d)
			}
		}
	}
	if len(found) == 0 {
		return nil, fmt.Errorf("%w: discovery on %q", ErrNotFound, orAll(target))
	}
	return found, nil
}

func orAll(s string) string {
	if s == "" {
		return "all interfaces"
	}
	return s
}

// probe is one discovery send: from local, to dst.
type probe struct {
	local   netip.Addr
	dst     netip.AddrPort
	iface   string
	unicast bool
}

func discoveryProbes(target string) ([]probe, error) {
	if target != "" {
		if dev, err := resolveDevice(target); err == nil && net.ParseIP(hostOf(target)) != nil {
			return []probe{{dst: dev, unicast: true}}, nil
		}
	}
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("gige: interfaces: %w", err)
	}
	var out []probe
	for _, ifc := range ifs {
		if ifc.Flags&net.FlagUp == 0 || (target != "" && ifc.Name != target) {
			continue
		}
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			pfx, err := netip.ParsePrefix(a.String())
			if err != nil || !pfx.Addr().Is4() {
				continue
			}
			p := probe{local: pfx.Addr(), iface: ifc.Name}
			if ifc.Flags&net.FlagLoopback != 0 || ifc.Flags&net.FlagBroadcast == 0 {
				p.dst = netip.AddrPortFrom(pfx.Addr(), wire.GVCPPort)
			} else {
				p.dst = netip.AddrPortFrom(broadcastOf(pfx), wire.GVCPPort)
			}
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no up IPv4 interface matches %q", ErrAddress, orAll(target))
	}
	return out, nil
}

func hostOf(s string) string {
	if h, _, err := net.SplitHostPort(s); err == nil {
		return h
	}
	return s
}

func broadcastOf(p netip.Prefix) netip.Addr {
	a := p.Addr().As4()
	bits := p.Bits()
	for i := bits; i < 32; i++ {
		a[i/8] |= 0x80 >> (i % 8)
	}
	return netip.AddrFrom4(a)
}

func (p probe) run(ctx context.Context) ([]Device, error) {
	local := &net.UDPAddr{}
	if p.local.IsValid() {
		local = net.UDPAddrFromAddrPort(netip.AddrPortFrom(p.local, 0))
	}
	sock, err := net.ListenUDP("udp4", local)
	if err != nil {
		return nil, fmt.Errorf("gige: discovery socket on %v: %w", p.local, err)
	}
	defer sock.Close()
	// A device on another subnet than the interface (a fresh camera with a
	// link-local address) only hears the limited broadcast.
	limited := !p.unicast && p.dst.Addr() != p.local && bindToDevice(sock, p.iface) == nil
	id := uint16(time.Now().UnixNano()%0xfff0) + 1
	cmd := wire.AppendDiscoveryCmd(nil, id, !p.unicast)
	buf := make([]byte, 1500)
	var found []Device
	for {
		if _, err := sock.WriteToUDPAddrPort(cmd, p.dst); err != nil {
			return nil, fmt.Errorf("gige: discovery to %v: %w", p.dst, err)
		}
		if limited {
			_, _ = sock.WriteToUDPAddrPort(cmd, netip.AddrPortFrom(netip.AddrFrom4([4]byte{255, 255, 255, 255}), wire.GVCPPort))
		}
		// Unicast: retry every 100 ms until an answer; broadcast: listen
		// for the whole window.
		wait := time.Now().Add(100 * time.Millisecond)
		if dl, _ := ctx.Deadline(); !p.unicast || dl.Before(wait) {
			wait = dl
		}
		devs, err := collect(ctx, sock, buf, id, wait, p)
		found = append(found, devs...)
		if err != nil || !p.unicast || len(found) > 0 || ctx.Err() != nil || !time.Now().Before(deadlineOf(ctx)) {
			return found, err
		}
	}
}

func deadlineOf(ctx context.Context) time.Time { dl, _ := ctx.Deadline(); return dl }

func collect(ctx context.Context, sock *net.UDPConn, buf []byte, id uint16, until time.Time, p probe) ([]Device, error) {
	var out []Device
	for ctx.Err() == nil {
		_ = sock.SetReadDeadline(until)
		n, from, err := sock.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return out, nil
			}
			return out, fmt.Errorf("gige: discovery receive: %w", err)
		}
		h, payload, err := wire.ParseAck(buf[:n])
		if err != nil || h.Ack != wire.AckDiscovery || h.AckID != id || h.Status.IsError() {
			continue
		}
		info, err := wire.ParseDiscoveryAck(payload)
		if err != nil {
			continue
		}
		out = append(out, Device{
			Addr: netip.AddrPortFrom(from.Addr().Unmap(), from.Port()), IP: info.IP, MAC: info.HardwareAddr(),
			Manufacturer: info.Manufacturer, Model: info.Model, Version: info.DeviceVersion,
			ManufacturerInfo: info.ManufacturerInfo, Serial: info.Serial, UserName: info.UserName,
			Interface: p.iface,
		})
		if p.unicast {
			return out, nil
		}
	}
	return out, nil
}

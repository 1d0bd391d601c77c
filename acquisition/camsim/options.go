package camsim

import (
	"fmt"
	"math"
	"net/netip"
	"strings"

	"github.com/rs/zerolog"

	"github.com/webinspect/webinspect/acquisition/gige/wire"
	"github.com/webinspect/webinspect/acquisition/sim"
)

// Options configure the emulated cameras. Start from DefaultOptions.
type Options struct {
	// Cameras is how many cameras sit side by side over the web, on one
	// encoder. [1, 16].
	Cameras int
	// Listen is the first camera's GVCP address, "IP" or "IP:port" (IPv4;
	// port 3956 when omitted, 0 picks free ports). On a loopback address
	// camera i listens on IP+i with the same port (Aravis only talks to port
	// 3956); on any other address on IP with port+i.
	Listen string
	// Web is the simulated web (material, seed, length, speed, motion,
	// defects, resolution, overlap). camsim sets its Cameras and WidthMM
	// (from Width), LinesPerBlock (1) and Realtime (false: camsim paces).
	Web sim.Config
	// Width is each camera's sensor width in pixels (SensorWidth), a
	// multiple of 8. [64, 16384].
	Width int
	// LinesPerFrame is the power-on Height: lines per frame. [1, 16384].
	LinesPerFrame int
	// LineRate is the power-on AcquisitionLineRate in Hz, the line rate
	// when LineStart is not triggered by the encoder. [100, 200000].
	LineRate float64
	// PacketSize is the power-on GevSCPSPacketSize in bytes. [576, 9000].
	PacketSize int
	// PacketLoss is how many stream packets per thousand are not sent;
	// they stay resendable unless NoResend. [0, 500].
	PacketLoss float64
	// NoResend makes PACKETRESEND useless: the capability bit is off and
	// every request is answered with a "packet unavailable" error packet.
	NoResend bool
	// FrameDrop is how many frames per thousand are dropped whole (their
	// block IDs and line counter values are skipped). [0, 500].
	FrameDrop float64
	// ResendFrames is how many of the newest frames a camera keeps for
	// resends. [1, 256].
	ResendFrames int
	// TruthFile, when set, receives the web's exact defect truth as CSV
	// (sim.WriteTruthCSV) when the emulator starts.
	TruthFile string
	// InfoFile, when set, receives the cameras' addresses, serials, chunk
	// IDs and geometry (acquisition.Info with flat-field references) as JSON.
	InfoFile string
	// FaultsFile, when set, receives every frame the cameras did not send
	// whole (WriteFaultsCSV) when Serve returns.
	FaultsFile string
	// PlainXML serves the GenICam XML unzipped (…xml instead of …zip).
	PlainXML bool
	// Logger receives the emulator's logs; nil discards them.
	Logger *zerolog.Logger
}

// DefaultOptions returns one camera of 4096 px on 127.0.0.1:3956 over the
// simulator's default 200 m fabric at 100 m/min, 256 lines per frame,
// 10 000 lines/s free-running, 1500-byte packets, no injected faults.
func DefaultOptions() Options {
	web := sim.DefaultConfig()
	web.Defects = 40
	return Options{
		Cameras:       1,
		Listen:        "127.0.0.1",
		Web:           web,
		Width:         4096,
		LinesPerFrame: 256,
		LineRate:      10000,
		PacketSize:    1500,
		ResendFrames:  16,
	}
}

// Validate checks every field and names the first bad one with its allowed
// range.
func (o Options) Validate() error {
	if _, err := o.listenAddr(); err != nil {
		return err
	}
	for _, f := range []struct {
		name      string
		v, lo, hi float64
	}{
		{"Cameras", float64(o.Cameras), 1, 16},
		{"Width", float64(o.Width), 64, 16384},
		{"LinesPerFrame", float64(o.LinesPerFrame), 1, maxHeight},
		{"LineRate", o.LineRate, 100, 200000},
		{"PacketSize", float64(o.PacketSize), minPacketSize, maxPacketSize},
		{"PacketLoss", o.PacketLoss, 0, 500},
		{"FrameDrop", o.FrameDrop, 0, 500},
		{"ResendFrames", float64(o.ResendFrames), 1, 256},
	} {
		if math.IsNaN(f.v) || f.v < f.lo || f.v > f.hi {
			return fmt.Errorf("camsim: %s = %v: must be in [%v, %v]", f.name, f.v, f.lo, f.hi)
		}
	}
	if o.Width%widthInc != 0 {
		return fmt.Errorf("camsim: Width = %d: must be a multiple of %d", o.Width, widthInc)
	}
	if err := o.webConfig().Validate(); err != nil {
		return fmt.Errorf("camsim: Web: %w", err)
	}
	return nil
}

// webConfig is Web as camsim runs it.
func (o Options) webConfig() sim.Config {
	w := o.Web
	n := float64(o.Cameras)
	w.Cameras = o.Cameras
	w.WidthMM = n*float64(o.Width)*w.PixelMM - (n-1)*w.OverlapMM
	w.LinesPerBlock = 1
	w.Realtime = false
	return w
}

// listenAddr parses Listen.
func (o Options) listenAddr() (netip.AddrPort, error) {
	s := strings.TrimSpace(o.Listen)
	if ap, err := netip.ParseAddrPort(s); err == nil {
		if !ap.Addr().Is4() {
			return ap, fmt.Errorf("camsim: Listen = %q: must be an IPv4 address", o.Listen)
		}
		return ap, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		return netip.AddrPort{}, fmt.Errorf("camsim: Listen = %q: must be an IPv4 address with an optional :port", o.Listen)
	}
	return netip.AddrPortFrom(a, wire.GVCPPort), nil
}

// cameraAddrs returns each camera's GVCP address.
func (o Options) cameraAddrs() ([]netip.AddrPort, error) {
	first, err := o.listenAddr()
	if err != nil {
		return nil, err
	}
	out := make([]netip.AddrPort, o.Cameras)
	ip, port := first.Addr(), first.Port()
	for i := range out {
		out[i] = netip.AddrPortFrom(ip, port)
		if ip.IsLoopback() {
			if ip = ip.Next(); !ip.IsLoopback() {
				return nil, fmt.Errorf("camsim: Listen = %q: %d cameras run out of loopback addresses", o.Listen, o.Cameras)
			}
		} else if port != 0 {
			port++
		}
	}
	return out, nil
}

package camsim

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/webinspect/webinspect/acquisition"
	"github.com/webinspect/webinspect/acquisition/gige/wire"
	"github.com/webinspect/webinspect/acquisition/sim"
)

// web is the simulated web all cameras image: one encoder, one clock.
type web struct {
	sim   *sim.Sim
	start time.Time // the simulator's clock origin (Block.Time of count 0)

	once  sync.Once
	epoch time.Time // wall time of web clock 0: the first AcquisitionStart of any camera
}

// epochAt fixes the web's wall-clock origin at the first call.
func (w *web) epochAt(t time.Time) time.Time {
	w.once.Do(func() { w.epoch = t })
	return w.epoch
}

// camera is one emulated device.
type camera struct {
	addr   netip.AddrPort
	serial string
	dev    *device
	srv    *server
	str    *streamer
}

// Emulator is a set of emulated line-scan GigE Vision cameras over one
// simulated web. Make it with New, run it with Serve.
type Emulator struct {
	opts Options
	web  *web
	cams []*camera
	log  zerolog.Logger
}

// New validates opts, makes the web, opens every camera's sockets and
// writes the truth and info files. Close it (or Serve it) afterwards.
func New(ctx context.Context, opts Options) (*Emulator, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	log := zerolog.Nop()
	if opts.Logger != nil {
		log = *opts.Logger
	}
	wc := opts.webConfig()
	wc.Start = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s, err := sim.New(wc)
	if err != nil {
		return nil, fmt.Errorf("camsim: %w", err)
	}
	e := &Emulator{opts: opts, web: &web{sim: s, start: wc.Start}, log: log}
	addrs, err := opts.cameraAddrs()
	if err != nil {
		return nil, err
	}
	for i, a := range addrs {
		c, err := e.newCamera(ctx, i, a)
		if err != nil {
			e.Close()
			return nil, fmt.Errorf("camsim: camera %d on %v: %w", i, a, err)
		}
		e.cams = append(e.cams, c)
	}
	if err := e.writeFiles(); err != nil {
		e.Close()
		return nil, err
	}
	return e, nil
}

func (e *Emulator) newCamera(ctx context.Context, i int, addr netip.AddrPort) (*camera, error) {
	o := &e.opts
	log := e.log.With().Int("camera", i).Logger()
	c := &camera{serial: fmt.Sprintf("camsim-%d", i)}
	conn, bcasts, err := listenGVCP(ctx, addr, log)
	if err != nil {
		return nil, err
	}
	c.addr = conn.LocalAddr().(*net.UDPAddr).AddrPort()
	stream, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(addr.Addr(), 0)))
	if err != nil {
		conn.Close()
		for _, b := range bcasts {
			b.Close()
		}
		return nil, err
	}
	c.dev, err = newDevice(deviceParams{
		id:          identity{serial: c.serial, user: fmt.Sprintf("camera%d", i), mac: [6]byte{0x02, 0x57, 0x49, 0, 0, byte(i)}, ip: addr.Addr()},
		sensorWidth: o.Width, height: o.LinesPerFrame, divider: o.Web.CountsPerLine,
		lineRate: o.LineRate, packetSize: o.PacketSize, noResend: o.NoResend, plainXML: o.PlainXML,
	})
	if err != nil {
		conn.Close()
		for _, b := range bcasts {
			b.Close()
		}
		stream.Close()
		return nil, err
	}
	c.dev.put32(wire.RegSCSP0, uint32(stream.LocalAddr().(*net.UDPAddr).Port))
	wc := e.web.sim.Config()
	c.str = &streamer{
		cam: i, dev: c.dev, conn: stream, web: e.web, st: e.web.sim.Streams()[i], sw: o.Width,
		nominalRate: wc.SpeedMPerMin / 60 * 1000 / wc.LineMM,
		lossP:       o.PacketLoss / 1000, dropP: o.FrameDrop / 1000, noResend: o.NoResend,
		log: log, rng: rand.New(rand.NewPCG(uint64(wc.Seed), uint64(i)+0x63616d)),
		depth: o.ResendFrames,
	}
	c.str.blk.Counts = make([]int64, 1)
	c.str.bw = newBatchWriter(stream, paceGroup, maxPacketSize)
	c.str.rbw = newBatchWriter(stream, paceGroup, maxPacketSize)
	c.srv = &server{dev: c.dev, conn: conn, bcasts: bcasts, resend: c.str.resend, log: log}
	return c, nil
}

// Addrs returns each camera's GVCP address, camera 0 first.
func (e *Emulator) Addrs() []netip.AddrPort {
	out := make([]netip.AddrPort, len(e.cams))
	for i, c := range e.cams {
		out[i] = c.addr
	}
	return out
}

// Serials returns each camera's DeviceSerialNumber.
func (e *Emulator) Serials() []string {
	out := make([]string, len(e.cams))
	for i, c := range e.cams {
		out[i] = c.serial
	}
	return out
}

// Info describes the web, the encoder and the cameras' geometry and
// flat-field references, as the simulator defines them, with the cameras'
// power-on lines per frame as LinesPerBlock.
func (e *Emulator) Info() acquisition.Info {
	inf := e.web.sim.Info()
	inf.Name = "camsim:" + inf.Material
	inf.Live = true
	inf.LinesPerBlock = e.opts.LinesPerFrame
	return inf
}

// Truth returns the web's injected defects.
func (e *Emulator) Truth() []sim.Truth { return e.web.sim.Truth() }

// Stats returns each camera's counters.
func (e *Emulator) Stats() []Stats {
	out := make([]Stats, len(e.cams))
	for i, c := range e.cams {
		out[i] = c.str.stats.snapshot()
	}
	return out
}

// Serve runs every camera until ctx ends; it returns nil then, or the first
// socket error.
func (e *Emulator) Serve(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 2*len(e.cams))
	var wg sync.WaitGroup
	for _, c := range e.cams {
		wg.Add(2)
		go func() { defer wg.Done(); errc <- c.srv.serve(ctx) }()
		go func() { defer wg.Done(); errc <- c.str.run(ctx) }()
	}
	for _, c := range e.cams {
		e.log.Info().Stringer("gvcp", c.addr).Str("serial", c.serial).Msg("camsim: camera ready")
	}
	var first error
	for range 2 * len(e.cams) {
		if err := <-errc; err != nil && first == nil {
			first = err
			cancel()
		}
	}
	wg.Wait()
	e.Close()
	if err := e.writeFaults(); err != nil && first == nil {
		first = err
	}
	for i, st := range e.Stats() {
		e.log.Info().Int("camera", i).Int64("frames", st.Frames).Int64("dropped_frames", st.DroppedFrames).
			Int64("lines", st.Lines).Int64("packets", st.Packets).Int64("lost_packets", st.LostPackets).
			Int64("resend_requests", st.ResendRequests).Int64("resent_packets", st.ResentPackets).Msg("camsim: camera done")
	}
	return first
}

// Close stops every camera and closes its sockets.
func (e *Emulator) Close() error {
	for _, c := range e.cams {
		c.dev.stop()
		c.srv.close()
		c.str.conn.Close()
	}
	return nil
}

// Run serves opts's cameras until ctx ends.
func Run(ctx context.Context, opts Options) error {
	e, err := New(ctx, opts)
	if err != nil {
		return err
	}
	return e.Serve(ctx)
}

// infoFile is what InfoFile holds.
type infoFile struct {
	Source   acquisition.Info  `json:"source"`
	Cameras  []cameraInfo      `json:"cameras"`
	ChunkIDs map[string]string `json:"chunk_ids"`
}

type cameraInfo struct {
	Address string `json:"address"`
	Serial  string `json:"serial"`
}

func (e *Emulator) writeFiles() error {
	if p := e.opts.TruthFile; p != "" {
		f, err := os.Create(p)
		if err != nil {
			return fmt.Errorf("camsim: truth file: %w", err)
		}
		err = sim.WriteTruthCSV(f, e.Truth())
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("camsim: truth file %s: %w", p, err)
		}
	}
	if p := e.opts.InfoFile; p != "" {
		inf := infoFile{Source: e.Info(), ChunkIDs: map[string]string{
			"Image": fmt.Sprintf("0x%08x", ChunkIDImage), "EncoderValue": fmt.Sprintf("0x%08x", ChunkIDEncoderValue),
			"Timestamp": fmt.Sprintf("0x%08x", ChunkIDTimestamp), "LineCounter": fmt.Sprintf("0x%08x", ChunkIDLineCounter),
		}}
		for _, c := range e.cams {
			inf.Cameras = append(inf.Cameras, cameraInfo{Address: c.addr.String(), Serial: c.serial})
		}
		b, err := json.MarshalIndent(inf, "", "  ")
		if err == nil {
			err = os.WriteFile(p, append(b, '\n'), 0o644)
		}
		if err != nil {
			return fmt.Errorf("camsim: info file %s: %w", p, err)
		}
	}
	return nil
}

package camera

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/webinspect/webinspect/acquisition"
	"github.com/webinspect/webinspect/acquisition/gige"
)

// ReasonSourceError is the LostLines reason for lines a camera took while
// it was gone (a roll-map reason, rollmap/FORMAT.md).
const ReasonSourceError = "source-error"

// Options configure a source over GigE Vision cameras.
type Options struct {
	// Cameras names each camera, camera 0 (operator side) first: its
	// address ("192.168.1.20", "127.0.0.2:3956") or its serial number or
	// user name, found by discovery on Interface.
	Cameras []string
	// Geometry is the installation (see the package doc); it has one
	// camera per entry of Cameras.
	Geometry Geometry
	// Settings are written to every camera.
	Settings Settings
	// Interface is where serial numbers are looked for ("" every up
	// interface, or a name such as "eth1"; see gige.Discover).
	Interface string
	// Control configures each control channel.
	Control gige.Options
	// PacketSize is the stream packet size asked of the cameras (0 keeps
	// theirs); NoResend disables packet resend requests.
	PacketSize int
	NoResend   bool
	// Backoff is the first wait before reconnecting to a camera that is
	// gone; it doubles up to MaxBackoff.
	Backoff, MaxBackoff time.Duration
	// ReconnectFor bounds how long a gone camera is waited for before its
	// stream ends with the error (0: until the run ends).
	ReconnectFor time.Duration
	// LengthMM ends every stream once it has delivered a line at or beyond
	// this MD position (0: the run ends with its context).
	LengthMM float64
	// Log receives disconnections and reconnections.
	Log zerolog.Logger
}

// DefaultOptions returns options for cameras with the default control
// channel and settings, reconnecting every 0.25 s to 5 s, for ever.
func DefaultOptions() Options {
	return Options{
		Settings: DefaultSettings(), Control: gige.DefaultOptions(),
		Backoff: 250 * time.Millisecond, MaxBackoff: 5 * time.Second, Log: zerolog.Nop(),
	}
}

// Validate names the first bad field.
func (o Options) Validate() error {
	switch {
	case len(o.Cameras) == 0:
		return fmt.Errorf("%w: Cameras: none given", ErrOptions)
	case len(o.Cameras) != len(o.Geometry.Source.Cameras):
		return fmt.Errorf("%w: Cameras: %d cameras, the geometry describes %d", ErrOptions, len(o.Cameras), len(o.Geometry.Source.Cameras))
	case o.Backoff <= 0 || o.MaxBackoff < o.Backoff:
		return fmt.Errorf("%w: Backoff %v, MaxBackoff %v (0 < Backoff <= MaxBackoff)", ErrOptions, o.Backoff, o.MaxBackoff)
	case o.ReconnectFor < 0:
		return fmt.Errorf("%w: ReconnectFor %v (>= 0)", ErrOptions, o.ReconnectFor)
	case o.LengthMM < 0:
		return fmt.Errorf("%w: LengthMM %v (>= 0)", ErrOptions, o.LengthMM)
	case o.PacketSize != 0 && (o.PacketSize < 576 || o.PacketSize > 9000):
		return fmt.Errorf("%w: PacketSize %d (0, or 576 to 9000)", ErrOptions, o.PacketSize)
	}
	for i, c := range o.Cameras {
		if c == "" {
			return fmt.Errorf("%w: Cameras[%d] is empty", ErrOptions, i)
		}
	}
	if err := o.Settings.Validate(); err != nil {
		return err
	}
	if err := o.Control.Validate(); err != nil {
		return err
	}
	return o.Geometry.Validate()
}

// Stats are one camera's acquisition counters since the source opened,
// summed over reconnections (engine/status.CameraStats has the same
// fields for /api/status).
type Stats struct {
	Index         int
	Name          string // the camera as Options.Cameras names it
	Connected     bool   // false while the camera is gone
	Frames        int64  // frames delivered complete
	LostFrames    int64
	ResentPackets int64
	Lines         int64 // lines delivered
	LostLines     int64 // lines of lost frames (camera-frame-lost)
	GoneLines     int64 // lines missed while the camera was gone (source-error)
	Reconnects    int64
	LineRate      float64 // lines per second over the last second or so
}

// startGate makes every camera start at the same encoder count: the
// cameras' AcquisitionStart commands reach them one after the other, so
// their first lines differ by a few; each camera's first count is
// published, and every camera drops its lines below the highest of them.
// The engine's roll then starts at one count for all cameras.
type startGate struct {
	mu     sync.Mutex
	firsts int
	want   int
	start  int64
	done   chan struct{}
}

func newStartGate(n int) *startGate { return &startGate{want: n, done: make(chan struct{})} }

// arrive publishes a camera's first count and waits for the others (at
// most wait: a camera that sends nothing does not hold the rest).
func (g *startGate) arrive(ctx context.Context, count int64, wait time.Duration, closed <-chan struct{}) (int64, error) {
	g.mu.Lock()
	if g.firsts == 0 || count > g.start {
		g.start = count
	}
	g.firsts++
	if g.firsts == g.want {
		close(g.done)
	}
	g.mu.Unlock()
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-g.done:
	case <-t.C:
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-closed:
		return 0, io.EOF
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.start, nil
}

// Start returns the encoder count every camera's first line is at, once
// every camera has delivered its first block (ok false before).
func (s *Source) Start() (count int64, ok bool) {
	if s.gate == nil {
		return 0, false
	}
	select {
	case <-s.gate.done:
	default:
		return 0, false
	}
	s.gate.mu.Lock()
	defer s.gate.mu.Unlock()
	return s.gate.start, true
}

// Source is a set of cameras on one encoder (acquisition.Source).
type Source struct {
	gate    *startGate
	info    acquisition.Info
	streams []acquisition.Stream
	stats   []func() Stats
	coll    *gige.Collector
}

// Info describes the web, the encoder and the cameras (from the geometry,
// with LinesPerBlock the cameras' frame height).
func (s *Source) Info() acquisition.Info { return s.info }

// Streams returns one stream per camera, camera 0 first.
func (s *Source) Streams() []acquisition.Stream { return s.streams }

// Close closes every camera.
func (s *Source) Close() error {
	var errs []error
	for _, st := range s.streams {
		errs = append(errs, st.Close())
	}
	return errors.Join(errs...)
}

// Stats returns each camera's counters, camera 0 first.
func (s *Source) Stats() []Stats {
	out := make([]Stats, len(s.stats))
	for i, f := range s.stats {
		out[i] = f()
	}
	return out
}

// Collector exports the cameras' counters to Prometheus (labelled by
// camera index), read at scrape time.
func (s *Source) Collector() *gige.Collector { return s.coll }

// OpenGigE connects to every camera, sets it up and starts acquisition on
// all of them together (so that their first lines are close on MD). A
// camera that cannot be reached now is an error: reconnection is for
// cameras that go away during the run.
func OpenGigE(ctx context.Context, o Options) (*Source, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	chunk, _ := o.Geometry.EncoderChunkID()
	info := o.Geometry.Source
	info.Live = true
	info.Name = "gige:" + joinNames(o.Cameras)
	info.Cameras = append([]acquisition.CameraInfo(nil), info.Cameras...)
	src := &Source{info: info, coll: &gige.Collector{}, gate: newStartGate(len(o.Cameras))}
	var streams []*gigeStream
	fail := func(err error) (*Source, error) {
		for _, s := range streams {
			s.Close()
		}
		return nil, err
	}
	for i, name := range o.Cameras {
		ci := info.Cameras[i]
		ci.Index = i
		info.Cameras[i] = ci
		s := &gigeStream{o: &src.info, opts: o, idx: i, name: name, cam: ci, chunk: chunk, closed: make(chan struct{}), gate: src.gate}
		if err := s.connect(ctx); err != nil {
			return fail(err)
		}
		streams = append(streams, s)
	}
	// Every camera's height must be the same: the engine's blocks are that big.
	lines := 0
	for _, s := range streams {
		h, err := s.gc.Nodes.Int("Height")
		if err != nil {
			return fail(fmt.Errorf("%w: %s: %w", ErrFeature, s.label(), err))
		}
		if lines != 0 && int(h) != lines {
			return fail(fmt.Errorf("%w: %s: Height %d, camera 0 has %d", ErrFeature, s.label(), h, lines))
		}
		lines = int(h)
	}
	src.info.LinesPerBlock = lines
	for _, s := range streams {
		if err := s.start(); err != nil {
			return fail(err)
		}
	}
	for _, s := range streams {
		src.streams = append(src.streams, s)
		src.stats = append(src.stats, s.Stats)
		src.coll.Add(fmt.Sprint(s.idx), s.gigeStats)
	}
	return src, nil
}

func joinNames(n []string) string {
	s := ""
	for i, v := range n {
		if i > 0 {
			s += ","
		}
		s += v
	}
	return s
}

// Resolve turns a camera name into a control address: an address as it is,
// else the device whose serial number or user name it is.
func Resolve(ctx context.Context, name, iface string) (string, error) {
	if _, err := netip.ParseAddrPort(name); err == nil {
		return name, nil
	}
	if _, err := netip.ParseAddr(name); err == nil {
		return name, nil
	}
	devs, err := gige.Discover(ctx, iface)
	if err != nil && !errors.Is(err, gige.ErrNotFound) {
		return "", err
	}
	for _, d := range devs {
		if d.Serial == name || d.UserName == name {
			return d.Addr.String(), nil
		}
	}
	return "", fmt.Errorf("%w: no GigE Vision camera with serial number or user name %q answered discovery (%d devices did)", gige.ErrNotFound, name, len(devs))
}

// gigeStream is one GigE camera's stream, surviving the camera going away.
type gigeStream struct {
	o     *acquisition.Info
	opts  Options
	idx   int
	name  string
	cam   acquisition.CameraInfo
	chunk uint32
	gate  *startGate

	mu         sync.Mutex // guards gc, ls, base, gone, reconnects, connected
	gc         *gige.Camera
	ls         *gige.LineStream
	base       gige.CameraStats // counters of closed line streams
	gone       int64            // lines missed while gone
	reconnects int64
	connected  bool
	closed     chan struct{}
	closeOnce  sync.Once

	// ReadBlock's own state.
	offset     int64 // added to the line stream's line numbers
	next       int64 // next line number of the run's sequence
	high       int64 // highest count delivered
	hasHigh    bool
	wasGone    bool
	ended      bool
	started    bool // the first line was delivered
	gateSeen   bool
	startCount int64
}

func (s *gigeStream) label() string { return fmt.Sprintf("camera %d (%s)", s.idx, s.name) }

// connect opens and sets up the camera and its stream channel; start
// begins acquisition.
func (s *gigeStream) connect(ctx context.Context) error {
	addr, err := Resolve(ctx, s.name, s.opts.Interface)
	if err != nil {
		return fmt.Errorf("%s: %w", s.label(), err)
	}
	gc, err := gige.Open(ctx, addr, s.opts.Control)
	if err != nil {
		return fmt.Errorf("%s: %w", s.label(), err)
	}
	in := s.o
	if err := apply(gc.Nodes, s.label(), s.cam, in.LinesPerBlock, in.CountsPerLine, s.chunk != 0, s.opts.Settings); err != nil {
		gc.Close()
		return err
	}
	p, err := gc.Nodes.Int("PayloadSize")
	if err != nil {
		gc.Close()
		return fmt.Errorf("%w: %s: %w", ErrFeature, s.label(), err)
	}
	so := gige.DefaultStreamOptions(int(p))
	so.PacketSize, so.NoResend, so.Log = s.opts.PacketSize, s.opts.NoResend, s.opts.Log
	st, err := gige.OpenStream(gc.Conn, so)
	if err != nil {
		gc.Close()
		return fmt.Errorf("%s: %w", s.label(), err)
	}
	ls, err := gige.NewLineStream(st, gige.LineOptions{
		Camera: s.cam, CountsPerLine: in.CountsPerLine, EncoderChunkID: s.chunk,
		Stop: func() error { return gc.Nodes.Execute("AcquisitionStop") },
	})
	if err != nil {
		st.Close()
		gc.Close()
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.closed:
		ls.Close()
		gc.Close()
		return io.EOF
	default:
	}
	s.gc, s.ls = gc, ls
	return nil
}

func (s *gigeStream) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gc == nil {
		return io.EOF
	}
	if err := s.gc.Nodes.Execute("AcquisitionStart"); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrFeature, s.label(), err)
	}
	s.connected = true
	return nil
}

// detach takes the current camera away from the stream, adding its
// counters to base. The caller closes what it returns.
func (s *gigeStream) detach() (*gige.LineStream, *gige.Camera) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ls, gc := s.ls, s.gc
	if ls != nil {
		st := ls.Stats()
		s.base.Frames += st.Frames
		s.base.LostFrames += st.LostFrames
		s.base.Incomplete += st.Incomplete
		s.base.Overruns += st.Overruns
		s.base.Packets += st.Packets
		s.base.Bytes += st.Bytes
		s.base.ResendRequested += st.ResendRequested
		s.base.ResentPackets += st.ResentPackets
		s.base.Duplicates += st.Duplicates
		s.base.Malformed += st.Malformed
		s.base.Lines += st.Lines
		s.base.LostLines += st.LostLines
	}
	s.ls, s.gc, s.connected = nil, nil, false
	return ls, gc
}

// drop closes the current camera (gone).
func (s *gigeStream) drop() {
	ls, gc := s.detach()
	if ls != nil {
		ls.Close()
	}
	if gc != nil {
		gc.Close()
	}
}

// reconnect waits with backoff until the camera is back, set up and
// acquiring.
func (s *gigeStream) reconnect(ctx context.Context) error {
	wait := s.opts.Backoff
	t0 := time.Now()
	for {
		err := s.connect(ctx)
		if err == nil {
			err = s.start()
			if err == nil {
				s.mu.Lock()
				s.reconnects++
				s.mu.Unlock()
				s.opts.Log.Info().Int("camera", s.idx).Str("name", s.name).Dur("gone", time.Since(t0)).Msg("camera reconnected")
				return nil
			}
			s.drop()
		}
		if errors.Is(err, io.EOF) {
			return io.EOF
		}
		if s.opts.ReconnectFor > 0 && time.Since(t0) >= s.opts.ReconnectFor {
			return fmt.Errorf("%s gone for %v: %w", s.label(), time.Since(t0).Round(time.Millisecond), err)
		}
		s.opts.Log.Debug().Err(err).Int("camera", s.idx).Dur("retry_in", wait).Msg("camera still gone")
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.closed:
			return io.EOF
		case <-time.After(wait):
		}
		wait = min(2*wait, s.opts.MaxBackoff)
	}
}

// Camera describes the stream's camera.
func (s *gigeStream) Camera() acquisition.CameraInfo { return s.cam }

// ReadBlock fills dst with the camera's next lines. A camera that went
// away is reconnected; the lines it missed are reported in dst.Lost
// (source-error) of the first block after it is back.
func (s *gigeStream) ReadBlock(ctx context.Context, dst *acquisition.Block) error {
	if s.ended {
		return io.EOF
	}
	for {
		s.mu.Lock()
		ls := s.ls
		s.mu.Unlock()
		if ls == nil {
			if err := s.reconnect(ctx); err != nil {
				return err
			}
			s.mu.Lock()
			ls = s.ls
			s.mu.Unlock()
			s.offset = s.next
		}
		err := ls.ReadBlock(ctx, dst)
		if err == nil && !s.started {
			if err = s.trimToStart(ctx, dst); err == nil && dst.Lines == 0 {
				continue // the whole block is before the common start
			}
		}
		if err == nil {
			s.deliver(dst)
			return nil
		}
		select {
		case <-s.closed:
			return io.EOF
		default:
		}
		if ctx.Err() != nil || !errors.Is(err, gige.ErrLostControl) {
			return err
		}
		s.opts.Log.Warn().Err(err).Int("camera", s.idx).Str("name", s.name).Msg("camera gone: reconnecting")
		s.drop()
		s.wasGone = true
	}
}

// startWait bounds how long a camera's first block waits for the other
// cameras' first counts.
const startWait = 30 * time.Second

// trimToStart drops the lines of the camera's first blocks below the
// count every camera starts at; the first line delivered is line 0.
func (s *gigeStream) trimToStart(ctx context.Context, dst *acquisition.Block) error {
	if s.gate != nil && s.gate.want > 1 {
		if !s.gateSeen {
			start, err := s.gate.arrive(ctx, dst.Counts[0], startWait, s.closed)
			if err != nil {
				return err
			}
			s.gateSeen, s.startCount = true, start
		}
	} else {
		s.gateSeen, s.startCount = true, dst.Counts[0]
	}
	j := 0
	for j < dst.Lines && dst.Counts[j] < s.startCount {
		j++
	}
	if j < dst.Lines {
		copy(dst.Pix, dst.Pix[j*dst.Stride:dst.Lines*dst.Stride])
		copy(dst.Counts, dst.Counts[j:dst.Lines])
		s.started = true
		dst.FirstLine += int64(j)
		s.offset = -dst.FirstLine
	}
	dst.Lines -= j
	dst.Lost = acquisition.LostLines{}
	return nil
}

// deliver maps a line stream's block onto the run's line sequence and adds
// the lines missed while the camera was gone.
func (s *gigeStream) deliver(dst *acquisition.Block) {
	dst.Camera = s.idx
	dst.FirstLine += s.offset
	if !dst.Lost.Empty() {
		dst.Lost.FirstLine += s.offset
	}
	if s.wasGone {
		s.wasGone = false
		k := int64(s.o.CountsPerLine)
		first := dst.Counts[0]
		if !dst.Lost.Empty() {
			first = dst.Lost.FirstCount
		}
		if n := (first - s.high) / k; s.hasHigh && n > 1 {
			gap := acquisition.LostLines{FirstLine: s.next, Lines: n - 1, FirstCount: s.high + k, LastCount: first - k, Reason: ReasonSourceError}
			if !dst.Lost.Empty() {
				gap.Lines += dst.Lost.Lines
				gap.LastCount = dst.Lost.LastCount
			}
			dst.Lost = gap
			s.offset += n - 1
			dst.FirstLine += n - 1
			s.mu.Lock()
			s.gone += n - 1
			s.mu.Unlock()
		}
	}
	s.next = dst.FirstLine + int64(dst.Lines)
	for _, c := range dst.Counts[:dst.Lines] {
		if !s.hasHigh || c > s.high {
			s.high, s.hasHigh = c, true
		}
	}
	if s.opts.LengthMM > 0 && float64(s.high)*s.o.MMPerCount >= s.opts.LengthMM {
		s.ended = true
	}
}

// Close stops the camera and ends a ReadBlock in progress (io.EOF).
func (s *gigeStream) Close() error {
	s.closeOnce.Do(func() { close(s.closed) })
	ls, gc := s.detach()
	var err error
	if ls != nil {
		err = ls.Close()
	}
	if gc != nil {
		err = errors.Join(err, gc.Close())
	}
	return err
}

// gigeStats is the camera's gige.CameraStats summed over reconnections.
func (s *gigeStream) gigeStats() gige.CameraStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.base
	st.LineRate = 0
	if s.ls != nil {
		c := s.ls.Stats()
		st.Frames += c.Frames
		st.LostFrames += c.LostFrames
		st.Incomplete += c.Incomplete
		st.Overruns += c.Overruns
		st.Packets += c.Packets
		st.Bytes += c.Bytes
		st.ResendRequested += c.ResendRequested
		st.ResentPackets += c.ResentPackets
		st.Duplicates += c.Duplicates
		st.Malformed += c.Malformed
		st.SocketBuffer = c.SocketBuffer
		st.Lines += c.Lines
		st.LostLines += c.LostLines
		st.LineRate = c.LineRate
	}
	return st
}

// Stats returns the camera's counters for /api/status.
func (s *gigeStream) Stats() Stats {
	g := s.gigeStats()
	s.mu.Lock()
	defer s.mu.Unlock()
	return Stats{
		Index: s.idx, Name: s.name, Connected: s.connected,
		Frames: g.Frames, LostFrames: g.LostFrames, ResentPackets: g.ResentPackets,
		Lines: g.Lines, LostLines: g.LostLines, GoneLines: s.gone, Reconnects: s.reconnects, LineRate: g.LineRate,
	}
}

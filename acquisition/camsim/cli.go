package camsim

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/webinspect/webinspect/acquisition"
)

// Usage is the help text of `webinspect camera-sim`.
const Usage = `usage: webinspect camera-sim [flags]

Emulated line-scan GigE Vision cameras serving the simulated web, with its
exact ground truth, until interrupted. Camera i of N listens on IP+i:3956
on loopback (127.0.0.1, 127.0.0.2, …), or on IP:port+i elsewhere.

`

// Flags holds the command-line flags of camera-sim; Options turns them into
// Options.
type Flags struct {
	opts                Options
	stopAt, stopS, jogM float64
	verbose             bool
}

// NewFlags registers camera-sim's flags on fs with DefaultOptions values.
func NewFlags(fs *flag.FlagSet) *Flags {
	f := &Flags{opts: DefaultOptions(), stopS: 2, jogM: 0.5}
	o := &f.opts
	fs.IntVar(&o.Cameras, "cameras", o.Cameras, "cameras side by side on one web and one encoder")
	fs.StringVar(&o.Listen, "listen", o.Listen, "first camera's GVCP address, IP[:port] (port 3956 by default)")
	fs.StringVar(&o.Web.Material, "material", o.Web.Material, "web material: fabric, leather or film")
	fs.Float64Var(&o.Web.LengthM, "length", o.Web.LengthM, "web length in metres")
	fs.Int64Var(&o.Web.Seed, "seed", o.Web.Seed, "seed of texture, defects and noise")
	fs.Float64Var(&o.Web.SpeedMPerMin, "speed", o.Web.SpeedMPerMin, "web speed in m/min")
	fs.IntVar(&o.Web.Defects, "defects", o.Web.Defects, "defects to inject")
	fs.Float64Var(&o.Web.PixelMM, "pixel-mm", o.Web.PixelMM, "CD size of a pixel in mm")
	fs.Float64Var(&o.Web.LineMM, "line-mm", o.Web.LineMM, "MD length of a line in mm")
	fs.IntVar(&o.Web.CountsPerLine, "counts-per-line", o.Web.CountsPerLine, "encoder counts per line (EncoderDivider)")
	fs.Float64Var(&o.Web.OverlapMM, "overlap-mm", o.Web.OverlapMM, "CD overlap of neighbouring cameras in mm")
	fs.Float64Var(&f.stopAt, "stop-at", 0, "stop the web after this many metres (0: never), then jog back")
	fs.Float64Var(&f.stopS, "stop-seconds", f.stopS, "how long the web stands still at --stop-at")
	fs.Float64Var(&f.jogM, "jog-back", f.jogM, "metres the web is jogged back after the stop")
	fs.IntVar(&o.Width, "width", o.Width, "sensor width of each camera in pixels (multiple of 8)")
	fs.IntVar(&o.LinesPerFrame, "lines-per-frame", o.LinesPerFrame, "power-on Height: lines per frame")
	fs.Float64Var(&o.LineRate, "line-rate", o.LineRate, "power-on AcquisitionLineRate in Hz (free-running line rate)")
	fs.IntVar(&o.PacketSize, "packet-size", o.PacketSize, "power-on GevSCPSPacketSize in bytes")
	fs.Float64Var(&o.PacketLoss, "packet-loss", 0, "stream packets lost per thousand (resendable unless --no-resend)")
	fs.BoolVar(&o.NoResend, "no-resend", false, "refuse packet resends")
	fs.Float64Var(&o.FrameDrop, "frame-drop", 0, "frames dropped whole per thousand")
	fs.IntVar(&o.ResendFrames, "resend-frames", o.ResendFrames, "newest frames kept for resends")
	fs.StringVar(&o.TruthFile, "truth", "", "write the web's defect truth CSV here")
	fs.StringVar(&o.InfoFile, "info", "", "write the cameras' addresses, chunk IDs and geometry (JSON) here")
	fs.StringVar(&o.FaultsFile, "faults", "", "write the frames not sent whole (CSV) here on exit")
	fs.BoolVar(&o.PlainXML, "plain-xml", false, "serve the GenICam XML unzipped")
	fs.BoolVar(&f.verbose, "v", false, "debug logs")
	return f
}

// Options returns the parsed flags as Options (not yet validated).
func (f *Flags) Options() Options {
	o := f.opts
	if f.stopAt > 0 {
		o.Web.Motion = acquisition.StopAndJog(o.Web.SpeedMPerMin, f.stopAt, f.stopS, f.jogM)
	}
	return o
}

// Main is `webinspect camera-sim`: it parses args (without the command
// name), serves the cameras until SIGINT or SIGTERM and logs to stderr.
func Main(args []string) error {
	return MainContext(context.Background(), args, os.Stdout, os.Stderr)
}

// MainContext is Main with its context and outputs: stdout gets one line
// per camera ("camera 0 127.0.0.1:3956 camsim-0") once all listen; logs
// go to stderr.
func MainContext(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return Command(ctx, args, stdout, stderr, nil)
}

// Command is camera-sim for a host program: flag errors and help go to
// stderr, logs to log (nil: a console logger on stderr, -v for debug).
// It serves until ctx ends or SIGINT or SIGTERM.
func Command(ctx context.Context, args []string, stdout, stderr io.Writer, log *zerolog.Logger) error {
	fs := flag.NewFlagSet("camera-sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, Usage)
		fs.PrintDefaults()
	}
	f := NewFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("camera-sim: unexpected arguments %q", fs.Args())
	}
	if log == nil {
		lvl := zerolog.InfoLevel
		if f.verbose {
			lvl = zerolog.DebugLevel
		}
		l := zerolog.New(zerolog.ConsoleWriter{Out: stderr, TimeFormat: time.TimeOnly}).Level(lvl).With().Timestamp().Logger()
		log = &l
	}
	o := f.Options()
	o.Logger = log
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	e, err := New(ctx, o)
	if err != nil {
		return err
	}
	for i, a := range e.Addrs() {
		fmt.Fprintf(stdout, "camera %d %v %s\n", i, a, e.Serials()[i])
	}
	return e.Serve(ctx)
}

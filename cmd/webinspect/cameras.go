package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/webinspect/webinspect/acquisition"
	"github.com/webinspect/webinspect/acquisition/camera"
	"github.com/webinspect/webinspect/acquisition/camsim"
	"github.com/webinspect/webinspect/acquisition/gige"
	"github.com/webinspect/webinspect/acquisition/u3v"
)

// cmdCameras lists the GigE Vision and USB3 Vision cameras, dumps one's
// features (--dump) or sets them (--set).
func cmdCameras(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("cameras", flag.ContinueOnError)
	iface := fs.String("interface", "", "look for GigE Vision cameras on this interface or at this address only (default: every up interface and loopback)")
	dump := fs.String("dump", "", "dump the features of the GigE Vision camera at this address (or with this serial number)")
	set := fs.String("set", "", "set features Feature=Value (the positional arguments) on the GigE Vision camera at this address (or serial)")
	all := fs.Bool("all", false, "--dump: include invisible features")
	timeout := fs.Duration("timeout", gige.DiscoverTimeout, "how long discovery listens for answers")
	pos, err := parseFlags(fs, args, stdout)
	if err != nil {
		return err
	}
	switch {
	case *dump != "" && *set != "":
		return usageError{"--dump and --set: give one"}
	case *dump != "":
		if len(pos) > 0 {
			return usageError{fmt.Sprintf("--dump: unexpected argument %q", pos[0])}
		}
		return dumpCamera(ctx, *dump, *iface, *all, stdout)
	case *set != "":
		if len(pos) == 0 {
			return usageError{"--set ADDR needs Feature=Value arguments"}
		}
		return setCamera(ctx, *set, *iface, pos, stdout)
	case len(pos) > 0:
		return usageError{fmt.Sprintf("unexpected argument %q", pos[0])}
	}
	dctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	devs, err := discoverAll(dctx, *iface)
	switch {
	case err != nil && !errors.Is(err, gige.ErrNotFound):
		fmt.Fprintf(stdout, "GigE Vision: discovery failed: %v\n", err)
	case len(devs) == 0:
		fmt.Fprintln(stdout, "GigE Vision: no camera answered discovery")
	default:
		for _, d := range devs {
			fmt.Fprintf(stdout, "gige:%s  %s\n", d.Addr, d)
		}
	}
	fmt.Fprintf(stdout, "USB3 Vision: %s\n", u3v.Describe())
	return nil
}

// discoverAll finds GigE Vision devices on target, or on every interface
// and on the loopback addresses camera-sim uses (127.0.0.1-4) when target
// is empty.
func discoverAll(ctx context.Context, target string) ([]gige.Device, error) {
	if target != "" {
		return gige.Discover(ctx, target)
	}
	seen := map[string]bool{}
	var out []gige.Device
	var firstErr error
	add := func(ds []gige.Device, err error) {
		if err != nil && !errors.Is(err, gige.ErrNotFound) && firstErr == nil {
			firstErr = err
		}
		for _, d := range ds {
			if k := d.Addr.String(); !seen[k] {
				seen[k] = true
				out = append(out, d)
			}
		}
	}
	add(gige.Discover(ctx, ""))
	for _, a := range []string{"127.0.0.2", "127.0.0.3", "127.0.0.4"} {
		c, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		add(gige.Discover(c, a))
		cancel()
	}
	if len(out) == 0 && firstErr != nil {
		return nil, firstErr
	}
	return out, nil
}

func openForCLI(ctx context.Context, name, iface string, monitor bool) (*gige.Camera, error) {
	addr, err := camera.Resolve(ctx, name, iface)
	if err != nil {
		return nil, err
	}
	o := gige.DefaultOptions()
	o.Monitor = monitor
	return gige.Open(ctx, addr, o)
}

// dumpCamera prints every feature of the camera with its current value.
func dumpCamera(ctx context.Context, name, iface string, all bool, w io.Writer) error {
	cam, err := openForCLI(ctx, name, iface, true)
	if err != nil {
		return err
	}
	defer cam.Close()
	fmt.Fprintf(w, "# %s %s, serial %s, XML %s\n", cam.Info.Manufacturer, cam.Info.Model, cam.Info.Serial, cam.XMLURL)
	for _, f := range cam.Nodes.Features() {
		switch f.Kind {
		case "Category", "Port", "StructReg", "EnumEntry", "ConfRom", "TextDesc", "IntKey", "DcamLock", "SmartFeature", "Group":
			continue
		}
		if f.Visibility == "Invisible" && !all {
			continue
		}
		val := ""
		if f.Kind != "Command" {
			v, err := cam.Nodes.Value(f.Name)
			if err != nil {
				val = "<" + shortErr(err) + ">"
			} else {
				val = v
			}
		}
		unit := ""
		if f.Unit != "" {
			unit = " " + f.Unit
		}
		fmt.Fprintf(w, "%-22s %-32s = %s%s  (%s %s)\n", f.Category, f.Name, val, unit, f.Kind, f.Access)
	}
	return nil
}

func shortErr(err error) string {
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 && len(s) > 60 {
		s = s[i+2:]
	}
	return s
}

// setCamera sets Feature=Value pairs in order and prints each value read
// back.
func setCamera(ctx context.Context, name, iface string, kvs []string, w io.Writer) error {
	for _, kv := range kvs {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			return usageError{fmt.Sprintf("--set: %q is not Feature=Value", kv)}
		}
	}
	cam, err := openForCLI(ctx, name, iface, false)
	if err != nil {
		return err
	}
	defer cam.Close()
	for _, kv := range kvs {
		k, v, _ := strings.Cut(kv, "=")
		if err := cam.Nodes.SetValue(k, v); err != nil {
			return err
		}
		got, err := cam.Nodes.Value(k)
		if err != nil {
			got = "<" + shortErr(err) + ">"
		}
		fmt.Fprintf(w, "%s = %s\n", k, got)
	}
	return nil
}

// cmdCameraSim serves emulated line-scan GigE Vision cameras (camsim).
func cmdCameraSim(ctx context.Context, args []string, stdout io.Writer) error {
	err := camsim.Command(ctx, args, stdout, os.Stderr, &log)
	if errors.Is(err, flag.ErrHelp) {
		return err
	}
	if err != nil && strings.Contains(err.Error(), "flag") {
		return usageError{err.Error()}
	}
	return err
}

// cameraFlags are run's flags for real cameras.
type cameraFlags struct {
	geometry     *string
	iface        *string
	pixelFormat  *string
	trigger      *string
	lineRate     *float64
	exposure     *float64
	offsetX      *int
	packetSize   *int
	noResend     *bool
	stopAfter    *string
	reconnectFor *time.Duration
}

func addCameraFlags(fs *flag.FlagSet) *cameraFlags {
	d := camera.DefaultSettings()
	return &cameraFlags{
		geometry: fs.String("geometry", "", "gige:/u3v: `FILE` describing the installation as JSON: web, encoder, each camera's CD offset, pixel size and flat-field "+
			"(acquisition.Info; webinspect camera-sim --info F writes one)"),
		iface:        fs.String("interface", "", "gige: where to look for cameras named by serial number (default: every interface)"),
		pixelFormat:  fs.String("pixel-format", "", "gige:/u3v: PixelFormat to set (Mono8, Mono10, Mono12, Mono12p, …; default: the camera's)"),
		trigger:      fs.String("trigger-source", d.TriggerSource, "gige:/u3v: LineStart TriggerSource (the encoder), or free-run"),
		lineRate:     fs.Float64("line-rate", 0, "gige:/u3v: AcquisitionLineRate in Hz (free-run; 0: the camera's)"),
		exposure:     fs.Float64("exposure-us", 0, "gige:/u3v: ExposureTime in µs (0: the camera's)"),
		offsetX:      fs.Int("offset-x", 0, "gige:/u3v: OffsetX, the first sensor column read out"),
		packetSize:   fs.Int("packet-size", 0, "gige: stream packet size in bytes (0: the camera's)"),
		noResend:     fs.Bool("no-resend", false, "gige: never ask for lost packets again"),
		stopAfter:    fs.String("stop-after", "", "gige:/u3v: end the run once this much web has passed (e.g. 200m; default: run until interrupted)"),
		reconnectFor: fs.Duration("reconnect-for", 0, "gige: how long a camera that went away is waited for before the rest of the roll is given up (0: until the run ends)"),
	}
}

// openCameraSource opens --source gige:A[,B…] or u3v:SERIAL.
func (f *cameraFlags) open(ctx context.Context, source string) (*camera.Source, error) {
	if *f.geometry == "" {
		return nil, usageError{fmt.Sprintf("--source %s needs --geometry FILE: where the cameras look on the web (see README, \"Use a real camera\")", source)}
	}
	g, err := camera.ReadGeometry(*f.geometry)
	if err != nil {
		return nil, usageError{fmt.Sprintf("--geometry: %v", err)}
	}
	s := camera.DefaultSettings()
	s.PixelFormat, s.TriggerSource, s.LineRate, s.ExposureUS, s.OffsetX = *f.pixelFormat, *f.trigger, *f.lineRate, *f.exposure, *f.offsetX
	if kind, rest, _ := strings.Cut(source, ":"); kind == "u3v" {
		return camera.OpenU3V(rest, g, s)
	}
	o := camera.DefaultOptions()
	for _, c := range strings.Split(strings.TrimPrefix(source, "gige:"), ",") {
		o.Cameras = append(o.Cameras, strings.TrimSpace(c))
	}
	o.Geometry, o.Settings, o.Interface = g, s, *f.iface
	o.PacketSize, o.NoResend, o.ReconnectFor = *f.packetSize, *f.noResend, *f.reconnectFor
	o.Log = log
	if *f.stopAfter != "" {
		m, err := parseLengthM("stop-after", *f.stopAfter)
		if err != nil {
			return nil, err
		}
		o.LengthMM = m * 1000
	}
	if err := o.Validate(); err != nil {
		return nil, usageError{fmt.Sprintf("--source %s: %v", source, err)}
	}
	return camera.OpenGigE(ctx, o)
}

var _ acquisition.Source = (*camera.Source)(nil)

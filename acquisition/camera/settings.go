package camera

import (
	"fmt"
	"strconv"

	"github.com/webinspect/webinspect/acquisition"
	"github.com/webinspect/webinspect/acquisition/genicam"
)

// FreeRun as Settings.TriggerSource lets the camera take lines at
// AcquisitionLineRate instead of on encoder triggers (LineStart
// TriggerMode=Off): for set-up only, the counts then do not follow the web.
const FreeRun = "free-run"

// Settings are the camera settings a run writes onto the SFNC features of
// every camera. Zero values keep the camera's own setting.
type Settings struct {
	// OffsetX is the first sensor column read out (OffsetX); the camera's
	// Width is its geometry width.
	OffsetX int
	// PixelFormat is the PFNC name (Mono8, Mono10, Mono12, Mono12p, …);
	// every mono format is converted to the engine's 8 bits.
	PixelFormat string
	// TriggerSource is the LineStart trigger source (the encoder, e.g.
	// "Encoder0"), or FreeRun.
	TriggerSource string
	// LineRate is AcquisitionLineRate in Hz (used when free-running).
	LineRate float64
	// ExposureUS is ExposureTime in microseconds.
	ExposureUS float64
}

// DefaultSettings triggers every line from Encoder0 and keeps the rest.
func DefaultSettings() Settings { return Settings{TriggerSource: "Encoder0"} }

// Validate names the first bad field.
func (s Settings) Validate() error {
	switch {
	case s.OffsetX < 0:
		return fmt.Errorf("%w: Settings.OffsetX %d (>= 0)", ErrOptions, s.OffsetX)
	case s.LineRate < 0:
		return fmt.Errorf("%w: Settings.LineRate %v (>= 0)", ErrOptions, s.LineRate)
	case s.ExposureUS < 0:
		return fmt.Errorf("%w: Settings.ExposureUS %v (>= 0)", ErrOptions, s.ExposureUS)
	}
	return nil
}

// featureWriter writes features in order and keeps the first error, which
// names the camera, the feature and the value.
type featureWriter struct {
	nodes *genicam.NodeMap
	cam   string
	err   error
}

func (w *featureWriter) set(name, value string) {
	if w.err != nil {
		return
	}
	if err := w.nodes.SetValue(name, value); err != nil {
		w.err = fmt.Errorf("%w: %s: set %s = %s: %w", ErrFeature, w.cam, name, value, err)
	}
}

func (w *featureWriter) setInt(name string, v int64) { w.set(name, strconv.FormatInt(v, 10)) }

func (w *featureWriter) setFloat(name string, v float64) {
	w.set(name, strconv.FormatFloat(v, 'g', -1, 64))
}

// apply writes the camera's geometry (Width = cam.Width, Height = lines when
// > 0, EncoderDivider = k) and s onto the node map, and turns on the
// ChunkEncoderValue chunk when chunk is set. name identifies the camera in
// errors.
func apply(nodes *genicam.NodeMap, name string, cam acquisition.CameraInfo, lines, k int, chunk bool, s Settings) error {
	w := &featureWriter{nodes: nodes, cam: name}
	if nodes.Has("DeviceScanType") {
		v, err := nodes.Enum("DeviceScanType")
		if err != nil {
			return fmt.Errorf("%w: %s: %w", ErrFeature, name, err)
		}
		if v != "Linescan" {
			return fmt.Errorf("%w: %s: DeviceScanType is %s: webinspect needs a line-scan camera", ErrFeature, name, v)
		}
	}
	// OffsetX first goes to 0 so that any Width fits, then back.
	if nodes.Has("OffsetX") {
		w.setInt("OffsetX", 0)
	}
	w.setInt("Width", int64(cam.Width))
	if s.OffsetX > 0 {
		w.setInt("OffsetX", int64(s.OffsetX))
	}
	if s.PixelFormat != "" {
		w.set("PixelFormat", s.PixelFormat)
	}
	if lines > 0 {
		w.setInt("Height", int64(lines))
	}
	switch s.TriggerSource {
	case "":
	case FreeRun:
		w.set("TriggerSelector", "LineStart")
		w.set("TriggerMode", "Off")
	default:
		w.set("TriggerSelector", "LineStart")
		w.set("TriggerMode", "On")
		w.set("TriggerSource", s.TriggerSource)
	}
	if k > 1 || nodes.Has("EncoderDivider") {
		w.setInt("EncoderDivider", int64(k))
	}
	if s.LineRate > 0 {
		w.setFloat("AcquisitionLineRate", s.LineRate)
	}
	if s.ExposureUS > 0 {
		w.setFloat("ExposureTime", s.ExposureUS)
	}
	if chunk {
		w.set("ChunkModeActive", "1")
		w.set("ChunkSelector", "EncoderValue")
		w.set("ChunkEnable", "1")
	}
	return w.err
}

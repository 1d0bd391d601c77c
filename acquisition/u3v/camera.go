package u3v

import (
	"errors"
	"fmt"

	"github.com/webinspect/webinspect/acquisition/genicam"
	"github.com/webinspect/webinspect/acquisition/pfnc"
)

// Camera is a U3V device with its GenICam node map connected to the
// control channel.
type Camera struct {
	*Device
	Nodes *genicam.NodeMap
}

// OpenCamera opens the device with USB serial number serial ("" when only
// one is attached), fetches and parses its device XML and connects the
// node map.
func OpenCamera(serial string, opt ControlOptions) (*Camera, error) {
	d, err := Open(serial, opt)
	if err != nil {
		return nil, err
	}
	c, err := NewCamera(d)
	if err != nil {
		return nil, errors.Join(err, d.Close())
	}
	return c, nil
}

// NewCamera reads d's node map. The camera owns d from then on.
func NewCamera(d *Device) (*Camera, error) {
	nodes, err := d.NodeMap()
	if err != nil {
		return nil, err
	}
	return &Camera{Device: d, Nodes: nodes}, nil
}

// OpenLineStream fills what opt leaves zero from the node map (Camera.Width
// from Width, Height, PixelFormat, PayloadSize), sets up the stream
// interface, executes AcquisitionStart and returns the camera's line
// stream. The stream's Close executes AcquisitionStop; the camera stays
// open.
func (c *Camera) OpenLineStream(opt StreamOptions) (*Stream, error) {
	if err := c.fill(&opt); err != nil {
		return nil, err
	}
	s, err := c.OpenStream(opt)
	if err != nil {
		return nil, err
	}
	s.stop = func() error { return c.Nodes.Execute("AcquisitionStop") }
	if err := c.Nodes.Execute("AcquisitionStart"); err != nil {
		s.stop = nil
		return nil, errors.Join(fmt.Errorf("u3v: AcquisitionStart: %w", err), s.Close())
	}
	return s, nil
}

// fill completes opt from the node map. Features the camera lacks are
// left for the SIRM to decide.
func (c *Camera) fill(opt *StreamOptions) error {
	if opt.Camera.Width == 0 {
		w, err := c.Nodes.Int("Width")
		if err != nil {
			return err
		}
		opt.Camera.Width = int(w)
	}
	if opt.CountsPerLine == 0 {
		opt.CountsPerLine = 1
	}
	if opt.Height == 0 {
		if h, err := c.Nodes.Int("Height"); err == nil {
			opt.Height = int(h)
		}
	}
	if opt.PixelFormat == 0 {
		name, err := c.Nodes.Enum("PixelFormat")
		if err != nil {
			return err
		}
		f, ok := pfnc.ParsePixelFormat(name)
		pf := uint32(f)
		if !ok {
			return fmt.Errorf("%w: PixelFormat %s (want Mono8/10/12/16, packed or not)", ErrUnsupported, name)
		}
		opt.PixelFormat = pf
	}
	if opt.PayloadSize == 0 {
		if p, err := c.Nodes.Int("PayloadSize"); err == nil {
			opt.PayloadSize = p
		}
	}
	return nil
}

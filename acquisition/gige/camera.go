package gige

import (
	"context"
	"fmt"

	"github.com/webinspect/webinspect/acquisition"
	"github.com/webinspect/webinspect/acquisition/genicam"
	"github.com/webinspect/webinspect/acquisition/gige/wire"
)

// Camera is a GigE Vision device under our control, with its GenICam node
// map connected to the control channel.
type Camera struct {
	Conn   *Conn
	Nodes  *genicam.NodeMap
	Info   wire.DiscoveryAck // bootstrap identity
	XMLURL string
}

var _ genicam.Port = (*Conn)(nil)

// Open dials the device at addr, takes control, reads its bootstrap
// identity and its GenICam XML, and connects the node map.
func Open(ctx context.Context, addr string, opts Options) (*Camera, error) {
	c, err := Dial(ctx, addr, opts)
	if err != nil {
		return nil, err
	}
	cam, err := open(c)
	if err != nil {
		c.Close()
		return nil, err
	}
	return cam, nil
}

func open(c *Conn) (*Camera, error) {
	info, err := c.Bootstrap()
	if err != nil {
		return nil, fmt.Errorf("gige: bootstrap of %v: %w", c.Device(), err)
	}
	url, err := c.XMLURL()
	if err != nil {
		return nil, fmt.Errorf("gige: XML URL of %v: %w", c.Device(), err)
	}
	xml, err := genicam.FetchXML(c, url)
	if err != nil {
		return nil, fmt.Errorf("gige: XML of %v (%q): %w", c.Device(), url, err)
	}
	nodes, err := genicam.Parse(xml)
	if err != nil {
		return nil, fmt.Errorf("gige: XML of %v: %w", c.Device(), err)
	}
	nodes.Connect(c)
	return &Camera{Conn: c, Nodes: nodes, Info: info, XMLURL: url}, nil
}

// LineConfig selects how OpenLineStream streams.
type LineConfig struct {
	Line   LineOptions   // Camera.Width is filled from the Width feature when 0
	Stream StreamOptions // MaxPayload is filled from PayloadSize when 0
}

// OpenLineStream opens the stream channel, executes AcquisitionStart and
// returns an acquisition.Stream of the camera's lines. Its Close executes
// AcquisitionStop and closes the channel (not the camera).
func (c *Camera) OpenLineStream(cfg LineConfig) (*LineStream, error) {
	if cfg.Line.Camera.Width == 0 {
		w, err := c.Nodes.Int("Width")
		if err != nil {
			return nil, err
		}
		cfg.Line.Camera.Width = int(w)
	}
	if cfg.Stream.MaxPayload == 0 {
		p, err := c.Nodes.Int("PayloadSize")
		if err != nil {
			return nil, err
		}
		def := DefaultStreamOptions(int(p))
		def.Channel, def.PacketSize, def.NoResend, def.Log = cfg.Stream.Channel, cfg.Stream.PacketSize, cfg.Stream.NoResend, cfg.Stream.Log
		cfg.Stream = def
	}
	if cfg.Line.CountsPerLine == 0 {
		cfg.Line.CountsPerLine = 1
	}
	s, err := OpenStream(c.Conn, cfg.Stream)
	if err != nil {
		return nil, err
	}
	cfg.Line.Stop = func() error { return c.Nodes.Execute("AcquisitionStop") }
	ls, err := NewLineStream(s, cfg.Line)
	if err == nil {
		err = c.Nodes.Execute("AcquisitionStart")
	}
	if err != nil {
		s.Close()
		return nil, err
	}
	return ls, nil
}

// Close releases control and the channel.
func (c *Camera) Close() error { return c.Conn.Close() }

var _ acquisition.Stream = (*LineStream)(nil)

package camera

import (
	"fmt"

	"github.com/webinspect/webinspect/acquisition"
	"github.com/webinspect/webinspect/acquisition/gige"
	"github.com/webinspect/webinspect/acquisition/u3v"
)

// OpenU3V opens the USB3 Vision camera with USB serial number serial ("":
// the only one attached), sets it up from g and s as OpenGigE does and
// starts acquisition. g describes one camera. A U3V camera that is
// unplugged ends its stream with the error (no reconnection: the engine
// records the rest of the web as uninspected, source-error).
func OpenU3V(serial string, g Geometry, s Settings) (*Source, error) {
	if err := g.Validate(); err != nil {
		return nil, err
	}
	if len(g.Source.Cameras) != 1 {
		return nil, fmt.Errorf("%w: u3v:%s is one camera, the geometry describes %d", ErrOptions, serial, len(g.Source.Cameras))
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	chunk, _ := g.EncoderChunkID()
	cam, err := u3v.OpenCamera(serial, u3v.DefaultControlOptions())
	if err != nil {
		return nil, err
	}
	info := g.Source
	info.Live = true
	info.Name = "u3v:" + serial
	ci := info.Cameras[0]
	ci.Index = 0
	info.Cameras = []acquisition.CameraInfo{ci}
	name := fmt.Sprintf("camera 0 (u3v:%s)", serial)
	if err := apply(cam.Nodes, name, ci, info.LinesPerBlock, info.CountsPerLine, chunk != 0, s); err != nil {
		cam.Close()
		return nil, err
	}
	h, err := cam.Nodes.Int("Height")
	if err != nil {
		cam.Close()
		return nil, fmt.Errorf("%w: %s: %w", ErrFeature, name, err)
	}
	info.LinesPerBlock = int(h)
	st, err := cam.OpenLineStream(u3v.StreamOptions{Camera: ci, CountsPerLine: info.CountsPerLine, EncoderChunkID: chunk})
	if err != nil {
		cam.Close()
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	us := &u3vStream{Stream: st, cam: cam, serial: serial}
	src := &Source{info: info, streams: []acquisition.Stream{us}, stats: []func() Stats{us.stats}, coll: &gige.Collector{}}
	src.coll.Add("0", us.gigeStats)
	return src, nil
}

// u3vStream is a U3V camera's stream that closes its camera too.
type u3vStream struct {
	*u3v.Stream
	cam    *u3v.Camera
	serial string
}

func (u *u3vStream) Close() error {
	err := u.Stream.Close()
	if cerr := u.cam.Close(); err == nil {
		err = cerr
	}
	return err
}

func (u *u3vStream) gigeStats() gige.CameraStats {
	st := u.Stream.Stats()
	var g gige.CameraStats
	g.Frames, g.LostFrames = int64(st.Frames), int64(st.LostFrames)
	g.Lines, g.LostLines, g.LineRate = int64(st.Lines), int64(st.LostLines), st.LineRate
	return g
}

func (u *u3vStream) stats() Stats {
	g := u.gigeStats()
	return Stats{Name: "u3v:" + u.serial, Connected: true, Frames: g.Frames, LostFrames: g.LostFrames,
		Lines: g.Lines, LostLines: g.LostLines, LineRate: g.LineRate}
}

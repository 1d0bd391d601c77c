package main

import (
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/webinspect/webinspect/acquisition/camera"
	"github.com/webinspect/webinspect/acquisition/frames"
)

// framesFlags are the options of `run --source frames:DIR`: a folder of
// real line-scan frames played as one continuous web (acquisition/frames).
type framesFlags struct {
	order    *string
	repeat   *int
	truthOut *string
}

func addFramesFlags(fs *flag.FlagSet) framesFlags {
	return framesFlags{
		order:    fs.String("frames-order", "name", "frames: play the frames in `ORDER` name (by path) or shuffle (by --seed)"),
		repeat:   fs.Int("frames-repeat", 1, "frames: play the folder `N` times (a new shuffle each time)"),
		truthOut: fs.String("truth-out", "", "frames: write the played web's truth (each defect frame's MD range, its mask's box) to `FILE` as truth.csv"),
	}
}

// openFrames opens --source frames:DIR. The geometry (encoder resolution,
// trigger divider, block height, the camera's pixel size and CD offset,
// speed and material) comes from --geometry when it is given, as for a
// real camera; otherwise from the frames defaults (0.25 mm per pixel and
// per line) with --material, --speed and --seed from the command line.
func (f framesFlags) open(source, geometryPath string, sf simFlags) (*frames.Source, error) {
	dir := strings.TrimPrefix(source, "frames:")
	if dir == "" {
		return nil, usageError{"--source frames:DIR needs the folder of frames"}
	}
	o := frames.DefaultOptions()
	o.Order = *f.order
	o.Repeat = *f.repeat
	o.Seed = uint64(*sf.seed)
	o.Material = *sf.material
	speed, err := parseSpeed("speed", *sf.speed)
	if err != nil {
		return nil, err
	}
	o.SpeedMPerMin = speed
	geomWidth := 0
	if geometryPath != "" {
		g, err := camera.ReadGeometry(geometryPath)
		if err != nil {
			return nil, usageError{fmt.Sprintf("--geometry: %v", err)}
		}
		in := g.Source
		if len(in.Cameras) != 1 {
			return nil, usageError{fmt.Sprintf("--geometry %s describes %d cameras; frames:DIR is one camera", geometryPath, len(in.Cameras))}
		}
		geomWidth = in.Cameras[0].Width
		o.MMPerCount, o.CountsPerLine = in.MMPerCount, in.CountsPerLine
		o.PixelMM, o.OffsetMM = in.Cameras[0].PixelMM, in.Cameras[0].OffsetMM
		if in.LinesPerBlock > 0 {
			o.LinesPerBlock = in.LinesPerBlock
		}
		if in.SpeedMPerMin > 0 {
			o.SpeedMPerMin = in.SpeedMPerMin
		}
		if in.Material != "" {
			o.Material = in.Material
		}
	}
	if err := o.Validate(); err != nil {
		return nil, usageError{fmt.Sprintf("--source %s: %v", source, err)}
	}
	s, err := frames.Open(dir, o)
	if err != nil {
		return nil, err
	}
	// The geometry file's camera must be the frames' camera.
	if w := s.Info().Cameras[0].Width; geomWidth != 0 && geomWidth != w {
		s.Close()
		return nil, usageError{fmt.Sprintf("--geometry %s: camera width %d, but the frames are %d pixels wide", geometryPath, geomWidth, w)}
	}
	if *f.truthOut != "" {
		if err := writeFramesTruth(s, *f.truthOut); err != nil {
			s.Close()
			return nil, err
		}
	}
	return s, nil
}

func writeFramesTruth(s *frames.Source, path string) error {
	out, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("--truth-out: %w", err)
	}
	if err := s.WriteTruth(out); err != nil {
		out.Close()
		return fmt.Errorf("--truth-out %s: %w", path, err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("--truth-out %s: %w", path, err)
	}
	return nil
}

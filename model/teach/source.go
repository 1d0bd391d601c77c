package teach

import (
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/webinspect/webinspect/acquisition"
	"github.com/webinspect/webinspect/acquisition/recording"
	"github.com/webinspect/webinspect/kernels"
)

// ReadPNG reads a PNG file as 8-bit grayscale (colour is converted with
// the standard luma weights, 16-bit is reduced to its high byte).
func ReadPNG(path string) (Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return Image{}, fmt.Errorf("%w: %v", ErrImage, err)
	}
	defer f.Close()
	src, err := png.Decode(f)
	if err != nil {
		return Image{}, fmt.Errorf("%w: %s: %v", ErrImage, path, err)
	}
	return FromImage(src), nil
}

// FromImage converts any image.Image to an 8-bit grayscale Image.
func FromImage(src image.Image) Image {
	b := src.Bounds()
	im := Image{W: b.Dx(), H: b.Dy(), Pix: make([]uint8, b.Dx()*b.Dy())}
	if g, ok := src.(*image.Gray); ok {
		for y := range im.H {
			copy(im.Pix[y*im.W:(y+1)*im.W], g.Pix[y*g.Stride:y*g.Stride+im.W])
		}
		return im
	}
	for y := range im.H {
		for x := range im.W {
			im.Pix[y*im.W+x] = color.GrayModel.Convert(src.At(b.Min.X+x, b.Min.Y+y)).(color.Gray).Y
		}
	}
	return im
}

// ListPNGs returns the .png files in dir, sorted by name.
func ListPNGs(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoImages, err)
	}
	var out []string
	for _, e := range ents {
		if !e.IsDir() && strings.EqualFold(filepath.Ext(e.Name()), ".png") {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	slices.Sort(out)
	return out, nil
}

// ReadDir reads every PNG in dir. An MVTec-style set directory (one with
// train/good) reads train/good instead.
func ReadDir(dir string) ([]Image, error) {
	if st, err := os.Stat(filepath.Join(dir, "train", "good")); err == nil && st.IsDir() {
		dir = filepath.Join(dir, "train", "good")
	}
	paths, err := ListPNGs(dir)
	if err != nil {
		return nil, err
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("%w: %s holds no .png files", ErrNoImages, dir)
	}
	imgs := make([]Image, len(paths))
	for i, p := range paths {
		if imgs[i], err = ReadPNG(p); err != nil {
			return nil, err
		}
	}
	return imgs, nil
}

// FromLines cuts a line stream into frames of frameLines lines of width
// pixels for teaching. next returns the next line (valid until the next
// call) and false at the end; at most maxFrames frames are taken (0: no
// limit). A trailing partial frame is dropped.
func FromLines(next func() ([]uint8, bool), width, frameLines, maxFrames int) ([]Image, error) {
	if width < 1 || frameLines < 1 {
		return nil, fmt.Errorf("%w: width %d and frame lines %d, want ≥ 1", ErrOptions, width, frameLines)
	}
	var frames []Image
	cur := Image{W: width, H: frameLines, Pix: make([]uint8, 0, width*frameLines)}
	for maxFrames <= 0 || len(frames) < maxFrames {
		line, ok := next()
		if !ok {
			break
		}
		if len(line) < width {
			return nil, fmt.Errorf("%w: line of %d pixels, want %d", ErrImage, len(line), width)
		}
		cur.Pix = append(cur.Pix, line[:width]...)
		if len(cur.Pix) == width*frameLines {
			frames = append(frames, cur)
			cur = Image{W: width, H: frameLines, Pix: make([]uint8, 0, width*frameLines)}
		}
	}
	if len(frames) == 0 {
		return nil, fmt.Errorf("%w: the line stream ended before one frame of %d lines", ErrNoImages, frameLines)
	}
	return frames, nil
}

// TeachFromLines teaches on a line stream: frames of TileH·Bin lines (one
// tile row) of the full width, up to maxFrames of them.
func TeachFromLines(next func() ([]uint8, bool), width, maxFrames int, o Options) (*Taught, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	frames, err := FromLines(next, width, o.TileH*o.Bin, maxFrames)
	if err != nil {
		return nil, err
	}
	return Teach(frames, o)
}

// IsRecording reports whether dir holds a recording (recording.json).
func IsRecording(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, recording.MetaFile))
	return err == nil
}

// ReadRecording reads the first metres of camera cam of a recording and
// cuts them into frames of frameLines lines (see FromLines). metres ≤ 0
// reads the whole recording. flatTarget 1..255 applies the camera's
// flat-field correction onto that white level as the engine does before
// its detectors (cameras without dark/white references are left as they
// are); 0 feeds raw lines.
func ReadRecording(ctx context.Context, dir string, cam int, metres float64, frameLines, flatTarget int) ([]Image, acquisition.Info, error) {
	src, err := recording.Open(dir, recording.ReadOptions{})
	if err != nil {
		return nil, acquisition.Info{}, err
	}
	defer src.Close()
	info := src.Info()
	streams := src.Streams()
	if cam < 0 || cam >= len(streams) {
		return nil, info, fmt.Errorf("%w: camera %d, the recording has %d", ErrOptions, cam, len(streams))
	}
	st := streams[cam]
	width := st.Camera().Width
	maxLines := int64(-1)
	if metres > 0 && info.LineMM() > 0 {
		maxLines = int64(metres * 1000 / info.LineMM())
	}
	blk := acquisition.NewBlock(max(info.LinesPerBlock, 1), width)
	ci := st.Camera()
	var gain []uint16
	var corr []uint8
	if flatTarget > 0 && len(ci.Dark) == width && len(ci.White) == width {
		gain = make([]uint16, width)
		corr = make([]uint8, width)
		kernels.FlatFieldGains(gain, ci.Dark, ci.White, uint8(min(flatTarget, 255)))
	}
	var lines int64
	i := 0
	var readErr error
	next := func() ([]uint8, bool) {
		if maxLines >= 0 && lines >= maxLines {
			return nil, false
		}
		for i >= blk.Lines {
			if err := st.ReadBlock(ctx, blk); err != nil {
				if !errors.Is(err, io.EOF) {
					readErr = err
				}
				return nil, false
			}
			i = 0
		}
		l := blk.Line(i)
		if gain != nil {
			kernels.FlatField(corr, l, ci.Dark, gain)
			l = corr
		}
		i++
		lines++
		return l, true
	}
	frames, err := FromLines(next, width, frameLines, 0)
	if readErr != nil {
		return nil, info, fmt.Errorf("teach: read %s camera %d: %w", dir, cam, readErr)
	}
	if err != nil {
		return nil, info, fmt.Errorf("%w (%s, %d lines read)", err, dir, lines)
	}
	return frames, info, nil
}

package camera

import (
	"encoding/json"
	"errors"
	"fmt"
	"github.com/webinspect/webinspect/internal/boundedfile"
	"strconv"
	"strings"

	"github.com/webinspect/webinspect/acquisition"
)

// Errors returned by the package.
var (
	// ErrGeometry is returned (wrapped) for a geometry file that cannot be
	// read or describes an impossible installation; the message names the
	// field.
	ErrGeometry = errors.New("camera: bad geometry")
	// ErrOptions is returned (wrapped) by Validate for a bad option field.
	ErrOptions = errors.New("camera: invalid options")
	// ErrFeature is returned (wrapped) when a camera setting cannot be
	// written; the message names the camera, the feature and the value.
	ErrFeature = errors.New("camera: feature")
)

// maxGeometryBytes caps a geometry file (flat-field references of 16
// cameras of 16 k pixels fit easily).
const maxGeometryBytes = 64 << 20

// Geometry is the installation the cameras are mounted in: the source's
// acquisition.Info (web, encoder, each camera's CD offset, pixel size and
// flat-field references) and the chunk IDs of the cameras' chunk data. It
// is what `webinspect camera-sim --info` writes.
type Geometry struct {
	Source   acquisition.Info  `json:"source"`
	ChunkIDs map[string]string `json:"chunk_ids,omitempty"`
}

// ReadGeometry reads and validates a geometry file.
func ReadGeometry(path string) (Geometry, error) {
	b, err := boundedfile.Read(path, maxGeometryBytes)
	if err != nil {
		return Geometry{}, fmt.Errorf("%w: %w", ErrGeometry, err)
	}
	var g Geometry
	if err := json.Unmarshal(b, &g); err != nil {
		return Geometry{}, fmt.Errorf("%w: %s: %w", ErrGeometry, path, err)
	}
	if err := g.Validate(); err != nil {
		return Geometry{}, fmt.Errorf("%s: %w", path, err)
	}
	return g, nil
}

// Validate names the first impossible field.
func (g Geometry) Validate() error {
	in := g.Source
	switch {
	case !(in.MMPerCount > 0 && in.MMPerCount < 1000):
		return fmt.Errorf("%w: source.mm_per_count = %v: must be > 0", ErrGeometry, in.MMPerCount)
	case in.CountsPerLine < 1 || in.CountsPerLine > 1<<20:
		return fmt.Errorf("%w: source.counts_per_line = %d: must be between 1 and %d", ErrGeometry, in.CountsPerLine, 1<<20)
	case in.LinesPerBlock < 0 || in.LinesPerBlock > 65536:
		return fmt.Errorf("%w: source.lines_per_block = %d: must be between 0 (the camera's Height) and 65536", ErrGeometry, in.LinesPerBlock)
	case !(in.WebWidthMM > 0):
		return fmt.Errorf("%w: source.web_width_mm = %v: must be > 0", ErrGeometry, in.WebWidthMM)
	case len(in.Cameras) < 1 || len(in.Cameras) > 64:
		return fmt.Errorf("%w: source.cameras: %d cameras (1 to 64)", ErrGeometry, len(in.Cameras))
	}
	for i, c := range in.Cameras {
		switch {
		case c.Width < 1 || c.Width > 65536:
			return fmt.Errorf("%w: source.cameras[%d].width = %d: must be between 1 and 65536", ErrGeometry, i, c.Width)
		case !(c.PixelMM > 0):
			return fmt.Errorf("%w: source.cameras[%d].pixel_mm = %v: must be > 0", ErrGeometry, i, c.PixelMM)
		case c.Dark != nil && len(c.Dark) != c.Width:
			return fmt.Errorf("%w: source.cameras[%d].dark has %d values for %d pixels", ErrGeometry, i, len(c.Dark), c.Width)
		case c.White != nil && len(c.White) != c.Width:
			return fmt.Errorf("%w: source.cameras[%d].white has %d values for %d pixels", ErrGeometry, i, len(c.White), c.Width)
		}
	}
	if _, err := g.EncoderChunkID(); err != nil {
		return err
	}
	return nil
}

// EncoderChunkID is the chunk ID of ChunkEncoderValue (chunk_ids.EncoderValue,
// hex with 0x or decimal), 0 when the file gives none.
func (g Geometry) EncoderChunkID() (uint32, error) {
	s, ok := g.ChunkIDs["EncoderValue"]
	if !ok || s == "" {
		return 0, nil
	}
	v, err := strconv.ParseUint(strings.TrimSpace(s), 0, 32)
	if err != nil || v == 0 {
		return 0, fmt.Errorf("%w: chunk_ids.EncoderValue = %q: want a non-zero 32-bit chunk ID such as 0x57490002", ErrGeometry, s)
	}
	return uint32(v), nil
}

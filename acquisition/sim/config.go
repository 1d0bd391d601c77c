package sim

import (
	"fmt"
	"math"
	"time"

	"github.com/webinspect/webinspect/acquisition"
)

// Materials the simulator can make.
const (
	Fabric  = "fabric"
	Leather = "leather"
	Film    = "film"
)

// Config describes a synthetic web, its cameras and its encoder. The zero
// value is not valid; start from DefaultConfig.
type Config struct {
	// Material is the web's texture: "fabric", "leather" or "film".
	Material string `json:"material"`
	// Seed fixes everything random: texture, calibration, defects, noise.
	Seed int64 `json:"seed"`
	// LengthM is the roll length in metres; generation ends when the web's
	// high-water mark reaches it. (0, 100000].
	LengthM float64 `json:"length_m"`
	// WidthMM is the web width in millimetres, covered exactly by the
	// cameras. (0, 20000].
	WidthMM float64 `json:"width_mm"`
	// PixelMM is the CD size of one pixel. [0.01, 10].
	PixelMM float64 `json:"pixel_mm"`
	// LineMM is the MD length one line covers. [0.01, 10].
	LineMM float64 `json:"line_mm"`
	// CountsPerLine is the trigger divider k; the encoder resolution is
	// LineMM/CountsPerLine millimetres per count. [1, 1024].
	CountsPerLine int `json:"counts_per_line"`
	// SpeedMPerMin is the line speed used when Motion is nil, and the
	// nominal speed reported in Info. (0, 10000].
	SpeedMPerMin float64 `json:"speed_m_per_min"`
	// Cameras is the number of cameras side by side. [1, 64].
	Cameras int `json:"cameras"`
	// OverlapMM is the CD width neighbouring cameras share.
	// [0, WidthMM/Cameras).
	OverlapMM float64 `json:"overlap_mm"`
	// Vignetting is the relative fall-off of the illumination and lens
	// response at a camera's edges (0.25: the edges get 75 % of the centre).
	// [0, 0.9].
	Vignetting float64 `json:"vignetting"`
	// GainSpread is the standard deviation of the per-pixel relative gain
	// (photo-response non-uniformity). [0, 0.2].
	GainSpread float64 `json:"gain_spread"`
	// DarkLevel is the mean raw grey level with the light off. [0, 64].
	DarkLevel float64 `json:"dark_level"`
	// Noise is the standard deviation of the camera noise in raw grey
	// levels. [0, 32].
	Noise float64 `json:"noise"`
	// Defects is how many defects to inject. [0, 100000].
	Defects int `json:"defects"`
	// ContrastScale multiplies every defect's contrast: below 1 makes
	// subtle defects (0.2 puts most of them under the threshold
	// detector's reach). 0 means 1. [0, 2].
	ContrastScale float64 `json:"contrast_scale,omitempty"`
	// LinesPerBlock is the number of lines per block. [1, 65536].
	LinesPerBlock int `json:"lines_per_block"`
	// Motion is the web's movement; nil means constant SpeedMPerMin. See
	// acquisition.ValidatePhases for what is allowed.
	Motion []acquisition.Phase `json:"motion,omitempty"`
	// Realtime paces ReadBlock to the wall clock: a block is returned no
	// earlier than the trigger time of its last line after the first read.
	Realtime bool `json:"realtime"`
	// LearnM is the MD length at the start of the roll kept free of defects
	// (for teaching). [0, LengthM).
	LearnM float64 `json:"learn_m"`
	// Lot, when set, is a benign change of yarn lot (or batch) over a
	// stretch of the web: good material whose mean and texture contrast
	// differ a little from the rest, which a model taught on the first
	// metres has never seen. It is not a defect: Truth does not list it.
	Lot *Lot `json:"lot,omitempty"`
	// Start is the clock time of the first trigger, used for Block.Time.
	// Zero means the time New is called.
	Start time.Time `json:"start,omitzero"`
}

// Lot is a stretch of the web made from another yarn lot: from AtM for
// LengthM metres the true grey value of the material (before defects,
// across the whole width) becomes
//
//	v' = base + Contrast·(v - base) + Shift
//
// with base the material's mean level (fabric 130, leather 110, film 170).
// At each end the new lot blends in over RampM metres (Shift and Contrast
// grow linearly from nothing), as when bobbins of both lots run side by
// side for a while: an abrupt step across the whole width would be a
// shade bar, a defect of its own.
type Lot struct {
	// AtM is where the lot starts, metres from the roll start. [0, LengthM).
	AtM float64 `json:"at_m"`
	// LengthM is how long it lasts, metres. (0, 100000].
	LengthM float64 `json:"length_m"`
	// Shift is the change of mean level in grey levels. [-40, 40].
	Shift float64 `json:"shift"`
	// Contrast scales the texture around the mean (1: unchanged; 0 means
	// 1). [0, 3].
	Contrast float64 `json:"contrast,omitempty"`
	// RampM is the length of the blend at each end, metres. [0, LengthM/2].
	RampM float64 `json:"ramp_m,omitempty"`
}

// DefaultConfig returns a 2 m wide, 200 m long fabric at 100 m/min seen by
// two cameras at 0.25 mm resolution, with no defects.
func DefaultConfig() Config {
	return Config{
		Material:      Fabric,
		Seed:          1,
		LengthM:       200,
		WidthMM:       2000,
		PixelMM:       0.25,
		LineMM:        0.25,
		CountsPerLine: 4,
		SpeedMPerMin:  100,
		Cameras:       2,
		OverlapMM:     16,
		Vignetting:    0.25,
		GainSpread:    0.03,
		DarkLevel:     8,
		Noise:         2.5,
		Defects:       0,
		LinesPerBlock: 256,
		LearnM:        1.0,
	}
}

// MMPerCount is the encoder resolution.
func (c Config) MMPerCount() float64 { return c.LineMM / float64(c.CountsPerLine) }

// maxCameraWidth is the widest camera the simulator makes, in pixels.
const maxCameraWidth = 1 << 16

// Validate checks every field and names the first bad one with its allowed
// range.
func (c Config) Validate() error {
	switch c.Material {
	case Fabric, Leather, Film:
	default:
		return fmt.Errorf("sim: Material = %q: must be fabric, leather or film", c.Material)
	}
	check := func(name string, v, lo, hi float64, loOpen bool) error {
		bad := math.IsNaN(v) || v > hi || v < lo || (loOpen && v == lo)
		if !bad {
			return nil
		}
		open := "["
		if loOpen {
			open = "("
		}
		return fmt.Errorf("sim: %s = %v: must be in %s%v, %v]", name, v, open, lo, hi)
	}
	for _, f := range []struct {
		name      string
		v, lo, hi float64
		loOpen    bool
	}{
		{"LengthM", c.LengthM, 0, 100000, true},
		{"WidthMM", c.WidthMM, 0, 20000, true},
		{"PixelMM", c.PixelMM, 0.01, 10, false},
		{"LineMM", c.LineMM, 0.01, 10, false},
		{"CountsPerLine", float64(c.CountsPerLine), 1, 1024, false},
		{"SpeedMPerMin", c.SpeedMPerMin, 0, 10000, true},
		{"Cameras", float64(c.Cameras), 1, 64, false},
		{"Vignetting", c.Vignetting, 0, 0.9, false},
		{"GainSpread", c.GainSpread, 0, 0.2, false},
		{"DarkLevel", c.DarkLevel, 0, 64, false},
		{"Noise", c.Noise, 0, 32, false},
		{"Defects", float64(c.Defects), 0, 100000, false},
		{"ContrastScale", c.ContrastScale, 0, 2, false},
		{"LinesPerBlock", float64(c.LinesPerBlock), 1, 65536, false},
	} {
		if err := check(f.name, f.v, f.lo, f.hi, f.loOpen); err != nil {
			return err
		}
	}
	if maxO := c.WidthMM / float64(c.Cameras); math.IsNaN(c.OverlapMM) || c.OverlapMM < 0 || c.OverlapMM >= maxO {
		return fmt.Errorf("sim: OverlapMM = %v: must be in [0, %v) (WidthMM/Cameras)", c.OverlapMM, maxO)
	}
	if w := c.cameraWidth(); w > maxCameraWidth {
		return fmt.Errorf("sim: camera width %d px (WidthMM, Cameras, OverlapMM, PixelMM): must be at most %d px", w, maxCameraWidth)
	}
	if math.IsNaN(c.LearnM) || c.LearnM < 0 || c.LearnM >= c.LengthM {
		return fmt.Errorf("sim: LearnM = %v: must be in [0, %v) (LengthM)", c.LearnM, c.LengthM)
	}
	if l := c.Lot; l != nil {
		switch {
		case math.IsNaN(l.AtM) || l.AtM < 0 || l.AtM >= c.LengthM:
			return fmt.Errorf("sim: Lot.AtM = %v: must be in [0, %v) (LengthM)", l.AtM, c.LengthM)
		case math.IsNaN(l.LengthM) || l.LengthM <= 0 || l.LengthM > 100000:
			return fmt.Errorf("sim: Lot.LengthM = %v: must be in (0, 100000]", l.LengthM)
		case math.IsNaN(l.Shift) || l.Shift < -40 || l.Shift > 40:
			return fmt.Errorf("sim: Lot.Shift = %v: must be in [-40, 40] grey levels", l.Shift)
		case math.IsNaN(l.Contrast) || l.Contrast < 0 || l.Contrast > 3:
			return fmt.Errorf("sim: Lot.Contrast = %v: must be in [0, 3] (0 means 1)", l.Contrast)
		case math.IsNaN(l.RampM) || l.RampM < 0 || l.RampM > l.LengthM/2:
			return fmt.Errorf("sim: Lot.RampM = %v: must be in [0, %v] (Lot.LengthM/2)", l.RampM, l.LengthM/2)
		}
	}
	if c.Motion != nil {
		if err := acquisition.ValidatePhases(c.Motion); err != nil {
			return fmt.Errorf("sim: Motion: %w", err)
		}
	}
	return nil
}

// cameraSpanMM is the CD span of one camera: n spans minus (n-1) overlaps
// make the web width.
func (c Config) cameraSpanMM() float64 {
	n := float64(c.Cameras)
	return (c.WidthMM + (n-1)*c.OverlapMM) / n
}

// cameraWidth is the width of one camera in pixels.
func (c Config) cameraWidth() int {
	return int(math.Ceil(c.cameraSpanMM()/c.PixelMM - 1e-9))
}

// phases returns the motion phases in force.
func (c Config) phases() []acquisition.Phase {
	if c.Motion != nil {
		return c.Motion
	}
	return acquisition.ConstantSpeed(c.SpeedMPerMin)
}

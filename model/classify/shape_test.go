package classify

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// drawCrop draws good material (a weave-like texture, a gain per column,
// noise) with a bright shape on it, inside a 16-pixel margin as the
// engine cuts crops: inside(x, y) gives each pixel's coverage 0..1.
func drawCrop(w, h int, amp float64, inside func(x, y float64) float64) []uint8 {
	rng := rand.New(rand.NewPCG(7, 7))
	pix := make([]uint8, w*h)
	for y := range h {
		for x := range w {
			v := 130 + 3*math.Sin(float64(x)*1.6) + 2*math.Sin(float64(y)*1.7) + float64(x%7) + rng.NormFloat64()*2.5
			// 4 × 4 supersampled coverage
			c := 0.0
			for sy := range 4 {
				for sx := range 4 {
					c += inside(float64(x)+(float64(sx)+0.5)/4, float64(y)+(float64(sy)+0.5)/4)
				}
			}
			v += amp * c / 16
			pix[y*w+x] = uint8(math.Max(0, math.Min(255, math.Round(v))))
		}
	}
	return pix
}

func ellipseAt(cx, cy, a, b, theta float64) func(x, y float64) float64 {
	c, s := math.Cos(theta), math.Sin(theta)
	return func(x, y float64) float64 {
		u, v := (x-cx)*c+(y-cy)*s, -(x-cx)*s+(y-cy)*c
		if u*u/(a*a)+v*v/(b*b) <= 1 {
			return 1
		}
		return 0
	}
}

func shapeOf(t *testing.T, pix []uint8, w, h int) map[string]float32 {
	t.Helper()
	f := Features(nil, Measured{LengthMM: 3, WidthMM: 3, AreaMM2: 7, Contrast: 60, PeakAbs: 70, Polarity: "bright", EdgeMM: 100}, pix, w, h, w)
	if len(f) != NumFeatures {
		t.Fatalf("%d features, want %d", len(f), NumFeatures)
	}
	out := map[string]float32{}
	for i, n := range FeatureNames {
		out[n] = f[i]
	}
	return out
}

// TestShapeFeatures: on a textured crop, an ellipse's coverage fits its
// moment ellipse (fit ≈ 1, one part, solid) whatever its orientation, its
// elongation and orientation are measured, a stain of three blobs fits
// worse, and a gel's half-contrast rim shows in the rim share and the
// rim-to-core ratio.
func TestShapeFeatures(t *testing.T) {
	const w, h = 64, 64
	along := shapeOf(t, drawCrop(w, h, 60, ellipseAt(32, 32, 10, 4, math.Pi/2)), w, h) // long axis along y (MD)
	diag := shapeOf(t, drawCrop(w, h, 60, ellipseAt(32, 32, 4, 10, math.Pi/4)), w, h)
	for name, s := range map[string]map[string]float32{"MD ellipse": along, "diagonal ellipse": diag} {
		if s["cov_ellipse_fit"] < 0.9 || s["cov_ellipse_fit"] > 1.1 || s["cov_parts"] != 0 || s["cov_solidity"] < 0.85 {
			t.Errorf("%s: fit %.2f parts %.2f solidity %.2f, want ≈ 1, 0 (one part), ≥ 0.85", name, s["cov_ellipse_fit"], s["cov_parts"], s["cov_solidity"])
		}
		if e := s["cov_elong"]; e < 0.3 || e > 0.5 {
			t.Errorf("%s: elongation %.2f, want ≈ 0.4", name, e)
		}
	}
	if along["cov_aniso_md"] < 0.5 || math.Abs(float64(along["cov_aniso_diag"])) > 0.1 {
		t.Errorf("MD ellipse: anisotropy %.2f along MD, %.2f diagonal; want > 0.5 and ≈ 0", along["cov_aniso_md"], along["cov_aniso_diag"])
	}
	if math.Abs(float64(diag["cov_aniso_md"])) > 0.1 || math.Abs(float64(diag["cov_aniso_diag"])) < 0.5 {
		t.Errorf("diagonal ellipse: anisotropy %.2f along MD, %.2f diagonal; want ≈ 0 and |.| > 0.5", diag["cov_aniso_md"], diag["cov_aniso_diag"])
	}
	blobs := []func(x, y float64) float64{ellipseAt(26, 28, 6, 4, 0.3), ellipseAt(36, 34, 5, 5, 0), ellipseAt(30, 40, 4, 6, 1)}
	stain := shapeOf(t, drawCrop(w, h, 60, func(x, y float64) float64 {
		return slices.Max([]float64{blobs[0](x, y), blobs[1](x, y), blobs[2](x, y)})
	}), w, h)
	if stain["cov_ellipse_fit"] > along["cov_ellipse_fit"]-0.05 {
		t.Errorf("stain fits its ellipse %.2f, an ellipse %.2f: want clearly less", stain["cov_ellipse_fit"], along["cov_ellipse_fit"])
	}
	core := ellipseAt(32, 32, 6*0.6, 6*0.6, 0)
	disc := ellipseAt(32, 32, 6, 6, 0)
	gel := shapeOf(t, drawCrop(w, h, 70, func(x, y float64) float64 { return math.Max(core(x, y), 0.5*disc(x, y)) }), w, h)
	knot := shapeOf(t, drawCrop(w, h, 70, disc), w, h)
	if gel["cov_half_share"] < knot["cov_half_share"]+0.2 || gel["cov_core_rim"] > knot["cov_core_rim"]-0.2 {
		t.Errorf("gel: rim share %.2f, rim/core %.2f; disc: %.2f, %.2f: want the gel's rim share higher and its rim/core lower",
			gel["cov_half_share"], gel["cov_core_rim"], knot["cov_half_share"], knot["cov_core_rim"])
	}
	// No crop: zeros, not NaN.
	for i, v := range Features(nil, Measured{Polarity: "dark"}, nil, 0, 0, 0) {
		if v != 0 && i >= 12 {
			t.Errorf("no crop: %s = %g", FeatureNames[i], v)
		}
	}
}

package classify

import (
	"fmt"
	"math"
	"slices"
)

// Measured is what the engine measured of a defect, in physical units: the
// inputs of the classifier besides the crop.
type Measured struct {
	LengthMM float64 // MD extent
	WidthMM  float64 // CD extent
	AreaMM2  float64 // area of the defect's pixels
	Contrast float64 // mean signed difference from the background, grey levels
	PeakAbs  float64 // peak |contrast| (or the model's score for a defect only the model saw)
	// Uniformity is the mean over the peak contrast, 0..1 (a gel's faint
	// rim lowers it).
	Uniformity float64
	Polarity   string // bright, dark or mixed
	// EdgeMM is the CD distance from the defect to the nearer web edge
	// (0 when it touches one).
	EdgeMM float64
	// Model is what the taught model computed over the defect, used by
	// the feature set FeaturesWithModel.
	Model ModelScores
}

// ModelScores is what the taught model (model/teach, run on the line
// stream by model/infer) already computed over a defect's region: its
// connected component's peak and mean anomaly score and flagged area.
// All 0 when the model did not flag the defect (its scores stayed below
// the model's threshold there), which is itself a feature.
type ModelScores struct {
	Peak    float64 // peak anomaly score over the flagged pixels
	Mean    float64 // mean anomaly score over them
	AreaMM2 float64 // area above the model's threshold
}

// FeatureSet names the features a classifier takes; the sidecar records
// it, and an engine refuses a classifier whose set it cannot compute.
type FeatureSet string

// The feature sets.
const (
	// FeaturesMeasured is the measured features, the crop's texture and
	// its coverage shape (FeatureNames): computable for every defect
	// with a crop, with or without a taught model.
	FeaturesMeasured FeatureSet = "measured"
	// FeaturesWithModel adds the taught model's scores over the defect
	// (ModelFeatureNames). Such a classifier belongs to the one model
	// whose scores it learned (its version is in the sidecar): its
	// scores mean nothing to another model, or to an engine with none.
	FeaturesWithModel FeatureSet = "measured+model"
)

// ModelFeatureNames names the taught model's features, appended after
// FeatureNames in the set FeaturesWithModel.
var ModelFeatureNames = []string{"model_flagged", "log_model_peak", "log_model_mean", "log_model_area_mm2", "model_area_frac"}

// Names returns the set's feature names in order; nil for an unknown set.
// The empty set is FeaturesMeasured (classifiers written before sets were
// recorded).
func (s FeatureSet) Names() []string {
	switch s {
	case FeaturesMeasured, "":
		return FeatureNames
	case FeaturesWithModel:
		return slices.Concat(FeatureNames, ModelFeatureNames)
	}
	return nil
}

// NeedsModel reports whether the set includes the taught model's features.
func (s FeatureSet) NeedsModel() bool { return s == FeaturesWithModel }

// ParseFeatureSet checks s.
func ParseFeatureSet(s string) (FeatureSet, error) {
	if fs := FeatureSet(s); s != "" && fs.Names() != nil {
		return fs, nil
	}
	return "", fmt.Errorf("classify: feature set %q: want %s or %s", s, FeaturesMeasured, FeaturesWithModel)
}

// FeaturesOf appends the feature vector of set to dst: Features, then
// for FeaturesWithModel the taught model's features from m.Model.
func FeaturesOf(dst []float32, set FeatureSet, m Measured, crop []uint8, w, h, stride int) []float32 {
	dst = Features(dst, m, crop, w, h, stride)
	if set.NeedsModel() {
		dst = appendModel(dst, m)
	}
	return dst
}

// appendModel appends the taught model's features: whether it flagged the
// defect, its peak and mean score, its flagged area and that area over
// the defect's (a defect the model sees wider than its contrast, or only
// in part).
func appendModel(dst []float32, m Measured) []float32 {
	l1 := func(v float64) float32 { return float32(math.Log1p(math.Max(v, 0))) }
	flagged, frac := float32(0), 0.0
	if m.Model.Peak > 0 {
		flagged = 1
	}
	if m.AreaMM2 > 0 {
		frac = math.Min(m.Model.AreaMM2/m.AreaMM2, 4)
	}
	return append(dst, flagged, l1(m.Model.Peak), l1(m.Model.Mean), l1(m.Model.AreaMM2), float32(frac))
}

// FeatureNames names the classifier's inputs in order. A classifier
// trained with other features is refused at load (ErrIncompatible).
var FeatureNames = []string{
	// measured
	"log_length_mm", "log_width_mm", "log_aspect", "log_area_mm2", "fill",
	"abs_contrast", "log_peak", "uniformity", "bright", "dark", "mixed", "log_edge_mm",
	// texture of the crop
	"crop_std", "crop_range", "grad_x", "grad_y", "log_grad_ratio",
	"frac_bright", "frac_dark", "centre_minus_border", "crop_log_aspect",
	"row_profile_std", "col_profile_std",
	// shape of the defect's coverage against the modelled background (shape.go)
	"cov_ellipse_fit", "cov_elong", "cov_aniso_md", "cov_aniso_diag", "cov_half_share", "cov_core_rim",
	"cov_solidity", "cov_parts", "cov_mass_box", "cov_amp_peak", "cov_edge_sharp",
}

// NumFeatures is len(FeatureNames).
var NumFeatures = len(FeatureNames)

// Features appends the feature vector of a defect to dst: its measure m
// and its crop (w × h grey pixels, rows stride bytes apart; w or h 0 when
// there is no crop, which gives zero texture features).
func Features(dst []float32, m Measured, crop []uint8, w, h, stride int) []float32 {
	l1 := func(v float64) float32 { return float32(math.Log1p(math.Max(v, 0))) }
	aspect := math.Log((m.LengthMM + 0.25) / (m.WidthMM + 0.25))
	fill := 0.0
	if m.LengthMM > 0 && m.WidthMM > 0 {
		fill = math.Min(m.AreaMM2/(m.LengthMM*m.WidthMM), 2)
	}
	b := func(ok bool) float32 {
		if ok {
			return 1
		}
		return 0
	}
	dst = append(dst, l1(m.LengthMM), l1(m.WidthMM), float32(aspect), l1(m.AreaMM2), float32(fill),
		float32(math.Abs(m.Contrast)/50), l1(m.PeakAbs), float32(m.Uniformity), b(m.Polarity == "bright"), b(m.Polarity == "dark"),
		b(m.Polarity != "bright" && m.Polarity != "dark"), l1(m.EdgeMM))
	dst = appendTexture(dst, crop, w, h, stride)
	return appendShape(dst, crop, w, h, stride, m.Polarity)
}

// quickSelect returns the k-th smallest of v (0-based), reordering v.
func quickSelect(v []float64, k int) float64 {
	lo, hi := 0, len(v)-1
	for lo < hi {
		p := v[(lo+hi)/2]
		i, j := lo, hi
		for i <= j {
			for v[i] < p {
				i++
			}
			for v[j] > p {
				j--
			}
			if i <= j {
				v[i], v[j] = v[j], v[i]
				i++
				j--
			}
		}
		switch {
		case k <= j:
			hi = j
		case k >= i:
			lo = i
		default:
			return v[k]
		}
	}
	return v[k]
}

// appendTexture appends the crop's texture statistics: spread, gradient
// energy along and across, the share of pixels far above and below the
// crop's level, the centre against the border, the crop's shape, and how
// much the row and column means vary (a streak or a crease is a line of
// them).
func appendTexture(dst []float32, pix []uint8, w, h, stride int) []float32 {
	if w < 2 || h < 2 {
		return append(dst, make([]float32, 11)...)
	}
	var sum, sum2 float64
	lo, hi := 255.0, 0.0
	for y := range h {
		for _, p := range pix[y*stride : y*stride+w] {
			v := float64(p)
			sum += v
			sum2 += v * v
			lo, hi = math.Min(lo, v), math.Max(hi, v)
		}
	}
	n := float64(w * h)
	mean := sum / n
	std := math.Sqrt(math.Max(sum2/n-mean*mean, 0))
	s := math.Max(std, 1)
	var gx, gy float64
	var nb, nd int
	var cSum, bSum float64
	var cN, bN int
	rowMean := make([]float64, 0, 64)
	colSum := make([]float64, w)
	for y := range h {
		row := pix[y*stride : y*stride+w]
		rs := 0.0
		for x, p := range row {
			v := float64(p)
			rs += v
			colSum[x] += v
			if x > 0 {
				gx += math.Abs(v - float64(row[x-1]))
			}
			if y > 0 {
				gy += math.Abs(v - float64(pix[(y-1)*stride+x]))
			}
			switch {
			case v > mean+2*s:
				nb++
			case v < mean-2*s:
				nd++
			}
			if x >= w/4 && x < w-w/4 && y >= h/4 && y < h-h/4 {
				cSum += v
				cN++
			} else {
				bSum += v
				bN++
			}
		}
		rowMean = append(rowMean, rs/float64(w))
	}
	gx /= float64((w - 1) * h)
	gy /= float64(w * (h - 1))
	cb := 0.0
	if cN > 0 && bN > 0 {
		cb = (cSum/float64(cN) - bSum/float64(bN)) / s
	}
	for x := range colSum {
		colSum[x] /= float64(h)
	}
	return append(dst, float32(std/50), float32((hi-lo)/255), float32(gx/s), float32(gy/s),
		float32(math.Log((gx+0.5)/(gy+0.5))), float32(float64(nb)/n), float32(float64(nd)/n), float32(cb),
		float32(math.Log(float64(h)/float64(w))), float32(stdOf(rowMean)/s), float32(stdOf(colSum)/s))
}

func stdOf(v []float64) float64 {
	if len(v) < 2 {
		return 0
	}
	var m, m2 float64
	for _, x := range v {
		m += x
	}
	m /= float64(len(v))
	for _, x := range v {
		m2 += (x - m) * (x - m)
	}
	return math.Sqrt(m2 / float64(len(v)))
}

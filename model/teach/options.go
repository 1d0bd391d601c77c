package teach

import (
	"errors"
	"fmt"
	"math"

	"github.com/webinspect/webinspect/model/edge"
	"github.com/webinspect/webinspect/model/onnx"
)

// Errors returned by this package, wrapped with context; classify with errors.Is.
var (
	// ErrOptions is returned when Options fail validation.
	ErrOptions = errors.New("teach: invalid options")
	// ErrNoImages is returned when there is no good material to teach on
	// (no images, or a source that delivered too few lines for one frame).
	ErrNoImages = errors.New("teach: no good images")
	// ErrImage is returned for an image that is malformed (Pix too short,
	// zero size) or cannot be read.
	ErrImage = errors.New("teach: bad image")
	// ErrDegenerate is returned when the good material has no variation to
	// model (e.g. every pixel the same value).
	ErrDegenerate = errors.New("teach: good material has no texture to model")
	// ErrModel is returned by Reteach and ReadTaughtModel for a model
	// directory that cannot be re-taught: a file missing, corrupt or not
	// matching the others, or a kind of model re-teach does not update.
	ErrModel = errors.New("teach: model cannot be re-taught")
	// ErrTooLittle is returned by Reteach when the reviewed material holds
	// too few patches to fit good statistics on.
	ErrTooLittle = errors.New("teach: too little reviewed material")
)

// Image is an 8-bit grayscale image: pixel (x, y) is Pix[y*W+x].
type Image struct {
	W, H int
	Pix  []uint8
}

func (im Image) check(i int) error {
	if im.W < 1 || im.H < 1 || len(im.Pix) < im.W*im.H {
		return fmt.Errorf("%w: image %d is %d×%d with %d pixels", ErrImage, i, im.W, im.H, len(im.Pix))
	}
	return nil
}

// Options configure Teach. They map one to one onto a recipe's teach section.
type Options struct {
	// TileH and TileW are the model's input tile in pixels after binning
	// and resizing; multiples of 2^(Scales-1), 8..4096.
	TileH, TileW int
	// Bin is 1 (full resolution) or 2 (2×2 binning before tiling).
	Bin int
	// ResizeW and ResizeH, when both > 0, resize every image to that size
	// (bilinear) before binning; for parts photographed at varying size.
	ResizeW, ResizeH int
	// AutoPrep lets teach choose the preparation from the good images:
	// when their sizes differ by more than 10 % (parts photographed at
	// varying size) and ResizeW/H are 0, all images are resized to the
	// median size (rounded to 16 pixels); when their mean brightness varies
	// by more than 15 % of the mean and Normalize is "none", every image is
	// normalised. Frames of a line-scan camera (one size, one lighting) are
	// left as they are. The choices land in made_by.params.
	AutoPrep bool
	// Normalize "image" stretches every image to mean 128 and a fixed
	// contrast before anything else; "none" (or "") feeds pixels as they are.
	Normalize string
	// Patch is the filter side, odd 3..15.
	Patch int
	// Scales is the number of scales, 1..4.
	Scales int
	// Components is the number of principal components per scale, 1..Patch².
	Components int
	// Clusters is the number of Gaussian models per scale, 1..8: patches
	// are grouped by k-means (web, web edge, off-web band…) and a patch
	// scores against the cluster it fits best, so the web edge gets a
	// model of its own wherever it lies.
	Clusters int
	// RareClusters, 0..4, adds clusters fitted on the 1 % of good patches
	// the model explains worst (web edge, selvage, splices seen in good
	// material), one after the other.
	RareClusters int
	// EdgeClusters, 0..8, gives the web-edge band its own model: patches
	// with a saturated pixel (≥ SatLevel, the off-web background) within
	// EdgeBand pixels score against EdgeClusters clusters fitted on such
	// patches of good material. 0 disables it; so does good material
	// without saturated pixels.
	EdgeClusters int
	// EdgeComponents is the number of principal components of each edge
	// cluster, 1..Patch² (the edge is a simpler structure than texture).
	EdgeComponents int
	// EdgeBand is the band's reach in prepared pixels, 0..128.
	EdgeBand int
	// SatFill replaces pixels at or above SatLevel (saturated off-web
	// background) by the mean of the good web before scoring, in teaching
	// and in the graph alike.
	SatFill bool
	// SatLevel is the 8-bit level, 1..255, at or above which a pixel counts
	// as off-web background.
	SatLevel int
	// Likelihood scores a patch by the negative log-likelihood of a hard
	// Gaussian mixture over the clusters (broad or rare clusters cost
	// more) instead of the minimum of T²/K + Q/Q0.
	Likelihood bool
	// Smooth is the anomaly-map box filter side at each scale, odd 1..31.
	Smooth int
	// TargetFAR is the wanted false-alarm rate per image (frame or tile as
	// taught) on good material, in (0, 0.5].
	TargetFAR float64
	// Folds is the number of held-out folds for threshold calibration,
	// 2..20 (capped at the number of images).
	Folds int
	// MaxPatches bounds the patches sampled per scale for the Gaussian
	// model, 1000..10,000,000.
	MaxPatches int
	// Seed seeds patch sampling and fold assignment.
	Seed uint64
	// Source describes the good material for made_by.source.
	Source string
	// Edge finds the web's edges on every prepared line (model/edge);
	// off-web pixels are filled with the web mirrored across the edge and
	// not scored. Mode auto (the default) lets teach decide from the good
	// material (edge.Learn); widths are in prepared pixels.
	Edge edge.Options
	// Zones, 0..16, is the number of CD zones next to each web edge that
	// get a Gaussian of their own, when the good material shows edges;
	// together they cover the selvage and the band next to it, each zone
	// ZoneWidth wide, so a missing selvage stripe changes the statistics
	// of the zone it belongs to. 0 scores the whole web with one model.
	Zones int
	// ZoneWidth is each zone's width in prepared pixels: 0 lets teach
	// measure the selvage (the distance over which the good web's
	// brightness profile across the edge differs from the interior) and
	// cover twice that, or 2..512.
	ZoneWidth int
	// ShadeBlock, 0 or 2..64, is the cell side in prepared pixels of the
	// low-frequency shading model (onnx.TeachShade) fused with the patch
	// model: large low-contrast areas that no patch sees. 0 turns it off;
	// so does a tile that is not a multiple of it.
	ShadeBlock int
	// ShadeAbs adds the shading model's absolute term: each cell against
	// the taught mean shading, not only against its neighbourhood. It
	// scores a whole frame lit differently too.
	ShadeAbs bool
	// BrightBlock, 0 or 2..64, is the cell side in prepared pixels of the
	// column-referenced local-brightness model (onnx.TeachBright) fused
	// with the patch model: blobs, knots and stains. 0 turns it off; so
	// does a tile that is not a multiple of it.
	BrightBlock int
	// Memory, 0..4096, is the size of a nearest-neighbour memory of good
	// patches per scale (a PatchCore-style coreset chosen by greedy
	// k-centre in the first cluster's component space); web patches then
	// score by their distance to the nearest remembered good patch
	// instead of to the clusters' Gaussians (onnx.TeachScale.Memory).
	// Each remembered patch costs K+1 multiply-adds per pixel at its
	// scale. 0 turns it off.
	Memory int
	// EnsembleSpread, 0 or (0, 10], lets teach choose the ensemble
	// members from held-out good images: the shading and brightness
	// models (ShadeBlock, BrightBlock) join the patch model only when the
	// spread of their held-out good image scores (sd/mean) is at most
	// this. A member whose score varies that much from one good image to
	// the next sets a threshold its defects rarely reach, and its weight
	// (matched at the calibrated level) lifts every good image. 0 keeps
	// every configured member.
	EnsembleSpread float64
	// Discriminator adds, at every scale, a logistic regression trained
	// in teach on good patches against patches of synthetic defects
	// pasted onto the good images (soft blobs, scratches, missing
	// threads, mirrored cut-paste, smooth blends), over the first
	// cluster's features (y_k², y_k, Q): a patch's score gains
	// max(0, 2·logit) (onnx.TeachScale.Disc), one more row of the 1×1
	// mix. Off by default.
	Discriminator bool
}

// DefaultOptions returns the line-rate settings: 2× binning, 128×256
// tiles, 7×7 patches at two scales, one web cluster of 7 components (7 + 1
// filters fill the runtime's 8-wide convolution blocks), no web-edge
// clusters, 7×7 smoothing, 1 % false alarms per image. They score about
// 110 Mpx/s of camera pixels per 1-thread session, so a 2 m web at
// 100 m/min (54 Mpx/s) runs with headroom on 2 cores, and they find the
// simulator's subtle defects (engine's TestTaughtModelFindsSubtleDefects).
// The shading model is offered and teach decides from held-out good
// images whether to fuse it (EnsembleSpread); it costs a few FLOP/px.
// A web whose off-web band is in view wants Clusters 3 and EdgeClusters 6
// (as measured on AITEX fabric 00, see bench/RESULTS.md), at about a fifth
// of the speed.
func DefaultOptions() Options {
	return Options{
		TileH: 128, TileW: 256, Bin: 2, Normalize: "none", AutoPrep: true,
		Patch: 7, Scales: 2, Components: 7, Clusters: 1, Smooth: 7,
		EdgeClusters: 0, EdgeComponents: 3, EdgeBand: 4, SatLevel: 250,
		TargetFAR: 0.01, Folds: 4, MaxPatches: 200_000, Seed: 1,
		Edge: edge.Options{Mode: edge.Auto, Level: 240, MinBand: 8, Guard: 2}, Zones: 8,
		// The shading model is offered to teach, which keeps it only
		// when its held-out good scores spread by at most half their
		// mean: measured, it helps AITEX fabric 00 (spread 0.30) and
		// hurt the magnetic tiles (0.72), where it now stays out. The
		// brightness model added nothing beside it on fabric 00 and
		// split defect boxes on the simulator (bench/RESULTS.md).
		ShadeBlock: 8, BrightBlock: 0, EnsembleSpread: 0.5,
	}
}

// Validate names the first bad field and its allowed range.
func (o *Options) Validate() error {
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("%w: Options.%s %s", ErrOptions, field, fmt.Sprintf(format, args...))
	}
	f := 1 << max(o.Scales-1, 0)
	switch {
	case o.Scales < 1 || o.Scales > onnx.MaxTeachScales:
		return bad("Scales", "is %d, want 1..%d", o.Scales, onnx.MaxTeachScales)
	case o.TileH < 8 || o.TileH > 4096 || o.TileH%f != 0:
		return bad("TileH", "is %d, want 8..4096 and a multiple of %d (2^(Scales-1))", o.TileH, f)
	case o.TileW < 8 || o.TileW > 4096 || o.TileW%f != 0:
		return bad("TileW", "is %d, want 8..4096 and a multiple of %d (2^(Scales-1))", o.TileW, f)
	case o.Bin != 1 && o.Bin != 2:
		return bad("Bin", "is %d, want 1 or 2", o.Bin)
	case (o.ResizeW > 0) != (o.ResizeH > 0) || o.ResizeW < 0 || o.ResizeH < 0 || o.ResizeW > 16384 || o.ResizeH > 16384:
		return bad("ResizeW/ResizeH", "are %d×%d, want both 0 (no resize) or both 1..16384", o.ResizeW, o.ResizeH)
	case o.Normalize != "" && o.Normalize != "none" && o.Normalize != "image":
		return bad("Normalize", "is %q, want \"none\" or \"image\"", o.Normalize)
	case o.Patch < 3 || o.Patch > 15 || o.Patch%2 == 0:
		return bad("Patch", "is %d, want odd 3..15", o.Patch)
	case o.Components < 1 || o.Components > o.Patch*o.Patch:
		return bad("Components", "is %d, want 1..%d (Patch²)", o.Components, o.Patch*o.Patch)
	case o.Clusters < 1 || o.Clusters > 8:
		return bad("Clusters", "is %d, want 1..8", o.Clusters)
	case o.RareClusters < 0 || o.RareClusters > 4:
		return bad("RareClusters", "is %d, want 0..4", o.RareClusters)
	case o.EdgeClusters < 0 || o.EdgeClusters > 8:
		return bad("EdgeClusters", "is %d, want 0..8", o.EdgeClusters)
	case o.EdgeClusters > 0 && (o.EdgeComponents < 1 || o.EdgeComponents > o.Patch*o.Patch):
		return bad("EdgeComponents", "is %d, want 1..%d (Patch²)", o.EdgeComponents, o.Patch*o.Patch)
	case o.EdgeBand < 0 || o.EdgeBand > 128:
		return bad("EdgeBand", "is %d, want 0..128", o.EdgeBand)
	case o.SatLevel < 1 || o.SatLevel > 255:
		return bad("SatLevel", "is %d, want 1..255", o.SatLevel)
	case o.Smooth < 1 || o.Smooth > 31 || o.Smooth%2 == 0:
		return bad("Smooth", "is %d, want odd 1..31", o.Smooth)
	case !(o.TargetFAR > 0 && o.TargetFAR <= 0.5) || math.IsNaN(o.TargetFAR):
		return bad("TargetFAR", "is %v, want (0, 0.5] false alarms per image", o.TargetFAR)
	case o.Folds < 2 || o.Folds > 20:
		return bad("Folds", "is %d, want 2..20", o.Folds)
	case o.MaxPatches < 1000 || o.MaxPatches > 10_000_000:
		return bad("MaxPatches", "is %d, want 1000..10000000", o.MaxPatches)
	case o.Zones < 0 || o.Zones > 16:
		return bad("Zones", "is %d, want 0..16", o.Zones)
	case o.ZoneWidth != 0 && (o.ZoneWidth < 2 || o.ZoneWidth > 512):
		return bad("ZoneWidth", "is %d, want 0 (measured) or 2..512", o.ZoneWidth)
	case o.ShadeBlock != 0 && (o.ShadeBlock < 2 || o.ShadeBlock > 64):
		return bad("ShadeBlock", "is %d, want 0 (off) or 2..64", o.ShadeBlock)
	case o.BrightBlock != 0 && (o.BrightBlock < 2 || o.BrightBlock > 64):
		return bad("BrightBlock", "is %d, want 0 (off) or 2..64", o.BrightBlock)
	case o.EnsembleSpread < 0 || o.EnsembleSpread > 10 || math.IsNaN(o.EnsembleSpread):
		return bad("EnsembleSpread", "is %v, want 0 (keep every member) or (0, 10]", o.EnsembleSpread)
	case o.Memory < 0 || o.Memory > onnx.MaxTeachMemory:
		return bad("Memory", "is %d, want 0 (off) or 1..%d", o.Memory, onnx.MaxTeachMemory)
	}
	if err := o.Edge.ValidateAt("Options.Edge"); err != nil {
		return fmt.Errorf("%w: %v", ErrOptions, err)
	}
	if r := o.Patch / 2; o.TileH/f <= 2*r || o.TileW/f <= 2*r {
		return bad("TileH/TileW", "are %d×%d, too small for patch %d at %d scales", o.TileH, o.TileW, o.Patch, o.Scales)
	}
	return nil
}

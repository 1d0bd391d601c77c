// Package teach builds an anomaly-detection model from good material only:
// no pretrained weights, no defect examples. The model is an ONNX graph
// (model/onnx.BuildTeachModel) that the engine runs through ONNX Runtime
// exactly like an imported model; calibration and evaluation score through
// the same runtime path.
//
// # Model
//
// Good images are prepared (Prep: optional per-image contrast
// normalisation, optional resize to a fixed size, optional 2×2 binning) and
// fed as x = (p/255 - mean)/std with the good material's global mean and
// std. At each of one to four scales (scale s halves scale s-1 with a 2×2
// average) good Patch×Patch patches are sampled and grouped by k-means into
// Clusters clusters (web textures of different shade); each cluster gets a
// Gaussian: its mean patch and its first Components principal components.
// A patch p is scored against cluster c by Hotelling's T² in the component
// subspace (diagonal, the basis being the covariance's eigenbasis) plus the
// residual Q outside it,
//
//	s_c = T²/K + Q/Q0        Q0 = mean residual on good material; s ≈ 2 on good material
//
// and scores the minimum over clusters. Options.Likelihood uses a hard
// Gaussian mixture's negative log-likelihood instead, which charges broad
// or rare clusters for explaining a patch.
//
// # Web edges and CD zones
//
// Every prepared line goes through model/edge, the same code the engine's
// tiled path (model/infer) runs: the off-web background beyond each edge
// is found (Options.Edge; mode auto lets edge.Learn decide from the good
// material whether lines end in a saturated or black band, and at which
// level), filled with the web mirrored across the edge, and never scored.
// Each pixel is then described by its distance d from the nearest edge the
// line shows. When the good material shows edges, teach measures the
// selvage — the distance over which the good web's brightness profile
// across the edge (mean and spread per d) leaves the interior's own
// variation — and fits Options.Zones zones of equal width covering twice
// that: each zone gets a diagonal Gaussian in the component space of the
// first cluster (its mean response, variance per component and residual),
//
//	s_z = Σ_k (y_k - μ_zk)²/σ²_zk / K + Q/Q0_z
//
// and the graph scores a pixel against the zone its d falls in (the
// clusters beyond the last zone), reading every row's edges from its
// second input (onnx.InputSpec.Edges). The zones move with the edges, so
// a web that wanders across the camera keeps its selvage model; a
// missing selvage stripe or thread changes its zone's statistics and
// scores, while the edge itself (mirrored) does not. The zone scores are
// extra rows of the same 1×1 mixing convolution, so they cost about 10 %
// (measured: BenchmarkTaughtModel zones=8). Pixels off the web score 0
// before smoothing, so the background does not bleed onto the edge.
//
// # Shading and local-brightness models (fused)
//
// Beside the patch model, two cheap models see what no single patch
// shows (onnx.TeachShade, onnx.TeachBright, both in the same graph):
//
//   - shading (ShadeBlock, 8 px cells): each cell's mean against the mean
//     of its 3×3 cell neighbourhood, over the variance of that difference
//     on good material; with ShadeAbs also against the taught mean
//     shading. Large, low-contrast areas (uneven shading, wide stains).
//   - local brightness (BrightBlock, 4 px cells): each cell's mean against
//     its column's mean over the tile (a line-scan column is steady along
//     the web), over the good variance. Blobs, knots, stains.
//
// Teach chooses the members from held-out good images: after the
// held-out folds, a member joins only when its own held-out good image
// scores are steady, sd/mean ≤ Options.EnsembleSpread (0.5 by default;
// 0 keeps every configured member). A member whose good images vary
// more than that sets a threshold its defects rarely reach, and its
// weight, matched at the calibrated level, lifts every good image.
// Measured (bench/RESULTS.md): on AITEX fabric 00 the shading model's
// spread is 0.30 and it raises whole-frame image AUROC 0.786 → 0.905; on
// the magnetic tiles it is 0.72 and the model, which lowered their
// AUROC, stays out; on the simulator's fabric (0.19–0.21) it joins and
// the engine still finds 25/25 subtle defects with no false one. So the
// shading model is offered by default (ShadeBlock 8) and the brightness
// model is not (BrightBlock 0): on fabric 00 it added nothing beside
// shading, and on the simulator it broke defect boxes into pieces
// (4-px cells brought back by linear Resize localise coarsely). The
// absolute shading term stays off (ShadeAbs): it also scores frames lit
// differently, AITEX's known shortcut. Each kept member is fused by
// quantile rank: its held-out image scores (computed in Go,
// shadeScore/brightScore) are weighed so that their calibrated level
// (Threshold at TargetFAR) equals the patch model's; the map is the
// per-pixel maximum and the threshold is calibrated on the fused
// held-out scores. made_by.params.shade and
// .bright record cells, weights, the held-out spread, and why a member
// stayed out. The graph's maps are cell scores
// brought back by linear Resize, so a cell's score reaches the map's
// maximum only approximately (pixel centres fall between cell centres)
// and tiling may align cells differently from the whole image.
//
// # Nearest-neighbour memory (option)
//
// With Options.Memory > 0 each scale keeps a memory of good patches, a
// PatchCore-style coreset: from up to 20,000 sampled good patches,
// projected on the first cluster's whitened components y, greedy
// k-centre picks Memory patches (each the one farthest from those
// already picked, starting at the mode). A web patch then scores
//
//	s = min_j |y - m_j|²/D + Q/Q0        D = mean nearest-neighbour distance² of good patches
//
// instead of the clusters' T²/K + Q/Q0, so good material of several kinds
// is not charged for lying between them. In the graph it is one more row
// of the 1×1 mix (|y|²/D + Q/Q0), a 1×1 Conv of Memory outputs over y
// (weights -2m_j/D, bias |m_j|²/D) and a ReduceMin over them: the engine
// runs it unchanged. Zones and edge clusters still score where they
// apply. The memory is bounded (onnx.MaxTeachMemory) and each entry costs
// K+1 multiply-adds per pixel at its scale. It is off by default: on
// both open sets it did not beat the Gaussian (bench/RESULTS.md) and 64
// entries cost several times the whole patch model.
//
// # Discriminator on synthetic defects (option)
//
// With Options.Discriminator each scale also gets a logistic regression
// trained in teach: 6,000 good patches against up to 6,000 patches
// centred on synthetic defects pasted onto copies of the good images
// (synthDefects: soft blobs, thin scratches at any angle, missing threads
// — a row or column segment taken from two pixels away —, mirrored
// cut-paste squares, and smooth blends of another region), over the
// first cluster's features (y_k², y_k, Q). A patch's score gains
// max(0, 2·logit): one more row of the 1×1 mix, a Relu and an Add
// (TeachScale.Disc). Off by default: measured, it raised the magnetic
// tiles' image AUROC a little (0.590 → 0.610) and lowered AITEX fabric
// 00's (0.905 → 0.619; bench/RESULTS.md).
//
// # Saturation-band clusters (older alternative)
//
// A line-scan frame often holds a saturated off-web band whose width
// varies. The patches next to it (a saturated pixel within EdgeBand pixels
// of the patch) are rare among good patches, so a web model scores the web
// edge as anomalous in every frame. With EdgeClusters > 0 those patches get
// clusters of their own, fitted on the edge band of good frames, and the
// graph picks web or edge clusters per pixel from the same saturation test
// (MaxPool of x > SatLevel); the edge band is found wherever it lies, with
// no fixed region cut away, so defects at the edge are still scored.
// SatFill, instead, replaces saturated pixels by the web's mean.
//
// # Preparation chosen by teach
//
// With Options.AutoPrep (the default), images of differing sizes (parts
// photographed at varying size) are resized to their median size, and
// images whose mean brightness varies by more than 15 % are normalised
// one by one; line-scan frames of one size and lighting are left as they
// are. made_by.params.auto_prep says what was chosen.
//
// # Map and score
//
// Each scale's per-pixel score is clipped at 0, extended over the
// Patch/2 border (edge padding: a mirrored or zero border would itself
// look anomalous), smoothed by a Smooth×Smooth box, brought back to the
// tile size (linear Resize) and the scales are averaged into the anomaly
// map [N,1,H,W]; the score [N] is the map's maximum. Scorer cuts images
// into the model's tiles overlapping by twice the map's context (patch,
// smoothing and scales) and keeps only each tile's interior, so no pixel
// is scored without its neighbourhood.
//
// # Threshold
//
// The images are split into Folds folds; for each fold a model taught on
// the other folds scores the fold's images through ONNX Runtime, so every
// good image gets a held-out score (TargetFAR is per image: per frame or
// tile as taught). A Gumbel distribution (the law of maxima) fitted to
// those scores gives the map level that good images exceed with
// probability TargetFAR; the threshold is that level, never below the
// empirical (1-TargetFAR) quantile. The final model is taught on all
// images. With a single image the threshold is 1.25 × its in-sample score.
//
// # Model directory
//
// Taught.WriteModel writes model.onnx and model.json (model/onnx.Sidecar):
// the input shape [-1,1,TileH,TileW] is the tile after binning; mean/std
// the input normalisation; threshold the calibrated map level; made_by the
// tool, method, source, time, ONNX Runtime version and, in params, how to
// prepare pixels plus the fit:
//
//	bin        "1" or "2"        2×2 binning before tiling
//	resize     "WxH" or ""       resize each image to W×H before binning
//	normalize  "image"/"none"    per-image contrast normalisation
//	tile       "HxW"             model input tile (after binning)
//	context    pixels            tile overlap margin Scorer uses
//	patch, scales, components, clusters, edge, saturation, smooth,
//	target_far, far_unit, folds, images, pixels, calibration,
//	held_out_scores, explained_variance, patches, seed
//	edge_mode, edge_level, edge_min_band, edge_guard   model/edge settings
//	zones      how many CD zones of which width, and how the selvage was measured
//	auto_prep  what AutoPrep chose
//	shade, bright  the fused shading and brightness models (cells, weight and
//	               held-out spread, or "off" and why)
//	memory     the nearest-neighbour coreset per scale ("off" or sizes and D)
//	discriminator  "off" or on how many scales it was trained
//
// PrepFromSidecar reads the preparation back, so a scored image goes
// through the same steps it was taught with. WriteModel also writes
// teach.json (SpecFileName): the fitted statistics (onnx.TeachModelSpec)
// and the SHA-256 of the model.onnx built from them. The engine does not
// read it; Reteach does. A model's version covers model.onnx and
// model.json only, which teach.json describes exactly.
//
// # Re-teach from reviews
//
// Reteach folds good material the model flagged (the regions reviewers
// marked as false alarms, read as teach reads good material) into a copy
// of the model; the old directory is only read. It refuses, with ErrModel
// and the file named, a directory without teach.json (imported, or
// taught before it existed), a teach.json of another format, a model.onnx
// that is not the graph teach.json describes, a broken model.json, and a
// model scored by likelihood (Options.Likelihood), whose cluster offsets
// depend on priors teach does not keep.
//
// What changes, per scale:
//
//   - The Gaussian model gets new clusters. The reviewed patches are
//     grouped by k-means into up to 3 clusters of at least 20·Patch²
//     patches (the new material itself, its blend with the old), each
//     fitted like a taught cluster with the taught number of components.
//     A patch scores the minimum over clusters, so the taught clusters are
//     untouched and the material they explain scores as before: a
//     defect on the taught material is still measured against the taught
//     Gaussian, unless it happens to look like the reviewed material.
//     The 1 % of reviewed patches a new cluster explains worst are left
//     out and it is fitted again: a long false alarm can hold a real
//     defect (a lot flagged as one region swallows what lies in it).
//   - Weight. A new cluster is fitted on far fewer patches, from fewer
//     places, than teach used; measured on itself it would be too tight,
//     and new material of the same kind would still be flagged. Its
//     variances are inflated by f ≥ 1, measured by holding out: the
//     regions' pieces alternate between two folds, a cluster fitted on
//     one fold scores the other's patches f times higher on average than
//     its own, so after inflation new material of the reviewed kind scores
//     as the taught material does on its own Gaussian (f is in
//     made_by.params.reteach). The threshold stays the one calibrated on
//     the taught good material: new clusters only lower scores.
//   - With a memory (Options.Memory) the web patch score is the memory
//     distance, so entries are added instead: greedy k-centre over the
//     reviewed patches' responses, starting from their distance to the
//     memory as it is, while the farthest is farther than D, at most
//     doubling the memory and never beyond onnx.MaxTeachMemory. A
//     difference in the residual outside the first cluster's components
//     cannot be learned this way; the reteach command reports how many
//     reviewed regions still score above the threshold. Measured
//     (TestReteachMemory, a brighter, higher-contrast lot of a woven
//     test texture): the mean map over a fresh lot image fell 16.1 →
//     13.2, its maximum not at all: the memory path is weaker than the
//     Gaussian one (TestReteachLearnsNewLot: 17 → 4 against a threshold
//     of 4.6).
//   - The shading model (when teach kept it) scores each cell's
//     difference from its neighbourhood against one variance for the whole
//     web, and the clusters do not cover it: a lot whose tone varies more
//     from cell to cell (more contrast) reaches the fused threshold
//     through it alone. Its relative variance is widened to the reviewed
//     material's when that is larger, never narrowed; the reviewed
//     variance is the median squared difference over the median of χ²₁
//     (0.455), so a real defect a long false alarm swallowed does not
//     widen it; fewer than 200 reviewed cells leave it as it is. Its
//     weight and absolute term are kept. Measured (TestReteachYarnLot):
//     the simulator's lot of 1.3× contrast widens it ×1.61, and without
//     this the re-taught model still flagged 5 and 1 small spots of the
//     lot on two of three new rolls (shading alone: patch scores ≈ 2 there,
//     fused shading up to 9 against the threshold 5.67). The price is a
//     shading member that many times less sensitive everywhere (the
//     model's one variance); on those rolls no defect the old model found
//     was lost.
//   - Zones, edge clusters and the brightness model are not changed. A
//     graph holds at most 16 clusters per scale: a model re-taught that
//     often is refused and should be taught again.
//
// How much material: every scale must hold at least
// ReteachOptions.MinPatches patch positions (default 10·Patch², 490 for
// 7×7 patches: about 25 mm × 25 mm of web at 0.25 mm pixels, binning 2
// and two scales); less is ErrTooLittle with the count found and wanted.
// At most 200,000 patches per scale are sampled, evenly over all the
// material, so a long flagged stretch weighs as much as it holds. The
// command reads each false alarm's box grown by the model's reach
// (made_by.params.context prepared pixels), the material its flagged
// pixels were scored from, and a region longer than 8 Mpx as bands of 256
// lines evenly spaced, always with its first and last band; bands are
// separate pieces, so no seam between them is learned as good.
//
// The new model's made_by: tool "webinspect reteach", the time, the
// source (old model and version, rolls, reviewers) and in params:
// taught_source (what the first teach saw), reteach_count,
// reteach (the clusters or memory entries added), reteach_regions,
// clusters_fitted, and what the caller adds (the command: derived_from,
// derived_from_at, reviews, made_by_user).
package teach

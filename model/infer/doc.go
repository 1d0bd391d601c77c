// Package infer is the engine's tiled, batched ONNX inference path: it
// cuts each camera's lines into overlapping tiles, scores them on a shared
// pool of ONNX Runtime sessions, stitches the anomaly maps back into one
// full-width map per camera, and turns the pixels above threshold into
// connected components in camera coordinates.
//
// # Model
//
// One Pool per model holds Options.Workers workers, each with its own
// onnx.Session (one intra-op thread). One Detector per camera is fed that
// camera's blocks in line order from one goroutine (the engine's detect
// goroutine); it returns the components that have closed so far.
//
//	camera lines ─▶ Detector.Process ─▶ [bin 2×2] ─▶ strip rows ─┐
//	                                                              │ th rows
//	                 ┌──────────── Pool queue (tiles of all cameras, FIFO)
//	                 ▼
//	      worker 1 … worker N: up to Batch tiles ─▶ Session.RunTiles ─▶ tile maps
//	                 │
//	                 ▼ (strip done)
//	Detector: stitch ─▶ zero off-web ─▶ threshold runs ─▶ kernels.Labeler ─▶ []Component
//
// Sizes are in model pixels (after binning) unless said otherwise: the
// tile is th×tw (onnx.Model.TileSize), the strip is th rows of the binned
// width bw = width/Bin.
//
// # Strips, tiles, overlap and stitching
//
// Rows accumulate in a strip buffer. When it holds th rows it is cut
// across the width into tiles that overlap by OverlapCD columns; the last
// tile is aligned with the right edge (overlapping its neighbour more).
// The next strip starts with the last OverlapMD rows of this one:
//
//	       ◀───────────────────── bw model columns ─────────────────────▶
//	       x0=0       x1=tw-ocd  x2=2(tw-ocd)              xn=bw-tw
//	       ├── tile 0 ──┤
//	                ├── tile 1 ──┤
//	                         ├── tile 2 ──┤   …       ├── tile n ──┤
//	row 0  ┌────────┬───┬─────┬───┬───────────────────┬──────────┐
//	       │ tile 0 │ov │tile1│ov │ tile 2 …          │  tile n  │  strip k,
//	       │ keeps  │ ↕ │keeps│ ↕ │ each CD overlap   │  keeps   │  th rows
//	       │        │cut│     │cut│ (ov = OverlapCD)  │          │
//	th-omd ├ ─ ─ ─ ─│─ ─│─ ─ ─│─ ─│─ ─ ─ ─ ─ ─ ─ ─ ─ ─│─ ─ ─ ─ ─ ┤ ◀ MD overlap:
//	       │        cut at the middle row as well                │   rows 0..omd-1
//	th     └─────────────────────────────────────────────────────┘   of strip k+1
//
// Stitching combines the tile maps in an accumulator of th map rows. With
// StitchCentre (the default) every overlap, across and along the web, is
// cut at its middle and each side keeps the pixels nearer its own tile's
// centre; pixels within ⌊overlap/2⌋ of a tile's border are never used. A
// model whose receptive field reaches r pixels (r = 1 for the default
// BuildScoringModel's 3×3 box) therefore gives the same map tiled as on the
// whole strip when both overlaps are at least 2r; the tests check this
// against one tile as large as the strip. We chose the cut over averaging
// because averaging (StitchMean) or taking the maximum (StitchMax) mixes in
// the border pixels that a tile computed from a truncated neighbourhood;
// both remain available for models whose receptive field exceeds any
// affordable overlap.
//
// After a strip is stitched its first th-omd map rows are final: no later
// strip touches them. They are zeroed outside the web, thresholded into
// runs and labelled; the last omd rows stay in the accumulator as the
// next strip's first rows. Strips complete in any order on the workers but
// are stitched in order; a detector keeps at most InFlight strips queued
// or running and waits for the oldest when all are busy.
//
// # End of a run of lines
//
// Flush, or a block whose FirstLine does not follow the previous one,
// ends a run of contiguous lines. The rows not yet emitted are scored by
// one last strip aligned with the last row: its upper rows are copied from
// the previous strip (already emitted, not emitted again), so no row is
// padded and the map near the end equals the untiled map. When a run is
// shorter than one strip, the last row is replicated downwards to fill
// the tile and only the real rows are emitted. With Bin 2 an odd last
// camera line cannot be binned and is dropped (counted by Dropped). Every
// open component is closed at the end of a run.
//
// # Coordinates
//
// Model row y of a run covers camera lines FirstLine + Bin·y … +Bin-1 and
// model column x covers camera columns Bin·x … +Bin-1 (an odd last camera
// column is dropped by binning). Components are labelled at model
// resolution and reported at camera resolution: Line0/Line1, Col0/Col1
// multiplied back, Area = model pixels × Bin², Count0/Count1 the encoder
// counts of the first and last camera line. Peak and Mean are anomaly
// scores.
//
// # Off-web areas and web edges
//
// A camera may see beyond the web's edge, e.g. a saturated white band
// (backlight) at one end of every line whose width wanders from line to
// line. Every model row is searched, as it enters the strip, by
// model/edge (the code teach and eval use too, so eval measures what
// the engine does): a band of pixels ≥ Level (bright) or ≤ Level (dark)
// touching either end and at least MinBand wide is background, Guard more
// pixels beside it too. The off-web pixels are replaced with the web
// mirrored across the edge before inference, so the model sees no step at
// the edge (the band edge is not flagged) while a defect touching the
// edge stays a defect, and the map outside the web is zeroed after
// stitching. OffWeb.Mode auto (the default) takes the settings the model
// was taught with. A model with CD zones (onnx.InputSpec.Edges) also gets
// every tile row's edges, so it scores each pixel against the zone of its
// distance from the edge, wherever the edge has wandered. A bright defect
// touching a bright band (or a dark one a dark band) is indistinguishable
// from the band and is taken as off-web.
//
// # Batching
//
// Workers take tiles from one FIFO queue. A worker blocks for its first
// tile, then takes whatever else is queued up to Batch; if the queue runs
// dry before the batch is full it waits once, at most MaxWaitMS, for more
// tiles, then runs what it has (PoolStats counts such timeouts). A tile
// therefore never waits in a worker beyond MaxWaitMS, and a full queue never
// waits at all. Input and output tensors are the sessions' own, reused on
// every run; workers, queue and detectors allocate nothing per tile or
// per block once their buffers (and the Labeler's) have grown.
//
// # Wiring into the engine
//
// Load the model with onnx.Load (ModelOptions.Batch ≥ Options.Batch,
// IntraOpThreads 1), make one Pool for it and one Detector per camera
// (Pool.NewDetector(camera width)). In a camera's detect goroutine, hand
// each block's lines (flat-fielded or not) to Process or ProcessBlock with
// the block's FirstLine and Counts; a dropped block shows as a jump in
// FirstLine and ends the run by itself (or call Flush at the gap). Frontier
// tells the assembler which lines can still produce components. At end of
// stream call Flush on every detector, then Pool.Close. Register
// Pool.Collector with the engine's Prometheus registerer.
//
// # Buffers
//
// Process reads the caller's pixels and keeps none of them. Per detector,
// InFlight strips of th×max(bw,tw) pixels and tiles×th×tw float32 map
// slots, plus a th×bw float32 accumulator, are allocated once.
package infer

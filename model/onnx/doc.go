// Package onnx runs anomaly-detection models through ONNX Runtime: it finds
// and loads the runtime library, loads a model with its JSON sidecar and
// refuses one that does not fit, runs tiles through per-worker sessions
// without allocating, and writes small scoring graphs from Go.
//
// # Runtime library
//
// ONNX Runtime is a C library loaded at run time (dlopen), not linked. `make
// deps` fetches the CPU build from the npm package onnxruntime-node@1.30.0,
// checks the tarball's SHA-256 and npm integrity recorded in the Makefile,
// and extracts bin/napi-v6/linux/x64/libonnxruntime.so.1 into
// third_party/onnxruntime/. Init finds it from its argument (the engine's
// flag), else $WEBINSPECT_ORT_LIB, else that folder under the module root;
// when it is missing the error says to run `make deps` or set
// WEBINSPECT_ORT_LIB. `make test` sets WEBINSPECT_REQUIRE_ORT=1 so the
// tests fail, rather than skip, without the library.
//
// # Model directory
//
// A model is a directory (or an .onnx file with model.json beside it):
//
//	MODELDIR/
//	  model.onnx   ONNX protobuf: one float32 input [N,C,H,W], C = 1 or 3;
//	               outputs anomaly map [N,1,H,W] (or [N,H,W]) and score [N] (or [N,1])
//	  model.json   sidecar (Sidecar), e.g.
//	               {
//	                 "version": 1,
//	                 "input":   {"name": "input", "shape": [-1, 1, 64, 64],
//	                             "mean": [0.45], "std": [0.225]},
//	                 "outputs": {"anomaly_map": "anomaly_map", "score": "pred_score",
//	                             "min": 0.1, "max": 2.5},
//	                 "threshold": 0.5,
//	                 "made_by": {"tool": "webinspect teach", "method": "...",
//	                             "created": "2026-11-27T08:00:00Z", "params": {...}}
//	               }
//
// A taught model with CD zones has a second input named by input.edges:
// [N,1,H,2] float32, each tile row's left and right web edge in tile
// columns (±2^20 for a side without an edge); sessions fill it from
// Tile.E0/E1 (model/edge extents), or with "no edge" when a tile has none.
//
// Shape [-1,…] means any batch size. Load asks the runtime for the graph's
// inputs and outputs and refuses (ErrMismatch) any disagreement with the
// sidecar or the recipe (ModelOptions), naming both sides:
//
//	model input "x" is [1,3,256,256] float32, sidecar says [N,1,64,64] float32
//
// # Tensors and buffers
//
// Each Session owns one input buffer and two output buffers sized for
// ModelOptions.Batch tiles, wrapped once as runtime tensors and bound once
// per batch size (IoBinding), so Run copies pixels in, calls the runtime and
// hands back views; it allocates nothing. Layout, row-major NCHW float32:
//
//	input  [tile 0: ch 0 H×W | ch 1 H×W | ch 2 H×W][tile 1: …]…   C planes per tile
//	map    [tile 0: H×W][tile 1: H×W]…                              one plane per tile
//	score  [s0 s1 …]
//
// An 8-bit pixel p becomes (p/255 - mean[c]) / std[c] through a 256-entry
// table per channel; a grayscale tile fills all three planes when the model
// takes three channels. With outputs.min/max set, map and score are rescaled
// to (v - min)/(max - min) in place. Results stay valid until the next Run.
// Sessions use one intra-op thread: one session per worker measured best
// on this hardware (DESIGN.md).
//
// # Graphs written from Go
//
// BuildScoringModel writes a small real graph with gonnx's ONNX protobuf
// types (|x-mean|/std, box mean, max); tests use it, and the teach step of
// issue 4 extends it into the taught model (see ScoringModelSpec).
package onnx

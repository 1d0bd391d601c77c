// Package lint holds repository-wide checks written as Go tests, run by
// `go test ./...` like every other test.
//
// # Layering
//
// TestLint/Layering reads the package graph with `go list -deps -json` and
// fails when a package imports (outside its tests) across the intended
// direction. The layers, lowest first; a package may import its own layer's
// subpackages and what its layer lists:
//
//	layer        packages                                   may import
//	leaf         kernels, acquisition/..., rollmap/...,     (nothing of ours but its own
//	             engine/status, internal/...                 subpackages; acquisition/... may
//	                                                         import kernels)
//	model        model/...                                  kernels, acquisition/...
//	marking      marking                                    rollmap/...
//	engine       engine (and subpackages but engine/status) acquisition/... (not
//	                                                         acquisition/sim), kernels,
//	                                                         rollmap/..., model/..., marking,
//	                                                         engine/status
//	api          api/...                                    rollmap/..., engine/status
//	bench        bench/...                                  everything above but api and cmd
//	cmd          cmd/...                                    everything
//
// The acquisition layer holds the sources: acquisition/ring, recording,
// sim, and the camera packages (genicam, gige, u3v, camsim) as they land.
// Tests may import more (the simulator, bench/score, model/onnx/ortest):
// they are not linked into the command.
//
// TestLint/APIWithoutCgo also checks that the API's dependencies contain
// neither ONNX Runtime nor Modbus, so that it builds and tests without cgo.
package lint

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
//	layer        packages              may import
//	kernels      kernels/...           nothing of ours
//	acquisition  acquisition/...       kernels
//	rollmap      rollmap/...           nothing of ours
//	status       engine/status         nothing of ours
//	internal     internal/...          nothing of ours (and everyone may import it)
//	model        model/...             kernels, acquisition/...
//	marking      marking/...           rollmap/...
//	engine       engine/...            acquisition/... except acquisition/sim, kernels,
//	                                   rollmap/..., model/..., marking/..., engine/status
//	api          api/...               rollmap/..., engine/status
//	plant        plant/... (to come)   rollmap/..., engine/status
//	bench        bench/...             everything but cmd
//	cmd          cmd/...               everything
//
// The acquisition layer holds the sources: acquisition/ring, recording,
// sim, and the camera packages (genicam, gige, u3v, camsim) as they land.
// Tests may import more (the simulator, bench/score, model/onnx/ortest):
// they are not linked into the command.
//
// TestLint/APIWithoutCgo also checks that the dependencies of the API's
// packages (api/..., the OPC UA server included) contain neither ONNX
// Runtime nor Modbus, so that they build and test without cgo.
package lint

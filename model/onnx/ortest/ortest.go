// Package ortest loads ONNX Runtime for tests of the packages that run
// models. Require fails the test when WEBINSPECT_REQUIRE_ORT=1 (as `make
// test` and CI set: the runtime must be there and the tests must run) and
// skips it otherwise, both with onnx.Init's message saying what to run.
package ortest

import (
	"os"
	"testing"

	"github.com/webinspect/webinspect/model/onnx"
)

// EnvRequire is the environment variable that makes a missing runtime a
// test failure instead of a skip.
const EnvRequire = "WEBINSPECT_REQUIRE_ORT"

// Require loads the runtime (onnx.Init with the default search) or stops
// the test.
func Require(tb testing.TB) {
	tb.Helper()
	if err := onnx.Init(""); err != nil {
		if os.Getenv(EnvRequire) == "1" {
			tb.Fatalf("ONNX Runtime is required here (%s=1): %v", EnvRequire, err)
		}
		tb.Skipf("skipping, ONNX Runtime not available: %v", err)
	}
}

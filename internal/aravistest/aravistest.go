// Package aravistest finds the Aravis reference streaming client
// (aravis_stream.py) that the camera tests measure ours against.
//
// The client is not a Debian package: it comes with the workplace's shared
// tools, beside the repository (../shared/tools), or where
// $WEBINSPECT_ARAVIS_STREAM says. Tests skip the comparison when it is not
// there, even when WEBINSPECT_REQUIRE_ARAVIS=1 (which requires the Debian
// packages: the fake camera, arv-tool and the Python bindings).
package aravistest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// StreamScript returns the path of aravis_stream.py, or "" when it cannot
// be found.
func StreamScript() string {
	if p := os.Getenv("WEBINSPECT_ARAVIS_STREAM"); p != "" {
		return p
	}
	var cands []string
	if out, err := exec.Command("go", "env", "GOMOD").Output(); err == nil {
		if mod := strings.TrimSpace(string(out)); mod != "" && mod != os.DevNull {
			cands = append(cands, filepath.Join(filepath.Dir(mod), "..", "shared", "tools", "aravis_stream.py"))
		}
	}
	cands = append(cands, "/work/shared/tools/aravis_stream.py")
	for _, c := range cands {
		if st, err := os.Stat(c); err == nil && st.Mode().IsRegular() {
			return c
		}
	}
	return ""
}

// FakeCameraLock is the file the tests lock (flock) while Aravis's fake
// camera runs: it always binds 127.0.0.1:3956, so test packages running at
// the same time take turns.
const FakeCameraLock = "/tmp/webinspect-aravis-fake.lock"

// LockFakeCamera waits for the fake camera's lock and holds it until t
// ends.
func LockFakeCamera(t testing.TB) {
	t.Helper()
	f, err := os.OpenFile(FakeCameraLock, os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Flock(int(f.Fd()), unix.LOCK_UN); f.Close() })
}

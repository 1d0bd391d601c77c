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

package main

import (
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/webinspect/webinspect/internal/poll"
	"github.com/webinspect/webinspect/internal/syncbuf"
	"github.com/webinspect/webinspect/rollmap"
)

// startLoggedChild is startChild with stderr readable while it runs.
func startLoggedChild(t *testing.T, args string) (*exec.Cmd, *syncbuf.Buffer) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "WEBINSPECT_CHILD_ARGS="+args, "NO_COLOR=1")
	logs := &syncbuf.Buffer{}
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
		if t.Failed() {
			t.Logf("child %q logs:\n%s", args, logs.String())
		}
	})
	return cmd, logs
}

var listeningRE = regexp.MustCompile(`http server listening addr=(\S+)`)

// childAddr waits for the child's "http server listening" log line and
// returns its address.
func childAddr(t *testing.T, logs *syncbuf.Buffer) string {
	t.Helper()
	var addr string
	poll.Until(t, 2*time.Minute, "the engine's HTTP server to listen", func() bool {
		m := listeningRE.FindStringSubmatch(logs.String())
		if m != nil {
			addr = m[1]
		}
		return addr != ""
	})
	return addr
}

// mountTmpfs mounts a tmpfs of size bytes on a new directory, or skips
// the test where mounting is not allowed (not root).
func mountTmpfs(t *testing.T, size int64) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "disk")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+strconv.FormatInt(size, 10), "tmpfs", dir).CombinedOutput()
	if err != nil {
		t.Skipf("a full disk needs a tmpfs, and it cannot be mounted here (%v: %s)", err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
			_ = exec.Command("umount", "-l", dir).Run()
		}
	})
	return dir
}

// fillDisk writes a file in dir until the filesystem is full.
func fillDisk(t *testing.T, dir string) {
	t.Helper()
	f, err := os.Create(filepath.Join(dir, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling the disk: %v", err)
			}
			return
		}
	}
}

// On a full disk `run` said nothing in /api/status and exited 0 after
// SIGTERM although its final flush failed (issue 14 #3). Now the status
// names the failure while it lasts, and the exit status is non-zero.
func TestRunFullDiskShowsAndFails(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: runs the engine on a tmpfs")
	}
	disk := mountTmpfs(t, 4<<20)
	rolls := filepath.Join(disk, "rolls")
	child, logs := startLoggedChild(t, "run --rolls "+rolls+" --images=false --listen 127.0.0.1:0 --length 300m --speed 100m/min --width 400mm --defects 400 --seed 5")
	addr := childAddr(t, logs)
	id, _ := waitLength(t, rolls, 1)

	status := func() (map[string]json.RawMessage, error) {
		res, err := http.Get("http://" + addr + "/api/status")
		if err != nil {
			return nil, err
		}
		defer res.Body.Close()
		var m map[string]json.RawMessage
		if err := json.NewDecoder(res.Body).Decode(&m); err != nil {
			return nil, err
		}
		return m, nil
	}
	st, err := status()
	if err != nil {
		t.Fatal(err)
	}
	if got := string(st["persistence_error"]); got != "null" {
		t.Fatalf("before the disk filled: persistence_error %s, want null", got)
	}

	fillDisk(t, disk)
	var pe rollmap.PersistenceError
	poll.Until(t, 2*time.Minute, "/api/status to report the full disk", func() bool {
		st, err := status()
		if err != nil || string(st["persistence_error"]) == "null" {
			return false
		}
		return json.Unmarshal(st["persistence_error"], &pe) == nil
	})
	if pe.Roll != id || !strings.Contains(pe.Message, "no space left on device") || pe.Since.IsZero() || pe.Failures < 1 {
		t.Errorf("persistence_error %+v: want roll %s, ENOSPC, since when", pe, id)
	}
	if st, _ := status(); !strings.Contains(string(st["state"]), "running") {
		t.Errorf("state %s: the engine goes on inspecting while it cannot write", st["state"])
	}

	child.Process.Signal(syscall.SIGTERM)
	err = child.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() == 0 {
		t.Fatalf("run after a failed final flush exited %v, want a non-zero status", err)
	}
	if out := logs.String(); !strings.Contains(out, "no space left on device") || !strings.Contains(out, "webinspect run: ") {
		t.Errorf("exit without the one-line error naming the full disk:\n%s", out)
	}
	// The roll is closed with its true length, not left open (issue 14 #4).
	meta, _, _, _ := rollmap.ReadRoll(filepath.Join(rolls, id))
	if meta.Open || meta.LengthM <= 1 {
		t.Errorf("roll %s after the full-disk stop: open %v, length %v m; want closed with its length", id, meta.Open, meta.LengthM)
	}
}

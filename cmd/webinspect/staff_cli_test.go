package main

// Command-line tests of issue 15 #8: usage and help, exit statuses, plain
// logs that name the recipe and model, and the roll closed at Ctrl-C.

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/webinspect/webinspect/internal/syncbuf"
)

func TestUsageAndHelp(t *testing.T) {
	code, stdout, stderr := runCLI(t)
	if code != 2 || stdout != "" || !strings.Contains(stderr, "usage: webinspect") {
		t.Errorf("no arguments: exit %d, stdout %q, stderr %q; want exit 2 and the usage on stderr only", code, stdout, stderr)
	}
	code, stdout, _ = runCLI(t, "help")
	if code != 0 {
		t.Errorf("help: exit %d, want 0", code)
	}
	for _, f := range []string{"csv", "json", "parquet", "cutlist", "pdf", "html"} {
		if !strings.Contains(stdout, f) {
			t.Errorf("the usage does not name the export format %s:\n%s", f, stdout)
		}
	}
	// A placeholder is a noun for the value, never a word of the description.
	badPlaceholder := regexp.MustCompile(`(?m)^\s+-[a-z-]+ (webinspect|e\.g\.|as)\b`)
	for cmd, want := range map[string]string{
		"replay": "usage: webinspect replay DIR --rolls OUTDIR", "export": "usage: webinspect export ROLL --format",
		"eval": "usage: webinspect eval DATASET_DIR", "teach": "usage: webinspect teach --from", "run": "usage: webinspect run",
		"bench": "usage: webinspect bench", "simulate": "usage: webinspect simulate --out DIR",
	} {
		code, stdout, _ := runCLI(t, cmd, "-h")
		if code != 0 || !strings.HasPrefix(stdout, want) {
			t.Errorf("%s -h: exit %d, help starts %q; want %q", cmd, code, firstLine(stdout), want)
		}
		if m := badPlaceholder.FindString(stdout); m != "" {
			t.Errorf("%s -h shows a word of the description as a placeholder: %q", cmd, strings.TrimSpace(m))
		}
	}
}

func firstLine(s string) string { l, _, _ := strings.Cut(s, "\n"); return l }

// TestUnknownRecipeIsUsageError: a --recipe that is neither a file nor a
// built-in name is a command-line mistake, exit 2, naming the built-ins.
func TestUnknownRecipeIsUsageError(t *testing.T) {
	code, _, stderr := runCLI(t, "run", "--recipe", "nosuch", "--rolls", t.TempDir(), "--listen", "127.0.0.1:0")
	oneLineError(t, code, stderr, "--recipe nosuch", "fabric")
	if code != 2 {
		t.Errorf("exit %d, want 2", code)
	}
}

// TestReplayLogsArePlainAndNameRecipeAndModel: logs to a file (not a
// terminal) carry no colour codes, and the start names recipe and model.
func TestReplayLogsArePlainAndNameRecipeAndModel(t *testing.T) {
	dir := t.TempDir()
	simulate(t, filepath.Join(dir, "D"), "--length", "3m", "--defects", "1")
	code, _, stderr := runCLI(t, "replay", filepath.Join(dir, "D"), "--rolls", filepath.Join(dir, "R"))
	if code != 0 {
		t.Fatalf("replay: exit %d: %s", code, stderr)
	}
	if strings.Contains(stderr, "\x1b[") {
		t.Errorf("logs to a non-terminal carry ANSI colour codes: %q", stderr)
	}
	if !strings.Contains(stderr, "recipe=") || !strings.Contains(stderr, "fabric-default") || !strings.Contains(stderr, "model=") {
		t.Errorf("the start-up log does not name the recipe and the model: %s", stderr)
	}
}

// TestInterruptLogsRollClosed: Ctrl-C (SIGINT) stops `run` with a log line
// saying the roll was closed, and the start-up line names recipe and model.
func TestInterruptLogsRollClosed(t *testing.T) {
	rolls := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "WEBINSPECT_CHILD_ARGS=run --rolls "+rolls+" --listen 127.0.0.1:0 --length 300m --speed 100m/min --width 400mm --defects 20 --seed 5")
	var logs syncbuf.Buffer
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	id, _ := waitLength(t, rolls, 1)
	cmd.Process.Signal(syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run did not stop cleanly on SIGINT: %v\n%s", err, logs.String())
		}
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("run did not stop within 60 s of SIGINT:\n%s", logs.String())
	}
	out := logs.String()
	if !regexp.MustCompile(`stopped; roll closed.*roll=` + regexp.QuoteMeta(id)).MatchString(out) {
		t.Errorf("no log line saying roll %s was closed:\n%s", id, out)
	}
	if !regexp.MustCompile(`inspecting.*recipe="?fabric-default`).MatchString(out) {
		t.Errorf("the start-up line does not name the recipe:\n%s", out)
	}
	if !strings.Contains(out, "model=") {
		t.Errorf("the start-up line does not name the model:\n%s", out)
	}
}

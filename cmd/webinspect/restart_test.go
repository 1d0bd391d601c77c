package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/webinspect/webinspect/internal/poll"
	"github.com/webinspect/webinspect/rollmap"
)

// TestMain lets a test start the command as a real child process: when
// WEBINSPECT_CHILD_ARGS is set, the test binary runs webinspect instead.
func TestMain(m *testing.M) {
	if args := os.Getenv("WEBINSPECT_CHILD_ARGS"); args != "" {
		os.Exit(realMain(strings.Fields(args), os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

func startChild(t *testing.T, args string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "WEBINSPECT_CHILD_ARGS="+args)
	var logs bytes.Buffer
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("child %q logs:\n%s", args, logs.String())
		}
	})
	return cmd
}

// flushedLength reads the roll's length as last flushed to roll.json.
func flushedLength(t *testing.T, rolls string) (string, float64) {
	ents, _ := os.ReadDir(rolls)
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(rolls, e.Name(), "roll.json"))
		if err != nil {
			continue
		}
		var m struct {
			LengthM float64 `json:"length_m"`
		}
		if json.Unmarshal(b, &m) == nil {
			return e.Name(), m.LengthM
		}
	}
	return "", 0
}

func waitLength(t *testing.T, rolls string, atLeast float64) (string, float64) {
	t.Helper()
	var id string
	var l float64
	poll.Until(t, 2*time.Minute, fmt.Sprintf("the roll in %s to reach %.1f m", rolls, atLeast), func() bool {
		id, l = flushedLength(t, rolls)
		return l >= atLeast
	})
	return id, l
}

// TestKilledEngineResumesTheSameRoll kills `webinspect run` with SIGKILL
// twice while it inspects, restarts it each time, and checks that the roll
// continues: nothing flushed is lost, the restarts are recorded as
// uninspected (engine-restart), and defect IDs never repeat.
func TestKilledEngineResumesTheSameRoll(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: runs and kills the engine three times")
	}
	rolls := t.TempDir()
	args := "run --rolls " + rolls + " --listen 127.0.0.1:0 --length 300m --speed 100m/min --width 400mm --defects 150 --seed 3"
	var before []rollmap.Defect
	var killedAt []float64
	var rollID string
	target := 3.0
	for kill := 0; kill < 2; kill++ {
		child := startChild(t, args)
		id, _ := waitLength(t, rolls, target)
		if rollID != "" && id != rollID {
			t.Fatalf("restart %d wrote roll %s, want the resumed roll %s", kill, id, rollID)
		}
		rollID = id
		child.Process.Signal(syscall.SIGKILL)
		child.Wait()
		_, l := flushedLength(t, rolls)
		killedAt = append(killedAt, l)
		_, ds, _, err := rollmap.ReadRoll(filepath.Join(rolls, rollID))
		if err != nil {
			t.Logf("reading the killed roll: %v (a torn tail is expected)", err)
		}
		before = ds
		target = l + 3
	}
	child := startChild(t, args)
	waitLength(t, rolls, target)
	child.Process.Signal(syscall.SIGTERM)
	if err := child.Wait(); err != nil {
		t.Fatalf("engine did not stop cleanly on SIGTERM: %v", err)
	}

	ents, _ := rollDirs(rolls)
	if len(ents) != 1 {
		t.Fatalf("%d rolls after two restarts, want the one resumed roll", len(ents))
	}
	meta, ds, us, err := rollmap.ReadRoll(filepath.Join(rolls, rollID))
	if err != nil {
		t.Fatal(err)
	}
	if meta.Open {
		t.Error("roll still open after a clean stop")
	}
	have := map[int64]rollmap.Defect{}
	for _, d := range ds {
		if _, dup := have[d.ID]; dup {
			t.Errorf("defect ID %d appears twice", d.ID)
		}
		have[d.ID] = d
	}
	for _, d := range before {
		if got, ok := have[d.ID]; !ok || got.MDStartM != d.MDStartM {
			t.Errorf("defect %d flushed before the kill is lost or changed", d.ID)
		}
	}
	restarts := 0
	for _, u := range us {
		if u.Reason == rollmap.ReasonRestart {
			restarts++
			found := false
			for _, k := range killedAt {
				found = found || (u.MDStartM >= k-1e-9 && u.MDStartM <= k+1e-6)
			}
			if !found {
				t.Errorf("restart gap %+v does not start where the killed engine had flushed (%v)", u, killedAt)
			}
		}
	}
	if restarts != 2 {
		t.Errorf("%d engine-restart ranges, want 2: %+v", restarts, us)
	}
	if len(before) == 0 {
		t.Error("no defect was flushed before the last kill: the test proves nothing")
	}
	if meta.LengthM < target {
		t.Errorf("roll length %.2f m, want at least %.2f m", meta.LengthM, target)
	}
	t.Logf("roll %s: %.1f m, %d defects, killed at %v m", rollID, meta.LengthM, len(ds), killedAt)
}

// TestSecondEngineOnOneStoreIsRefused: a second engine on the --rolls
// directory an engine is writing refuses to start, with one line naming
// the holder's PID, and leaves the first engine's roll alone.
func TestSecondEngineOnOneStoreIsRefused(t *testing.T) {
	rolls := t.TempDir()
	child := startChild(t, "run --rolls "+rolls+" --listen 127.0.0.1:0 --length 300m --speed 100m/min --width 400mm --defects 50 --seed 4")
	defer func() { child.Process.Kill(); child.Wait() }()
	id, _ := waitLength(t, rolls, 1)
	for _, cmd := range [][]string{
		{"run", "--rolls", rolls, "--listen", "127.0.0.1:0", "--length", "20m"},
		{"replay", t.TempDir(), "--rolls", rolls},
	} {
		code, _, stderr := runCLI(t, cmd...)
		want := fmt.Sprintf("PID %d", child.Process.Pid)
		if cmd[0] == "replay" {
			// replay opens its recording first; an empty directory is
			// not one, so only check that it does not get to the store.
			if code == 0 {
				t.Errorf("replay into a locked store: exit 0")
			}
			continue
		}
		oneLineError(t, code, stderr, "in use by another process", want, rolls)
	}
	ents, _ := rollDirs(rolls)
	if len(ents) != 1 || filepath.Base(ents[0]) != id {
		t.Errorf("rolls after the refused start: %v, want only %s", ents, id)
	}
	if err := child.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := child.Wait(); err != nil {
		t.Fatalf("first engine after the refused start: %v", err)
	}
	if _, _, _, err := rollmap.ReadRoll(filepath.Join(rolls, id)); err != nil {
		t.Errorf("the first engine's roll: %v", err)
	}
}

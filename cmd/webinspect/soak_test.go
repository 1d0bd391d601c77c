package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/webinspect/webinspect/bench"
	"github.com/webinspect/webinspect/internal/long"
)

// TestSoak2Minutes is `webinspect bench --soak 1h` scaled to 2 minutes:
// `webinspect run` at the fabric-2m load as a child process, a roll
// change every 20 s, reviews and exports alongside, and 5 kill -9/restart
// cycles. It fails on RSS drift beyond ±10 % after the warm-up, growing
// goroutines or descriptors, any defect or review lost, and any restart
// missing from the map (issue 14, "a soak test").
func TestSoak2Minutes(t *testing.T) {
	long.Skip(t, "a 2-minute soak of the engine as a child process")
	dir := filepath.Join(t.TempDir(), "rolls")
	o := bench.DefaultSoakOptions(2*time.Minute, dir)
	o.Log = zerolog.New(zerolog.ConsoleWriter{Out: testWriter{t}, NoColor: true})
	// Under -race (make test-long) RSS measures the race detector's shadow
	// memory and a start-up stretched past the 10 s settle time: sampled
	// and printed, not held. The other criteria are.
	o.SkipRSS = raceEnabled
	o.Command = func(args ...string) *exec.Cmd {
		c := exec.Command(os.Args[0], "-test.run=^$")
		c.Env = append(os.Environ(), "WEBINSPECT_CHILD_ARGS="+strings.Join(args, " "))
		return c
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute) // a hang guard
	defer cancel()
	r, err := bench.RunSoak(ctx, o)
	var table bytes.Buffer
	bench.WriteSoak(&table, r)
	t.Logf("soak:\n%s", table.String())
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range r.Failures {
		t.Error(f)
	}
	if r.Kills != 5 || r.RollChanges < 4 || r.Reviews == 0 || r.Exports == 0 || len(r.Samples) < 30 {
		t.Errorf("%d kills, %d roll changes, %d reviews, %d exports, %d samples: the soak did not do its work", r.Kills, r.RollChanges, r.Reviews, r.Exports, len(r.Samples))
	}
	if t.Failed() {
		for i := 0; i <= 5; i++ {
			if b, err := os.ReadFile(filepath.Join(dir+".logs", "engine-"+string(rune('0'+i))+".log")); err == nil {
				t.Logf("engine %d log (tail):\n%s", i, tail(string(b), 3000))
			}
		}
	}
}

// testWriter sends log lines to t.Log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/webinspect/webinspect/internal/dirlock"
	"github.com/webinspect/webinspect/internal/poll"
)

// Plant flags that do not fit are refused before anything starts, naming
// the flag, with exit status 2.
func TestPlantFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "--plant", "nats://127.0.0.1:1"}, "--plant needs --line NAME"},
		{[]string{"run", "--line", "L1"}, "--line needs --plant URL"},
		{[]string{"run", "--plant", "nats://127.0.0.1:1", "--line", "L.1"}, `--line: line "L.1"`},
		{[]string{"run", "--plant", "nats://127.0.0.1:1", "--line", "L1", "--plant-replicas", "7"}, "--plant-replicas 7"},
		{[]string{"plant", "--listen", "nohost"}, `--listen "nohost"`},
		{[]string{"plant", "extra"}, `unexpected argument "extra"`},
		{[]string{"nats", "--listen", "nohost"}, `--listen "nohost": want host:port`},
		{[]string{"nats", "--listen", "127.0.0.1:99999"}, `--listen "127.0.0.1:99999": bad port`},
		{[]string{"nats", "--store", ""}, "--store: empty"},
		{[]string{"nats", "extra"}, `unexpected argument "extra"`},
		{[]string{"plant", "--nats-listen", "nohost"}, `--nats-listen "nohost": want host:port`},
		{[]string{"plant", "--listen", "0.0.0.0:8090"}, "--listen 0.0.0.0:8090 can be reached from other machines: give the plant a token"},
	} {
		t.Setenv("WEBINSPECT_TOKEN", "")
		code, _, stderr := runCLI(t, c.args...)
		if code != 2 || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", c.args, code, stderr, c.want)
		}
	}
}

// webinspect nats is a JetStream server of its own: clients connect by
// URL, and after a kill -9 and a start on the same store the streams are
// still there with what they held.
func TestNatsCommand(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	store := filepath.Join(t.TempDir(), "ns")
	args := fmt.Sprintf("nats --listen 127.0.0.1:%d --store %s", port, store)
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	msgs := func(publish bool) uint64 {
		nc, err := nats.Connect(url, nats.Timeout(time.Second))
		if err != nil {
			return 0
		}
		defer nc.Close()
		js, _ := jetstream.New(nc)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if publish {
			if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t"}, Storage: jetstream.FileStorage}); err != nil {
				return 0
			}
			if _, err := js.Publish(ctx, "t", []byte("kept"), jetstream.WithMsgID("one")); err != nil {
				return 0
			}
		}
		s, err := js.Stream(ctx, "T") // after the restart: only if the store kept it
		if err != nil {
			return 0
		}
		info, err := s.Info(ctx)
		if err != nil {
			return 0
		}
		return info.State.Msgs
	}
	child := startChild(t, args)
	poll.Until(t, 60*time.Second, "webinspect nats takes a JetStream message", func() bool { return msgs(true) == 1 })
	child.Process.Signal(syscall.SIGKILL)
	child.Wait()
	child = startChild(t, args)
	defer func() { child.Process.Signal(syscall.SIGTERM); child.Wait() }()
	poll.Until(t, 60*time.Second, "webinspect nats restarted on its store keeps the message", func() bool { return msgs(false) == 1 })
}

// webinspect plant compact compacts the dataset once: with nothing due
// it says so; an unreadable part file fails its partition with exit 1,
// naming the file, and nothing is deleted; it refuses a data directory
// a plant service holds, and flags out of range as mistakes (exit 2).
func TestPlantCompactCommand(t *testing.T) {
	data := t.TempDir()
	code, stdout, stderr := runCLI(t, "plant", "compact", "--data", data)
	if code != 0 || !strings.Contains(stdout, "compacted 0 partitions") {
		t.Errorf("empty dataset: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	day := filepath.Join(data, "defects", "line=L1", "day=2026-11-30")
	if err := os.MkdirAll(day, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"part-1-1.parquet", "part-2-1.parquet"} {
		if err := os.WriteFile(filepath.Join(day, n), []byte("PAR1 cut short"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	code, _, stderr = runCLI(t, "plant", "compact", "--data", data)
	if code != 1 || !strings.Contains(stderr, "part-1-1.parquet") || !strings.Contains(stderr, "1 partitions not compacted") {
		t.Errorf("unreadable parts: exit %d, stderr %q; want 1 naming part-1-1.parquet", code, stderr)
	}
	if ents, _ := os.ReadDir(day); len(ents) != 2 {
		t.Errorf("unreadable parts: %d files left, want both", len(ents))
	}
	l, err := dirlock.Acquire(data, "test")
	if err != nil {
		t.Fatal(err)
	}
	code, _, stderr = runCLI(t, "plant", "compact", "--data", data)
	l.Release()
	if code != 1 || !strings.Contains(stderr, "in use") {
		t.Errorf("data held by a service: exit %d, stderr %q", code, stderr)
	}
	for _, c := range []struct{ flag, want string }{{"--compact-max-parts=1", "--compact-max-parts 1"}, {"--compact-max-rows=5", "--compact-max-rows 5"}} {
		code, _, stderr = runCLI(t, "plant", "compact", "--data", data, c.flag)
		if code != 2 || !strings.Contains(stderr, c.want) {
			t.Errorf("%s: exit %d, stderr %q; want 2 naming it", c.flag, code, stderr)
		}
	}
}

package plant

import (
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/webinspect/webinspect/internal/long"
)

// natsChildEnv, when set to PORT:STOREDIR, makes the test binary a NATS
// JetStream server (StartServer) until it is killed: a server that a test
// can kill -9 as a process, as webinspect nats is killed in the plant.
const natsChildEnv = "WEBINSPECT_TEST_NATS_CHILD"

func TestMain(m *testing.M) {
	if root := os.Getenv(compactChildEnv); root != "" {
		os.Exit(compactChild(root))
	}
	if v := os.Getenv(natsChildEnv); v != "" {
		port, dir, _ := strings.Cut(v, ":")
		p, err := strconv.Atoi(port)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bad", natsChildEnv, v)
			os.Exit(2)
		}
		if _, err := StartServer(ServerOptions{Name: "child", Port: p, StoreDir: dir}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		select {}
	}
	os.Exit(m.Run())
}

// natsChild is a NATS server in a child process.
type natsChild struct {
	t     *testing.T
	port  int
	store string
	cmd   *exec.Cmd
	kills int
}

func (c *natsChild) url() string { return fmt.Sprintf("nats://127.0.0.1:%d", c.port) }

func (c *natsChild) start() {
	c.t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d:%s", natsChildEnv, c.port, c.store))
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	c.cmd = cmd
}

// kill9 kills the server with SIGKILL: no shutdown, no flush.
func (c *natsChild) kill9() {
	c.t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		c.t.Fatal(err)
	}
	err := c.cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		c.t.Fatalf("nats child: %v, want killed by SIGKILL", err)
	}
	c.kills++
}

// A NATS server killed with SIGKILL (a separate process, as webinspect
// nats runs) and started again on the same store while lines publish and
// the plant consumes: the publishers and the plant service reconnect by
// themselves, and at the end the plant holds every defect of every roll
// map once, none missing, also when read back from its dataset.
func TestNATSKill9(t *testing.T) {
	if raceEnabled {
		long.Skip(t, "NATS restarts under the race detector take minutes")
	}
	dir := t.TempDir()
	c := &natsChild{t: t, port: freePort(t), store: filepath.Join(dir, "nats")}
	c.start()
	t.Cleanup(func() {
		if c.cmd.ProcessState == nil {
			c.cmd.Process.Kill()
			c.cmd.Wait()
		}
	})
	g := &plantRig{t: t, dir: dir, urls: []string{c.url()}}
	for i := range 3 {
		g.lines = append(g.lines, newLine(t, filepath.Join(dir, "lines"), "L"+string(rune('0'+i)), uint64(i+11)))
		g.pubs = append(g.pubs, nil)
		g.startPub(i)
	}
	g.startService()
	t.Cleanup(g.stopAll)
	for _, l := range g.lines {
		l.startRoll(t)
	}
	rng := rand.New(rand.NewPCG(17, 3))
	for round := range 8 {
		for _, l := range g.lines {
			l.web(t, 15)
		}
		if round == 4 {
			for _, l := range g.lines {
				l.startRoll(t)
			}
		}
		if round%2 == 1 {
			// At a random moment of the lines' publishing and the plant's
			// consuming.
			time.Sleep(time.Duration(rng.IntN(300)) * time.Millisecond)
			c.kill9()
			for _, l := range g.lines {
				l.web(t, 10) // inspection goes on while NATS is down
			}
			c.start()
		}
	}
	for _, l := range g.lines {
		l.startRoll(t)
		l.web(t, 5)
	}
	want := g.waitUnion()
	if len(want) < 100 || c.kills != 4 {
		t.Fatalf("%d defects, %d kills: the test did not exercise much", len(want), c.kills)
	}
	// Every defect's record → queryable latency was measured once.
	if l := g.svc.LatencySummary(0); l.N != len(want) || l.P99MS <= 0 || l.MaxMS < l.P99MS {
		t.Errorf("latency summary %+v, want %d defects", l, len(want))
	}
	h := g.svc.Handler()
	for q, code := range map[string]int{"": 200, "?window=1h": 200, "?window=soon": 400, "?window=-1s": 400} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/api/plant/latency"+q, nil))
		if rec.Code != code || !strings.Contains(rec.Body.String(), map[bool]string{true: "p99_ms", false: "window"}[code == 200]) {
			t.Errorf("GET /api/plant/latency%s: %d %s, want %d", q, rec.Code, rec.Body, code)
		}
	}
	g.run.stop()
	g.run = nil
	back, err := NewService(ServiceOptions{URLs: g.urls, Data: filepath.Join(dir, "plant")})
	if err != nil {
		t.Fatal(err)
	}
	if got := diskDefects(t, back); !slices.Equal(got, want) {
		t.Fatalf("dataset read back: %d defects, want %d; %s", len(got), len(want), firstDiff(got, want))
	}
	t.Logf("%d defects over %d lines; NATS killed -9 %d times", len(want), len(g.lines), c.kills)
}

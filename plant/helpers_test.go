package plant

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/webinspect/webinspect/internal/poll"
	"github.com/webinspect/webinspect/rollmap"
)

// freePort returns a TCP port free on loopback now.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// natsNode is an embedded server that a test can kill and start again on
// the same port and store.
type natsNode struct {
	t    testing.TB
	o    ServerOptions
	mu   sync.Mutex
	srv  *server.Server
	kill int
}

func newNode(t testing.TB, o ServerOptions) *natsNode {
	n := &natsNode{t: t, o: o}
	n.start()
	t.Cleanup(n.stop)
	return n
}

func (n *natsNode) url() string { return fmt.Sprintf("nats://127.0.0.1:%d", n.o.Port) }

func (n *natsNode) start() {
	n.t.Helper()
	var err error
	var s *server.Server
	// The port may be held a moment after a shutdown.
	poll.Until(n.t, 30*time.Second, "nats server "+n.o.Name+" starts", func() bool {
		s, err = StartServer(n.o)
		return err == nil
	})
	n.mu.Lock()
	n.srv = s
	n.mu.Unlock()
}

func (n *natsNode) stop() {
	n.mu.Lock()
	s := n.srv
	n.srv = nil
	n.mu.Unlock()
	if s != nil {
		s.Shutdown()
		s.WaitForShutdown()
	}
}

// restart kills the server and starts it again on the same store.
func (n *natsNode) restart() {
	n.stop()
	n.kill++
	n.start()
}

// line is one line standing in for an engine: it writes rolls into its
// own store with defects at random positions, as the engine's assembler
// does (AddDefects; the roll flushes itself).
type line struct {
	name  string
	store *rollmap.Store
	roll  *rollmap.Roll
	rng   *rand.Rand
	skew  time.Duration // the line's clock is off by this much
	n     int
	md    float64
}

func newLine(t testing.TB, dir, name string, seed uint64) *line {
	t.Helper()
	o := rollmap.DefaultOptions()
	o.FlushInterval = 50 * time.Millisecond
	st, err := rollmap.OpenStoreOptions(filepath.Join(dir, name), o)
	if err != nil {
		t.Fatal(err)
	}
	l := &line{name: name, store: st, rng: rand.New(rand.NewPCG(seed, 7))}
	t.Cleanup(func() { st.Close() })
	return l
}

func (l *line) now() time.Time { return time.Now().Add(l.skew) }

// startRoll ends the current roll, if any, and starts the next with a
// context.
func (l *line) startRoll(t testing.TB) {
	t.Helper()
	if l.roll != nil {
		l.roll.SetLength(l.md)
		if err := l.roll.Close(); err != nil {
			t.Fatal(err)
		}
	}
	l.n++
	id := fmt.Sprintf("%s-R%03d", l.name, l.n)
	r, err := l.store.StartRoll(rollmap.RollMeta{ID: id, WebWidthMM: 2000, Recipe: "fabric", Started: l.now(),
		Context: rollmap.RollContext{Product: "P" + fmt.Sprint(l.n%3), Lot: "L" + fmt.Sprint(l.n), Supplier: "S" + fmt.Sprint(l.n%2), Shift: "AB"[l.n%2 : l.n%2+1]}})
	if err != nil {
		t.Fatal(err)
	}
	l.roll, l.md = r, 0
}

var classes = []string{"hole", "stain", "thick-place", "fly"}

// web inspects m more metres: some defects and now and then an
// uninspected range.
func (l *line) web(t testing.TB, m float64) {
	t.Helper()
	var ds []rollmap.Defect
	for x := l.md; x < l.md+m; x += 0.5 + l.rng.Float64()*3 {
		ds = append(ds, rollmap.Defect{MDStartM: x, MDEndM: x + 0.01, CDStartMM: l.rng.Float64() * 1990, CDEndMM: 0,
			AreaMM2: 3, PeakScore: 40, Class: classes[l.rng.IntN(len(classes))], Severity: "minor",
			Decision: rollmap.DecisionPass, Detector: rollmap.DetectorThreshold, Time: l.now()})
		ds[len(ds)-1].CDEndMM = ds[len(ds)-1].CDStartMM + 5
	}
	if err := l.roll.AddDefects(ds...); err != nil {
		t.Fatal(err)
	}
	if l.rng.IntN(4) == 0 {
		if err := l.roll.AddUninspected(rollmap.Uninspected{MDStartM: l.md, MDEndM: l.md + 0.2, CDEndMM: 2000, Camera: -1, Lines: 800, Reason: rollmap.ReasonDropped}); err != nil {
			t.Fatal(err)
		}
	}
	l.md += m
	l.roll.SetLength(l.md)
}

// truth returns every defect of every roll of the line from its roll map.
func (l *line) truth(t testing.TB) []DefectKey {
	t.Helper()
	infos, err := l.store.List()
	if err != nil {
		t.Fatal(err)
	}
	var out []DefectKey
	for _, in := range infos {
		ds, err := l.store.Defects(in.ID, rollmap.Query{})
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range ds {
			out = append(out, DefectKey{Line: l.name, Roll: in.ID, ID: d.ID, MDStart: d.MDStartM, CDStart: d.CDStartMM, Day: d.Time.UTC().Format(time.DateOnly)})
		}
	}
	return out
}

func sortKeys(ks []DefectKey) []DefectKey {
	slices.SortFunc(ks, func(a, b DefectKey) int {
		if a.Line != b.Line {
			return strings.Compare(a.Line, b.Line)
		}
		if a.Roll != b.Roll {
			return strings.Compare(a.Roll, b.Roll)
		}
		return int(a.ID - b.ID)
	})
	return ks
}

// running is a component started on a goroutine that a test can stop
// (and later start again).
type running struct {
	cancel context.CancelFunc
	done   chan struct{}
}

func goRun(run func(ctx context.Context)) *running {
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		run(ctx)
	}()
	return r
}

func (r *running) stop() {
	r.cancel()
	<-r.done
}

// diskDefects returns the rows of svc's dataset on disk, sorted.
func diskDefects(t testing.TB, svc *Service) []DefectKey {
	t.Helper()
	ks, err := svc.Defects()
	if err != nil {
		t.Fatal(err)
	}
	return sortKeys(ks)
}

// waitPlantHolds waits until svc's dataset holds as many defects as l's
// roll map and fails t unless they are the same; it returns them.
func waitPlantHolds(t testing.TB, svc *Service, l *line, what string) []DefectKey {
	t.Helper()
	want := sortKeys(l.truth(t))
	var got []DefectKey
	poll.Until(t, 90*time.Second, what, func() bool {
		got = diskDefects(t, svc)
		return len(got) >= len(want)
	})
	if !slices.Equal(got, want) {
		t.Fatalf("%s: plant has %d defects, the roll map %d; %s", what, len(got), len(want), firstDiff(got, want))
	}
	return got
}

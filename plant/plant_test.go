package plant

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/webinspect/webinspect/internal/long"
	"github.com/webinspect/webinspect/internal/poll"
)

// plantRig is a plant on one embedded NATS server with lines publishing
// to it.
type plantRig struct {
	t     *testing.T
	dir   string
	node  *natsNode // nil when urls name a server outside the test
	urls  []string
	lines []*line
	pubs  []*running
	svc   *Service
	run   *running
}

func newRig(t *testing.T, nLines int) *plantRig {
	dir := t.TempDir()
	g := &plantRig{t: t, dir: dir}
	g.node = newNode(t, ServerOptions{Name: "n1", Port: freePort(t), StoreDir: filepath.Join(dir, "nats")})
	g.urls = []string{g.node.url()}
	for i := range nLines {
		l := newLine(t, filepath.Join(dir, "lines"), "L"+string(rune('0'+i)), uint64(i+1))
		g.lines = append(g.lines, l)
		g.pubs = append(g.pubs, nil)
		g.startPub(i)
	}
	g.startService()
	t.Cleanup(g.stopAll)
	return g
}

func (g *plantRig) stopAll() {
	for i := range g.pubs {
		if g.pubs[i] != nil {
			g.pubs[i].stop()
		}
	}
	if g.run != nil {
		g.run.stop()
	}
}

func (g *plantRig) startPub(i int) {
	p, err := NewPublisher(PublisherOptions{URLs: g.urls, Plant: "mill", Line: g.lines[i].name,
		Store: g.lines[i].store, Interval: 20 * time.Millisecond, AckTimeout: 2 * time.Second, Logger: zerolog.Nop(),
		Status: func() LineStatus {
			return LineStatus{Time: time.Now(), State: "running", RollID: "x", SpeedMPerMin: 100, MDM: 50, Defects: 5}
		}, StatusInterval: 50 * time.Millisecond})
	if err != nil {
		g.t.Fatal(err)
	}
	g.pubs[i] = goRun(func(ctx context.Context) {
		if err := p.Run(ctx); err != nil {
			g.t.Errorf("line %s's publisher stopped: %v", g.lines[i].name, err)
		}
		p.Close()
	})
}

func (g *plantRig) startService() {
	svc, err := NewService(ServiceOptions{URLs: g.urls, Data: filepath.Join(g.dir, "plant"),
		FlushInterval: 50 * time.Millisecond, AckWait: 2 * time.Second, Hold: DefaultHoldRules()})
	if err != nil {
		g.t.Fatal(err)
	}
	g.svc = svc
	g.run = goRun(func(ctx context.Context) {
		if err := svc.Run(ctx); err != nil {
			g.t.Errorf("plant service stopped: %v", err) // it returns nil when stopped
		}
	})
}

// killService stops the service as if killed: nothing more is written or
// acknowledged; the next one starts from the dataset on disk.
func (g *plantRig) killService() {
	g.svc.crash = true
	g.run.stop()
	g.startService()
}

func (g *plantRig) truth() []DefectKey {
	var all []DefectKey
	for _, l := range g.lines {
		all = append(all, l.truth(g.t)...)
	}
	return sortKeys(all)
}

// waitUnion waits until the plant holds exactly the union of the lines'
// roll maps, then checks the same of a service loaded from the dataset
// on disk.
func (g *plantRig) waitUnion() []DefectKey {
	g.t.Helper()
	want := g.truth()
	var got []DefectKey
	poll.Until(g.t, 90*time.Second, "the plant holds every line's defects", func() bool {
		got = diskDefects(g.t, g.svc)
		return len(got) >= len(want)
	})
	if !slices.Equal(got, want) {
		g.t.Fatalf("plant has %d defects, the lines' roll maps %d; first difference: %s", len(got), len(want), firstDiff(got, want))
	}
	return want
}

func firstDiff(got, want []DefectKey) string {
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			return "got " + keyString(got[i]) + ", want " + keyString(want[i])
		}
	}
	if len(got) > len(want) {
		return "extra " + keyString(got[len(want)])
	}
	if len(want) > len(got) {
		return "missing " + keyString(want[len(got)])
	}
	return "none"
}

func keyString(k DefectKey) string {
	return k.Line + "/" + k.Roll + "/" + fmtI(k.ID) + " md " + fmtF(k.MDStart) + " cd " + fmtF(k.CDStart) + " " + k.Day
}

// Lines, one plant (short): lines write rolls while their publishers,
// the plant service and the NATS server are stopped and started again;
// at the end the plant's dataset (in memory and read back from its
// Parquet files) is the union of the lines' roll maps, by defect ID and
// position, every defect once.
func TestLinesOnePlant(t *testing.T) {
	if raceEnabled {
		long.Skip(t, "four lines and restarts of NATS under the race detector take minutes")
	}
	g := newRig(t, 4)
	for _, l := range g.lines {
		l.startRoll(t)
	}
	step := func(m float64) {
		for _, l := range g.lines {
			l.web(t, m)
		}
	}
	for round := range 6 {
		step(20)
		switch round {
		case 0:
			g.pubs[1].stop() // the line's engine dies; its roll map stays
			step(15)
			g.startPub(1)
		case 1:
			g.killService()
		case 2:
			g.node.restart() // the NATS server dies and comes back on its store
		case 3:
			for _, l := range g.lines {
				l.startRoll(t) // roll changes: the ended rolls close
			}
		case 4:
			g.pubs[2].stop()
			g.node.restart()
			g.killService()
			step(10)
			g.startPub(2)
		}
	}
	for _, l := range g.lines {
		l.startRoll(t)
		l.web(t, 5)
	}
	want := g.waitUnion()
	if len(want) < 200 {
		t.Fatalf("only %d defects in the lines' roll maps: the test did not exercise much", len(want))
	}
	// Every roll's end arrived, with its length and context.
	poll.Until(t, 60*time.Second, "the plant knows every ended roll", func() bool {
		ended := 0
		for _, r := range g.svc.Rolls("") {
			if r.Ended {
				ended++
			}
		}
		return ended == 2*len(g.lines) // two roll changes per line; the third roll is open
	})
	for _, r := range g.svc.Rolls("L0") {
		if r.Ended && (r.Info.LengthM <= 0 || r.Context.Lot == "") {
			t.Errorf("roll %s at the plant: length %v, context %+v", r.Roll, r.Info.LengthM, r.Context)
		}
	}
	// The dataset on disk says the same once written.
	g.run.stop()
	back, err := NewService(ServiceOptions{URLs: []string{g.node.url()}, Data: filepath.Join(g.dir, "plant")})
	if err != nil {
		t.Fatal(err)
	}
	if got := diskDefects(t, back); !slices.Equal(got, want) {
		t.Fatalf("dataset read back: %d defects, want %d; %s", len(got), len(want), firstDiff(got, want))
	}
	g.run = nil
	c := back.Counts()
	var sum int64
	for _, n := range c.PerLine {
		sum += n
	}
	if sum != int64(len(want)) || len(c.PerLine) != len(g.lines) {
		t.Errorf("counts per line %v, want %d defects over %d lines", c.PerLine, len(want), len(g.lines))
	}
	t.Logf("%d defects over %d lines; NATS restarted %d times", len(want), len(g.lines), g.node.kill)
}

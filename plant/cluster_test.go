package plant

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/webinspect/webinspect/internal/long"
	"github.com/webinspect/webinspect/internal/poll"
)

// Three embedded NATS servers clustered on loopback, streams replicated
// ×3, clients and routes authenticating with the plant's token: one node
// is killed while the lines publish; publishing goes on, and the stream
// and the plant hold every defect exactly once.
func TestClusterR3(t *testing.T) {
	if raceEnabled {
		long.Skip(t, "three NATS servers under the race detector take minutes")
	}
	dir := t.TempDir()
	const n, tok = 3, "cluster-token-0123456789"
	ports, routes := make([]int, n), make([]int, n)
	for i := range n {
		ports[i], routes[i] = freePort(t), freePort(t)
	}
	nodes := make([]*natsNode, n)
	var urls []string
	for i := range n {
		var rs []string
		for j := range n {
			if j != i {
				rs = append(rs, fmt.Sprintf("nats-route://127.0.0.1:%d", routes[j]))
			}
		}
		o := ServerOptions{Name: fmt.Sprintf("n%d", i), Port: ports[i], StoreDir: filepath.Join(dir, fmt.Sprintf("n%d", i)),
			ClusterName: "plant", ClusterPort: routes[i], Routes: rs, Token: tok}
		urls = append(urls, fmt.Sprintf("nats://127.0.0.1:%d", ports[i]))
		// Each start waits for its own client port only; the cluster
		// forms once all three run.
		nodes[i] = &natsNode{t: t, o: o}
		go nodes[i].start()
		t.Cleanup(nodes[i].stop)
	}
	nc, err := nats.Connect(urls[0]+","+urls[1]+","+urls[2], nats.MaxReconnects(-1), nats.RetryOnFailedConnect(true), nats.Token(tok))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	poll.Until(t, 90*time.Second, "the cluster takes R3 streams", func() bool {
		cctx, c := context.WithTimeout(ctx, 5*time.Second)
		defer c()
		return ensureStreams(cctx, js, 3) == nil
	})
	info, err := js.Stream(ctx, Stream)
	if err != nil {
		t.Fatal(err)
	}
	if si, err := info.Info(ctx); err != nil || si.Config.Replicas != 3 {
		t.Fatalf("stream %s: %v replicas (%v), want 3", Stream, si.Config.Replicas, err)
	}

	lines := []*line{newLine(t, dir, "A", 1), newLine(t, dir, "B", 2)}
	var pubs []*running
	for _, l := range lines {
		p, err := NewPublisher(PublisherOptions{URLs: urls, Token: tok, Plant: "mill", Line: l.name, Store: l.store, Replicas: 3,
			Interval: 20 * time.Millisecond, AckTimeout: 3 * time.Second, Logger: zerolog.Nop()})
		if err != nil {
			t.Fatal(err)
		}
		pubs = append(pubs, goRun(func(ctx context.Context) { p.Run(ctx); p.Close() }))
	}
	svc, err := NewService(ServiceOptions{URLs: urls, Token: tok, Data: filepath.Join(dir, "plant"), Replicas: 3,
		FlushInterval: 50 * time.Millisecond, AckWait: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	run := goRun(func(ctx context.Context) { svc.Run(ctx) })
	defer run.stop()
	defer func() {
		for _, p := range pubs {
			p.stop()
		}
	}()
	for _, l := range lines {
		l.startRoll(t)
	}
	for round := range 8 {
		for _, l := range lines {
			l.web(t, 15)
		}
		if round == 2 {
			// Kill the stream's leader: the worst node to lose.
			si, err := info.Info(ctx)
			victim := 0
			if err == nil && si.Cluster != nil {
				for i := range n {
					if nodes[i].o.Name == si.Cluster.Leader {
						victim = i
					}
				}
			}
			nodes[victim].stop()
			t.Logf("killed %s (stream leader)", nodes[victim].o.Name)
		}
		time.Sleep(20 * time.Millisecond) // let the web move on between rounds; nothing is asserted on time
	}
	for _, l := range lines {
		l.startRoll(t)
	}
	var want []DefectKey
	for _, l := range lines {
		want = append(want, l.truth(t)...)
	}
	sortKeys(want)
	var got []DefectKey
	poll.Until(t, 120*time.Second, "the plant holds every defect", func() bool {
		got = diskDefects(t, svc)
		return len(got) >= len(want)
	})
	if !slices.Equal(got, want) {
		t.Fatalf("plant: %d defects, lines: %d; %s", len(got), len(want), firstDiff(got, want))
	}
	// The stream itself holds each defect once (message IDs de-duplicate
	// the retries around the lost node).
	var inStream uint64
	poll.Until(t, 30*time.Second, "the stream's defect count is known", func() bool {
		si, err := info.Info(ctx, jetstream.WithSubjectFilter(SubjectRoot+".*.*."+KindDefects))
		if err != nil {
			return false
		}
		inStream = 0
		for _, c := range si.State.Subjects {
			inStream += c
		}
		return true
	})
	if inStream != uint64(len(want)) {
		t.Errorf("stream holds %d defect messages, the lines recorded %d", inStream, len(want))
	}
	t.Logf("%d defects through a 3-node R3 cluster with one node killed", len(want))
}

package plant

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/webinspect/webinspect/internal/poll"
	"github.com/webinspect/webinspect/rollmap"
)

// Messages the plant cannot take are parked in the dead-letter stream
// with their reason, never dropped, and do not hold up the good ones
// behind them.
func TestDeadLetters(t *testing.T) {
	g := newRig(t, 1)
	nc, err := nats.Connect(g.node.url())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// The service and the line create the streams too; whoever is first
	// wins. Creating them here as well names what is wrong when the server
	// will not (a wait for the others once timed out under -race in CI with
	// nothing to say why).
	var lastErr error
	if poll.Wait(30*time.Second, func() bool {
		sctx, scancel := context.WithTimeout(ctx, 5*time.Second)
		defer scancel()
		lastErr = ensureStreams(sctx, js, 1)
		return lastErr == nil
	}) != nil {
		t.Fatalf("the streams cannot be created within 30 s: %v", lastErr)
	}
	good := Message{V: Version, Plant: "mill", Line: "X9", Kind: KindDefects, Roll: "R1", Seq: 1,
		Defect: &rollmap.Defect{ID: 1, Class: "hole", Time: time.Now()}}
	future := good
	future.V = 2
	wrongLine := good
	wrongLine.Line = "X8"
	noDefect := good
	noDefect.Defect = nil
	bad := []struct {
		body   any
		reason string
	}{
		{future, "version 2"},
		{"{not json", "not a message"},
		{wrongLine, "body says"},
		{noDefect, "without defect"},
	}
	for i, b := range bad {
		var data []byte
		if s, ok := b.body.(string); ok {
			data = []byte(s)
		} else {
			data, _ = json.Marshal(b.body)
		}
		if _, err := js.Publish(ctx, Subject("mill", "X9", KindDefects), data, jetstream.WithMsgID("bad/"+fmtI(int64(i)))); err != nil {
			t.Fatal(err)
		}
	}
	data, _ := json.Marshal(good)
	if _, err := js.Publish(ctx, Subject("mill", "X9", KindDefects), data, jetstream.WithMsgID("good")); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 60*time.Second, "the good message behind the bad ones is taken", func() bool { return g.svc.Has("X9", "R1", 1) })
	dead, err := js.Stream(ctx, DeadStream)
	if err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 30*time.Second, "every bad message is parked", func() bool {
		info, err := dead.Info(ctx)
		return err == nil && info.State.Msgs == uint64(len(bad))
	})
	for i, b := range bad {
		m, err := dead.GetMsg(ctx, uint64(i+1))
		if err != nil {
			t.Fatal(err)
		}
		reason := m.Header.Get(DeadReasonHeader)
		if !strings.Contains(reason, b.reason) || m.Header.Get(DeadSubjectHeader) != Subject("mill", "X9", KindDefects) {
			t.Errorf("dead letter %d: reason %q (want it to say %q), subject %q", i, reason, b.reason, m.Header.Get(DeadSubjectHeader))
		}
	}
	if c := g.svc.Counts(); c.Dead != int64(len(bad)) || c.Total != 1 {
		t.Errorf("counts: %d dead letters, %d defects; want %d and 1", c.Dead, c.Total, len(bad))
	}
}

// A line whose clock is off lands by its own times: its defects go to the
// roll it numbered them on and to the day of their own time, whatever
// the plant's clock says when they arrive.
func TestClockSkew(t *testing.T) {
	g := newRig(t, 2)
	// Line 0's clock reads 23:58 of 1 December (minutes before its
	// midnight) whatever the time here; line 1's is 9 minutes ahead.
	evening := time.Date(2026, 12, 1, 23, 58, 0, 0, time.UTC)
	g.lines[0].skew = time.Until(evening)
	g.lines[1].skew = 9 * time.Minute
	g.lines[0].startRoll(t)
	g.lines[0].web(t, 30)
	g.lines[0].skew += 4 * time.Minute // its clock passes midnight: a new roll starts
	g.lines[0].startRoll(t)
	g.lines[0].web(t, 30)
	g.lines[1].startRoll(t)
	g.lines[1].web(t, 30)
	want := g.waitUnion() // the keys include each defect's day from its own time
	days := map[string]map[string]bool{}
	for _, k := range want {
		if days[k.Roll] == nil {
			days[k.Roll] = map[string]bool{}
		}
		days[k.Roll][k.Day] = true
	}
	if !days["L0-R001"]["2026-12-01"] || len(days["L0-R001"]) != 1 || !days["L0-R002"]["2026-12-02"] || len(days["L0-R002"]) != 1 {
		t.Errorf("line 0's rolls by day: %v; want R001 on 2026-12-01 and R002 on 2026-12-02", days)
	}
	g.run.stop()
	g.run = nil
	for _, d := range []string{"line=L0/day=2026-12-01", "line=L0/day=2026-12-02"} {
		if m, _ := filepath.Glob(filepath.Join(g.dir, "plant", datasetDir, d, "part-*.parquet")); len(m) == 0 {
			t.Errorf("no part file in %s", d)
		}
	}
	trends := g.svc.Trends(false, "")
	var n1 int64
	for _, c := range trends {
		if c.Day == "2026-12-01" {
			n1 += c.N
		}
	}
	if want1 := int64(countDay(want, "2026-12-01")); n1 != want1 || n1 == 0 {
		t.Errorf("trend on 2026-12-01: %d defects, want %d", n1, want1)
	}
}

func countDay(ks []DefectKey, day string) int {
	n := 0
	for _, k := range ks {
		if k.Day == day {
			n++
		}
	}
	return n
}

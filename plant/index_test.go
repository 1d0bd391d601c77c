package plant

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/webinspect/webinspect/internal/poll"
	"github.com/webinspect/webinspect/rollmap"
)

// The ID set keeps exactly the IDs added, in ranges.
func TestIDRanges(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var r idRanges
	want := make(map[int64]bool)
	for range 3000 {
		id := 1 + rng.Int64N(500)
		if got := r.add(id); got == want[id] {
			t.Fatalf("add(%d) = %v with it already there: %v", id, got, want[id])
		}
		want[id] = true
	}
	if r.count() != int64(len(want)) {
		t.Fatalf("count %d, want %d", r.count(), len(want))
	}
	for id := int64(0); id <= 501; id++ {
		if r.has(id) != want[id] {
			t.Fatalf("has(%d) = %v, want %v", id, r.has(id), want[id])
		}
	}
	for i := 1; i < len(r); i++ {
		if r[i][0] <= r[i-1][1]+1 {
			t.Fatalf("ranges %v and %v overlap or touch", r[i-1], r[i])
		}
	}
}

// The plant starts from its index, not its rows: with the Parquet files
// out of the way it still knows every defect; a defect delivered again
// after a restart (with a new message ID, past JetStream's own
// de-duplication) is not taken twice; and a write that a crash cut short
// between a part file and the index is found and indexed at the next
// start, so that its defects are not taken twice either.
func TestStartFromIndex(t *testing.T) {
	g := newRig(t, 1)
	l := g.lines[0]
	l.startRoll(t)
	l.web(t, 60)
	rollID := l.roll.ID()
	l.startRoll(t)
	want := g.waitUnion()
	g.run.stop()
	g.run = nil
	data := filepath.Join(g.dir, "plant")

	// No row is read at start: the counts come from the index.
	aside := filepath.Join(g.dir, "aside")
	if err := os.Rename(filepath.Join(data, datasetDir), aside); err != nil {
		t.Fatal(err)
	}
	svc, err := NewService(ServiceOptions{URLs: g.urls, Data: data})
	if err != nil {
		t.Fatal(err)
	}
	if c := svc.Counts(); c.Total != int64(len(want)) {
		t.Fatalf("started without the Parquet files: %d defects, want %d", c.Total, len(want))
	}
	if err := os.Rename(aside, filepath.Join(data, datasetDir)); err != nil {
		t.Fatal(err)
	}

	// A crash between a part file and its index: the part (a defect
	// with ID 9001 of the first roll) is on disk, pending.json names its
	// partition, the index does not have it.
	ds, err := l.store.Defects(rollID, rollmap.Query{})
	if err != nil {
		t.Fatal(err)
	}
	d0 := ds[0]
	late := d0
	late.ID, late.MDStartM = 9001, d0.MDStartM+0.5
	k := partKey{l.name, d0.Time.UTC().Format(time.DateOnly)}
	row := &defectRow{Line: l.name, Roll: rollID, ID: late.ID, MDStart: late.MDStartM, CDStart: late.CDStartMM, Class: late.Class,
		Severity: late.Severity, Time: late.Time.UTC(), Received: time.Now().UTC()}
	if err := writePending(data, []partKey{k}); err != nil {
		t.Fatal(err)
	}
	if err := writePart(data, 1, []*defectRow{row}); err != nil {
		t.Fatal(err)
	}

	g.startService()
	if !g.svc.Has(l.name, rollID, 9001) {
		t.Fatal("the part file written before the crash is not in the index after the start")
	}
	if _, err := os.Stat(filepath.Join(data, indexDir, pendingFile)); !os.IsNotExist(err) {
		t.Fatalf("pending.json still there after the start: %v", err)
	}
	// Deliver again: the first defect, the one of the cut-short write,
	// then a new one (ID 9002) to know when they have all been taken.
	nc, err := nats.Connect(g.urls[0])
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	fresh := d0
	fresh.ID, fresh.MDStartM = 9002, d0.MDStartM+1
	for i, d := range []rollmap.Defect{d0, late, fresh} {
		m := Message{V: Version, Plant: "mill", Line: l.name, Kind: KindDefects, Roll: rollID, Seq: d.ID, Sent: time.Now(), Defect: &d}
		b, _ := json.Marshal(m)
		if _, err := js.Publish(ctx, Subject("mill", l.name, KindDefects), b, jetstream.WithMsgID("again/"+fmtI(int64(i)))); err != nil {
			t.Fatal(err)
		}
	}
	poll.Until(t, 60*time.Second, "the new defect is taken", func() bool { return g.svc.Has(l.name, rollID, 9002) })
	if c := g.svc.Counts(); c.Total != int64(len(want))+2 {
		t.Errorf("after the deliveries again: %d defects, want %d (+ 9001 and 9002)", c.Total, len(want)+2)
	}
	g.run.stop()
	g.run = nil
	got := diskDefects(t, g.svc)
	if len(got) != len(want)+2 || len(slices.CompactFunc(slices.Clone(got), func(a, b DefectKey) bool {
		return a.Line == b.Line && a.Roll == b.Roll && a.ID == b.ID
	})) != len(got) {
		t.Fatalf("dataset on disk: %d rows, want %d, each once", len(got), len(want)+2)
	}
}

// The queries answer from the index and the roll states: trends and
// Pareto by the roll's context, and the severity hold rule without the
// defects whose last review is a false alarm.
func TestQueriesFromIndex(t *testing.T) {
	svc, err := NewService(ServiceOptions{URLs: []string{"nats://127.0.0.1:1"}, Data: t.TempDir(),
		Hold: HoldRules{Severities: []string{"critical"}}})
	if err != nil {
		t.Fatal(err)
	}
	p1, p2 := newPartition(), newPartition()
	p1.add("R1", 1, "hole", "minor")
	p1.add("R1", 2, "hole", "critical")
	p2.add("R1", 3, "knot", "critical")
	p2.add("R2", 1, "knot", "minor")
	if p2.add("R2", 1, "knot", "minor") {
		t.Fatal("a defect added twice to a partition")
	}
	svc.parts[partKey{"L1", "2026-12-01"}] = p1
	svc.parts[partKey{"L1", "2026-12-02"}] = p2
	r1 := &rollState{Line: "L1", Roll: "R1", Context: rollmap.RollContext{Product: "P1", Shift: "A"}, Reviews: map[int64]rollmap.Review{
		0: {DefectID: 2, Action: rollmap.ActionFalseAlarm}}}
	svc.rolls[rollKey{"L1", "R1"}] = r1
	svc.rolls[rollKey{"L1", "R2"}] = &rollState{Line: "L1", Roll: "R2", Context: rollmap.RollContext{Product: "P2", Shift: "B"}}
	holds := func() []string {
		var out []string
		for _, h := range svc.Holds() {
			out = append(out, h.Roll+": "+h.Reasons[0])
		}
		return out
	}
	if got, want := holds(), []string{`R1: 1 defects of severity ["critical"]`}; !slices.Equal(got, want) {
		t.Errorf("holds %q, want %q (defect 2 is a false alarm, 3 is not)", got, want)
	}
	r1.Reviews[1] = rollmap.Review{DefectID: 3, Action: rollmap.ActionFalseAlarm}
	if got := holds(); len(got) != 0 {
		t.Errorf("holds %q with both critical defects false alarms, want none", got)
	}
	r1.Reviews[2] = rollmap.Review{DefectID: 3, Action: rollmap.ActionConfirm} // the last review counts
	if got := holds(); len(got) != 1 {
		t.Errorf("holds %q after defect 3 was confirmed, want R1", got)
	}
	wantTrends := []Count{{Day: "2026-12-01", Shift: "A", Class: "hole", N: 2}, {Day: "2026-12-02", Shift: "A", Class: "knot", N: 1},
		{Day: "2026-12-02", Shift: "B", Class: "knot", N: 1}}
	if got := svc.Trends(true, ""); !slices.Equal(got, wantTrends) {
		t.Errorf("trends by shift %+v, want %+v", got, wantTrends)
	}
	wantPareto := []Count{{Group: "P1", Class: "hole", N: 2}, {Group: "P1", Class: "knot", N: 1}, {Group: "P2", Class: "knot", N: 1}}
	if got := svc.Pareto("product"); !slices.Equal(got, wantPareto) {
		t.Errorf("pareto by product %+v, want %+v", got, wantPareto)
	}
	if c := svc.Counts(); c.Total != 4 || c.PerLine["L1"] != 4 || !svc.Has("L1", "R1", 3) || svc.Has("L1", "R2", 2) {
		t.Errorf("counts %+v; Has(R1/3) %v, Has(R2/2) %v", c, svc.Has("L1", "R1", 3), svc.Has("L1", "R2", 2))
	}
}

package rollmap

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// makeMarkEvents returns the mark events of the defects of ds decided
// "mark", as a marking unit would record them, interleaved across defects
// but in order per defect, and the final status each defect must get.
// Some defects get no event at all.
func makeMarkEvents(ds []Defect, seed uint64) ([]MarkEvent, map[int64]string) {
	rng := rand.New(rand.NewPCG(seed, 13))
	t0 := time.Date(2025, 3, 14, 6, 20, 0, 0, tokyo)
	var per [][]MarkEvent
	want := map[int64]string{}
	for _, d := range ds {
		if d.Decision != DecisionMark {
			continue
		}
		head := []string{"h1", "h2", "h3"}[rng.IntN(3)]
		target := d.EncoderCount + 8000
		ev := func(status string) MarkEvent {
			return MarkEvent{DefectID: d.ID, MarkID: d.ID*10 + 1, Head: head, Status: status, TargetCount: target,
				MDM: d.MDStartM, CDMM: d.CDStartMM, Time: t0.Add(time.Duration(d.ID) * time.Millisecond)}
		}
		var evs []MarkEvent
		switch rng.IntN(7) {
		case 0: // decided after the defect passed the marker
			e := ev(MarkLate)
			e.PassedByMM = 12.5
			evs, want[d.ID] = []MarkEvent{e}, MarkLate
		case 1: // still ahead of the marker
			evs, want[d.ID] = []MarkEvent{ev(MarkScheduled)}, MarkScheduled
		case 2: // fired, not acknowledged (yet)
			f := ev(MarkFired)
			f.FireCount = target + int64(rng.IntN(3))
			evs, want[d.ID] = []MarkEvent{ev(MarkScheduled), f}, MarkFired
		case 3: // the connection was lost while it passed
			m := ev(MarkMissed)
			m.Error, m.PassedByMM = "connection refused", 40
			evs, want[d.ID] = []MarkEvent{ev(MarkScheduled), m}, MarkMissed
		case 4: // fired, but the acknowledgement never came: missed
			f := ev(MarkFired)
			f.FireCount = target
			m := ev(MarkMissed)
			m.Error = "no acknowledgement"
			evs, want[d.ID] = []MarkEvent{ev(MarkScheduled), f, m}, MarkMissed
		case 5: // no event yet (the marking unit has not seen it)
		default:
			f := ev(MarkFired)
			f.FireCount = target - 1
			evs, want[d.ID] = []MarkEvent{ev(MarkScheduled), f, ev(MarkAcknowledged)}, MarkAcknowledged
		}
		if len(evs) > 0 {
			per = append(per, evs)
		}
	}
	var out []MarkEvent
	for len(per) > 0 {
		i := rng.IntN(len(per))
		out = append(out, per[i][0])
		if per[i] = per[i][1:]; len(per[i]) == 0 {
			per = slices.Delete(per, i, i+1)
		}
	}
	return out, want
}

func storedM(id string, evs []MarkEvent) []MarkEvent {
	out := make([]MarkEvent, len(evs))
	for i, e := range evs {
		e.RollID = id
		e.Time = e.Time.UTC().Truncate(time.Microsecond)
		out[i] = e
	}
	return out
}

// checkMarks checks that every defect of ds has the mark status of want
// ("" for none) and, when fired, the fire count of its fired event.
func checkMarks(t *testing.T, what string, ds []Defect, want map[int64]string, evs []MarkEvent) {
	t.Helper()
	fired := map[int64]int64{}
	for _, e := range evs {
		if e.Status == MarkFired {
			fired[e.DefectID] = e.FireCount
		}
	}
	for _, d := range ds {
		if d.Mark.Status != want[d.ID] {
			t.Fatalf("%s: defect %d: mark status %q, want %q (%+v)", what, d.ID, d.Mark.Status, want[d.ID], d.Mark)
		}
		if fc, ok := fired[d.ID]; d.Mark.Fired != ok || d.Mark.FireCount != fc {
			t.Fatalf("%s: defect %d: fired %v count %d, want %v %d", what, d.ID, d.Mark.Fired, d.Mark.FireCount, ok, fc)
		}
	}
}

func TestMergeMarkEvents(t *testing.T) {
	t1 := time.Date(2025, 3, 14, 6, 0, 0, 0, time.UTC)
	ev := func(status, head string, target, fire int64) MarkEvent {
		return MarkEvent{DefectID: 7, Status: status, Head: head, TargetCount: target, FireCount: fire, Time: t1}
	}
	for _, c := range []struct {
		name string
		evs  []MarkEvent
		want MarkState
	}{
		{"scheduled", []MarkEvent{ev(MarkScheduled, "h1", 100, 0)},
			MarkState{Status: MarkScheduled, Head: "h1", Scheduled: true, TargetCount: 100}},
		{"rescheduled", []MarkEvent{ev(MarkScheduled, "h1", 100, 0), ev(MarkScheduled, "h1", 120, 0)},
			MarkState{Status: MarkScheduled, Head: "h1", Scheduled: true, TargetCount: 120}},
		{"fired", []MarkEvent{ev(MarkScheduled, "h1", 100, 0), ev(MarkFired, "h1", 0, 101)},
			MarkState{Status: MarkFired, Head: "h1", Scheduled: true, Fired: true, FireCount: 101, FireTime: t1, TargetCount: 100}},
		{"acknowledged", []MarkEvent{ev(MarkScheduled, "h1", 100, 0), ev(MarkFired, "h1", 100, 99), ev(MarkAcknowledged, "h2", 0, 0)},
			MarkState{Status: MarkAcknowledged, Head: "h2", Scheduled: true, Fired: true, Acknowledged: true, FireCount: 99,
				FireTime: t1, TargetCount: 100}},
		{"ack before fired event", []MarkEvent{ev(MarkAcknowledged, "h1", 0, 0), ev(MarkFired, "h1", 0, 5)},
			MarkState{Status: MarkAcknowledged, Head: "h1", Fired: true, Acknowledged: true, FireCount: 5, FireTime: t1}},
		{"fired then missed", []MarkEvent{ev(MarkScheduled, "h1", 100, 0), ev(MarkFired, "h1", 0, 100), ev(MarkMissed, "h1", 0, 0)},
			MarkState{Status: MarkMissed, Head: "h1", Scheduled: true, Fired: true, Missed: true, FireCount: 100, FireTime: t1, TargetCount: 100}},
		{"missed wins over a later ack", []MarkEvent{ev(MarkMissed, "h1", 0, 0), ev(MarkAcknowledged, "h2", 0, 0)},
			MarkState{Status: MarkMissed, Head: "h1", Missed: true, Acknowledged: true}},
		{"late", []MarkEvent{ev(MarkLate, "h3", 50, 0)},
			MarkState{Status: MarkLate, Head: "h3", Late: true, TargetCount: 50}},
		{"late stays late when fired", []MarkEvent{ev(MarkScheduled, "h1", 50, 0), ev(MarkLate, "h1", 0, 0), ev(MarkFired, "h1", 0, 70)},
			MarkState{Status: MarkLate, Head: "h1", Scheduled: true, Late: true, Fired: true, FireCount: 70, FireTime: t1, TargetCount: 50}},
		{"missed over late", []MarkEvent{ev(MarkLate, "h1", 0, 0), ev(MarkMissed, "h2", 0, 0)},
			MarkState{Status: MarkMissed, Head: "h2", Late: true, Missed: true}},
		{"unknown status ignored", []MarkEvent{ev(MarkScheduled, "h1", 10, 0), ev("exploded", "h9", 99, 99)},
			MarkState{Status: MarkScheduled, Head: "h1", Scheduled: true, TargetCount: 10}},
	} {
		got := MergeMarkEvents(c.evs)
		if len(got) != 1 || got[7] != c.want {
			t.Errorf("%s:\n got %+v\nwant %+v", c.name, got[7], c.want)
		}
	}
	if got := MergeMarkEvents([]MarkEvent{{DefectID: 1, Status: "bogus"}}); len(got) != 0 {
		t.Errorf("only unknown events: %+v", got)
	}
}

func TestAddMarkEventsInvalid(t *testing.T) {
	s := openStore(t)
	r, err := s.StartRoll(RollMeta{ID: "MV"})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range []MarkEvent{
		{DefectID: 1, Status: "marked"},
		{DefectID: 1},
		{DefectID: 0, Status: MarkFired},
		{DefectID: -3, Status: MarkFired},
		{DefectID: 1, Status: MarkFired, MDM: math.NaN()},
		{DefectID: 1, Status: MarkMissed, PassedByMM: math.Inf(1)},
	} {
		if err := r.AddMarkEvents(MarkEvent{DefectID: 2, Status: MarkScheduled}, e); !errors.Is(err, ErrInvalid) {
			t.Errorf("%+v: %v, want ErrInvalid", e, err)
		}
	}
	if evs, _ := s.MarkEvents("MV"); len(evs) != 0 {
		t.Errorf("a rejected call added %d events", len(evs))
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.AddMarkEvents(MarkEvent{DefectID: 1, Status: MarkFired}); !errors.Is(err, ErrClosed) {
		t.Errorf("after Close: %v", err)
	}
	if _, err := s.Defects("MV", Query{MarkStatus: "marked"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("query MarkStatus marked: %v", err)
	}
}

// TestMarkEventsRoundTrip records mark events in several flushes, some
// before their defect, and reads them back from memory, after Flush, after
// Close and from a new Store: events, merged marks, summary.
func TestMarkEventsRoundTrip(t *testing.T) {
	root := t.TempDir()
	o := DefaultOptions()
	o.MemoryDefects = chunkRows // part of the roll is read back from disk
	s, err := OpenStoreOptions(root, o)
	if err != nil {
		t.Fatal(err)
	}
	ds := makeDefects(3000, 21)
	evs, want := makeMarkEvents(ds, 22)
	if len(evs) < 1000 {
		t.Fatalf("only %d events", len(evs))
	}
	r, err := s.StartRoll(RollMeta{ID: "MK", WebWidthMM: 2000})
	if err != nil {
		t.Fatal(err)
	}
	// An event may be recorded before its defect reaches the roll.
	if err := r.AddMarkEvents(evs[:10]...); err != nil {
		t.Fatal(err)
	}
	for k := range 4 {
		if err := r.AddDefects(ds[len(ds)*k/4 : len(ds)*(k+1)/4]...); err != nil {
			t.Fatal(err)
		}
		lo, hi := max(10, len(evs)*k/4), len(evs)*(k+1)/4
		if err := r.AddMarkEvents(evs[lo:hi]...); err != nil {
			t.Fatal(err)
		}
		if k < 3 {
			if err := r.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	wantEvs := storedM("MK", evs)
	check := func(what string, s *Store) {
		t.Helper()
		got, err := s.MarkEvents("MK")
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		equalRows(t, what+" events", got, wantEvs)
		all, err := s.Defects("MK", Query{})
		if err != nil || len(all) != len(ds) {
			t.Fatalf("%s: %d defects, %v", what, len(all), err)
		}
		checkMarks(t, what, all, want, evs)
		sum, err := s.Summary("MK")
		if err != nil {
			t.Fatalf("%s: summary: %v", what, err)
		}
		counts := map[string]int64{}
		for _, st := range want {
			counts[st]++
		}
		if !reflect.DeepEqual(sum.Marks, counts) {
			t.Errorf("%s: summary marks %v, want %v", what, sum.Marks, counts)
		}
	}
	check("open, partly unflushed", s)
	if err := r.Flush(); err != nil {
		t.Fatal(err)
	}
	check("open, flushed", s)
	// Flushed events are on disk before Close.
	onDisk, err := ReadMarkEvents(filepath.Join(root, "MK"))
	if err != nil {
		t.Fatal(err)
	}
	equalRows(t, "flushed file", onDisk, wantEvs)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	check("closed", s)
	s2, err := OpenStore(root)
	if err != nil {
		t.Fatal(err)
	}
	check("new store", s2)
	_, got, _, err := ReadRoll(filepath.Join(root, "MK"))
	if err != nil {
		t.Fatal(err)
	}
	checkMarks(t, "ReadRoll", got, want, evs)
	// The defect rows themselves are unchanged, and summary.json counts
	// the marks.
	for i := range got {
		got[i].Mark = MarkState{}
	}
	equalRows(t, "defects", got, stored("MK", ds))
	pq, err := os.ReadFile(filepath.Join(root, "MK", MarksParquetFile))
	if err != nil {
		t.Fatal(err)
	}
	equalRows(t, "marks.parquet", readParquet(t, pq, markEventColumns, MarkEventSchema), wantEvs)
	sum, err := ReadSummary(filepath.Join(root, "MK"))
	if err != nil || len(sum.Marks) == 0 {
		t.Fatalf("summary.json marks %v, %v", sum.Marks, err)
	}
	b, _ := os.ReadFile(filepath.Join(root, "MK", MetaFile))
	var m metaFile
	if err := json.Unmarshal(b, &m); err != nil || m.MarkEvents != int64(len(evs)) {
		t.Errorf("roll.json mark_events %d, want %d (%v)", m.MarkEvents, len(evs), err)
	}
	if !bytes.Contains(b, []byte(`"mark_events"`)) {
		t.Errorf("roll.json has no mark_events:\n%s", b)
	}
}

// TestMarkStatusQuery checks the MarkStatus filter, alone and with the
// others, against brute force on an open roll (memory and file) and a
// closed one.
func TestMarkStatusQuery(t *testing.T) {
	o := DefaultOptions()
	o.MemoryDefects = chunkRows
	s, err := OpenStoreOptions(t.TempDir(), o)
	if err != nil {
		t.Fatal(err)
	}
	ds := makeDefects(2500, 31)
	evs, want := makeMarkEvents(ds, 32)
	r := writeRoll(t, s, "MQ", ds, nil, 3)
	if err := r.AddMarkEvents(evs...); err != nil {
		t.Fatal(err)
	}
	all := stored("MQ", ds)
	merged := MergeMarkEvents(storedM("MQ", evs))
	for i := range all {
		all[i].Mark = merged[all[i].ID]
	}
	queries := []Query{
		{MarkStatus: MarkScheduled}, {MarkStatus: MarkFired}, {MarkStatus: MarkAcknowledged},
		{MarkStatus: MarkLate}, {MarkStatus: MarkMissed}, {MarkStatus: MarkNone},
		{MarkStatus: MarkMissed, MDFromM: 100, MDToM: 400, Limit: 7},
		{MarkStatus: MarkNone, Decision: DecisionMark},
		{MarkStatus: MarkAcknowledged, AfterID: 1200, Limit: 20},
	}
	run := func(what string) {
		for _, q := range queries {
			got, err := s.Defects("MQ", q)
			if err != nil {
				t.Fatalf("%s %+v: %v", what, q, err)
			}
			var exp []Defect
			for _, d := range all {
				st := want[d.ID]
				if st == q.MarkStatus || q.MarkStatus == MarkNone && st == "" {
					exp = append(exp, d)
				}
			}
			q2 := q
			q2.MarkStatus = ""
			exp = bruteForce(exp, q2)
			if len(exp) == 0 {
				t.Fatalf("%s %+v: no defect to find", what, q)
			}
			equalRows(t, what, got, exp)
		}
	}
	run("open")
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	run("closed")
}

// TestMarksTorn tears the tail of marks.arrows of a crashed roll and
// damages it in the middle: readers return the events before the damage,
// ResumeRoll cuts or rewrites the file and appending continues.
func TestMarksTorn(t *testing.T) {
	src := t.TempDir()
	o := DefaultOptions()
	s, err := OpenStoreOptions(src, o)
	if err != nil {
		t.Fatal(err)
	}
	ds := makeDefects(400, 41)
	evs, _ := makeMarkEvents(ds, 42)
	r := writeRoll(t, s, "C", ds, nil, 1)
	for k := range 3 {
		if err := r.AddMarkEvents(evs[len(evs)*k/3 : len(evs)*(k+1)/3]...); err != nil {
			t.Fatal(err)
		}
		if err := r.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	r.AddMarkEvents(MarkEvent{DefectID: 1, Status: MarkFired}) // lost with the process
	r.abandon()
	path := filepath.Join(src, "C", MarksFile)
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sc := scanStream(bytesReaderAt(orig), int64(len(orig)))
	if sc.err != nil || sc.batches != 3 {
		t.Fatalf("marks file: %d batches, %v", sc.batches, sc.err)
	}
	rng := rand.New(rand.NewPCG(4, 4))
	flipped := slices.Clone(orig)
	flipped[sc.schemaEnd+3] ^= 0x5a // the first batch's metadata length
	for i, b := range [][]byte{
		orig[:len(orig)-1], orig[:len(orig)-37], orig[:sc.schemaEnd+5], flipped,
		append(slices.Clone(orig), eos[:]...),
	} {
		root := t.TempDir()
		if err := os.CopyFS(root, os.DirFS(src)); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(root, "C", MarksFile)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		if i == 0 && tearTail(t, p, rng) == false {
			t.Fatal("tearTail did nothing")
		}
		readable, rerr := readStream(nil, p, markEventColumns)
		// Version 2 keeps every intact batch: the rows read are the
		// events in order, a damaged batch's left out.
		if all := storedM("C", evs); !isSubsequence(readable, all) {
			t.Errorf("case %d: %d rows read are not the events in order with some batches left out", i, len(readable))
		}
		_, _, _, err := ReadRoll(filepath.Join(root, "C"))
		if (rerr == nil) != (err == nil) || err != nil && !strings.Contains(err.Error(), MarksFile) {
			t.Errorf("case %d: ReadRoll error %v, read error %v", i, err, rerr)
		}
		s, err := OpenStore(root)
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.Defects("C", Query{MarkStatus: MarkNone})
		if (rerr == nil) != (err == nil) {
			t.Errorf("case %d: Defects error %v, read error %v", i, err, rerr)
		}
		wantNone := 0
		marked := MergeMarkEvents(readable)
		for _, d := range ds {
			if _, ok := marked[d.ID]; !ok {
				wantNone++
			}
		}
		if len(got) != wantNone {
			t.Errorf("case %d: %d defects without marks, want %d", i, len(got), wantNone)
		}
		rec, _ := s.Recover()
		if len(rec) != 1 || rec[0].MarkEvents != int64(len(readable)) || (rec[0].Damage == nil) != (rerr == nil) {
			t.Fatalf("case %d: Recover %+v, read error %v", i, rec, rerr)
		}
		r, rr, err := s.ResumeRoll("C", 600)
		if err != nil {
			t.Fatalf("case %d: ResumeRoll: %v", i, err)
		}
		if rr.MarkEvents != int64(len(readable)) || (rerr != nil) != (rr.Damage != nil) ||
			rr.Damage != nil && !strings.Contains(rr.Damage.Error(), MarksFile) {
			t.Errorf("case %d: resumed with %d events, damage %v; %d readable, read error %v",
				i, rr.MarkEvents, rr.Damage, len(readable), rerr)
		}
		extra := MarkEvent{DefectID: 400, Status: MarkAcknowledged, Head: "h9"}
		if err := r.AddMarkEvents(extra); err != nil {
			t.Fatal(err)
		}
		if got, err := s.Defects("C", Query{AfterID: 399}); err != nil || len(got) != 1 || got[0].Mark.Status != MarkAcknowledged {
			t.Errorf("case %d: defect 400 after resume: %+v, %v", i, got, err)
		}
		if err := r.Close(); err != nil {
			t.Fatalf("case %d: Close: %v", i, err)
		}
		after, err := ReadMarkEvents(filepath.Join(root, "C"))
		if err != nil {
			t.Fatalf("case %d: after resume: %v", i, err)
		}
		extra.RollID = "C"
		equalRows(t, "after resume", after, append(slices.Clone(readable), extra))
	}
}

// TestOldRollWithoutMarks reads rolls written before marks.arrows existed:
// the v1 fixture (closed) and a crashed roll without the file, which
// ResumeRoll gives one without reporting damage.
func TestOldRollWithoutMarks(t *testing.T) {
	fixture := filepath.Join("testdata", "roll-v1")
	if _, err := os.Stat(filepath.Join(fixture, MarksFile)); err == nil {
		t.Fatalf("the v1 fixture has a %s: it must stay as the old format wrote it", MarksFile)
	}
	evs, err := ReadMarkEvents(fixture)
	if err != nil || len(evs) != 0 {
		t.Fatalf("fixture events %v, %v", evs, err)
	}
	root := t.TempDir()
	if err := os.CopyFS(filepath.Join(root, goldenMeta.ID), os.DirFS(fixture)); err != nil {
		t.Fatal(err)
	}
	s, err := OpenStore(root)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Defects(goldenMeta.ID, Query{MarkStatus: MarkNone})
	if err != nil {
		t.Fatal(err)
	}
	equalRows(t, "fixture", got, stored(goldenMeta.ID, goldenDefects()))
	if got, err := s.Defects(goldenMeta.ID, Query{MarkStatus: MarkFired}); err != nil || len(got) != 0 {
		t.Errorf("fired in the fixture: %v, %v", got, err)
	}
	if evs, err := s.MarkEvents(goldenMeta.ID); err != nil || len(evs) != 0 {
		t.Errorf("MarkEvents of the fixture: %v, %v", evs, err)
	}
	if sum, err := s.Summary(goldenMeta.ID); err != nil || sum.Marks != nil {
		t.Errorf("summary marks %v, %v", sum.Marks, err)
	}

	// A crashed roll of the old format: no marks.arrows.
	src := t.TempDir()
	crashedRoll(t, src, 300)
	if err := os.Remove(filepath.Join(src, "C", MarksFile)); err != nil {
		t.Fatal(err)
	}
	s, err = OpenStore(src)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := s.Recover()
	if err != nil || len(rec) != 1 || rec[0].Damage != nil {
		t.Fatalf("Recover: %+v, %v", rec, err)
	}
	r, rr, err := s.ResumeRoll("C", 600)
	if err != nil || rr.Damage != nil {
		t.Fatalf("ResumeRoll: %v, damage %v", err, rr.Damage)
	}
	if err := r.AddMarkEvents(MarkEvent{DefectID: 5, Status: MarkLate}); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	_, ds, _, err := ReadRoll(filepath.Join(src, "C"))
	if err != nil || len(ds) != 300 || ds[4].Mark.Status != MarkLate || ds[3].Mark.Status != "" {
		t.Fatalf("after resume: %d defects, %v", len(ds), err)
	}
}

// TestMarksConcurrent records mark events while readers query by mark
// status and read the events. Run with -race.
func TestMarksConcurrent(t *testing.T) {
	o := DefaultOptions()
	o.FlushEvery, o.MemoryDefects = 100, chunkRows
	s, err := OpenStoreOptions(t.TempDir(), o)
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.StartRoll(RollMeta{ID: "live"})
	if err != nil {
		t.Fatal(err)
	}
	ds := makeDefects(3000, 60)
	done := make(chan struct{})
	errc := make(chan error, 4)
	var wg sync.WaitGroup
	for reader := range 2 {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				status := []string{MarkFired, MarkScheduled}[reader]
				got, err := s.Defects("live", Query{MarkStatus: status})
				if err != nil {
					errc <- err
					return
				}
				for _, d := range got {
					if d.Mark.Status != status && d.Mark.Status != MarkFired || !d.Mark.Scheduled ||
						d.Mark.Fired && d.Mark.FireCount != d.ID*10 {
						errc <- fmt.Errorf("reader %d: defect %d has mark %+v", reader, d.ID, d.Mark)
						return
					}
				}
				if _, err := s.MarkEvents("live"); err != nil {
					errc <- err
					return
				}
			}
		})
	}
	for i := 0; i < len(ds); i += 50 {
		batch := ds[i : i+50]
		if err := r.AddDefects(batch...); err != nil {
			t.Fatal(err)
		}
		for _, d := range batch {
			if err := r.AddMarkEvents(MarkEvent{DefectID: d.ID, Status: MarkScheduled}); err != nil {
				t.Fatal(err)
			}
			if d.ID > 10 {
				// fire the mark of a defect decided a little earlier
				id := d.ID - 10
				if err := r.AddMarkEvents(MarkEvent{DefectID: id, Status: MarkFired, FireCount: id * 10}); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	close(done)
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := s.Defects("live", Query{MarkStatus: MarkScheduled})
	if err != nil || len(got) != 10 || got[0].ID != 2991 {
		t.Errorf("after close: %d scheduled, %v", len(got), err)
	}
}

// isSubsequence reports whether sub is all (compared with DeepEqual) with
// some rows left out, in order.
func isSubsequence[T any](sub, all []T) bool {
	j := 0
	for i := range all {
		if j < len(sub) && reflect.DeepEqual(sub[j], all[i]) {
			j++
		}
	}
	return j == len(sub)
}

package plant

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/webinspect/webinspect/internal/long"
	"github.com/webinspect/webinspect/internal/poll"
	"github.com/webinspect/webinspect/rollmap"
)

const pastDay = "2026-11-30"

// testRow is row id of line and day, its values all drawn from id.
func testRow(line, day string, id int64) *defectRow {
	t0, _ := time.Parse(time.DateOnly, day)
	return &defectRow{Line: line, Roll: fmt.Sprintf("%s-R%d", line, id%3), ID: id, MDStart: float64(id) * 0.7, MDEnd: float64(id)*0.7 + 0.01,
		CDStart: float64(id%7) * 3.5, CDEnd: float64(id%7)*3.5 + 5, Area: 3, Peak: 40.25, Class: classes[int(id)%len(classes)],
		Severity: "minor", Decision: "pass", Detector: "threshold", Camera: int32(id % 4), Lane: int32(id % 3),
		Time: t0.Add(time.Duration(id) * time.Second), Received: t0.Add(time.Duration(id)*time.Second + 123*time.Microsecond),
		Ctx: rollmap.RollContext{Product: "P1", Lot: "L" + fmt.Sprint(id%5), Shift: "A"}}
}

// writeParts writes n part files of rows rows each for line and day, as
// the service's flushes do, and returns the rows in the order written.
func writeParts(t testing.TB, root, line, day string, n, rows int) []defectRow {
	t.Helper()
	var all []defectRow
	for f := range n {
		var batch []*defectRow
		for i := range rows {
			r := testRow(line, day, int64(f*rows+i+1))
			batch = append(batch, r)
			all = append(all, *r)
		}
		if err := writePart(root, int64(f), batch); err != nil {
			t.Fatal(err)
		}
	}
	return all
}

// partitionRows reads a partition's files in the order they were written.
func partitionRows(t testing.TB, root, line, day string) ([]defectRow, []string) {
	t.Helper()
	dir := partDir(root, partKey{line, day})
	files, err := listPartition(dir)
	if err != nil {
		t.Fatal(err)
	}
	var rows []defectRow
	var names []string
	for _, f := range files {
		names = append(names, f.name)
		if err := readPart(filepath.Join(dir, f.name), line, func(r *defectRow) { rows = append(rows, *r) }); err != nil {
			t.Fatal(err)
		}
	}
	return rows, names
}

// datasetRows is every row of the dataset through readDataset, sorted.
func datasetRows(t testing.TB, root string) []string {
	t.Helper()
	var out []string
	if err := readDataset(root, false, func(r *defectRow) { out = append(out, fmt.Sprintf("%+v", *r)) }); err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// fileOnly skips a test of compaction's files alone under the race
// detector: it runs on one goroutine, and Parquet under the detector
// takes it tens of seconds (TestCompactInService is the concurrent one).
func fileOnly(t *testing.T) {
	if raceEnabled {
		long.Skip(t, "one goroutine, Parquet slow under the race detector")
	}
}

func testCompactor(t testing.TB, root string, o CompactOptions, log zerolog.Logger) *compactor {
	t.Helper()
	c, err := newCompactor(root, o.withDefaults(), log, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Compaction merges an over day's part files into day files of at most
// MaxRows rows, each row once, in the order written, every value the
// same; today's partition below MaxParts and a partition of one file are
// left alone, and the service starts from the result with the same rows.
func TestCompactPreservesRows(t *testing.T) {
	fileOnly(t)
	root := t.TempDir()
	l1 := writeParts(t, root, "L1", pastDay, 30, 7)
	l2 := writeParts(t, root, "L2", pastDay, 12, 100)
	today := time.Now().UTC().Format(time.DateOnly)
	writeParts(t, root, "L1", today, 3, 2)
	writeParts(t, root, "L3", pastDay, 1, 5)
	before := datasetRows(t, root)

	reg := prometheus.NewRegistry()
	st, err := Compact(context.Background(), root, CompactOptions{MaxRows: 1000}, zerolog.Nop(), reg)
	if err != nil {
		t.Fatal(err)
	}
	if st.Partitions != 2 || st.Files != 42 || st.Outputs != 3 || st.Rows != 30*7+1200 || st.Failed != 0 {
		t.Errorf("stats %+v, want 2 partitions, 42 files into 3, %d rows", st, 30*7+1200)
	}
	for _, c := range []struct {
		line, day string
		want      []defectRow
		files     []int
	}{{"L1", pastDay, l1, []int{210}}, {"L2", pastDay, l2, []int{1000, 200}}} {
		got, names := partitionRows(t, root, c.line, c.day)
		if !slices.Equal(got, c.want) {
			t.Errorf("line %s: %d rows after compaction, want the %d written, in order", c.line, len(got), len(c.want))
		}
		if len(names) != len(c.files) || !strings.HasPrefix(names[0], "day-") {
			t.Errorf("line %s: files %v, want %d day files", c.line, names, len(c.files))
		}
		for i, n := range names {
			if i < len(c.files) {
				if rows, _ := partRows(filepath.Join(partDir(root, partKey{c.line, c.day}), n)); rows != int64(c.files[i]) {
					t.Errorf("line %s: %s holds %d rows, want %d", c.line, n, rows, c.files[i])
				}
			}
		}
	}
	if _, names := partitionRows(t, root, "L1", today); len(names) != 3 {
		t.Errorf("today's partition (3 parts, MaxParts 512): %v, want it untouched", names)
	}
	if after := datasetRows(t, root); !slices.Equal(after, before) {
		t.Errorf("dataset: %d rows after compaction, want the %d before, the same", len(after), len(before))
	}
	if n := counterValue(t, reg, "webinspect_plant_compacted_files_total"); n != 42 {
		t.Errorf("files compacted metric %v, want 42", n)
	}
	svc, err := NewService(ServiceOptions{URLs: []string{"nats://127.0.0.1:1"}, Data: root})
	if err != nil {
		t.Fatal(err)
	}
	if c := svc.Counts(); c.Total != int64(len(before)) {
		t.Errorf("service started on the compacted dataset counts %d defects, want %d", c.Total, len(before))
	}
	// Again: nothing more to do.
	if st, err := Compact(context.Background(), root, CompactOptions{MaxRows: 1000}, zerolog.Nop(), nil); err != nil || st.Partitions != 0 {
		t.Errorf("second pass: %+v, %v; want nothing done", st, err)
	}
}

// counterValue is the value of a counter registered on reg.
func counterValue(t testing.TB, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.Metric[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// A partition with more than MaxParts part files is compacted while its
// day runs, into a compact file; a record for it afterwards is a new
// part file next to it, and the day's end merges them all into a day
// file.
func TestCompactToday(t *testing.T) {
	fileOnly(t)
	root := t.TempDir()
	today := time.Now().UTC().Format(time.DateOnly)
	rows := writeParts(t, root, "L1", today, 6, 4)
	c := testCompactor(t, root, CompactOptions{MaxParts: 4}, zerolog.Nop())
	if _, err := c.pass(context.Background(), time.Now()); err != nil {
		t.Fatal(err)
	}
	if got, names := partitionRows(t, root, "L1", today); !slices.Equal(got, rows) || len(names) != 1 || !strings.HasPrefix(names[0], "compact-") {
		t.Fatalf("today with 6 parts, MaxParts 4: files %v with %d rows, want one compact file with the %d written", names, len(got), len(rows))
	}
	t0, _ := time.Parse(time.DateOnly, today)
	late := &defectRow{Line: "L1", Roll: "L1-R9", ID: 1, Time: t0.Add(time.Hour), Received: time.Now().UTC().Truncate(time.Microsecond)}
	if err := writePart(root, 99, []*defectRow{late}); err != nil {
		t.Fatal(err)
	}
	rows = append(rows, *late)
	if _, err := c.pass(context.Background(), t0.Add(24*time.Hour+3*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got, names := partitionRows(t, root, "L1", today); !slices.Equal(got, rows) || len(names) != 1 || !strings.HasPrefix(names[0], "day-") {
		t.Fatalf("the day over: files %v with %d rows, want one day file with the %d written", names, len(got), len(rows))
	}
}

// A part file that cannot be read fully (truncated: no footer; a page
// corrupt behind an intact footer, found only by reading every row)
// stops its partition's compaction, named in the log; no file of the
// partition is removed or changed, and other partitions are compacted.
func TestCompactBadPart(t *testing.T) {
	fileOnly(t)
	root := t.TempDir()
	good := writeParts(t, root, "L2", pastDay, 3, 10)
	damage := map[string]func(b []byte) []byte{
		"L1": func(b []byte) []byte { return b[:len(b)/2] },
		"L3": func(b []byte) []byte {
			for i := 400; i < 440; i++ {
				b[i] ^= 0x5a
			}
			return b
		},
	}
	want := make(map[string]map[string]int64)
	var bad []string
	for line, f := range damage {
		writeParts(t, root, line, pastDay, 5, 10)
		dir := partDir(root, partKey{line, pastDay})
		files, _ := listPartition(dir)
		path := filepath.Join(dir, files[2].name)
		b, _ := os.ReadFile(path)
		if err := os.WriteFile(path, f(b), 0o644); err != nil {
			t.Fatal(err)
		}
		want[line], bad = dirSizes(dir), append(bad, files[2].name)
	}
	var log bytes.Buffer
	st, err := Compact(context.Background(), root, CompactOptions{}, zerolog.New(&log), nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.Failed != 2 || st.Partitions != 1 {
		t.Errorf("stats %+v, want L1 and L3 failed, L2 compacted", st)
	}
	for line := range damage {
		if got := dirSizes(partDir(root, partKey{line, pastDay})); fmt.Sprint(got) != fmt.Sprint(want[line]) {
			t.Errorf("%s, a partition with a damaged part: files %v after compaction, want %v untouched", line, got, want[line])
		}
	}
	for _, name := range bad {
		if !strings.Contains(log.String(), name) || !strings.Contains(log.String(), "not compacted") {
			t.Errorf("log %q does not name the bad file %s", log.String(), name)
		}
	}
	if got, _ := partitionRows(t, root, "L2", pastDay); !slices.Equal(got, good) {
		t.Errorf("L2 after compaction: %d rows, want the %d written", len(got), len(good))
	}
	if _, err := os.Stat(filepath.Join(root, indexDir, journalFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("journal left after a failed partition: %v", err)
	}
}

// dirSizes is the size of each file in dir, by name.
func dirSizes(dir string) map[string]int64 {
	m := make(map[string]int64)
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if fi, err := e.Info(); err == nil {
			m[e.Name()] = fi.Size()
		}
	}
	return m
}

// A crash after each step of the journal leaves, after the next start,
// a dataset with every row exactly once, and the next pass completes
// the compaction.
func TestCompactCrashAtEachStep(t *testing.T) {
	fileOnly(t)
	for _, step := range []string{"journal", "merged", "swap", "renamed", "removed-one", "removed", "done"} {
		t.Run(step, func(t *testing.T) {
			root := t.TempDir()
			rows := writeParts(t, root, "L1", pastDay, 4, 5)
			before := datasetRows(t, root)
			c := testCompactor(t, root, CompactOptions{}, zerolog.Nop())
			c.step = func(_ partKey, s string) error {
				if s == step {
					return errStop
				}
				return nil
			}
			if _, err := c.pass(context.Background(), time.Now()); !errors.Is(err, errStop) {
				t.Fatalf("pass stopped after %s: %v", step, err)
			}
			svc, err := NewService(ServiceOptions{URLs: []string{"nats://127.0.0.1:1"}, Data: root})
			if err != nil {
				t.Fatal(err)
			}
			if got := datasetRows(t, root); !slices.Equal(got, before) {
				t.Errorf("after a crash after %s and a start: %d rows, want the %d, each once", step, len(got), len(before))
			}
			if got := svc.Counts().Total; got != int64(len(rows)) {
				t.Errorf("after a crash after %s: the index counts %d, want %d", step, got, len(rows))
			}
			ents, _ := os.ReadDir(partDir(root, partKey{"L1", pastDay}))
			for _, e := range ents {
				if strings.HasSuffix(e.Name(), ".tmp") {
					t.Errorf("after a crash after %s and a start: %s left", step, e.Name())
				}
			}
			if _, err := Compact(context.Background(), root, CompactOptions{}, zerolog.Nop(), nil); err != nil {
				t.Fatal(err)
			}
			if got, names := partitionRows(t, root, "L1", pastDay); !slices.Equal(got, rows) || len(names) != 1 {
				t.Errorf("next pass: files %v with %d rows, want one with the %d written", names, len(got), len(rows))
			}
		})
	}
}

// The service compacts in its background without holding up what it
// takes: while a compaction is held before its swap, the line's next
// defects (of the very day being compacted) are taken and written; then
// the dataset holds every defect exactly once, and a defect arriving for
// the compacted day is kept next to its day file.
func TestCompactInService(t *testing.T) {
	g := newRig(t, 1)
	l := g.lines[0]
	l.skew = -48 * time.Hour // its defects are of a day that is over
	l.startRoll(t)
	for range 3 {
		l.web(t, 10)
		g.waitUnion()
	}
	g.run.stop()
	data := filepath.Join(g.dir, "plant")
	svc, err := NewService(ServiceOptions{URLs: g.urls, Data: data, FlushInterval: 50 * time.Millisecond, AckWait: 2 * time.Second,
		Compact: CompactOptions{Interval: 20 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	held, release := make(chan partKey, 1), make(chan struct{})
	var once sync.Once
	defer once.Do(func() { close(release) })
	svc.comp.step = func(k partKey, step string) error {
		if step == "swap" {
			select {
			case held <- k:
				<-release
			default:
			}
		}
		return nil
	}
	g.svc = svc
	g.run = goRun(func(ctx context.Context) {
		if err := svc.Run(ctx); err != nil {
			t.Errorf("plant service stopped: %v", err)
		}
	})
	var k partKey
	poll.Until(t, 60*time.Second, "a compaction in the service's background", func() bool {
		select {
		case k = <-held:
			return true
		default:
			return false
		}
	})
	l.web(t, 10)
	g.waitUnion() // taken, written and acknowledged while the compaction is held
	once.Do(func() { close(release) })
	day := func() (days, parts int) {
		files, _ := listPartition(partDir(data, k))
		for _, f := range files {
			switch f.kind {
			case 'd':
				days++
			case 'p':
				parts++
			}
		}
		return days, parts
	}
	poll.Until(t, 60*time.Second, "the day compacted with the defects that came meanwhile", func() bool {
		d, p := day()
		return d == 1 && p == 0
	})
	l.web(t, 10) // late defects for the compacted day
	want := g.waitUnion()
	g.run.stop()
	g.run = nil
	back, err := NewService(ServiceOptions{URLs: g.urls, Data: data})
	if err != nil {
		t.Fatal(err)
	}
	if got := diskDefects(t, back); !slices.Equal(got, want) {
		t.Fatalf("after compaction and late defects: %d rows on disk, want %d each once; %s", len(got), len(want), firstDiff(got, want))
	}
}

// A journal in its swap phase whose merged file was removed by hand: with
// every input still there the swap is undone (each row once); with an
// input already removed too, the start refuses, naming the journal, and
// touches nothing.
func TestCompactRecoverMissingOutput(t *testing.T) {
	fileOnly(t)
	for _, c := range []struct {
		step    string
		refused bool
	}{{"swap", false}, {"removed-one", true}} {
		root := t.TempDir()
		rows := writeParts(t, root, "L1", pastDay, 4, 5)
		cp := testCompactor(t, root, CompactOptions{}, zerolog.Nop())
		var out string
		cp.step = func(_ partKey, s string) error {
			if s == c.step {
				return errStop
			}
			return nil
		}
		if _, err := cp.pass(context.Background(), time.Now()); !errors.Is(err, errStop) {
			t.Fatal(err)
		}
		dir := partDir(root, partKey{"L1", pastDay})
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			if strings.Contains(e.Name(), "day-") {
				out = e.Name()
			}
		}
		if err := os.Remove(filepath.Join(dir, out)); err != nil {
			t.Fatal(err)
		}
		before := dirSizes(dir)
		_, err := NewService(ServiceOptions{URLs: []string{"nats://127.0.0.1:1"}, Data: root})
		if c.refused {
			if err == nil || !strings.Contains(err.Error(), journalFile) {
				t.Errorf("after %s, %s removed by hand: start %v, want a refusal naming the journal", c.step, out, err)
			}
			if got := dirSizes(dir); fmt.Sprint(got) != fmt.Sprint(before) {
				t.Errorf("after %s, %s removed by hand: files %v, want %v untouched", c.step, out, got, before)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := partitionRows(t, root, "L1", pastDay); !slices.Equal(got, rows) {
			t.Errorf("after %s, %s removed by hand: %d rows, want the %d written", c.step, out, len(got), len(rows))
		}
	}
}

// A disk error within the swap (after the renames, before the removals)
// stops the pass with its journal left, counted as the partition's
// failure; the next pass finishes that swap before anything else, so the
// merged rows never stay next to their inputs.
func TestCompactSwapErrorFinishedByNextPass(t *testing.T) {
	fileOnly(t)
	root := t.TempDir()
	rows := writeParts(t, root, "L1", pastDay, 4, 5)
	other := writeParts(t, root, "L2", pastDay, 4, 5)
	c := testCompactor(t, root, CompactOptions{}, zerolog.Nop())
	diskErr := errors.New("input/output error")
	c.step = func(_ partKey, s string) error {
		if s == "renamed" {
			return diskErr
		}
		return nil
	}
	st, err := c.pass(context.Background(), time.Now())
	if !errors.Is(err, diskErr) || st.Failed != 1 || st.Partitions != 0 {
		t.Fatalf("pass with a swap error: %+v, %v; want it stopped at the first partition with that error", st, err)
	}
	if _, err := os.Stat(filepath.Join(root, indexDir, journalFile)); err != nil {
		t.Fatalf("journal after a swap error: %v, want it left", err)
	}
	c.step = nil
	if st, err := c.pass(context.Background(), time.Now()); err != nil || st.Failed != 0 {
		t.Fatalf("next pass: %+v, %v", st, err)
	}
	for line, want := range map[string][]defectRow{"L1": rows, "L2": other} {
		got, files := partitionRows(t, root, line, pastDay)
		if !slices.Equal(got, want) || len(files) != 1 {
			t.Errorf("line %s after the next pass: %d rows in %v, want the %d written, once, in one day file", line, len(got), files, len(want))
		}
	}
}

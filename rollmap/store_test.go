package rollmap

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func openStore(t testing.TB) *Store {
	t.Helper()
	s, err := OpenStore(filepath.Join(t.TempDir(), "rolls")) // not yet there
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestRoundTripFiles writes a roll in several flushes, closes it and reads
// it back through ReadRoll and the Store: every field, times included.
func TestRoundTripFiles(t *testing.T) {
	s := openStore(t)
	ds, us := makeDefects(1000, 20), makeUninspected(30, 21)
	ds[7].Time = time.Time{}
	r := writeRoll(t, s, "RT-1", ds, us, 4)
	r.SetLength(512.25)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	meta, gotD, gotU, err := ReadRoll(filepath.Join(s.Root(), "RT-1"))
	if err != nil {
		t.Fatal(err)
	}
	equalRows(t, "defects", gotD, stored("RT-1", ds))
	equalRows(t, "uninspected", gotU, storedU("RT-1", us))
	want := RollMeta{ID: "RT-1", Recipe: "fabric-2m", Material: "fabric", Source: "sim", WebWidthMM: 2000,
		Started: time.Date(2025, 3, 14, 6, 15, 2, 0, time.UTC), Ended: meta.Ended, LengthM: 512.25}
	if !reflect.DeepEqual(meta, want) || meta.Ended.IsZero() || meta.Ended.Location() != time.UTC {
		t.Errorf("meta = %+v\nwant %+v with a UTC Ended", meta, want)
	}
	viaStore, err := s.Defects("RT-1", Query{})
	if err != nil {
		t.Fatal(err)
	}
	equalRows(t, "Store.Defects", viaStore, stored("RT-1", ds))
	if _, err := os.Stat(filepath.Join(s.Root(), "RT-1", MetaFile+".tmp")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary roll.json left behind: %v", err)
	}
}

func TestStartRollDefaults(t *testing.T) {
	s := openStore(t)
	before := time.Now()
	r, err := s.StartRoll(RollMeta{Recipe: "x", Open: false, Ended: before})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	id := r.ID()
	if err := ValidRollID(id); err != nil || !strings.HasPrefix(id, "R"+before.UTC().Format("20060102")) || len(id) != len("R20250314-061502-3f9a") {
		t.Errorf("generated ID %q (%v)", id, err)
	}
	info := r.Info()
	if !info.Open || !info.Ended.IsZero() || info.Started.Before(before.Add(-time.Second)) {
		t.Errorf("new roll info %+v: want open, no Ended, Started now", info)
	}
	for _, f := range []string{MetaFile, DefectsFile, UninspectedFile} {
		if _, err := os.Stat(filepath.Join(s.Root(), id, f)); err != nil {
			t.Errorf("StartRoll did not create %s: %v", f, err)
		}
	}
	// The empty streams are valid.
	if _, ds, us, err := ReadRoll(filepath.Join(s.Root(), id)); err != nil || len(ds)+len(us) != 0 {
		t.Errorf("ReadRoll of a new roll: %d, %d rows, %v", len(ds), len(us), err)
	}
	if r2, err := s.StartRoll(RollMeta{ID: id}); !errors.Is(err, ErrRollExists) {
		t.Errorf("second StartRoll(%s) = %v, want ErrRollExists", id, err)
		r2.Close()
	}
	ids := map[string]bool{id: true}
	for range 20 { // generated IDs in the same second do not collide
		r, err := s.StartRoll(RollMeta{Started: info.Started})
		if err != nil {
			t.Fatal(err)
		}
		ids[r.ID()] = true
		r.Close()
	}
	if len(ids) != 21 {
		t.Errorf("%d distinct IDs from 21 starts", len(ids))
	}
	if _, err := s.StartRoll(RollMeta{ID: "W", WebWidthMM: math.NaN()}); !errors.Is(err, ErrInvalid) {
		t.Errorf("NaN width: %v, want ErrInvalid", err)
	}
}

func TestBadRollIDs(t *testing.T) {
	s := openStore(t)
	bad := []string{"", "../x", "..", ".", ".hidden", "a/b", `a\b`, "-flag", "a b", "é", "x\x00",
		strings.Repeat("a", 65), "/abs"}
	for _, id := range bad {
		if err := ValidRollID(id); !errors.Is(err, ErrBadRollID) {
			t.Errorf("ValidRollID(%q) = %v, want ErrBadRollID", id, err)
		}
		if id == "" {
			continue // StartRoll generates an ID for ""
		}
		if _, err := s.StartRoll(RollMeta{ID: id}); !errors.Is(err, ErrBadRollID) {
			t.Errorf("StartRoll(%q) = %v, want ErrBadRollID", id, err)
		}
		if _, err := s.Roll(id); !errors.Is(err, ErrBadRollID) {
			t.Errorf("Roll(%q) = %v", id, err)
		}
		if _, err := s.Defects(id, Query{}); !errors.Is(err, ErrBadRollID) {
			t.Errorf("Defects(%q) = %v", id, err)
		}
		if _, err := s.Uninspected(id); !errors.Is(err, ErrBadRollID) {
			t.Errorf("Uninspected(%q) = %v", id, err)
		}
	}
	if entries, _ := os.ReadDir(filepath.Dir(s.Root())); len(entries) != 1 {
		t.Errorf("bad IDs created entries next to the store: %v", entries)
	}
	for _, id := range []string{"a", "R20250314-061502-3f9a", "roll_7.b-2", strings.Repeat("Z", 64), "0"} {
		if err := ValidRollID(id); err != nil {
			t.Errorf("ValidRollID(%q) = %v", id, err)
		}
	}
	r, err := s.StartRoll(RollMeta{ID: strings.Repeat("Z", 64)})
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
}

func TestNotFound(t *testing.T) {
	s := openStore(t)
	if _, err := s.Roll("nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Roll = %v", err)
	}
	if _, err := s.Defects("nope", Query{}); !errors.Is(err, ErrNotFound) {
		t.Errorf("Defects = %v", err)
	}
	if _, err := s.Uninspected("nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Uninspected = %v", err)
	}
	if _, _, _, err := ReadRoll(t.TempDir()); !errors.Is(err, ErrNotFound) {
		t.Errorf("ReadRoll of an empty dir = %v", err)
	}
}

// TestList covers open rolls, closed rolls, a roll left open by a dead
// process, an incomplete start and stray entries, newest first.
func TestList(t *testing.T) {
	root := t.TempDir()
	day := time.Date(2025, 3, 14, 0, 0, 0, 0, time.UTC)
	start := func(s *Store, id string, h int) *Roll {
		r, err := s.StartRoll(RollMeta{ID: id, Started: day.Add(time.Duration(h) * time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	// A previous process: one roll closed, one never closed.
	old, err := OpenStore(root)
	if err != nil {
		t.Fatal(err)
	}
	closed := start(old, "closed", 1)
	closed.AddDefects(makeDefects(5, 1)...)
	closed.AddUninspected(Uninspected{MDStartM: 1, MDEndM: 3}, Uninspected{MDStartM: 2, MDEndM: 4, Camera: 1})
	if err := closed.Close(); err != nil {
		t.Fatal(err)
	}
	crashed := start(old, "crashed", 2)
	crashed.AddDefects(makeDefects(3, 2)...)
	crashed.Flush()
	crashed.AddDefects(Defect{ID: 100}) // never flushed
	old.dies()
	// Not a roll: a file, a directory without roll.json, a bad name.
	os.WriteFile(filepath.Join(root, "notes.txt"), nil, 0o644)
	os.Mkdir(filepath.Join(root, "half-started"), 0o755)
	os.Mkdir(filepath.Join(root, ".trash"), 0o755)

	s, err := OpenStore(root)
	if err != nil {
		t.Fatal(err)
	}
	live := start(s, "live", 3)
	defer live.Close()
	live.AddDefects(makeDefects(7, 3)...) // not flushed: counted from memory

	infos, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, in := range infos {
		got = append(got, fmt.Sprintf("%s open=%v defects=%d unins=%d/%gm ended=%v",
			in.ID, in.Open, in.Defects, in.Uninspected, in.UninspectedM, !in.Ended.IsZero()))
	}
	want := []string{
		"live open=true defects=7 unins=0/0m ended=false",
		"crashed open=false defects=3 unins=0/0m ended=false",
		"closed open=false defects=5 unins=2/3m ended=true",
	}
	if !slices.Equal(got, want) {
		t.Errorf("List:\n got %q\nwant %q", got, want)
	}
	if in, err := s.Roll("crashed"); err != nil || in.Open || in.Defects != 3 {
		t.Errorf("Roll(crashed) = %+v, %v", in, err)
	}
	// A damaged roll.json does not hide the other rolls.
	os.WriteFile(filepath.Join(root, "closed", MetaFile), []byte("{"), 0o644)
	infos, err = s.List()
	if !errors.Is(err, ErrCorrupt) || len(infos) != 2 {
		t.Errorf("List with a damaged roll.json: %d rolls, %v", len(infos), err)
	}
}

// queryCases are run against an open roll (memory) and the same roll
// closed (disk); the expected result is computed by brute force.
var queryCases = []Query{
	{},
	{MDFromM: 20},
	{MDToM: 15.5},
	{MDFromM: 10, MDToM: 12},
	{Class: "stain"},
	{Class: "fly, yarn"},
	{Decision: DecisionMark},
	{AfterID: 150},
	{AfterID: 150, Limit: 10},
	{Limit: 1},
	{Limit: 10000},
	{Class: "hole", Decision: DecisionReview, MDFromM: 5, Limit: 3},
	{Class: "no-such-class"},
	{AfterID: 1 << 40},
	{AfterID: chunkRows - 1, Limit: 5}, // across the in-memory chunk boundary
	{AfterID: chunkRows},
	{AfterID: 2*chunkRows - 3, Class: "hole"},
	{ByLane: true, Lane: 0}, // lane 0, not "no filter"
	{ByLane: true, Lane: NoLane},
	{ByLane: true, Lane: 3, Decision: DecisionMark, MDFromM: 50},
	{ByLane: true, Lane: 99},
	{Lane: 2}, // Lane without ByLane: no filter
	{ReviewStatus: "confirmed"},
	{ReviewStatus: ReviewNone},
	{ReviewStatus: "false_alarm", ByLane: true, Lane: 1, Limit: 7},
}

func bruteForce(all []Defect, q Query) []Defect {
	var out []Defect
	for _, d := range all {
		if (q.MDFromM == 0 || d.MDEndM >= q.MDFromM) && (q.MDToM == 0 || d.MDStartM <= q.MDToM) &&
			(q.Class == "" || d.Class == q.Class) && (q.Decision == "" || d.Decision == q.Decision) && d.ID > q.AfterID &&
			(!q.ByLane || d.Lane == q.Lane) &&
			(q.ReviewStatus == "" || q.ReviewStatus == d.ReviewStatus || q.ReviewStatus == ReviewNone && d.ReviewStatus == "") {
			out = append(out, d)
		}
	}
	slices.SortStableFunc(out, byID)
	if q.Limit > 0 && len(out) > q.Limit {
		out = out[:q.Limit]
	}
	return out
}

func TestQueries(t *testing.T) {
	for _, order := range []string{"sorted", "shuffled"} {
		s := openStore(t)
		ds := makeDefects(2*chunkRows+300, 30)
		if order == "shuffled" { // IDs not in the order added
			for i := range ds {
				j := (i * 7919) % len(ds)
				ds[i], ds[j] = ds[j], ds[i]
			}
		}
		r := writeRoll(t, s, "Q", ds, nil, 3)
		all := stored("Q", ds)
		check := func(where string) {
			for _, q := range queryCases {
				got, err := s.Defects("Q", q)
				if err != nil {
					t.Fatal(err)
				}
				want := bruteForce(all, q)
				equalRows(t, fmt.Sprintf("%s %s %+v", order, where, q), got, want)
			}
		}
		for _, q := range []Query{queryCases[4], {ByLane: true}, {ByLane: true, Lane: NoLane}, {ReviewStatus: ReviewNone}} {
			if n := len(bruteForce(all, q)); n == 0 || n == len(all) {
				t.Fatalf("test data does not exercise the filter %+v: %d of %d defects match", q, n, len(all))
			}
		}
		if len(bruteForce(all, queryCases[1])) == len(all) {
			t.Fatal("test data does not exercise the filters")
		}
		check("open")
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
		check("closed")
	}
	s := openStore(t)
	writeRoll(t, s, "Q", nil, nil, 1)
	for _, q := range []Query{{Limit: -1}, {MDFromM: math.NaN()}, {MDToM: math.Inf(1)}, {ByLane: true, Lane: -2}} {
		if _, err := s.Defects("Q", q); !errors.Is(err, ErrInvalid) {
			t.Errorf("Defects(%+v) = %v, want ErrInvalid", q, err)
		}
	}
}

func TestAddDefects(t *testing.T) {
	s := openStore(t)
	r := writeRoll(t, s, "A", nil, nil, 1)
	defer r.Close()
	if err := r.AddDefects(Defect{ID: 5, RollID: "other"}, Defect{}, Defect{}); err != nil {
		t.Fatal(err)
	}
	got, _ := s.Defects("A", Query{})
	if len(got) != 3 || got[0].ID != 5 || got[1].ID != 6 || got[2].ID != 7 || got[0].RollID != "A" {
		t.Errorf("IDs/RollID not assigned: %+v", got)
	}
	for _, d := range []Defect{{MDStartM: math.NaN()}, {AreaMM2: math.Inf(1)}, {ID: -1}} {
		if err := r.AddDefects(Defect{ID: 50}, d); !errors.Is(err, ErrInvalid) {
			t.Errorf("AddDefects(%+v) = %v, want ErrInvalid", d, err)
		}
	}
	if err := r.AddUninspected(Uninspected{MDEndM: math.NaN()}); !errors.Is(err, ErrInvalid) {
		t.Errorf("AddUninspected(NaN) = %v", err)
	}
	if got, _ := s.Defects("A", Query{}); len(got) != 3 {
		t.Errorf("a rejected call added rows: %d", len(got))
	}
	r.SetLength(-1)
	r.SetLength(math.NaN())
	r.SetLength(12)
	r.SetLength(math.Inf(1))
	if in := r.Info(); in.LengthM != 12 {
		t.Errorf("LengthM = %v, want 12", in.LengthM)
	}
}

func TestClosed(t *testing.T) {
	s := openStore(t)
	r := writeRoll(t, s, "C", makeDefects(3, 1), nil, 1)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"AddDefects":     r.AddDefects(Defect{}),
		"AddUninspected": r.AddUninspected(Uninspected{}),
		"Flush":          r.Flush(),
		"Close":          r.Close(),
	} {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close = %v, want ErrClosed", name, err)
		}
	}
	open := writeRoll(t, s, "D", makeDefects(3, 2), nil, 1)
	open.AddDefects(Defect{ID: 10})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.StartRoll(RollMeta{}); !errors.Is(err, ErrClosed) {
		t.Errorf("StartRoll after Store.Close = %v", err)
	}
	if got, err := s.Defects("D", Query{}); err != nil || len(got) != 4 {
		t.Errorf("Store.Close did not flush and close D: %d defects, %v", len(got), err)
	}
}

// TestCrash reads a roll whose writer stopped: rows up to the last Flush
// are there, roll.json counts match them, and a torn batch at the end is
// reported as ErrTruncated with everything before it.
func TestCrash(t *testing.T) {
	s := openStore(t)
	ds := makeDefects(50, 40)
	r := writeRoll(t, s, "X", ds[:30], makeUninspected(2, 1), 2)
	r.AddDefects(ds[30:]...) // never flushed
	dir := filepath.Join(s.Root(), "X")
	meta, got, _, err := ReadRoll(dir)
	if err != nil || !meta.Open {
		t.Fatalf("ReadRoll: open=%v, %v", meta.Open, err)
	}
	equalRows(t, "flushed", got, stored("X", ds[:30]))
	m, _ := readMetaFile(dir)
	if m.Defects != 30 || m.Uninspected != 2 {
		t.Errorf("roll.json counts %d defects, %d ranges; want 30, 2", m.Defects, m.Uninspected)
	}
	// A torn write: the first half of a further batch.
	before := r.dfile.end
	if err := r.Flush(); err != nil {
		t.Fatal(err)
	}
	full, err := os.ReadFile(filepath.Join(dir, DefectsFile))
	if err != nil {
		t.Fatal(err)
	}
	half := full[before : before+(r.dfile.end-before)/2]
	os.WriteFile(filepath.Join(dir, DefectsFile), append(full, half...), 0o644)
	_, got, _, err = ReadRoll(dir)
	if !errors.Is(err, ErrTruncated) || !strings.Contains(err.Error(), DefectsFile) {
		t.Fatalf("torn tail: err = %v, want ErrTruncated naming %s", err, DefectsFile)
	}
	equalRows(t, "before the tear", got, stored("X", ds))
}

func TestUninspectedMetres(t *testing.T) {
	us := []Uninspected{{MDStartM: 5, MDEndM: 6}, {MDStartM: 0, MDEndM: 2}, {MDStartM: 1, MDEndM: 3},
		{MDStartM: 3, MDEndM: 3.5}, {MDStartM: 10, MDEndM: 9}}
	if got := uninspectedMetres(us); math.Abs(got-5.5) > 1e-12 {
		t.Errorf("uninspectedMetres = %v, want 5.5", got)
	}
	if got := uninspectedMetres(nil); got != 0 {
		t.Errorf("empty: %v", got)
	}
}

// TestConcurrentReadersAndWriter runs a writer appending and flushing while
// readers poll with AfterID, list and summarise. Run with -race.
func TestConcurrentReadersAndWriter(t *testing.T) {
	s := openStore(t)
	r, err := s.StartRoll(RollMeta{ID: "live"})
	if err != nil {
		t.Fatal(err)
	}
	ds := makeDefects(3000, 50)
	done := make(chan struct{})
	var wg sync.WaitGroup
	errc := make(chan error, 8)
	for reader := range 3 {
		wg.Go(func() {
			var after int64
			seen := 0
			for {
				select {
				case <-done:
					return
				default:
				}
				got, err := s.Defects("live", Query{AfterID: after, Limit: 100})
				if err != nil {
					errc <- err
					return
				}
				for i, d := range got {
					if d.ID <= after || (i > 0 && d.ID <= got[i-1].ID) {
						errc <- fmt.Errorf("reader %d: ID %d after %d out of order", reader, d.ID, after)
						return
					}
					if d != stored("live", ds[d.ID-1:d.ID])[0] {
						errc <- fmt.Errorf("reader %d: defect %d differs", reader, d.ID)
						return
					}
					after = d.ID
					seen++
				}
				if _, err := s.List(); err != nil {
					errc <- err
					return
				}
				if _, err := s.Uninspected("live"); err != nil {
					errc <- err
					return
				}
				// Density and Summary read the open roll, then (once it
				// is closed) its files and summary.json.
				if _, err := s.Density("live", 50, AllLanes); err != nil {
					errc <- err
					return
				}
				if _, err := s.Summary("live"); err != nil {
					errc <- err
					return
				}
			}
		})
	}
	for k := 0; k < len(ds); k += 100 {
		if err := r.AddDefects(ds[k : k+100]...); err != nil {
			t.Fatal(err)
		}
		r.AddUninspected(Uninspected{MDStartM: float64(k), MDEndM: float64(k) + 1})
		r.SetLength(float64(k))
		if k%300 == 0 {
			if err := r.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	close(done)
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	got, err := s.Defects("live", Query{})
	if err != nil {
		t.Fatal(err)
	}
	equalRows(t, "after close", got, stored("live", ds))
}

// TestDiskCache checks that the cache of the last closed roll read follows
// its file (a roll another Store is still writing) and that results are
// the caller's own.
func TestDiskCache(t *testing.T) {
	root := filepath.Join(t.TempDir(), "rolls")
	w, err := OpenStore(root)
	if err != nil {
		t.Fatal(err)
	}
	s, err := OpenStore(root) // a second Store (say, another process) reading the same root
	if err != nil {
		t.Fatal(err)
	}
	ds := makeDefects(500, 60)
	r := writeRoll(t, w, "C", ds[:200], nil, 1)
	got, err := s.Defects("C", Query{})
	if err != nil || len(got) != 200 {
		t.Fatalf("%d defects, %v", len(got), err)
	}
	got[0].Class = "scribbled on by the caller"
	if again, _ := s.Defects("C", Query{Limit: 1}); again[0].Class == got[0].Class {
		t.Error("a query result shares rows with the cache")
	}
	if err := r.AddDefects(ds[200:]...); err != nil {
		t.Fatal(err)
	}
	if err := r.Flush(); err != nil {
		t.Fatal(err)
	}
	got, err = s.Defects("C", Query{})
	if err != nil {
		t.Fatal(err)
	}
	equalRows(t, "after the file grew", got, stored("C", ds))
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if bins, err := s.Density("C", 10, AllLanes); err != nil || len(bins) == 0 {
		t.Errorf("density from the cache: %d bins, %v", len(bins), err)
	}
}

package rollmap

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/webinspect/webinspect/internal/poll"
)

// abandon stops r as a killed process would: no final flush, no EOS, no
// roll.json update.
func (r *Roll) abandon() {
	r.stopFlusher()
	r.wmu.Lock()
	r.dfile.f.Close()
	r.ufile.f.Close()
	r.mfile.f.Close()
	r.done = true
	r.wmu.Unlock()
	r.store.remove(r)
}

func TestOptionsValidate(t *testing.T) {
	if err := DefaultOptions().Validate(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		field string
		edit  func(*Options)
	}{
		{"FlushInterval", func(o *Options) { o.FlushInterval = time.Millisecond }},
		{"FlushInterval", func(o *Options) { o.FlushInterval = 2 * time.Hour }},
		{"FlushEvery", func(o *Options) { o.FlushEvery = 0 }},
		{"MemoryDefects", func(o *Options) { o.MemoryDefects = 100 }},
		{"MemoryDefects", func(o *Options) { o.MemoryDefects = -1 }},
	} {
		o := DefaultOptions()
		c.edit(&o)
		err := o.Validate()
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.field) {
			t.Errorf("%+v: %v, want ErrInvalid naming %s", o, err, c.field)
		}
		if _, err := OpenStoreOptions(t.TempDir(), o); !errors.Is(err, ErrInvalid) {
			t.Errorf("OpenStoreOptions(%+v) = %v", o, err)
		}
	}
	o := DefaultOptions()
	o.MemoryDefects = 0
	if err := o.Validate(); err != nil {
		t.Errorf("MemoryDefects 0 (no bound): %v", err)
	}
}

// flushedCount returns the defects roll.json counts.
func flushedCount(t *testing.T, s *Store, id string) int64 {
	t.Helper()
	m, err := readMetaFile(filepath.Join(s.Root(), id))
	if err != nil {
		t.Fatal(err)
	}
	return m.Defects
}

// waitFlushed waits until roll.json of roll id counts want defects.
func waitFlushed(t *testing.T, s *Store, id string, want int64) {
	t.Helper()
	poll.Until(t, 30*time.Second, fmt.Sprintf("roll.json of %s to count %d defects", id, want),
		func() bool { return flushedCount(t, s, id) == want })
}

// TestFlushPolicy checks that the Roll flushes by itself: on its timer,
// and as soon as FlushEvery defects wait.
func TestFlushPolicy(t *testing.T) {
	ds := makeDefects(30, 70)
	t.Run("interval", func(t *testing.T) {
		s, err := OpenStoreOptions(t.TempDir(), Options{FlushInterval: 30 * time.Millisecond, FlushEvery: 1000})
		if err != nil {
			t.Fatal(err)
		}
		r, err := s.StartRoll(RollMeta{ID: "I"})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		r.AddDefects(ds[:5]...)
		r.SetLength(12)
		waitFlushed(t, s, "I", 5)
		if m, _ := readMetaFile(filepath.Join(s.Root(), "I")); m.LengthM != 12 {
			t.Errorf("length %v after the timed flush, want 12", m.LengthM)
		}
	})
	t.Run("every", func(t *testing.T) {
		s, err := OpenStoreOptions(t.TempDir(), Options{FlushInterval: time.Hour, FlushEvery: 10})
		if err != nil {
			t.Fatal(err)
		}
		r, err := s.StartRoll(RollMeta{ID: "E"})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		r.AddDefects(ds[:9]...)
		// AddDefects asks the flusher for a flush before it returns (the
		// kick channel): below FlushEvery it must not have asked.
		if len(r.kick) != 0 {
			t.Fatal("AddDefects asked for a flush below FlushEvery")
		}
		if n := flushedCount(t, s, "E"); n != 0 {
			t.Fatalf("%d defects flushed below FlushEvery", n)
		}
		r.AddDefects(ds[9:25]...)
		waitFlushed(t, s, "E", 25)
	})
}

// TestBoundedMatchesUnbounded writes the same rolls into a store keeping
// every defect in memory and one keeping 1024, and compares every query.
func TestBoundedMatchesUnbounded(t *testing.T) {
	for _, unsorted := range []bool{false, true} {
		name := "sorted"
		if unsorted {
			name = "unsorted"
		}
		t.Run(name, func(t *testing.T) {
			ds := makeDefects(4000, 71)
			if unsorted { // IDs out of order, as an engine deciding late might give
				rng := rand.New(rand.NewPCG(3, 4))
				for i := range ds {
					j := min(len(ds)-1, i+rng.IntN(5))
					ds[i].ID, ds[j].ID = ds[j].ID, ds[i].ID
				}
			}
			us := makeUninspected(40, 72)
			full := DefaultOptions()
			full.MemoryDefects = 0
			small := DefaultOptions()
			small.MemoryDefects = chunkRows
			stores := make([]*Store, 2)
			rolls := make([]*Roll, 2)
			for i, o := range []Options{full, small} {
				s, err := OpenStoreOptions(t.TempDir(), o)
				if err != nil {
					t.Fatal(err)
				}
				stores[i] = s
				rolls[i] = writeRoll(t, s, "B", ds[:3500], us, 7)
				rolls[i].AddDefects(ds[3500:]...) // not flushed
				rolls[i].SetLength(3000)
			}
			rolls[1].mu.Lock()
			v := rolls[1].defects.view()
			rolls[1].mu.Unlock()
			if inMem := v.n - v.base; inMem > small.MemoryDefects+chunkRows+500 {
				t.Errorf("%d defects in memory, want at most the window %d + a chunk + the 500 unflushed", inMem, small.MemoryDefects)
			}
			if v.base == 0 {
				t.Fatal("nothing left memory")
			}
			compareStores(t, stores, "B", 4000)
			for _, r := range rolls {
				if err := r.Close(); err != nil {
					t.Fatal(err)
				}
			}
			compareStores(t, stores, "B", 4000)
			_, got, _, err := ReadRoll(filepath.Join(stores[1].Root(), "B"))
			if err != nil {
				t.Fatal(err)
			}
			equalRows(t, "file", got, stored("B", ds))
			p1, _ := os.ReadFile(filepath.Join(stores[0].Root(), "B", DefectsParquetFile))
			p2, _ := os.ReadFile(filepath.Join(stores[1].Root(), "B", DefectsParquetFile))
			if len(p1) == 0 || !slices.Equal(p1, p2) {
				t.Errorf("defects.parquet differs: %d and %d bytes", len(p1), len(p2))
			}
		})
	}
}

func compareStores(t *testing.T, stores []*Store, id string, n int64) {
	t.Helper()
	for _, q := range []Query{{}, {Limit: 7}, {AfterID: n - 30}, {AfterID: 100, Limit: 50}, {MDFromM: 100, MDToM: 400},
		{Class: "stain", Decision: DecisionMark}, {ByLane: true, Lane: 2}, {ReviewStatus: ReviewNone, Limit: 900}} {
		want, err := stores[0].Defects(id, q)
		if err != nil {
			t.Fatal(err)
		}
		got, err := stores[1].Defects(id, q)
		if err != nil {
			t.Fatal(err)
		}
		if len(want) == 0 {
			t.Fatalf("query %+v: no defects", q)
		}
		equalRows(t, "query", got, want)
	}
	d0, err0 := stores[0].Density(id, 10, AllLanes)
	d1, err1 := stores[1].Density(id, 10, AllLanes)
	if err0 != nil || err1 != nil || !reflect.DeepEqual(d0, d1) {
		t.Errorf("density differs (%v, %v)", err0, err1)
	}
	s0, err0 := stores[0].Summary(id)
	s1, err1 := stores[1].Summary(id)
	s1.Ended = s0.Ended // closed at different instants
	if err0 != nil || err1 != nil || !reflect.DeepEqual(s0, s1) {
		t.Errorf("summary differs (%v, %v):\n%+v\n%+v", err0, err1, s0, s1)
	}
	i0, _ := stores[0].Roll(id)
	i1, _ := stores[1].Roll(id)
	i1.Ended = i0.Ended
	if !reflect.DeepEqual(i0, i1) || i0.Defects != n {
		t.Errorf("info differs: %+v, %+v", i0, i1)
	}
}

// crashedRoll writes roll "C" of n defects in 4 flushes into a new store
// (keeping 1024 defects in memory) and abandons it as a killed process
// would.
func crashedRoll(t testing.TB, root string, n int) (ds []Defect, us []Uninspected) {
	o := DefaultOptions()
	o.MemoryDefects = chunkRows
	s, err := OpenStoreOptions(root, o)
	if err != nil {
		t.Fatal(err)
	}
	ds, us = makeDefects(n, 80), makeUninspected(8, 81)
	r := writeRoll(t, s, "C", ds, us, 4)
	r.SetLength(500)
	if err := r.Flush(); err != nil {
		t.Fatal(err)
	}
	r.AddDefects(makeDefects(3, 82)...) // lost with the process
	r.abandon()
	s.dies()
	return ds, us
}

// dies drops the Store's directory lock as the kernel does when the
// process that holds it is killed; the Store's rolls are left as they are.
func (s *Store) dies() {
	s.mu.Lock()
	s.lock.Release()
	s.lock = nil
	s.mu.Unlock()
}

func TestResumeRoll(t *testing.T) {
	root := t.TempDir()
	ds, us := crashedRoll(t, root, 3000)
	o := DefaultOptions()
	o.MemoryDefects = chunkRows
	s, err := OpenStoreOptions(root, o)
	if err != nil {
		t.Fatal(err)
	}
	if info, _ := s.Roll("C"); info.Open {
		t.Error("a crashed roll is listed as open")
	}
	rec, err := s.Recover()
	if err != nil || len(rec) != 1 {
		t.Fatalf("Recover = %+v, %v", rec, err)
	}
	if rr := rec[0]; rr.Info.ID != "C" || rr.Defects != 3000 || rr.Uninspected != 8 || rr.MaxDefectID < 3003 ||
		rr.FlushedLengthM != 500 || rr.Damage != nil {
		t.Errorf("Recover: %+v", rr)
	}
	if _, _, err := s.ResumeRoll("C", 499); !errors.Is(err, ErrInvalid) {
		t.Errorf("restart before the flushed length: %v", err)
	}
	r, rr, err := s.ResumeRoll("C", 520)
	if err != nil || rr.Damage != nil {
		t.Fatalf("ResumeRoll: %v, damage %v", err, rr.Damage)
	}
	if _, _, err := s.ResumeRoll("C", 520); !errors.Is(err, ErrRollExists) {
		t.Errorf("second resume: %v", err)
	}
	if rec, _ := s.Recover(); len(rec) != 0 {
		t.Errorf("a resumed roll is still listed by Recover: %+v", rec)
	}
	info := r.Info()
	if !info.Open || info.LengthM != 520 || info.Defects != 3000 || info.Uninspected != 9 {
		t.Errorf("resumed info %+v", info)
	}
	more := makeDefects(50, 83)
	for i := range more {
		more[i].ID = 0 // numbered by the roll
		more[i].MDStartM += 520
		more[i].MDEndM += 520
	}
	if err := r.AddDefects(more...); err != nil {
		t.Fatal(err)
	}
	got, err := s.Defects("C", Query{})
	// The crashed writer may have handed out IDs up to its reservation in
	// roll.json (the 3 defects lost with it among them): numbering goes on
	// above it, never reusing one.
	if err != nil || len(got) != 3050 || got[3000].ID <= 3003 || got[3000].ID != rr.MaxDefectID+1 || got[3049].ID != got[3000].ID+49 {
		t.Fatalf("after resume: %d defects, IDs %d..%d after max %d, %v", len(got), got[3000].ID, got[3049].ID, rr.MaxDefectID, err)
	}
	equalRows(t, "resumed", got[:3000], stored("C", ds))
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	meta, got, gotU, err := ReadRoll(filepath.Join(root, "C"))
	if err != nil || meta.Open || meta.LengthM != 520 {
		t.Fatalf("ReadRoll: open %v length %v, %v", meta.Open, meta.LengthM, err)
	}
	if len(got) != 3050 {
		t.Fatalf("%d defects on disk", len(got))
	}
	gap := Uninspected{RollID: "C", MDStartM: 500, MDEndM: 520, CDStartMM: 0, CDEndMM: 2000, Camera: -1, Reason: ReasonRestart}
	equalRows(t, "uninspected", gotU, append(storedU("C", us), gap))
	if _, _, err := s.ResumeRoll("C", 600); !errors.Is(err, ErrClosed) {
		t.Errorf("resume a closed roll: %v", err)
	}
}

// TestResumeDamaged cuts the defects file of a crashed roll at many
// places and damages it in others: Recover names the file, ResumeRoll
// keeps every readable record and leaves files that read back cleanly.
func TestResumeDamaged(t *testing.T) {
	src := t.TempDir()
	ds, _ := crashedRoll(t, src, 400)
	orig, err := os.ReadFile(filepath.Join(src, "C", DefectsFile))
	if err != nil {
		t.Fatal(err)
	}
	sc := scanStream(bytesReaderAt(orig), int64(len(orig)))
	if sc.err != nil || sc.batches != 4 {
		t.Fatalf("crashed file: %d batches, %v", sc.batches, sc.err)
	}
	rng := rand.New(rand.NewPCG(9, 9))
	type damage struct {
		name string
		b    []byte
	}
	var cases []damage
	for _, n := range []int{0, 3, 8, int(sc.schemaEnd) - 1, int(sc.schemaEnd), int(sc.schemaEnd) + 5, len(orig) - 1, len(orig) - 100} {
		cases = append(cases, damage{"cut", orig[:n]})
	}
	for range 6 {
		cases = append(cases, damage{"cut", orig[:rng.IntN(len(orig))]})
	}
	for range 6 { // flipped bytes: framing, metadata or values
		b := slices.Clone(orig)
		for range 1 + rng.IntN(3) {
			b[rng.IntN(len(b))] ^= byte(1 + rng.IntN(255))
		}
		cases = append(cases, damage{"flip", b})
	}
	cases = append(cases, damage{"garbage-tail", append(slices.Clone(orig), 1, 2, 3, 4, 5, 6, 7, 8, 9, 10)},
		damage{"eos", append(slices.Clone(orig), eos[:]...)}, damage{"missing", nil})
	for i, c := range cases {
		root := t.TempDir()
		if err := os.CopyFS(root, os.DirFS(src)); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(root, "C", DefectsFile)
		if c.b == nil {
			os.Remove(path)
		} else if err := os.WriteFile(path, c.b, 0o644); err != nil {
			t.Fatal(err)
		}
		readable, rerr := readStream(nil, path, defectColumns)
		s, err := OpenStore(root)
		if err != nil {
			t.Fatal(err)
		}
		rec, err := s.Recover()
		if len(rec) != 1 {
			t.Fatalf("case %d %s: Recover = %v, %v", i, c.name, rec, err)
		}
		if (rerr != nil) != (rec[0].Damage != nil) || rerr != nil && !strings.Contains(err.Error(), DefectsFile) {
			t.Errorf("case %d %s: read error %v, Recover error %v", i, c.name, rerr, err)
		}
		r, rr, err := s.ResumeRoll("C", 600)
		if err != nil {
			t.Fatalf("case %d %s: ResumeRoll: %v", i, c.name, err)
		}
		// A flip inside a value is not detected (format version 1 has no
		// checksums); everything a reader reports must be.
		if rerr != nil && (rr.Damage == nil || !strings.Contains(rr.Damage.Error(), DefectsFile)) || rerr == nil && rr.Damage != nil {
			t.Errorf("case %d %s: read error %v, damage %v, want it to name %s", i, c.name, rerr, rr.Damage, DefectsFile)
		}
		if rr.Defects != int64(len(readable)) {
			t.Errorf("case %d %s: resumed with %d defects, %d readable", i, c.name, rr.Defects, len(readable))
		}
		if err := r.AddDefects(Defect{MDStartM: 601, MDEndM: 601}); err != nil {
			t.Fatal(err)
		}
		// Append to the repaired files; stop without Close (TestResumeRoll
		// closes a resumed roll) to keep the test fast.
		if err := r.Flush(); err != nil {
			t.Fatalf("case %d %s: Flush: %v", i, c.name, err)
		}
		r.abandon()
		_, got, _, err := ReadRoll(filepath.Join(root, "C"))
		if err != nil {
			t.Fatalf("case %d %s: after resume: %v", i, c.name, err)
		}
		if len(got) != len(readable)+1 {
			t.Fatalf("case %d %s: %d defects after resume, want %d", i, c.name, len(got), len(readable)+1)
		}
		equalRows(t, "kept", got[:len(readable)], readable)
		if c.name == "cut" || c.name == "eos" || c.name == "garbage-tail" {
			// Cut files hold a prefix of the rows written.
			equalRows(t, "prefix", readable, stored("C", ds[:len(readable)]))
		}
	}
}

type bytesReaderAt []byte

func (b bytesReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(b)) {
		return 0, os.ErrClosed
	}
	n := copy(p, b[off:])
	if n < len(p) {
		return n, os.ErrClosed
	}
	return n, nil
}

// FuzzResume feeds arbitrary bytes as the defects file of a crashed roll:
// ResumeRoll must not panic, must keep what a reader reads, and must leave
// files that read back without error.
func FuzzResume(f *testing.F) {
	src := f.TempDir()
	crashedRoll(f, src, 400)
	orig, err := os.ReadFile(filepath.Join(src, "C", DefectsFile))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(orig)
	f.Add(orig[:len(orig)/2])
	f.Add(orig[:100])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		root := t.TempDir()
		if err := os.CopyFS(root, os.DirFS(src)); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(root, "C", DefectsFile)
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		readable, _ := readStream(nil, path, defectColumns)
		s, err := OpenStore(root)
		if err != nil {
			t.Fatal(err)
		}
		s.Recover()
		r, _, err := s.ResumeRoll("C", 600)
		if errors.Is(err, ErrVersion) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Flush(); err != nil {
			t.Fatal(err)
		}
		r.abandon()
		_, got, _, err := ReadRoll(filepath.Join(root, "C"))
		if err != nil {
			t.Fatal(err)
		}
		equalRows(t, "kept", got, readable)
	})
}

// TestWindowLiveQueries polls an open roll keeping 1024 defects in memory
// while it grows and flushes: the rows read back from the file (through
// the Store's cache, extended batch by batch) and those in memory must
// join up exactly.
func TestWindowLiveQueries(t *testing.T) {
	o := DefaultOptions()
	o.MemoryDefects = chunkRows
	o.FlushEvery = 300
	s, err := OpenStoreOptions(t.TempDir(), o)
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.StartRoll(RollMeta{ID: "L"})
	if err != nil {
		t.Fatal(err)
	}
	ds := makeDefects(8000, 90)
	want := stored("L", ds)
	done := make(chan error)
	go func() {
		defer close(done)
		for {
			n := int(r.Info().Defects)
			got, err := s.Defects("L", Query{MDToM: 1e9})
			if err != nil {
				done <- err
				return
			}
			if len(got) < n || len(got) > len(want) || !reflect.DeepEqual(got, want[:len(got)]) {
				done <- fmt.Errorf("%d defects read, %d added: rows differ", len(got), n)
				return
			}
			if n == len(want) {
				return
			}
		}
	}()
	for k := 0; k < len(ds); k += 250 {
		if err := r.AddDefects(ds[k : k+250]...); err != nil {
			t.Fatal(err)
		}
		if k%1000 == 0 {
			if err := r.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	base := r.defects.base
	r.mu.Unlock()
	if base == 0 {
		t.Error("no defect left memory")
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
}

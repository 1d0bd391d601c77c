package rollmap

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// fileSizes returns the total size of a roll's two stream files.
func fileSizes(b *testing.B, dir string) int64 {
	var n int64
	for _, f := range []string{DefectsFile, UninspectedFile} {
		st, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			b.Fatal(err)
		}
		n += st.Size()
	}
	return n
}

// BenchmarkAddFlush measures AddDefects of one batch followed by Flush
// (encode, one write, fsync, roll.json rewrite): the engine's per-second
// work. A new roll is started every 200k defects so memory stays bounded.
func BenchmarkAddFlush(b *testing.B) {
	for _, batch := range []int{100, 1000, 10000} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			s := openStore(b)
			src := makeDefects(batch, 1)
			rolls, written := 0, int64(0)
			var r *Roll
			next := func() {
				if r != nil {
					r.Close()
					written += fileSizes(b, filepath.Join(s.Root(), r.ID()))
				}
				rolls++
				var err error
				if r, err = s.StartRoll(RollMeta{ID: fmt.Sprintf("B%d", rolls)}); err != nil {
					b.Fatal(err)
				}
			}
			next()
			b.ReportAllocs()
			b.ResetTimer()
			added := 0
			for b.Loop() {
				if added >= 200_000 {
					b.StopTimer()
					next()
					added = 0
					b.StartTimer()
				}
				for i := range src { // fresh IDs, so the roll stays in ID order
					src[i].ID = int64(added + i + 1)
				}
				if err := r.AddDefects(src...); err != nil {
					b.Fatal(err)
				}
				if err := r.Flush(); err != nil {
					b.Fatal(err)
				}
				added += batch
			}
			b.StopTimer()
			r.Close()
			written += fileSizes(b, filepath.Join(s.Root(), r.ID()))
			b.SetBytes(written / int64(b.N))
			b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "defects/s")
		})
	}
}

// benchRoll writes a closed roll of n defects in batches of 1000 and
// returns its directory.
func benchRoll(b *testing.B, n int) (string, []Defect) {
	s := openStore(b)
	ds := makeDefects(n, 2)
	r := writeRoll(b, s, "BR", ds, makeUninspected(100, 3), n/1000)
	if err := r.Close(); err != nil {
		b.Fatal(err)
	}
	return filepath.Join(s.Root(), "BR"), ds
}

func BenchmarkReadRoll(b *testing.B) {
	const n = 100_000
	b.Run(fmt.Sprintf("defects=%d", n), func(b *testing.B) {
		dir, _ := benchRoll(b, n)
		if _, ds, _, err := ReadRoll(dir); err != nil || len(ds) != n {
			b.Fatalf("ReadRoll: %d defects, %v", len(ds), err)
		}
		b.SetBytes(fileSizes(b, dir))
		b.ReportAllocs()
		for b.Loop() {
			if _, _, _, err := ReadRoll(dir); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "defects/s")
	})
}

type countWriter struct{ n int64 }

func (w *countWriter) Write(p []byte) (int, error) { w.n += int64(len(p)); return len(p), nil }

func BenchmarkExportCSV(b *testing.B) {
	const n = 100_000
	b.Run(fmt.Sprintf("defects=%d", n), func(b *testing.B) {
		ds := stored("BR", makeDefects(n, 4))
		var cw countWriter
		if err := ExportCSV(&cw, ds); err != nil {
			b.Fatal(err)
		}
		b.SetBytes(cw.n)
		b.ReportAllocs()
		for b.Loop() {
			if err := ExportCSV(io.Discard, ds); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "defects/s")
	})
}

// BenchmarkDefectsOpen measures queries on an open roll of 100k defects:
// the live poll (AfterID near the end) and a class filter over the roll.
func BenchmarkDefectsOpen(b *testing.B) {
	const n = 100_000
	s := openStore(b)
	r := writeRoll(b, s, "BQ", makeDefects(n, 5), nil, 1)
	defer r.Close()
	for _, c := range []struct {
		name string
		q    Query
	}{
		{"query=poll", Query{AfterID: n - 50, Limit: 100}},
		{"query=class", Query{Class: "stain", Limit: 1000}},
		{"query=md-range", Query{MDFromM: 1000, MDToM: 1100}},
	} {
		b.Run(c.name, func(b *testing.B) {
			got, err := s.Defects("BQ", c.q)
			if err != nil || len(got) == 0 {
				b.Fatalf("%d defects, %v", len(got), err)
			}
			b.ReportAllocs()
			for b.Loop() {
				s.Defects("BQ", c.q)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "queries/s")
		})
	}
}

// bench10km is the roll of the query targets: 10 km, 100 000 defects
// (makeDefects' MD positions scaled to end at 10 km), 200 uninspected
// ranges, six lanes of a 2 m web.
func bench10km(b *testing.B, s *Store, id string) *Roll {
	const n, lengthM = 100_000, 10_000.0
	ds := makeDefects(n, 50)
	scale := lengthM / ds[n-1].MDEndM
	for i := range ds {
		ds[i].MDStartM *= scale
		ds[i].MDEndM *= scale
	}
	us := makeUninspected(200, 51)
	for i := range us {
		us[i].MDStartM *= lengthM / 2000
		us[i].MDEndM *= lengthM / 2000
	}
	r, err := s.StartRoll(RollMeta{ID: id, WebWidthMM: 2000, Lanes: EqualLanes(6, 0, 2000)})
	if err != nil {
		b.Fatal(err)
	}
	for lo := 0; lo < n; lo += 10_000 {
		if err := r.AddDefects(ds[lo : lo+10_000]...); err != nil {
			b.Fatal(err)
		}
		if err := r.Flush(); err != nil {
			b.Fatal(err)
		}
	}
	if err := r.AddUninspected(us...); err != nil {
		b.Fatal(err)
	}
	r.SetLength(lengthM)
	if err := r.Flush(); err != nil {
		b.Fatal(err)
	}
	return r
}

// open10km returns, by state, a store holding roll "R" as bench10km:
// "open" is open with the default Options.MemoryDefects (4096 defects in
// memory, the rest read from its file through the Store's cache),
// "open-window" open keeping only 1024 in memory, "open-all" open keeping
// every defect in memory (MemoryDefects 0), "closed" closed (served from
// its file through the cache) and "closed-cold" the same store with the
// cache emptied before every query.
func open10km(b *testing.B) map[string]*Store {
	stores := make(map[string]*Store)
	for _, state := range []string{"open", "open-window", "open-all", "closed"} {
		o := DefaultOptions()
		switch state {
		case "open-window":
			o.MemoryDefects = chunkRows
		case "open-all":
			o.MemoryDefects = 0
		}
		s, err := OpenStoreOptions(filepath.Join(b.TempDir(), "rolls"), o)
		if err != nil {
			b.Fatal(err)
		}
		r := bench10km(b, s, "R")
		if state == "closed" {
			if err := r.Close(); err != nil {
				b.Fatal(err)
			}
		}
		b.Cleanup(func() { s.Close() })
		stores[state] = s
	}
	stores["closed-cold"] = stores["closed"]
	return stores
}

// BenchmarkQuery10km measures Store.Defects on a 10 km roll of 100 000
// defects in each state of open10km. The target is under 50 ms per query
// (ms/query); nothing is asserted.
func BenchmarkQuery10km(b *testing.B) {
	stores := open10km(b)
	for _, state := range []string{"open", "open-window", "open-all", "closed", "closed-cold"} {
		s, cold := stores[state], state == "closed-cold"
		for _, c := range []struct {
			name string
			q    Query
		}{
			{"all", Query{}},
			{"md-range", Query{MDFromM: 5000, MDToM: 5100}},
			{"lane", Query{ByLane: true, Lane: 2}},
			{"lane-md-range", Query{ByLane: true, Lane: 2, MDFromM: 5000, MDToM: 5100}},
			{"class-decision", Query{Class: "hole", Decision: DecisionMark}},
			{"review", Query{ReviewStatus: ReviewNone, Limit: 500}},
			{"poll", Query{AfterID: 99_950, Limit: 100}},
		} {
			b.Run("state="+state+"/query="+c.name, func(b *testing.B) {
				got, err := s.Defects("R", c.q)
				if err != nil || len(got) == 0 {
					b.Fatalf("%d defects, %v", len(got), err)
				}
				b.ReportAllocs()
				for b.Loop() {
					if cold { // read the file every time, as for the first query
						s.cmu.Lock()
						s.cache = nil
						s.cmu.Unlock()
					}
					if _, err := s.Defects("R", c.q); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(b.Elapsed().Seconds()*1e3/float64(b.N), "ms/query")
				b.ReportMetric(float64(len(got)), "defects/query")
			})
		}
	}
}

// BenchmarkDensity10km measures Store.Density over the 10 km roll in 1 m
// and 10 m bins, for all lanes and for one. Target: under 50 ms.
func BenchmarkDensity10km(b *testing.B) {
	stores := open10km(b)
	for _, state := range []string{"open", "open-window", "closed"} {
		s, id := stores[state], "R"
		for _, bin := range []float64{1, 10} {
			for _, lane := range []int{AllLanes, 2} {
				name := fmt.Sprintf("state=%s/bin=%gm/lane=%d", state, bin, lane)
				if lane == AllLanes {
					name = fmt.Sprintf("state=%s/bin=%gm/lane=all", state, bin)
				}
				b.Run(name, func(b *testing.B) {
					bins, err := s.Density(id, bin, lane)
					if err != nil || len(bins) < int(10_000/bin) {
						b.Fatalf("%d bins, %v", len(bins), err)
					}
					b.ReportAllocs()
					for b.Loop() {
						if _, err := s.Density(id, bin, lane); err != nil {
							b.Fatal(err)
						}
					}
					b.ReportMetric(b.Elapsed().Seconds()*1e3/float64(b.N), "ms/query")
				})
			}
		}
	}
}

func BenchmarkExportParquet(b *testing.B) {
	const n = 100_000
	b.Run(fmt.Sprintf("defects=%d", n), func(b *testing.B) {
		ds := stored("BR", makeDefects(n, 4))
		var cw countWriter
		if err := ExportParquet(&cw, ds); err != nil {
			b.Fatal(err)
		}
		b.SetBytes(cw.n)
		b.ReportAllocs()
		for b.Loop() {
			if err := ExportParquet(io.Discard, ds); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "defects/s")
	})
}

// BenchmarkDefectsMarks measures queries that merge mark events, on a roll
// of 100k defects of which about a third are marked (about 70k events),
// open (events in memory) and closed (events read from marks.arrows).
func BenchmarkDefectsMarks(b *testing.B) {
	const n = 100_000
	s := openStore(b)
	ds := makeDefects(n, 6)
	evs, _ := makeMarkEvents(ds, 7)
	r := writeRoll(b, s, "BM", ds, nil, 1)
	if err := r.AddMarkEvents(evs...); err != nil {
		b.Fatal(err)
	}
	for _, state := range []string{"open", "closed"} {
		if state == "closed" {
			if err := r.Close(); err != nil {
				b.Fatal(err)
			}
		}
		for _, c := range []struct {
			name string
			q    Query
		}{
			{"query=poll", Query{AfterID: n - 50, Limit: 100}},
			{"query=missed", Query{MarkStatus: MarkMissed}},
			{"query=all", Query{}},
		} {
			b.Run("state="+state+"/"+c.name, func(b *testing.B) {
				got, err := s.Defects("BM", c.q)
				if err != nil || len(got) == 0 {
					b.Fatalf("%d defects, %v", len(got), err)
				}
				b.ReportAllocs()
				for b.Loop() {
					s.Defects("BM", c.q)
				}
				b.ReportMetric(b.Elapsed().Seconds()*1e3/float64(b.N), "ms/query")
				b.ReportMetric(float64(len(got)), "defects/query")
			})
		}
	}
}

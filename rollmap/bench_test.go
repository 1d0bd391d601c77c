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

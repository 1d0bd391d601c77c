package rollmap

import (
	"math"
	"os"
	"path/filepath"
	"testing"
)

// FuzzReadRollJSON reads a roll directory whose roll.json is the fuzzer's
// bytes (the seeds are real ones): ReadRoll, List and Recover never panic,
// and a roll.json they accept has a valid ID and finite, non-negative
// length and counts.
func FuzzReadRollJSON(f *testing.F) {
	src := f.TempDir()
	s, err := OpenStore(src)
	if err != nil {
		f.Fatal(err)
	}
	r, err := s.StartRoll(RollMeta{ID: "M", Recipe: "fabric-default", WebWidthMM: 2000, Lanes: EqualLanes(2, 0, 2000)})
	if err != nil {
		f.Fatal(err)
	}
	if err := r.AddDefects(reviewDefects(3)...); err != nil {
		f.Fatal(err)
	}
	if err := r.AddSplice(1, "joint", r.Info().Started); err != nil {
		f.Fatal(err)
	}
	r.SetLength(12)
	if err := r.Flush(); err != nil {
		f.Fatal(err)
	}
	open, _ := os.ReadFile(filepath.Join(src, "M", MetaFile))
	if err := r.Close(); err != nil {
		f.Fatal(err)
	}
	s.Unlock()
	closed, _ := os.ReadFile(filepath.Join(src, "M", MetaFile))
	f.Add(open)
	f.Add(closed)
	f.Add([]byte(`{"format_version":"1","id":"M","length_m":-1,"defects":1e30}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		root := t.TempDir()
		if err := os.CopyFS(filepath.Join(root, "M"), os.DirFS(filepath.Join(src, "M"))); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, "M", MetaFile), data, 0o644); err != nil {
			t.Fatal(err)
		}
		meta, _, _, err := ReadRoll(filepath.Join(root, "M"))
		if err == nil {
			if meta.LengthM < 0 || math.IsNaN(meta.LengthM) || math.IsInf(meta.LengthM, 0) {
				t.Logf("accepted length %v", meta.LengthM)
			}
		}
		st, err := OpenStore(root)
		if err != nil {
			t.Fatal(err)
		}
		infos, _ := st.List()
		for _, in := range infos {
			if ValidRollID(in.ID) != nil {
				t.Fatalf("List returned roll ID %q", in.ID)
			}
		}
		st.Recover()
	})
}

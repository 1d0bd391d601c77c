package rollmap

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// reviewDefects returns n defects without stored review fields.
func reviewDefects(n int) []Defect {
	ds := makeDefects(n, 77)
	for i := range ds {
		ds[i].ReviewStatus, ds[i].ReviewLabel = "", ""
	}
	return ds
}

func mustReview(t *testing.T, s *Store, id string, rv Review) Defect {
	t.Helper()
	d, err := s.AddReview(id, rv)
	if err != nil {
		t.Fatalf("AddReview(%s, %+v): %v", id, rv, err)
	}
	return d
}

// statuses returns the review status and label of every defect of roll id
// read through s.
func statuses(t *testing.T, s *Store, id string) map[int64][2]string {
	t.Helper()
	ds, err := s.Defects(id, Query{})
	if err != nil {
		t.Fatal(err)
	}
	m := map[int64][2]string{}
	for _, d := range ds {
		if d.ReviewStatus != "" {
			m[d.ID] = [2]string{d.ReviewStatus, d.ReviewLabel}
		}
	}
	return m
}

func TestReviewOpenAndClosedRoll(t *testing.T) {
	root := t.TempDir()
	s, err := OpenStore(root)
	if err != nil {
		t.Fatal(err)
	}
	ds := reviewDefects(50)
	r := writeRoll(t, s, "R", ds, nil, 2)

	when := time.Date(2026, 11, 27, 9, 0, 0, 123456789, tokyo)
	d := mustReview(t, s, "R", Review{DefectID: 3, Action: ActionConfirm, Reviewer: "anna", Time: when})
	if d.ID != 3 || d.ReviewStatus != ReviewConfirmed || d.ReviewLabel != ds[2].Class {
		t.Errorf("confirm: defect %d %q %q, want 3 confirmed %q", d.ID, d.ReviewStatus, d.ReviewLabel, ds[2].Class)
	}
	mustReview(t, s, "R", Review{DefectID: 4, Action: ActionFalseAlarm, Reviewer: "anna"})
	mustReview(t, s, "R", Review{DefectID: 5, Action: ActionReclassify, Label: "knot", Reviewer: "bo"})
	// The newest review wins; the history is kept.
	mustReview(t, s, "R", Review{DefectID: 4, Action: ActionReclassify, Label: "slub", Reviewer: "bo"})

	want := map[int64][2]string{3: {ReviewConfirmed, ds[2].Class}, 4: {ReviewReclassified, "slub"}, 5: {ReviewReclassified, "knot"}}
	if got := statuses(t, s, "R"); !reflect.DeepEqual(got, want) {
		t.Errorf("open roll: reviews %v, want %v", got, want)
	}
	// Filters see the reviews.
	got, err := s.Defects("R", Query{ReviewStatus: ReviewReclassified})
	if err != nil || len(got) != 2 || got[0].ID != 4 || got[1].ID != 5 {
		t.Errorf("ReviewStatus reclassified: %d defects, %v", len(got), err)
	}
	got, _ = s.Defects("R", Query{ReviewStatus: ReviewNone, Limit: 5})
	if ids := defectIDs(got); !slices.Equal(ids, []int64{1, 2, 6, 7, 8}) {
		t.Errorf("ReviewStatus none, limit 5: %v", ids)
	}

	// Close: summary.json is not touched by later reviews.
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	sumPath := filepath.Join(root, "R", SummaryFile)
	sum0, err := os.ReadFile(sumPath)
	if err != nil {
		t.Fatal(err)
	}
	mustReview(t, s, "R", Review{DefectID: 50, Action: ActionFalseAlarm, Label: "lint", Reviewer: "carl"})
	want[50] = [2]string{ReviewFalseAlarm, "lint"}
	if got := statuses(t, s, "R"); !reflect.DeepEqual(got, want) {
		t.Errorf("closed roll: reviews %v, want %v", got, want)
	}
	if sum1, _ := os.ReadFile(sumPath); string(sum1) != string(sum0) {
		t.Error("summary.json rewritten by a review")
	}

	// Another store (a restarted process) and ReadRoll see the same.
	s2, err := OpenStore(root)
	if err != nil {
		t.Fatal(err)
	}
	if got := statuses(t, s2, "R"); !reflect.DeepEqual(got, want) {
		t.Errorf("new store: reviews %v, want %v", got, want)
	}
	_, rds, _, err := ReadRoll(filepath.Join(root, "R"))
	if err != nil || rds[3].ReviewStatus != ReviewReclassified || rds[3].ReviewLabel != "slub" {
		t.Errorf("ReadRoll: defect 4 %q %q, %v", rds[3].ReviewStatus, rds[3].ReviewLabel, err)
	}
	// A review through the first store is seen by the second (the file grew).
	mustReview(t, s, "R", Review{DefectID: 1, Action: ActionConfirm, Reviewer: "anna"})
	if st := statuses(t, s2, "R")[1]; st[0] != ReviewConfirmed {
		t.Errorf("second store after a review by the first: defect 1 %v", st)
	}

	hist, err := s2.Reviews("R")
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 6 {
		t.Fatalf("history: %d reviews, want 6", len(hist))
	}
	first := Review{RollID: "R", DefectID: 3, Action: ActionConfirm, Label: ds[2].Class, Reviewer: "anna",
		Time: when.UTC().Truncate(time.Microsecond)}
	if hist[0] != first {
		t.Errorf("first review read back %+v, want %+v", hist[0], first)
	}
	if hist[1].DefectID != 4 || hist[3].DefectID != 4 || hist[3].Label != "slub" || hist[3].Time.Location() != time.UTC {
		t.Errorf("history order: %+v", hist)
	}
	fromDir, err := ReadReviews(filepath.Join(root, "R"))
	if err != nil || !reflect.DeepEqual(fromDir, hist) {
		t.Errorf("ReadReviews: %d reviews, %v", len(fromDir), err)
	}
}

func defectIDs(ds []Defect) []int64 {
	ids := make([]int64, len(ds))
	for i, d := range ds {
		ids[i] = d.ID
	}
	return ids
}

func TestReviewInvalid(t *testing.T) {
	s, err := OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ds := reviewDefects(5)
	r := writeRoll(t, s, "R", ds, nil, 1)
	defer r.Close()
	long := string(make([]byte, 65))
	for _, c := range []struct {
		id   string
		rv   Review
		want error
		msg  string
	}{
		{"R", Review{DefectID: 1, Action: "approve", Reviewer: "a"}, ErrInvalid, `action "approve"`},
		{"R", Review{DefectID: 1, Action: ActionReclassify, Reviewer: "a"}, ErrInvalid, "label is empty"},
		{"R", Review{DefectID: 1, Action: ActionConfirm}, ErrInvalid, "reviewer is empty"},
		{"R", Review{DefectID: 1, Action: ActionConfirm, Reviewer: "a\nb"}, ErrInvalid, "control character"},
		{"R", Review{DefectID: 1, Action: ActionConfirm, Reviewer: long}, ErrInvalid, "65 bytes"},
		{"R", Review{DefectID: 1, Action: ActionReclassify, Label: "\xff", Reviewer: "a"}, ErrInvalid, "UTF-8"},
		{"R", Review{DefectID: 0, Action: ActionConfirm, Reviewer: "a"}, ErrInvalid, "defect ID 0"},
		{"R", Review{DefectID: 1, Action: ActionConfirm, Label: "not-its-class", Reviewer: "a"}, ErrInvalid, "use reclassify"},
		{"R", Review{DefectID: 6, Action: ActionConfirm, Reviewer: "a"}, ErrNoDefect, "no defect 6"},
		{"Q", Review{DefectID: 1, Action: ActionConfirm, Reviewer: "a"}, ErrNotFound, ""},
		{"../R", Review{DefectID: 1, Action: ActionConfirm, Reviewer: "a"}, ErrBadRollID, ""},
	} {
		_, err := s.AddReview(c.id, c.rv)
		if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("AddReview(%q, %+v): %v, want %v containing %q", c.id, c.rv, err, c.want, c.msg)
		}
	}
	if revs, err := s.Reviews("R"); err != nil || len(revs) != 0 {
		t.Errorf("after refused reviews: %d reviews, %v", len(revs), err)
	}
	if _, err := os.Stat(filepath.Join(s.Root(), "R", ReviewsFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("refused reviews created %s: %v", ReviewsFile, err)
	}
}

// TestReviewTorn: a crash in the middle of a review's write leaves a
// partial batch; readers ignore it (it was never acknowledged) and the next
// review cuts it off. Damage elsewhere is repaired, keeping the damaged
// file.
func TestReviewTorn(t *testing.T) {
	src := t.TempDir()
	s, err := OpenStore(src)
	if err != nil {
		t.Fatal(err)
	}
	r := writeRoll(t, s, "R", reviewDefects(20), nil, 1)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	for i := int64(1); i <= 3; i++ {
		mustReview(t, s, "R", Review{DefectID: i, Action: ActionFalseAlarm, Reviewer: "a"})
	}
	path := filepath.Join(src, "R", ReviewsFile)
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sc := scanStream(bytesReaderAt(orig), int64(len(orig)))
	if sc.err != nil || sc.batches != 3 {
		t.Fatalf("reviews file: %d batches, %v", sc.batches, sc.err)
	}
	// The third review's batch torn at several points: two reviews remain.
	third := sc.batchEnd - (sc.batchEnd-sc.schemaEnd)/3
	for _, cut := range []int64{int64(len(orig)) - 1, third + 5, third + 12} {
		t.Run(fmt.Sprintf("cut=%d", cut), func(t *testing.T) {
			root := t.TempDir()
			if err := os.CopyFS(root, os.DirFS(src)); err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(root, "R", ReviewsFile)
			if err := os.WriteFile(p, orig[:cut], 0o644); err != nil {
				t.Fatal(err)
			}
			s2, err := OpenStore(root)
			if err != nil {
				t.Fatal(err)
			}
			revs, err := s2.Reviews("R")
			if err != nil || len(revs) != 2 {
				t.Fatalf("torn: %d reviews, %v; want 2 and no error", len(revs), err)
			}
			if _, err := s2.Defects("R", Query{}); err != nil {
				t.Fatalf("torn: Defects: %v", err)
			}
			mustReview(t, s2, "R", Review{DefectID: 9, Action: ActionConfirm, Reviewer: "b"})
			got, err := ReadReviews(filepath.Join(root, "R"))
			if err != nil || len(got) != 3 || got[2].DefectID != 9 {
				t.Fatalf("after a review past the torn tail: %d reviews, %v", len(got), err)
			}
			b, _ := os.ReadFile(p)
			if sc := scanStream(bytesReaderAt(b), int64(len(b))); sc.err != nil || sc.batches != 3 {
				t.Errorf("file after repair: %d batches, %v", sc.batches, sc.err)
			}
		})
	}
	t.Run("corrupt", func(t *testing.T) {
		root := t.TempDir()
		if err := os.CopyFS(root, os.DirFS(src)); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(root, "R", ReviewsFile)
		bad := slices.Clone(orig)
		bad[third] ^= 0xff // the third batch's continuation marker
		if err := os.WriteFile(p, bad, 0o644); err != nil {
			t.Fatal(err)
		}
		s2, err := OpenStore(root)
		if err != nil {
			t.Fatal(err)
		}
		revs, err := s2.Reviews("R")
		if !errors.Is(err, ErrCorrupt) || len(revs) != 2 {
			t.Fatalf("corrupt: %d reviews, %v; want 2 and ErrCorrupt", len(revs), err)
		}
		mustReview(t, s2, "R", Review{DefectID: 9, Action: ActionConfirm, Reviewer: "b"})
		got, err := s2.Reviews("R")
		if err != nil || len(got) != 3 {
			t.Fatalf("after repair: %d reviews, %v", len(got), err)
		}
		kept, _ := filepath.Glob(p + ".damaged-*")
		if len(kept) != 1 {
			t.Errorf("damaged file kept: %v", kept)
		}
	})
}

func TestReviewConcurrent(t *testing.T) {
	s, err := OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	r := writeRoll(t, s, "R", reviewDefects(200), nil, 1)
	defer r.Close()
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for i := range 10 {
				mustReview(t, s, "R", Review{DefectID: int64(g*10 + i + 1), Action: ActionReclassify,
					Label: fmt.Sprintf("c%d", g), Reviewer: fmt.Sprintf("r%d", g)})
			}
		}()
		go func() { // readers meanwhile
			defer wg.Done()
			for range 10 {
				if _, err := s.Defects("R", Query{ReviewStatus: ReviewReclassified}); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	got, err := s.Defects("R", Query{ReviewStatus: ReviewReclassified})
	if err != nil || len(got) != 40 {
		t.Fatalf("%d reclassified defects, %v; want 40", len(got), err)
	}
	for _, d := range got {
		if want := fmt.Sprintf("c%d", (d.ID-1)/10); d.ReviewLabel != want {
			t.Errorf("defect %d label %q, want %q", d.ID, d.ReviewLabel, want)
		}
	}
}

// TestEachDefect: EachDefect visits exactly what Defects returns, on an
// open roll whose older rows left memory and on the closed roll.
func TestEachDefect(t *testing.T) {
	o := DefaultOptions()
	o.MemoryDefects = chunkRows
	s, err := OpenStoreOptions(t.TempDir(), o)
	if err != nil {
		t.Fatal(err)
	}
	ds := makeDefects(5000, 9)
	r := writeRoll(t, s, "E", ds, nil, 5)
	evs, _ := makeMarkEvents(ds, 10)
	if err := r.AddMarkEvents(evs...); err != nil {
		t.Fatal(err)
	}
	for id := int64(1); id < 5000; id += 97 {
		mustReview(t, s, "E", Review{DefectID: id, Action: ActionReclassify, Label: "x", Reviewer: "r"})
	}
	check := func(state string) {
		for _, q := range []Query{{}, {Class: "hole"}, {ReviewStatus: ReviewReclassified}, {ReviewStatus: ReviewNone, AfterID: 2500},
			{MarkStatus: MarkFired}, {MDFromM: 100, MDToM: 300, Limit: 40}, {Decision: DecisionMark, ByLane: true, Lane: 2}} {
			want, err := s.Defects("E", q)
			if err != nil {
				t.Fatal(err)
			}
			var got []Defect
			if err := s.EachDefect("E", q, func(d *Defect) bool { got = append(got, *d); return true }); err != nil {
				t.Fatal(err)
			}
			if len(want) == 0 || !reflect.DeepEqual(got, want) {
				t.Errorf("%s, %+v: EachDefect gave %d defects, Defects %d", state, q, len(got), len(want))
			}
		}
		n := 0
		s.EachDefect("E", Query{}, func(*Defect) bool { n++; return n < 10 })
		if n != 10 {
			t.Errorf("%s: fn returned false at 10, visited %d", state, n)
		}
	}
	check("open")
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	check("closed")
	if err := s.EachDefect("nope", Query{}, func(*Defect) bool { return true }); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown roll: %v", err)
	}
}

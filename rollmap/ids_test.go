package rollmap

import (
	"testing"
	"time"
)

// TestIDsAreNeverReissuedAfterACrash: defects handed out (to the live feed,
// a marker, a reviewer) but never flushed are lost with a killed writer;
// their IDs must not be given to other defects when the roll is resumed,
// and a review of a fresh defect must find that very defect after the
// restart.
func TestIDsAreNeverReissuedAfterACrash(t *testing.T) {
	root := t.TempDir()
	o := DefaultOptions()
	o.FlushInterval = time.Hour // only explicit flushes
	s, err := OpenStoreOptions(root, o)
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.StartRoll(RollMeta{ID: "C", WebWidthMM: 1000})
	if err != nil {
		t.Fatal(err)
	}
	ds := makeDefects(20, 5)
	for i := range ds {
		ds[i].ID = 0
	}
	if err := r.AddDefects(ds[:10]...); err != nil {
		t.Fatal(err)
	}
	if err := r.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := r.AddDefects(ds[10:]...); err != nil { // IDs 11..20, not flushed
		t.Fatal(err)
	}
	// Defect 15 is fresh from the live feed: a reviewer confirms it.
	fresh, err := s.Defects("C", Query{AfterID: 14, Limit: 1})
	if err != nil || len(fresh) != 1 || fresh[0].ID != 15 {
		t.Fatalf("defect 15: %+v %v", fresh, err)
	}
	if _, err := s.AddReview("C", Review{DefectID: 15, Action: ActionConfirm, Reviewer: "anna"}); err != nil {
		t.Fatal(err)
	}
	if err := r.AddDefects(ds[0]); err != nil { // ID 21: handed out, never flushed
		t.Fatal(err)
	}
	r.abandon() // kill -9
	s.dies()

	s2, err := OpenStoreOptions(root, o)
	if err != nil {
		t.Fatal(err)
	}
	r2, rr, err := s2.ResumeRoll("C", 1)
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	if rr.MaxDefectID < 21 {
		t.Fatalf("resumed MaxDefectID %d: below ID 21, which was handed out before the crash", rr.MaxDefectID)
	}
	// The reviewed defect is on disk, unchanged, with its review.
	got, err := s2.Defects("C", Query{AfterID: 14, Limit: 1})
	if err != nil || len(got) != 1 || got[0].ID != 15 || got[0].MDStartM != fresh[0].MDStartM || got[0].Class != fresh[0].Class {
		t.Fatalf("after the restart defect 15 is %+v (%v), was %+v", got, err, fresh[0])
	}
	if got[0].ReviewStatus != "confirmed" || got[0].ReviewLabel != fresh[0].Class {
		t.Errorf("defect 15's review after the restart: %q %q", got[0].ReviewStatus, got[0].ReviewLabel)
	}
	// New defects get IDs no earlier process could have used.
	more := makeDefects(3, 6)
	for i := range more {
		more[i].ID = 0
	}
	if err := r2.AddDefects(more...); err != nil {
		t.Fatal(err)
	}
	all, err := s2.Defects("C", Query{})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int64]bool{}
	for i, d := range all {
		if seen[d.ID] || i > 0 && d.ID <= all[i-1].ID {
			t.Fatalf("IDs after the restart: %d after %d", d.ID, all[i-1].ID)
		}
		seen[d.ID] = true
	}
	if last := all[len(all)-1]; last.ID <= 21 {
		t.Errorf("a defect added after the restart has ID %d, which the crashed writer may have handed out", last.ID)
	}
}

package rollmap

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// image_error was added after the first release: a defects.arrows written
// without it reads (image_error ""), and resuming such a roll rewrites the
// stream in today's schema, keeping every row, without calling it damage
// (issue 15 #3).
func TestImageErrorColumnAddedLater(t *testing.T) {
	root := t.TempDir()
	crashedRoll(t, root, 20)
	dir := filepath.Join(root, "C")
	_, ds, _, err := ReadRoll(dir)
	if err != nil {
		t.Fatal(err)
	}
	// Write the defects back as a writer before the column did.
	var before []column[Defect]
	for _, c := range defectColumns {
		if !c.optional {
			before = append(before, c)
		}
	}
	// image_error, recipe_version, model_version and the four of the
	// learned class, model_score, model_mean_score, model_area_mm2 and
	// web_edge_mm (the oldest writer had none).
	if len(before) != len(defectColumns)-11 {
		t.Fatalf("want eleven columns added later, have %d", len(defectColumns)-len(before))
	}
	for i := range ds {
		ds[i].RecipeVersion, ds[i].ModelVersion = "", "" // the old writer had none
		ds[i].ModelScore, ds[i].ModelMeanScore, ds[i].ModelAreaMM2 = 0, 0, 0
		ds[i].WebEdgeMM = 0
	}
	oldSchema := schemaOf(before)
	hdr, err := schemaMessage(oldSchema)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, DefectsFile)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	w, err := createStream(path, oldSchema, hdr)
	if err != nil {
		t.Fatal(err)
	}
	b := newBuilder(nil, before, oldSchema)
	b.append(ds)
	rec := b.rb.NewRecordBatch()
	if err := writeBatch(w, rec); err != nil {
		t.Fatal(err)
	}
	rec.Release()
	b.rb.Release()
	if err := w.sync(); err != nil {
		t.Fatal(err)
	}
	w.f.Close()

	_, got, _, err := ReadRoll(dir)
	if err != nil {
		t.Fatalf("a stream without image_error does not read: %v", err)
	}
	equalRows(t, "defects without image_error", got, ds)

	s, err := OpenStore(root)
	if err != nil {
		t.Fatal(err)
	}
	r, rr, err := s.ResumeRoll("C", 520)
	if err != nil || rr.Damage != nil {
		t.Fatalf("resume: %v, damage %v; want a clean upgrade", err, rr.Damage)
	}
	if old, _ := filepath.Glob(path + ".old-*"); len(old) != 1 {
		t.Errorf("the stream before the column was kept as %v, want one .old- file", old)
	}
	d := ds[0]
	d.ID, d.ImageRef, d.ImageError = 0, "", "disk_full"
	d.RecipeVersion, d.ModelVersion = "aaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbb"
	if err := r.AddDefects(d); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	_, got, _, err = ReadRoll(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(ds)+1 {
		t.Fatalf("%d defects after resume, want %d", len(got), len(ds)+1)
	}
	equalRows(t, "defects after resume", got[:len(ds)], ds)
	if last := got[len(got)-1]; last.ImageError != "disk_full" || last.RecipeVersion != d.RecipeVersion || last.ModelVersion != d.ModelVersion {
		t.Errorf("after the upgrade image_error reads %q, versions %q, %q; want disk_full and %q, %q",
			last.ImageError, last.RecipeVersion, last.ModelVersion, d.RecipeVersion, d.ModelVersion)
	}
	// A column missing that is not optional is still corrupt.
	nb := newBuilder(nil, before[1:], schemaOf(before[1:]))
	defer nb.rb.Release()
	nb.append(ds[:1])
	bad := nb.rb.NewRecordBatch()
	defer bad.Release()
	if _, err := AppendDefects(nil, bad); !errors.Is(err, ErrCorrupt) {
		t.Errorf("a batch without roll_id: %v, want ErrCorrupt", err)
	}
}

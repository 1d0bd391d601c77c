package rollmap

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// TestDefectsBeforeVersionColumns: a version-2 defects stream written
// before recipe_version and model_version existed reads with both empty,
// and resuming its roll rewrites it in the current schema (the old file
// kept as NAME.old-UNIXNANO) without calling it damage.
func TestDefectsBeforeVersionColumns(t *testing.T) {
	root := t.TempDir()
	s, err := OpenStore(root)
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.StartRoll(RollMeta{ID: "R-old", Recipe: "fabric"})
	if err != nil {
		t.Fatal(err)
	}
	id := r.ID()
	// The writer stops without closing (as a killed engine would).
	if err := r.Flush(); err != nil {
		t.Fatal(err)
	}
	r.abandon()
	s.dies()
	// Replace defects.arrows by one written with the schema of before.
	var oldCols []column[Defect]
	for _, c := range defectColumns {
		if !c.optional {
			oldCols = append(oldCols, c)
		}
	}
	if len(oldCols) != len(defectColumns)-3 {
		t.Fatalf("%d old columns of %d", len(oldCols), len(defectColumns))
	}
	oldSchema := schemaOf(oldCols)
	hdr, err := schemaMessage(oldSchema)
	if err != nil {
		t.Fatal(err)
	}
	ds := makeDefects(5, 3)
	for i := range ds {
		ds[i].RollID = id
		ds[i].ReviewStatus, ds[i].ReviewLabel = "", ""
	}
	path := filepath.Join(root, id, DefectsFile)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	w, err := createStream(path, oldSchema, hdr)
	if err != nil {
		t.Fatal(err)
	}
	b := newBuilder(nil, oldCols, oldSchema)
	b.append(ds)
	if err := writeBatch(w, b.rb.NewRecordBatch()); err != nil {
		t.Fatal(err)
	}
	if err := w.sync(); err != nil {
		t.Fatal(err)
	}
	w.close()

	want := stored(id, ds)
	for i := range want {
		want[i].RecipeVersion, want[i].ModelVersion, want[i].ImageError = "", "", ""
	}
	_, got, _, err := ReadRoll(filepath.Join(root, id))
	if err != nil {
		t.Fatalf("read old schema: %v", err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("old schema read back differs:\n got %+v\nwant %+v", got[0], want[0])
	}

	s2, err := OpenStore(root)
	if err != nil {
		t.Fatal(err)
	}
	r2, rep, err := s2.ResumeRoll(id, 1)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Damage != nil {
		t.Errorf("resume called an older schema damage: %v", rep.Damage)
	}
	add := Defect{RollID: id, ID: 99, MDStartM: 2, MDEndM: 2.01, Class: "hole", Decision: DecisionMark,
		Detector: DetectorThreshold, RecipeVersion: "aaaaaaaaaaaaaaaa", ModelVersion: "bbbbbbbbbbbbbbbb", Time: ds[0].Time}
	if err := r2.AddDefects(add); err != nil {
		t.Fatal(err)
	}
	if err := r2.Close(); err != nil {
		t.Fatal(err)
	}
	if old, _ := filepath.Glob(path + ".old-*"); len(old) != 1 {
		t.Errorf("old-schema file kept as %v, want one NAME.old-*", old)
	}
	_, got, _, err = ReadRoll(filepath.Join(root, id))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(ds)+1 || !reflect.DeepEqual(got[:len(ds)], want) {
		t.Fatalf("after resume: %d defects, old ones changed: %v", len(got), !reflect.DeepEqual(got[:min(len(got), len(ds))], want))
	}
	if l := got[len(ds)]; l.RecipeVersion != add.RecipeVersion || l.ModelVersion != add.ModelVersion {
		t.Errorf("new defect versions = %q, %q", l.RecipeVersion, l.ModelVersion)
	}
}

package rollmap

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/parquet/file"
)

// A roll's production context is on disk in roll.json as soon as
// SetContext returns, with who set it and when; it can be changed after
// the roll is closed; bad text is refused naming the field; the closed
// roll's Parquet files carry it in their key-value metadata.
func TestRollContext(t *testing.T) {
	s := openStore(t)
	c1 := RollContext{Product: "PET-23µ", Lot: "L-2026-118", Supplier: "Acme Resins", Shift: "B", Operator: "jdoe", Order: "PO-77"}
	r, err := s.StartRoll(RollMeta{ID: "C1", WebWidthMM: 1000, Context: c1})
	if err != nil {
		t.Fatal(err)
	}
	t1 := time.Date(2026, 12, 2, 6, 0, 0, 0, time.UTC)
	if err := s.SetContext("C1", c1, "jdoe", t1); err != nil {
		t.Fatal(err)
	}
	m, err := readMetaFile(r.dir) // no Flush: SetContext made it durable
	if err != nil || m.Context != c1 || len(m.ContextHistory) != 1 || m.ContextHistory[0].By != "jdoe" || !m.ContextHistory[0].Time.Equal(t1) {
		t.Fatalf("roll.json after SetContext: %+v %+v, %v", m.Context, m.ContextHistory, err)
	}
	for _, bad := range []struct {
		c     RollContext
		by    string
		field string
	}{
		{RollContext{Lot: strings.Repeat("x", 65)}, "a", "lot"},
		{RollContext{Supplier: "a\nb"}, "a", "supplier"},
		{RollContext{Operator: "\u202egnp.exe"}, "a", "operator"},
		{RollContext{}, "x\x00", "by"},
	} {
		err := s.SetContext("C1", bad.c, bad.by, t1)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), bad.field) {
			t.Errorf("SetContext(%+v, %q) = %v, want ErrInvalid naming %s", bad.c, bad.by, err, bad.field)
		}
	}
	if _, err := s.StartRoll(RollMeta{ID: "C2", Context: RollContext{Shift: "\x1b[31m"}}); !errors.Is(err, ErrInvalid) {
		t.Errorf("StartRoll with a control character in the shift = %v, want ErrInvalid", err)
	}
	if err := s.SetContext("nope", c1, "a", t1); !errors.Is(err, ErrNotFound) {
		t.Errorf("SetContext on an unknown roll = %v, want ErrNotFound", err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	pf, err := file.OpenParquetFile(filepath.Join(r.dir, DefectsParquetFile), false)
	if err != nil {
		t.Fatal(err)
	}
	kv := pf.MetaData().KeyValueMetadata().FindValue(ContextMetadataKey)
	pf.Close()
	var got struct {
		RollID  string      `json:"roll_id"`
		Context RollContext `json:"context"`
	}
	if kv == nil || json.Unmarshal([]byte(*kv), &got) != nil || got.RollID != "C1" || got.Context != c1 {
		t.Fatalf("defects.parquet %s metadata = %v, want roll C1 with %+v", ContextMetadataKey, kv, c1)
	}

	c2 := c1
	c2.Lot = "L-2026-119" // the lot was mislabelled: corrected after the roll closed
	t2 := t1.Add(3 * time.Hour)
	if err := s.SetContext("C1", c2, "qa-lead", t2); err != nil {
		t.Fatal(err)
	}
	info, err := s.Roll("C1")
	if err != nil || info.Context != c2 || len(info.ContextHistory) != 2 || info.ContextHistory[1].By != "qa-lead" ||
		info.ContextHistory[0].Context != c1 || !info.ContextHistory[1].Time.Equal(t2) || info.Open {
		t.Fatalf("closed roll after a change: %+v, history %+v, %v", info.Context, info.ContextHistory, err)
	}
	var buf bytes.Buffer
	if err := ExportParquetRoll(&buf, RollMeta{ID: "C1", Context: c2}, nil); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(buf.Bytes(), []byte("L-2026-119")) {
		t.Error("ExportParquetRoll: the context is not in the file")
	}
	// The history stays bounded, keeping the first and the newest.
	for i := range MaxContextHistory + 5 {
		if err := s.SetContext("C1", RollContext{Shift: string(rune('A' + i%26))}, "x", t2.Add(time.Duration(i)*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	info, _ = s.Roll("C1")
	if n := len(info.ContextHistory); n != MaxContextHistory || info.ContextHistory[0].Context != c1 || info.ContextHistory[n-1].Context != info.Context {
		t.Errorf("history of %d changes: first %+v, last %+v", n, info.ContextHistory[0].Context, info.ContextHistory[n-1].Context)
	}
	if _, err := os.Stat(filepath.Join(r.dir, MetaFile+".tmp")); err == nil {
		t.Error("roll.json.tmp left behind")
	}
}

package rollmap

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// readParquet reads a Parquet file with arrow-go's reader (not our code)
// and converts its rows with appendRows, which checks every column's name
// and exact Arrow type. It also checks the file's compression and row count.
func readParquet[T any](t *testing.T, b []byte, cols []column[T], schema *arrow.Schema) []T {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)

	pf, err := file.NewParquetReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("parquet reader: %v", err)
	}
	md := pf.MetaData()
	if md.KeyValueMetadata().FindValue("ARROW:schema") == nil {
		t.Error("no ARROW:schema in the file metadata")
	}
	if v := md.KeyValueMetadata().FindValue(VersionKey); v == nil || *v != FormatVersion {
		t.Errorf("file metadata %s = %v, want %q", VersionKey, v, FormatVersion)
	}
	for g := range md.NumRowGroups() {
		rg := md.RowGroup(g)
		for c := range len(cols) {
			cc, err := rg.ColumnChunk(c)
			if err != nil {
				t.Fatal(err)
			}
			if cc.Compression() != compress.Codecs.Zstd {
				t.Fatalf("row group %d column %d compression %v, want zstd", g, c, cc.Compression())
			}
		}
	}
	rows := pf.NumRows()
	pf.Close()

	tbl, err := pqarrow.ReadTable(context.Background(), bytes.NewReader(b), parquet.NewReaderProperties(mem),
		pqarrow.ArrowReadProperties{}, mem)
	if err != nil {
		t.Fatalf("pqarrow.ReadTable: %v", err)
	}
	defer tbl.Release()
	if tbl.NumRows() != rows {
		t.Fatalf("table has %d rows, file metadata says %d", tbl.NumRows(), rows)
	}
	for i, f := range schema.Fields() {
		got := tbl.Schema().Field(i)
		if got.Name != f.Name || !arrow.TypeEqual(got.Type, f.Type) {
			t.Fatalf("field %d = %s %s, want %s %s", i, got.Name, got.Type, f.Name, f.Type)
		}
		if u, ok := f.Metadata.GetValue(unitKey); ok {
			if gu, _ := got.Metadata.GetValue(unitKey); gu != u {
				t.Errorf("field %s unit %q, want %q", f.Name, gu, u)
			}
		}
	}
	tr := array.NewTableReader(tbl, 5000)
	defer tr.Release()
	var out []T
	for tr.Next() {
		if out, err = appendRows(out, cols, tr.RecordBatch()); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func TestExportParquet(t *testing.T) {
	for _, n := range []int{0, 1, parquetBatchRows + 1234} {
		ds := stored("PQ", makeDefects(n, 40))
		var buf bytes.Buffer
		if err := ExportParquet(&buf, ds); err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(buf.Bytes(), []byte("PAR1")) || !bytes.HasSuffix(buf.Bytes(), []byte("PAR1")) {
			t.Fatalf("n=%d: output is not framed by PAR1", n)
		}
		equalRows(t, "parquet defects", readParquet(t, buf.Bytes(), defectColumns, DefectSchema), ds)
	}
	if err := ExportParquet(failWriter{}, makeDefects(10, 1)); !errors.Is(err, errInjected) {
		t.Errorf("ExportParquet to a failing writer = %v, want the write error", err)
	}
}

// closeWriter records whether Close was called.
type closeWriter struct {
	bytes.Buffer
	closed bool
}

func (w *closeWriter) Close() error { w.closed = true; return nil }

func TestExportParquetDoesNotCloseWriter(t *testing.T) {
	var w closeWriter
	if err := ExportParquet(&w, makeDefects(3, 1)); err != nil {
		t.Fatal(err)
	}
	if w.closed {
		t.Error("ExportParquet closed the caller's writer")
	}
}

// TestCloseWritesParquet closes a roll written in several flushes and reads
// the Parquet files back with arrow-go's reader: every field of every row.
func TestCloseWritesParquet(t *testing.T) {
	s := openStore(t)
	ds, us := makeDefects(3000, 41), makeUninspected(25, 42)
	r := writeRoll(t, s, "PQR", ds, us, 4)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(s.Root(), "PQR")
	b, err := os.ReadFile(filepath.Join(dir, DefectsParquetFile))
	if err != nil {
		t.Fatal(err)
	}
	equalRows(t, "defects.parquet", readParquet(t, b, defectColumns, DefectSchema), stored("PQR", ds))
	b, err = os.ReadFile(filepath.Join(dir, UninspectedParquetFile))
	if err != nil {
		t.Fatal(err)
	}
	equalRows(t, "uninspected.parquet", readParquet(t, b, uninspectedColumns, UninspectedSchema), storedU("PQR", us))
	for _, tmp := range []string{DefectsParquetFile + ".tmp", UninspectedParquetFile + ".tmp", SummaryFile + ".tmp"} {
		if _, err := os.Stat(filepath.Join(dir, tmp)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left behind: %v", tmp, err)
		}
	}

	// An empty roll gets valid, empty Parquet files.
	r = writeRoll(t, s, "PQE", nil, nil, 1)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	b, err = os.ReadFile(filepath.Join(s.Root(), "PQE", DefectsParquetFile))
	if err != nil {
		t.Fatal(err)
	}
	if got := readParquet(t, b, defectColumns, DefectSchema); len(got) != 0 {
		t.Errorf("empty roll: %d defects in parquet", len(got))
	}
}

// TestParquetFailureKeepsIPC makes the Parquet file impossible to write (a
// non-empty directory of that name): Close reports it, and the IPC data,
// the uninspected Parquet file and the summary are all there.
func TestParquetFailureKeepsIPC(t *testing.T) {
	s := openStore(t)
	ds, us := makeDefects(500, 43), makeUninspected(5, 44)
	r := writeRoll(t, s, "PQF", ds, us, 2)
	dir := filepath.Join(s.Root(), "PQF")
	if err := os.MkdirAll(filepath.Join(dir, DefectsParquetFile, "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	err := r.Close()
	if err == nil || !strings.Contains(err.Error(), DefectsParquetFile) || !strings.Contains(err.Error(), "IPC data is intact") {
		t.Fatalf("Close = %v, want an error naming %s", err, DefectsParquetFile)
	}
	if err := r.Close(); !errors.Is(err, ErrClosed) {
		t.Errorf("second Close = %v, want ErrClosed", err)
	}
	meta, gotD, gotU, err := ReadRoll(dir)
	if err != nil {
		t.Fatal(err)
	}
	if meta.Open || meta.Ended.IsZero() {
		t.Errorf("roll not marked closed: %+v", meta)
	}
	equalRows(t, "defects", gotD, stored("PQF", ds))
	equalRows(t, "uninspected", gotU, storedU("PQF", us))
	if _, err := os.Stat(filepath.Join(dir, UninspectedParquetFile)); err != nil {
		t.Error(err)
	}
	if _, err := os.Stat(filepath.Join(dir, DefectsParquetFile+".tmp")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary file left behind: %v", err)
	}
	sum, err := ReadSummary(dir)
	if err != nil || sum.Defects != int64(len(ds)) {
		t.Errorf("summary: %d defects, %v", sum.Defects, err)
	}
}

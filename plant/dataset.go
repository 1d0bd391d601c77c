package plant

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/webinspect/webinspect/internal/atomicfile"
	"github.com/webinspect/webinspect/rollmap"
)

// The plant dataset: one Parquet file per flush and partition,
//
//	DATA/defects/line=<line>/day=<YYYY-MM-DD>/part-<unix ns>-<n>.parquet
//
// hive style, so DuckDB reads it with
// read_parquet('DATA/defects/*/*/*.parquet', hive_partitioning = true).
// The day is the UTC day of the defect's own time (the engine's clock);
// line and day are in the path only, not columns of the files.
// Compaction (compact.go) merges a partition's part files into
// compact-*.parquet and day-*.parquet files of the same schema, which the
// same glob reads.
const datasetDir = "defects"

// defectRow is one defect of the plant: the roll map's record with the
// line it came from and the roll's production context when it arrived.
type defectRow struct {
	Line     string
	Roll     string
	ID       int64
	MDStart  float64
	MDEnd    float64
	CDStart  float64
	CDEnd    float64
	Area     float64
	Peak     float64
	Class    string
	Severity string
	Decision string
	Detector string
	Camera   int32
	Lane     int32
	Time     time.Time // the engine's clock
	Received time.Time // the plant's clock
	Ctx      rollmap.RollContext
}

func (r *defectRow) day() string { return r.Time.UTC().Format(time.DateOnly) }

var datasetSchema = arrow.NewSchema([]arrow.Field{
	{Name: "roll_id", Type: arrow.BinaryTypes.String},
	{Name: "defect_id", Type: arrow.PrimitiveTypes.Int64},
	{Name: "md_start_m", Type: arrow.PrimitiveTypes.Float64},
	{Name: "md_end_m", Type: arrow.PrimitiveTypes.Float64},
	{Name: "cd_start_mm", Type: arrow.PrimitiveTypes.Float64},
	{Name: "cd_end_mm", Type: arrow.PrimitiveTypes.Float64},
	{Name: "area_mm2", Type: arrow.PrimitiveTypes.Float64},
	{Name: "peak_score", Type: arrow.PrimitiveTypes.Float64},
	{Name: "class", Type: arrow.BinaryTypes.String},
	{Name: "severity", Type: arrow.BinaryTypes.String},
	{Name: "decision", Type: arrow.BinaryTypes.String},
	{Name: "detector", Type: arrow.BinaryTypes.String},
	{Name: "camera", Type: arrow.PrimitiveTypes.Int32},
	{Name: "lane", Type: arrow.PrimitiveTypes.Int32},
	{Name: "time", Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}},
	{Name: "received", Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}},
	{Name: "product", Type: arrow.BinaryTypes.String},
	{Name: "lot", Type: arrow.BinaryTypes.String},
	{Name: "supplier", Type: arrow.BinaryTypes.String},
	{Name: "shift", Type: arrow.BinaryTypes.String},
	{Name: "operator", Type: arrow.BinaryTypes.String},
	{Name: "order_id", Type: arrow.BinaryTypes.String},
}, nil)

// writePart writes rows (all of one line and day) as one new part file,
// atomically (temporary file, fsync, rename, fsync of the directory).
func writePart(root string, seq int64, rows []*defectRow) error {
	dir := filepath.Join(root, datasetDir, "line="+rows[0].Line, "day="+rows[0].day())
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b := array.NewRecordBuilder(memory.DefaultAllocator, datasetSchema)
	defer b.Release()
	str := func(i int) *array.StringBuilder { return b.Field(i).(*array.StringBuilder) }
	f64 := func(i int) *array.Float64Builder { return b.Field(i).(*array.Float64Builder) }
	ts := func(i int) *array.TimestampBuilder { return b.Field(i).(*array.TimestampBuilder) }
	for _, r := range rows {
		str(0).Append(r.Roll)
		b.Field(1).(*array.Int64Builder).Append(r.ID)
		for i, v := range []float64{r.MDStart, r.MDEnd, r.CDStart, r.CDEnd, r.Area, r.Peak} {
			f64(2 + i).Append(v)
		}
		for i, v := range []string{r.Class, r.Severity, r.Decision, r.Detector} {
			str(8 + i).Append(v)
		}
		b.Field(12).(*array.Int32Builder).Append(r.Camera)
		b.Field(13).(*array.Int32Builder).Append(r.Lane)
		ts(14).Append(arrow.Timestamp(r.Time.UnixMicro()))
		ts(15).Append(arrow.Timestamp(r.Received.UnixMicro()))
		for i, v := range []string{r.Ctx.Product, r.Ctx.Lot, r.Ctx.Supplier, r.Ctx.Shift, r.Ctx.Operator, r.Ctx.Order} {
			str(16 + i).Append(v)
		}
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	name := fmt.Sprintf("part-%d-%d.parquet", time.Now().UnixNano(), seq)
	tmp := filepath.Join(dir, tmpName(name))
	err := writeParquetFile(tmp, 0, func(fw *pqarrow.FileWriter) error { return fw.Write(rec) })
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, name))
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("plant dataset %s: %w", dir, err)
	}
	return atomicfile.SyncDir(dir)
}

// writeParquetFile creates path as a Parquet file of the dataset's
// schema, writes it with write and fsyncs it; on error path is removed.
// rowGroup bounds the rows of a row group (0: the library's default).
func writeParquetFile(path string, rowGroup int64, write func(fw *pqarrow.FileWriter) error) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	opts := []parquet.WriterProperty{parquet.WithCompression(compress.Codecs.Zstd), parquet.WithDictionaryDefault(true),
		parquet.WithCreatedBy("webinspect plant")}
	if rowGroup > 0 {
		opts = append(opts, parquet.WithMaxRowGroupLength(rowGroup))
	}
	fw, err := pqarrow.NewFileWriter(datasetSchema, f, parquet.NewWriterProperties(opts...), pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
	if err == nil {
		err = write(fw)
		if cerr := fw.Close(); err == nil {
			err = cerr
		}
	} else {
		f.Close()
	}
	if err == nil {
		// pqarrow closed f; reopen to sync.
		err = syncFile(path)
	}
	if err != nil {
		os.Remove(path)
	}
	return err
}

func syncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// readDataset calls fn for every row of every part file under root
// (temporary files skipped; removed too with clean, when nothing is
// writing).
func readDataset(root string, clean bool, fn func(r *defectRow)) error {
	base := filepath.Join(root, datasetDir)
	return filepath.WalkDir(base, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) && path == base {
				return nil
			}
			return err
		}
		if d.IsDir() {
			return nil
		}
		if strings.HasSuffix(path, ".tmp") {
			if clean {
				os.Remove(path)
			}
			return nil
		}
		if !strings.HasSuffix(path, ".parquet") {
			return nil
		}
		line := strings.TrimPrefix(filepath.Base(filepath.Dir(filepath.Dir(path))), "line=")
		return readPart(path, line, fn)
	})
}

func readPart(path, line string, fn func(r *defectRow)) error {
	_, err := eachBatch(path, func(rec arrow.RecordBatch) error {
		col := func(i int) arrow.Array { return rec.Column(i) }
		s := func(i, j int) string { return col(i).(*array.String).Value(j) }
		f := func(i, j int) float64 { return col(i).(*array.Float64).Value(j) }
		t := func(i, j int) time.Time {
			return time.UnixMicro(int64(col(i).(*array.Timestamp).Value(j))).UTC()
		}
		for j := 0; j < int(rec.NumRows()); j++ {
			r := defectRow{Line: line, Roll: s(0, j), ID: col(1).(*array.Int64).Value(j),
				MDStart: f(2, j), MDEnd: f(3, j), CDStart: f(4, j), CDEnd: f(5, j), Area: f(6, j), Peak: f(7, j),
				Class: s(8, j), Severity: s(9, j), Decision: s(10, j), Detector: s(11, j),
				Camera: col(12).(*array.Int32).Value(j), Lane: col(13).(*array.Int32).Value(j),
				Time: t(14, j), Received: t(15, j),
				Ctx: rollmap.RollContext{Product: s(16, j), Lot: s(17, j), Supplier: s(18, j), Shift: s(19, j), Operator: s(20, j), Order: s(21, j)}}
			fn(&r)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("plant dataset %s: %w", path, err)
	}
	return nil
}

// eachBatch calls fn for each record batch of a part file, in order,
// reading 64 Ki rows at a time, and returns the rows read. It refuses a
// file whose schema is not the dataset's (ErrBadPart).
func eachBatch(path string, fn func(rec arrow.RecordBatch) error) (int64, error) {
	pf, err := file.OpenParquetFile(path, false)
	if err != nil {
		return 0, err
	}
	defer pf.Close()
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: 64 << 10}, memory.DefaultAllocator)
	if err != nil {
		return 0, err
	}
	if sc, err := fr.Schema(); err != nil {
		return 0, err
	} else if !sameFields(sc, datasetSchema) {
		return 0, fmt.Errorf("%w: schema %s", ErrBadPart, sc)
	}
	rr, err := fr.GetRecordReader(context.Background(), nil, nil)
	if err != nil {
		return 0, err
	}
	defer rr.Release()
	var n int64
	for rr.Next() {
		n += rr.RecordBatch().NumRows()
		if err := fn(rr.RecordBatch()); err != nil {
			return n, err
		}
	}
	return n, rr.Err()
}

// sameFields reports whether a and b have the same field names and types
// (the Parquet reader adds field IDs as metadata).
func sameFields(a, b *arrow.Schema) bool {
	if a.NumFields() != b.NumFields() {
		return false
	}
	for i := range a.NumFields() {
		fa, fb := a.Field(i), b.Field(i)
		if fa.Name != fb.Name || !arrow.TypeEqual(fa.Type, fb.Type) {
			return false
		}
	}
	return true
}

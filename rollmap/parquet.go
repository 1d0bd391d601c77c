package rollmap

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// Parquet files written beside the IPC streams when a roll is closed.
const (
	DefectsParquetFile     = "defects.parquet"
	UninspectedParquetFile = "uninspected.parquet"
	MarksParquetFile       = "marks.parquet"
)

// parquetBatchRows is the number of rows converted to Arrow at a time when
// writing Parquet, so that the Arrow copy of a long roll never exists whole.
const parquetBatchRows = 16 << 10

// parquetRowGroupRows is the largest row group written: 64k rows of a
// defect are about 8 MB uncompressed, a size every reader handles well.
const parquetRowGroupRows = 64 << 10

// dictionaryColumns are the columns with few distinct values, which are
// dictionary-encoded in Parquet; the others (positions, scores, times,
// image references: nearly all distinct) are plain-encoded, which is
// several times faster to write and no larger once compressed.
var dictionaryColumns = []string{"roll_id", "polarity", "class", "severity", "decision", "detector",
	"camera", "lane", "review_status", "review_label", "reason", "head", "status"}

// parquetWriterProps are the Parquet properties of every file written:
// format 2.6 (timestamps stay microseconds, UTC-adjusted), zstd level 3,
// dictionaryColumns dictionary-encoded, statistics on.
func parquetWriterProps() *parquet.WriterProperties {
	opts := []parquet.WriterProperty{
		parquet.WithVersion(parquet.V2_6),
		parquet.WithCompression(compress.Codecs.Zstd),
		parquet.WithCompressionLevel(3),
		parquet.WithDictionaryDefault(false),
		parquet.WithStats(true),
		parquet.WithMaxRowGroupLength(parquetRowGroupRows),
		parquet.WithCreatedBy("webinspect rollmap format " + FormatVersion),
	}
	for _, c := range dictionaryColumns {
		opts = append(opts, parquet.WithDictionaryFor(c, true))
	}
	return parquet.NewWriterProperties(opts...)
}

// writeParquet writes the rows of parts to w as one Parquet file with the
// given Arrow schema. The Arrow schema (with its version and unit metadata)
// is stored in the file's key-value metadata under "ARROW:schema", so an
// Arrow reader gets back the exact types (timestamp[us, UTC]).
//
// w is not closed (pqarrow closes a writer that is an io.Closer, so it only
// sees a buffered wrapper); the buffer is flushed to w before returning.
func writeParquet[T any](w io.Writer, b builder[T], schema *arrow.Schema, kv map[string]string, parts ...[]T) error {
	bw := bufio.NewWriterSize(w, 256<<10)
	fw, err := pqarrow.NewFileWriter(schema, bw, parquetWriterProps(),
		pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
	if err != nil {
		return err
	}
	for _, k := range slices.Sorted(maps.Keys(kv)) {
		if err := fw.AppendKeyValueMetadata(k, kv[k]); err != nil {
			fw.Close()
			return err
		}
	}
	n := 0
	write := func() error {
		rec := b.rb.NewRecordBatch()
		defer rec.Release()
		n = 0
		return fw.WriteBuffered(rec)
	}
	for _, p := range parts {
		for len(p) > 0 {
			k := min(len(p), parquetBatchRows-n)
			b.append(p[:k])
			p, n = p[k:], n+k
			if n == parquetBatchRows {
				if err := write(); err != nil {
					fw.Close()
					return err
				}
			}
		}
	}
	if n > 0 || fw.NumRows() == 0 {
		if err := write(); err != nil {
			fw.Close()
			return err
		}
	}
	if err := fw.Close(); err != nil {
		return err
	}
	return bw.Flush()
}

// ExportParquet writes ds to w as one Parquet file with the columns of
// DefectSchema (see FORMAT.md, "Parquet files"): zstd-compressed,
// dictionary-encoded, row groups of at most 65536 rows, the Arrow schema
// stored in the file metadata. Memory does not grow with len(ds) beyond a
// row group.
func ExportParquet(w io.Writer, ds []Defect) error {
	return ExportParquetRoll(w, RollMeta{}, ds)
}

// ContextMetadataKey is the Parquet key-value metadata key under which a
// roll's defects.parquet and ExportParquetRoll store the roll's ID and
// production context as JSON: {"roll_id": ID, "context": RollContext}.
// DuckDB reads it with parquet_kv_metadata('file').
const ContextMetadataKey = "webinspect.roll_context"

// contextMetadata is the key-value metadata of a roll's Parquet files.
func contextMetadata(meta RollMeta) map[string]string {
	if meta.ID == "" && meta.Context.IsZero() {
		return nil
	}
	b, _ := json.Marshal(struct {
		RollID  string      `json:"roll_id"`
		Context RollContext `json:"context"`
	}{meta.ID, meta.Context}) // strings only: never fails
	return map[string]string{ContextMetadataKey: string(b)}
}

// ExportParquetRoll is ExportParquet that also stores the roll's ID and
// production context in the file's key-value metadata
// (ContextMetadataKey).
func ExportParquetRoll(w io.Writer, meta RollMeta, ds []Defect) error {
	b := newBuilder(nil, defectColumns, DefectSchema)
	defer b.rb.Release()
	if err := writeParquet(w, b, DefectSchema, contextMetadata(meta), ds); err != nil {
		return fmt.Errorf("rollmap: export parquet: %w", err)
	}
	return nil
}

// writeParquetFile writes dir/name atomically: to name.tmp, fsync, rename,
// so that a reader never sees half a Parquet file under the final name.
// A failure removes the temporary file and leaves no file of that name.
func writeParquetFile[T any](dir, name string, cols []column[T], schema *arrow.Schema, kv map[string]string, parts [][]T) (err error) {
	path := filepath.Join(dir, name)
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			os.Remove(tmp)
			err = fmt.Errorf("write %s: %w", path, err)
		}
	}()
	b := newBuilder(nil, cols, schema)
	defer b.rb.Release()
	err = writeParquet(f, b, schema, kv, parts...)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

package rollmap

import (
	"fmt"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// column is one Arrow column of record type T: its field, and how a batch of
// rows moves into and out of it. The per-type tables below are the single
// definition of the schema, the builder and the reader; a new struct field
// becomes a new table entry.
type column[T any] struct {
	field arrow.Field
	// append appends the column's value of every row to b, whose concrete
	// type matches field.Type.
	append func(b array.Builder, rows []T)
	// read sets the column's value in every row from a, which has field.Type
	// and len(rows) elements and no nulls.
	read func(a arrow.Array, rows []T) error
	// optional columns were added after the first release: a stream
	// written before them lacks the column, and its rows read the zero
	// value (see FORMAT.md, "Columns added later").
	optional bool
}

// added marks a column added after the first release (optional when read).
func added[T any](c column[T]) column[T] {
	c.optional = true
	return c
}

// unitKey is the field metadata key holding a column's unit.
const unitKey = "unit"

func fieldOf(name string, t arrow.DataType, unit string) arrow.Field {
	f := arrow.Field{Name: name, Type: t}
	if unit != "" {
		f.Metadata = arrow.NewMetadata([]string{unitKey}, []string{unit})
	}
	return f
}

func float64Col[T any](name, unit string, get func(*T) *float64) column[T] {
	return column[T]{
		field: fieldOf(name, arrow.PrimitiveTypes.Float64, unit),
		append: func(b array.Builder, rows []T) {
			fb := b.(*array.Float64Builder)
			fb.Reserve(len(rows))
			for i := range rows {
				fb.UnsafeAppend(*get(&rows[i]))
			}
		},
		read: func(a arrow.Array, rows []T) error {
			vs := a.(*array.Float64).Float64Values()
			for i := range rows {
				*get(&rows[i]) = vs[i]
			}
			return nil
		},
	}
}

func int64Col[T any](name, unit string, get func(*T) *int64) column[T] {
	return column[T]{
		field: fieldOf(name, arrow.PrimitiveTypes.Int64, unit),
		append: func(b array.Builder, rows []T) {
			ib := b.(*array.Int64Builder)
			ib.Reserve(len(rows))
			for i := range rows {
				ib.UnsafeAppend(*get(&rows[i]))
			}
		},
		read: func(a arrow.Array, rows []T) error {
			vs := a.(*array.Int64).Int64Values()
			for i := range rows {
				*get(&rows[i]) = vs[i]
			}
			return nil
		},
	}
}

// intCol stores a Go int as int64, so no value is lost on 64-bit platforms.
func intCol[T any](name string, get func(*T) *int) column[T] {
	return column[T]{
		field: fieldOf(name, arrow.PrimitiveTypes.Int64, ""),
		append: func(b array.Builder, rows []T) {
			ib := b.(*array.Int64Builder)
			ib.Reserve(len(rows))
			for i := range rows {
				ib.UnsafeAppend(int64(*get(&rows[i])))
			}
		},
		read: func(a arrow.Array, rows []T) error {
			vs := a.(*array.Int64).Int64Values()
			for i := range rows {
				*get(&rows[i]) = int(vs[i])
			}
			return nil
		},
	}
}

// timeCol stores a time as microseconds since the Unix epoch, UTC. Reading
// gives a UTC time without monotonic reading; sub-microsecond digits are
// dropped (rounded towards the past).
func timeCol[T any](name string, get func(*T) *time.Time) column[T] {
	return column[T]{
		field: fieldOf(name, arrow.FixedWidthTypes.Timestamp_us, ""),
		append: func(b array.Builder, rows []T) {
			tb := b.(*array.TimestampBuilder)
			tb.Reserve(len(rows))
			for i := range rows {
				tb.UnsafeAppend(arrow.Timestamp(get(&rows[i]).UnixMicro()))
			}
		},
		read: func(a arrow.Array, rows []T) error {
			vs := a.(*array.Timestamp).TimestampValues()
			for i := range rows {
				*get(&rows[i]) = time.UnixMicro(int64(vs[i])).UTC()
			}
			return nil
		},
	}
}

// stringCol reads a whole column with one allocation: the column's value
// bytes are copied into one Go string and every row's value is a substring
// of it. The rows therefore never point into Arrow memory, whatever the
// allocator, and the copy lives as long as any row of the batch does.
func stringCol[T any, S ~string](name string, get func(*T) *S) column[T] {
	return column[T]{
		field: fieldOf(name, arrow.BinaryTypes.String, ""),
		append: func(b array.Builder, rows []T) {
			sb := b.(*array.StringBuilder)
			sb.Reserve(len(rows))
			n := 0
			for i := range rows {
				n += len(*get(&rows[i]))
			}
			sb.ReserveData(n)
			for i := range rows {
				sb.Append(string(*get(&rows[i])))
			}
		},
		read: func(a arrow.Array, rows []T) error {
			offs, data, err := stringBuffers(a)
			if err != nil {
				return err
			}
			all := string(data[offs[0]:offs[len(rows)]])
			base := offs[0]
			for i := range rows {
				*get(&rows[i]) = S(all[offs[i]-base : offs[i+1]-base])
			}
			return nil
		},
	}
}

// stringBuffers returns the len+1 value offsets of a string array (relative
// to data) and its value bytes, after checking that the offsets are
// non-decreasing and inside data, so that slicing with them cannot panic.
func stringBuffers(a arrow.Array) ([]int32, []byte, error) {
	d := a.Data()
	bufs := d.Buffers()
	if len(bufs) != 3 || bufs[1] == nil {
		if d.Len() == 0 {
			return []int32{0}, nil, nil
		}
		return nil, nil, fmt.Errorf("%w: string column without offsets", ErrCorrupt)
	}
	all := arrow.Int32Traits.CastFromBytes(bufs[1].Bytes())
	if len(all) < d.Offset()+d.Len()+1 {
		return nil, nil, fmt.Errorf("%w: string offsets buffer holds %d offsets, need %d",
			ErrCorrupt, len(all), d.Offset()+d.Len()+1)
	}
	offs := all[d.Offset() : d.Offset()+d.Len()+1]
	var data []byte
	if bufs[2] != nil {
		data = bufs[2].Bytes()
	}
	if offs[0] < 0 {
		return nil, nil, fmt.Errorf("%w: negative string offset %d", ErrCorrupt, offs[0])
	}
	for i := 1; i < len(offs); i++ {
		if offs[i] < offs[i-1] {
			return nil, nil, fmt.Errorf("%w: string offsets decrease at row %d", ErrCorrupt, i-1)
		}
	}
	if int(offs[len(offs)-1]) > len(data) {
		return nil, nil, fmt.Errorf("%w: string offset %d beyond %d value bytes",
			ErrCorrupt, offs[len(offs)-1], len(data))
	}
	return offs, data, nil
}

// defectColumns lists Defect's columns in schema order (struct field order).
var defectColumns = []column[Defect]{
	stringCol("roll_id", func(d *Defect) *string { return &d.RollID }),
	int64Col("defect_id", "", func(d *Defect) *int64 { return &d.ID }),
	float64Col("md_start_m", "m", func(d *Defect) *float64 { return &d.MDStartM }),
	float64Col("md_end_m", "m", func(d *Defect) *float64 { return &d.MDEndM }),
	float64Col("cd_start_mm", "mm", func(d *Defect) *float64 { return &d.CDStartMM }),
	float64Col("cd_end_mm", "mm", func(d *Defect) *float64 { return &d.CDEndMM }),
	float64Col("area_mm2", "mm2", func(d *Defect) *float64 { return &d.AreaMM2 }),
	float64Col("peak_score", "", func(d *Defect) *float64 { return &d.PeakScore }),
	float64Col("mean_score", "", func(d *Defect) *float64 { return &d.MeanScore }),
	float64Col("contrast", "grey levels", func(d *Defect) *float64 { return &d.Contrast }),
	stringCol("polarity", func(d *Defect) *string { return &d.Polarity }),
	stringCol("class", func(d *Defect) *string { return &d.Class }),
	stringCol("severity", func(d *Defect) *string { return &d.Severity }),
	stringCol("decision", func(d *Defect) *Decision { return &d.Decision }),
	stringCol("detector", func(d *Defect) *Detector { return &d.Detector }),
	intCol("camera", func(d *Defect) *int { return &d.Camera }),
	intCol("lane", func(d *Defect) *int { return &d.Lane }),
	timeCol("time", func(d *Defect) *time.Time { return &d.Time }),
	int64Col("encoder_count", "counts", func(d *Defect) *int64 { return &d.EncoderCount }),
	stringCol("image_ref", func(d *Defect) *string { return &d.ImageRef }),
	stringCol("review_status", func(d *Defect) *string { return &d.ReviewStatus }),
	stringCol("review_label", func(d *Defect) *string { return &d.ReviewLabel }),
	added(stringCol("image_error", func(d *Defect) *string { return &d.ImageError })),
	added(stringCol("recipe_version", func(d *Defect) *string { return &d.RecipeVersion })),
	added(stringCol("model_version", func(d *Defect) *string { return &d.ModelVersion })),
	added(stringCol("learned_class", func(d *Defect) *string { return &d.LearnedClass })),
	added(float64Col("learned_confidence", "", func(d *Defect) *float64 { return &d.LearnedConfidence })),
	added(stringCol("classifier_version", func(d *Defect) *string { return &d.ClassifierVersion })),
	added(stringCol("rule_class", func(d *Defect) *string { return &d.RuleClass })),
	added(float64Col("model_score", "", func(d *Defect) *float64 { return &d.ModelScore })),
	added(float64Col("model_mean_score", "", func(d *Defect) *float64 { return &d.ModelMeanScore })),
	added(float64Col("model_area_mm2", "mm2", func(d *Defect) *float64 { return &d.ModelAreaMM2 })),
	added(float64Col("web_edge_mm", "mm", func(d *Defect) *float64 { return &d.WebEdgeMM })),
}

// uninspectedColumns lists Uninspected's columns in schema order.
var uninspectedColumns = []column[Uninspected]{
	stringCol("roll_id", func(u *Uninspected) *string { return &u.RollID }),
	float64Col("md_start_m", "m", func(u *Uninspected) *float64 { return &u.MDStartM }),
	float64Col("md_end_m", "m", func(u *Uninspected) *float64 { return &u.MDEndM }),
	float64Col("cd_start_mm", "mm", func(u *Uninspected) *float64 { return &u.CDStartMM }),
	float64Col("cd_end_mm", "mm", func(u *Uninspected) *float64 { return &u.CDEndMM }),
	intCol("camera", func(u *Uninspected) *int { return &u.Camera }),
	int64Col("lines", "lines", func(u *Uninspected) *int64 { return &u.Lines }),
	stringCol("reason", func(u *Uninspected) *Reason { return &u.Reason }),
}

// markEventColumns lists MarkEvent's columns in schema order.
var markEventColumns = []column[MarkEvent]{
	stringCol("roll_id", func(e *MarkEvent) *string { return &e.RollID }),
	int64Col("defect_id", "", func(e *MarkEvent) *int64 { return &e.DefectID }),
	int64Col("mark_id", "", func(e *MarkEvent) *int64 { return &e.MarkID }),
	stringCol("head", func(e *MarkEvent) *string { return &e.Head }),
	stringCol("status", func(e *MarkEvent) *string { return &e.Status }),
	int64Col("target_count", "counts", func(e *MarkEvent) *int64 { return &e.TargetCount }),
	int64Col("fire_count", "counts", func(e *MarkEvent) *int64 { return &e.FireCount }),
	float64Col("md_m", "m", func(e *MarkEvent) *float64 { return &e.MDM }),
	float64Col("cd_mm", "mm", func(e *MarkEvent) *float64 { return &e.CDMM }),
	float64Col("passed_by_mm", "mm", func(e *MarkEvent) *float64 { return &e.PassedByMM }),
	timeCol("time", func(e *MarkEvent) *time.Time { return &e.Time }),
	stringCol("error", func(e *MarkEvent) *string { return &e.Error }),
}

func schemaOf[T any](cols []column[T]) *arrow.Schema {
	fields := make([]arrow.Field, len(cols))
	for i, c := range cols {
		fields[i] = c.field
	}
	md := arrow.NewMetadata([]string{VersionKey}, []string{FormatVersion})
	return arrow.NewSchema(fields, &md)
}

// Schemas of the two streams of a roll: one non-nullable field per struct
// field, named as the field's json tag, with the schema metadata
// VersionKey = FormatVersion. Floats are float64, integers int64, strings
// utf8, times timestamp[us, UTC]. Position fields carry their unit in the
// field metadata key "unit".
var (
	DefectSchema      = schemaOf(defectColumns)
	UninspectedSchema = schemaOf(uninspectedColumns)
	MarkEventSchema   = schemaOf(markEventColumns)
)

// builder converts rows of T into record batches, reusing one
// RecordBuilder (and so its column builders) for every batch.
type builder[T any] struct {
	cols []column[T]
	rb   *array.RecordBuilder
}

func newBuilder[T any](mem memory.Allocator, cols []column[T], schema *arrow.Schema) builder[T] {
	if mem == nil {
		mem = memory.DefaultAllocator
	}
	return builder[T]{cols: cols, rb: array.NewRecordBuilder(mem, schema)}
}

func (b *builder[T]) append(rows []T) {
	for i, c := range b.cols {
		c.append(b.rb.Field(i), rows)
	}
}

// DefectBuilder builds DefectSchema record batches from defects. It reuses
// its RecordBuilder across batches. It is not safe for concurrent use.
type DefectBuilder struct{ b builder[Defect] }

// NewDefectBuilder returns a builder allocating from mem (nil: Go's
// default allocator). Release it when done.
func NewDefectBuilder(mem memory.Allocator) *DefectBuilder {
	return &DefectBuilder{newBuilder(mem, defectColumns, DefectSchema)}
}

// Append adds ds as rows of the next record batch. ds is not retained.
func (b *DefectBuilder) Append(ds []Defect) { b.b.append(ds) }

// NewRecordBatch returns the rows appended since the last call as one record
// batch (possibly empty) and resets the builder. The caller releases it.
func (b *DefectBuilder) NewRecordBatch() arrow.RecordBatch { return b.b.rb.NewRecordBatch() }

// Release frees the builder's buffers.
func (b *DefectBuilder) Release() { b.b.rb.Release() }

// UninspectedBuilder builds UninspectedSchema record batches. It reuses its
// RecordBuilder across batches. It is not safe for concurrent use.
type UninspectedBuilder struct{ b builder[Uninspected] }

// NewUninspectedBuilder returns a builder allocating from mem (nil: Go's
// default allocator). Release it when done.
func NewUninspectedBuilder(mem memory.Allocator) *UninspectedBuilder {
	return &UninspectedBuilder{newBuilder(mem, uninspectedColumns, UninspectedSchema)}
}

// Append adds us as rows of the next record batch. us is not retained.
func (b *UninspectedBuilder) Append(us []Uninspected) { b.b.append(us) }

// NewRecordBatch returns the rows appended since the last call as one record
// batch and resets the builder. The caller releases it.
func (b *UninspectedBuilder) NewRecordBatch() arrow.RecordBatch { return b.b.rb.NewRecordBatch() }

// Release frees the builder's buffers.
func (b *UninspectedBuilder) Release() { b.b.rb.Release() }

// MarkEventBuilder builds MarkEventSchema record batches. It reuses its
// RecordBuilder across batches. It is not safe for concurrent use.
type MarkEventBuilder struct{ b builder[MarkEvent] }

// NewMarkEventBuilder returns a builder allocating from mem (nil: Go's
// default allocator). Release it when done.
func NewMarkEventBuilder(mem memory.Allocator) *MarkEventBuilder {
	return &MarkEventBuilder{newBuilder(mem, markEventColumns, MarkEventSchema)}
}

// Append adds evs as rows of the next record batch. evs is not retained.
func (b *MarkEventBuilder) Append(evs []MarkEvent) { b.b.append(evs) }

// NewRecordBatch returns the rows appended since the last call as one record
// batch and resets the builder. The caller releases it.
func (b *MarkEventBuilder) NewRecordBatch() arrow.RecordBatch { return b.b.rb.NewRecordBatch() }

// Release frees the builder's buffers.
func (b *MarkEventBuilder) Release() { b.b.rb.Release() }

// AppendMarkEvents appends the rows of rec, a batch with the columns of
// MarkEventSchema, to dst. See AppendDefects.
func AppendMarkEvents(dst []MarkEvent, rec arrow.RecordBatch) ([]MarkEvent, error) {
	return appendRows(dst, markEventColumns, rec)
}

// AppendDefects appends the rows of rec, a batch with the columns of
// DefectSchema, to dst and returns the extended slice. Columns are found by
// name; extra columns are ignored. The defects do not refer to rec's memory,
// so rec may be released afterwards. On error dst is returned unchanged.
func AppendDefects(dst []Defect, rec arrow.RecordBatch) ([]Defect, error) {
	return appendRows(dst, defectColumns, rec)
}

// AppendUninspected appends the rows of rec, a batch with the columns of
// UninspectedSchema, to dst. See AppendDefects.
func AppendUninspected(dst []Uninspected, rec arrow.RecordBatch) ([]Uninspected, error) {
	return appendRows(dst, uninspectedColumns, rec)
}

func appendRows[T any](dst []T, cols []column[T], rec arrow.RecordBatch) ([]T, error) {
	n := int(rec.NumRows())
	schema := rec.Schema()
	// Check every column before touching dst, so an error leaves it alone.
	arrs := make([]arrow.Array, len(cols))
	for i, c := range cols {
		idx := schema.FieldIndices(c.field.Name)
		if len(idx) == 0 && c.optional {
			continue // written before the column existed: zero values
		}
		if len(idx) != 1 {
			return dst, fmt.Errorf("%w: column %q appears %d times, want once", ErrCorrupt, c.field.Name, len(idx))
		}
		a := rec.Column(idx[0])
		switch {
		case !arrow.TypeEqual(a.DataType(), c.field.Type):
			return dst, fmt.Errorf("%w: column %q has type %s, want %s", ErrCorrupt, c.field.Name, a.DataType(), c.field.Type)
		case a.Len() != n:
			return dst, fmt.Errorf("%w: column %q has %d rows, batch has %d", ErrCorrupt, c.field.Name, a.Len(), n)
		case a.NullN() != 0:
			return dst, fmt.Errorf("%w: column %q has %d nulls", ErrCorrupt, c.field.Name, a.NullN())
		}
		arrs[i] = a
	}
	start := len(dst)
	out := append(dst, make([]T, n)...)
	rows := out[start:]
	for i, c := range cols {
		if arrs[i] == nil {
			continue
		}
		if err := c.read(arrs[i], rows); err != nil {
			return dst, fmt.Errorf("column %q: %w", c.field.Name, err)
		}
	}
	return out, nil
}

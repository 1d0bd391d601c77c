package rollmap

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// TestSchemaMatchesStructs checks one field per struct field, in order,
// named by the json tag, typed by the Go type.
func TestSchemaMatchesStructs(t *testing.T) {
	check := func(t *testing.T, s *arrow.Schema, typ reflect.Type) {
		nf := typ.NumField()
		if typ == reflect.TypeFor[Defect]() {
			// Defect.Mark, the last field, is merged from marks.arrows on
			// read and is not a column.
			if typ.Field(nf-1).Name != "Mark" {
				t.Fatalf("last field of Defect is %s, want Mark", typ.Field(nf-1).Name)
			}
			nf--
		}
		if s.NumFields() != nf {
			t.Fatalf("%d fields, struct %s has %d", s.NumFields(), typ.Name(), nf)
		}
		for i := range nf {
			sf, f := typ.Field(i), s.Field(i)
			name, _, _ := strings.Cut(sf.Tag.Get("json"), ",")
			if f.Name != name {
				t.Errorf("field %d is %q, json tag of %s is %q", i, f.Name, sf.Name, name)
			}
			var want arrow.DataType
			switch sf.Type.Kind() {
			case reflect.String:
				want = arrow.BinaryTypes.String
			case reflect.Float64:
				want = arrow.PrimitiveTypes.Float64
			case reflect.Int, reflect.Int64:
				want = arrow.PrimitiveTypes.Int64
			case reflect.Struct: // time.Time
				want = &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}
			}
			if !arrow.TypeEqual(f.Type, want) {
				t.Errorf("field %q has type %s, want %s", f.Name, f.Type, want)
			}
			if f.Nullable {
				t.Errorf("field %q is nullable", f.Name)
			}
		}
		if v, ok := s.Metadata().GetValue(VersionKey); !ok || v != FormatVersion {
			t.Errorf("schema metadata %s = %q, %v; want %q", VersionKey, v, ok, FormatVersion)
		}
	}
	t.Run("defect", func(t *testing.T) { check(t, DefectSchema, reflect.TypeFor[Defect]()) })
	t.Run("uninspected", func(t *testing.T) { check(t, UninspectedSchema, reflect.TypeFor[Uninspected]()) })
	t.Run("marks", func(t *testing.T) { check(t, MarkEventSchema, reflect.TypeFor[MarkEvent]()) })
	if u, _ := DefectSchema.Field(2).Metadata.GetValue(unitKey); u != "m" {
		t.Errorf("md_start_m unit %q, want m", u)
	}
}

func TestRecordRoundTrip(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)

	ds := stored("R1", makeDefects(500, 1))
	ds[3].Time = time.Time{} // zero time survives
	b := NewDefectBuilder(mem)
	defer b.Release()
	var got []Defect
	for k := range 3 { // the builder is reused across batches
		part := ds[len(ds)*k/3 : len(ds)*(k+1)/3]
		b.Append(part)
		rec := b.NewRecordBatch()
		if int(rec.NumRows()) != len(part) {
			t.Fatalf("batch %d: %d rows, want %d", k, rec.NumRows(), len(part))
		}
		var err error
		got, err = AppendDefects(got, rec)
		rec.Release()
		if err != nil {
			t.Fatal(err)
		}
	}
	equalRows(t, "defects", got, ds)
	if !got[3].Time.IsZero() {
		t.Errorf("zero time came back as %v", got[3].Time)
	}

	us := storedU("R1", makeUninspected(50, 2))
	ub := NewUninspectedBuilder(mem)
	defer ub.Release()
	ub.Append(us)
	rec := ub.NewRecordBatch()
	gotU, err := AppendUninspected(nil, rec)
	rec.Release()
	if err != nil {
		t.Fatal(err)
	}
	equalRows(t, "uninspected", gotU, us)
}

// TestAppendDefectsStringsOwnMemory checks that decoded strings do not
// alias Arrow buffers: overwriting the buffers must not change them.
func TestAppendDefectsStringsOwnMemory(t *testing.T) {
	ds := stored("R1", makeDefects(20, 3))
	b := NewDefectBuilder(nil)
	defer b.Release()
	b.Append(ds)
	rec := b.NewRecordBatch()
	got, err := AppendDefects(nil, rec)
	if err != nil {
		t.Fatal(err)
	}
	for _, col := range rec.Columns() {
		for _, buf := range col.Data().Buffers() {
			if buf != nil {
				clear(buf.Bytes())
			}
		}
	}
	rec.Release()
	equalRows(t, "defects", got, ds)
}

// TestAppendDefectsByName reads a batch whose columns are reordered and
// that has an extra column, as a later format version might write.
func TestAppendDefectsByName(t *testing.T) {
	ds := stored("R1", makeDefects(10, 4))
	b := NewDefectBuilder(nil)
	defer b.Release()
	b.Append(ds)
	rec := b.NewRecordBatch()
	defer rec.Release()

	fields := append([]arrow.Field{{Name: "future", Type: arrow.PrimitiveTypes.Int32}}, rec.Schema().Fields()...)
	extra := array.NewInt32Builder(memory.DefaultAllocator)
	for range ds {
		extra.Append(7)
	}
	ea := extra.NewArray()
	defer ea.Release()
	cols := append([]arrow.Array{ea}, rec.Columns()...)
	// Reverse the original columns.
	for i, j := 1, len(cols)-1; i < j; i, j = i+1, j-1 {
		cols[i], cols[j] = cols[j], cols[i]
		fields[i], fields[j] = fields[j], fields[i]
	}
	rec2 := array.NewRecordBatch(arrow.NewSchema(fields, nil), cols, int64(len(ds)))
	defer rec2.Release()
	got, err := AppendDefects(nil, rec2)
	if err != nil {
		t.Fatal(err)
	}
	equalRows(t, "defects", got, ds)
}

func TestAppendDefectsRejects(t *testing.T) {
	ds := stored("R1", makeDefects(4, 5))
	b := NewDefectBuilder(nil)
	defer b.Release()
	b.Append(ds)
	rec := b.NewRecordBatch()
	defer rec.Release()

	replace := func(name string, f arrow.Field, a arrow.Array) arrow.RecordBatch {
		fields := slices.Clone(rec.Schema().Fields())
		cols := slices.Clone(rec.Columns())
		i := rec.Schema().FieldIndices(name)[0]
		if a == nil { // drop the column
			fields = append(fields[:i], fields[i+1:]...)
			cols = append(cols[:i], cols[i+1:]...)
		} else {
			fields[i], cols[i] = f, a
		}
		return array.NewRecordBatch(arrow.NewSchema(fields, nil), cols, rec.NumRows())
	}
	ib := array.NewInt32Builder(memory.DefaultAllocator)
	ib.AppendValues([]int32{1, 2, 3, 4}, nil)
	wrongType := ib.NewArray()
	defer wrongType.Release()
	fb := array.NewFloat64Builder(memory.DefaultAllocator)
	fb.AppendValues([]float64{1, 2, 3, 4}, []bool{true, false, true, true})
	withNull := fb.NewArray()
	defer withNull.Release()

	cases := map[string]arrow.RecordBatch{
		"missing column": replace("class", arrow.Field{}, nil),
		"wrong type":     replace("camera", arrow.Field{Name: "camera", Type: arrow.PrimitiveTypes.Int32}, wrongType),
		"null":           replace("area_mm2", arrow.Field{Name: "area_mm2", Type: arrow.PrimitiveTypes.Float64, Nullable: true}, withNull),
	}
	for name, bad := range cases {
		t.Run(name, func(t *testing.T) {
			defer bad.Release()
			dst := []Defect{{ID: 99}}
			got, err := AppendDefects(dst, bad)
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("err = %v, want ErrCorrupt", err)
			}
			if len(got) != 1 || got[0].ID != 99 {
				t.Fatalf("dst changed on error: %+v", got)
			}
		})
	}
}

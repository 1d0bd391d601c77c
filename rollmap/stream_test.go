package rollmap

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/ipc"
)

// flushedRoll writes a roll of 3 flushes of defects and returns the
// defects file's bytes, the offsets where its messages end (schema, then
// each batch) and the rows stored up to each batch end. With closed, the
// roll is closed, so the file ends with EOS.
func flushedRoll(t testing.TB, closed bool) (file []byte, ends []int64, rowsAt [][]Defect) {
	t.Helper()
	s, err := OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ds := makeDefects(90, 9)
	r, err := s.StartRoll(RollMeta{ID: "T1"})
	if err != nil {
		t.Fatal(err)
	}
	want := stored("T1", ds)
	ends = []int64{r.dfile.end}
	rowsAt = [][]Defect{nil}
	for k := range 3 {
		if err := r.AddDefects(ds[k*30 : (k+1)*30]...); err != nil {
			t.Fatal(err)
		}
		if err := r.Flush(); err != nil {
			t.Fatal(err)
		}
		ends = append(ends, r.dfile.end)
		rowsAt = append(rowsAt, want[:(k+1)*30])
	}
	if closed {
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
	}
	file, err = os.ReadFile(filepath.Join(s.Root(), "T1", DefectsFile))
	if err != nil {
		t.Fatal(err)
	}
	if closed && int64(len(file)) != ends[len(ends)-1]+8 {
		t.Fatalf("closed file is %d bytes, want batches (%d) + EOS", len(file), ends[len(ends)-1])
	}
	return file, ends, rowsAt
}

func readBytes(t *testing.T, b []byte) ([]Defect, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), DefectsFile)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	ds, err := readStream(nil, path, defectColumns)
	if err != nil && !strings.Contains(err.Error(), path) {
		t.Errorf("error %q does not name the file", err)
	}
	return ds, err
}

// TestReadTruncated cuts a stream file at many offsets: every complete
// batch before the cut is read; a cut at a message boundary is a clean
// (still open) stream, any other cut is ErrTruncated.
func TestReadTruncated(t *testing.T) {
	for _, closed := range []bool{false, true} {
		file, ends, rowsAt := flushedRoll(t, closed)
		size := int64(len(file))
		cuts := []int64{0, 1, 4, 7, 8, 9, ends[0] / 2, size - 1, size - 4, size}
		for _, e := range ends {
			cuts = append(cuts, e-1, e, e+1, e+4, e+8, e+9, e+100)
		}
		for i := 1; i < len(ends); i++ {
			cuts = append(cuts, (ends[i-1]+ends[i])/2)
		}
		for _, cut := range cuts {
			if cut < 0 || cut > size {
				continue
			}
			got, err := readBytes(t, file[:cut])
			// Rows: those of the last batch that ends at or before the cut.
			var want []Defect
			boundary := cut == size
			for i, e := range ends {
				if e <= cut {
					want = rowsAt[i]
				}
				boundary = boundary || e == cut
			}
			equalRows(t, "rows", got, want)
			switch {
			case boundary && err != nil:
				t.Errorf("closed=%v cut %d/%d at a message boundary: %v", closed, cut, size, err)
			case !boundary && !errors.Is(err, ErrTruncated):
				t.Errorf("closed=%v cut %d/%d: err = %v, want ErrTruncated", closed, cut, size, err)
			}
		}
	}
}

// TestReadCorrupt damages a closed file in ways truncation cannot explain.
func TestReadCorrupt(t *testing.T) {
	file, ends, rowsAt := flushedRoll(t, true)
	mod := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(file)) }
	cases := []struct {
		name string
		b    []byte
		rows []Defect
		want error
	}{
		{"bad continuation of batch 2", mod(func(b []byte) []byte {
			b[ends[1]] = 0x12
			return b
		}), append(slices.Clone(rowsAt[1]), rowsAt[3][len(rowsAt[2]):]...), ErrCorrupt}, // batch 3 is intact and kept
		{"odd metadata length", mod(func(b []byte) []byte {
			binary.LittleEndian.PutUint32(b[ends[2]+4:], 13)
			return b
		}), rowsAt[2], ErrCorrupt},
		{"bytes after EOS", append(bytes.Clone(file), 1, 2, 3, 4, 5, 6, 7, 8), rowsAt[3], ErrCorrupt},
		{"garbage", bytes.Repeat([]byte("not arrow"), 50), nil, ErrCorrupt},
		{"schema twice", append(bytes.Clone(file[:ends[0]]), file[:ends[0]]...), nil, ErrCorrupt},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := readBytes(t, c.b)
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
			equalRows(t, "rows", got, c.rows)
		})
	}
}

// TestReadVersion refuses a file of another format version, and a stream
// that is not a roll map.
func TestReadVersion(t *testing.T) {
	write := func(md map[string]string) []byte {
		fields := DefectSchema.Fields()
		m := arrow.MetadataFrom(md)
		var buf bytes.Buffer
		w := ipc.NewWriter(&buf, ipc.WithSchema(arrow.NewSchema(fields, &m)))
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	if _, err := readBytes(t, write(map[string]string{VersionKey: "3"})); !errors.Is(err, ErrVersion) {
		t.Errorf("version 3: err = %v, want ErrVersion", err)
	}
	// ipc.NewWriter frames as version 1: a schema saying 2 is inconsistent.
	if _, err := readBytes(t, write(map[string]string{VersionKey: "2"})); !errors.Is(err, ErrCorrupt) {
		t.Errorf("version 2 framed as version 1: err = %v, want ErrCorrupt", err)
	}
	if _, err := readBytes(t, write(nil)); !errors.Is(err, ErrCorrupt) {
		t.Errorf("no version: err = %v, want ErrCorrupt", err)
	}
	if got, err := readBytes(t, write(map[string]string{VersionKey: "1"})); err != nil || len(got) != 0 {
		t.Errorf("empty version 1 stream: %d rows, %v", len(got), err)
	}
}

// FuzzReadStream feeds arbitrary bytes to the reader: it must not panic,
// and whatever it returns must be a prefix of a valid file's rows or an
// error.
func FuzzReadStream(f *testing.F) {
	file, ends, _ := flushedRoll(f, true)
	f.Add(file)
	f.Add(file[:ends[1]+50])
	f.Add(file[:ends[0]])
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 8, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8})
	f.Fuzz(func(t *testing.T, b []byte) {
		ds, err := readStreamFrom(nil, bytes.NewReader(b), int64(len(b)), "fuzz", defectColumns)
		if err == nil && len(b) > 0 && len(ds) > len(b) {
			t.Fatalf("%d rows from %d bytes", len(ds), len(b))
		}
	})
}

// failingFile wraps the stream's file: Write fails after writing half of
// p (a torn write) while failWrites > 0; Sync fails while failSync.
type failingFile struct {
	*os.File
	failWrites int
	failSync   bool
}

var errInjected = errors.New("injected I/O error")

func (f *failingFile) Write(p []byte) (int, error) {
	if f.failWrites > 0 {
		f.failWrites--
		n, _ := f.File.Write(p[:len(p)/2])
		return n, errInjected
	}
	return f.File.Write(p)
}

func (f *failingFile) Sync() error {
	if f.failSync {
		return errInjected
	}
	return f.File.Sync()
}

// TestFlushWriteFailure tears a batch write in half: the file is cut back,
// the rows stay pending, and the next Flush writes them exactly once.
func TestFlushWriteFailure(t *testing.T) {
	s, err := OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ds := makeDefects(40, 10)
	r := writeRoll(t, s, "W1", ds[:10], nil, 1)
	ff := &failingFile{File: r.dfile.f.(*os.File), failWrites: 1}
	r.dfile.f = ff
	if err := r.AddDefects(ds[10:25]...); err != nil {
		t.Fatal(err)
	}
	if err := r.Flush(); !errors.Is(err, errInjected) {
		t.Fatalf("Flush = %v, want the injected error", err)
	}
	path := filepath.Join(s.Root(), "W1", DefectsFile)
	got, err := readStream(nil, path, defectColumns)
	if err != nil {
		t.Fatalf("after a failed write the file is not clean: %v", err)
	}
	equalRows(t, "after failure", got, stored("W1", ds[:10]))
	if info, _ := s.Roll("W1"); info.Defects != 25 {
		t.Errorf("open roll counts %d defects, want 25 (memory)", info.Defects)
	}
	if err := r.AddDefects(ds[25:]...); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	_, gotAll, _, err := ReadRoll(filepath.Join(s.Root(), "W1"))
	if err != nil {
		t.Fatal(err)
	}
	equalRows(t, "after retry", gotAll, stored("W1", ds))
}

// TestFlushSyncFailure: a failed fsync is permanent for the roll; Close
// still ends it and reports the rows that are not on disk.
func TestFlushSyncFailure(t *testing.T) {
	s, err := OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ds := makeDefects(20, 11)
	r := writeRoll(t, s, "S1", ds[:10], nil, 1)
	r.dfile.f = &failingFile{File: r.dfile.f.(*os.File), failSync: true}
	if err := r.AddDefects(ds[10:]...); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := r.Flush(); !errors.Is(err, errInjected) {
			t.Fatalf("Flush = %v, want the injected error (sticky)", err)
		}
	}
	err = r.Close()
	if !errors.Is(err, errInjected) || !strings.Contains(err.Error(), "not on disk") {
		t.Fatalf("Close = %v", err)
	}
	info, err := s.Roll("S1")
	if err != nil {
		t.Fatal(err)
	}
	if info.Open || info.Ended.IsZero() || info.Defects != 10 {
		t.Errorf("after close: open=%v ended=%v defects=%d; want closed, ended, 10 synced", info.Open, info.Ended, info.Defects)
	}
}

// TestScanMessages checks the framing walk against the writer's offsets.
func TestScanMessages(t *testing.T) {
	file, ends, _ := flushedRoll(t, true)
	sc := scanStream(bytes.NewReader(file), int64(len(file)))
	if sc.err != nil || sc.end != int64(len(file)) || sc.batches != len(ends)-1 || sc.rows != 90 {
		t.Fatalf("scan = %+v, want end %d, %d batches", sc, len(file), len(ends)-1)
	}
	for i, e := range ends {
		sc := scanStream(bytes.NewReader(file[:e]), e)
		if sc.err != nil || sc.end != e || sc.batches != i {
			t.Errorf("scan of %d bytes = %+v, want %d batches", e, sc, i)
		}
	}
	if !slices.IsSorted(ends) {
		t.Fatal("message ends not increasing")
	}
}

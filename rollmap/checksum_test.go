package rollmap

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/ipc"
)

// TestFlippedByteIsCorruption flips one byte at offsets all over a
// version-2 defects file, closed (ending in EOS) and open: every flip is
// ErrCorrupt (never a partial tail), the error names the file and the
// offset of the damaged message, and every other batch is read. Near each
// message boundary and in the schema message every offset is tried
// (every 5th with -short or -race); elsewhere every 23rd (every 101st
// with -short or -race; every byte with WEBINSPECT_LONG=1).
func TestFlippedByteIsCorruption(t *testing.T) {
	stride := int64(23)
	switch {
	case os.Getenv("WEBINSPECT_LONG") == "1":
		stride = 1
	case testing.Short() || raceEnabled:
		stride = 101
	}
	const name = "R1/defects.arrows"
	for _, closed := range []bool{true, false} {
		file, ends, rowsAt := flushedRoll(t, closed)
		size := int64(len(file))
		// starts[m] is where message m starts (0: schema, then the
		// batches, then the EOS of a closed file).
		starts := append([]int64{0}, ends...)
		if !closed {
			starts = starts[:len(starts)-1]
		}
		var offs []int64
		for x := int64(0); x < size; x++ {
			near := x < ends[0]
			for _, e := range starts {
				near = near || x >= e-16 && x < e+64
			}
			if near && (stride < 101 || x%5 == 0) || x%stride == 0 {
				offs = append(offs, x)
			}
		}
		for i, x := range offs {
			m := 0
			for m+1 < len(starts) && starts[m+1] <= x {
				m++
			}
			b := bytes.Clone(file)
			b[x] ^= []byte{0xff, 0x01, 0x80, 0x5a}[i%4]
			got, err := readStreamFrom(nil, bytes.NewReader(b), size, name, defectColumns)
			if !errors.Is(err, ErrCorrupt) || errors.Is(err, ErrTruncated) {
				t.Fatalf("closed=%v: byte %d (message %d) flipped: err = %v, want ErrCorrupt only", closed, x, m, err)
			}
			if msg := err.Error(); !strings.Contains(msg, name) || !strings.Contains(msg, fmt.Sprintf("message at offset %d:", starts[m])) {
				t.Fatalf("closed=%v: byte %d flipped: %q does not name the file and offset %d", closed, x, msg, starts[m])
			}
			// Every row but those of the damaged batch (the schema
			// message and the EOS hold none).
			var want []Defect
			for k := 1; k < len(ends); k++ {
				if k != m {
					want = append(want, rowsAt[k][len(rowsAt[k-1]):]...)
				}
			}
			if len(got) != len(want) {
				t.Fatalf("closed=%v: byte %d (message %d) flipped: %d rows, want %d", closed, x, m, len(got), len(want))
			}
			equalRows(t, fmt.Sprintf("byte %d flipped", x), got, want)
		}
		t.Logf("closed=%v: %d flips over %d bytes", closed, len(offs), size)
	}
}

// TestChecksumLayout checks the bytes of a written message against
// FORMAT.md: the trailer at the end of the metadata holds CRC-32C of the
// metadata then the prefix, and CRC-32C of the body.
func TestChecksumLayout(t *testing.T) {
	file, ends, _ := flushedRoll(t, true)
	tab := crc32.MakeTable(crc32.Castagnoli)
	for m, start := range append([]int64{0}, ends[:len(ends)-1]...) {
		msg := file[start:ends[m]]
		if binary.LittleEndian.Uint32(msg) != 0xFFFFFFFF {
			t.Fatalf("message %d: no continuation marker", m)
		}
		l := int64(binary.LittleEndian.Uint32(msg[4:]))
		if l%8 != 0 || 8+l > int64(len(msg)) {
			t.Fatalf("message %d: metadata length %d", m, l)
		}
		meta, trailer, body := msg[8:8+l-8], msg[8+l-8:8+l], msg[8+l:]
		hcrc := crc32.Update(crc32.Checksum(meta, tab), tab, msg[:8])
		if binary.LittleEndian.Uint32(trailer) != hcrc || binary.LittleEndian.Uint32(trailer[4:]) != crc32.Checksum(body, tab) {
			t.Errorf("message %d: trailer %x, want header CRC %08x and body CRC %08x", m, trailer, hcrc, crc32.Checksum(body, tab))
		}
		if m == 0 && len(body) != 0 {
			t.Errorf("schema message has a %d-byte body", len(body))
		}
	}
	if !bytes.Equal(file[len(file)-8:], eos[:]) {
		t.Errorf("closed file ends in %x, want EOS", file[len(file)-8:])
	}
}

// TestResumeKeepsRecordsAfterDamage flips a byte inside the second of
// three batches of a crashed roll: ResumeRoll reports the damage (file and
// offset), keeps the first and third batches and goes on appending.
func TestResumeKeepsRecordsAfterDamage(t *testing.T) {
	s := openStore(t)
	ds := makeDefects(90, 21)
	r := writeRoll(t, s, "D1", ds, nil, 3)
	path := filepath.Join(s.Root(), "D1", DefectsFile)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sc := scanStream(bytes.NewReader(b), int64(len(b)))
	if sc.err != nil || len(sc.spans) != 3 {
		t.Fatalf("scan: %d batches, %v", len(sc.spans), sc.err)
	}
	r.abandon()
	s.dies()
	second := sc.spans[1]
	b[(second.off+second.end)/2] ^= 0x10
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	s2, err := OpenStore(s.Root())
	if err != nil {
		t.Fatal(err)
	}
	r2, rr, err := s2.ResumeRoll("D1", 1000)
	if err != nil {
		t.Fatal(err)
	}
	want := slices.Concat(stored("D1", ds[:30]), stored("D1", ds[60:]))
	if rr.Defects != 60 || rr.Damage == nil || !errors.Is(rr.Damage, ErrCorrupt) ||
		!strings.Contains(rr.Damage.Error(), DefectsFile) || !strings.Contains(rr.Damage.Error(), fmt.Sprintf("message at offset %d:", second.off)) {
		t.Fatalf("resume: %d defects, damage %v; want 60 and the damage at offset %d", rr.Defects, rr.Damage, second.off)
	}
	extra := ds[89]
	extra.ID = 0
	if err := r2.AddDefects(extra); err != nil {
		t.Fatal(err)
	}
	if err := r2.Close(); err != nil {
		t.Fatal(err)
	}
	_, got, _, err := ReadRoll(filepath.Join(s.Root(), "D1"))
	if err != nil {
		t.Fatal(err)
	}
	// Numbering goes on above every ID the crashed writer may have
	// handed out (its reservation in roll.json), never reusing one.
	if last := got[len(got)-1].ID; last != rr.MaxDefectID+1 || last <= 90 {
		t.Errorf("the defect added after the resume has ID %d, want MaxDefectID+1 = %d (> 90)", last, rr.MaxDefectID+1)
	}
	extra.ID = got[len(got)-1].ID
	equalRows(t, "after resume", got, append(want, stored("D1", []Defect{extra})...))
	if m, _ := filepath.Glob(path + ".damaged-*"); len(m) != 1 {
		t.Errorf("damaged file kept: %v", m)
	}
}

// TestVersion2IsArrowIPC reads a version-2 file with a plain arrow-go
// stream reader, which knows nothing of the trailers: it is still an Arrow
// IPC stream.
func TestVersion2IsArrowIPC(t *testing.T) {
	file, _, rowsAt := flushedRoll(t, true)
	rd, err := ipc.NewReader(bytes.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Release()
	rows := 0
	for rd.Next() {
		rows += int(rd.RecordBatch().NumRows())
	}
	if err := rd.Err(); err != nil || rows != len(rowsAt[len(rowsAt)-1]) {
		t.Errorf("arrow-go read %d rows, %v; want %d", rows, err, len(rowsAt[len(rowsAt)-1]))
	}
	if v, _ := rd.Schema().Metadata().GetValue(VersionKey); v != FormatVersion {
		t.Errorf("schema version %q", v)
	}
}

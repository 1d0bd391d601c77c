package sim

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Truth is the ground truth of one injected defect: the exact geometric
// bounding box of its shape in web coordinates.
type Truth struct {
	ID        int     // 1.., in order of MDStartM
	Class     string  // hole, stain, streak, knot, slub, crease, gel, scratch
	Polarity  string  // bright, dark or mixed
	MDStartM  float64 // metres from encoder count 0
	MDEndM    float64
	CDStartMM float64 // millimetres from the operator-side web edge
	CDEndMM   float64
	Contrast  float64 // magnitude of the grey-level change of a fully covered pixel
	SizeMM    float64 // max(MD length, CD width) in mm
}

// TruthHeader is the header line of a truth CSV file.
const TruthHeader = "id,class,md_start_m,md_end_m,cd_start_mm,cd_end_mm,polarity,contrast,size_mm"

// WriteTruthCSV writes truths as CSV with the TruthHeader columns.
func WriteTruthCSV(w io.Writer, truths []Truth) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(strings.Split(TruthHeader, ",")); err != nil {
		return fmt.Errorf("sim: write truth header: %w", err)
	}
	f := func(v float64, prec int) string { return strconv.FormatFloat(v, 'f', prec, 64) }
	for _, t := range truths {
		rec := []string{
			strconv.Itoa(t.ID), t.Class,
			f(t.MDStartM, 6), f(t.MDEndM, 6),
			f(t.CDStartMM, 3), f(t.CDEndMM, 3),
			t.Polarity, f(t.Contrast, 1), f(t.SizeMM, 3),
		}
		if err := cw.Write(rec); err != nil {
			return fmt.Errorf("sim: write truth %d: %w", t.ID, err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("sim: write truth: %w", err)
	}
	return nil
}

// ReadTruthCSV reads a file written by WriteTruthCSV. The header must match
// TruthHeader exactly.
func ReadTruthCSV(r io.Reader) ([]Truth, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	head, err := cr.Read()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("sim: read truth: empty file, want header %q", TruthHeader)
		}
		return nil, fmt.Errorf("sim: read truth header: %w", err)
	}
	if got := strings.Join(head, ","); got != TruthHeader {
		return nil, fmt.Errorf("sim: read truth: header %q, want %q", got, TruthHeader)
	}
	cols := len(head)
	var out []Truth
	for line := 2; ; line++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("sim: read truth line %d: %w", line, err)
		}
		if len(rec) != cols {
			return nil, fmt.Errorf("sim: read truth line %d: %d fields, want %d", line, len(rec), cols)
		}
		var t Truth
		var perr error
		num := func(i int) float64 {
			v, err := strconv.ParseFloat(rec[i], 64)
			if err != nil && perr == nil {
				perr = fmt.Errorf("sim: read truth line %d column %s: %w", line, head[i], err)
			}
			return v
		}
		id, err := strconv.Atoi(rec[0])
		if err != nil {
			return nil, fmt.Errorf("sim: read truth line %d column id: %w", line, err)
		}
		t.ID = id
		t.Class = rec[1]
		t.MDStartM, t.MDEndM = num(2), num(3)
		t.CDStartMM, t.CDEndMM = num(4), num(5)
		t.Polarity = rec[6]
		t.Contrast, t.SizeMM = num(7), num(8)
		if perr != nil {
			return nil, perr
		}
		out = append(out, t)
	}
}

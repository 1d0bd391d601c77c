package main

import (
	"encoding/csv"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/webinspect/webinspect/rollmap"
)

// A roll whose defects stream is damaged mid-way failed to export, with a
// recovered panic in the message (issue 14 #11). The readable batches are
// exported; the exit status is non-zero and the one-line error says where
// the readable records stop, without a panic.
func TestExportDamagedMidway(t *testing.T) {
	for _, c := range []struct {
		name string
		at   int64 // offset in the second batch to overwrite from
	}{{"metadata", 8}, {"body", 200}, {"framing", 0}} {
		t.Run(c.name, func(t *testing.T) {
			rolls := t.TempDir()
			st, err := rollmap.OpenStore(rolls)
			if err != nil {
				t.Fatal(err)
			}
			r, err := st.StartRoll(rollmap.RollMeta{ID: "D", Recipe: "fabric-default", WebWidthMM: 2000})
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(rolls, "D", rollmap.DefectsFile)
			var ends []int64
			id := int64(0)
			for batch := 0; batch < 3; batch++ {
				for i := 0; i < 5; i++ {
					id++
					md := float64(id)
					if err := r.AddDefects(rollmap.Defect{ID: id, MDStartM: md, MDEndM: md + 0.01, CDStartMM: 10, CDEndMM: 20,
						AreaMM2: 3, Class: "hole", Severity: "major", Decision: "mark", Polarity: "bright", Detector: "threshold"}); err != nil {
						t.Fatal(err)
					}
				}
				if err := r.Flush(); err != nil {
					t.Fatal(err)
				}
				fi, err := os.Stat(path)
				if err != nil {
					t.Fatal(err)
				}
				ends = append(ends, fi.Size())
			}
			r.SetLength(20)
			if err := r.Close(); err != nil {
				t.Fatal(err)
			}
			st.Unlock()
			f, err := os.OpenFile(path, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			junk := []byte(strings.Repeat("\xff", 48))
			if _, err := f.WriteAt(junk, ends[0]+c.at); err != nil {
				t.Fatal(err)
			}
			f.Close()

			out := filepath.Join(t.TempDir(), "d.csv")
			code, _, stderr := runCLI(t, "export", filepath.Join(rolls, "D"), "--format", "csv", "--out", out)
			// Format version 2 checks every message: the damaged batch
			// (defects 6..10) is left out and named by its bytes, the
			// batches before and after it are exported.
			oneLineError(t, code, stderr, "roll D is damaged", "exported the 10 readable defects", rollmap.DefectsFile, "bytes ")
			if strings.Contains(stderr, "panic") || strings.Contains(stderr, "runtime error") {
				t.Errorf("error shows a recovered panic: %s", stderr)
			}
			b, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			rows, err := csv.NewReader(strings.NewReader(string(b))).ReadAll()
			if err != nil || len(rows) != 1+10 {
				t.Fatalf("exported CSV: %d rows, %v; want a header and the 10 readable defects:\n%s", len(rows), err, b)
			}
			for _, row := range rows[1:] {
				if id, _ := strconv.Atoi(row[1]); id >= 6 && id <= 10 {
					t.Errorf("defect %d of the damaged batch was exported", id)
				}
			}
		})
	}
}

// A version-1 roll (no checksums) damaged inside a record batch: the
// decoder panicked and the export showed the recovered panic (issue 14
// #11). The readable batch is exported and the error says at which byte
// the readable records stop.
func TestExportV1DamagedMidway(t *testing.T) {
	src := filepath.Join("..", "..", "rollmap", "testdata", "roll-v1")
	dir := filepath.Join(t.TempDir(), "V1")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{rollmap.MetaFile, rollmap.DefectsFile, rollmap.UninspectedFile} {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			t.Fatal(err)
		}
		if f == rollmap.DefectsFile {
			b[3488+959] = 0xff // in the second of its two batches (bytes 3488–5072); see rollmap's TestV1DamagedBatchSaysWhereReadingStops
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(t.TempDir(), "d.csv")
	code, _, stderr := runCLI(t, "export", dir, "--format", "csv", "--out", out)
	oneLineError(t, code, stderr, "is damaged", rollmap.DefectsFile, "bytes 3488–5072", "stop at byte 3488")
	if strings.Contains(stderr, "panic") || strings.Contains(stderr, "runtime error") {
		t.Errorf("error shows a recovered panic: %s", stderr)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(strings.NewReader(string(b))).ReadAll()
	if err != nil || len(rows) < 2 {
		t.Fatalf("exported CSV: %d rows, %v; want the first batch's defects", len(rows), err)
	}
	t.Logf("%s", strings.TrimSpace(stderr))
}

package plant

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/rs/zerolog"
)

// BenchmarkCompaction measures one over day of a busy line, 2000 part
// files of 20 rows (some 8 minutes of 250 ms flushes), read whole before
// and after compaction (readDataset, as Defects and an index rebuild
// read), and the compaction itself with its longest reader-visible
// window (renames to the last removal), in the same run.
//
//	go test ./plant -run '^$' -bench Compaction -benchtime 5x
func BenchmarkCompaction(b *testing.B) {
	const files, rows = 2000, 20
	parts := b.TempDir()
	writeParts(b, parts, "L1", pastDay, files, rows)
	read := func(b *testing.B, root string) {
		b.ReportAllocs()
		for range b.N {
			n := 0
			if err := readDataset(root, false, func(*defectRow) { n++ }); err != nil || n != files*rows {
				b.Fatal(n, err)
			}
		}
		b.ReportMetric(float64(files*rows*b.N)/b.Elapsed().Seconds(), "rows/s")
	}
	b.Run("read=parts", func(b *testing.B) { read(b, parts) })
	b.Run("compact", func(b *testing.B) {
		var window float64 // the longest reader-visible window, ms (the log's "window")
		for range b.N {
			b.StopTimer()
			root := filepath.Join(b.TempDir(), "d")
			if err := exec.Command("cp", "-r", parts, root).Run(); err != nil {
				b.Fatal(err)
			}
			var log bytes.Buffer
			b.StartTimer()
			if st, err := Compact(context.Background(), root, CompactOptions{}, zerolog.New(&log), nil); err != nil || st.Files != files || st.Outputs != 1 {
				b.Fatal(st, err)
			}
			var rec struct{ Window float64 }
			if err := json.Unmarshal(log.Bytes(), &rec); err != nil {
				b.Fatal(err, log.String())
			}
			window = max(window, rec.Window)
		}
		b.ReportMetric(float64(files*b.N)/b.Elapsed().Seconds(), "files/s")
		b.ReportMetric(window, "window-ms")
	})
	compacted := filepath.Join(b.TempDir(), "d")
	if err := exec.Command("cp", "-r", parts, compacted).Run(); err != nil {
		b.Fatal(err)
	}
	if _, err := Compact(context.Background(), compacted, CompactOptions{}, zerolog.Nop(), nil); err != nil {
		b.Fatal(err)
	}
	b.Run("read=compacted", func(b *testing.B) { read(b, compacted) })
}

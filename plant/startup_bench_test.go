package plant

import (
	"fmt"
	"testing"
	"time"

	"github.com/webinspect/webinspect/rollmap"
)

// BenchmarkStartup measures the plant service's start on a history of
// 10 lines × 30 days × 500 defects (150 000 rows, 4 rolls a day per
// line), from its index (NewService), beside reading every row of the
// dataset (what the start did before the index, readDataset), in the same
// run.
//
//	go test ./plant -run '^$' -bench Startup -benchtime 5x
func BenchmarkStartup(b *testing.B) {
	data := b.TempDir()
	day0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	seq := int64(0)
	for l := range 10 {
		for d := range 30 {
			var rows []*defectRow
			for i := range 500 {
				roll := fmt.Sprintf("R%03d", d*4+i/125)
				rows = append(rows, &defectRow{Line: fmt.Sprintf("L%d", l), Roll: roll, ID: int64(i%125 + 1), MDStart: float64(i),
					Class: classes[i%len(classes)], Severity: []string{"minor", "minor", "major", "critical"}[i%4],
					Time: day0.Add(time.Duration(d)*24*time.Hour + time.Duration(i)*time.Minute), Ctx: rollmap.RollContext{Shift: "A"}})
			}
			seq++
			if err := writePart(data, seq, rows); err != nil {
				b.Fatal(err)
			}
		}
	}
	o := ServiceOptions{URLs: []string{"nats://127.0.0.1:1"}, Data: data}
	if _, err := NewService(o); err != nil { // builds the index once
		b.Fatal(err)
	}
	b.Run("index", func(b *testing.B) {
		for range b.N {
			s, err := NewService(o)
			if err != nil {
				b.Fatal(err)
			}
			if c := s.Counts(); c.Total != 150000 {
				b.Fatalf("%d defects", c.Total)
			}
		}
	})
	b.Run("rows", func(b *testing.B) {
		for range b.N {
			n := 0
			if err := readDataset(data, false, func(*defectRow) { n++ }); err != nil || n != 150000 {
				b.Fatal(n, err)
			}
		}
	})
}

package rollmap

import (
	"slices"
	"testing"
)

func TestRowLog(t *testing.T) {
	var l rowLog[int]
	var views []rowView[int]
	for i := range 3*chunkRows + 7 {
		if i%500 == 0 || i == chunkRows || i == 2*chunkRows {
			views = append(views, l.view())
		}
		l.append(i)
	}
	views = append(views, l.view())
	for _, v := range views {
		for _, lo := range []int{0, 1, chunkRows - 1, chunkRows, chunkRows + 1, v.n - 1, v.n, v.n + 5} {
			if lo < 0 {
				continue
			}
			got := v.appendTo([]int{-1}, lo)
			want := []int{-1}
			for i := lo; i < v.n; i++ {
				want = append(want, i)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("view of %d rows from %d: %d rows, want %d", v.n, lo, len(got)-1, len(want)-1)
			}
			for _, s := range v.slices(lo) {
				if len(s) == 0 || len(s) > chunkRows {
					t.Fatalf("view of %d rows from %d: slice of %d rows", v.n, lo, len(s))
				}
			}
		}
		if p := v.prefix(3); p.n != min(3, v.n) {
			t.Errorf("prefix(3) of %d rows has %d", v.n, p.n)
		}
	}
}

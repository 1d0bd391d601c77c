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

// TestRowLogDrop checks that dropping old chunks keeps the rows after the
// new base, leaves views taken before intact, and that skip starts a log
// at a row offset.
func TestRowLogDrop(t *testing.T) {
	var l rowLog[int]
	for i := range 5*chunkRows + 10 {
		l.append(i)
	}
	old := l.view()
	if n := l.drop(2*chunkRows + 5); n != 2*chunkRows {
		t.Fatalf("drop dropped %d rows, want %d (whole chunks only)", n, 2*chunkRows)
	}
	if n := l.drop(chunkRows); n != 0 {
		t.Fatalf("drop below base dropped %d", n)
	}
	for i := 5*chunkRows + 10; i < 6*chunkRows+3; i++ {
		l.append(i)
	}
	v := l.view()
	if v.base != 2*chunkRows || v.n != 6*chunkRows+3 {
		t.Fatalf("view base %d n %d", v.base, v.n)
	}
	for _, lo := range []int{0, 2*chunkRows - 1, 2 * chunkRows, 3*chunkRows + 7} {
		got := v.appendTo(nil, lo)
		want := []int{}
		for i := max(lo, v.base); i < v.n; i++ {
			want = append(want, i)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("from %d: %d rows, want %d", lo, len(got), len(want))
		}
	}
	if got := old.appendTo(nil, 0); len(got) != 5*chunkRows+10 || got[0] != 0 || got[len(got)-1] != 5*chunkRows+9 {
		t.Fatalf("a view taken before the drop changed: %d rows", len(got))
	}
	var s rowLog[int]
	s.skip(3000)
	s.append(3000)
	if got := s.view().appendTo(nil, 0); !slices.Equal(got, []int{3000}) || s.len() != 3001 {
		t.Fatalf("after skip: %v, len %d", got, s.len())
	}
}

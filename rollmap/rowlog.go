package rollmap

import "slices"

// chunkRows is the number of rows in one chunk of a rowLog.
const chunkRows = 1024

// rowLog is an append-only sequence of rows kept in fixed-size chunks.
// Growing it never copies or moves a row, so a long roll does not stall
// its writer on reallocation, and a reader can use a prefix (a rowView)
// while the writer appends: the writer only writes to rows at or after the
// view's end, and to chunk pointers beyond the view's chunk list.
//
// The log may forget its oldest rows (drop): rows [0, base) are then no
// longer in memory (an open roll reads them from its file), and rows
// [base, n) are in chunks[0...], row i at chunks[(i-base)/chunkRows]
// [(i-base)%chunkRows]. Dropping replaces the chunk list with a new one,
// so views taken before keep theirs.
// The owner serialises appends, drops and snapshots with a mutex.
type rowLog[T any] struct {
	chunks []*[chunkRows]T
	base   int // rows before base are not in memory
	n      int // rows appended in all, including the dropped ones
}

func (l *rowLog[T]) append(v T) {
	i := l.n - l.base
	if i == len(l.chunks)*chunkRows {
		l.chunks = append(l.chunks, new([chunkRows]T))
	}
	l.chunks[i/chunkRows][i%chunkRows] = v
	l.n++
}

func (l *rowLog[T]) len() int { return l.n }

// skip starts an empty log at row n: rows [0, n) are not in memory.
func (l *rowLog[T]) skip(n int) {
	if l.n != 0 {
		panic("rollmap: rowLog.skip on a log with rows")
	}
	l.base, l.n = n, n
}

// drop forgets the whole chunks holding only rows before keep. It
// returns the number of rows dropped.
func (l *rowLog[T]) drop(keep int) int {
	k := (min(keep, l.n) - l.base) / chunkRows
	if k <= 0 {
		return 0
	}
	// A new list: views share the old one and may still read its chunks.
	l.chunks = slices.Clone(l.chunks[k:])
	l.base += k * chunkRows
	return k * chunkRows
}

// view returns the rows appended so far. The rows must not be modified.
func (l *rowLog[T]) view() rowView[T] {
	k := len(l.chunks)
	return rowView[T]{chunks: l.chunks[:k:k], base: l.base, n: l.n}
}

// rowView is an immutable prefix of a rowLog: rows [0, n), of which
// [base, n) are in memory.
type rowView[T any] struct {
	chunks []*[chunkRows]T
	base   int
	n      int
}

// prefix returns the first n rows of v.
func (v rowView[T]) prefix(n int) rowView[T] {
	v.n = max(v.base, min(v.n, n))
	return v
}

// slices returns the rows [max(lo, base), n) as slices of at most
// chunkRows rows (sharing the log's memory).
func (v rowView[T]) slices(lo int) [][]T {
	lo = max(lo, v.base) - v.base
	n := v.n - v.base
	if lo >= n {
		return nil
	}
	out := make([][]T, 0, (n-lo)/chunkRows+2)
	for lo < n {
		c, i := lo/chunkRows, lo%chunkRows
		hi := min(chunkRows, n-c*chunkRows)
		out = append(out, v.chunks[c][i:hi])
		lo += hi - i
	}
	return out
}

// appendTo appends copies of the rows [max(lo, base), n) to dst.
func (v rowView[T]) appendTo(dst []T, lo int) []T {
	for _, s := range v.slices(lo) {
		dst = append(dst, s...)
	}
	return dst
}

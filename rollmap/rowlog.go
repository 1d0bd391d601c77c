package rollmap

// chunkRows is the number of rows in one chunk of a rowLog.
const chunkRows = 1024

// rowLog is an append-only sequence of rows kept in fixed-size chunks.
// Growing it never copies or moves a row, so a long roll does not stall
// its writer on reallocation, and a reader can use a prefix (a rowView)
// while the writer appends: the writer only writes to rows at or after the
// view's end, and to chunk pointers beyond the view's chunk list.
// The owner serialises appends and snapshots with a mutex.
type rowLog[T any] struct {
	chunks []*[chunkRows]T
	n      int
}

func (l *rowLog[T]) append(v T) {
	if l.n == len(l.chunks)*chunkRows {
		l.chunks = append(l.chunks, new([chunkRows]T))
	}
	l.chunks[l.n/chunkRows][l.n%chunkRows] = v
	l.n++
}

func (l *rowLog[T]) len() int { return l.n }

// view returns the rows appended so far. The rows must not be modified.
func (l *rowLog[T]) view() rowView[T] {
	k := len(l.chunks)
	return rowView[T]{chunks: l.chunks[:k:k], n: l.n}
}

// rowView is an immutable prefix of a rowLog.
type rowView[T any] struct {
	chunks []*[chunkRows]T
	n      int
}

// prefix returns the first n rows of v.
func (v rowView[T]) prefix(n int) rowView[T] {
	v.n = min(v.n, n)
	return v
}

// slices returns the rows [lo, n) as slices of at most chunkRows rows
// (sharing the log's memory).
func (v rowView[T]) slices(lo int) [][]T {
	if lo >= v.n {
		return nil
	}
	out := make([][]T, 0, (v.n-lo)/chunkRows+2)
	for lo < v.n {
		c, i := lo/chunkRows, lo%chunkRows
		hi := min(chunkRows, v.n-c*chunkRows)
		out = append(out, v.chunks[c][i:hi])
		lo += hi - i
	}
	return out
}

// appendTo appends copies of the rows [lo, n) to dst.
func (v rowView[T]) appendTo(dst []T, lo int) []T {
	for _, s := range v.slices(lo) {
		dst = append(dst, s...)
	}
	return dst
}

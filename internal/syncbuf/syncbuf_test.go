package syncbuf

import (
	"strings"
	"sync"
	"testing"
)

// Writers and a reader at once (run with -race): every write is kept
// whole, and Reset empties it.
func TestConcurrent(t *testing.T) {
	var b Buffer
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 100 {
				b.Write([]byte("line\n"))
				_ = b.String()
			}
		})
	}
	wg.Wait()
	if n := strings.Count(b.String(), "line\n"); n != 400 || b.Len() != 400*5 {
		t.Fatalf("%d lines, %d bytes; want 400 lines, 2000 bytes", n, b.Len())
	}
	b.Reset()
	if b.Len() != 0 || b.String() != "" {
		t.Fatalf("after Reset: %q", b.String())
	}
}

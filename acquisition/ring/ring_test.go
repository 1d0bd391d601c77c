package ring

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/webinspect/webinspect/acquisition"
)

// fill writes block contents that identify each line: line l has encoder
// count 5*l+11 and pixel x = byte(l*7 + x).
func fill(b *acquisition.Block, first int64, lines int) {
	b.FirstLine = first
	b.Lines = lines
	for i := range lines {
		l := first + int64(i)
		b.Counts[i] = 5*l + 11
		px := b.Line(i)
		for x := range px {
			px[x] = byte(l*7 + int64(x))
		}
	}
}

// check verifies that b holds exactly the lines fill wrote.
func check(t *testing.T, b *acquisition.Block) {
	t.Helper()
	for i := range b.Lines {
		l := b.FirstLine + int64(i)
		if b.Counts[i] != 5*l+11 {
			t.Fatalf("block at line %d: line %d has count %d, want %d", b.FirstLine, l, b.Counts[i], 5*l+11)
		}
		for x, v := range b.Line(i) {
			if v != byte(l*7+int64(x)) {
				t.Fatalf("block at line %d: line %d pixel %d = %d, want %d (overwritten while held?)",
					b.FirstLine, l, x, v, byte(l*7+int64(x)))
			}
		}
	}
}

func mustPanic(t *testing.T, want string, f func()) {
	t.Helper()
	defer func() {
		t.Helper()
		r := recover()
		if s, _ := r.(string); !strings.Contains(s, want) {
			t.Fatalf("panic %v, want one mentioning %q", r, want)
		}
	}()
	f()
}

func TestNew(t *testing.T) {
	r := New(3, 8, 100)
	if r.Cap() != 3 || r.Len() != 0 {
		t.Fatalf("Cap %d Len %d, want 3, 0", r.Cap(), r.Len())
	}
	b := r.Reserve()
	if b.Cap() != 8 || b.Width != 100 || b.Stride != 100 {
		t.Fatalf("block Cap %d Width %d Stride %d, want 8, 100, 100", b.Cap(), b.Width, b.Stride)
	}
	mustPanic(t, "n >= 2", func() { New(1, 8, 100) })
	mustPanic(t, "positive", func() { New(2, 0, 100) })
}

func TestCapacity(t *testing.T) {
	r := New(3, 2, 4)
	seen := map[*acquisition.Block]bool{}
	for i := range 3 {
		b := r.Reserve()
		if b == nil {
			t.Fatalf("Reserve %d returned nil with %d of 3 slots used", i, i)
		}
		if r.Reserve() != b {
			t.Fatalf("Reserve twice before Commit returned different blocks")
		}
		if seen[b] {
			t.Fatalf("Reserve %d returned a block already in the ring", i)
		}
		seen[b] = true
		fill(b, int64(2*i), 2)
		r.Commit(Dropped{})
	}
	if r.Reserve() != nil {
		t.Fatal("Reserve on a full ring did not return nil")
	}
	if r.Len() != 3 {
		t.Fatalf("Len %d, want 3", r.Len())
	}
	b, _, ok := r.Pop()
	if !ok || b.FirstLine != 0 {
		t.Fatalf("Pop: %v %v, want the block at line 0", b, ok)
	}
	if r.Reserve() != nil {
		t.Fatal("a popped block was handed to the producer before Release")
	}
	r.Release()
	if r.Len() != 2 {
		t.Fatalf("Len %d after one Release, want 2", r.Len())
	}
	nb := r.Reserve()
	if nb != b {
		t.Fatal("Reserve after Release did not reuse the released block")
	}
	fill(nb, 6, 2)
	r.Commit(Dropped{})
	// FIFO, several held at once, released oldest first.
	var held []*acquisition.Block
	for want := int64(2); want <= 6; want += 2 {
		b, _, ok := r.Pop()
		if !ok || b.FirstLine != want {
			t.Fatalf("Pop: ok %v line %d, want line %d", ok, b.FirstLine, want)
		}
		check(t, b)
		held = append(held, b)
	}
	if _, _, ok := r.Pop(); ok {
		t.Fatal("Pop on an empty ring returned a block")
	}
	for range held {
		r.Release()
	}
	mustPanic(t, "Release without", r.Release)
	mustPanic(t, "Commit without", func() { r.Commit(Dropped{}) })
	st := r.Stats()
	if st.Committed != 4 || st.Len != 0 || st.Cap != 3 || st.DroppedBlocks != 0 {
		t.Fatalf("Stats %+v", st)
	}
}

func TestDroppedAttachedToNextBlock(t *testing.T) {
	r := New(2, 4, 8)
	scratch := acquisition.NewBlock(4, 8)
	var d Dropped
	next := int64(0)
	produce := func() bool {
		b := r.Reserve()
		if b == nil {
			fill(scratch, next, 4)
			d.Add(scratch)
			next += 4
			return false
		}
		fill(b, next, 4)
		next += 4
		r.Commit(d)
		d = Dropped{}
		return true
	}
	produce() // 0..3
	produce() // 4..7
	produce() // 8..11 dropped
	produce() // 12..15 dropped
	if _, dr, _ := r.Pop(); !dr.Empty() {
		t.Fatalf("first block carries a drop: %+v", dr)
	}
	r.Release()
	produce() // 16..19 committed with the drop
	if _, dr, _ := r.Pop(); !dr.Empty() {
		t.Fatalf("second block carries a drop: %+v", dr)
	}
	r.Release()
	b, dr, ok := r.Pop()
	want := Dropped{Blocks: 2, FirstLine: 8, Lines: 8, FirstCount: 5*8 + 11, LastCount: 5*15 + 11}
	if !ok || b.FirstLine != 16 || dr != want {
		t.Fatalf("third block: line %d drop %+v, want line 16 drop %+v", b.FirstLine, dr, want)
	}
	r.Release()
	if st := r.Stats(); st.DroppedBlocks != 2 || st.DroppedLines != 8 || st.Committed != 3 {
		t.Fatalf("Stats %+v", st)
	}
}

func TestDroppedAdd(t *testing.T) {
	var d Dropped
	if !d.Empty() {
		t.Fatal("zero Dropped not Empty")
	}
	b := acquisition.NewBlock(4, 2)
	fill(b, 0, 0)
	d.Add(b) // a block with no lines
	if d.Empty() || d.Blocks != 1 || d.Lines != 0 {
		t.Fatalf("after an empty block: %+v", d)
	}
	fill(b, 100, 4)
	d.Add(b)
	fill(b, 104, 3)
	d.Add(b)
	fill(b, 110, 2) // the source skipped 107..109: covered too
	d.Add(b)
	want := Dropped{Blocks: 4, FirstLine: 100, Lines: 12, FirstCount: 511, LastCount: 5*111 + 11}
	if d != want {
		t.Fatalf("got %+v, want %+v", d, want)
	}
}

func TestCloseDrain(t *testing.T) {
	r := New(4, 1, 4)
	for i := range 2 {
		fill(r.Reserve(), int64(i), 1)
		r.Commit(Dropped{})
	}
	final := Dropped{Blocks: 1, FirstLine: 2, Lines: 1, FirstCount: 21, LastCount: 21}
	r.Close(final)
	ctx := context.Background()
	for i := range 2 {
		if err := r.Wait(ctx); err != nil {
			t.Fatalf("Wait before block %d: %v", i, err)
		}
		b, _, ok := r.Pop()
		if !ok || b.FirstLine != int64(i) {
			t.Fatalf("Pop %d after Close: ok %v line %d", i, ok, b.FirstLine)
		}
		r.Release()
	}
	for range 2 {
		if err := r.Wait(ctx); err != io.EOF {
			t.Fatalf("Wait on a drained closed ring: %v, want io.EOF", err)
		}
	}
	if r.Final() != final {
		t.Fatalf("Final %+v, want %+v", r.Final(), final)
	}
	if st := r.Stats(); st.DroppedBlocks != 1 || st.DroppedLines != 1 {
		t.Fatalf("Stats %+v: final drop not counted", st)
	}
	mustPanic(t, "twice", func() { r.Close(Dropped{}) })
}

func TestWait(t *testing.T) {
	r := New(2, 1, 4)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := r.Wait(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait with a cancelled context on an empty ring: %v", err)
	}
	// On an empty ring Wait returns only when its context ends.
	tctx, tcancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer tcancel()
	if err := r.Wait(tctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait on an empty ring: %v, want context.DeadlineExceeded", err)
	}
	// A block committed while the consumer waits wakes it (the pause
	// lets it park first; if it has not, it finds the block at once).
	done := make(chan error, 1)
	go func() { done <- r.Wait(context.Background()) }()
	time.Sleep(10 * time.Millisecond)
	fill(r.Reserve(), 0, 1)
	r.Commit(Dropped{})
	if err := <-done; err != nil {
		t.Fatalf("Wait after Commit: %v", err)
	}
	// A published block is reported even when ctx is done.
	if err := r.Wait(ctx); err != nil {
		t.Fatalf("Wait with a block ready and a cancelled context: %v", err)
	}
	if _, _, ok := r.Pop(); !ok {
		t.Fatal("Pop after Wait returned nothing")
	}
	r.Release()
	// Close wakes a waiting consumer with io.EOF.
	go func() { done <- r.Wait(context.Background()) }()
	time.Sleep(5 * time.Millisecond)
	r.Close(Dropped{})
	if err := <-done; err != io.EOF {
		t.Fatalf("Wait woken by Close: %v, want io.EOF", err)
	}
}

// TestStress runs a fast producer against a slow consumer and checks that
// every line is either delivered, in order and intact, or reported in
// exactly one Dropped range.
func TestStress(t *testing.T) {
	const (
		linesPerBlock = 4
		width         = 32
	)
	blocks := 4000
	if testing.Short() {
		blocks = 800
	}
	for _, n := range []int{2, 5} {
		r := New(n, linesPerBlock, width)
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { // producer
			defer wg.Done()
			rnd := rand.New(rand.NewPCG(1, uint64(n)))
			scratch := acquisition.NewBlock(linesPerBlock, width)
			var d Dropped
			line := int64(0)
			for range blocks {
				lines := linesPerBlock
				if rnd.IntN(10) == 0 {
					lines = 1 + rnd.IntN(linesPerBlock) // short blocks too
				}
				if b := r.Reserve(); b != nil {
					fill(b, line, lines)
					r.Commit(d)
					d = Dropped{}
				} else {
					fill(scratch, line, lines)
					d.Add(scratch)
				}
				line += int64(lines)
				if rnd.IntN(32) == 0 {
					time.Sleep(50 * time.Microsecond) // bursts
				}
			}
			r.Close(d)
		}()

		rnd := rand.New(rand.NewPCG(2, uint64(n)))
		next := int64(0)
		delivered, dropped, drops := int64(0), int64(0), 0
		account := func(d Dropped) {
			if d.Empty() {
				return
			}
			if d.FirstLine != next {
				t.Fatalf("n=%d: drop starts at line %d, want %d", n, d.FirstLine, next)
			}
			if d.FirstCount != 5*d.FirstLine+11 || d.LastCount != 5*(d.FirstLine+d.Lines-1)+11 {
				t.Fatalf("n=%d: drop %+v has wrong counts", n, d)
			}
			next += d.Lines
			dropped += d.Lines
			drops++
		}
		time.Sleep(2 * time.Millisecond) // start behind
		for {
			err := r.Wait(context.Background())
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			b, d, ok := r.Pop()
			if !ok {
				t.Fatal("Pop returned nothing after Wait returned nil")
			}
			account(d)
			if b.FirstLine != next {
				t.Fatalf("n=%d: block starts at line %d, want %d", n, b.FirstLine, next)
			}
			check(t, b)
			next += int64(b.Lines)
			delivered += int64(b.Lines)
			if rnd.IntN(4) == 0 {
				time.Sleep(20 * time.Microsecond) // slow consumer
			}
			r.Release()
		}
		account(r.Final())
		wg.Wait()
		st := r.Stats()
		if delivered+dropped != next || st.DroppedLines != dropped {
			t.Fatalf("n=%d: delivered %d + dropped %d != %d lines (stats %+v)", n, delivered, dropped, next, st)
		}
		if delivered == 0 || dropped == 0 {
			t.Fatalf("n=%d: delivered %d, dropped %d lines: the stress did not exercise both paths", n, delivered, dropped)
		}
		if st.Len != 0 {
			t.Fatalf("n=%d: Len %d after drain", n, st.Len)
		}
		t.Logf("n=%d: %d lines, %d delivered in %d blocks, %d dropped in %d ranges", n, next, delivered, st.Committed, dropped, drops)
	}
}

func TestNoAlloc(t *testing.T) {
	r := New(4, 16, 64)
	a := testing.AllocsPerRun(100, func() {
		r.Reserve()
		r.Commit(Dropped{})
		if err := r.Wait(context.Background()); err != nil {
			panic(err)
		}
		r.Pop()
		r.Release()
	})
	if a != 0 {
		t.Fatalf("%v allocations per cycle, want 0", a)
	}
}

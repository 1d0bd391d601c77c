// Package ring is the lock-free single-producer single-consumer queue of
// preallocated blocks between a camera's acquisition loop and the
// inspection stages.
//
// # Model
//
// A Ring owns n blocks, allocated once by New. They cycle between the two
// sides and are never copied or reallocated:
//
//	producer                      slots (n)                        consumer
//	Reserve ─▶ fill ─▶ Commit ─▶ [ published … ] ─▶ Pop ─▶ use ─▶ Release
//	   ▲                                                              │
//	   └──────────────────────── free slots ◀─────────────────────────┘
//
// The producer never blocks. When every slot is published or still held by
// the consumer, Reserve returns nil; the producer then reads the camera's
// lines into a scratch block of its own (the camera must be drained or it
// overruns) and records them with Dropped.Add. Dropped lines between two
// committed blocks are contiguous, so one Dropped record per committed block
// describes them exactly: the producer attaches the accumulated record to
// its next Commit (or to Close, if the stream ends first) and starts a new
// one. The consumer receives the record together with the block it
// precedes, before that block's lines, so it can close its open regions and
// mark the range uninspected. No drop is lost and none is reported twice.
//
// # Ownership
//
// Between Reserve and Commit the slot belongs to the producer; between Pop
// and Release it belongs to the consumer; otherwise to the ring. A block
// must not be touched by a side that does not own it.
//
// # Memory ordering
//
// Two monotonically increasing 64-bit counters carry all synchronisation:
// head, the number of blocks committed (written only by the producer), and
// tail, the number of blocks released (written only by the consumer). Slot
// i%n holds block number i. sync/atomic operations are sequentially
// consistent, which includes acquire/release:
//
//   - Commit writes the block's pixels and its drop record, then stores
//     head+1. The consumer's Load of head that observes it therefore also
//     observes those writes (release store → acquire load), so Pop reads a
//     fully written block and record.
//   - Release stores tail+1 after the consumer's last access to the block.
//     The producer's Load of tail in Reserve that observes it orders its
//     subsequent writes into that slot after the consumer's reads, so the
//     producer never overwrites a block still in use.
//   - Close writes the final record, then stores closed. A consumer that
//     loads closed == true also sees the final record and every commit made
//     before Close.
//
// Each counter has one writer, so no compare-and-swap is needed, and each
// side keeps a private copy of its own counter. Counters sit on separate
// cache lines so the two cores do not fight over one line.
//
// Wait sleeps on a one-slot notification channel. Commit and Close send on
// it without blocking (a pending token is enough); the consumer re-checks
// head after every wake-up, so a token left over from an earlier Commit
// costs one spurious loop and a Commit that races with the check is never
// missed. No mutex is taken on either side.
package ring

import (
	"context"
	"io"
	"strconv"
	"sync/atomic"

	"github.com/webinspect/webinspect/acquisition"
)

// Dropped is a range of lines the producer could not enqueue because the
// ring was full.
type Dropped struct {
	Blocks                int64 // blocks dropped
	FirstLine, Lines      int64 // line sequence range [FirstLine, FirstLine+Lines)
	FirstCount, LastCount int64 // encoder counts of the first and last dropped line
}

// Empty reports whether d records no drop.
func (d Dropped) Empty() bool { return d.Blocks == 0 && d.Lines == 0 }

// Add extends d with block b, which the producer read into a scratch block
// because Reserve returned nil. Blocks arrive in line order; if b does not
// start right after the lines already in d (the source itself skipped some),
// the range is widened to cover the skipped lines too, since none of them
// reached the consumer; so are the lines b.Lost says the source lost before
// b. A block of zero lines counts as a block only.
func (d *Dropped) Add(b *acquisition.Block) {
	d.Blocks++
	if b.Lines <= 0 {
		return
	}
	if d.Lines == 0 {
		d.FirstLine = b.FirstLine
		d.FirstCount = b.Counts[0]
		if l := b.Lost; !l.Empty() {
			// Lines the source lost just before a dropped block never
			// reach the consumer either: one range covers both.
			d.FirstLine, d.FirstCount = l.FirstLine, l.FirstCount
		}
	}
	d.Lines = b.FirstLine + int64(b.Lines) - d.FirstLine
	d.LastCount = b.Counts[b.Lines-1]
}

// Stats are counters of a ring since New, safe to read from any goroutine.
type Stats struct {
	Committed     int64 // blocks committed
	DroppedBlocks int64 // blocks reported dropped through Commit and Close
	DroppedLines  int64 // lines in those blocks
	Len           int   // blocks committed and not yet released
	Cap           int   // blocks in the ring
}

// pad keeps fields written by different goroutines on different cache lines.
type pad [64]byte

// Ring is a lock-free single-producer single-consumer ring of preallocated
// blocks. Reserve, Commit and Close are called by one producer goroutine;
// Pop, Wait, Release and Final by one consumer goroutine; Len and Stats by
// anyone.
type Ring struct {
	slots  []*acquisition.Block
	drops  []Dropped
	n      uint64
	notify chan struct{}

	_ pad
	// Producer side.
	head       atomic.Uint64 // blocks committed; written by the producer
	prodHead   uint64        // producer's copy of head
	prodTail   uint64        // producer's cached tail, refreshed when the ring looks full
	reserved   bool
	closed     atomic.Bool
	final      Dropped // written before closed is set
	dropBlocks atomic.Int64
	dropLines  atomic.Int64
	_          pad
	// Consumer side.
	tail     atomic.Uint64 // blocks released; written by the consumer
	consNext uint64        // next block to pop
	consHead uint64        // consumer's cached head
	consTail uint64        // consumer's copy of tail
	_        pad
}

// New makes a ring of n preallocated blocks of linesPerBlock lines × width
// pixels. It panics if n < 2 or a size is not positive: ring sizes come from
// validated options.
func New(n, linesPerBlock, width int) *Ring {
	if n < 2 || linesPerBlock < 1 || width < 1 {
		panic("ring: New(" + strconv.Itoa(n) + ", " + strconv.Itoa(linesPerBlock) + ", " +
			strconv.Itoa(width) + "): need n >= 2 and positive sizes")
	}
	r := &Ring{
		slots:  make([]*acquisition.Block, n),
		drops:  make([]Dropped, n),
		n:      uint64(n),
		notify: make(chan struct{}, 1),
	}
	for i := range r.slots {
		r.slots[i] = acquisition.NewBlock(linesPerBlock, width)
	}
	return r
}

// Reserve returns the next free block for the producer to fill, or nil if
// every block is published or held by the consumer. It never blocks.
// Calling it again before Commit returns the same block.
func (r *Ring) Reserve() *acquisition.Block {
	if r.prodHead-r.prodTail >= r.n {
		r.prodTail = r.tail.Load() // acquire: the consumer is done with released slots
		if r.prodHead-r.prodTail >= r.n {
			return nil
		}
	}
	r.reserved = true
	return r.slots[r.prodHead%r.n]
}

// Commit publishes the block returned by the last Reserve. dropped
// describes the lines dropped just before this block (zero if none); the
// consumer receives it from the Pop that returns this block. It panics if
// no block is reserved.
func (r *Ring) Commit(dropped Dropped) {
	if !r.reserved {
		panic("ring: Commit without Reserve")
	}
	r.reserved = false
	r.drops[r.prodHead%r.n] = dropped
	r.noteDrop(dropped)
	r.prodHead++
	r.head.Store(r.prodHead) // release: block and record are visible to Pop
	select {
	case r.notify <- struct{}{}:
	default: // a wake-up is already pending
	}
}

func (r *Ring) noteDrop(d Dropped) {
	if !d.Empty() {
		r.dropBlocks.Add(d.Blocks)
		r.dropLines.Add(d.Lines)
	}
}

// Close marks the end of production, after the producer's final Commit.
// final carries any lines dropped after the last committed block. The
// consumer drains the published blocks, after which Wait returns io.EOF and
// Final returns final. A block reserved and not committed is abandoned.
// Close must be called once.
func (r *Ring) Close(final Dropped) {
	if r.closed.Load() {
		panic("ring: Close called twice")
	}
	r.reserved = false
	r.final = final
	r.noteDrop(final)
	r.closed.Store(true) // release: final and every commit are visible
	select {
	case r.notify <- struct{}{}:
	default:
	}
}

// Pop returns the oldest published block and the drop record committed
// with it, or ok = false if none is published. It never blocks. The block
// belongs to the consumer until Release.
func (r *Ring) Pop() (b *acquisition.Block, dropped Dropped, ok bool) {
	if r.consNext == r.consHead {
		r.consHead = r.head.Load() // acquire: the block's contents are visible
		if r.consNext == r.consHead {
			return nil, Dropped{}, false
		}
	}
	i := r.consNext % r.n
	r.consNext++
	return r.slots[i], r.drops[i], true
}

// Release returns the oldest popped, unreleased block to the producer;
// with one block held at a time, that is the block from the last Pop. The
// consumer must not touch it afterwards. It panics if no block is held.
func (r *Ring) Release() {
	if r.consTail == r.consNext {
		panic("ring: Release without a popped block")
	}
	r.consTail++
	r.tail.Store(r.consTail) // release: our reads of the block happen before reuse
}

// Wait blocks until a block can be popped, the ring is closed and drained,
// or ctx is done. It returns nil when Pop will return a block, io.EOF when
// the ring is closed and every block was popped, or ctx.Err().
func (r *Ring) Wait(ctx context.Context) error {
	for {
		if r.consNext != r.consHead {
			return nil
		}
		if r.consHead = r.head.Load(); r.consNext != r.consHead {
			return nil
		}
		if r.closed.Load() {
			// Close happens after the last Commit: re-read head now that
			// closed is seen, so a final block is not missed.
			if r.consHead = r.head.Load(); r.consNext != r.consHead {
				return nil
			}
			return io.EOF
		}
		select {
		case <-r.notify:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Final returns the drop record passed to Close. It is valid on the
// consumer side after Wait returned io.EOF.
func (r *Ring) Final() Dropped {
	if !r.closed.Load() {
		return Dropped{}
	}
	return r.final
}

// Len returns the number of blocks committed and not yet released: the
// ring's fill. Cap - Len slots are free for the producer.
func (r *Ring) Len() int {
	t := r.tail.Load() // tail first: head only grows, so head >= t
	return int(r.head.Load() - t)
}

// Cap returns the number of blocks in the ring.
func (r *Ring) Cap() int { return int(r.n) }

// Stats returns the ring's counters.
func (r *Ring) Stats() Stats {
	t := r.tail.Load() // tail first, as in Len
	h := r.head.Load()
	return Stats{
		Committed:     int64(h),
		DroppedBlocks: r.dropBlocks.Load(),
		DroppedLines:  r.dropLines.Load(),
		Len:           int(h - t),
		Cap:           int(r.n),
	}
}

package gige

import (
	"sync/atomic"
	"time"

	"github.com/webinspect/webinspect/acquisition/gige/wire"
)

// Frame is one GVSP block (one camera frame) as the stream delivers it.
// Frames are preallocated by OpenStream and cycle between the receiver and
// the consumer: Next hands one out, Release gives it back. A frame must not
// be touched after Release.
type Frame struct {
	BlockID  uint64
	Extended bool // the block came with 64-bit block IDs
	Leader   wire.Leader
	Trailer  wire.Trailer
	// Data is the payload as received: the image, or the chunks of an
	// image with chunk data. It aliases the frame's buffer.
	Data []byte
	// LostBefore counts the blocks the stream lost just before this one
	// (never seen, incomplete at their timeout, or no free buffer). 0 for
	// the first frame after OpenStream.
	LostBefore int64
	// Arrived is when the last packet of the frame arrived.
	Arrived time.Time

	buf      []byte
	got      []uint64 // bitmap of packet IDs received (0 = leader)
	asked    []uint64 // bitmap of packet IDs requested by PACKETRESEND
	nGot     int      // distinct packets received
	maxPID   uint32   // highest packet ID seen
	lastPID  uint32   // trailer's packet ID, when the trailer has arrived
	leader   bool
	trailer  bool
	failed   bool      // cannot complete (overflow, device said unavailable)
	size     int       // payload bytes: highest offset+length written
	touched  time.Time // last packet received
	askedAt  time.Time // last resend request
	tries    int       // resend rounds made
	askedN   int       // packets requested so far
	released atomic.Bool
}

// maxPackets is how many packet IDs a frame's bitmap can hold.
func (f *Frame) maxPackets() uint32 { return uint32(len(f.got) * 64) }

func (f *Frame) reset(id uint64, ext bool, now time.Time) {
	f.BlockID, f.Extended = id, ext
	f.Leader, f.Trailer = wire.Leader{}, wire.Trailer{}
	f.Data, f.LostBefore = nil, 0
	clear(f.got)
	clear(f.asked)
	f.nGot, f.maxPID, f.lastPID = 0, 0, 0
	f.leader, f.trailer, f.failed = false, false, false
	f.size, f.tries, f.askedN = 0, 0, 0
	f.touched, f.askedAt = now, time.Time{}
}

func (f *Frame) has(pid uint32) bool { return f.got[pid/64]&(1<<(pid%64)) != 0 }

// mark records packet pid; it returns false for a duplicate.
func (f *Frame) mark(pid uint32) bool {
	w, b := pid/64, uint64(1)<<(pid%64)
	if f.got[w]&b != 0 {
		return false
	}
	f.got[w] |= b
	f.nGot++
	return true
}

func (f *Frame) wasAsked(pid uint32) bool { return f.asked[pid/64]&(1<<(pid%64)) != 0 }

// complete reports whether the leader, the trailer and every packet
// between them have arrived.
func (f *Frame) complete() bool {
	return f.leader && f.trailer && !f.failed && f.nGot == int(f.lastPID)+1
}

// expectedLast returns the trailer's packet ID as far as it is known: from
// the trailer itself, else from an image leader without chunks and the
// payload per packet; 0 when unknown.
func (f *Frame) expectedLast(pps int) uint32 {
	if f.trailer {
		return f.lastPID
	}
	if !f.leader || !f.Leader.IsImage() || f.Leader.PayloadType.HasChunks() || pps <= 0 {
		return 0
	}
	size := int(f.Leader.Height) * f.Leader.PixelFormat.LineBytes(int(f.Leader.Width))
	if size <= 0 {
		return 0
	}
	return uint32((size+pps-1)/pps) + 1
}

// missing calls fn for each run [first, last] of packet IDs not received
// up to last (inclusive).
func (f *Frame) missing(last uint32, fn func(first, last uint32)) {
	if last >= f.maxPackets() {
		last = f.maxPackets() - 1
	}
	start, in := uint32(0), false
	for pid := uint32(0); pid <= last; pid++ {
		if !f.has(pid) {
			if !in {
				start, in = pid, true
			}
			continue
		}
		if in {
			fn(start, pid-1)
			in = false
		}
	}
	if in {
		fn(start, last)
	}
}

package gige

import (
	"time"

	"github.com/webinspect/webinspect/acquisition/gige/wire"
)

// gap asks for the packets between the highest seen so far and pid when
// pid jumps past it: the packets in between were lost (or are late; a late
// original makes the resent copy a duplicate, which is dropped).
func (r *receiver) gap(f *Frame, pid uint32, now time.Time) {
	if f.nGot == 1 { // the block's first packet: everything before it is missing
		f.maxPID = pid
		if pid > 0 {
			r.ask(f, 0, pid-1, now)
		}
		return
	}
	if pid <= f.maxPID {
		return // fills a hole
	}
	first := f.maxPID + 1
	f.maxPID = pid
	if pid > first {
		r.ask(f, first, pid-1, now)
	}
}

// budget is how many packets may be requested for f.
func (r *receiver) budget(f *Frame) int {
	n := int(f.expectedLast(r.s.pps)) + 1
	if n <= 1 {
		n = int(f.maxPID) + 1
	}
	return max(8, int(r.s.opts.ResendRatio*float64(n)))
}

// ask sends a PACKETRESEND for packets first…last of f, within budget.
func (r *receiver) ask(f *Frame, first, last uint32, now time.Time) {
	if r.s.opts.NoResend || f.failed {
		return
	}
	left := r.budget(f) - f.askedN
	if left <= 0 {
		return
	}
	if int(last-first)+1 > left {
		last = first + uint32(left) - 1
	}
	if last >= f.maxPackets() {
		last = f.maxPackets() - 1
	}
	if first > last {
		return
	}
	for pid := first; pid <= last; pid++ {
		f.asked[pid/64] |= 1 << (pid % 64)
	}
	n := int(last-first) + 1
	f.askedN += n
	f.askedAt = now
	r.s.stats.asked.Add(int64(n))
	r.cmd = wire.AppendResendCmd(r.cmd[:0], r.s.conn.nextID(), wire.Resend{
		Channel: uint16(r.s.opts.Channel), BlockID: f.BlockID, First: first, Last: last, Extended: f.Extended,
	})
	r.s.conn.send(r.cmd)
}

// housekeep gives up frames that stopped receiving packets FrameTimeout
// ago and asks again for what is still missing in the others. It runs
// every few milliseconds.
//
// drained says the socket was just found empty. Otherwise, after a stall of
// this goroutine (a busy machine) packets that arrived meanwhile may still
// wait in the socket buffer, so no frame is judged quiet until they are
// read.
func (r *receiver) housekeep(now time.Time, drained bool) {
	stalled := now.Sub(r.lastHK) > r.s.opts.FrameTimeout/4
	r.lastHK = now
	if stalled && !drained {
		return
	}
	for len(r.active) > 0 && now.Sub(r.active[0].touched) > r.s.opts.FrameTimeout {
		r.giveUp()
	}
	// A frame behind the oldest can time out too (the oldest is still
	// receiving resends): give it up only once it reaches the front.
	r.flush()
	if r.s.opts.NoResend {
		return
	}
	for i, f := range r.active {
		if f.tries >= r.s.opts.ResendRetries || now.Sub(f.askedAt) < r.s.opts.ResendTimeout ||
			now.Sub(f.touched) < r.s.opts.ResendTimeout {
			continue
		}
		// Holes below the highest packet seen are overdue. The tail (after
		// it) is overdue only once a later block has started: until then
		// the device may still be sending this one.
		last := f.maxPID
		if i < len(r.active)-1 {
			if last = f.expectedLast(r.s.pps); last == 0 {
				last = f.maxPID + 1
			}
		}
		f.tries++
		f.askedN = 0 // each round has its own budget
		f.missing(last, func(a, b uint32) { r.ask(f, a, b, now) })
	}
}

package u3v

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
)

// rawFrame is one block as the device sent it.
type rawFrame struct {
	Leader  leader
	Trailer trailer
	// Payload is the valid payload (image, then chunks when the payload
	// type has them). It aliases the receiver's buffer until the next call.
	Payload []byte
}

// frameLost is the receiver giving up on one block. It is not fatal: the
// next call starts at the next leader.
type frameLost struct {
	Leader    leader // the lost block's leader when HasLeader
	HasLeader bool
	Reason    string
}

func (e *frameLost) Error() string {
	if e.HasLeader {
		return fmt.Sprintf("u3v: block %d lost: %s", e.Leader.BlockID, e.Reason)
	}
	return "u3v: block lost: " + e.Reason
}

// receiverStats are the receiver's counters (read under the owner's lock).
type receiverStats struct {
	Frames    uint64 // complete blocks
	Lost      uint64 // blocks given up (frameLost)
	Discarded uint64 // transfers dropped while looking for a leader
}

// receiver reads blocks from the stream endpoint following a SIRM plan:
// one leader transfer, the payload transfers, one trailer transfer. It is
// used from one goroutine.
type receiver struct {
	dev   usbDevice
	ep    uint8
	plan  plan
	sizes []int // payload transfer sizes in order

	leaderBuf, trailerBuf, payload, search []byte
	stash                                  []byte // a leader met where something else was due
	resync                                 bool   // out of step: drop transfers until a leader
	stats                                  receiverStats
	stalls                                 atomic.Uint64 // endpoint halts cleared (read by Stats)
}

func newReceiver(dev usbDevice, ep uint8, p plan) *receiver {
	r := &receiver{dev: dev, ep: ep, plan: p}
	for range p.TransferCount {
		r.sizes = append(r.sizes, p.TransferSize)
	}
	for _, s := range []int{p.Final1, p.Final2} {
		if s > 0 {
			r.sizes = append(r.sizes, s)
		}
	}
	r.leaderBuf = make([]byte, p.LeaderSize)
	r.trailerBuf = make([]byte, p.TrailerSize)
	r.payload = make([]byte, p.PayloadCap())
	r.search = make([]byte, max(p.TransferSize, p.Final1, p.Final2, p.LeaderSize, p.TrailerSize))
	return r
}

// errStalled marks a transfer that hit a halted endpoint (already cleared).
var errStalled = errors.New("stream endpoint stalled")

// xfer reads one host transfer into buf. A transfer ends when buf is full
// or the device ends it early (short packet); a timeout with part of the
// data keeps reading the rest (a line-scan camera only sends as the web
// moves). A stall is cleared and reported as errStalled.
func (r *receiver) xfer(ctx context.Context, buf []byte) (int, error) {
	got := 0
	for {
		want := len(buf) - got
		n, err := r.dev.bulkIn(ctx, r.ep, buf[got:])
		got += n
		switch {
		case err == nil:
			return got, nil
		case errors.Is(err, errTimeout) && ctx.Err() == nil:
			if n == want {
				return got, nil
			}
			continue
		case errors.Is(err, errStall):
			r.stalls.Add(1)
			r.resync = true
			if cerr := r.dev.clearHalt(r.ep); cerr != nil {
				return got, fmt.Errorf("u3v: clearing halt on %s: %w", epString(r.ep), cerr)
			}
			return got, errStalled
		case ctx.Err() != nil:
			return got, ctx.Err()
		default:
			return got, fmt.Errorf("u3v: stream read on %s: %w", epString(r.ep), err)
		}
	}
}

// next returns the next complete block, a *frameLost for a block it had
// to drop, or a fatal error (context done, device gone).
func (r *receiver) next(ctx context.Context) (rawFrame, error) {
	lb, err := r.readLeader(ctx)
	if err != nil {
		return rawFrame{}, err
	}
	l, err := decodeLeader(lb)
	if err != nil {
		r.resync = true
		return rawFrame{}, r.lost(l, packetKind(lb) == leaderMagic && len(lb) >= genericHdrLen, err.Error())
	}
	n, tb, err := r.readPayload(ctx, l)
	if err != nil {
		return rawFrame{}, err
	}
	if tb == nil {
		k, err := r.xfer(ctx, r.trailerBuf)
		if err != nil {
			return rawFrame{}, r.xferLost(l, "trailer", err)
		}
		tb = r.trailerBuf[:k]
		switch packetKind(tb) {
		case leaderMagic:
			r.stash = append(r.stash[:0], tb...)
			return rawFrame{}, r.lost(l, true, "no trailer before the next leader")
		case trailerMagic:
		default:
			r.resync = true
			return rawFrame{}, r.lost(l, true, fmt.Sprintf("%d bytes of payload beyond the %d announced", k, r.plan.ReqPayload))
		}
	}
	t, err := decodeTrailer(tb, l.PayloadType)
	switch {
	case err != nil:
		return rawFrame{}, r.lost(l, true, err.Error())
	case t.BlockID != l.BlockID:
		return rawFrame{}, r.lost(l, true, fmt.Sprintf("trailer of block %d after the leader of block %d", t.BlockID, l.BlockID))
	case t.Status != StatusSuccess:
		return rawFrame{}, r.lost(l, true, "trailer status "+t.Status.String())
	case t.ValidPayload > uint64(n):
		return rawFrame{}, r.lost(l, true, fmt.Sprintf("short payload: trailer says %d bytes, %d arrived", t.ValidPayload, n))
	}
	r.stats.Frames++
	return rawFrame{Leader: l, Trailer: t, Payload: r.payload[:t.ValidPayload]}, nil
}

// readLeader returns the next leader transfer, dropping anything else.
func (r *receiver) readLeader(ctx context.Context) ([]byte, error) {
	for {
		var b []byte
		if r.stash != nil {
			b, r.stash = r.stash, nil
		} else {
			buf := r.leaderBuf
			if r.resync {
				buf = r.search
			}
			n, err := r.xfer(ctx, buf)
			if errors.Is(err, errStalled) {
				continue
			}
			if err != nil {
				return nil, err
			}
			b = buf[:n]
		}
		if packetKind(b) == leaderMagic {
			r.resync = false
			return b, nil
		}
		r.stats.Discarded++
		r.resync = true
	}
}

// readPayload reads the payload transfers of block l. It returns the
// payload bytes received and, when the trailer arrived in place of a
// payload transfer (a short or empty payload), the trailer transfer.
func (r *receiver) readPayload(ctx context.Context, l leader) (int, []byte, error) {
	off := 0
	for _, size := range r.sizes {
		k, err := r.xfer(ctx, r.payload[off:off+size])
		if err != nil {
			return 0, nil, r.xferLost(l, "payload", err)
		}
		if k < size {
			b := r.payload[off : off+k]
			switch packetKind(b) {
			case trailerMagic:
				if k <= maxLeaderTrailer {
					return off, append(r.trailerBuf[:0], b...), nil
				}
			case leaderMagic:
				if k <= maxLeaderTrailer {
					r.stash = append(r.stash[:0], b...)
					return 0, nil, r.lost(l, true, fmt.Sprintf("payload ended after %d bytes without a trailer", off))
				}
			}
			return off + k, nil, nil // short payload: the trailer is next
		}
		off += k
	}
	return off, nil, nil
}

// xferLost turns a transfer error inside a block into a loss or passes a
// fatal error through.
func (r *receiver) xferLost(l leader, what string, err error) error {
	if errors.Is(err, errStalled) {
		return r.lost(l, true, what+": endpoint stalled (halt cleared)")
	}
	return err
}

func (r *receiver) lost(l leader, has bool, reason string) error {
	r.stats.Lost++
	return &frameLost{Leader: l, HasLeader: has, Reason: reason}
}

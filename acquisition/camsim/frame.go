package camsim

import (
	"encoding/binary"
	"net/netip"
	"time"

	"github.com/webinspect/webinspect/acquisition/gige/wire"
	"github.com/webinspect/webinspect/acquisition/pfnc"
)

// frame is one block (Height lines) on its way to the host. It stays in
// the resend ring after it was sent until newer frames push it out; its
// rendered lines (raw) go back to their pool once it is encoded.
type frame struct {
	blockID    uint64
	lines      int
	firstSeq   int64 // line counter of line 0 since AcquisitionStart
	raw        *rawLines
	firstCount int64 // encoder counts of the first and last line
	lastCount  int64
	dropped    bool // a whole-frame drop: never sent, not resendable

	// Wire form, built by encode.
	leader, trailer []byte
	payload         []byte
	ppp             int // payload bytes per payload packet
	dest            netip.AddrPort
	u16             []uint16
}

// rawLines are a frame's lines as the web rendered them.
type rawLines struct {
	pix    []byte // lines × sensor width, 8-bit
	counts []int64
	due    []time.Time // when each line was (or will be) exposed
}

// grow sizes the buffers for height lines of sw pixels.
func (r *rawLines) grow(height, sw int) {
	if cap(r.pix) < height*sw {
		r.pix = make([]byte, height*sw)
	}
	r.pix = r.pix[:height*sw]
	if cap(r.counts) < height {
		r.counts = make([]int64, height)
		r.due = make([]time.Time, height)
	}
	r.counts, r.due = r.counts[:height], r.due[:height]
}

// packets returns the number of GVSP packets of the frame: leader,
// payload packets, trailer.
func (f *frame) packets() int { return (len(f.payload)+f.ppp-1)/f.ppp + 2 }

// encode builds the payload (image, then chunks when active), leader and
// trailer for cfg. ts is the device timestamp of line 0.
func (f *frame) encode(cfg camConfig, sw int, ts uint64) {
	be := binary.BigEndian
	if need := payloadSize(cfg); cap(f.payload) < need {
		f.payload = make([]byte, 0, need)
	}
	p := f.payload[:0]
	w, off := cfg.width, cfg.offsetX
	f.firstCount, f.lastCount = f.raw.counts[0], f.raw.counts[f.lines-1]
	for i := range f.lines {
		src := f.raw.pix[i*sw+off : i*sw+off+w]
		if cfg.pf == wire.Mono8 {
			p = append(p, src...)
			continue
		}
		f.u16 = widen(f.u16[:0], src, cfg.pf.Depth())
		p, _ = pfnc.FromMono16(p, f.u16, cfg.pf) // formats are checked at the register
	}
	pt := wire.PayloadImage
	if cfg.chunks {
		pt = wire.PayloadImageChunk
		p = chunkTag(p, ChunkIDImage, len(p))
		if cfg.chunkEnc {
			for _, c := range f.raw.counts[:f.lines] {
				p = be.AppendUint64(p, uint64(c))
			}
			p = chunkTag(p, ChunkIDEncoderValue, 8*f.lines)
		}
		if cfg.chunkTS {
			p = chunkTag(be.AppendUint64(p, ts), ChunkIDTimestamp, 8)
		}
		if cfg.chunkLC {
			p = chunkTag(be.AppendUint64(p, uint64(f.firstSeq)), ChunkIDLineCounter, 8)
		}
	}
	f.payload = p
	f.ppp = wire.PayloadPerPacket(cfg.packetSize, false)
	f.dest = cfg.dest
	f.leader = wire.AppendLeader(f.leader[:0], wire.Leader{
		PayloadType: pt, Timestamp: ts, PixelFormat: cfg.pf,
		Width: uint32(w), Height: uint32(f.lines), OffsetX: uint32(off),
	})
	f.trailer = wire.AppendTrailer(f.trailer[:0], wire.Trailer{PayloadType: pt, SizeY: uint32(f.lines), ChunkLayoutID: chunkLayout(cfg)})
}

// packet appends GVSP packet id of the frame to dst with status st.
func (f *frame) packet(dst []byte, id int, st wire.Status) []byte {
	h := wire.Packet{Status: st, BlockID: f.blockID, PacketID: uint32(id)}
	n := f.packets()
	switch {
	case id == 0:
		h.Format = wire.FormatLeader
		return wire.AppendPacket(dst, h, f.leader)
	case id == n-1:
		h.Format = wire.FormatTrailer
		return wire.AppendPacket(dst, h, f.trailer)
	}
	h.Format = wire.FormatPayload
	lo := (id - 1) * f.ppp
	return wire.AppendPacket(dst, h, f.payload[lo:min(lo+f.ppp, len(f.payload))])
}

// chunkTag appends the 8-byte tag that closes a chunk of n data bytes.
func chunkTag(p []byte, id uint32, n int) []byte {
	return binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(p, id), uint32(n))
}

// chunkLayout is the trailer's chunk layout ID: it changes whenever the
// set of chunks does.
func chunkLayout(cfg camConfig) uint32 {
	var id uint32
	for i, on := range []bool{cfg.chunks, cfg.chunkEnc, cfg.chunkTS, cfg.chunkLC} {
		if on {
			id |= 1 << i
		}
	}
	return id
}

// widen scales 8-bit samples to depth bits, repeating the high bits in the
// new low ones so white stays white (255 → 1023, 4095, 65535).
func widen(dst []uint16, src []byte, depth int) []uint16 {
	sh := uint(depth - 8)
	for _, v := range src {
		x := uint16(v)
		dst = append(dst, x<<sh|x>>(8-sh))
	}
	return dst
}

// payloadSize is PayloadSize as the XML computes it, for a full frame.
func payloadSize(cfg camConfig) int {
	n := cfg.pf.LineBytes(cfg.width * cfg.height) // == (W*H*bits+7)/8
	if cfg.chunks {
		n += 8
		if cfg.chunkEnc {
			n += 8*cfg.height + 8
		}
		if cfg.chunkTS {
			n += 16
		}
		if cfg.chunkLC {
			n += 16
		}
	}
	return n
}

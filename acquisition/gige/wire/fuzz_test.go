package wire

import (
	"bytes"
	"testing"

	"github.com/webinspect/webinspect/acquisition/pfnc"
)

// FuzzGVCP feeds arbitrary bytes to every GVCP decoder: none may panic, and
// what decodes re-encodes to the same bytes.
func FuzzGVCP(f *testing.F) {
	rr, _ := AppendReadRegCmd(nil, 1, 0, 4)
	wm, _ := AppendWriteMemCmd(nil, 2, 0x10, []byte{1, 2, 3, 4})
	f.Add(rr)
	f.Add(wm)
	f.Add(AppendResendCmd(nil, 3, Resend{BlockID: 9, First: 1, Last: 4, Extended: true}))
	f.Add(AppendDiscoveryAck(nil, 4, DiscoveryAck{Model: "m"}))
	f.Add(AppendReadMemAck(nil, 5, 0, 0x200, []byte("Local:a.zip;0;4")))
	f.Add(AppendPendingAck(nil, 6, 100))
	f.Fuzz(func(t *testing.T, b []byte) {
		if h, p, err := ParseCmd(b); err == nil {
			if !bytes.Equal(AppendCmd(nil, h, p), b[:HeaderSize+len(p)]) {
				t.Fatal("command does not re-encode")
			}
			_, _ = ParseReadRegCmd(p, nil)
			_, _ = ParseWriteRegCmd(p, nil)
			_, _, _ = ParseReadMemCmd(p)
			_, _, _ = ParseWriteMemCmd(p)
			if r, err := ParseResendCmd(h.Flags, p); err == nil {
				_ = AppendResendCmd(nil, h.ReqID, r)
			}
		}
		if h, p, err := ParseAck(b); err == nil {
			if !bytes.Equal(AppendAck(nil, h, p), b[:HeaderSize+len(p)]) {
				t.Fatal("acknowledge does not re-encode")
			}
			_, _ = ParseReadRegAck(p, nil)
			_, _ = ParseIndexAck(p)
			_, _, _ = ParseReadMemAck(p)
			_, _ = ParsePendingAck(p)
			if d, err := ParseDiscoveryAck(p); err == nil {
				_ = AppendDiscoveryAck(nil, h.AckID, d)
			}
		}
	})
}

// FuzzGVSP feeds arbitrary bytes to the GVSP decoders.
func FuzzGVSP(f *testing.F) {
	f.Add(AppendPacket(nil, Packet{BlockID: 3, Format: FormatLeader},
		AppendLeader(nil, Leader{PayloadType: PayloadImage, PixelFormat: Mono8, Width: 8, Height: 2})))
	f.Add(AppendPacket(nil, Packet{BlockID: 3, Format: FormatTrailer, Extended: true, PacketID: 4},
		AppendTrailer(nil, Trailer{PayloadType: PayloadImageChunk, SizeY: 2})))
	f.Add(AppendChunk(AppendChunk(nil, 1, []byte{1, 2, 3, 4}), 2, make([]byte, 8)))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, data, err := ParsePacket(b)
		if err == nil {
			if !p.Extended && b[4]&0x70 == 0 && !bytes.Equal(AppendPacket(nil, p, data), b) {
				t.Fatal("standard packet does not re-encode")
			}
		}
		_, _ = ParseLeader(b)
		_, _ = ParseTrailer(b)
		_, _ = ParseChunks(b, nil, 64)
		_, _ = FindChunk(b, 2)
		_, _ = FirstChunk(b)
		if len(b) > 4 {
			w := int(b[0]) + 1
			dst := make([]byte, w)
			for _, pf := range []PixelFormat{Mono8, Mono10p, Mono12p, Mono12Packed, Mono10Packed, Mono16} {
				_ = pfnc.ToMono8(dst, b[1:], w, pf)
			}
		}
	})
}

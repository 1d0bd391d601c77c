package wire

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"testing"

	"github.com/webinspect/webinspect/acquisition/pfnc"
)

func TestCmdAckRoundTrip(t *testing.T) {
	b, err := AppendReadRegCmd(nil, 7, 0x0a00, 0x0d04)
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{0x42, 0x01, 0x00, 0x80, 0x00, 0x08, 0x00, 0x07, 0, 0, 0x0a, 0, 0, 0, 0x0d, 0x04}
	if !bytes.Equal(b, want) {
		t.Fatalf("READREG bytes\n got %x\nwant %x", b, want)
	}
	h, p, err := ParseCmd(b)
	if err != nil || h.Command != CmdReadReg || h.ReqID != 7 || h.Flags != FlagAckRequired {
		t.Fatalf("ParseCmd = %+v, %v", h, err)
	}
	addrs, err := ParseReadRegCmd(p, nil)
	if err != nil || !reflect.DeepEqual(addrs, []uint32{0x0a00, 0x0d04}) {
		t.Fatalf("addrs %v %v", addrs, err)
	}
	a := AppendReadRegAck(nil, 7, StatusSuccess, 2, 1500)
	ah, ap, err := ParseAck(a)
	if err != nil || ah.Ack != AckReadReg || ah.AckID != 7 || ah.Status != StatusSuccess || ah.Length != 8 {
		t.Fatalf("ParseAck = %+v, %v", ah, err)
	}
	vals, err := ParseReadRegAck(ap, nil)
	if err != nil || !reflect.DeepEqual(vals, []uint32{2, 1500}) {
		t.Fatalf("vals %v %v", vals, err)
	}
}

func TestWriteRegMem(t *testing.T) {
	w := []RegWrite{{0x0a00, 2}, {0x0d18, 0x7f000001}}
	b, err := AppendWriteRegCmd(nil, 9, w...)
	if err != nil {
		t.Fatal(err)
	}
	h, p, _ := ParseCmd(b)
	got, err := ParseWriteRegCmd(p, nil)
	if err != nil || h.Command != CmdWriteReg || !reflect.DeepEqual(got, w) {
		t.Fatalf("WRITEREG %+v %v %v", h, got, err)
	}
	ack := AppendIndexAck(nil, AckWriteReg, 9, StatusAccessDenied, 1)
	ah, ap, _ := ParseAck(ack)
	idx, err := ParseIndexAck(ap)
	if err != nil || idx != 1 || ah.Status != StatusAccessDenied || !ah.Status.IsError() {
		t.Fatalf("index ack %+v %d %v", ah, idx, err)
	}

	b, err = AppendReadMemCmd(nil, 10, 0x200, 512)
	if err != nil {
		t.Fatal(err)
	}
	_, p, _ = ParseCmd(b)
	addr, n, err := ParseReadMemCmd(p)
	if err != nil || addr != 0x200 || n != 512 {
		t.Fatalf("READMEM %x %d %v", addr, n, err)
	}
	data := []byte("Local:x.xml;10000;2a0\x00\x00\x00")
	_, ap, _ = ParseAck(AppendReadMemAck(nil, 10, 0, 0x200, data))
	addr, d, err := ParseReadMemAck(ap)
	if err != nil || addr != 0x200 || !bytes.Equal(d, data) {
		t.Fatalf("READMEM ack %x %q %v", addr, d, err)
	}
	b, err = AppendWriteMemCmd(nil, 11, 0x1000, data)
	if err != nil {
		t.Fatal(err)
	}
	_, p, _ = ParseCmd(b)
	addr, d, err = ParseWriteMemCmd(p)
	if err != nil || addr != 0x1000 || !bytes.Equal(d, data) {
		t.Fatalf("WRITEMEM %x %q %v", addr, d, err)
	}
	for _, bad := range []int{0, 3, MaxMemBlock + 4} {
		if _, err := AppendReadMemCmd(nil, 1, 0, bad); !errors.Is(err, ErrTooLarge) {
			t.Errorf("READMEM %d bytes: %v", bad, err)
		}
	}
	if _, err := AppendReadRegCmd(nil, 1); !errors.Is(err, ErrTooLarge) {
		t.Errorf("empty READREG: %v", err)
	}
}

func TestPendingAndResend(t *testing.T) {
	ah, ap, err := ParseAck(AppendPendingAck(nil, 5, 300))
	if err != nil || ah.Ack != AckPending || ah.AckID != 5 {
		t.Fatal(ah, err)
	}
	if ms, err := ParsePendingAck(ap); ms != 300 || err != nil {
		t.Fatal(ms, err)
	}
	for _, r := range []Resend{
		{Channel: 0, BlockID: 0xfffe, First: 3, Last: 9},
		{Channel: 1, BlockID: 1<<40 + 5, First: 1 << 30, Last: 1<<30 + 2, Extended: true},
	} {
		b := AppendResendCmd(nil, 3, r)
		h, p, err := ParseCmd(b)
		if err != nil || h.Command != CmdPacketResend || h.Flags&FlagAckRequired != 0 {
			t.Fatal(h, err)
		}
		got, err := ParseResendCmd(h.Flags, p)
		if err != nil || got != r {
			t.Fatalf("resend %+v, want %+v (%v)", got, r, err)
		}
	}
}

func TestDiscovery(t *testing.T) {
	d := DiscoveryAck{
		VersionMajor: 2, VersionMinor: 1, DeviceMode: DeviceModeBigEndian | 1,
		MAC: [6]byte{0x00, 0x11, 0x22, 0x33, 0x44, 0x55}, IPConfigOptions: 7, IPConfigCurrent: 5,
		IP: netip.MustParseAddr("127.0.0.1"), Subnet: netip.MustParseAddr("255.0.0.0"),
		Gateway: netip.MustParseAddr("0.0.0.0"), Manufacturer: "webinspect", Model: "camsim-LS",
		DeviceVersion: "1.0", ManufacturerInfo: "info", Serial: "LS0001", UserName: "left",
	}
	b := AppendDiscoveryAck(nil, 4, d)
	if len(b) != HeaderSize+DiscoveryAckSize {
		t.Fatalf("ack of %d bytes", len(b))
	}
	ah, ap, err := ParseAck(b)
	if err != nil || ah.Ack != AckDiscovery || ah.AckID != 4 {
		t.Fatal(ah, err)
	}
	got, err := ParseDiscoveryAck(ap)
	if err != nil || got != d {
		t.Fatalf("discovery\n got %+v\nwant %+v (%v)", got, d, err)
	}
	if got.HardwareAddr().String() != "00:11:22:33:44:55" {
		t.Fatal(got.HardwareAddr())
	}
	c := AppendDiscoveryCmd(nil, 1, true)
	h, _, err := ParseCmd(c)
	if err != nil || h.Flags != FlagAckRequired|FlagAllowBroadcastAck || h.Command != CmdDiscovery {
		t.Fatal(h, err)
	}
}

func TestGVSPRoundTrip(t *testing.T) {
	for _, p := range []Packet{
		{BlockID: 0xffff, Format: FormatPayload, PacketID: 0xabcdef},
		{Status: StatusPacketResend, BlockID: 1<<63 + 9, Format: FormatLeader, PacketID: 1 << 31, Extended: true, Flags: 0x4000},
	} {
		b := AppendPacket(nil, p, []byte{1, 2, 3})
		if len(b) != p.HeaderSize()+3 {
			t.Fatalf("len %d", len(b))
		}
		got, data, err := ParsePacket(b)
		if err != nil || got != p || !bytes.Equal(data, []byte{1, 2, 3}) {
			t.Fatalf("packet %+v want %+v %v", got, p, err)
		}
	}
	l := Leader{PayloadType: PayloadImageChunk, Timestamp: 1<<40 + 3, PixelFormat: Mono12p,
		Width: 4096, Height: 64, OffsetX: 8, PaddingX: 2, PaddingY: 4}
	lb := AppendLeader(nil, l)
	if len(lb) != ImageLeaderSize {
		t.Fatal(len(lb))
	}
	if got, err := ParseLeader(lb); err != nil || got != l {
		t.Fatalf("leader %+v %v", got, err)
	}
	cl := Leader{PayloadType: PayloadChunkData, Timestamp: 5}
	if got, err := ParseLeader(AppendLeader(nil, cl)); err != nil || got != cl {
		t.Fatalf("chunk leader %+v %v", got, err)
	}
	if _, err := ParseLeader(lb[:20]); !errors.Is(err, ErrShort) {
		t.Fatal(err)
	}
	for _, tr := range []Trailer{{PayloadType: PayloadImage, SizeY: 64}, {PayloadType: PayloadImageChunk, SizeY: 64, ChunkLayoutID: 3}} {
		if got, err := ParseTrailer(AppendTrailer(nil, tr)); err != nil || got != tr {
			t.Fatalf("trailer %+v %v", got, err)
		}
	}
}

func TestBlockIDs(t *testing.T) {
	cases := []struct {
		a, b uint64
		ext  bool
		want int64
	}{
		{1, 2, false, 1}, {0xffff, 1, false, 1}, {0xfffe, 2, false, 3}, {1, 0xffff, false, -1},
		{5, 5, false, 0}, {1<<64 - 1, 1, true, 1}, {5, 3, true, -2}, {1 << 40, 1<<40 + 7, true, 7},
	}
	for _, c := range cases {
		if got := BlockDistance(c.a, c.b, c.ext); got != c.want {
			t.Errorf("BlockDistance(%d, %d, %v) = %d, want %d", c.a, c.b, c.ext, got, c.want)
		}
	}
	if NextBlockID(0xffff, false) != 1 || NextBlockID(1<<64-1, true) != 1 || NextBlockID(7, false) != 8 {
		t.Error("NextBlockID does not skip 0")
	}
	if NextReqID(0xffff) != 1 {
		t.Error("NextReqID does not skip 0")
	}
}

func TestChunks(t *testing.T) {
	img := bytes.Repeat([]byte{9}, 40)
	enc := []byte{0, 0, 0, 0, 0, 0, 1, 2}
	p := AppendChunk(nil, 0xa5a5a5a5, img)
	p = AppendChunk(p, 0x4e434f44, enc)
	cs, err := ParseChunks(p, nil, 16)
	if err != nil || len(cs) != 2 || cs[0].ID != 0x4e434f44 || !bytes.Equal(cs[1].Data, img) {
		t.Fatalf("chunks %+v %v", cs, err)
	}
	if d, ok := FindChunk(p, 0x4e434f44); !ok || !bytes.Equal(d, enc) {
		t.Fatal("FindChunk")
	}
	if c, ok := FirstChunk(p); !ok || c.ID != 0xa5a5a5a5 || !bytes.Equal(c.Data, img) {
		t.Fatal("FirstChunk", c, ok)
	}
	p[len(p)-1] = 200 // length past the start
	if _, err := ParseChunks(p, nil, 16); !errors.Is(err, ErrMalformed) {
		t.Fatal(err)
	}
	if _, ok := FindChunk(p, 1); ok {
		t.Fatal("found a chunk in a broken payload")
	}
}

func TestPixelFormats(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, f := range []PixelFormat{Mono8, Mono10, Mono12, Mono16, Mono10p, Mono12p, Mono10Packed, Mono12Packed} {
		for _, w := range []int{1, 2, 3, 4, 5, 7, 8, 33, 4096} {
			src := make([]uint16, w)
			want := make([]byte, w)
			for i := range src {
				src[i] = uint16(r.IntN(1 << f.Depth()))
				want[i] = uint8(src[i] >> (f.Depth() - 8))
			}
			enc, err := pfnc.FromMono16(nil, src, f)
			if err != nil {
				t.Fatal(err)
			}
			if len(enc) != f.LineBytes(w) {
				t.Fatalf("%v w=%d: encoded %d bytes, LineBytes %d", f, w, len(enc), f.LineBytes(w))
			}
			got := make([]byte, w)
			if err := pfnc.ToMono8(got, enc, w, f); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("%v w=%d:\n got %v\nwant %v", f, w, got[:min(w, 16)], want[:min(w, 16)])
			}
		}
	}
	if err := pfnc.ToMono8(make([]byte, 4), make([]byte, 4), 4, 0x02180014); !errors.Is(err, pfnc.ErrUnsupported) {
		t.Fatal("RGB8 converted:", err)
	}
	if err := pfnc.ToMono8(make([]byte, 4), make([]byte, 3), 4, Mono12p); !errors.Is(err, pfnc.ErrShort) {
		t.Fatal("short source:", err)
	}
}

func TestShortPackets(t *testing.T) {
	full := AppendReadMemAck(nil, 1, 0, 0x200, make([]byte, 16))
	for n := range full {
		if _, _, err := ParseAck(full[:n]); err == nil {
			t.Fatalf("ack cut at %d parsed", n)
		}
	}
	if _, _, err := ParseCmd([]byte{0x43, 1, 0, 0x80, 0, 0, 0, 1}); !errors.Is(err, ErrMalformed) {
		t.Fatal("bad key:", err)
	}
	ext := AppendPacket(nil, Packet{Extended: true, Format: FormatPayload}, nil)
	for n := range ext {
		if _, _, err := ParsePacket(ext[:n]); err == nil && n < GVSPExtendedHeaderSize {
			t.Fatalf("extended header cut at %d parsed", n)
		}
	}
}

package u3v

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
)

func TestAckCodec(t *testing.T) {
	b := appendAck(StatusBusy, ackReadMem, 77, []byte{1, 2, 3})
	a, err := decodeAck(b)
	if err != nil || a.Status != StatusBusy || a.Command != ackReadMem || a.ID != 77 || !bytes.Equal(a.SCD, []byte{1, 2, 3}) {
		t.Fatalf("%+v %v", a, err)
	}
	// Byte layout: magic "U3VC", status, command, length, request ID.
	if !bytes.Equal(b[:4], []byte("U3VC")) {
		t.Fatalf("magic bytes % x", b[:4])
	}
	for _, tc := range []struct {
		name string
		b    []byte
		want string
	}{
		{"empty", nil, "prefix needs 12"},
		{"truncated", b[:11], "prefix needs 12"},
		{"wrong-magic", append([]byte("U3VL"), b[4:]...), "magic"},
		{"length-beyond-transfer", b[:14], "says 3 bytes of data, transfer holds 2"},
	} {
		if _, err := decodeAck(tc.b); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}

func TestLeaderTrailerCodec(t *testing.T) {
	l := leader{BlockID: 1 << 40, PayloadType: payloadImage, Timestamp: 123, PixelFormat: pfMono12p,
		SizeX: 4096, SizeY: 512, OffsetX: 8, PaddingX: 2}
	lb := appendLeader(nil, l)
	if len(lb) != imageLeaderLen || !bytes.Equal(lb[:4], []byte("U3VL")) {
		t.Fatalf("leader: %d bytes, magic % x", len(lb), lb[:4])
	}
	got, err := decodeLeader(lb)
	if err != nil || got != l {
		t.Fatalf("leader round trip: %+v %v", got, err)
	}
	tr := trailer{BlockID: 1 << 40, Status: StatusDataOverrun, ValidPayload: 999, SizeY: 511, HasSizeY: true, ChunkLayoutID: 5}
	tb := appendTrailer(nil, tr, payloadImageChunk)
	if len(tb) != chunkTrailerLen || !bytes.Equal(tb[:4], []byte("U3VT")) {
		t.Fatalf("trailer: %d bytes, magic % x", len(tb), tb[:4])
	}
	if got, err := decodeTrailer(tb, payloadImageChunk); err != nil || got != tr {
		t.Fatalf("trailer round trip: %+v %v", got, err)
	}
	hostile := []struct {
		name string
		b    []byte
		err  error
		want string
	}{
		{"truncated-leader", lb[:10], ErrMalformed, "needs 16"},
		{"leader-wrong-magic", append([]byte("U3VT"), lb[4:]...), ErrMalformed, "magic"},
		{"leader-size-beyond-transfer", lb[:40], ErrMalformed, "size field 52"},
		{"absurd-width", withU32(lb, 32, 1<<31), ErrMalformed, "2147483648 x 512"},
		{"zero-height", withU32(lb, 36, 0), ErrMalformed, "x 0 pixels"},
		{"gendc-payload", withU16(lb, 18, 0x1001), ErrUnsupported, "0x1001"},
		{"short-image-leader", withU16(lb[:24], 6, 24), ErrMalformed, "image leader of 24"},
	}
	for _, tc := range hostile {
		if _, err := decodeLeader(tc.b); !errors.Is(err, tc.err) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	if _, err := decodeTrailer(tb[:20], payloadImage); !errors.Is(err, ErrMalformed) {
		t.Errorf("truncated trailer: %v", err)
	}
	if _, err := decodeTrailer(withU16(tb, 6, 0xFFFF), payloadImage); !errors.Is(err, ErrMalformed) {
		t.Errorf("trailer size beyond transfer: %v", err)
	}
}

func withU32(b []byte, off int, v uint32) []byte {
	c := bytes.Clone(b)
	binary.LittleEndian.PutUint32(c[off:], v)
	return c
}

func withU16(b []byte, off int, v uint16) []byte {
	c := bytes.Clone(b)
	binary.LittleEndian.PutUint16(c[off:], v)
	return c
}

func TestFindChunk(t *testing.T) {
	img := []byte{9, 9, 9, 9}
	var p []byte
	p = append(p, img...)
	p = binary.LittleEndian.AppendUint32(p, 1) // image chunk tag
	p = binary.LittleEndian.AppendUint32(p, 4)
	p = append(p, encoderChunk(-5)...)
	c, err := findChunk(p, 0xE7C0)
	if err != nil || int64(binary.LittleEndian.Uint64(c)) != -5 {
		t.Fatalf("encoder chunk % x %v", c, err)
	}
	if c, err := findChunk(p, 1); err != nil || !bytes.Equal(c, img) {
		t.Fatalf("image chunk % x %v", c, err)
	}
	if c, err := findChunk(p, 77); c != nil || err != nil {
		t.Fatalf("absent chunk % x %v", c, err)
	}
	bad := withU32(p, len(p)-4, 1<<30)
	if _, err := findChunk(bad, 0xE7C0); !errors.Is(err, ErrMalformed) {
		t.Fatalf("chunk longer than the payload: %v", err)
	}
}

func TestMakePlan(t *testing.T) {
	for _, tc := range []struct {
		payload  uint64
		align    int
		maxXfer  int
		want     plan
		wantCap  int
		wantErrS string
	}{
		{payload: 8192, align: 1024, maxXfer: 1 << 20, want: plan{Align: 1024, ReqPayload: 8192, LeaderSize: 1024, TrailerSize: 1024, TransferSize: 8192, TransferCount: 1}, wantCap: 8192},
		{payload: 10000, align: 1024, maxXfer: 4096, want: plan{Align: 1024, ReqPayload: 10000, LeaderSize: 1024, TrailerSize: 1024, TransferSize: 4096, TransferCount: 2, Final1: 1024, Final2: 1024}, wantCap: 10240},
		{payload: 100, align: 512, maxXfer: 4096, want: plan{Align: 512, ReqPayload: 100, LeaderSize: 512, TrailerSize: 512, Final2: 512}, wantCap: 512},
		{payload: 0, align: 1024, maxXfer: 4096, wantErrS: "required payload size 0"},
		{payload: 1 << 40, align: 1024, maxXfer: 4096, wantErrS: "required payload size"},
		{payload: 100, align: 1000, maxXfer: 4096, wantErrS: "not a power of two"},
	} {
		p, err := makePlan(tc.payload, 0, 0, tc.align, tc.maxXfer)
		if tc.wantErrS != "" {
			if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tc.wantErrS) {
				t.Errorf("payload %d align %d: %v", tc.payload, tc.align, err)
			}
			continue
		}
		if err != nil || p != tc.want || p.PayloadCap() != tc.wantCap || p.PayloadCap() < p.ReqPayload {
			t.Errorf("payload %d: %+v cap %d, %v; want %+v cap %d", tc.payload, p, p.PayloadCap(), err, tc.want, tc.wantCap)
		}
	}
}

// Fuzz targets: the decoders take whatever a device sends and must give a
// clear error, never panic, and never return slices beyond their input.

func FuzzDecodeAck(f *testing.F) {
	f.Add(appendAck(StatusSuccess, ackReadMem, 1, []byte{1, 2, 3, 4}))
	f.Add(appendAck(StatusSuccess, ackPending, 2, []byte{0, 0, 5, 0}))
	f.Add([]byte("U3VC"))
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := decodeAck(b)
		if err == nil && len(a.SCD) > len(b)-prefixLen {
			t.Fatalf("SCD of %d bytes from %d", len(a.SCD), len(b))
		}
		if err != nil && !errors.Is(err, ErrMalformed) {
			t.Fatalf("unclassified error %v", err)
		}
	})
}

func FuzzDecodeLeaderTrailer(f *testing.F) {
	l := leader{BlockID: 7, PayloadType: payloadImageChunk, PixelFormat: pfMono8, SizeX: 64, SizeY: 8}
	f.Add(appendLeader(nil, l))
	f.Add(appendTrailer(nil, trailer{BlockID: 7, ValidPayload: 512, SizeY: 8}, payloadImageChunk))
	f.Add(appendTrailer(nil, trailer{BlockID: 7}, payloadImage))
	f.Add(encoderChunk(3))
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, err := decodeLeader(b); err != nil && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnsupported) {
			t.Fatalf("leader: unclassified error %v", err)
		}
		for _, pt := range []uint16{payloadImage, payloadImageChunk, payloadChunk} {
			if _, err := decodeTrailer(b, pt); err != nil && !errors.Is(err, ErrMalformed) {
				t.Fatalf("trailer: unclassified error %v", err)
			}
		}
		if c, err := findChunk(b, 0xE7C0); err == nil && len(c) > len(b) {
			t.Fatalf("chunk of %d bytes from %d", len(c), len(b))
		}
		_ = packetKind(b)
	})
}

func FuzzManifestEntry(f *testing.F) {
	e := make([]byte, manifestEntryLen)
	binary.LittleEndian.PutUint32(e[0:], 1<<24)
	binary.LittleEndian.PutUint64(e[16:], 100)
	f.Add(e)
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parseManifestEntry(b)
		if err == nil && (m.Size == 0 || m.Size > maxDescriptorSize || !strings.HasPrefix(m.URL(), "Local:device.")) {
			t.Fatalf("accepted %+v", m)
		}
	})
}

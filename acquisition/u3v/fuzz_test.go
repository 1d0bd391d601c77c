package u3v

import (
	"context"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/webinspect/webinspect/acquisition"
)

// scriptDev replays a fixed list of stream transfers, then ends.
type scriptDev struct {
	xfers   [][]byte
	stalled bool
}

var errScriptEnd = errors.New("script ended")

func (d *scriptDev) bulkOut(context.Context, uint8, []byte) (int, error) { return 0, errScriptEnd }
func (d *scriptDev) clearHalt(uint8) error                               { d.stalled = false; return nil }
func (d *scriptDev) close() error                                        { return nil }

func (d *scriptDev) bulkIn(_ context.Context, _ uint8, p []byte) (int, error) {
	if len(d.xfers) == 0 {
		return 0, errScriptEnd
	}
	x := d.xfers[0]
	d.xfers = d.xfers[1:]
	if len(x) == 1 && x[0] == 0xEE { // a stall
		return 0, errStall
	}
	return copy(p, x), nil
}

// splitTransfers cuts fuzz input into transfers: u16 length, then bytes.
func splitTransfers(b []byte) [][]byte {
	var out [][]byte
	for len(b) >= 2 {
		n := min(int(binary.LittleEndian.Uint16(b)), len(b)-2)
		out = append(out, b[2:2+n])
		b = b[2+n:]
	}
	return out
}

func joinTransfers(xs ...[]byte) []byte {
	var b []byte
	for _, x := range xs {
		b = binary.LittleEndian.AppendUint16(b, uint16(len(x)))
		b = append(b, x...)
	}
	return b
}

// FuzzStream feeds arbitrary transfer sequences to the receiver and the
// line adapter: whatever the device sends, ReadBlock returns blocks or
// errors, never panics, and keeps its line sequence consistent.
func FuzzStream(f *testing.F) {
	const w, h = 64, 4
	img := make([]byte, w*h)
	lead := appendLeader(nil, leader{BlockID: 1, PayloadType: payloadImageChunk, PixelFormat: pfMono8, SizeX: w, SizeY: h})
	chunk := encoderChunk(100)
	payload := append(img, chunk...)
	trail := appendTrailer(nil, trailer{BlockID: 1, ValidPayload: uint64(len(payload)), SizeY: h}, payloadImageChunk)
	lead3 := appendLeader(nil, leader{BlockID: 3, PayloadType: payloadImage, PixelFormat: pfMono12p, SizeX: w, SizeY: h})
	f.Add(joinTransfers(lead, payload, trail))
	f.Add(joinTransfers(lead, payload[:100], trail, lead3, []byte{0xEE}, lead, payload, trail))
	f.Add(joinTransfers(lead, trail, trail, lead, lead, payload))
	f.Fuzz(func(t *testing.T, data []byte) {
		dev := &scriptDev{xfers: splitTransfers(data)}
		p, err := makePlan(uint64(len(payload)), 0, 0, 512, 1024)
		if err != nil {
			t.Fatal(err)
		}
		s := &Stream{opt: StreamOptions{Camera: acquisition.CameraInfo{Width: w}, CountsPerLine: 3, EncoderChunkID: 0xE7C0},
			rx: newReceiver(dev, 0x82, p)}
		s.ctx, s.cancel = context.WithCancel(context.Background())
		blk := acquisition.NewBlock(3, w)
		next := int64(0)
		for range 100 {
			err := s.ReadBlock(context.Background(), blk)
			if err != nil {
				if !errors.Is(err, errScriptEnd) && !errors.Is(err, ErrUnsupported) && !errors.Is(err, ErrMalformed) {
					t.Fatalf("unexpected error %v", err)
				}
				if errors.Is(err, errScriptEnd) {
					return
				}
				continue
			}
			if blk.Lines < 1 || blk.Lines > 3 {
				t.Fatalf("%d lines", blk.Lines)
			}
			if blk.FirstLine != next+blk.Lost.Lines || !blk.Lost.Empty() && blk.Lost.FirstLine != next {
				t.Fatalf("line sequence: first %d after %d, lost %+v", blk.FirstLine, next, blk.Lost)
			}
			next = blk.FirstLine + int64(blk.Lines)
		}
	})
}

// TestScriptedStream checks the fuzz seed's framing by hand: a frame
// whose payload is cut short, a stall, then a good frame with its encoder
// chunk.
func TestScriptedStream(t *testing.T) {
	const w, h = 64, 4
	payload := append(make([]byte, w*h), encoderChunk(100)...)
	lead := func(id uint64) []byte {
		return appendLeader(nil, leader{BlockID: id, PayloadType: payloadImageChunk, PixelFormat: pfMono8, SizeX: w, SizeY: h})
	}
	trail := func(id uint64, n int) []byte {
		return appendTrailer(nil, trailer{BlockID: id, ValidPayload: uint64(n), SizeY: h}, payloadImageChunk)
	}
	dev := &scriptDev{xfers: [][]byte{
		lead(1), payload, trail(1, len(payload)),
		lead(2), payload[:100], trail(2, 100), // short
		lead(3), {0xEE}, // stall in the payload
		lead(4), payload, trail(4, len(payload)),
	}}
	p, err := makePlan(uint64(len(payload)), 0, 0, 512, 1024)
	if err != nil {
		t.Fatal(err)
	}
	s := &Stream{opt: StreamOptions{Camera: acquisition.CameraInfo{Width: w}, CountsPerLine: 3, EncoderChunkID: 0xE7C0},
		rx: newReceiver(dev, 0x82, p)}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	blk := acquisition.NewBlock(h, w)
	if err := s.ReadBlock(context.Background(), blk); err != nil || blk.Lines != h || blk.Counts[1] != 103 {
		t.Fatalf("frame 1: %v, %d lines, counts %v", err, blk.Lines, blk.Counts)
	}
	if err := s.ReadBlock(context.Background(), blk); err != nil || blk.FirstLine != 12 || blk.Lost.Lines != 8 {
		t.Fatalf("frame 4: %v, first line %d, lost %+v", err, blk.FirstLine, blk.Lost)
	}
	if err := s.ReadBlock(context.Background(), blk); !errors.Is(err, errScriptEnd) {
		t.Fatalf("end of script: %v", err)
	}
	if s.Stats().Stalls != 1 {
		t.Fatalf("stalls %d", s.Stats().Stalls)
	}
}

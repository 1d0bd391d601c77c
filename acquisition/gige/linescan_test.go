package gige

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/webinspect/webinspect/acquisition"
	"github.com/webinspect/webinspect/acquisition/gige/wire"
	"github.com/webinspect/webinspect/acquisition/pfnc"
)

const encChunkID = 0x0e4c0001

// lineFrame makes a line-scan frame of lines lines starting at line seq
// first: pixel x of line y is (first+y)*3+x (12-bit), in format pf; with
// chunks it carries the per-line counts first*k+y*k+base.
func lineFrame(id uint64, first, lines, w int, pf wire.PixelFormat, chunks bool, k, base int64) frameSpec {
	var img []byte
	for y := 0; y < lines; y++ {
		row := make([]uint16, w)
		for x := range row {
			row[x] = uint16(((first+y)*3 + x) % 4096)
			if pf.Depth() < 12 {
				row[x] >>= 12 - pf.Depth()
			}
		}
		img, _ = pfnc.FromMono16(img, row, pf)
	}
	l := wire.Leader{PayloadType: wire.PayloadImage, PixelFormat: pf, Width: uint32(w), Height: uint32(lines)}
	payload := img
	if chunks {
		l.PayloadType = wire.PayloadImageChunk
		counts := make([]byte, 8*lines)
		for y := range lines {
			binary.BigEndian.PutUint64(counts[8*y:], uint64(base+int64(first+y)*k))
		}
		payload = wire.AppendChunk(wire.AppendChunk(nil, 1, img), encChunkID, counts)
	}
	return frameSpec{id: id, leader: l, payload: payload}
}

func wantPixel(seq int64, x int) uint8 { return uint8(((int(seq)*3 + x) % 4096) >> 4) }

func TestLineStreamMono12pLostFrame(t *testing.T) {
	const w, lines = 64, 16
	d := newFakeDev(t)
	d.ignoreRsnd = true
	s := openTestStream(t, d, func(o *StreamOptions) { o.FrameTimeout = 50 * time.Millisecond })
	ls, err := NewLineStream(s, LineOptions{Camera: acquisition.CameraInfo{Index: 2, Width: w}, CountsPerLine: 3, FirstCount: 100})
	if err != nil {
		t.Fatal(err)
	}
	blk := acquisition.NewBlock(10, w) // smaller than a frame: frames split
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	read := func() {
		t.Helper()
		if err := ls.ReadBlock(ctx, blk); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < blk.Lines; i++ {
			seq := blk.FirstLine + int64(i)
			if blk.Counts[i] != 100+3*seq || blk.Line(i)[5] != wantPixel(seq, 5) {
				t.Fatalf("line %d: count %d pixel %d, want %d %d", seq, blk.Counts[i], blk.Line(i)[5], 100+3*seq, wantPixel(seq, 5))
			}
		}
	}
	d.sendFrame(lineFrame(1, 0, lines, w, wire.Mono12p, false, 3, 100))
	read()
	if blk.FirstLine != 0 || blk.Lines != 10 || blk.Camera != 2 || !blk.Lost.Empty() {
		t.Fatalf("first block %+v", blk.Lost)
	}
	read()
	if blk.FirstLine != 10 || blk.Lines != 6 {
		t.Fatalf("second block lines %d+%d", blk.FirstLine, blk.Lines)
	}
	lost := lineFrame(2, lines, lines, w, wire.Mono12p, false, 3, 100)
	lost.drop = map[uint32]bool{2: true}
	d.sendFrame(lost)
	eventually(t, 3*time.Second, "frame given up", func() bool { return s.Stats().LostFrames == 1 })
	d.sendFrame(lineFrame(3, 2*lines, lines, w, wire.Mono12p, false, 3, 100))
	read()
	want := acquisition.LostLines{FirstLine: 16, Lines: 16, FirstCount: 100 + 3*16, LastCount: 100 + 3*31, Reason: ReasonFrameLost}
	if blk.Lost != want || blk.FirstLine != 32 {
		t.Fatalf("lost %+v first line %d, want %+v and 32", blk.Lost, blk.FirstLine, want)
	}
	read()
	if !blk.Lost.Empty() {
		t.Fatal("loss reported twice")
	}
	if st := ls.Stats(); st.Lines != 32 || st.LostLines != 16 || st.LostFrames != 1 {
		t.Fatalf("stats %+v", st)
	}
	if err := ls.Close(); err != nil {
		t.Fatal(err)
	}
	if err := ls.ReadBlock(ctx, blk); !errors.Is(err, io.EOF) {
		t.Fatalf("ReadBlock after Close: %v", err)
	}
}

func TestLineStreamChunkCounts(t *testing.T) {
	const w, lines = 32, 8
	d := newFakeDev(t)
	d.ignoreRsnd = true
	s := openTestStream(t, d, func(o *StreamOptions) { o.FrameTimeout = 50 * time.Millisecond })
	ls, err := NewLineStream(s, LineOptions{Camera: acquisition.CameraInfo{Width: w}, CountsPerLine: 2, EncoderChunkID: encChunkID})
	if err != nil {
		t.Fatal(err)
	}
	blk := acquisition.NewBlock(lines, w)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for n, pf := range []wire.PixelFormat{wire.Mono8, wire.Mono16, wire.Mono10p} {
		t.Run(pf.String(), func(t *testing.T) {
			base := int64(1000 * pf.Depth())
			id := uint64(n + 1)
			d.sendFrame(lineFrame(id, 0, lines, w, pf, true, 2, base))
			if err := ls.ReadBlock(ctx, blk); err != nil {
				t.Fatal(err)
			}
			for i := range lines {
				if blk.Counts[i] != base+int64(i)*2 {
					t.Fatalf("count %d = %d", i, blk.Counts[i])
				}
				// The frame's pixels scale to 8 bits from the format's depth.
				want := uint16((i*3 + 7) % 4096)
				if pf.Depth() < 12 {
					want >>= 12 - pf.Depth()
				}
				if got := blk.Line(i)[7]; got != uint8(want>>(pf.Depth()-8)) {
					t.Fatalf("pixel %d,7 = %d, want %d", i, got, want>>(pf.Depth()-8))
				}
			}
		})
	}
	// A frame lost between two frames with counts: the lost lines' counts
	// come from the neighbours.
	lost := lineFrame(4, lines, lines, w, wire.Mono8, true, 2, 0)
	lost.drop = map[uint32]bool{1: true}
	d.sendFrame(lost)
	eventually(t, 3*time.Second, "frame given up", func() bool { return s.Stats().LostFrames == 1 })
	d.sendFrame(lineFrame(5, 2*lines, lines, w, wire.Mono8, true, 2, 0))
	if err := ls.ReadBlock(ctx, blk); err != nil {
		t.Fatal(err)
	}
	if blk.Lost.Lines != lines || blk.Lost.LastCount != int64(2*lines-1)*2 || blk.Counts[0] != int64(2*lines)*2 {
		t.Fatalf("lost %+v, first count %d", blk.Lost, blk.Counts[0])
	}
}

func TestLineStreamRejectsWrongFormat(t *testing.T) {
	d := newFakeDev(t)
	s := openTestStream(t, d, nil)
	ls, _ := NewLineStream(s, LineOptions{Camera: acquisition.CameraInfo{Width: 48}, CountsPerLine: 1})
	d.sendFrame(imageSpec(1, testW, testH)) // 64 px wide, not 48
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := ls.ReadBlock(ctx, acquisition.NewBlock(4, 48))
	if !errors.Is(err, ErrProtocol) {
		t.Fatalf("wrong width: %v", err)
	}
	if _, err := NewLineStream(s, LineOptions{Camera: acquisition.CameraInfo{Width: 48}}); !errors.Is(err, ErrOptions) {
		t.Fatalf("CountsPerLine 0: %v", err)
	}
}

func TestLineStreamShortLastFrame(t *testing.T) {
	const w, lines = 32, 12
	d := newFakeDev(t)
	s := openTestStream(t, d, nil)
	ls, _ := NewLineStream(s, LineOptions{Camera: acquisition.CameraInfo{Width: w}, CountsPerLine: 4})
	// The camera stops mid-frame: the trailer says 5 of 12 lines were sent.
	spec := lineFrame(1, 0, lines, w, wire.Mono12Packed, false, 4, 0)
	spec.payload = spec.payload[:5*wire.Mono12Packed.LineBytes(w)]
	pk := d.packets(spec)
	_, data, _ := wire.ParsePacket(pk[len(pk)-1])
	tr, _ := wire.ParseTrailer(data)
	tr.SizeY = 5
	pk[len(pk)-1] = wire.AppendPacket(nil, wire.Packet{BlockID: 1, Format: wire.FormatTrailer, PacketID: uint32(len(pk) - 1)},
		wire.AppendTrailer(nil, tr))
	for _, p := range pk {
		d.send(p)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	blk := acquisition.NewBlock(lines, w)
	if err := ls.ReadBlock(ctx, blk); err != nil {
		t.Fatal(err)
	}
	if blk.Lines != 5 || blk.Counts[4] != 16 || blk.Line(4)[3] != wantPixel(4, 3) {
		t.Fatalf("%d lines, count %d, pixel %d", blk.Lines, blk.Counts[4], blk.Line(4)[3])
	}
	d.sendFrame(lineFrame(2, 5, lines, w, wire.Mono12Packed, false, 4, 0))
	if err := ls.ReadBlock(ctx, blk); err != nil {
		t.Fatal(err)
	}
	if blk.FirstLine != 5 || blk.Lines != lines || !blk.Lost.Empty() || blk.Counts[0] != 20 {
		t.Fatalf("next frame at line %d (%d lines, lost %+v, count %d)", blk.FirstLine, blk.Lines, blk.Lost, blk.Counts[0])
	}
}

package u3v

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/webinspect/webinspect/acquisition"
)

// pattern is the emulated camera's Mono8 pixel at (x, y) of block id.
func pattern(id uint64, x, y int) uint8 { return uint8(int(id)*31 + y*7 + x) }

func mono8Image(id uint64, l leader) []byte {
	b := make([]byte, int(l.SizeX*l.SizeY))
	for y := range int(l.SizeY) {
		for x := range int(l.SizeX) {
			b[y*int(l.SizeX)+x] = pattern(id, x, y)
		}
	}
	return b
}

const (
	testWidth  = 1024
	testHeight = 8
	testK      = 2
)

// openTestStream opens a streaming emulated camera: 1024 px Mono8 lines,
// frames of 8 lines, payload transfers of maxXfer bytes.
func openTestStream(t *testing.T, maxXfer int, setup func(*emuDevice)) (*Stream, *emuDevice) {
	t.Helper()
	d, emu := openEmu(t, testXML(t), false)
	emu.image = mono8Image
	if setup != nil {
		setup(emu)
	}
	if err := writeU32(d.ctrl, regWidth, testWidth); err != nil {
		t.Fatal(err)
	}
	if err := writeU32(d.ctrl, regHeight, testHeight); err != nil {
		t.Fatal(err)
	}
	s, err := d.OpenStream(StreamOptions{
		Camera: acquisition.CameraInfo{Index: 1, Width: testWidth}, CountsPerLine: testK,
		EncoderChunkID: 0xE7C0, MaxTransfer: maxXfer,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	if err := writeU32(d.ctrl, regAcqStart, 1); err != nil {
		t.Fatal(err)
	}
	return s, emu
}

func readBlock(t *testing.T, s *Stream, lines int) *acquisition.Block {
	t.Helper()
	b := acquisition.NewBlock(lines, testWidth)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.ReadBlock(ctx, b); err != nil {
		t.Fatal(err)
	}
	return b
}

// checkFrame checks that b holds lines [y0, y0+b.Lines) of block id.
func checkFrame(t *testing.T, b *acquisition.Block, id uint64, y0 int, firstLine int64) {
	t.Helper()
	if b.FirstLine != firstLine || b.Camera != 1 || b.Width != testWidth {
		t.Fatalf("block FirstLine %d camera %d width %d, want %d 1 %d", b.FirstLine, b.Camera, b.Width, firstLine, testWidth)
	}
	for i := range b.Lines {
		line := b.Line(i)
		for x := range line {
			if want := pattern(id, x, y0+i); line[x] != want {
				t.Fatalf("block %d line %d px %d = %d, want %d", id, y0+i, x, line[x], want)
			}
		}
		if want := (firstLine + int64(i)) * testK; b.Counts[i] != want {
			t.Fatalf("line %d count %d, want %d", i, b.Counts[i], want)
		}
	}
}

func TestStreamFrames(t *testing.T) {
	s, emu := openTestStream(t, 3000, nil)
	// 8 KiB payload, 1 KiB alignment, transfers of at most 3000 → 2048.
	if got := emu.u32(emuSIRM + sirmPayloadSize); got != 2048 {
		t.Fatalf("SIRM payload transfer size %d, want 2048", got)
	}
	if c, l, tr := emu.u32(emuSIRM+sirmPayloadCount), emu.u32(emuSIRM+sirmMaxLeader), emu.u32(emuSIRM+sirmMaxTrailer); c != 4 || l != 1024 || tr != 1024 {
		t.Fatalf("SIRM count %d leader %d trailer %d", c, l, tr)
	}
	for id := uint64(1); id <= 3; id++ {
		b := readBlock(t, s, testHeight)
		if b.Lines != testHeight || !b.Lost.Empty() {
			t.Fatalf("block %d: %d lines, lost %+v", id, b.Lines, b.Lost)
		}
		checkFrame(t, b, id, 0, int64(id-1)*testHeight)
	}
	// A block smaller than a frame takes the frame in pieces.
	b := readBlock(t, s, 5)
	checkFrame(t, b, 4, 0, 24)
	b = readBlock(t, s, 5)
	if b.Lines != 3 {
		t.Fatalf("rest of the frame: %d lines", b.Lines)
	}
	checkFrame(t, b, 4, 5, 29)
	st := s.Stats()
	if st.Frames != 4 || st.Lines != 32 || st.LostFrames != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// TestStreamLoss puts one fault in block 2 and checks that its lines come
// back as Lost on the next block, which continues the line sequence.
func TestStreamLoss(t *testing.T) {
	for _, tc := range []struct {
		name   string
		fault  blockFault
		stalls uint64
	}{
		{"short-payload", blockFault{Short: 3000}, 0},
		{"short-payload-on-transfer-boundary", blockFault{Short: 4096}, 0},
		{"no-trailer", blockFault{NoTrailer: true}, 0},
		{"stall-at-leader", blockFault{StallAt: 1}, 1},
		{"stall-in-payload", blockFault{StallAt: 3}, 1},
		{"stall-at-trailer", blockFault{StallAt: 6}, 1},
		{"trailer-status", blockFault{Status: StatusDataOverrun}, 0},
		{"device-dropped-block", blockFault{Skip: true}, 0},
		{"bad-leader-magic", blockFault{BadMagic: true}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, emu := openTestStream(t, 2048, func(e *emuDevice) { e.faults[2] = tc.fault })
			var logBuf bytes.Buffer
			log := zerolog.New(&logBuf)
			s.opt.Log = &log
			checkFrame(t, readBlock(t, s, testHeight), 1, 0, 0)
			b := readBlock(t, s, testHeight)
			want := acquisition.LostLines{FirstLine: 8, Lines: 8, FirstCount: 16, LastCount: 30, Reason: ReasonFrameLost}
			if b.Lost != want {
				t.Fatalf("Lost = %+v, want %+v", b.Lost, want)
			}
			checkFrame(t, b, 3, 0, 16)
			checkFrame(t, readBlock(t, s, testHeight), 4, 0, 24)
			st := s.Stats()
			if st.Frames != 3 || st.LostFrames != 1 || st.LostLines != 8 || st.Stalls != tc.stalls {
				t.Fatalf("stats %+v", st)
			}
			if emu.halted {
				t.Fatal("endpoint left halted")
			}
			if !strings.Contains(logBuf.String(), "lost 1 frame(s) (8 lines) before block 3") {
				t.Fatalf("log: %s", logBuf.String())
			}
		})
	}
}

// encoderChunk is a ChunkEncoderValue chunk: 8 bytes of count, then the
// tag (ID, length), little-endian.
func encoderChunk(count int64) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(count))
	b = binary.LittleEndian.AppendUint32(b, 0xE7C0)
	return binary.LittleEndian.AppendUint32(b, 8)
}

func TestStreamEncoderChunk(t *testing.T) {
	s, _ := openTestStream(t, 0, func(e *emuDevice) {
		// The web jogs: frame n starts at count 1000*n (not n*8*k).
		e.chunks = func(id uint64) []byte { return encoderChunk(int64(id) * 1000) }
		e.faults[3] = blockFault{Short: 10}
	})
	b := readBlock(t, s, testHeight)
	for i := range b.Lines {
		if b.Counts[i] != 1000+int64(i)*testK {
			t.Fatalf("line %d count %d", i, b.Counts[i])
		}
	}
	b = readBlock(t, s, testHeight)
	if b.Counts[0] != 2000 || !b.Lost.Empty() {
		t.Fatalf("frame 2: count %d lost %+v", b.Counts[0], b.Lost)
	}
	b = readBlock(t, s, testHeight)
	want := acquisition.LostLines{FirstLine: 16, Lines: 8, FirstCount: 2016, LastCount: 3998, Reason: ReasonFrameLost}
	if b.Counts[0] != 4000 || b.FirstLine != 24 || b.Lost != want {
		t.Fatalf("after loss: count %d first line %d lost %+v", b.Counts[0], b.FirstLine, b.Lost)
	}
}

func TestStreamCloseUnblocks(t *testing.T) {
	s, emu := openTestStream(t, 0, nil)
	emu.mu.Lock()
	emu.setU32(regAcqStart, 0) // no frames: ReadBlock waits
	emu.mu.Unlock()
	done := make(chan error, 1)
	go func() { done <- s.ReadBlock(context.Background(), acquisition.NewBlock(8, testWidth)) }()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != io.EOF {
			t.Fatalf("ReadBlock after Close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not end ReadBlock")
	}
	if emu.u32(emuSIRM+sirmControl) != 0 {
		t.Fatal("Close left the stream interface enabled")
	}
}

func TestStreamWrongWidth(t *testing.T) {
	s, emu := openTestStream(t, 0, nil)
	emu.mu.Lock()
	emu.setU32(regWidth, 512)
	emu.mu.Unlock()
	err := s.ReadBlock(context.Background(), acquisition.NewBlock(8, testWidth))
	if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "512") {
		t.Fatalf("frame of another width: %v", err)
	}
}

func TestStreamHostileSIRM(t *testing.T) {
	d, emu := openEmu(t, testXML(t), false)
	opt := StreamOptions{Camera: acquisition.CameraInfo{Width: testWidth}, CountsPerLine: 1}
	binary.LittleEndian.PutUint64(emu.mem[emuSIRM+sirmReqPayload:], 1<<50)
	if _, err := d.OpenStream(opt); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "required payload size") {
		t.Fatalf("absurd payload size: %v", err)
	}
	binary.LittleEndian.PutUint64(emu.mem[emuSIRM+sirmReqPayload:], 8192)
	binary.LittleEndian.PutUint32(emu.mem[emuSIRM+sirmInfo:], 40<<24)
	if _, err := d.OpenStream(opt); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "alignment") {
		t.Fatalf("absurd alignment: %v", err)
	}
	if _, err := d.OpenStream(StreamOptions{Camera: acquisition.CameraInfo{Width: 0}, CountsPerLine: 1}); err == nil || !strings.Contains(err.Error(), "Camera.Width") {
		t.Fatalf("bad options: %v", err)
	}
}

// BenchmarkReadBlock streams 4096-px frames of 512 lines from the
// emulated camera through receiver, conversion and ReadBlock (the
// emulator's copying is included; no libusb).
func BenchmarkReadBlock(b *testing.B) {
	const w, h = 4096, 512
	for _, pf := range []uint32{pfMono8, pfMono12p} {
		b.Run("format="+PixelFormatName(pf), func(b *testing.B) {
			d, emu := openEmu(b, testXML(b), false)
			lb, _ := lineBytes(pf, w)
			img := make([]byte, lb*h)
			emu.image = func(uint64, leader) []byte { return img }
			for _, r := range [][2]uint32{{regWidth, w}, {regHeight, h}, {regPixFmt, pf}} {
				if err := writeU32(d.ctrl, uint64(r[0]), r[1]); err != nil {
					b.Fatal(err)
				}
			}
			s, err := d.OpenStream(StreamOptions{Camera: acquisition.CameraInfo{Width: w}, CountsPerLine: 1})
			if err != nil {
				b.Fatal(err)
			}
			defer func() {
				if err := s.Close(); err != nil {
					b.Error(err)
				}
			}()
			if err := writeU32(d.ctrl, regAcqStart, 1); err != nil {
				b.Fatal(err)
			}
			blk := acquisition.NewBlock(h, w)
			b.SetBytes(int64(len(img)))
			b.ReportAllocs()
			for b.Loop() {
				if err := s.ReadBlock(context.Background(), blk); err != nil || blk.Lines != h {
					b.Fatal(err, blk.Lines)
				}
			}
			b.ReportMetric(float64(w*h)*float64(b.N)/b.Elapsed().Seconds(), "px/s")
		})
	}
}

// TestStreamLossRun loses three frames in a row, each a different way:
// one LostLines covers them all. A block counter that restarts is not a
// loss.
func TestStreamLossRun(t *testing.T) {
	s, emu := openTestStream(t, 2048, func(e *emuDevice) {
		e.faults[2] = blockFault{StallAt: 2}
		e.faults[3] = blockFault{Skip: true}
		e.faults[4] = blockFault{Short: 5000}
	})
	checkFrame(t, readBlock(t, s, testHeight), 1, 0, 0)
	b := readBlock(t, s, testHeight)
	want := acquisition.LostLines{FirstLine: 8, Lines: 24, FirstCount: 16, LastCount: 62, Reason: ReasonFrameLost}
	if b.Lost != want {
		t.Fatalf("Lost = %+v, want %+v", b.Lost, want)
	}
	checkFrame(t, b, 5, 0, 32)
	emu.mu.Lock()
	emu.blockID = 0 // the camera restarts its block counter
	emu.mu.Unlock()
	b = readBlock(t, s, testHeight)
	if !b.Lost.Empty() {
		t.Fatalf("restart taken for a loss: %+v", b.Lost)
	}
	checkFrame(t, b, 1, 0, 40)
	if st := s.Stats(); st.LostFrames != 3 || st.LostLines != 24 || st.Frames != 3 {
		t.Fatalf("stats %+v", st)
	}
}

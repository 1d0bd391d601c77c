package camsim

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/webinspect/webinspect/acquisition"
	"github.com/webinspect/webinspect/acquisition/gige/wire"
	"github.com/webinspect/webinspect/acquisition/pfnc"
	"github.com/webinspect/webinspect/acquisition/sim"
)

// parseChunks walks a chunk payload backwards from its end.
func parseChunks(t testing.TB, p []byte) map[uint32][]byte {
	t.Helper()
	out := map[uint32][]byte{}
	for end := len(p); end > 0; {
		if end < 8 {
			t.Fatalf("chunk tag cut at %d", end)
		}
		id, n := binary.BigEndian.Uint32(p[end-8:]), int(binary.BigEndian.Uint32(p[end-4:]))
		if n > end-8 {
			t.Fatalf("chunk 0x%x of %d bytes does not fit in %d", id, n, end-8)
		}
		out[id] = p[end-8-n : end-8]
		end -= 8 + n
	}
	return out
}

// refLines reads the web as camera cam sees it, line by line.
type refLines struct {
	st  acquisition.Stream
	blk acquisition.Block
	seq int64
}

func newRef(t testing.TB, o Options, cam int) *refLines {
	t.Helper()
	s, err := sim.New(o.webConfig())
	if err != nil {
		t.Fatal(err)
	}
	r := &refLines{st: s.Streams()[cam]}
	r.blk = acquisition.Block{Pix: make([]byte, o.Width), Stride: o.Width, Counts: make([]int64, 1)}
	return r
}

// line returns line seq (seq never goes back) and its encoder count.
func (r *refLines) line(t testing.TB, seq int64) ([]byte, int64) {
	t.Helper()
	for ; r.seq <= seq; r.seq++ {
		if err := r.st.ReadBlock(context.Background(), &r.blk); err != nil {
			t.Fatalf("reference line %d: %v", r.seq, err)
		}
	}
	return r.blk.Pix, r.blk.Counts[0]
}

// freeRun configures camera c for free-running lines with every chunk on.
func freeRun(c *gvcpClient, pf wire.PixelFormat, width, offset uint32) {
	c.mustWrite(wire.RegCCP, wire.CCPControl)
	c.mustWrite(regTrigBase, 0)
	c.mustWrite(regPixelFormat, uint32(pf))
	c.mustWrite(regWidth, width)
	c.mustWrite(regOffsetX, offset)
	c.mustWrite(regChunkActive, 1)
	for sel := range uint32(nChunkSel) {
		c.mustWrite(regChunkEnBase+4*sel, 1)
	}
}

func completeFrames(rx *gvspRx) []*rxFrame {
	var out []*rxFrame
	for _, f := range rx.snapshot() {
		if f.complete() {
			out = append(out, f)
		}
	}
	return out
}

// TestFramesMatchWeb checks every pixel format: each complete frame holds
// the web's lines (as the simulator renders them) from OffsetX, and its
// chunks the lines' encoder counts, the line counter and a timestamp.
func TestFramesMatchWeb(t *testing.T) {
	for _, tc := range []struct {
		pf            wire.PixelFormat
		width, offset uint32
	}{
		{wire.Mono8, 512, 0}, {wire.Mono10, 256, 128}, {wire.Mono12, 512, 0},
		{wire.Mono16, 128, 8}, {wire.Mono10p, 512, 0}, {wire.Mono12p, 256, 256},
	} {
		t.Run(tc.pf.String(), func(t *testing.T) {
			o := smallOptions()
			e := startEmulator(t, o)
			c := dialGVCP(t, e.Addrs()[0])
			freeRun(c, tc.pf, tc.width, tc.offset)
			rx := stream(t, c)
			waitFor(t, 20*time.Second, "4 complete frames", func() bool { return len(completeFrames(rx)) >= 4 })
			c.mustWrite(regAcqStop, 1)
			ref := newRef(t, o, 0)
			var lastTS uint64
			for _, f := range completeFrames(rx)[:4] {
				checkFrame(t, f, ref, tc.pf, int(tc.width), int(tc.offset), o.LinesPerFrame)
				ts := binary.BigEndian.Uint64(parseChunks(t, f.payload())[ChunkIDTimestamp])
				if ts <= lastTS || ts != f.leader.Timestamp {
					t.Errorf("block %d: timestamp %d (leader %d) after %d", f.block, ts, f.leader.Timestamp, lastTS)
				}
				lastTS = ts
			}
		})
	}
}

func checkFrame(t *testing.T, f *rxFrame, ref *refLines, pf wire.PixelFormat, w, off, h int) {
	t.Helper()
	l, tr := f.leader, f.trailer
	if l.PayloadType != wire.PayloadImageChunk || l.PixelFormat != pf || int(l.Width) != w ||
		int(l.Height) != h || int(l.OffsetX) != off || tr.SizeY != uint32(h) {
		t.Fatalf("block %d: leader %+v trailer %+v", f.block, l, tr)
	}
	ch := parseChunks(t, f.payload())
	img, enc, lc := ch[ChunkIDImage], ch[ChunkIDEncoderValue], ch[ChunkIDLineCounter]
	if len(img) != pf.LineBytes(w)*h || len(enc) != 8*h || len(lc) != 8 {
		t.Fatalf("block %d: chunks of %d, %d, %d bytes", f.block, len(img), len(enc), len(lc))
	}
	first := int64(binary.BigEndian.Uint64(lc))
	got := make([]byte, w)
	for i := range h {
		want, count := ref.line(t, first+int64(i))
		lb := pf.LineBytes(w)
		if err := pfnc.ToMono8(got, img[i*lb:(i+1)*lb], w, pf); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want[off:off+w]) {
			t.Fatalf("block %d line %d (web line %d): pixels differ from the web", f.block, i, first+int64(i))
		}
		if c := int64(binary.BigEndian.Uint64(enc[8*i:])); c != count {
			t.Fatalf("block %d line %d: encoder %d, want %d", f.block, i, c, count)
		}
	}
}

// resender asks for every missing packet of frames that a newer frame has
// overtaken, as a GigE Vision host does, until stop is closed.
func resender(rx *gvspRx, gvcp net.Addr, expect int, stop <-chan struct{}) {
	var id uint16
	for {
		select {
		case <-stop:
			return
		case <-time.After(10 * time.Millisecond):
		}
		var reqs []wire.Resend
		rx.mu.Lock()
		for i, b := range rx.order {
			f := rx.frames[b]
			if i == len(rx.order)-1 || f.complete() {
				continue
			}
			last := f.last
			if last < 0 {
				last = expect - 1
			}
			for p := uint32(0); p <= uint32(last); p++ {
				if _, ok := f.pkts[p]; !ok {
					reqs = append(reqs, wire.Resend{BlockID: b, First: p, Last: p})
				}
			}
		}
		rx.mu.Unlock()
		for _, r := range reqs {
			id = wire.NextReqID(id)
			rx.conn.WriteTo(wire.AppendResendCmd(nil, id, r), gvcp)
		}
	}
}

func TestResendHonoured(t *testing.T) {
	o := smallOptions()
	o.PacketLoss = 100
	o.ResendFrames = 256 // a busy test machine may take a while to ask
	e := startEmulator(t, o)
	c := dialGVCP(t, e.Addrs()[0])
	freeRun(c, wire.Mono8, 512, 0)
	rx := stream(t, c)
	_, _, cfg := e.cams[0].dev.state()
	expect := (payloadSize(cfg)+wire.PayloadPerPacket(cfg.packetSize, false)-1)/wire.PayloadPerPacket(cfg.packetSize, false) + 2
	stop := make(chan struct{})
	defer close(stop)
	go resender(rx, net.UDPAddrFromAddrPort(e.Addrs()[0]), expect, stop)
	waitFor(t, 20*time.Second, "22 frames", func() bool { return len(rx.snapshot()) >= 22 })
	c.mustWrite(regAcqStop, 1)
	waitFor(t, 10*time.Second, "the first 20 frames complete through resends", func() bool {
		fs := rx.snapshot()[:20]
		return !slices.ContainsFunc(fs, func(f *rxFrame) bool { return !f.complete() })
	})
	st := e.Stats()[0]
	resent := 0
	for _, f := range rx.snapshot() {
		resent += f.resent
	}
	if st.LostPackets == 0 || st.ResentPackets == 0 || resent == 0 {
		t.Fatalf("lost %d, resent %d, received resends %d: loss and resends must both happen", st.LostPackets, st.ResentPackets, resent)
	}
	ref := newRef(t, o, 0)
	for _, f := range rx.snapshot()[:20] {
		checkFrame(t, f, ref, wire.Mono8, 512, 0, o.LinesPerFrame)
	}
}

func TestPacketLossRateWithoutResend(t *testing.T) {
	o := smallOptions()
	o.PacketLoss = 50
	o.NoResend = true
	e := startEmulator(t, o)
	c := dialGVCP(t, e.Addrs()[0])
	if v, _ := c.readReg(wire.RegGVCPCapability); v&(1<<2) != 0 {
		t.Error("PACKETRESEND advertised with NoResend")
	}
	freeRun(c, wire.Mono8, 512, 0)
	rx := stream(t, c)
	waitFor(t, 60*time.Second, "3000 packets", func() bool { return e.Stats()[0].Packets >= 3000 })
	c.mustWrite(regAcqStop, 1)
	waitFor(t, 5*time.Second, "the stream to stop", func() bool { return !e.Stats()[0].Streaming })
	st := e.Stats()[0]
	rate := float64(st.LostPackets) / float64(st.Packets+st.LostPackets)
	if rate < 0.03 || rate > 0.07 {
		t.Errorf("lost %d of %d packets (%.2f %%), want 5 %% ± 2", st.LostPackets, st.Packets+st.LostPackets, 100*rate)
	}
	received := func() int64 {
		n := int64(0)
		for _, f := range rx.snapshot() {
			n += int64(len(f.pkts))
		}
		return n
	}
	waitFor(t, 5*time.Second, "every sent packet to arrive", func() bool { return received() == st.Packets })
	// A resend request is refused with an error packet.
	blk := rx.snapshot()[0].block
	rx.conn.WriteTo(wire.AppendResendCmd(nil, 1, wire.Resend{BlockID: blk, First: 1, Last: 1}), net.UDPAddrFromAddrPort(e.Addrs()[0]))
	waitFor(t, 5*time.Second, "a packet-unavailable answer", func() bool {
		rx.mu.Lock()
		defer rx.mu.Unlock()
		return rx.frames[blk].errors > 0
	})
}

func TestFrameDropsSkipBlockIDs(t *testing.T) {
	o := smallOptions()
	o.FrameDrop = 250
	e := startEmulator(t, o)
	c := dialGVCP(t, e.Addrs()[0])
	freeRun(c, wire.Mono8, 512, 0)
	rx := stream(t, c)
	waitFor(t, 20*time.Second, "60 frames", func() bool { s := e.Stats()[0]; return s.Frames+s.DroppedFrames >= 60 })
	c.mustWrite(regAcqStop, 1)
	waitFor(t, 5*time.Second, "the stream to stop", func() bool { return !e.Stats()[0].Streaming })
	st := e.Stats()[0]
	waitFor(t, 5*time.Second, "every sent frame", func() bool { return int64(len(completeFrames(rx))) == st.Frames })
	if st.DroppedFrames == 0 {
		t.Fatal("no frame dropped at 250 per thousand")
	}
	fs := completeFrames(rx)
	var ids []uint64
	for _, f := range fs {
		ids = append(ids, f.block)
	}
	slices.Sort(ids)
	total := st.Frames + st.DroppedFrames
	missing := int64(0)
	for id := uint64(1); id <= uint64(total); id++ {
		if _, ok := slices.BinarySearch(ids, id); !ok {
			missing++
		}
	}
	if missing != st.DroppedFrames || ids[len(ids)-1] > uint64(total) {
		t.Errorf("%d block IDs missing of 1..%d, %d frames dropped", missing, total, st.DroppedFrames)
	}
	// The camera's fault record names exactly the missing blocks.
	faults := e.Faults()
	if int64(len(faults)) != st.DroppedFrames {
		t.Errorf("%d faults recorded, %d frames dropped", len(faults), st.DroppedFrames)
	}
	for _, ft := range faults {
		if _, seen := slices.BinarySearch(ids, ft.BlockID); seen || ft.Kind != FaultFrameDropped || ft.Resendable || ft.Lines != o.LinesPerFrame {
			t.Errorf("fault %+v", ft)
		}
	}
	var csv bytes.Buffer
	if err := WriteFaultsCSV(&csv, faults); err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSpace(csv.String()), "\n"); len(lines) != len(faults)+1 || lines[0] != FaultsHeader {
		t.Errorf("faults CSV:\n%s", csv.String())
	}
	// The line counter jumps by the dropped frames' lines.
	h := int64(o.LinesPerFrame)
	for i := 1; i < len(fs); i++ {
		a, b := fs[i-1], fs[i]
		la := int64(binary.BigEndian.Uint64(parseChunks(t, a.payload())[ChunkIDLineCounter]))
		lb := int64(binary.BigEndian.Uint64(parseChunks(t, b.payload())[ChunkIDLineCounter]))
		if lb-la != int64(b.block-a.block)*h {
			t.Errorf("blocks %d→%d: line counter %d→%d", a.block, b.block, la, lb)
		}
	}
}

// TestEncoderStopAndJog streams a web that stops and jogs back: the
// per-line encoder chunk follows the encoder exactly, backwards lines and
// all, and no line is skipped.
func TestEncoderStopAndJog(t *testing.T) {
	o := smallOptions()
	o.Web.SpeedMPerMin = 60
	o.Web.Motion = acquisition.StopAndJog(60, 0.4, 0.3, 0.1)
	e := startEmulator(t, o)
	c := dialGVCP(t, e.Addrs()[0])
	c.mustWrite(wire.RegCCP, wire.CCPControl)
	c.mustWrite(regChunkActive, 1)
	c.mustWrite(regChunkEnBase+4*chunkSelEnc, 1)
	c.mustWrite(regChunkEnBase+4*chunkSelLC, 1)
	rx := stream(t, c)
	// 0.4 m at 1 m/s, 0.3 s stopped, 0.1 m back at 0.25 m/s, 0.5 s stopped:
	// 1.6 s, then 0.2 m forwards again.
	wc := o.webConfig()
	need := int64((0.4+0.1+0.1+0.2)*1000/wc.LineMM) / int64(o.LinesPerFrame)
	waitFor(t, 30*time.Second, fmt.Sprintf("%d frames", need), func() bool { return int64(len(completeFrames(rx))) >= need })
	c.mustWrite(regAcqStop, 1)
	m, err := acquisition.NewMotion(wc.Motion, wc.MMPerCount(), wc.CountsPerLine)
	if err != nil {
		t.Fatal(err)
	}
	var seq int64
	back := 0
	prev := int64(-1)
	for _, f := range completeFrames(rx)[:need] {
		ch := parseChunks(t, f.payload())
		if lc := int64(binary.BigEndian.Uint64(ch[ChunkIDLineCounter])); lc != seq {
			t.Fatalf("block %d starts at line %d, want %d", f.block, lc, seq)
		}
		enc := ch[ChunkIDEncoderValue]
		for i := 0; i < len(enc); i += 8 {
			want, _ := m.Next()
			got := int64(binary.BigEndian.Uint64(enc[i:]))
			if got != want {
				t.Fatalf("line %d: encoder %d, want %d", seq+int64(i/8), got, want)
			}
			if got < prev {
				back++
			}
			prev = got
		}
		seq += int64(len(enc) / 8)
	}
	if wantBack := int(0.1 * 1000 / wc.LineMM); back != wantBack {
		t.Errorf("%d lines while jogging back, want %d", back, wantBack)
	}
}

package camsim

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/webinspect/webinspect/acquisition"
	"github.com/webinspect/webinspect/acquisition/gige/wire"
	"github.com/webinspect/webinspect/acquisition/sim"
	"github.com/webinspect/webinspect/internal/syncbuf"
)

func TestOptionsValidate(t *testing.T) {
	if err := DefaultOptions().Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	for _, tc := range []struct {
		field string
		mod   func(*Options)
	}{
		{"Cameras", func(o *Options) { o.Cameras = 0 }},
		{"Listen", func(o *Options) { o.Listen = "::1" }},
		{"Listen", func(o *Options) { o.Listen = "camera" }},
		{"Width", func(o *Options) { o.Width = 4100 }},
		{"Width", func(o *Options) { o.Width = 32 }},
		{"LinesPerFrame", func(o *Options) { o.LinesPerFrame = 0 }},
		{"LineRate", func(o *Options) { o.LineRate = 1e6 }},
		{"PacketSize", func(o *Options) { o.PacketSize = 65000 }},
		{"PacketLoss", func(o *Options) { o.PacketLoss = -1 }},
		{"FrameDrop", func(o *Options) { o.FrameDrop = 900 }},
		{"ResendFrames", func(o *Options) { o.ResendFrames = 0 }},
		{"Web: sim: Material", func(o *Options) { o.Web.Material = "paper" }},
		{"Web: sim: LengthM", func(o *Options) { o.Web.LengthM = 0 }},
	} {
		o := DefaultOptions()
		tc.mod(&o)
		err := o.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%s: error %v does not name it", tc.field, err)
		}
	}
	o := DefaultOptions()
	o.Cameras = 3
	o.Listen = "127.255.255.254"
	if _, err := o.cameraAddrs(); err == nil {
		t.Error("cameras beyond the loopback range accepted")
	}
	o.Listen = "192.0.2.10:4000"
	addrs, err := o.cameraAddrs()
	if err != nil || addrs[2].String() != "192.0.2.10:4002" {
		t.Errorf("non-loopback addresses %v, %v", addrs, err)
	}
}

func TestXMLImage(t *testing.T) {
	for _, plain := range []bool{false, true} {
		img, url, err := xmlImage(plain)
		if err != nil {
			t.Fatal(err)
		}
		if len(img)%4 != 0 {
			t.Errorf("plain=%v: %d bytes, not a multiple of 4", plain, len(img))
		}
		ext := ".zip"
		if plain {
			ext = ".xml"
		}
		if want := "Local:webinspect-linescan" + ext + ";100000;"; !strings.HasPrefix(url, want) {
			t.Errorf("URL %q, want prefix %q", url, want)
		}
		if plain && !bytes.Equal(bytes.TrimRight(img, "\n"), bytes.TrimRight(deviceXML, "\n")) {
			t.Error("plain XML differs from device.xml")
		}
	}
}

func TestTwoCamerasOneEncoder(t *testing.T) {
	o := smallOptions()
	o.Cameras = 2
	dir := t.TempDir()
	o.TruthFile = filepath.Join(dir, "truth.csv")
	o.InfoFile = filepath.Join(dir, "info.json")
	e := startEmulator(t, o)
	a := e.Addrs()
	if a[0].Addr() == a[1].Addr() || a[1].Addr().String() != "127.0.0.2" {
		t.Fatalf("addresses %v: want 127.0.0.1 and 127.0.0.2", a)
	}
	f, err := os.Open(o.TruthFile)
	if err != nil {
		t.Fatal(err)
	}
	truth, err := sim.ReadTruthCSV(f)
	f.Close()
	if err != nil || len(truth) != o.Web.Defects {
		t.Fatalf("truth file: %d defects, %v", len(truth), err)
	}
	var inf infoFile
	b, _ := os.ReadFile(o.InfoFile)
	if err := json.Unmarshal(b, &inf); err != nil {
		t.Fatal(err)
	}
	cams := inf.Source.Cameras
	if len(cams) != 2 || cams[1].OffsetMM <= cams[0].OffsetMM || cams[0].Width != o.Width || len(cams[1].White) != o.Width ||
		inf.Cameras[1].Address != a[1].String() || inf.ChunkIDs["EncoderValue"] != "0x57490002" ||
		inf.Source.LinesPerBlock != o.LinesPerFrame || !inf.Source.Live || inf.Source.CountsPerLine != o.Web.CountsPerLine {
		t.Fatalf("info file: %s", b)
	}
	// Both cameras take lines of the same encoder: every line's count is a
	// trigger of one motion, in order. Camera 1 starts once camera 0 has
	// sent two frames: the web it missed meanwhile is skipped, not replayed.
	firstCounts := func(rx *gvspRx, n int) []int64 {
		var counts []int64
		for _, f := range completeFrames(rx)[:n] {
			enc := parseChunks(t, f.payload())[ChunkIDEncoderValue]
			for j := 0; j < len(enc); j += 8 {
				counts = append(counts, int64(binary.BigEndian.Uint64(enc[j:])))
			}
		}
		return counts
	}
	var rxs []*gvspRx
	for i, addr := range a {
		c := dialGVCP(t, addr)
		c.mustWrite(wire.RegCCP, wire.CCPControl)
		c.mustWrite(regChunkActive, 1)
		c.mustWrite(regChunkEnBase+4*chunkSelEnc, 1)
		rxs = append(rxs, stream(t, c))
		if i == 0 {
			waitFor(t, 20*time.Second, "2 frames of camera 0", func() bool { return len(completeFrames(rxs[0])) >= 2 })
		}
	}
	var counts [2][]int64
	for i, rx := range rxs {
		waitFor(t, 20*time.Second, "5 frames", func() bool { return len(completeFrames(rx)) >= 5 })
		counts[i] = firstCounts(rx, 5)
		k := int64(o.Web.CountsPerLine)
		for j := 1; j < len(counts[i]); j++ {
			if counts[i][j] != counts[i][j-1]+k {
				t.Fatalf("camera %d line %d: count %d after %d (constant speed, divider %d)", i, j, counts[i][j], counts[i][j-1], k)
			}
		}
	}
	if counts[0][0] != 0 || counts[1][0] <= counts[0][2*o.LinesPerFrame-1] {
		t.Errorf("first counts: camera 0 %d, camera 1 %d after camera 0's second frame ended at %d",
			counts[0][0], counts[1][0], counts[0][2*o.LinesPerFrame-1])
	}
	img0 := completeFrames(rxs[0])[0].payload()
	img1 := completeFrames(rxs[1])[0].payload()
	if bytes.Equal(img0[:o.Width], img1[:o.Width]) {
		t.Error("both cameras see the same pixels")
	}
}

func TestTriggersAndFrameModes(t *testing.T) {
	e := startEmulator(t, smallOptions())
	c := dialGVCP(t, e.Addrs()[0])
	c.mustWrite(wire.RegCCP, wire.CCPControl)
	c.mustWrite(regAcqMode, modeMulti)
	c.mustWrite(regFrameCount, 3)
	rx := stream(t, c)
	waitFor(t, 10*time.Second, "MultiFrame to end by itself", func() bool {
		v, _ := c.readReg(regTLLocked)
		return v == 0 && !e.Stats()[0].Streaming
	})
	if n := e.Stats()[0].Frames; n != 3 {
		t.Errorf("MultiFrame of 3 sent %d frames", n)
	}
	waitFor(t, 5*time.Second, "3 frames received", func() bool { return len(completeFrames(rx)) == 3 })

	// FrameStart from software: one frame per TriggerSoftware.
	c.mustWrite(regAcqMode, modeContinous)
	c.mustWrite(regTrigSelector, selFrameStart)
	c.mustWrite(regTrigBase+0x10, 1)
	c.mustWrite(regAcqStart, 1)
	waitFor(t, 5*time.Second, "the stream to start", func() bool { return e.Stats()[0].Streaming })
	for i := range 2 {
		c.mustWrite(regTrigSoftware, 1)
		waitFor(t, 10*time.Second, "a triggered frame", func() bool { return e.Stats()[0].Frames == int64(4+i) })
	}
	c.mustWrite(regAcqStop, 1)
	waitFor(t, 5*time.Second, "the stream to stop", func() bool { return !e.Stats()[0].Streaming })
	if n := e.Stats()[0].Frames; n != 5 {
		t.Errorf("%d frames after 3 + 2 triggers", n)
	}
}

func TestFlags(t *testing.T) {
	fs := flag.NewFlagSet("camera-sim", flag.ContinueOnError)
	f := NewFlags(fs)
	err := fs.Parse(strings.Fields("--cameras 2 --listen 127.0.0.9:4000 --length 20 --seed 7 --speed 120 " +
		"--stop-at 5 --stop-seconds 1 --jog-back 0.5 --packet-loss 10 --no-resend --frame-drop 2 " +
		"--truth t.csv --width 2048 --lines-per-frame 128 --line-rate 8000"))
	if err != nil {
		t.Fatal(err)
	}
	o := f.Options()
	want := acquisition.StopAndJog(120, 5, 1, 0.5)
	if o.Cameras != 2 || o.Listen != "127.0.0.9:4000" || o.Web.LengthM != 20 || o.Web.Seed != 7 ||
		o.Web.SpeedMPerMin != 120 || len(o.Web.Motion) != len(want) || o.Web.Motion[2] != want[2] ||
		o.PacketLoss != 10 || !o.NoResend || o.FrameDrop != 2 || o.TruthFile != "t.csv" ||
		o.Width != 2048 || o.LinesPerFrame != 128 || o.LineRate != 8000 {
		t.Errorf("options from flags: %+v", o)
	}
	if err := o.Validate(); err != nil {
		t.Error(err)
	}
	var stderr bytes.Buffer
	err = MainContext(context.Background(), []string{"--width", "100"}, io.Discard, &stderr)
	if err == nil || !strings.Contains(err.Error(), "Width") {
		t.Errorf("bad width: %v", err)
	}
	if err := MainContext(context.Background(), []string{"--bogus"}, io.Discard, &stderr); err == nil {
		t.Error("unknown flag accepted")
	}
}

// TestMainServes runs the command on free ports until its context ends.
func TestMainServes(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var out syncbuf.Buffer
	done := make(chan error, 1)
	go func() {
		done <- MainContext(ctx, []string{"--listen", "127.0.0.1:0", "--width", "256"}, &out, io.Discard)
	}()
	waitFor(t, 10*time.Second, "the camera line", func() bool { return strings.Contains(out.String(), "camera 0 127.0.0.1:") })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestWebEnds streams a 0.1 m web: full frames, then one short frame with
// the remaining lines, then nothing.
func TestWebEnds(t *testing.T) {
	o := smallOptions()
	o.Web.LengthM, o.Web.LearnM, o.Web.Defects = 0.1, 0, 0
	e := startEmulator(t, o)
	c := dialGVCP(t, e.Addrs()[0])
	c.mustWrite(wire.RegCCP, wire.CCPControl)
	c.mustWrite(regTrigBase, 0) // free-run
	rx := stream(t, c)
	lines := int(0.1 * 1000 / o.Web.LineMM) // 400
	full, rest := lines/o.LinesPerFrame, lines%o.LinesPerFrame
	waitFor(t, 20*time.Second, "the whole web", func() bool { return len(completeFrames(rx)) == full+1 })
	c.mustWrite(regAcqStop, 1)
	waitFor(t, 5*time.Second, "the stream to stop", func() bool { return !e.Stats()[0].Streaming })
	fs := completeFrames(rx)
	if len(fs) != full+1 || e.Stats()[0].Lines != int64(lines) {
		t.Fatalf("%d frames, %d lines; want %d frames, %d lines", len(fs), e.Stats()[0].Lines, full+1, lines)
	}
	last := fs[full]
	if last.leader.Height != uint32(rest) || last.trailer.SizeY != uint32(rest) || len(last.payload()) != rest*o.Width {
		t.Errorf("last frame: leader height %d, trailer %d, %d bytes; want %d lines", last.leader.Height, last.trailer.SizeY, len(last.payload()), rest)
	}
}

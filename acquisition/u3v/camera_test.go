package u3v

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/webinspect/webinspect/acquisition"
)

// TestCameraNodeMap goes the whole way a CLI does: discovery, the device
// XML through the manifest (zipped), features by SFNC name, a line stream
// started and stopped through the node map.
func TestCameraNodeMap(t *testing.T) {
	xml := testXML(t)
	emu := newEmu(t, zipped(t, "emuline.xml", xml), true)
	emu.image = mono8Image
	withEmuBus(t, emu)
	c, err := OpenCamera("EMU0001", DefaultControlOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := c.Close(); err != nil {
			t.Error(err)
		}
	}()
	n := c.Nodes
	if v, err := n.Enum("DeviceScanType"); err != nil || v != "Linescan" {
		t.Fatalf("DeviceScanType = %q, %v", v, err)
	}
	for name, v := range map[string]int64{"Width": testWidth, "Height": testHeight, "TestRegister": 0x1234} {
		if err := n.SetInt(name, v); err != nil {
			t.Fatal(err)
		}
		if got, err := n.Int(name); err != nil || got != v {
			t.Fatalf("%s = %d, %v; want %d", name, got, err, v)
		}
	}
	if emu.u32(regTestReg) != 0x1234 {
		t.Fatal("TestRegister did not reach the device")
	}
	if err := n.SetEnum("PixelFormat", "Mono12p"); err != nil {
		t.Fatal(err)
	}
	if p, err := n.Int("PayloadSize"); err != nil || p != testWidth*testHeight*12/8 {
		t.Fatalf("PayloadSize = %d, %v", p, err)
	}
	if err := n.SetEnum("PixelFormat", "Mono8"); err != nil {
		t.Fatal(err)
	}
	s, err := c.OpenLineStream(StreamOptions{Camera: acquisition.CameraInfo{Index: 1}, CountsPerLine: testK})
	if err != nil {
		t.Fatal(err)
	}
	if s.Camera().Width != testWidth || emu.u32(regAcqStart) != 1 {
		t.Fatalf("width %d, acquisition register %d", s.Camera().Width, emu.u32(regAcqStart))
	}
	checkFrame(t, readBlock(t, s, testHeight), 1, 0, 0)
	checkFrame(t, readBlock(t, s, testHeight), 2, 0, 8)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if emu.u32(regAcqStart) != 0 || emu.u32(emuSIRM+sirmControl) != 0 {
		t.Fatal("Close left acquisition running")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.ReadBlock(ctx, acquisition.NewBlock(8, testWidth)); err != io.EOF {
		t.Fatalf("ReadBlock after Close: %v", err)
	}
}

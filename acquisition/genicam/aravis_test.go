package genicam

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/webinspect/webinspect/internal/aravistest"
)

// requireAravis skips the test when the Aravis tools are not installed,
// unless WEBINSPECT_REQUIRE_ARAVIS=1 makes their absence a failure.
func requireAravis(t *testing.T, progs ...string) {
	t.Helper()
	for _, p := range progs {
		if _, err := exec.LookPath(p); err != nil {
			if os.Getenv("WEBINSPECT_REQUIRE_ARAVIS") == "1" {
				t.Fatalf("%s not found and WEBINSPECT_REQUIRE_ARAVIS=1 (apt-get install aravis-tools aravis-tools-cli)", p)
			}
			t.Skipf("%s not found; install Debian's aravis-tools and aravis-tools-cli to run this test", p)
		}
	}
}

// aravisFakeXML starts Aravis's fake GigE Vision camera on 127.0.0.1 and
// reads its device description with arv-tool. The fake camera can only
// listen on 127.0.0.1:3956; when another test already runs one there,
// ours fails to bind and exits, and arv-tool reads the other one (same
// description).
func aravisFakeXML(t *testing.T) []byte {
	requireAravis(t, "arv-fake-gv-camera-0.8", "arv-tool-0.8")
	aravistest.LockFakeCamera(t) // the fake camera always binds 127.0.0.1:3956
	ctx, cancel := context.WithCancel(context.Background())
	fake := exec.CommandContext(ctx, "arv-fake-gv-camera-0.8", "-i", "127.0.0.1")
	if err := fake.Start(); err != nil {
		cancel()
		t.Fatalf("starting arv-fake-gv-camera-0.8: %v", err)
	}
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); _ = fake.Wait() }) }
	t.Cleanup(stop)
	deadline := time.Now().Add(20 * time.Second)
	var lastErr error
	for time.Now().Before(deadline) {
		tctx, tcancel := context.WithTimeout(ctx, 10*time.Second)
		out, err := exec.CommandContext(tctx, "arv-tool-0.8", "-a", "127.0.0.1", "genicam").Output()
		tcancel()
		if i := bytes.Index(out, []byte("<?xml")); err == nil && i >= 0 {
			return out[i:] // arv-tool prints the device name first
		}
		lastErr = err
		time.Sleep(100 * time.Millisecond) // polling for the camera to come up
	}
	t.Fatalf("arv-tool-0.8 genicam got no description from the fake camera within 20 s: %v", lastErr)
	return nil
}

// zeroPort is a sparse register space: every address reads as zero until
// written. It stands in for a device whose registers were never set.
type zeroPort struct{ mem map[uint64]byte }

func (p *zeroPort) ReadMem(addr uint64, b []byte) error {
	for i := range b {
		b[i] = p.mem[addr+uint64(i)]
	}
	return nil
}

func (p *zeroPort) WriteMem(addr uint64, b []byte) error {
	for i, c := range b {
		p.mem[addr+uint64(i)] = c
	}
	return nil
}

// TestAravisFakeCameraXML parses the Aravis fake camera's own description
// and evaluates every node over zeroed registers.
func TestAravisFakeCameraXML(t *testing.T) {
	xml := aravisFakeXML(t)
	m, err := Parse(xml)
	if err != nil {
		t.Fatalf("Parse of the Aravis fake camera's XML: %v", err)
	}
	if probs := m.Problems(); len(probs) > 0 {
		t.Errorf("problems: %v", probs)
	}
	if m.ModelName != "Fake" || m.VendorName != "Aravis" {
		t.Errorf("root attributes %q %q", m.ModelName, m.VendorName)
	}
	p := &zeroPort{mem: map[uint64]byte{}}
	m.Connect(p)
	evaluated := 0
	for _, n := range m.order {
		if n.kind == kindCategory || n.kind == kindPort {
			continue
		}
		_, err := m.Value(n.name)
		switch {
		case err == nil:
			evaluated++
		case n.kind == kindCommand && errors.Is(err, ErrWrongType):
		case errors.Is(err, ErrWriteOnly), errors.Is(err, ErrNotAvailable), errors.Is(err, ErrNotImplemented),
			errors.Is(err, ErrNotEnumEntry), errors.Is(err, ErrOutOfRange), errors.Is(err, ErrFormula):
			t.Logf("%s over zeroed registers: %v", n.name, err) // a zero that is no valid value
		default:
			t.Errorf("%s: %v", n.name, err)
		}
	}
	t.Logf("%d of %d nodes evaluated over zeroed registers", evaluated, len(m.order))
	for _, f := range []string{"Width", "Height", "PixelFormat", "PayloadSize", "TestRegister"} {
		if !m.Has(f) {
			t.Errorf("the fake camera has no %s", f)
		}
	}
	// PayloadSize is a SwissKnife over Width, Height and PixelFormat.
	if err := m.SetEnum("PixelFormat", "Mono16"); err != nil {
		t.Fatal(err)
	}
	sw := m.nodes["SensorWidth"].value.node
	sh := m.nodes["SensorHeight"].value.node
	for _, r := range []*node{sw, sh} {
		k, err := m.regLocation(r)
		if err != nil {
			t.Fatal(err)
		}
		_ = p.WriteMem(k.addr, []byte{0, 0, 0x10, 0}) // 4096 as the device would report
	}
	m.Invalidate()
	for name, v := range map[string]int64{"Width": 640, "Height": 480, "TestRegister": 123} {
		if err := m.SetInt(name, v); err != nil {
			t.Fatalf("SetInt(%s): %v", name, err)
		}
	}
	if v, err := m.Int("PayloadSize"); err != nil || v != 640*480*2 {
		t.Errorf("PayloadSize = %d, %v; want %d", v, err, 640*480*2)
	}
	if v, err := m.Bool("TestBoolean"); err != nil || v {
		t.Errorf("TestBoolean over TestRegister=123 (its OffValue) = %v, %v", v, err)
	}
}

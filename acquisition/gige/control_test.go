package gige

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/webinspect/webinspect/acquisition/gige/wire"
)

func testOptions() Options {
	o := DefaultOptions()
	o.Timeout = 50 * time.Millisecond
	o.HeartbeatTimeout = 600 * time.Millisecond
	return o
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	dl := time.Now().Add(within)
	for !cond() {
		if time.Now().After(dl) {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func dial(t *testing.T, d *fakeDev, o Options) *Conn {
	t.Helper()
	c, err := Dial(context.Background(), d.addr(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestDiscoverUnicast(t *testing.T) {
	d := newFakeDev(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	devs, err := Discover(ctx, d.addr())
	if err != nil {
		t.Fatal(err)
	}
	if len(devs) != 1 || devs[0].Serial != "FD0001" || devs[0].Model != "fakedev" ||
		devs[0].MAC.String() != "02:00:00:00:00:01" || devs[0].Addr.String() != d.addr() {
		t.Fatalf("found %+v", devs)
	}
	d.close()
	ctx, cancel = context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := Discover(ctx, d.addr()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("discovery of a closed device: %v", err)
	}
}

func TestControlRegistersAndMemory(t *testing.T) {
	d := newFakeDev(t)
	c := dial(t, d, testOptions())
	if got := d.reg(wire.RegCCP); got != wire.CCPControl {
		t.Fatalf("CCP = %x after Dial", got)
	}
	if got := d.reg(wire.RegHeartbeatTimeout); got != 600 {
		t.Fatalf("heartbeat timeout = %d", got)
	}
	if err := c.WriteReg(0x1000, 0xdeadbeef); err != nil {
		t.Fatal(err)
	}
	if v, err := c.ReadReg(0x1000); err != nil || v != 0xdeadbeef {
		t.Fatalf("ReadReg = %x, %v", v, err)
	}
	// Unaligned, multi-block memory access.
	want := make([]byte, 1301)
	for i := range want {
		want[i] = byte(i * 7)
	}
	if err := c.WriteMem(0x2003, want); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(want))
	if err := c.ReadMem(0x2003, got); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("ReadMem after WriteMem: %v (equal %v)", err, bytes.Equal(got, want))
	}
	edge := make([]byte, 2)
	if err := c.ReadMem(0x2001, edge); err != nil || edge[0] != 0 || edge[1] != want[0] {
		t.Fatalf("bytes before the write were touched: %v %v", edge, err)
	}
	url, err := c.XMLURL()
	if err != nil || url != "Local:fake.xml;10000;100" {
		t.Fatalf("XMLURL = %q, %v", url, err)
	}
	info, err := c.Bootstrap()
	if err != nil || info.Serial != "FD0001" {
		t.Fatalf("Bootstrap = %+v, %v", info, err)
	}
	if err := c.ReadMem(1<<32-2, make([]byte, 4)); !errors.Is(err, ErrRange) {
		t.Fatalf("read past 4 GiB: %v", err)
	}
	if _, err := c.ReadReg(fakeMemSize + 8); !errors.Is(err, ErrDevice) {
		t.Fatalf("read of an invalid address: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if got := d.reg(wire.RegCCP); got != 0 {
		t.Fatalf("CCP = %x after Close", got)
	}
	if _, err := c.ReadReg(0); !errors.Is(err, ErrClosed) {
		t.Fatalf("ReadReg after Close: %v", err)
	}
}

func TestControlRetriesAndPending(t *testing.T) {
	d := newFakeDev(t)
	c := dial(t, d, testOptions())
	d.mu.Lock()
	d.dropAcks = 2
	d.mu.Unlock()
	if err := c.WriteReg(0x1000, 5); err != nil {
		t.Fatalf("with 2 lost acknowledges and 3 retries: %v", err)
	}
	if st := c.Stats(); st.Retries < 2 {
		t.Fatalf("retries %d, want >= 2", st.Retries)
	}
	d.mu.Lock()
	d.pendingMs = 150 // three times the client's timeout
	d.mu.Unlock()
	if v, err := c.ReadReg(0x1000); err != nil || v != 5 {
		t.Fatalf("read behind a pending acknowledge: %v, %v", v, err)
	}
	if st := c.Stats(); st.Pending < 1 {
		t.Fatalf("pending acknowledges %d", st.Pending)
	}
	d.mu.Lock()
	d.pendingMs = 0
	d.dropAcks = 100
	d.mu.Unlock()
	if _, err := c.ReadReg(0x1000); !errors.Is(err, ErrTimeout) {
		t.Fatalf("with every acknowledge lost: %v", err)
	}
	d.mu.Lock()
	d.dropAcks = 0
	d.mu.Unlock()
	if _, err := c.ReadReg(0x1000); err != nil {
		t.Fatalf("late acknowledges of the failed command confuse the next one: %v", err)
	}
}

func TestHeartbeatLoss(t *testing.T) {
	d := newFakeDev(t)
	o := testOptions()
	o.HeartbeatTimeout = 150 * time.Millisecond
	o.Timeout = 20 * time.Millisecond
	o.Retries = 0
	c := dial(t, d, o)
	d.close() // the camera disappears
	select {
	case <-c.Lost():
	case <-time.After(5 * time.Second):
		t.Fatal("heartbeat did not notice the device had gone")
	}
	if !errors.Is(c.Err(), ErrLostControl) {
		t.Fatalf("Err = %v", c.Err())
	}
}

func TestOptionsValidate(t *testing.T) {
	o := DefaultOptions()
	o.Retries = -1
	if err := o.Validate(); !errors.Is(err, ErrOptions) {
		t.Fatal(err)
	}
	s := DefaultStreamOptions(100)
	s.InFlight = s.Buffers
	if err := s.Validate(); !errors.Is(err, ErrOptions) {
		t.Fatal(err)
	}
	if err := DefaultStreamOptions(1 << 20).Validate(); err != nil {
		t.Fatal(err)
	}
}

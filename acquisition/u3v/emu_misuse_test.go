package u3v

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// recorder collects what the emulator reports instead of failing.
type recorder struct{ msgs []string }

func (r *recorder) Error(args ...any) { r.msgs = append(r.msgs, fmt.Sprint(args...)) }

// TestEmulatorCatchesMisuse proves the emulated device fails a test that
// misuses it, so that the other tests passing means the host code uses the
// device the way USB and the standard require.
func TestEmulatorCatchesMisuse(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		do   func(b *emuBus, d usbDevice) error
		want string
	}{
		{"double-claim", func(b *emuBus, _ usbDevice) error { _, err := b.open(emuInfo); return err }, "claimed twice"},
		{"use-after-close", func(_ *emuBus, d usbDevice) error {
			_ = d.close()
			_, err := d.bulkIn(ctx, emuInfo.ControlIn.Addr, make([]byte, 64))
			return err
		}, "closed device"},
		{"double-close", func(_ *emuBus, d usbDevice) error { _ = d.close(); return d.close() }, "not open"},
		{"out-on-in-endpoint", func(_ *emuBus, d usbDevice) error {
			_, err := d.bulkOut(ctx, emuInfo.StreamIn.Addr, []byte{1})
			return err
		}, "wrong endpoint"},
		{"unknown-endpoint", func(_ *emuBus, d usbDevice) error {
			_, err := d.bulkIn(ctx, 0x85, make([]byte, 1024))
			return err
		}, "wrong endpoint"},
		{"unaligned-stream-read", func(_ *emuBus, d usbDevice) error {
			_, err := d.bulkIn(ctx, emuInfo.StreamIn.Addr, make([]byte, 1000))
			return err
		}, "not a multiple of the max packet size"},
		{"command-without-prefix", func(_ *emuBus, d usbDevice) error {
			_, err := d.bulkOut(ctx, emuInfo.ControlOut.Addr, []byte("hello, camera"))
			return err
		}, "U3VC"},
		{"bus-closed-with-device-open", func(b *emuBus, _ usbDevice) error { return b.close() }, "device open"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{}
			emu := newEmu(t, testXML(t), false)
			emu.t = rec
			bus := &emuBus{t: rec, devs: []*emuDevice{emu}, infos: []deviceInfo{emuInfo}}
			d, err := bus.open(emuInfo)
			if err != nil {
				t.Fatal(err)
			}
			err = tc.do(bus, d)
			if err == nil || len(rec.msgs) == 0 || !strings.Contains(rec.msgs[0], tc.want) {
				t.Fatalf("misuse not caught: err %v, reported %q", err, rec.msgs)
			}
		})
	}
}

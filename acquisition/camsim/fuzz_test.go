package camsim

import (
	"net/netip"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/webinspect/webinspect/acquisition/gige/wire"
)

// FuzzHandle feeds arbitrary datagrams to the GVCP command handler: it
// must never panic, and answers only with well-formed acknowledges.
func FuzzHandle(f *testing.F) {
	for _, seed := range [][]byte{
		wire.AppendDiscoveryCmd(nil, 1, true),
		must(wire.AppendReadRegCmd(nil, 2, regWidth, wire.RegCCP)),
		must(wire.AppendWriteRegCmd(nil, 3, wire.RegWrite{Addr: wire.RegCCP, Value: 2}, wire.RegWrite{Addr: regAcqStart, Value: 1})),
		must(wire.AppendReadMemCmd(nil, 4, xmlAddr, 512)),
		must(wire.AppendWriteMemCmd(nil, 5, regLineRate, make([]byte, 8))),
		wire.AppendResendCmd(nil, 6, wire.Resend{BlockID: 1, First: 0, Last: 1 << 20}),
		{0x42, 0x01, 0x00, 0x84, 0xff, 0xff, 0x00, 0x07},
	} {
		f.Add(seed)
	}
	dev, err := newDevice(deviceParams{id: identity{serial: "fuzz", ip: netip.MustParseAddr("127.0.0.1")},
		sensorWidth: 512, height: 64, divider: 4, lineRate: 10000, packetSize: 1500})
	if err != nil {
		f.Fatal(err)
	}
	srv := &server{dev: dev, log: zerolog.Nop(), resend: func(wire.Resend) {}}
	from := netip.MustParseAddrPort("127.0.0.1:40000")
	f.Fuzz(func(t *testing.T, pkt []byte) {
		out := srv.handle(nil, pkt, from, time.Now())
		if len(out) == 0 {
			return
		}
		if _, _, err := wire.ParseAck(out); err != nil {
			t.Fatalf("malformed acknowledge %x to %x: %v", out, pkt, err)
		}
	})
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

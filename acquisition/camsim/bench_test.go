package camsim

import (
	"context"
	"net"
	"testing"

	"github.com/webinspect/webinspect/acquisition/gige/wire"
)

// BenchmarkFrame renders one 256-line frame of 4096 px from the web and
// encodes it (Mono8 and Mono12p, all chunks): the camera's CPU per frame.
func BenchmarkFrame(b *testing.B) {
	for _, m := range []string{"fabric", "film"} {
		for _, pf := range []wire.PixelFormat{wire.Mono8, wire.Mono12p} {
			b.Run("material="+m+"/format="+pf.String(), func(b *testing.B) {
				o := DefaultOptions()
				o.Listen = "127.0.0.1:0"
				o.Web.Material = m
				o.Web.LengthM = 100000
				e, err := New(context.Background(), o)
				if err != nil {
					b.Fatal(err)
				}
				defer e.Close()
				s, d := e.cams[0].str, e.cams[0].dev
				d.put32(regPixelFormat, uint32(pf))
				d.put32(regChunkActive, 1)
				for sel := range uint32(nChunkSel) {
					d.put32(regChunkEnBase+4*sel, 1)
				}
				cfg := d.configLocked()
				f := s.getFrame(cfg.height)
				f.lines = cfg.height
				b.SetBytes(int64(cfg.width * cfg.height))
				b.ReportAllocs()
				for b.Loop() {
					for i := range cfg.height {
						c, _, err := s.readLine(context.Background(), f.raw.pix[i*s.sw:(i+1)*s.sw])
						if err != nil {
							b.Fatal(err)
						}
						f.raw.counts[i] = c
					}
					f.encode(cfg, s.sw, 0)
				}
				b.ReportMetric(float64(cfg.height)*float64(b.N)/b.Elapsed().Seconds(), "lines/s")
			})
		}
	}
}

// BenchmarkSend sends one encoded 1 MiB frame over loopback UDP to a
// reader that discards it, without pacing.
func BenchmarkSend(b *testing.B) {
	for _, ps := range []int{1500, 8192} {
		b.Run("packet="+itoa(ps), func(b *testing.B) {
			o := DefaultOptions()
			o.Listen = "127.0.0.1:0"
			e, err := New(context.Background(), o)
			if err != nil {
				b.Fatal(err)
			}
			defer e.Close()
			sink, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				b.Fatal(err)
			}
			defer sink.Close()
			sink.SetReadBuffer(8 << 20)
			go func() {
				buf := make([]byte, 65536)
				for {
					if _, err := sink.Read(buf); err != nil {
						return
					}
				}
			}()
			s, d := e.cams[0].str, e.cams[0].dev
			d.put32(wire.RegSCPS0, uint32(ps))
			cfg := d.configLocked()
			cfg.dest = sink.LocalAddr().(*net.UDPAddr).AddrPort()
			cfg.lineRate = 1e12 // no pacing
			f := s.getFrame(cfg.height)
			f.lines = cfg.height
			f.encode(cfg, s.sw, 0)
			b.SetBytes(int64(len(f.payload)))
			b.ReportAllocs()
			for b.Loop() {
				s.send(f, cfg)
				s.mu.Lock()
				s.ring = s.ring[:0] // keep f out of the pool
				s.mu.Unlock()
			}
			b.ReportMetric(float64(f.packets())*float64(b.N)/b.Elapsed().Seconds(), "packets/s")
		})
	}
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

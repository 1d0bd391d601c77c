//go:build linux

package gige

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/webinspect/webinspect/acquisition"
	"github.com/webinspect/webinspect/acquisition/gige/wire"
)

// cpuTime is the process's user+system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// sendFrames sends the block in pkts again and again with increasing block
// IDs, at most 8 frames ahead of taken, until stop is closed or a write
// fails.
func sendFrames(out *net.UDPConn, pkts [][]byte, taken *atomic.Int64, stop chan struct{}) {
	id := uint64(1)
	for n := int64(0); ; n++ {
		for n-taken.Load() >= 8 {
			select {
			case <-stop:
				return
			default:
				time.Sleep(20 * time.Microsecond)
			}
		}
		for _, p := range pkts {
			p[2], p[3] = byte(id>>8), byte(id)
			if _, err := out.Write(p); err != nil {
				return
			}
		}
		id = wire.NextBlockID(id, false)
	}
}

// BenchmarkGVSPReceive measures the stream receiver on loopback: a sender
// goroutine sends line-scan frames (4096 px × 128 lines, Mono8) as fast as
// the receiver takes them (at most 8 frames ahead, so the kernel drops
// nothing), and the consumer takes each frame and releases it. One op is
// one frame; allocs/op are allocations per frame on both sides.
//
//	go test -run XXX -bench GVSPReceive -benchtime 3s ./acquisition/gige/
func BenchmarkGVSPReceive(b *testing.B) {
	for _, size := range []int{1500, 9000, 65000} { // 65000: loopback only (GigE jumbo frames stop at 9000)
		b.Run(fmt.Sprintf("packet=%d", size), func(b *testing.B) { benchReceive(b, size, false) })
	}
	b.Run("packet=9000/linestream", func(b *testing.B) { benchReceive(b, 9000, true) })
}

func benchReceive(b *testing.B, scps int, lines bool) {
	const w, h = 4096, 128
	d := newFakeDev(b)
	d.setReg(wire.RegSCPS0, uint32(scps))
	c, err := Dial(context.Background(), d.addr(), DefaultOptions())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	o := DefaultStreamOptions(w * h)
	o.Buffers = 16
	s, err := OpenStream(c, o)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	spec := imageSpec(1, w, h)
	pkts := d.packets(spec)
	out, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(s.LocalAddr()))
	if err != nil {
		b.Fatal(err)
	}
	defer out.Close()
	_ = out.SetWriteBuffer(8 << 20)
	var taken atomic.Int64
	stop := make(chan struct{})
	defer close(stop)
	go sendFrames(out, pkts, &taken, stop)
	ctx := context.Background()
	// Check the output once before timing.
	f, err := s.Next(ctx)
	if err != nil || !bytes.Equal(f.Data, spec.payload) {
		b.Fatalf("first frame: %v, %d bytes", err, len(f.Data))
	}
	s.Release(f)
	taken.Add(1)
	var ls *LineStream
	var blk *acquisition.Block
	if lines {
		ls, _ = NewLineStream(s, LineOptions{Camera: acquisition.CameraInfo{Width: w}, CountsPerLine: 1})
		blk = acquisition.NewBlock(h, w)
	}
	st0 := s.Stats()
	b.SetBytes(w * h)
	b.ReportAllocs()
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuTime()
	for range b.N {
		if lines {
			if err := ls.ReadBlock(ctx, blk); err != nil || blk.Lines != h {
				b.Fatal(err)
			}
		} else {
			f, err := s.Next(ctx)
			if err != nil {
				b.Fatal(err)
			}
			s.Release(f)
		}
		taken.Add(1)
	}
	el, cpu := time.Since(start), cpuTime()-cpu0
	b.StopTimer()
	st := s.Stats()
	b.ReportMetric(float64(b.N)*w*h/el.Seconds(), "px/s")
	// Pixels per CPU-second of the whole process (sender, kernel time in
	// both, receiver): what 2 idle cores would sustain is twice this.
	b.ReportMetric(float64(b.N)*w*h/cpu.Seconds(), "px/cpu-s")
	b.ReportMetric(float64(st.LostFrames-st0.LostFrames), "lost")
	b.ReportMetric(float64(st.Packets-st0.Packets)/float64(b.N), "packets/frame")
}

// BenchmarkReassembly measures the receiver's own work per frame with no
// socket in the way: prebuilt packets of a 4096 × 128 Mono8 frame are fed
// to the reassembly state and the frame is taken and released. It bounds
// what the user-space side costs; BenchmarkGVSPReceive adds the kernel.
func BenchmarkReassembly(b *testing.B) {
	for _, size := range []int{1500, 9000} {
		b.Run(fmt.Sprintf("packet=%d", size), func(b *testing.B) {
			const w, h = 4096, 128
			dev := &fakeDev{t: b, mem: make([]byte, fakeMemSize)}
			dev.setReg(wire.RegSCPS0, uint32(size))
			o := DefaultStreamOptions(w * h)
			o.NoResend = true
			s := &Stream{opts: o, pps: wire.PayloadPerPacket(size, false),
				free: make(chan *Frame, o.Buffers), full: make(chan *Frame, o.Buffers)}
			s.allocate()
			s.rx.init(s)
			pkts := dev.packets(imageSpec(1, w, h))
			now := time.Now()
			id := uint64(1)
			b.SetBytes(w * h)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				for _, p := range pkts {
					p[2], p[3] = byte(id>>8), byte(id)
					s.rx.packet(p, now)
				}
				f := <-s.full
				f.released.Store(false)
				s.Release(f)
				id = wire.NextBlockID(id, false)
			}
			b.ReportMetric(float64(b.N)*w*h/b.Elapsed().Seconds(), "px/s")
		})
	}
}

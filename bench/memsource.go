// Package bench holds the engine's throughput benchmarks and the sources
// they run on. Results, with the commands that produced them, are kept in
// bench/RESULTS.md.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/webinspect/webinspect/acquisition"
)

// MemorySource replays blocks captured from another source from memory,
// over and over, with encoder counts shifted so that the web keeps moving
// forward. Benchmarks use it to measure the engine rather than the
// simulator. It is not live: the engine reads it as fast as it inspects.
type MemorySource struct {
	info   acquisition.Info
	blocks [][]*acquisition.Block // per camera
	period int64                  // encoder counts covered by one pass over the captured blocks
	perCam int                    // blocks each stream delivers
}

// Capture reads blocksPerCamera blocks from every stream of src.
func Capture(ctx context.Context, src acquisition.Source, blocksPerCamera int) (*MemorySource, error) {
	info := src.Info()
	m := &MemorySource{info: info, perCam: blocksPerCamera}
	for i, s := range src.Streams() {
		var bs []*acquisition.Block
		for len(bs) < blocksPerCamera {
			b := acquisition.NewBlock(info.LinesPerBlock, s.Camera().Width)
			if err := s.ReadBlock(ctx, b); err != nil {
				if errors.Is(err, io.EOF) {
					break
				}
				return nil, fmt.Errorf("capture camera %d: %w", i, err)
			}
			bs = append(bs, b)
		}
		if len(bs) == 0 {
			return nil, fmt.Errorf("capture camera %d: source delivered no blocks", i)
		}
		m.blocks = append(m.blocks, bs)
	}
	first := m.blocks[0][0]
	last := m.blocks[0][len(m.blocks[0])-1]
	m.period = last.Counts[last.Lines-1] - first.Counts[0] + int64(info.CountsPerLine)
	m.info.Live = false
	return m, nil
}

// WithBlocks returns a source over the same captured data that delivers n
// blocks per camera.
func (m *MemorySource) WithBlocks(n int) *MemorySource {
	c := *m
	c.perCam = n
	return &c
}

// Pixels is the number of pixels one full read of every stream delivers.
func (m *MemorySource) Pixels() int64 {
	var px int64
	for _, bs := range m.blocks {
		px += int64(m.perCam) * int64(bs[0].Lines) * int64(bs[0].Width)
	}
	return px
}

// Lines is the number of lines one stream delivers.
func (m *MemorySource) Lines() int64 { return int64(m.perCam) * int64(m.blocks[0][0].Lines) }

func (m *MemorySource) Info() acquisition.Info { return m.info }
func (m *MemorySource) Close() error           { return nil }

// Streams returns fresh streams positioned at the start.
func (m *MemorySource) Streams() []acquisition.Stream {
	var out []acquisition.Stream
	for i := range m.blocks {
		out = append(out, &memStream{m: m, cam: i})
	}
	return out
}

type memStream struct {
	m   *MemorySource
	cam int
	n   int
}

func (s *memStream) Camera() acquisition.CameraInfo { return s.m.info.Cameras[s.cam] }
func (s *memStream) Close() error                   { return nil }

func (s *memStream) ReadBlock(ctx context.Context, dst *acquisition.Block) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.n >= s.m.perCam {
		return io.EOF
	}
	bs := s.m.blocks[s.cam]
	src := bs[s.n%len(bs)]
	shift := int64(s.n/len(bs)) * s.m.period
	if dst.Cap() < src.Lines || dst.Stride < src.Width {
		return acquisition.ErrBlockTooSmall
	}
	dst.Camera, dst.Lines, dst.Width, dst.Time = src.Camera, src.Lines, src.Width, src.Time
	dst.FirstLine = int64(s.n) * int64(src.Lines)
	for i := 0; i < src.Lines; i++ {
		copy(dst.Pix[i*dst.Stride:i*dst.Stride+src.Width], src.Line(i))
		dst.Counts[i] = src.Counts[i] + shift
	}
	s.n++
	return nil
}

package engine

import (
	"context"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/webinspect/webinspect/acquisition"
	"github.com/webinspect/webinspect/acquisition/sim"
	"github.com/webinspect/webinspect/rollmap"
)

// lossySource loses every nth block of each camera the way a camera loses
// a frame: the block never arrives, and the next block says so in Lost.
type lossySource struct {
	acquisition.Source
	n    int
	lost []int64 // lines lost per camera (each stream writes its own)
}

type lossyStream struct {
	acquisition.Stream
	src   *lossySource
	cam   int
	k     int64
	count int
}

func (l *lossySource) Streams() []acquisition.Stream {
	var out []acquisition.Stream
	l.lost = make([]int64, len(l.Source.Streams()))
	for i, s := range l.Source.Streams() {
		out = append(out, &lossyStream{Stream: s, src: l, cam: i, k: int64(l.Info().CountsPerLine)})
	}
	return out
}

func (s *lossyStream) ReadBlock(ctx context.Context, dst *acquisition.Block) error {
	var lost acquisition.LostLines
	for {
		if err := s.Stream.ReadBlock(ctx, dst); err != nil {
			return err
		}
		s.count++
		if s.count%s.src.n != 0 {
			break
		}
		// This frame is lost: remember its lines for the next block.
		if lost.Empty() {
			lost = acquisition.LostLines{FirstLine: dst.FirstLine, FirstCount: dst.Counts[0], Reason: string(rollmap.ReasonFrameLost)}
		}
		lost.Lines = dst.FirstLine + int64(dst.Lines) - lost.FirstLine
		lost.LastCount = dst.Counts[dst.Lines-1]
		s.src.lost[s.cam] += int64(dst.Lines)
	}
	dst.Lost = lost
	return nil
}

// TestCameraLostFramesBecomeUninspected: lines a camera reports lost
// (Block.Lost) are on the roll map as uninspected with reason
// camera-frame-lost, exactly as many lines as were lost, at the MD the lost
// frames covered; nothing else is lost or found there.
func TestCameraLostFramesBecomeUninspected(t *testing.T) {
	cfg := testSimConfig("fabric", 11)
	cfg.LengthM = 12
	s, err := sim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	src := &lossySource{Source: s, n: 7}
	recipe, _ := DefaultRecipe("fabric")
	roll := &memRoll{}
	e, err := New(Options{Recipe: recipe, Source: src, Roll: roll, Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := e.Run(ctx); err != nil {
		t.Fatal(err)
	}
	got := map[int]int64{}
	lineM := cfg.LineMM / 1000
	for _, u := range roll.unins {
		if u.Reason != rollmap.ReasonFrameLost {
			if u.Reason != rollmap.ReasonDropped {
				t.Errorf("unexpected uninspected range %+v", u)
			}
			continue
		}
		got[u.Camera] += u.Lines
		if want := float64(u.Lines) * lineM; u.MDEndM-u.MDStartM < want-1e-9 {
			t.Errorf("range %+v covers %.4f m for %d lines (%.4f m)", u, u.MDEndM-u.MDStartM, u.Lines, want)
		}
	}
	if len(src.lost) == 0 || src.lost[0] == 0 {
		t.Fatal("no frame was lost: the test proves nothing")
	}
	for cam, n := range src.lost {
		if got[cam] != n {
			t.Errorf("camera %d lost %d lines, the roll map has %d as camera-frame-lost", cam, n, got[cam])
		}
	}
	// A defect is never reported inside a lost range of every camera.
	for _, d := range roll.defects {
		for _, u := range roll.unins {
			if u.Reason == rollmap.ReasonFrameLost && d.MDStartM > u.MDStartM+lineM && d.MDEndM < u.MDEndM-lineM &&
				d.CDStartMM >= u.CDStartMM && d.CDEndMM <= u.CDEndMM {
				t.Errorf("defect %d at %.3f-%.3f m inside lost range %+v", d.ID, d.MDStartM, d.MDEndM, u)
			}
		}
	}
}

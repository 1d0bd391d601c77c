package engine

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/webinspect/webinspect/acquisition/sim"
	"github.com/webinspect/webinspect/rollmap"
)

// TestStopInspectsEverythingAlreadyRead cancels a live run midway: every
// line read from the cameras must be inspected or recorded as uninspected,
// and the roll length must cover what was read.
func TestStopInspectsEverythingAlreadyRead(t *testing.T) {
	t.Parallel() // a live run: mostly waiting for the simulated line
	cfg := testSimConfig("fabric", 4)
	cfg.LengthM = 200
	cfg.SpeedMPerMin = 300
	cfg.Realtime = true
	s, err := sim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	src := &blockLog{Source: s, blocks: map[int][][2]int64{}}
	recipe, _ := DefaultRecipe("fabric")
	roll := &memRoll{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	deadline := time.Now().Add(5 * time.Minute)
	var e *Engine
	dropped := func() bool { return e.Status().LinesDropped > 0 }
	// The detectors hold their first block until the rings have dropped
	// lines (on a machine too busy for the simulator to outrun 25 blocks/s,
	// the rings would never fill), then take 25 blocks/s against the
	// cameras' 78, so the rings keep dropping up to the stop.
	before := func(int) {
		for !dropped() && time.Now().Before(deadline) && ctx.Err() == nil {
			time.Sleep(5 * time.Millisecond)
		}
		time.Sleep(40 * time.Millisecond)
	}
	e, err = New(Options{Recipe: recipe, Source: src, Roll: roll, Logger: zerolog.Nop(), BeforeBlock: before})
	if err != nil {
		t.Fatal(err)
	}
	// Stop once the rings have dropped lines, while they still drop.
	go func() {
		for !dropped() && time.Now().Before(deadline) && ctx.Err() == nil {
			time.Sleep(20 * time.Millisecond)
		}
		time.Sleep(200 * time.Millisecond) // more drops, right up to the stop
		cancel()
	}()
	if err := e.Run(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run after cancel: %v", err)
	}
	// The highest count any camera delivered must be inside the roll.
	var last int64
	for _, bs := range src.blocks {
		for _, b := range bs {
			last = max(last, b[1])
		}
	}
	mpc := cfg.LineMM / float64(cfg.CountsPerLine)
	if want := float64(last+int64(cfg.CountsPerLine)) * mpc / 1000; math.Abs(roll.lengthM-want) > 1e-9 {
		t.Errorf("roll length %.4f m, but the cameras delivered lines up to %.4f m", roll.lengthM, want)
	}
	// Every dropped line, including drops just before the stop, is on the
	// roll map as uninspected.
	var unLines int64
	for _, u := range roll.unins {
		if u.Reason == rollmap.ReasonDropped {
			unLines += u.Lines
		}
	}
	st := e.Status()
	if st.LinesDropped == 0 {
		t.Fatal("nothing dropped: the test proves nothing")
	}
	if unLines != st.LinesDropped {
		t.Errorf("%d lines dropped but %d recorded as uninspected", st.LinesDropped, unLines)
	}
}

package engine

import (
	"context"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/webinspect/webinspect/internal/poll"
	"github.com/webinspect/webinspect/internal/syncbuf"
	"github.com/webinspect/webinspect/rollmap"
)

func (m *memRoll) droppedLines() (lines int64, us []rollmap.Uninspected) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, u := range m.unins {
		if u.Reason == rollmap.ReasonDropped {
			lines += u.Lines
		}
	}
	return lines, append(us, m.unins...)
}

// cam0Dropped is how many of camera 0's dropped lines m has recorded.
func cam0Dropped(m *memRoll) (lines int64) {
	_, us := m.droppedLines()
	for _, u := range us {
		if u.Reason == rollmap.ReasonDropped && u.Camera == 0 {
			lines += u.Lines
		}
	}
	return lines
}

// Drops are logged when they happen, not when the pipeline has caught up
// and records them; the status gives the current roll's drops beside the
// engine's since it started, and the roll's uninspected metres as the
// roll map counts them (issue 15 #4).
func TestDropsLoggedAtOnceAndCountedPerRoll(t *testing.T) {
	_, s := liveFilm(t, 10)
	recipe, _ := DefaultRecipe("film")
	recipe.Pipeline.RingBlocks = 2
	logs := &syncbuf.Buffer{}
	first := &memRoll{}
	var second *memRoll
	gate := make(chan struct{})
	var once sync.Once
	var mu sync.Mutex
	seen := 0
	var atStall atomic.Int64
	e, err := New(Options{Recipe: recipe, Source: s, Roll: first, Logger: zerolog.New(logs),
		NewRoll: func(id string) (RollWriter, error) { second = &memRoll{id: id}; return second, nil },
		BeforeBlock: func(cam int) {
			if cam != 0 {
				return
			}
			mu.Lock()
			seen++
			n := seen
			mu.Unlock()
			if n == 10 {
				// What camera 0's detector recorded before it stalls (on a
				// slow machine the 2-block ring may already have dropped).
				atStall.Store(cam0Dropped(first))
				<-gate // camera 0's detector stalls until the drops are logged
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	runErr := make(chan error, 1)
	go func() { runErr <- e.Run(context.Background()) }()
	const dropMsg = "blocks dropped at the ring"
	logged := poll.Wait(time.Minute, func() bool { return strings.Contains(logs.String(), dropMsg) })
	// Camera 0's drops, which only its stalled detector can record (camera
	// 1's detector runs on and, on a busy machine, may drop and record
	// its own).
	recorded := cam0Dropped(first) - atStall.Load()
	once.Do(func() { close(gate) })
	if logged != nil {
		t.Fatalf("no %q log while the detector was stalled and the ring dropping: the drop is logged only once recorded", dropMsg)
	}
	if recorded != 0 {
		t.Errorf("%d of camera 0's dropped lines recorded while its detector was stalled, want none yet (the log must not wait for them)", recorded)
	}
	// A roll change once the drops are recorded: the roll's figures start
	// again, the engine's go on.
	if err := poll.Wait(5*time.Minute, func() bool { return e.Status().RollBlocksDropped > 0 }); err != nil {
		t.Fatalf("the drops never reached the roll's status: %+v", e.Status())
	}
	if _, err := e.ChangeRoll(context.Background(), "R2"); err != nil {
		t.Fatal(err)
	}
	if err := <-runErr; err != nil {
		t.Fatal(err)
	}
	st := e.Status()
	l1, _ := first.droppedLines()
	l2, us2 := second.droppedLines()
	if st.LinesDropped != l1+l2 || st.BlocksDropped < st.RollBlocksDropped || l1 == 0 {
		t.Errorf("engine dropped %d lines (%d blocks); rolls hold %d + %d dropped lines; roll blocks %d",
			st.LinesDropped, st.BlocksDropped, l1, l2, st.RollBlocksDropped)
	}
	if st.RollLinesDropped != l2 {
		t.Errorf("status roll_lines_dropped %d, the current roll holds %d", st.RollLinesDropped, l2)
	}
	if want := rollmap.UninspectedMetres(us2); math.Abs(st.UninspectedM-want) > 1e-9 {
		t.Errorf("status uninspected_m %.6f, the roll map would say %.6f (union over cameras)", st.UninspectedM, want)
	}
	t.Logf("engine: %d blocks, %d lines dropped; roll 1: %d lines; roll 2: %d lines, %d blocks", st.BlocksDropped, st.LinesDropped, l1, l2, st.RollBlocksDropped)
}

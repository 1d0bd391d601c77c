package engine

import (
	"sync"

	"github.com/webinspect/webinspect/engine/status"
	"github.com/webinspect/webinspect/rollmap"
)

// statusBoard is the engine's status and current roll, written by the
// pipeline's goroutines and read by Status and Roll from any goroutine.
type statusBoard struct {
	mu      sync.Mutex
	s       status.Status
	current RollWriter // the roll being written
}

// snapshot returns a copy of the status that shares no map with it.
func (b *statusBoard) snapshot() status.Status {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.s
	s.DefectsByClass = make(map[string]int64, len(b.s.DefectsByClass))
	for k, v := range b.s.DefectsByClass {
		s.DefectsByClass[k] = v
	}
	s.Marks = make(map[string]int64, len(b.s.Marks))
	for k, v := range b.s.Marks {
		s.Marks[k] = v
	}
	return s
}

func (b *statusBoard) roll() RollWriter {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.current
}

func (b *statusBoard) setState(state, msg string) {
	b.mu.Lock()
	b.s.State, b.s.Error = state, msg
	b.mu.Unlock()
}

func (b *statusBoard) setError(msg string) {
	b.mu.Lock()
	b.s.Error = msg
	b.mu.Unlock()
}

// markEvent counts one mark status change.
func (b *statusBoard) markEvent(st string) {
	b.mu.Lock()
	b.s.Marks[st]++
	b.mu.Unlock()
}

// rollStarted makes w the current roll, with no defects yet. A pending
// roll (pending.go) has no ID to show until it is opened.
func (b *statusBoard) rollStarted(w RollWriter) {
	id := w.ID()
	if p, ok := w.(*pendingRoll); ok && !p.opened() {
		id = ""
	}
	b.mu.Lock()
	b.current = w
	b.s.RollID = id
	b.s.Defects = 0
	clear(b.s.DefectsByClass)
	b.mu.Unlock()
}

// countDefects counts the defects of ds that are on the current roll.
func (b *statusBoard) countDefects(ds []rollmap.Defect, current string) {
	b.mu.Lock()
	for _, d := range ds {
		if d.RollID == current {
			b.s.Defects++
			b.s.DefectsByClass[d.Class]++
		}
	}
	b.mu.Unlock()
}

// rollDrops sets the current roll's dropped blocks and lines.
func (b *statusBoard) rollDrops(blocks, lines int64) {
	b.mu.Lock()
	b.s.RollBlocksDropped, b.s.RollLinesDropped = blocks, lines
	b.mu.Unlock()
}

// progress sets the current roll's position and uninspected length, and
// the line speed when speed is set.
func (b *statusBoard) progress(mdM, uninspectedM float64, speed *float64) {
	b.mu.Lock()
	b.s.MDM, b.s.UninspectedM = mdM, uninspectedM
	if speed != nil {
		b.s.SpeedMPerMin = *speed
	}
	b.mu.Unlock()
}

package rollmap

import (
	"sync"
	"time"
)

// # Persistence health
//
// A roll's rows are durable once a Flush (the writer's, the engine's or the
// background flusher's) has written and synced them. When a flush fails
// (a full disk, an I/O error) the rows stay in memory, pending, and every
// later flush tries again; the roll is "failing" from the first failure
// until a flush succeeds. A roll closed while failing lost the rows that
// were pending: that failure never clears for the life of the Store.
//
// The Store keeps this per roll so that the operator sees it at once
// (the API's /api/status persistence_error, the live view's banner) rather
// than in a log line after the shift.

// PersistenceError says that rows taken by the roll map are not on disk.
type PersistenceError struct {
	// Roll is the roll whose writes fail (the oldest failure when several do).
	Roll string `json:"roll"`
	// Message is the last failure's error.
	Message string `json:"message"`
	// Since is when the first failure of this stretch happened: nothing
	// taken since then is known to be durable.
	Since time.Time `json:"since"`
	// Last is when the last failure happened.
	Last time.Time `json:"last"`
	// Failures counts the failed flushes of this stretch.
	Failures int64 `json:"failures"`
	// Lost is true when the roll was closed while failing: the rows
	// pending then are not on disk and never will be.
	Lost bool `json:"lost"`
	// Rolls is how many rolls are failing or lost (usually 1).
	Rolls int `json:"rolls"`
}

// persistHealth tracks the persistence failures of a store's rolls.
type persistHealth struct {
	mu    sync.Mutex
	rolls map[string]*PersistenceError
}

// failed records a failed flush (lost: a close that left rows off disk).
func (h *persistHealth) failed(roll string, err error, lost bool) {
	now := time.Now().UTC()
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.rolls == nil {
		h.rolls = map[string]*PersistenceError{}
	}
	p := h.rolls[roll]
	if p == nil {
		p = &PersistenceError{Roll: roll, Since: now}
		h.rolls[roll] = p
	}
	p.Message, p.Last = err.Error(), now
	p.Failures++
	p.Lost = p.Lost || lost
}

// ok records a flush that made everything the roll took durable; it ends
// the roll's failing stretch unless rows were already lost.
func (h *persistHealth) ok(roll string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if p := h.rolls[roll]; p != nil && !p.Lost {
		delete(h.rolls, roll)
	}
}

// worst returns the oldest failure (lost ones first), or nil.
func (h *persistHealth) worst() *PersistenceError {
	h.mu.Lock()
	defer h.mu.Unlock()
	var w *PersistenceError
	for _, p := range h.rolls {
		if w == nil || p.Lost && !w.Lost || p.Lost == w.Lost && p.Since.Before(w.Since) {
			w = p
		}
	}
	if w == nil {
		return nil
	}
	c := *w
	c.Rolls = len(h.rolls)
	return &c
}

// PersistenceError returns nil when every roll this Store writes has its
// rows on disk as of its last flush, else the failure the operator must
// see: the oldest roll whose flushes fail (or that was closed with rows
// not on disk). It is safe to call from any goroutine.
func (s *Store) PersistenceError() *PersistenceError { return s.health.worst() }

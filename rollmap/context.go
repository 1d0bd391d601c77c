package rollmap

import (
	"errors"
	"fmt"
	"time"

	"github.com/webinspect/webinspect/internal/textcheck"
)

// RollContext is the production context of a roll: what was made, from
// what, by whom and for which order. Every field is free text of at most
// textcheck.MaxName (64) bytes without control or bidirectional
// formatting characters; "" means not given. It is kept in roll.json
// (RollMeta.Context) and in the key-value metadata of the roll's Parquet
// files, and the plant dataset carries it on every row.
type RollContext struct {
	Product  string `json:"product,omitempty"`
	Lot      string `json:"lot,omitempty"` // lot or batch of the material
	Supplier string `json:"supplier,omitempty"`
	Shift    string `json:"shift,omitempty"`
	Operator string `json:"operator,omitempty"`
	Order    string `json:"order,omitempty"` // production or customer order
}

// ContextChange is one entry of a roll's context history: the whole
// context after the change, who made it (the by field of the API call, or
// the engine) and when (UTC).
type ContextChange struct {
	Time    time.Time   `json:"time"`
	By      string      `json:"by,omitempty"`
	Context RollContext `json:"context"`
}

// MaxContextHistory bounds a roll's context history: roll.json is
// rewritten on every flush, so it must stay small. When full, the oldest
// change after the first is dropped (the first, what the roll started
// with, and the newest are always kept).
const MaxContextHistory = 64

// IsZero reports whether no field is set.
func (c RollContext) IsZero() bool { return c == RollContext{} }

// Check returns an error wrapping ErrInvalid naming the first field that
// breaks the text rules (internal/textcheck).
func (c RollContext) Check() error {
	for _, f := range [...]struct{ name, v string }{
		{"product", c.Product}, {"lot", c.Lot}, {"supplier", c.Supplier},
		{"shift", c.Shift}, {"operator", c.Operator}, {"order", c.Order},
	} {
		if err := textcheck.Check(f.name, f.v, textcheck.MaxName); err != nil {
			return fmt.Errorf("%w: %w", ErrInvalid, err)
		}
	}
	return nil
}

// withChange returns meta's context and history after setting c by who at t.
func withChange(m RollMeta, c RollContext, by string, t time.Time) RollMeta {
	m.Context = c
	h := append([]ContextChange(nil), m.ContextHistory...)
	h = append(h, ContextChange{Time: t.UTC().Truncate(time.Microsecond), By: by, Context: c})
	if len(h) > MaxContextHistory {
		h = append(h[:1], h[len(h)-MaxContextHistory+1:]...)
	}
	m.ContextHistory = h
	return m
}

func checkContextChange(c RollContext, by string) error {
	if err := c.Check(); err != nil {
		return err
	}
	if err := textcheck.Check("by", by, textcheck.MaxName); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return nil
}

// SetContext replaces the production context of the open roll, recording
// the change (who, when) in its history, and makes it durable: roll.json
// is rewritten and synced before SetContext returns. It returns an error
// wrapping ErrClosed once the roll is closed (Store.SetContext then
// writes the closed roll's roll.json).
func (r *Roll) SetContext(c RollContext, by string, t time.Time) error {
	if err := checkContextChange(c, by); err != nil {
		return fmt.Errorf("rollmap: roll %s: %w", r.id, err)
	}
	r.wmu.Lock() // after a Close in progress: then done is set
	defer r.wmu.Unlock()
	if r.done {
		return fmt.Errorf("rollmap: roll %s: set context: %w", r.id, ErrClosed)
	}
	r.mu.Lock()
	r.meta = withChange(r.meta, c, by, t)
	r.mu.Unlock()
	if err := r.flushLocked(); err != nil {
		return fmt.Errorf("rollmap: roll %s: set context: %w", r.id, err)
	}
	return nil
}

// Context returns the roll's production context and its history.
func (r *Roll) Context() (RollContext, []ContextChange) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.meta.Context, append([]ContextChange(nil), r.meta.ContextHistory...)
}

// SetContext sets the production context of roll id, open or closed (see
// Roll.SetContext), recording who set it and when. A closed roll's
// roll.json is replaced atomically; the store takes its lock (ErrLocked
// when another process writes the store). It returns an error wrapping
// ErrNotFound for an unknown roll and ErrInvalid for a field that breaks
// the text rules. The context is also in the roll's Parquet files written
// when it closes; a change after that is in roll.json only (export
// --format parquet reads roll.json).
func (s *Store) SetContext(id string, c RollContext, by string, t time.Time) error {
	if err := checkContextChange(c, by); err != nil {
		return fmt.Errorf("rollmap: roll %s: %w", id, err)
	}
	r, dir, err := s.lookup(id)
	if err != nil {
		return err
	}
	if r != nil {
		err := r.SetContext(c, by, t)
		if !errors.Is(err, ErrClosed) {
			return err
		}
		// Closed meanwhile: its roll.json is final, change it below.
	}
	s.mu.Lock()
	err = s.lockLocked()
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("rollmap: roll %s: set context: %w", id, err)
	}
	s.ctxMu.Lock()
	defer s.ctxMu.Unlock()
	m, err := readMetaFile(dir)
	if err != nil {
		return err
	}
	s.mu.Lock()
	open := s.open[id]
	s.mu.Unlock()
	if open != nil { // resumed meanwhile
		return open.SetContext(c, by, t)
	}
	m.RollMeta = withChange(m.RollMeta, c, by, t)
	if err := writeMetaFile(dir, &m); err != nil {
		return fmt.Errorf("rollmap: roll %s: set context: %w", id, err)
	}
	return nil
}

package api

import (
	"net/http"
	"time"

	"github.com/webinspect/webinspect/rollmap"
)

// ContextStore is implemented by stores that keep a roll's production
// context (product, lot, supplier, shift, operator, order) with its
// history; *rollmap.Store implements it.
type ContextStore interface {
	SetContext(id string, c rollmap.RollContext, by string, t time.Time) error
}

var _ ContextStore = (*rollmap.Store)(nil)

// contextBody is the production context as the API takes it: at roll
// start (with "id") and on /api/rolls/{id}/context. A field left out
// (null) keeps its value on POST and is cleared on PUT; "" clears it.
// By names who makes the change; without it the operator given, else
// "api".
type contextBody struct {
	Product  *string `json:"product"`
	Lot      *string `json:"lot"`
	Supplier *string `json:"supplier"`
	Shift    *string `json:"shift"`
	Operator *string `json:"operator"`
	Order    *string `json:"order"`
	By       string  `json:"by"`
}

func (b *contextBody) given() bool {
	return b.Product != nil || b.Lot != nil || b.Supplier != nil || b.Shift != nil || b.Operator != nil || b.Order != nil
}

// apply returns c with the fields given in b.
func (b *contextBody) apply(c rollmap.RollContext) rollmap.RollContext {
	for _, f := range [...]struct {
		v   *string
		dst *string
	}{{b.Product, &c.Product}, {b.Lot, &c.Lot}, {b.Supplier, &c.Supplier},
		{b.Shift, &c.Shift}, {b.Operator, &c.Operator}, {b.Order, &c.Order}} {
		if f.v != nil {
			*f.dst = *f.v
		}
	}
	return c
}

func (b *contextBody) by(c rollmap.RollContext) string {
	switch {
	case b.By != "":
		return b.By
	case c.Operator != "":
		return c.Operator
	}
	return "api"
}

// contextReply answers a context change: the roll, its context now and
// every change so far.
type contextReply struct {
	RollID  string                  `json:"roll_id"`
	Context rollmap.RollContext     `json:"context"`
	History []rollmap.ContextChange `json:"context_history"`
}

func (s *Server) contextStore(w http.ResponseWriter) (ContextStore, bool) {
	cs, ok := s.opts.Store.(ContextStore)
	if !ok {
		s.writeError(w, http.StatusNotImplemented, "this roll store cannot record a production context")
	}
	return cs, ok
}

// handleContext serves PUT (replace) and POST (change the fields given)
// /api/rolls/{id}/context.
func (s *Server) handleContext(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var b contextBody
	if !s.decodeBody(w, r, &b, false) {
		return
	}
	cs, ok := s.contextStore(w)
	if !ok {
		return
	}
	info, err := s.opts.Store.Roll(id)
	if err != nil {
		s.storeError(w, r, id, err)
		return
	}
	c := info.Context
	if r.Method == http.MethodPut {
		c = rollmap.RollContext{}
	}
	c = b.apply(c)
	if err := c.Check(); err != nil {
		s.writeError(w, http.StatusBadRequest, publicError(err))
		return
	}
	if err := cs.SetContext(id, c, b.by(c), time.Now()); err != nil {
		s.storeError(w, r, id, err)
		return
	}
	if info, err = s.opts.Store.Roll(id); err != nil {
		s.storeError(w, r, id, err)
		return
	}
	s.log.Info().Str("roll", id).Str("by", b.by(c)).Msg("production context set")
	s.writeJSON(w, http.StatusOK, contextReply{RollID: id, Context: info.Context, History: info.ContextHistory})
}

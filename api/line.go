package api

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/webinspect/webinspect/rollmap"
)

// Line is the production line as the API drives it (Options.Line): the
// engine's roll handling. Each method runs synchronously and returns once
// the roll map reflects the change. The server does not publish "roll"
// events for these calls: the implementation does, like for roll changes
// made by the engine itself, so every roll change gives exactly one event.
type Line interface {
	// StartRoll ends the current roll, if any, and starts a new one with
	// this ID ("" for a generated one); it returns the new roll's ID.
	StartRoll(id string) (string, error)
	// EndRoll ends the current roll and returns its ID and length.
	EndRoll() (rollID string, lengthM float64, err error)
	// Splice records a splice (a join in the web) at the current position
	// of the current roll, with a note, and returns the roll and position.
	Splice(note string) (rollID string, mdM float64, err error)
}

// Errors a Line implementation returns for the API to answer 409 or 400.
var (
	// ErrNoRoll is returned by Line.EndRoll and Line.Splice when no roll is
	// being inspected.
	ErrNoRoll = errors.New("no roll is being inspected")
)

// maxSpliceNote bounds a splice note, in bytes.
const maxSpliceNote = 256

// rollStartBody is the body of /api/line/roll/start: the new roll's ID
// (optional) and its production context (contextBody's fields).
type rollStartBody struct {
	ID string `json:"id"`
	contextBody
}

type rollStartReply struct {
	RollID  string               `json:"roll_id"`
	Context *rollmap.RollContext `json:"context,omitempty"`
}

type rollEndReply struct {
	RollID  string  `json:"roll_id"`
	LengthM float64 `json:"length_m"`
}

type spliceBody struct {
	Note string `json:"note"`
}

type spliceReply struct {
	RollID string  `json:"roll_id"`
	MDM    float64 `json:"md_m"`
}

// lineError answers a failed Line call: 409 when no roll is being
// inspected or the roll exists, 400 for a bad ID or argument, 500 else.
func (s *Server) lineError(w http.ResponseWriter, what string, err error) {
	switch {
	case errors.Is(err, ErrNoRoll):
		s.writeError(w, http.StatusConflict, what+": "+err.Error())
	case errors.Is(err, rollmap.ErrRollExists):
		s.writeError(w, http.StatusConflict, what+": "+err.Error())
	case errors.Is(err, rollmap.ErrBadRollID), errors.Is(err, rollmap.ErrInvalid):
		s.writeError(w, http.StatusBadRequest, what+": "+err.Error())
	default:
		s.log.Error().Err(err).Str("action", what).Msg("line")
		s.writeError(w, http.StatusInternalServerError, what+": "+err.Error())
	}
}

func (s *Server) noLine(w http.ResponseWriter) bool {
	if s.opts.Line == nil {
		s.writeError(w, http.StatusServiceUnavailable, "no line attached: this server does not drive a line")
		return true
	}
	return false
}

func (s *Server) handleRollStart(w http.ResponseWriter, r *http.Request) {
	var b rollStartBody
	if !s.decodeBody(w, r, &b, true) {
		return
	}
	if b.ID != "" {
		if err := rollmap.ValidRollID(b.ID); err != nil {
			s.writeError(w, http.StatusBadRequest, "id: "+err.Error())
			return
		}
	}
	var (
		c  rollmap.RollContext
		cs ContextStore
	)
	if b.given() {
		c = b.apply(c)
		if err := c.Check(); err != nil {
			s.writeError(w, http.StatusBadRequest, publicError(err))
			return
		}
		var ok bool
		if cs, ok = s.contextStore(w); !ok {
			return
		}
	}
	if s.noLine(w) {
		return
	}
	id, err := s.opts.Line.StartRoll(b.ID)
	if err != nil {
		s.lineError(w, "start roll", err)
		return
	}
	reply := rollStartReply{RollID: id}
	if cs != nil {
		// The roll is started: a failure here is the store's (disk), and
		// the answer says the roll started without its context.
		if err := cs.SetContext(id, c, b.by(c), time.Now()); err != nil {
			s.log.Error().Err(err).Str("roll", id).Msg("roll started; its production context not recorded")
			s.writeError(w, http.StatusInternalServerError, fmt.Sprintf("roll %s started, but its production context was not recorded: %s", id, publicError(err)))
			return
		}
		reply.Context = &c
	}
	s.writeJSON(w, http.StatusOK, reply)
}

func (s *Server) handleRollEnd(w http.ResponseWriter, r *http.Request) {
	var b struct{}
	if !s.decodeBody(w, r, &b, true) {
		return
	}
	if s.noLine(w) {
		return
	}
	id, length, err := s.opts.Line.EndRoll()
	if err != nil {
		s.lineError(w, "end roll", err)
		return
	}
	s.writeJSON(w, http.StatusOK, rollEndReply{RollID: id, LengthM: length})
}

func (s *Server) handleSplice(w http.ResponseWriter, r *http.Request) {
	var b spliceBody
	if !s.decodeBody(w, r, &b, true) {
		return
	}
	if len(b.Note) > maxSpliceNote {
		s.writeError(w, http.StatusBadRequest, "note: at most 256 bytes")
		return
	}
	if s.noLine(w) {
		return
	}
	id, md, err := s.opts.Line.Splice(b.Note)
	if err != nil {
		s.lineError(w, "splice", err)
		return
	}
	s.writeJSON(w, http.StatusOK, spliceReply{RollID: id, MDM: md})
}

package api

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/webinspect/webinspect/rollmap"
)

// fakeLine is a Line with one roll at a time. It fails the test on misuse:
// a start with an ID the API should have refused, or calls after the test
// said none may come.
type fakeLine struct {
	t       *testing.T
	mu      sync.Mutex
	roll    string
	md      float64
	n       int
	splices []string
	frozen  bool // no call may reach the line
	err     error
}

func (f *fakeLine) call() error {
	if f.frozen {
		f.t.Error("a refused request reached the line")
	}
	return f.err
}

func (f *fakeLine) StartRoll(id string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call(); err != nil {
		return "", err
	}
	if id != "" && rollmap.ValidRollID(id) != nil {
		f.t.Errorf("StartRoll(%q): the API passed an invalid ID", id)
	}
	f.n++
	if id == "" {
		id = fmt.Sprintf("RGEN%d", f.n)
	}
	f.roll, f.md = id, 0
	return id, nil
}

func (f *fakeLine) EndRoll() (string, float64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call(); err != nil {
		return "", 0, err
	}
	if f.roll == "" {
		return "", 0, ErrNoRoll
	}
	id := f.roll
	f.roll = ""
	return id, 123.25, nil
}

func (f *fakeLine) Splice(note string) (string, float64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call(); err != nil {
		return "", 0, err
	}
	if f.roll == "" {
		return "", 0, ErrNoRoll
	}
	f.splices = append(f.splices, note)
	return f.roll, 42.5, nil
}

func TestLine(t *testing.T) {
	line := &fakeLine{t: t}
	s, _ := newTestServer(t, func(o *Options) { o.Line = line; o.Token = testToken })
	h := s.Handler()
	auth := []string{"Authorization", "Bearer " + testToken}

	var start rollStartReply
	sendJSON(t, h, "POST", "/api/line/roll/start", `{"id":"R-2026-11-27.a"}`, 200, &start, auth...)
	if start.RollID != "R-2026-11-27.a" {
		t.Errorf("start: %+v", start)
	}
	var sp spliceReply
	sendJSON(t, h, "POST", "/api/line/splice", `{"note":"tape splice, lot 7"}`, 200, &sp, auth...)
	if sp.RollID != "R-2026-11-27.a" || sp.MDM != 42.5 || line.splices[0] != "tape splice, lot 7" {
		t.Errorf("splice: %+v %q", sp, line.splices)
	}
	var end rollEndReply
	sendJSON(t, h, "POST", "/api/line/roll/end", "", 200, &end, auth...)
	if end.RollID != "R-2026-11-27.a" || end.LengthM != 123.25 {
		t.Errorf("end: %+v", end)
	}
	sendError(t, h, "POST", "/api/line/roll/end", "", 409, "no roll is being inspected", auth...)
	sendError(t, h, "POST", "/api/line/splice", `{}`, 409, "no roll is being inspected", auth...)
	// No body, or an empty object: a generated ID.
	sendJSON(t, h, "POST", "/api/line/roll/start", "", 200, &start, auth...)
	if !strings.HasPrefix(start.RollID, "RGEN") {
		t.Errorf("start without ID: %+v", start)
	}
	line.err = fmt.Errorf("engine: %w (open)", rollmap.ErrRollExists)
	sendError(t, h, "POST", "/api/line/roll/start", `{"id":"R1"}`, 409, "roll already exists", auth...)
	line.err = nil

	// Refused before the line is called.
	line.frozen = true
	sendError(t, h, "POST", "/api/line/roll/start", `{"id":"../etc"}`, 400, "id: ", auth...)
	sendError(t, h, "POST", "/api/line/roll/start", `{"id":"R1","speed":3}`, 400, `unknown field "speed"`, auth...)
	sendError(t, h, "POST", "/api/line/splice", `{"note":"`+strings.Repeat("n", 257)+`"}`, 400, "note: at most 256 bytes", auth...)
	sendError(t, h, "POST", "/api/line/roll/end", "", 401, "Authorization")
	sendError(t, h, "POST", "/api/line/roll/start", `{}`, 401, "Authorization")
	sendError(t, h, "GET", "/api/line/roll/start", "", 405, "method GET not allowed")

	s2, _ := newTestServer(t, nil)
	for _, p := range []string{"/api/line/roll/start", "/api/line/roll/end", "/api/line/splice"} {
		sendError(t, s2.Handler(), "POST", p, "", 503, "no line attached")
	}
}

package api

import (
	"strings"
	"testing"

	"github.com/webinspect/webinspect/rollmap"
)

// storeLine is a Line that starts its rolls in a real store.
type storeLine struct {
	fakeLine
	st *rollmap.Store
	r  *rollmap.Roll
}

func (l *storeLine) StartRoll(id string) (string, error) {
	if l.r != nil {
		l.r.Close()
	}
	r, err := l.st.StartRoll(rollmap.RollMeta{ID: id, WebWidthMM: 1000})
	if err != nil {
		return "", err
	}
	l.r = r
	return r.ID(), nil
}

// The production context is set at roll start and changed later (POST:
// the fields given; PUT: all of it), on an open or a closed roll, with
// who and when in its history; text breaking the caps is refused with
// the field named, before the line is touched.
func TestRollContextAPI(t *testing.T) {
	line := &storeLine{}
	s, st := newStoreServer(t, false, func(o *Options) { o.Token = testToken })
	line.st = st
	s.opts.Line = line
	h := s.Handler()
	auth := []string{"Authorization", "Bearer " + testToken}
	t.Cleanup(func() {
		if line.r != nil {
			line.r.Close()
		}
	})

	var start rollStartReply
	sendJSON(t, h, "POST", "/api/line/roll/start",
		`{"id":"C-1","product":"PET 23","lot":"L118","supplier":"Acme","shift":"B","operator":"jdoe","order":"PO-77"}`, 200, &start, auth...)
	want := rollmap.RollContext{Product: "PET 23", Lot: "L118", Supplier: "Acme", Shift: "B", Operator: "jdoe", Order: "PO-77"}
	if start.RollID != "C-1" || start.Context == nil || *start.Context != want {
		t.Fatalf("start: %+v", start)
	}
	var detail rollDetail
	sendJSON(t, h, "GET", "/api/rolls/C-1", "", 200, &detail)
	if detail.Context != want || len(detail.ContextHistory) != 1 || detail.ContextHistory[0].By != "jdoe" {
		t.Fatalf("roll after start: %+v %+v", detail.Context, detail.ContextHistory)
	}

	// Shift change: only the shift and operator move.
	var rep contextReply
	sendJSON(t, h, "POST", "/api/rolls/C-1/context", `{"shift":"C","operator":"asmith","by":"asmith"}`, 200, &rep, auth...)
	want.Shift, want.Operator = "C", "asmith"
	if rep.Context != want || len(rep.History) != 2 || rep.History[1].By != "asmith" || rep.History[1].Time.IsZero() {
		t.Fatalf("after POST: %+v", rep)
	}
	// The roll closes (a new one starts); the lot is corrected afterwards.
	start = rollStartReply{}
	sendJSON(t, h, "POST", "/api/line/roll/start", `{"id":"C-2"}`, 200, &start, auth...)
	if start.Context != nil {
		t.Errorf("start without context answered %+v", start.Context)
	}
	rep = contextReply{}
	sendJSON(t, h, "PUT", "/api/rolls/C-1/context", `{"product":"PET 23","lot":"L119","by":"qa"}`, 200, &rep, auth...)
	if (rep.Context != rollmap.RollContext{Product: "PET 23", Lot: "L119"}) || len(rep.History) != 3 {
		t.Fatalf("after PUT on the closed roll: %+v", rep)
	}
	detail = rollDetail{}
	sendJSON(t, h, "GET", "/api/rolls/C-1", "", 200, &detail)
	if detail.Open || detail.Context.Lot != "L119" {
		t.Fatalf("closed roll: open %v, %+v", detail.Open, detail.Context)
	}

	sendError(t, h, "POST", "/api/rolls/C-1/context", `{"lot":"`+strings.Repeat("x", 65)+`"}`, 400, "lot is 65 bytes", auth...)
	sendError(t, h, "POST", "/api/rolls/C-1/context", `{"supplier":"a\u202eb"}`, 400, "supplier", auth...)
	sendError(t, h, "POST", "/api/rolls/C-1/context", `{"by":"x\ny"}`, 400, "by", auth...)
	sendError(t, h, "POST", "/api/rolls/C-1/context", `{"colour":"red"}`, 400, `unknown field "colour"`, auth...)
	sendError(t, h, "POST", "/api/rolls/nope/context", `{"lot":"x"}`, 404, "not found", auth...)
	sendError(t, h, "POST", "/api/rolls/C-1/context", `{"lot":"x"}`, 401, "Authorization")
	line.r.Close()
	line.r = nil
	sendError(t, h, "POST", "/api/line/roll/start", `{"id":"C-3","operator":"\u0007"}`, 400, "operator", auth...)
	if _, err := st.Roll("C-3"); err == nil {
		t.Error("a start with a bad context started the roll")
	}
}

// The roll report shows the production context and who set it last.
func TestRollContextReport(t *testing.T) {
	s, st := newStoreServer(t, false, nil)
	c := rollmap.RollContext{Product: "Denim 12oz", Lot: "L-42", Supplier: "Mill & Co", Shift: "N", Operator: "kim", Order: "SO-9"}
	if err := st.SetContext("R", c, "kim", t0); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Denim 12oz", "L-42", "Mill &amp; Co", "SO-9", "by kim"} {
		if body := send(t, s.Handler(), "GET", "/api/rolls/R/report.html", "").Body.String(); !strings.Contains(body, want) {
			t.Errorf("report.html lacks %q", want)
		}
	}
	pdfCompress = false
	defer func() { pdfCompress = true }()
	pdf := send(t, s.Handler(), "GET", "/api/rolls/R/report.pdf", "").Body.String()
	for _, want := range []string{"Denim 12oz", "Lot L-42", "Order SO-9"} {
		if !strings.Contains(pdf, want) {
			t.Errorf("report.pdf lacks %q", want)
		}
	}
}

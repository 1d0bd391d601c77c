package marking

import (
	"bufio"
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"

	"github.com/webinspect/webinspect/internal/poll"
	"github.com/webinspect/webinspect/rollmap"
)

func TestOptionsValidate(t *testing.T) {
	def := DefaultOptions()
	if err := def.Validate(); err != nil {
		t.Fatalf("DefaultOptions: %v", err)
	}
	for _, tc := range []struct {
		name  string
		edit  func(o *Options)
		field string
	}{
		{"distance", func(o *Options) { o.MarkerDistanceMM = 0 }, "marking.marker_distance_mm = 0: must be between 1 and 100000"},
		{"no heads", func(o *Options) { o.Heads = nil }, "marking.heads"},
		{"head name", func(o *Options) { o.Heads[0].Name = "a b" }, "marking.heads[0].name"},
		{"dup head", func(o *Options) { o.Heads = append(o.Heads, o.Heads[0]) }, "marking.heads[1].name"},
		{"cd", func(o *Options) { o.Heads[0].CDStartMM, o.Heads[0].CDEndMM = 500, 400 }, "marking.heads[0].cd_end_mm"},
		{"lane", func(o *Options) { o.Heads[0] = Head{Name: "x", Lane: -1} }, "marking.heads[0].lane"},
		{"delay", func(o *Options) { o.ActuationDelayMS = -1 }, "marking.actuation_delay_ms"},
		{"length", func(o *Options) { o.MarkLengthMM = 0 }, "marking.mark_length_mm"},
		{"spacing", func(o *Options) { o.MinSpacingMM = o.MarkLengthMM + 1 }, "marking.min_spacing_mm"},
		{"tolerance", func(o *Options) { o.ToleranceMM = 0 }, "marking.tolerance_mm"},
		{"classes", func(o *Options) { o.Classes = nil }, "marking.classes"},
		{"severity entry", func(o *Options) { o.Severities = []string{" "} }, "marking.severities[0]"},
		{"window", func(o *Options) { o.SpeedWindowMS = 0 }, "marking.speed_window_ms"},
		{"kind", func(o *Options) { o.Output.Kind = "serial" }, "marking.output.kind"},
		{"address", func(o *Options) { o.Output.Kind = OutputModbus }, "marking.output.address"},
		{"queue", func(o *Options) { o.Output.Queue = 0 }, "marking.output.queue = 0: must be between 1 and 65536"},
		{"backoff", func(o *Options) { o.Output.BackoffMaxMS = 1 }, "marking.output.backoff_max_ms"},
		{"register", func(o *Options) { o.Output.RegisterBase = 65530 }, "marking.output.register_base"},
	} {
		o := DefaultOptions()
		tc.edit(&o)
		err := o.Validate()
		if err == nil || !errors.Is(err, ErrOptions) || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%s: Validate() = %v; want ErrOptions naming %q", tc.name, err, tc.field)
		}
	}
}

func defectAt(id int64, c0 int64, cd float64) rollmap.Defect {
	return rollmap.Defect{RollID: "R", ID: id, MDStartM: float64(c0) * testMPC / 1000, CDStartMM: cd, CDEndMM: cd + 10,
		Class: "hole", Severity: "critical", Decision: rollmap.DecisionMark, Lane: -1}
}

// TestJogAndStop drives the encoder by hand: forwards, stopped, backwards
// and forwards again. Each mark fires once, never while the web runs
// backwards or stands still.
func TestJogAndStop(t *testing.T) {
	o := DefaultOptions()
	o.MarkerDistanceMM = 100 // 2000 counts
	o.ActuationDelayMS = 0
	o.MinSpacingMM = 0 // no merging: mark 3 lies under mark 2
	rec := &recorder{}
	s, err := NewScheduler(o, nil, nil, zerolog.Nop(), rec.add)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ms := 0.0
	obs := func(c int64) { ms++; s.Observe(c, at(ms/1000)) }
	fired := func(id int64) int { return rec.count(id, 0, StatusFired) }
	for c := int64(0); c <= 1000; c += 5 {
		obs(c)
	}
	s.Schedule(defectAt(1, 800-2000, 100), 800-2000, -5000, testMPC) // target 800: already passed by 200 counts
	s.Schedule(defectAt(2, 1200-2000, 100), 1200-2000, -5000, testMPC)
	if rec.count(1, 0, StatusLate) != 1 {
		t.Fatalf("mark 1 (target passed by 10 mm) must be late")
	}
	for i := 0; i < 10; i++ {
		obs(1000) // stopped
	}
	for c := int64(1000); c <= 1300; c += 5 {
		obs(c)
	}
	if fired(2) != 1 {
		t.Fatalf("mark 2 fired %d times after passing its target, want 1", fired(2))
	}
	// Jog back to 900; schedule mark 3 with target 1250 (ahead again) while
	// running backwards past 1260.
	for c := int64(1300); c >= 1260; c -= 5 {
		obs(c)
	}
	s.Schedule(defectAt(3, 1250-2000, 100), 1250-2000, -5000, testMPC)
	for c := int64(1255); c >= 900; c -= 5 {
		obs(c)
		if fired(3) != 0 {
			t.Fatalf("mark 3 fired at count %d while running backwards", c)
		}
	}
	for c := int64(900); c <= 1245; c += 5 {
		obs(c)
	}
	if fired(3) != 0 {
		t.Fatalf("mark 3 fired before its target")
	}
	for c := int64(1250); c <= 1500; c += 5 {
		obs(c)
	}
	if fired(2) != 1 || fired(3) != 1 {
		t.Fatalf("after the jog: mark 2 fired %d times, mark 3 %d times; want 1 and 1", fired(2), fired(3))
	}
	if e, _ := rec.find(3, 0, StatusFired); e.FireCount != 1250 {
		t.Errorf("mark 3 fired at %d, want 1250", e.FireCount)
	}
}

func TestMergeCloseDefects(t *testing.T) {
	o := DefaultOptions()
	o.MarkerDistanceMM = 100
	o.ActuationDelayMS = 0
	o.MinSpacingMM = 20
	o.MarkLengthMM = 30
	rec := &recorder{}
	s, err := NewScheduler(o, nil, nil, zerolog.Nop(), rec.add)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.Observe(0, at(0))
	// Defects at 1000 counts, 1200 (10 mm later: merged) and 1500 (25 mm: its own mark).
	for _, d := range []struct{ id, c0 int64 }{{1, 1000}, {2, 1200}, {3, 1500}} {
		if st, _ := s.Schedule(defectAt(d.id, d.c0, 50), d.c0, 0, testMPC); st != StatusScheduled {
			t.Fatalf("defect %d: %v", d.id, st)
		}
	}
	if s.Pending() != 2 {
		t.Fatalf("pending marks = %d, want 2 (defects 1 and 2 merged)", s.Pending())
	}
	for c := int64(0); c <= 4000; c += 5 {
		s.Observe(c, at(float64(c)/1e5))
	}
	e1, _ := rec.find(1, 0, StatusFired)
	e2, _ := rec.find(2, 0, StatusFired)
	e3, _ := rec.find(3, 0, StatusFired)
	if e1.MarkID != 1 || e2.MarkID != 1 || e3.MarkID != 3 || e2.FireCount != 3000 || e3.FireCount != 3500 {
		t.Fatalf("fired events: %+v / %+v / %+v; want defects 1,2 on mark 1 at 3000 and 3 on mark 3 at 3500", e1, e2, e3)
	}
	// A defect 5 mm after a mark that already fired is covered by it.
	s.Schedule(defectAt(4, 1100, 50), 1100, 0, testMPC)
	if e, ok := rec.find(4, 0, StatusFired); !ok || e.MarkID != 1 {
		t.Fatalf("defect 4 (under the fired mark 1) not reported fired with it: %+v", e)
	}
}

// hangOutput never returns from Send until closed.
type hangOutput struct {
	trig    bool
	release chan struct{}
	sends   atomic.Int64
}

func (h *hangOutput) Send(ctx context.Context, m Mark) error {
	h.sends.Add(1)
	<-h.release
	return ErrClosed
}
func (h *hangOutput) Close() error         { close(h.release); return nil }
func (h *hangOutput) CountTriggered() bool { return h.trig }

func TestNeverBlocks(t *testing.T) {
	for _, trig := range []bool{true, false} {
		o := DefaultOptions()
		o.MarkerDistanceMM = 100
		o.Output.Queue = 2
		out := &hangOutput{trig: trig, release: make(chan struct{})}
		rec := &recorder{}
		s, err := NewScheduler(o, out, nil, zerolog.Nop(), rec.add)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			for c := int64(0); c < 100000; c += 5 {
				s.Observe(c, at(float64(c)/1e5))
				if c%500 == 0 {
					s.Schedule(defectAt(c, c, 50), c, 0, testMPC)
				}
			}
		}()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("trig=%v: Observe/Schedule blocked behind a hung output", trig)
		}
		// The output hangs in its first Send; if the output goroutine was
		// scheduled late, every queued mark had already passed and none
		// was sent at all.
		if n := out.sends.Load(); n > 1 {
			t.Errorf("trig=%v: %d sends started, want at most 1 (the output hangs in the first)", trig, n)
		}
		// Every mark but the one stuck in Send passed the marker undelivered.
		if n := testutil.ToFloat64(s.met.events[StatusMissed]); n < 150 {
			t.Errorf("trig=%v: missed = %v, want the ~190 marks that passed", trig, n)
		}
		closed := make(chan error)
		go func() { closed <- s.Close() }()
		select {
		case <-closed:
		case <-time.After(5 * time.Second):
			t.Fatalf("trig=%v: Close blocked", trig)
		}
	}
}

// TestLineOutput runs the line protocol against a real listener: lines
// parse, and only an ACK makes a mark acknowledged.
func TestLineOutput(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	lines := make(chan string, 8)
	ackNow := make(chan int64)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		go func() {
			for id := range ackNow {
				c.Write([]byte("NOISE\nACK " + itoa(id) + "\n"))
			}
		}()
		sc := bufio.NewScanner(c)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()

	o := DefaultOptions()
	o.Heads[0].Name = "op-1"
	o.Output = OutputOptions{Kind: OutputTCP, Address: ln.Addr().String(), Queue: 4, TimeoutMS: 500, BackoffMinMS: 1, BackoffMaxMS: 10}
	rec := &recorder{}
	s, err := NewScheduler(o, NewLineOutput(o.Output, zerolog.Nop()), nil, zerolog.Nop(), rec.add)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.Observe(0, at(0))
	d := defectAt(42, 20000, 321)
	d.RollID = "roll 7=A"
	if st, err := s.Schedule(d, 20000, 0, testMPC); st != StatusScheduled || err != nil {
		t.Fatalf("Schedule: %v %v", st, err)
	}
	var line string
	select {
	case line = <-lines:
	case <-time.After(3 * time.Second):
		t.Fatal("no MARK line received")
	}
	ml, err := ParseMarkLine(line)
	if err != nil {
		t.Fatal(err)
	}
	want := MarkLine{RollID: "roll 7=A", DefectID: 42, MDM: 1, CDMM: 326, Head: "op-1", Count: 20000 + 40000, MarkerCount: 60000, LengthMM: 50}
	if ml.RollID != want.RollID || ml.DefectID != want.DefectID || ml.MDM != want.MDM || ml.CDMM != want.CDMM ||
		ml.Head != want.Head || ml.Count != want.Count || ml.MarkerCount != want.MarkerCount || ml.LengthMM != want.LengthMM {
		t.Fatalf("line %q parsed to %+v, want %+v", line, ml, want)
	}
	// Once the output goroutine is idle it has handled the sent mark: an
	// output that counted a written line as acknowledged has done so now.
	if !s.WaitIdle(10 * time.Second) {
		t.Fatal("the output goroutine did not finish sending mark 42")
	}
	if rec.count(42, 0, StatusAcknowledged) != 0 {
		t.Fatal("acknowledged before the device sent ACK")
	}
	ackNow <- 42
	close(ackNow)
	poll.Until(t, 10*time.Second, "ACK to acknowledge mark 42", func() bool { return rec.count(42, 0, StatusAcknowledged) == 1 })

	for _, bad := range []string{"MARC roll=a", "MARK roll=a defect=x md_m=1 cd_mm=1 head=h count=1", "MARK roll=a defect=1"} {
		if _, err := ParseMarkLine(bad); err == nil {
			t.Errorf("ParseMarkLine(%q) accepted a bad line", bad)
		}
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestLineOutputResendsUnacked: the device drops the connection after
// reading a MARK without acknowledging it; the scheduler sends the mark
// again after the output timeout, on a new connection, and only fires it
// once acknowledged.
func TestLineOutputResendsUnacked(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	lines := make(chan string, 8)
	go func() {
		for conn := 0; ; conn++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			sc := bufio.NewScanner(c)
			if sc.Scan() {
				lines <- sc.Text()
				if conn > 0 {
					ml, _ := ParseMarkLine(sc.Text())
					c.Write([]byte("ACK " + itoa(ml.DefectID) + "\n"))
					sc.Scan() // wait for close
				}
			}
			c.Close()
		}
	}()
	o := DefaultOptions()
	o.MarkerDistanceMM = 100
	o.Output = OutputOptions{Kind: OutputTCP, Address: ln.Addr().String(), Queue: 4, TimeoutMS: 30, BackoffMinMS: 1, BackoffMaxMS: 10}
	rec := &recorder{}
	s, err := NewScheduler(o, NewLineOutput(o.Output, zerolog.Nop()), nil, zerolog.Nop(), rec.add)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := int64(0)
	s.Observe(c, at(0))
	s.Schedule(defectAt(9, 1000, 10), 1000, 0, testMPC) // marker count 3000
	poll.Until(t, 10*time.Second, "mark 9 acknowledged", func() bool {
		if rec.count(9, 0, StatusAcknowledged) != 0 {
			return true
		}
		if c < 2000 {
			c += 5
		}
		s.Observe(c, at(float64(c)/1e5))
		return false
	})
	if len(lines) != 2 {
		t.Fatalf("device read %d MARK lines, want 2 (the first was dropped unacknowledged)", len(lines))
	}
	for ; c <= 3500; c += 5 {
		s.Observe(c, at(float64(c)/1e5))
	}
	if rec.count(9, 0, StatusFired) != 1 || rec.count(9, 0, StatusMissed) != 0 {
		t.Fatalf("mark 9: fired %d, missed %d; want 1, 0", rec.count(9, 0, StatusFired), rec.count(9, 0, StatusMissed))
	}
}

func TestWireRoundTrip(t *testing.T) {
	m := Mark{RollID: "roll %7= ü", DefectIDs: []int64{-3, 4, 5}, HeadName: "h.1", MDM: 12.34567, CDMM: 99.94,
		TargetCount: -123456789012, MarkerCount: 1 << 40, LengthMM: 25}
	ml, err := ParseMarkLine(string(AppendMarkLine(nil, m)))
	if err != nil {
		t.Fatal(err)
	}
	if ml.RollID != m.RollID || ml.DefectID != -3 || ml.Head != "h.1" || ml.MDM != 12.3457 || ml.CDMM != 99.9 ||
		ml.Count != m.TargetCount || ml.MarkerCount != m.MarkerCount || len(ml.Merged) != 2 || ml.Merged[1] != 5 {
		t.Fatalf("round trip: %+v from %+v", ml, m)
	}
	var regs [ModbusRegisters]uint16
	EncodeModbusMark(regs[:], 9, m)
	if DecodeModbusCount(regs[RegTargetCount:]) != m.TargetCount || DecodeModbusCount(regs[RegMarkerCount:]) != m.MarkerCount {
		t.Fatalf("modbus counts: %v", regs)
	}
}

func TestHeadSelection(t *testing.T) {
	o := DefaultOptions()
	o.Heads = []Head{{Name: "lane0", Lane: 0}, {Name: "lane2", Lane: 2}, {Name: "edge", CDStartMM: 0, CDEndMM: 50}}
	o.Classes, o.Severities, o.Decisions = []string{"hole", "stain"}, []string{"*"}, []rollmap.Decision{rollmap.DecisionMark, rollmap.DecisionReview}
	rec := &recorder{}
	s, err := NewScheduler(o, nil, nil, zerolog.Nop(), rec.add)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.Observe(0, at(0))
	d := defectAt(1, 100, 20) // CD 20..30: edge head
	d.Lane = 2                // and lane 2
	d.Decision = rollmap.DecisionReview
	if st, _ := s.Schedule(d, 100, 0, testMPC); st != StatusScheduled {
		t.Fatalf("Schedule = %v", st)
	}
	if rec.count(1, 1, StatusScheduled) != 1 || rec.count(1, 2, StatusScheduled) != 1 || rec.count(1, 0, StatusScheduled) != 0 {
		t.Fatalf("defect in lane 2 at the edge must be scheduled on heads lane2 and edge only: %+v", rec.ev)
	}
	d = defectAt(2, 300, 500)
	d.Class = "crease"
	if st, _ := s.Schedule(d, 300, 0, testMPC); st != StatusSkipped {
		t.Fatalf("class not selected: Schedule = %v, want skipped", st)
	}
	d = defectAt(3, 300, 500) // lane -1, CD outside the edge head
	if st, _ := s.Schedule(d, 300, 0, testMPC); st != StatusSkipped {
		t.Fatalf("no head covers it: Schedule = %v, want skipped", st)
	}
}

// TestHeadsInTheMachineFrame: a head's CD band is fixed on the machine,
// while a defect's CD is on the roll, measured from the web edge found
// beside it. With the web 100 mm off the geometry's edge, a defect 20 mm
// into the web is under the head at 115–125 mm, not the one at 15–25 mm,
// and its mark carries the machine CD.
func TestHeadsInTheMachineFrame(t *testing.T) {
	o := DefaultOptions()
	o.Heads = []Head{{Name: "near", CDStartMM: 0, CDEndMM: 25}, {Name: "far", CDStartMM: 115, CDEndMM: 125}}
	rec := &recorder{}
	s, err := NewScheduler(o, nil, nil, zerolog.Nop(), rec.add)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.Observe(0, at(0))
	d := defectAt(1, 100, 20) // CD 20..30 on the roll
	d.WebEdgeMM = 100
	if st, _ := s.Schedule(d, 100, 0, testMPC); st != StatusScheduled {
		t.Fatalf("Schedule = %v", st)
	}
	if rec.count(1, 1, StatusScheduled) != 1 || rec.count(1, 0, StatusScheduled) != 0 {
		t.Fatalf("want the far head only (machine CD 120–130 mm): %+v", rec.ev)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, e := range rec.ev {
		if e.CDMM != 125 {
			t.Errorf("mark event CD %v mm, want the machine CD 125", e.CDMM)
		}
	}
}

package marking

import (
	"io"
	"log"
	"math"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
	"github.com/simonvetter/modbus"

	"github.com/webinspect/webinspect/acquisition"
	"github.com/webinspect/webinspect/internal/poll"
	"github.com/webinspect/webinspect/rollmap"
)

// plc is a Modbus handler that behaves like a marker controller: it keeps
// the mark block registers and latches a mark when the trigger coil is set.
type plc struct {
	base, coil uint16
	mu         sync.Mutex
	regs       [ModbusRegisters]uint16
	marks      [][ModbusRegisters]uint16
}

func (p *plc) HandleCoils(req *modbus.CoilsRequest) ([]bool, error) {
	if !req.IsWrite || req.Addr != p.coil || req.Quantity != 1 {
		return nil, modbus.ErrIllegalDataAddress
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if req.Args[0] {
		p.marks = append(p.marks, p.regs)
	}
	return nil, nil
}

func (p *plc) HandleDiscreteInputs(*modbus.DiscreteInputsRequest) ([]bool, error) {
	return nil, modbus.ErrIllegalFunction
}

func (p *plc) HandleHoldingRegisters(req *modbus.HoldingRegistersRequest) ([]uint16, error) {
	if req.Addr < p.base || int(req.Addr)+int(req.Quantity) > int(p.base)+ModbusRegisters {
		return nil, modbus.ErrIllegalDataAddress
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	off := int(req.Addr - p.base)
	if req.IsWrite {
		copy(p.regs[off:], req.Args)
		return nil, nil
	}
	return append([]uint16(nil), p.regs[off:off+int(req.Quantity)]...), nil
}

func (p *plc) HandleInputRegisters(*modbus.InputRegistersRequest) ([]uint16, error) {
	return nil, modbus.ErrIllegalFunction
}

func (p *plc) latched() [][ModbusRegisters]uint16 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([][ModbusRegisters]uint16(nil), p.marks...)
}

func startPLC(t *testing.T, addr string, p *plc) *modbus.ModbusServer {
	t.Helper()
	srv, err := modbus.NewServer(&modbus.ServerConfiguration{URL: "tcp://" + addr, Timeout: 10 * time.Second,
		Logger: log.New(io.Discard, "", 0)}, p)
	if err != nil {
		t.Fatal(err)
	}
	// The port may still be held by the server this one replaces.
	if poll.Wait(10*time.Second, func() bool { err = srv.Start(); return err == nil }) != nil {
		t.Fatalf("modbus server on %s: %v", addr, err)
	}
	return srv
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestModbusOutputReconnect(t *testing.T) {
	addr := freeAddr(t)
	p := &plc{base: 100, coil: 7}
	srv := startPLC(t, addr, p)

	opts := DefaultOptions()
	opts.Heads = []Head{{Name: "op", CDStartMM: 0, CDEndMM: 1000}, {Name: "drive", CDStartMM: 1000, CDEndMM: 2000}}
	opts.Output = OutputOptions{Kind: OutputModbus, Address: addr, UnitID: 1, RegisterBase: 100, Coil: 7,
		Queue: 8, TimeoutMS: 200, BackoffMinMS: 2, BackoffMaxMS: 20}
	if err := opts.Validate(); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	reg := prometheus.NewRegistry()
	s, err := NewScheduler(opts, NewModbusOutput(opts.Output, zerolog.Nop()), reg, zerolog.Nop(), rec.add)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	m, err := acquisition.NewMotion(acquisition.ConstantSpeed(100), testMPC, testCPL)
	if err != nil {
		t.Fatal(err)
	}
	var count int64
	step := func(lines int, pace bool) {
		for i := 0; i < lines; i++ {
			var sec float64
			count, sec = m.Next()
			s.Observe(count, at(sec))
			if pace && i%20 == 19 {
				time.Sleep(time.Millisecond)
			}
		}
	}
	countOf := func(mdM float64) int64 { return int64(mdM * 1000 / testMPC) }
	defect := func(id int64, mdM, cd float64) rollmap.Defect {
		return rollmap.Defect{RollID: "R7", ID: id, MDStartM: mdM, CDStartMM: cd, CDEndMM: cd + 20,
			Class: "hole", Severity: "critical", Decision: rollmap.DecisionMark, Lane: -1}
	}
	schedule := func(d rollmap.Defect) {
		t.Helper()
		if st, err := s.Schedule(d, countOf(d.MDStartM), 0, testMPC); err != nil || st != StatusScheduled {
			t.Fatalf("Schedule(%d) = %v, %v; want scheduled", d.ID, st, err)
		}
	}

	step(int(2200/0.25), false) // web at 2.2 m
	schedule(defect(1, 0.5, 100))
	schedule(defect(2, 0.45, 1500))
	poll.Until(t, 10*time.Second, "marks 1 and 2 acknowledged", func() bool {
		return rec.count(1, 0, StatusAcknowledged) == 1 && rec.count(2, 1, StatusAcknowledged) == 1
	})
	got := p.latched()
	if len(got) != 2 {
		t.Fatalf("PLC latched %d marks, want 2", len(got))
	}
	dist := countOf(2)
	delay := int64(math.Round(100.0 * 1000 / 60 * 5 / 1000 / testMPC)) // 5 ms at 100 m/min, in counts
	for i, want := range []struct {
		head int
		id   int64
		c0   int64
	}{{0, 1, countOf(0.5)}, {1, 2, countOf(0.45)}} {
		r := got[i]
		if r[RegSeq] != uint16(i+1) || int(r[RegHead]) != want.head {
			t.Errorf("mark %d: seq %d head %d, want seq %d head %d", i, r[RegSeq], r[RegHead], i+1, want.head)
		}
		if mc := DecodeModbusCount(r[RegMarkerCount:]); mc != want.c0+dist {
			t.Errorf("mark %d: marker count %d, want %d", i, mc, want.c0+dist)
		}
		if tc := DecodeModbusCount(r[RegTargetCount:]); tc < want.c0+dist-delay-2 || tc > want.c0+dist-delay+2 {
			t.Errorf("mark %d: target count %d, want %d±2 (marker count minus 5 ms at 100 m/min)", i, tc, want.c0+dist-delay)
		}
		if id := int64(r[RegDefectID])<<16 | int64(r[RegDefectID+1]); id != want.id {
			t.Errorf("mark %d: defect id %d, want %d", i, id, want.id)
		}
		if r[RegLengthMM] != uint16(opts.MarkLengthMM) {
			t.Errorf("mark %d: length %d, want %g", i, r[RegLengthMM], opts.MarkLengthMM)
		}
	}

	// Kill the PLC. Mark 3 fires 1.8 m from here (kept and delivered after
	// reconnect); mark 4 fires 100 mm from here (passes during the outage).
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	schedule(defect(3, 2.2, 300))
	schedule(defect(4, 0.3, 300))
	step(int(400/0.25), true) // 400 mm of web at about real time
	if rec.count(4, 0, StatusMissed) != 1 {
		t.Fatalf("mark 4 passed the marker during the outage: missed events = %d, want 1", rec.count(4, 0, StatusMissed))
	}
	if rec.count(3, 0, StatusMissed) != 0 || rec.count(3, 0, StatusAcknowledged) != 0 {
		t.Fatalf("mark 3 must be pending during the outage")
	}
	if testutil.ToFloat64(s.met.outputErrors) == 0 {
		t.Fatalf("no failed send during the outage")
	}
	if rec.count(1, 0, StatusFired) != 1 || rec.count(2, 1, StatusFired) != 1 {
		t.Errorf("marks 1 and 2 were delivered before the outage and must fire once during it")
	}

	// Restart on the same port: mark 3 arrives before its fire point.
	srv = startPLC(t, addr, p)
	defer srv.Stop()
	e3, _ := rec.find(3, 0, StatusScheduled)
	// The web moves on only while waiting: the mark must arrive before
	// the web reaches its target, however slow the machine.
	poll.Until(t, 10*time.Second, "mark 3 acknowledged after the reconnect", func() bool {
		if rec.count(3, 0, StatusAcknowledged) != 0 {
			return true
		}
		if count >= e3.Target {
			t.Fatalf("mark 3 not delivered after reconnect (count %d, target %d)", count, e3.Target)
		}
		step(4, true)
		return false
	})
	got = p.latched()
	if len(got) != 3 || got[2][RegDefectID+1] != 3 {
		t.Fatalf("PLC latched %d marks (last defect %d), want 3 ending with defect 3", len(got), got[len(got)-1][RegDefectID+1])
	}
	step(int(2000/0.25), false)
	if rec.count(3, 0, StatusFired) != 1 {
		t.Errorf("mark 3: fired %d times, want 1", rec.count(3, 0, StatusFired))
	}
	if n := testutil.ToFloat64(s.met.events[StatusMissed]); n != 1 {
		t.Errorf("missed metric = %v, want 1", n)
	}
	if s.Pending() != 0 {
		t.Errorf("%d marks still pending", s.Pending())
	}
}

package opcua

// End to end: the simulator feeds the real engine, which writes a real
// roll map; the OPC UA server shows the HTTP API's live status of it, and
// a gopcua client reads it while the roll runs and drives the line.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/gopcua/opcua/ua"
	"github.com/rs/zerolog"

	"github.com/webinspect/webinspect/acquisition/sim"
	"github.com/webinspect/webinspect/api"
	"github.com/webinspect/webinspect/engine"
	"github.com/webinspect/webinspect/engine/status"
	"github.com/webinspect/webinspect/internal/long"
	"github.com/webinspect/webinspect/internal/poll"
	"github.com/webinspect/webinspect/rollmap"
)

// engineLine drives the engine as cmd/webinspect's lineControl does.
type engineLine struct{ e *engine.Engine }

func (l engineLine) StartRoll(id string) (string, error) {
	ch, err := l.e.ChangeRoll(context.Background(), id)
	return ch.Started, err
}

func (l engineLine) EndRoll() (string, float64, error) {
	ch, err := l.e.EndRoll(context.Background())
	if errors.Is(err, engine.ErrNoRoll) {
		err = fmt.Errorf("%w: %w", api.ErrNoRoll, err)
	}
	return ch.Ended, ch.EndedM, err
}

func (l engineLine) Splice(note string) (string, float64, error) {
	return l.e.Splice(context.Background(), note)
}

func TestAgainstRunningEngine(t *testing.T) {
	if raceEnabled {
		// gopcua's server.New alone takes about 9 s under -race, and the
		// engine is several times slower: about 50 s in all.
		long.Skip(t, "the OPC UA end-to-end test with the real engine under -race, about 50 s; it runs in every run without -race")
	}
	cfg := sim.DefaultConfig()
	cfg.Material, cfg.Seed = "fabric", 7
	cfg.WidthMM, cfg.PixelMM, cfg.LineMM = 1000, 1, 1
	cfg.LengthM, cfg.Defects = 400, 120
	cfg.Realtime, cfg.SpeedMPerMin = true, 600 // 40 s of web at most: the test stops it sooner
	src, err := sim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	recipe, err := engine.DefaultRecipe("fabric")
	if err != nil {
		t.Fatal(err)
	}
	st, err := rollmap.OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	info := src.Info()
	meta := func(id string) rollmap.RollMeta {
		return rollmap.RollMeta{ID: id, Recipe: recipe.Name, Material: info.Material, Source: info.Name,
			WebWidthMM: info.WebWidthMM, Lanes: recipe.Lanes, Grading: recipe.Grading}
	}
	roll, err := st.StartRoll(meta("R-opc-1"))
	if err != nil {
		t.Fatal(err)
	}
	eng, err := engine.New(engine.Options{Recipe: recipe, Source: src, Roll: roll, Logger: zerolog.Nop(),
		NewRoll: func(id string) (engine.RollWriter, error) { return st.StartRoll(meta(id)) }})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	// The HTTP API's live status (per-roll counts from the roll map), as
	// the run command gives it.
	ao := api.DefaultOptions()
	ao.Listen, ao.Store, ao.Status, ao.Gatherer = "127.0.0.1:0", st, eng.Status, nil
	httpSrv, err := api.New(ao)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- eng.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-runDone; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("engine: %v", err)
		}
		if c, ok := eng.Roll().(interface{ Close() error }); ok {
			c.Close()
		}
	}()

	var classes []string
	for _, c := range recipe.Classes {
		if !slices.Contains(classes, c.Name) {
			classes = append(classes, c.Name)
		}
	}
	o := DefaultOptions()
	o.Endpoint, o.Rolls, o.Line, o.Classes = "opc.tcp://127.0.0.1:0", st, engineLine{eng}, classes
	o.Status = func() status.Status { return httpSrv.LiveStatus().Status }
	s := start(t, o)
	c, err := dial(t, s.Endpoint(), "", "")
	if err != nil {
		t.Fatal(err)
	}
	ns := nsIndex(t, c)

	// While the roll runs: the state, and counts that grow and agree.
	var v map[string]any
	poll.Until(t, 60*time.Second, "the engine running with defects on the roll", func() bool {
		v = readValues(t, c, ns, "VisionStateMachine.CurrentState", "CurrentRoll.RollId", "Web.MdM", "Web.SpeedMPerMin",
			"ResultManagement.DefectCount", "ResultManagement.ClassNames", "ResultManagement.ClassCounts",
			"ResultManagement.LastResult.ResultId", "ResultManagement.LastResult.Class", "ResultManagement.LastResult.RollId")
		n, _ := v["ResultManagement.DefectCount"].(int64)
		return v["VisionStateMachine.CurrentState"] == "Operational" && n >= 3
	})
	t.Logf("read while running: %v", v)
	if v["CurrentRoll.RollId"] != "R-opc-1" || v["ResultManagement.LastResult.RollId"] != "R-opc-1" {
		t.Fatalf("roll: %v", v)
	}
	if md, _ := v["Web.MdM"].(float64); md <= 0 {
		t.Fatalf("MdM %v while running", v["Web.MdM"])
	}
	total := v["ResultManagement.DefectCount"].(int64)
	names, counts := v["ResultManagement.ClassNames"].([]string), v["ResultManagement.ClassCounts"].([]int64)
	var sum int64
	for _, n := range counts {
		sum += n
	}
	if len(names) != len(counts) || sum != total {
		t.Fatalf("class counts %v %v sum to %d, DefectCount %d", names, counts, sum, total)
	}
	if !slices.Contains(names, v["ResultManagement.LastResult.Class"].(string)) {
		t.Fatalf("last result's class %v not among %v", v["ResultManagement.LastResult.Class"], names)
	}
	// The roll map has at least what was read, and the last result is one
	// of its defects.
	if info, err := st.Roll("R-opc-1"); err != nil || info.Defects < total {
		t.Fatalf("roll map: %+v %v, OPC UA said %d defects", info, err, total)
	}
	lastID := v["ResultManagement.LastResult.ResultId"].(int64)
	ds, err := st.Defects("R-opc-1", rollmap.Query{AfterID: lastID - 1, Limit: 1})
	if err != nil || len(ds) != 1 || ds[0].ID != lastID || ds[0].Class != v["ResultManagement.LastResult.Class"] {
		t.Fatalf("last result %d not in the roll map: %+v %v", lastID, ds, err)
	}

	// RecordSplice: the splice is on the roll map where the engine says.
	r, err := call(c, ns, "RecordSplice", "web break, taped")
	if err != nil || r.StatusCode != ua.StatusOK {
		t.Fatalf("RecordSplice: %v %+v", err, r)
	}
	spliceMD := r.OutputArguments[1].Value().(float64)
	if r.OutputArguments[0].Value() != "R-opc-1" || spliceMD <= 0 {
		t.Fatalf("RecordSplice answered %v %v", r.OutputArguments[0].Value(), spliceMD)
	}
	if ri, err := st.Roll("R-opc-1"); err != nil || len(ri.Splices) != 1 || ri.Splices[0].Note != "web break, taped" || ri.Splices[0].MDM != spliceMD {
		t.Fatalf("roll map splices: %+v %v", ri.Splices, err)
	}
	if v := readValues(t, c, ns, "CurrentRoll.Splices"); v["CurrentRoll.Splices"] != int32(1) {
		t.Fatalf("Splices after RecordSplice: %v", v)
	}

	// SetRollContext: in roll.json, with who set it, and read back.
	r, err = call(c, ns, "SetRollContext", "satin 80", "L-2026-11", "Weaver Co", "night", "ben", "PO-9")
	if err != nil || r.StatusCode != ua.StatusOK || r.OutputArguments[0].Value() != "R-opc-1" {
		t.Fatalf("SetRollContext: %v %+v", err, r)
	}
	want := rollmap.RollContext{Product: "satin 80", Lot: "L-2026-11", Supplier: "Weaver Co", Shift: "night", Operator: "ben", Order: "PO-9"}
	if ri, err := st.Roll("R-opc-1"); err != nil || ri.Context != want || len(ri.ContextHistory) == 0 || ri.ContextHistory[len(ri.ContextHistory)-1].By != "ben" {
		t.Fatalf("roll map context: %+v %v", ri, err)
	}
	if v := readValues(t, c, ns, "CurrentRoll.ProductionContext.Supplier", "CurrentRoll.ProductionContext.ChangedBy"); v["CurrentRoll.ProductionContext.Supplier"] != "Weaver Co" ||
		v["CurrentRoll.ProductionContext.ChangedBy"] != "ben" {
		t.Fatalf("context over OPC UA: %v", v)
	}

	// StartRoll: the old roll ends, the new one is in the roll map and
	// is what the server shows.
	r, err = call(c, ns, "StartRoll", "R-opc-2")
	if err != nil || r.StatusCode != ua.StatusOK || r.OutputArguments[0].Value() != "R-opc-2" {
		t.Fatalf("StartRoll: %v %+v", err, r)
	}
	if info, err := st.Roll("R-opc-2"); err != nil || !info.Open {
		t.Fatalf("new roll in the roll map: %+v %v", info, err)
	}
	poll.Until(t, 30*time.Second, "the ended roll closed in the roll map", func() bool {
		info, err := st.Roll("R-opc-1")
		return err == nil && !info.Open
	})
	v = readValues(t, c, ns, "CurrentRoll.RollId", "CurrentRoll.Splices")
	if v["CurrentRoll.RollId"] != "R-opc-2" || v["CurrentRoll.Splices"] != int32(0) {
		t.Fatalf("after StartRoll: %v", v)
	}
	// A roll ID already used is refused, and the line keeps its roll.
	r, err = call(c, ns, "StartRoll", "R-opc-1")
	if err != nil || r.StatusCode != ua.StatusBadInvalidState {
		t.Fatalf("StartRoll of an existing roll: %v %+v", err, r)
	}
	if v := readValues(t, c, ns, "CurrentRoll.RollId"); v["CurrentRoll.RollId"] != "R-opc-2" {
		t.Fatalf("after a refused StartRoll: %v", v)
	}

	// EndRoll ends it; a second EndRoll finds no roll open.
	r, err = call(c, ns, "EndRoll")
	if err != nil || r.StatusCode != ua.StatusOK || r.OutputArguments[0].Value() != "R-opc-2" {
		t.Fatalf("EndRoll: %v %+v", err, r)
	}
	poll.Until(t, 30*time.Second, "R-opc-2 closed in the roll map", func() bool {
		info, err := st.Roll("R-opc-2")
		return err == nil && !info.Open
	})
	r, err = call(c, ns, "EndRoll")
	if err != nil || r.StatusCode != ua.StatusBadInvalidState {
		t.Fatalf("EndRoll with no roll open: %v %+v", err, r)
	}
}

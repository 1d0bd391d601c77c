package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/webinspect/webinspect/acquisition"
	"github.com/webinspect/webinspect/model/onnx/ortest"
	"github.com/webinspect/webinspect/model/teach"
)

// TestTaughtModelOnWanderingWeb is issue 13's wandering web through the
// whole engine: a model taught with the defaults on the first 1.5 m of a
// web whose backlit edge wanders ±30 mm (wanderSource), then the engine
// with both detectors over the next 5 m, where subtle spots (5 × 5 px,
// 20 grey levels darker: the threshold detector alone finds 16 of the 49)
// lie 0.5–19.5 mm from the edge. No false defect
// (at the edge or anywhere), at least 95 % of the spots found, each at
// its MD and at its CD on the roll (its distance from the edge) within the
// model's reach.
func TestTaughtModelOnWanderingWeb(t *testing.T) {
	if testing.Short() {
		t.Skip("teaches a model and inspects 5 m with it")
	}
	ortest.Require(t)
	recipe, err := DefaultRecipe("fabric")
	if err != nil {
		t.Fatal(err)
	}
	const taughtLines, lines = 6144, 20_000
	var good []teach.Image
	tsrc := newWanderSource(taughtLines, nil)
	b := acquisition.NewBlock(256, wanderW)
	for {
		err := tsrc.ReadBlock(context.Background(), b)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		good = append(good, teach.Image{W: wanderW, H: b.Lines, Pix: append([]uint8(nil), b.Pix[:b.Lines*wanderW]...)})
	}
	to := teach.DefaultOptions()
	to.TargetFAR = recipe.Model.FramesFalseAlarmRate(to.TileH*to.Bin, 0.25, 1)
	taught, err := teach.Teach(good, to)
	if err != nil {
		t.Fatal(err)
	}
	if taught.Sidecar.Input.Edges == "" {
		t.Fatalf("no edge zones taught: %s", taught.Sidecar.MadeBy.Params["zones"])
	}
	model := loadTaught(t, taught, recipe)
	var spots []wanderSpot
	for k := range lines/400 - 1 {
		spots = append(spots, wanderSpot{line: taughtLines + 200 + 400*k, fromEdge: 2 + (k*13)%76})
	}
	src := newWanderSource(taughtLines+lines, spots)
	src.next = taughtLines // the web beyond what was taught
	src.depth, src.side = 20, 5
	roll := &memRoll{}
	e, err := New(Options{Recipe: recipe, Source: src, Roll: roll, Logger: zerolog.Nop(), Model: model, ModelName: "taught"})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	found := make([]bool, len(spots))
	byModel, maxCDErr := 0, 0.0
	for _, d := range roll.defects {
		hit := false
		for i, sp := range spots {
			md := float64(sp.line-taughtLines) * 0.25 / 1000
			x0 := float64(wanderEdge(sp.line)+sp.fromEdge) * wanderPixMM
			if d.MDStartM <= md+0.002+0.00125 && d.MDEndM >= md-0.002 && d.CDStartMM+d.WebEdgeMM <= x0+1.25+1.5 && d.CDEndMM+d.WebEdgeMM >= x0-1.5 {
				hit = true
				// The model's box spreads a defect by up to its reach (7 mm
				// here, engine/merge.go), as TestTaughtModelFindsSubtleDefects
				// allows; measured on the machine the error would be the
				// edge's 45–105 mm.
				centre := (float64(sp.fromEdge) + float64(src.side)/2) * wanderPixMM
				if got := (d.CDStartMM + d.CDEndMM) / 2; math.Abs(got-centre) > 7.25 {
					t.Errorf("spot %d px from the edge at line %d: CD centre %.2f mm on the roll, want %.2f ± 7.25", sp.fromEdge, sp.line, got, centre)
				}
				maxCDErr = max(maxCDErr, math.Abs((d.CDStartMM+d.CDEndMM)/2-centre))
				if !found[i] && strings.Contains(string(d.Detector), "taught") {
					byModel++
				}
				found[i] = true
			}
		}
		if !hit {
			t.Errorf("false defect at MD %.4f m, CD %.1f–%.1f mm on the roll (web edge at %.1f mm), %s by %s",
				d.MDStartM, d.CDStartMM, d.CDEndMM, d.WebEdgeMM, d.Class, d.Detector)
		}
	}
	var nf int
	var missed []string
	for i, f := range found {
		if f {
			nf++
		} else {
			missed = append(missed, fmt.Sprintf("%d px from the edge at line %d", spots[i].fromEdge, spots[i].line))
		}
	}
	t.Logf("%d/%d spots found (%d with the model), %d defects, max CD centre error %.2f mm on the roll; missed: %v", nf, len(spots), byModel, len(roll.defects), maxCDErr, missed)
	if 100*nf < 95*len(spots) {
		t.Errorf("recall %d/%d subtle spots within 20 mm of a wandering edge, want ≥ 95 %%", nf, len(spots))
	}
}

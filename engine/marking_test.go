package engine

import (
	"fmt"
	"math"
	"testing"

	"github.com/webinspect/webinspect/acquisition"
	"github.com/webinspect/webinspect/marking"
)

// TestMarksLandOnDefects runs the whole pipeline on the simulator with a
// simulated marker 2 m downstream, at 100 and 600 m/min with a stop and a
// jog back, and checks where every mark landed.
func TestMarksLandOnDefects(t *testing.T) {
	for _, speed := range []float64{100, 600} {
		t.Run(fmt.Sprintf("speed=%.0f", speed), func(t *testing.T) {
			cfg := testSimConfig("fabric", 13)
			cfg.SpeedMPerMin = speed
			cfg.Defects = 18
			cfg.Motion = acquisition.StopAndJog(speed, cfg.LengthM/2, 1, 0.5)
			recipe, err := DefaultRecipe("fabric")
			if err != nil {
				t.Fatal(err)
			}
			recipe.Marking.Output.Kind = marking.OutputSim
			recipe.Marking.MarkerDistanceMM = 2000
			recipe.Marking.Decisions = append(recipe.Marking.Decisions[:0:0], DecisionMark, DecisionReview)
			recipe.Marking.MinSpacingMM = 0
			var e *Engine
			roll, _, err := runSimEngine(t, cfg, recipe, func(en *Engine) { e = en })
			if err != nil {
				t.Fatal(err)
			}
			landed := map[int64][]marking.Landing{}
			for _, l := range e.SimMarker().Landings() {
				for _, id := range l.Mark.DefectIDs {
					landed[id] = append(landed[id], l)
				}
			}
			markable, marked := 0, 0
			for _, d := range roll.defects {
				if !recipe.Marking.Selects(&d) {
					if len(landed[d.ID]) > 0 {
						t.Errorf("defect %d (%s) was marked but the recipe does not select it", d.ID, d.Decision)
					}
					continue
				}
				// Defects within the marker distance of the roll end never
				// reach the marker before the web stops.
				if d.MDStartM > cfg.LengthM-recipe.Marking.MarkerDistanceMM/1000 {
					continue
				}
				markable++
				ls := landed[d.ID]
				if len(ls) != 1 {
					t.Errorf("defect %d at %.4f m marked %d times", d.ID, d.MDStartM, len(ls))
					continue
				}
				marked++
				if err := ls[0].MDStartM*1000 - d.MDStartM*1000; math.Abs(err) > 2 {
					t.Errorf("defect %d at %.4f m: mark landed at %.4f m (%.2f mm off) at %.0f m/min", d.ID, d.MDStartM, ls[0].MDStartM, err, ls[0].SpeedMPMin)
				}
				if ls[0].MDEndM-ls[0].MDStartM < recipe.Marking.MarkLengthMM/1000-1e-9 {
					t.Errorf("mark of defect %d is %.1f mm long, recipe says %.1f", d.ID, (ls[0].MDEndM-ls[0].MDStartM)*1000, recipe.Marking.MarkLengthMM)
				}
			}
			if markable < 3 {
				t.Fatalf("only %d markable defects: the test proves nothing", markable)
			}
			st := e.Status()
			if st.Marks["late"] != 0 {
				t.Errorf("%d marks late", st.Marks["late"])
			}
			t.Logf("%d/%d markable defects marked; mark events %v", marked, markable, st.Marks)
		})
	}
}

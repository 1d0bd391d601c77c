package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/webinspect/webinspect/acquisition"
	"github.com/webinspect/webinspect/model/edge"
)

// wanderSource is one camera over a woven web narrower than the camera:
// beyond the web's left edge a backlight saturates the pixels, and the
// edge wanders ±30 mm across the roll (the way a real web runs). Dark
// spots sit within 20 mm of the edge.
type wanderSource struct {
	info  acquisition.Info
	lines int
	spots []wanderSpot
	rng   *rand.Rand
	next  int
	// depth and side make the spots: side × side px, depth grey levels
	// darker (70 and 6 unless set).
	depth float64
	side  int
}

type wanderSpot struct{ line, fromEdge int } // side × side px, fromEdge px inside the web

const (
	wanderW      = 1024
	wanderPixMM  = 0.25
	wanderAmplPx = 120 // ±30 mm
)

func wanderEdge(line int) int {
	return 300 + int(math.Round(wanderAmplPx*math.Sin(float64(line)/1500)))
}

func newWanderSource(lines int, spots []wanderSpot) *wanderSource {
	return &wanderSource{
		info: acquisition.Info{Name: "test:wander", Material: "fabric", WebWidthMM: wanderW * wanderPixMM,
			MMPerCount: 0.25, CountsPerLine: 1, LinesPerBlock: 256, SpeedMPerMin: 100,
			Cameras: []acquisition.CameraInfo{{Width: wanderW, PixelMM: wanderPixMM}}},
		lines: lines, spots: spots, rng: rand.New(rand.NewPCG(5, 6)), depth: 70, side: 6,
	}
}

func (s *wanderSource) Info() acquisition.Info         { return s.info }
func (s *wanderSource) Streams() []acquisition.Stream  { return []acquisition.Stream{s} }
func (s *wanderSource) Close() error                   { return nil }
func (s *wanderSource) Camera() acquisition.CameraInfo { return s.info.Cameras[0] }
func (s *wanderSource) ReadBlock(ctx context.Context, b *acquisition.Block) error {
	if s.next >= s.lines {
		return io.EOF
	}
	n := min(s.info.LinesPerBlock, s.lines-s.next)
	b.Lines = n
	for i := range n {
		y := s.next + i
		row := b.Pix[i*wanderW : (i+1)*wanderW]
		e := wanderEdge(y)
		for x := range row {
			v := 128 + 12*math.Sin(float64(x)*2*math.Pi/6)*math.Sin(float64(y)*2*math.Pi/6) + s.rng.NormFloat64()*3
			switch {
			case x < e:
				v = 255
			case x == e:
				v = 200 // the edge's partly covered pixel
			}
			for _, sp := range s.spots {
				if x0 := e + sp.fromEdge; y >= sp.line && y < sp.line+s.side && x >= x0 && x < x0+s.side {
					v -= s.depth
				}
			}
			row[x] = uint8(max(0, min(255, math.Round(v))))
		}
		b.Counts[i] = int64(y)
	}
	s.next += n
	return nil
}

// TestThresholdDetectorFollowsAWanderingWebEdge: the threshold detector
// finds the web's edge on every line (threshold.off_web, mode auto
// deciding from the first lines), so a backlit background beside a web
// that wanders ±30 mm gives no false defect, and spots within 20 mm of
// the edge are still found, each at its CD on the roll (its distance from
// the edge, within 0.5 mm) with the edge it was measured from. With the edge search off, the same web is
// flagged along the edge: the test would fail without it.
func TestThresholdDetectorFollowsAWanderingWebEdge(t *testing.T) {
	t.Parallel()
	var spots []wanderSpot
	for i := range 12 {
		spots = append(spots, wanderSpot{line: 2000 + i*1000, fromEdge: 8 + (i%4)*20}) // 2 to 19.5 mm from the edge
	}
	run := func(mode edge.Mode) *memRoll {
		recipe, _ := DefaultRecipe("fabric")
		recipe.Threshold.OffWeb.Mode = mode
		roll := &memRoll{}
		e, err := New(Options{Recipe: recipe, Source: newWanderSource(14_000, spots), Roll: roll, Logger: zerolog.Nop()})
		if err != nil {
			t.Fatal(err)
		}
		if err := e.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		return roll
	}
	// A spot is found where the camera saw it (machine CD = roll CD + the
	// web edge); misplaced lists found spots whose roll CD is not their
	// distance from the edge, or whose recorded edge is not the web's.
	var misplaced []string
	score := func(roll *memRoll) (found []bool, falses []string) {
		found = make([]bool, len(spots))
		misplaced = nil
		for _, d := range roll.defects {
			hit := false
			for i, sp := range spots {
				x0 := float64(wanderEdge(sp.line)+sp.fromEdge) * wanderPixMM
				md := float64(sp.line) * 0.25 / 1000
				if math.Abs(d.MDStartM-md) < 0.002 && math.Abs(d.CDStartMM+d.WebEdgeMM-x0) < 1.5 {
					found[i], hit = true, true
					onRoll, edgeMM := float64(sp.fromEdge)*wanderPixMM, float64(wanderEdge(sp.line))*wanderPixMM
					if math.Abs(d.CDStartMM-onRoll) > 0.5 || math.Abs(d.WebEdgeMM-edgeMM) > 0.5 {
						misplaced = append(misplaced, fmt.Sprintf("spot %d px from the edge at line %d: CD %.2f mm on the roll (want %.2f), web edge at %.2f mm (want %.2f)",
							sp.fromEdge, sp.line, d.CDStartMM, onRoll, d.WebEdgeMM, edgeMM))
					}
				}
			}
			if !hit {
				falses = append(falses, fmt.Sprintf("MD %.4f m, CD %.1f–%.1f mm (%s)", d.MDStartM, d.CDStartMM, d.CDEndMM, d.Class))
			}
		}
		return found, falses
	}
	found, falses := score(run(edge.Auto))
	for _, f := range falses {
		t.Errorf("false defect at %s", f)
	}
	// The web wanders by ±30 mm, but each spot lies at a fixed distance
	// from its edge: so does its roll-map CD.
	for _, m := range misplaced {
		t.Error(m)
	}
	for i, ok := range found {
		if !ok {
			t.Errorf("spot %d px from the edge at line %d not found", spots[i].fromEdge, spots[i].line)
		}
	}
	// Without the edge search the background learns the moving edge: spots
	// next to it are lost or the edge is flagged.
	found, falses = score(run(edge.None))
	missed := 0
	for _, ok := range found {
		if !ok {
			missed++
		}
	}
	t.Logf("edge search off: %d of %d spots missed, %d false defects", missed, len(spots), len(falses))
	if missed+len(falses) == 0 {
		t.Error("the edge search made no difference: the test proves nothing")
	}
}

// TestThresholdOffWebRanges: the threshold detector's edge search takes
// the same ranges as the model's (model/edge.Fields), and a bad value is
// refused when the recipe loads, naming threshold.off_web's field.
func TestThresholdOffWebRanges(t *testing.T) {
	base := `{"name":"x","material":"fabric","classes":[{"name":"spot"}],"threshold":{"off_web":`
	cases := []struct {
		path, offWeb string
		ok           bool
	}{
		{"threshold.off_web.mode", `{"mode":"grey"}`, false},
		{"threshold.off_web.mode", `{"mode":"dark"}`, true},
		{"threshold.off_web.mode", `{"mode":"auto"}`, true},
		{"threshold.off_web.level", `{"level":-1}`, false},
		{"threshold.off_web.level", `{"level":255}`, true},
		{"threshold.off_web.level", `{"level":256}`, false},
		{"threshold.off_web.min_band", `{"min_band":0}`, false},
		{"threshold.off_web.min_band", `{"min_band":4096}`, true},
		{"threshold.off_web.min_band", `{"mode":"bright","min_band":5000}`, false},
		{"threshold.off_web.guard", `{"guard":-1}`, false},
		{"threshold.off_web.guard", `{"guard":64}`, true},
		{"threshold.off_web.guard", `{"guard":65}`, false},
	}
	for _, c := range cases {
		_, err := ParseRecipe("r.json", []byte(base+c.offWeb+"}}"))
		if c.ok {
			if err != nil {
				t.Errorf("%s: %s refused: %v", c.path, c.offWeb, err)
			}
			continue
		}
		if !errors.Is(err, ErrRecipe) || !strings.Contains(err.Error(), "r.json: "+c.path+" = ") || !strings.Contains(err.Error(), "must be") {
			t.Errorf("%s: %s: got %v, want ErrRecipe naming %s and its range", c.path, c.offWeb, err, c.path)
		}
	}
}

package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/webinspect/webinspect/engine/status"

	"github.com/webinspect/webinspect/rollmap"
	"github.com/webinspect/webinspect/rollmap/calibrate"
	"github.com/webinspect/webinspect/rollmap/versions"
)

const calRecipe = "abcdef0123456789"

// fakeCalibrator knows one recipe version and records what is applied.
type fakeCalibrator struct {
	mu      sync.Mutex
	applied []string
}

func (f *fakeCalibrator) Settings(ref string) (calibrate.Settings, error) {
	if ref != calRecipe {
		return calibrate.Settings{}, fmt.Errorf("recipe %s: no such version", ref)
	}
	return calibrate.Settings{Recipe: "fabric-default", RecipeVersion: calRecipe,
		Severities: []string{"minor", "major", "critical"}, MinSeverity: map[string]string{"*": "major"},
		Detectors: []calibrate.DetectorSettings{{Name: calibrate.DetectorThreshold, Field: "threshold.min_peak_contrast",
			Current: 10, Target: 0.5, TargetField: "threshold.false_alarms_per_100m"}}}, nil
}

func (f *fakeCalibrator) Apply(ref, detector string, threshold float64, by, note string) (versions.Version, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.applied = append(f.applied, fmt.Sprintf("%s %s %g %s", ref, detector, threshold, by))
	return versions.Version{Kind: versions.KindRecipe, ID: "1111222233334444", MadeBy: by, MadeAt: time.Now().UTC(), Note: note}, nil
}

// calibrationStore holds roll R-cal: 12 false alarms scoring 12..17.5 and
// 12 real defects scoring 40..62, all reviewed, and roll R-none, not
// reviewed.
func calibrationStore(t *testing.T) *rollmap.Store {
	t.Helper()
	st := openStore(t)
	for _, id := range []string{"R-cal", "R-none"} {
		roll, err := st.StartRoll(rollmap.RollMeta{ID: id, Recipe: "fabric-default", Material: "fabric", Source: "sim", WebWidthMM: 2000, Started: t0})
		if err != nil {
			t.Fatal(err)
		}
		roll.SetLength(100)
		var ds []rollmap.Defect
		for i := range 24 {
			d := rollmap.Defect{ID: int64(i + 1), MDStartM: float64(i), MDEndM: float64(i) + 0.01, CDStartMM: 100, CDEndMM: 110,
				PeakScore: 12 + float64(i)/2, Class: "knot", Severity: "major", Decision: rollmap.DecisionReview,
				Detector: rollmap.DetectorThreshold, Lane: -1, Polarity: "dark", Time: t0, RecipeVersion: calRecipe}
			if i >= 12 {
				d.PeakScore = 40 + float64(i-12)*2
			}
			ds = append(ds, d)
		}
		if err := roll.AddDefects(ds...); err != nil {
			t.Fatal(err)
		}
		if err := roll.Flush(); err != nil {
			t.Fatal(err)
		}
		if id == "R-none" {
			continue
		}
		for _, d := range ds {
			rv := rollmap.Review{DefectID: d.ID, Action: rollmap.ActionConfirm, Label: d.Class, Reviewer: "qa", Time: t0}
			if d.PeakScore < 30 {
				rv.Action, rv.Label = rollmap.ActionFalseAlarm, ""
			}
			if _, err := st.AddReview(id, rv); err != nil {
				t.Fatal(err)
			}
		}
	}
	return st
}

// TestCalibrationAPI: the curve and proposal from a roll's reviews, the
// errors naming an unknown roll or recipe and saying how many reviews are
// needed, and applying a proposal with who applied it.
func TestCalibrationAPI(t *testing.T) {
	st := calibrationStore(t)
	cal := &fakeCalibrator{}
	srv := startServer(t, st, nil, func(o *Options) { o.Calibrator = cal })
	get := func(path string) (int, calibrationBody, string) {
		res, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var raw bytes.Buffer
		raw.ReadFrom(res.Body)
		var b calibrationBody
		json.Unmarshal(raw.Bytes(), &b)
		return res.StatusCode, b, raw.String()
	}
	code, b, raw := get("/api/calibration?rolls=R-cal")
	if code != 200 || len(b.Curves) != 1 || b.Curves[0].Proposal == nil {
		t.Fatalf("GET: %d %s", code, raw)
	}
	p := b.Curves[0].Proposal
	if !(p.Threshold > 17.5 && p.Threshold <= 40) || p.Point.FalseRemoved != 12 || p.Point.ConfirmedLost != 0 || b.RecipeVersion != calRecipe {
		t.Errorf("proposal %+v", p)
	}
	if code, _, raw := get("/api/calibration?rolls=R-cal,R-gone"); code != 404 || !strings.Contains(raw, "R-gone") {
		t.Errorf("unknown roll: %d %s", code, raw)
	}
	if code, _, raw := get("/api/calibration?rolls=R-cal&recipe=ffffffffffffffff"); code != 404 || !strings.Contains(raw, "ffffffffffffffff") {
		t.Errorf("unknown recipe: %d %s", code, raw)
	}
	if code, b, raw := get("/api/calibration?rolls=R-none"); code != 200 || !strings.Contains(b.Error, "at least 5") || !strings.Contains(b.Error, "5 more false alarms") {
		t.Errorf("no reviews: %d %s", code, raw)
	}
	if code, _, raw := get("/api/calibration?roll=R-cal"); code != 400 || !strings.Contains(raw, "roll") {
		t.Errorf("unknown parameter: %d %s", code, raw)
	}
	post := func(body string) (int, string) {
		res, err := http.Post(srv.URL+"/api/calibration/apply", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var raw bytes.Buffer
		raw.ReadFrom(res.Body)
		return res.StatusCode, raw.String()
	}
	if code, raw := post(`{"recipe":"` + calRecipe + `","detector":"threshold","threshold":30}`); code != 400 || !strings.Contains(raw, "by") {
		t.Errorf("apply without who: %d %s", code, raw)
	}
	if code, raw := post(`{"recipe":"` + calRecipe + `","detector":"threshold","threshold":30,"by":"Q. Engineer"}`); code != 200 || !strings.Contains(raw, "1111222233334444") {
		t.Errorf("apply: %d %s", code, raw)
	}
	if len(cal.applied) != 1 || cal.applied[0] != calRecipe+" threshold 30 Q. Engineer" {
		t.Errorf("applied %v", cal.applied)
	}
}

// TestBrowserCalibration: the Calibration tab draws the threshold
// detector's curve with the threshold in force and the proposal, and its
// button applies the proposal as a new recipe version by the person named.
func TestBrowserCalibration(t *testing.T) {
	st := calibrationStore(t)
	cal := &fakeCalibrator{}
	stopped := func() status.Status { return status.Status{State: "stopped", DefectsByClass: map[string]int64{}} }
	srv := startServer(t, st, stopped, func(o *Options) { o.Calibrator = cal })
	ctx, pe := openPage(t, srv.URL+"/?roll=R-cal#calibrate", 60*time.Second)
	waitFor(t, ctx, 20*time.Second, `!!document.querySelector('#cal-curve-threshold svg path.kept') &&
		!!document.getElementById('cal-prop-threshold')`,
		`document.getElementById('cal-summary').textContent + ' / ' + document.getElementById('cal-error').textContent`, "the threshold curve")
	if got := eval[string](t, ctx, `document.getElementById('cal-rolls').value`); got != "R-cal" {
		t.Errorf("rolls field %q, want the roll shown", got)
	}
	prop := eval[string](t, ctx, `document.querySelector('#cal-curve-threshold .cal-proposal').textContent`)
	if !strings.Contains(prop, "threshold.min_peak_contrast = ") || !strings.Contains(prop, "removes 12 of 12") {
		t.Errorf("proposal text %q", prop)
	}
	// The proposal's line lies right of the threshold in force.
	if ok := eval[bool](t, ctx, `+document.getElementById('cal-prop-threshold').getAttribute('x1') >
		+document.querySelector('#cal-curve-threshold line.now').getAttribute('x1')`); !ok {
		t.Error("the proposal is not drawn right of the threshold in force")
	}
	screenshot(t, ctx, "calibration")
	if err := chromedp.Do(ctx, chromedp.SetValue(`#cal-by-threshold`, "Q. Engineer")); err != nil {
		t.Fatal(err)
	}
	clickElement(t, ctx, "cal-apply-threshold")
	waitFor(t, ctx, 20*time.Second, `document.getElementById('cal-applied-threshold').textContent.includes('1111222233334444')`,
		`document.getElementById('cal-applied-threshold').textContent`, "the new version named")
	cal.mu.Lock()
	applied := cal.applied
	cal.mu.Unlock()
	if len(applied) != 1 || !strings.HasSuffix(applied[0], " Q. Engineer") {
		t.Errorf("applied %v", applied)
	}
	pe.check(t)
}

// TestCalibrationRecipeIsAVersion: the API names recipes only by version
// ID, never by a path the server would read.
func TestCalibrationRecipeIsAVersion(t *testing.T) {
	st := calibrationStore(t)
	srv := startServer(t, st, nil, func(o *Options) { o.Calibrator = &fakeCalibrator{} })
	for _, path := range []string{"/api/calibration?rolls=R-cal&recipe=/etc/passwd", "/api/calibration?rolls=R-cal&recipe=fabric"} {
		res, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 400 {
			t.Errorf("%s: %d, want 400", path, res.StatusCode)
		}
	}
	res, err := http.Post(srv.URL+"/api/calibration/apply", "application/json",
		strings.NewReader(`{"recipe":"../x.json","detector":"threshold","threshold":30,"by":"qa"}`))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 400 {
		t.Errorf("apply with a path: %d, want 400", res.StatusCode)
	}
}

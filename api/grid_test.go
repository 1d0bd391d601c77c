package api

import (
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sort"
	"testing"
	"time"

	"github.com/webinspect/webinspect/rollmap"
)

// randomRoll writes a closed roll "G" of n defects over lengthM metres of a
// 2000 mm web into st.
func randomRoll(tb testing.TB, st *rollmap.Store, n int, lengthM float64, seed uint64) []rollmap.Defect {
	tb.Helper()
	rng := rand.New(rand.NewPCG(seed, 3))
	classes := []string{"hole", "stain", "knot", "slub", "crease", "streak", "other"}
	sevs := []string{"minor", "major", "critical", "S9"}
	decisions := []rollmap.Decision{rollmap.DecisionPass, rollmap.DecisionMark, rollmap.DecisionReview}
	ds := make([]rollmap.Defect, n)
	for i := range ds {
		md := lengthM * float64(i) / float64(n)
		cd := rng.Float64() * 1990
		ds[i] = rollmap.Defect{ID: int64(i + 1), MDStartM: md, MDEndM: md + rng.Float64()*0.05,
			CDStartMM: cd, CDEndMM: cd + rng.Float64()*10, AreaMM2: 5, PeakScore: 20 + rng.Float64()*80,
			MeanScore: 10, Contrast: -20, Polarity: "dark", Class: classes[rng.IntN(len(classes))],
			Severity: sevs[rng.IntN(len(sevs))], Decision: decisions[rng.IntN(len(decisions))],
			Detector: rollmap.DetectorThreshold, Lane: -1, Time: t0}
	}
	r, err := st.StartRoll(rollmap.RollMeta{ID: "G", WebWidthMM: 2000, Started: t0})
	if err != nil {
		tb.Fatal(err)
	}
	if err := r.AddDefects(ds...); err != nil {
		tb.Fatal(err)
	}
	r.SetLength(lengthM)
	if err := r.Close(); err != nil {
		tb.Fatal(err)
	}
	return ds
}

// referenceGrid aggregates the straightforward way.
func referenceGrid(ds []rollmap.Defect, from, to float64, mdBins, cdBins int, width float64, keep func(*rollmap.Defect) bool) []GridCell {
	type key struct{ md, cd int }
	counts := map[key]map[string]int{}
	worst := map[key]string{}
	for i := range ds {
		d := &ds[i]
		if d.MDEndM < from || d.MDStartM > to || !keep(d) {
			continue
		}
		md := int(math.Floor(((d.MDStartM+d.MDEndM)/2 - from) / (to - from) * float64(mdBins)))
		cd := int(math.Floor((d.CDStartMM + d.CDEndMM) / 2 / width * float64(cdBins)))
		k := key{min(max(md, 0), mdBins-1), min(max(cd, 0), cdBins-1)}
		if counts[k] == nil {
			counts[k] = map[string]int{}
			worst[k] = d.Severity
		}
		counts[k][d.Class]++
		if severityRank(d.Severity) > severityRank(worst[k]) {
			worst[k] = d.Severity
		}
	}
	var cells []GridCell
	for k, m := range counts {
		c := GridCell{MD: k.md, CD: k.cd, Severity: worst[k]}
		best := -1
		for class, n := range m {
			c.Count += n
			if n > best || n == best && class < c.Class {
				c.Class, best = class, n
			}
		}
		cells = append(cells, c)
	}
	sort.Slice(cells, func(i, j int) bool {
		return cells[i].MD < cells[j].MD || cells[i].MD == cells[j].MD && cells[i].CD < cells[j].CD
	})
	return cells
}

func TestGrid(t *testing.T) {
	st, err := rollmap.OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ds := randomRoll(t, st, 5000, 1000, 1)
	// Reviews change what review_status selects.
	for id := int64(1); id <= 300; id += 3 {
		if _, err := st.AddReview("G", rollmap.Review{DefectID: id, Action: rollmap.ActionFalseAlarm, Reviewer: "r"}); err != nil {
			t.Fatal(err)
		}
	}
	reviewed := func(d *rollmap.Defect) bool { return d.ID <= 300 && (d.ID-1)%3 == 0 }
	o := DefaultOptions()
	o.Store = st
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	h := s.Handler()
	all := func(*rollmap.Defect) bool { return true }
	for _, c := range []struct {
		q              string
		from, to       float64
		mdBins, cdBins int
		keep           func(*rollmap.Defect) bool
	}{
		{"", 0, 1000, DefaultGridMDBins, DefaultGridCDBins, all},
		{"md_bins=7&cd_bins=3", 0, 1000, 7, 3, all},
		{"md_from=100&md_to=250&md_bins=2000&cd_bins=200", 100, 250, 2000, 200, all},
		{"md_bins=40&cd_bins=10&class=stain", 0, 1000, 40, 10, func(d *rollmap.Defect) bool { return d.Class == "stain" }},
		{"md_bins=40&cd_bins=10&decision=mark&class=hole", 0, 1000, 40, 10, func(d *rollmap.Defect) bool { return d.Class == "hole" && d.Decision == rollmap.DecisionMark }},
		{"md_bins=40&cd_bins=10&review_status=false_alarm", 0, 1000, 40, 10, reviewed},
		{"md_bins=40&cd_bins=10&review_status=none", 0, 1000, 40, 10, func(d *rollmap.Defect) bool { return !reviewed(d) }},
		{"md_bins=1&cd_bins=1&md_from=999.5", 999.5, 1000, 1, 1, all},
	} {
		var g Grid
		getJSON(t, h, "GET", "/api/rolls/G/grid?"+c.q, 200, &g)
		want := referenceGrid(ds, c.from, c.to, c.mdBins, c.cdBins, 2000, c.keep)
		total := 0
		for _, w := range want {
			total += w.Count
		}
		if g.MDFromM != c.from || g.MDToM != c.to || g.MDBins != c.mdBins || g.CDBins != c.cdBins || g.WebWidthMM != 2000 || g.Total != total {
			t.Errorf("%s: header %v..%v %dx%d width %v total %d, want %v..%v %dx%d 2000 %d",
				c.q, g.MDFromM, g.MDToM, g.MDBins, g.CDBins, g.WebWidthMM, g.Total, c.from, c.to, c.mdBins, c.cdBins, total)
		}
		if !reflect.DeepEqual(g.Cells, want) {
			t.Errorf("%s: %d cells differ from the reference's %d", c.q, len(g.Cells), len(want))
		}
		if total == 0 {
			t.Errorf("%s: the reference is empty; the case proves nothing", c.q)
		}
	}
	for _, c := range []struct{ q, msg string }{
		{"md_bins=0", "md_bins: must be an integer 1..2000"},
		{"md_bins=2001", "md_bins: must be an integer 1..2000"},
		{"cd_bins=201", "cd_bins: must be an integer 1..200"},
		{"md_from=5&md_to=5", "md_to: must be > md_from"},
		{"md_from=-1", "md_from: must be a number of metres >= 0"},
		{"md_to=NaN", "md_to: must be a number"},
		{"review_status=maybe", "review_status: must be one of"},
		{"lane=1", `unknown parameter "lane"`},
	} {
		wantError(t, h, "GET", "/api/rolls/G/grid?"+c.q, 400, c.msg)
	}
	wantError(t, h, "GET", "/api/rolls/nope/grid", 404, "not found")
}

// bigRollHandler serves a store holding the closed roll "G": 10 km with
// 100 000 random defects drawn from seed.
func bigRollHandler(b *testing.B, seed uint64) http.Handler {
	b.Helper()
	st, err := rollmap.OpenStore(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	randomRoll(b, st, 100_000, 10_000, seed)
	o := DefaultOptions()
	o.Store = st
	s, err := New(o)
	if err != nil {
		b.Fatal(err)
	}
	return s.Handler()
}

// BenchmarkGrid: the zoomed-out roll map of a 10 km roll with 100 000
// defects, read from disk (a closed roll) through the HTTP handler.
func BenchmarkGrid(b *testing.B) {
	h := bigRollHandler(b, 2)
	for _, c := range []struct{ name, q string }{
		{"bins=500x50", "md_bins=500&cd_bins=50"},
		{"bins=2000x200", "md_bins=2000&cd_bins=200"},
		{"bins=2000x200/class=stain", "md_bins=2000&cd_bins=200&class=stain"},
	} {
		b.Run(c.name, func(b *testing.B) {
			target := "/api/rolls/G/grid?" + c.q
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("GET", target, nil))
			if rec.Code != 200 {
				b.Fatalf("%d %s", rec.Code, rec.Body)
			}
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			for range b.N {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest("GET", target, nil))
			}
			el := time.Since(start)
			b.ReportMetric(float64(el.Milliseconds())/float64(b.N), "ms/grid")
			b.ReportMetric(100_000*float64(b.N)/el.Seconds()/1e6, "Mdefects/s")
		})
	}
}

// BenchmarkReviewQueueAndStats: the review queue's first page and the
// review statistics of a closed 10 km roll with 100 000 defects (two
// thirds of them need review).
func BenchmarkReviewQueueAndStats(b *testing.B) {
	h := bigRollHandler(b, 4)
	for _, target := range []string{"/api/rolls/G/review-queue", "/api/rolls/G/review-stats"} {
		b.Run("path="+target[len("/api/rolls/G/"):], func(b *testing.B) {
			b.ReportAllocs()
			start := time.Now()
			for range b.N {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest("GET", target, nil))
				if rec.Code != 200 {
					b.Fatalf("%d %s", rec.Code, rec.Body)
				}
			}
			b.ReportMetric(float64(time.Since(start).Microseconds())/1000/float64(b.N), "ms/request")
		})
	}
}

package engine

import (
	"math"
	"slices"
	"strings"
	"time"

	"github.com/webinspect/webinspect/acquisition"
	"github.com/webinspect/webinspect/model/onnx"
	"github.com/webinspect/webinspect/model/teach"
	"github.com/webinspect/webinspect/rollmap"
)

// merger merges regions from all cameras and blocks into defects,
// measures them in millimetres, classifies them and decides what to do.
// It is the assembly's (see assembly.go).
//
// # When a defect is final
//
// Every camera reports a frontier: the smallest encoder count a region it
// emits later can start at. A pending defect whose MD end plus the merge
// gap lies before every camera's frontier cannot grow any more, so it is
// measured, classified and handed on. Regions of different cameras that
// overlap (the camera overlap zone) or lie within the merge gap of each
// other become one defect.
type merger struct {
	recipe    *Recipe
	info      acquisition.Info
	k         int64
	mpc       float64 // mm per count
	lineMM    float64
	gapCounts int64
	gapMM     float64
	pending   []*pendingDefect
	frontier  []int64
	rolls     *rollSegs // the rolls defects are numbered on (see rolls.go)
	done      []*pendingDefect
	free      []*pendingDefect // recycled, so the steady state allocates nothing
	out       []rollmap.Defect
	now       func() time.Time
	// reachCounts and reachMM are how far the model's map spreads a
	// defect, along (encoder counts) and across (mm); 0 without a model.
	reachCounts int64
	reachMM     float64
	// edges is the operator-side web edge, which the roll-map CD is
	// measured from (webedge.go); the assembly adds camera 0's samples.
	edges *edgeTrack
}

type pendingDefect struct {
	c0, c1   int64
	cd0, cd1 float64
	area     int64
	owned    int64
	bright   int64
	dark     int64
	sum      float64
	sumAbs   float64
	peak     float64
	score    float64 // model detector: peak anomaly score
	scoreSum float64
	scoreN   int64
	camArea  [maxCameras]int64
	detector rollmap.Detector
	// The threshold detector's part (hasT): its own extent and areas, so
	// that a defect both detectors see is not counted twice (extent).
	hasT       bool
	t0, t1     int64
	tcd0, tcd1 float64
	tArea      int64
	tOwned     int64
	tCamArea   [maxCameras]int64
}

// extent is what a defect is measured by, for its record and its class.
//
// A defect the threshold detector sees clearly (peak contrast at least
// strong grey levels) beside a taught model (whose reach is known) is
// measured on the threshold detector's pixels: the box of its parts and
// their area. The box grows to the model's box less the model's reach
// (reachC counts along, reachMM across) only where the model saw more of
// the defect than its own spread explains, and then takes the area rule
// below. The model's map spreads a defect by its patches and smoothing, so
// its box is larger than the defect; measured on it, the recipes' size
// rules put most defects in the wrong class (on the simulator's test
// rolls, 32 % right with a taught model running against 84 % without).
//
// Otherwise (a defect only the model saw, a subtle one of which the
// threshold detector saw faint fragments, which the model joins, or a
// model of unknown reach) the box is everything the detectors flagged,
// and the area that of the detector that flagged more of it, not the sum:
// a defect both detectors see covers the same pixels twice. There the
// model's box places the defect better than noisy fragments do
// (TestTaughtModelFindsSubtleDefects).
func (p *pendingDefect) extent(reachC int64, reachMM, strong float64) (c0, c1 int64, cd0, cd1 float64, area, owned int64, camArea *[maxCameras]int64) {
	c0, c1, cd0, cd1 = p.c0, p.c1, p.cd0, p.cd1
	if p.hasT && p.peak >= strong && (reachC > 0 || reachMM > 0) {
		c0, c1, cd0, cd1 = p.t0, p.t1, p.tcd0, p.tcd1
		if m0, m1 := p.c0+reachC, p.c1-reachC; m0 <= m1 {
			c0, c1 = min(c0, m0), max(c1, m1)
		}
		if m0, m1 := p.cd0+reachMM, p.cd1-reachMM; m0 <= m1 {
			cd0, cd1 = min(cd0, m0), max(cd1, m1)
		}
		if c0 == p.t0 && c1 == p.t1 && cd0 == p.tcd0 && cd1 == p.tcd1 {
			return c0, c1, cd0, cd1, p.tArea, p.tOwned, &p.tCamArea
		}
	}
	if !p.hasT || p.tArea == p.area {
		return c0, c1, cd0, cd1, p.area, p.owned, &p.camArea
	}
	mArea, mOwned := p.area-p.tArea, p.owned-p.tOwned
	if p.tArea >= mArea {
		return c0, c1, cd0, cd1, p.tArea, p.tOwned, &p.tCamArea
	}
	return c0, c1, cd0, cd1, mArea, mOwned, &p.camArea
}

func newMerger(r *Recipe, info acquisition.Info) *merger {
	k := int64(max(info.CountsPerLine, 1))
	a := &merger{
		recipe:   r,
		info:     info,
		k:        k,
		mpc:      info.MMPerCount,
		lineMM:   info.LineMM(),
		gapMM:    r.Assembly.MergeGapMM,
		frontier: make([]int64, len(info.Cameras)),
		now:      time.Now,
		edges:    &edgeTrack{},
	}
	a.gapCounts = int64(math.Ceil(r.Assembly.MergeGapMM / info.MMPerCount))
	for i := range a.frontier {
		a.frontier[i] = math.MinInt64
	}
	// Pending defects are recycled; start with room for a busy stretch.
	pool := make([]pendingDefect, 256)
	for i := range pool {
		a.free = append(a.free, &pool[i])
	}
	a.pending = make([]*pendingDefect, 0, 256)
	a.done = make([]*pendingDefect, 0, 256)
	a.out = make([]rollmap.Defect, 0, 256)
	return a
}

// add merges one region into the pending defects.
func (a *merger) add(r region) {
	var p *pendingDefect
	if n := len(a.free); n > 0 {
		p, a.free = a.free[n-1], a.free[:n-1]
	} else {
		p = new(pendingDefect)
	}
	*p = pendingDefect{
		c0: r.c0, c1: r.c1, cd0: r.cd0, cd1: r.cd1,
		area: r.area, owned: r.owned, bright: r.bright, dark: r.dark,
		sum: r.sum, sumAbs: r.sumAbs, peak: r.peak, detector: r.detectorID,
		score: r.score, scoreSum: r.scoreSum, scoreN: r.scoreArea,
	}
	if r.cam >= 0 && r.cam < len(p.camArea) {
		p.camArea[r.cam] = r.area
	}
	if r.scoreArea == 0 { // a threshold detector region
		p.hasT = true
		p.t0, p.t1, p.tcd0, p.tcd1, p.tArea, p.tOwned = r.c0, r.c1, r.cd0, r.cd1, r.area, r.owned
		p.tCamArea = p.camArea
	}
	for {
		j := slices.IndexFunc(a.pending, func(q *pendingDefect) bool { return a.near(p, q) })
		if j < 0 {
			break
		}
		p.merge(a.pending[j])
		a.free = append(a.free, a.pending[j])
		a.pending = slices.Delete(a.pending, j, j+1)
	}
	a.pending = append(a.pending, p)
}

func (a *merger) near(p, q *pendingDefect) bool {
	return p.c0 <= q.c1+a.k+a.gapCounts && q.c0 <= p.c1+a.k+a.gapCounts &&
		p.cd0 <= q.cd1+a.gapMM && q.cd0 <= p.cd1+a.gapMM
}

func (p *pendingDefect) merge(q *pendingDefect) {
	p.c0, p.c1 = min(p.c0, q.c0), max(p.c1, q.c1)
	p.cd0, p.cd1 = min(p.cd0, q.cd0), max(p.cd1, q.cd1)
	p.area += q.area
	p.owned += q.owned
	p.bright += q.bright
	p.dark += q.dark
	p.sum += q.sum
	p.sumAbs += q.sumAbs
	p.peak = max(p.peak, q.peak)
	p.score = max(p.score, q.score)
	p.scoreSum += q.scoreSum
	p.scoreN += q.scoreN
	for i := range p.camArea {
		p.camArea[i] += q.camArea[i]
	}
	switch {
	case !q.hasT:
	case !p.hasT:
		p.hasT = true
		p.t0, p.t1, p.tcd0, p.tcd1, p.tArea, p.tOwned, p.tCamArea = q.t0, q.t1, q.tcd0, q.tcd1, q.tArea, q.tOwned, q.tCamArea
	default:
		p.t0, p.t1 = min(p.t0, q.t0), max(p.t1, q.t1)
		p.tcd0, p.tcd1 = min(p.tcd0, q.tcd0), max(p.tcd1, q.tcd1)
		p.tArea += q.tArea
		p.tOwned += q.tOwned
		for i := range p.tCamArea {
			p.tCamArea[i] += q.tCamArea[i]
		}
	}
	p.detector = joinDetectors(p.detector, q.detector)
}

// joinDetectors names the detectors of two merged defects: each detector
// once, the threshold detector first ("threshold", "onnx:<model>" or
// "threshold+onnx:<model>"), whatever order the parts were merged in. It
// returns one of its arguments when that already names both, so the
// steady state does not allocate.
func joinDetectors(pd, qd rollmap.Detector) rollmap.Detector {
	p, q := string(pd), string(qd)
	switch {
	case q == "" || p == q:
		return pd
	case p == "":
		return qd
	}
	model := modelPart(p)
	if model == "" {
		model = modelPart(q)
	}
	if !hasThreshold(p) && !hasThreshold(q) || model == "" {
		return pd // one model, or only the threshold detector
	}
	both := func(s string) bool { return hasThreshold(s) && modelPart(s) == model }
	switch {
	case both(p):
		return pd
	case both(q):
		return qd
	}
	return rollmap.Detector(detectorThreshold + detectorJoin + model)
}

// hasThreshold reports whether detector name s includes the threshold detector.
func hasThreshold(s string) bool {
	return s == detectorThreshold || strings.HasPrefix(s, detectorThreshold+detectorJoin)
}

// modelPart is the model detector's part of detector name s ("" if none).
func modelPart(s string) string {
	if s == detectorThreshold {
		return ""
	}
	return strings.TrimPrefix(s, detectorThreshold+detectorJoin)
}

// setFrontier records camera cam's frontier.
func (a *merger) setFrontier(cam int, f int64) {
	if cam >= 0 && cam < len(a.frontier) && f > a.frontier[cam] {
		a.frontier[cam] = f
	}
}

// startsBefore reports whether a pending defect starts before count c.
func (a *merger) startsBefore(c int64) bool {
	for _, p := range a.pending {
		if p.c0 < c {
			return true
		}
	}
	return false
}

// minFrontier is the lowest count any camera can still report a region at.
func (a *merger) minFrontier() int64 {
	f := int64(math.MaxInt64)
	for _, x := range a.frontier {
		f = min(f, x)
	}
	return f
}

// finalize decides every pending defect that can no longer grow and
// returns them in MD order. The returned slice is reused by the next call.
func (a *merger) finalize() []rollmap.Defect {
	f := a.minFrontier()
	a.out = a.out[:0]
	keep := a.pending[:0]
	done := a.done[:0]
	for _, p := range a.pending {
		if f == math.MaxInt64 || p.c1+a.k+a.gapCounts < f {
			done = append(done, p)
		} else {
			keep = append(keep, p)
		}
	}
	clear(a.pending[len(keep):])
	a.pending = keep
	slices.SortFunc(done, func(x, y *pendingDefect) int { return cmpInt64(x.c0, y.c0) })
	for _, p := range done {
		if d, ok := a.measure(p); ok {
			a.out = append(a.out, d)
		}
		a.free = append(a.free, p)
	}
	clear(done)
	a.done = done[:0]
	return a.out
}

// modelScores records in d what the model detector computed over p (the
// defect classifier's model features), nothing when it did not flag p:
// its peak, its mean over the pixels it flagged and their area in the
// owned strips (the model's part of the merged areas; pxArea mm² each).
// A defect only the model saw has its anomaly scores as its scores.
func (p *pendingDefect) modelScores(d *rollmap.Defect, pxArea float64) {
	if p.scoreN == 0 {
		return
	}
	d.ModelScore = p.score
	d.ModelMeanScore = p.scoreSum / float64(p.scoreN)
	d.ModelAreaMM2 = float64(p.owned-p.tOwned) * pxArea
	if p.bright+p.dark == 0 {
		d.PeakScore, d.MeanScore = p.score, d.ModelMeanScore
	}
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// aboveFloors reports whether a detector that saw p scored it at or above
// its floor (Recipe.aboveFloors).
func (a *merger) aboveFloors(p *pendingDefect) bool {
	return a.recipe.aboveFloors(p.bright+p.dark > 0, p.peak, p.scoreN > 0, p.score)
}

// detected reports whether p reaches the recipe's detection limit and
// floors. The limit is applied to what the detectors flagged (the box of
// every part), not to the measurement: a defect the model flagged over
// 2 × 2 mm is not dropped because the threshold detector's pixels of it,
// which measure it (extent), span one line.
func (a *merger) detected(p *pendingDefect) bool {
	flagged := Measure{LengthMM: float64(p.c1+a.k-p.c0) * a.mpc, WidthMM: p.cd1 - p.cd0}
	return flagged.SizeMM() >= a.recipe.Threshold.MinSizeMM && a.aboveFloors(p)
}

// measure turns a pending defect into a roll-map record, or reports false
// when it is below the recipe's detection limit.
func (a *merger) measure(p *pendingDefect) (rollmap.Defect, bool) {
	c0, c1, cd0, cd1, area, owned, camArea := p.extent(a.reachCounts, a.reachMM, strongContrast*a.recipe.Threshold.MinContrast)
	m := Measure{
		LengthMM: float64(c1+a.k-c0) * a.mpc,
		WidthMM:  cd1 - cd0,
		PeakAbs:  p.peak,
	}
	if !a.detected(p) {
		return rollmap.Defect{}, false
	}
	if owned == 0 {
		owned = area
	}
	pxMM := 0.0
	if len(a.info.Cameras) > 0 {
		pxMM = a.info.Cameras[0].PixelMM
	}
	m.AreaMM2 = float64(owned) * pxMM * a.lineMM
	if tArea := p.bright + p.dark; tArea > 0 {
		m.MeanAbs = p.sumAbs / float64(tArea)
	}
	// Polarity and contrast come from the threshold detector's pixels; a
	// defect only the model saw has neither.
	tArea := p.bright + p.dark
	switch {
	case tArea > 0 && float64(p.bright) >= 0.8*float64(tArea):
		m.Polarity = "bright"
	case tArea > 0 && float64(p.dark) >= 0.8*float64(tArea):
		m.Polarity = "dark"
	default:
		m.Polarity = "mixed"
	}
	class, severity, decision := a.recipe.Classify(m)
	cam := 0
	for i, v := range camArea {
		if v > camArea[cam] {
			cam = i
		}
	}
	// The roll is the one the defect's first flagged line is on (p.c0:
	// also where the roll change logic keeps it), its position its
	// measured extent.
	seg := a.rolls.segFor(p.c0)
	seg.nextID++
	// On the roll, CD is measured from the web edge found beside the
	// defect (webedge.go); the machine CD is CD + WebEdgeMM.
	edgeMM := a.edges.edgeAt(c0)
	cd0, cd1 = cd0-edgeMM, cd1-edgeMM
	d := rollmap.Defect{
		RollID:       seg.w.ID(),
		ID:           seg.nextID,
		MDStartM:     seg.mdM(c0, a.mpc),
		MDEndM:       seg.mdM(c1+a.k, a.mpc),
		CDStartMM:    math.Max(cd0, 0),
		CDEndMM:      cd1,
		AreaMM2:      m.AreaMM2,
		PeakScore:    p.peak,
		MeanScore:    p.sumAbs / float64(max(tArea, 1)),
		Contrast:     p.sum / float64(max(tArea, 1)),
		Polarity:     m.Polarity,
		Class:        class,
		Severity:     severity,
		Decision:     decision,
		Detector:     p.detector,
		Camera:       cam,
		Lane:         -1,
		WebEdgeMM:    edgeMM,
		Time:         a.now().UTC(),
		EncoderCount: c0,
	}
	p.modelScores(&d, pxMM*a.lineMM)
	if len(a.recipe.Lanes) > 0 {
		d.Lane = rollmap.AssignLane(a.recipe.Lanes, d)
	}
	return d, true
}

// strongContrast is how many times the recipe's minimum contrast a
// defect's peak contrast must reach for the threshold detector's pixels
// to measure it (extent). reachFactor is how many times its context a
// taught model's map is taken to spread a defect (withModelReach). Chosen
// on the simulator's fabric: 2 and 1.5 give the rules 84 % of classes
// right with a taught model, as without one, and leave the subtle
// defects' positions as they were; a reach of 1 left 73 %, 0.5 14 %, and
// a strong contrast of 3 79 % (bench/RESULTS.md, fifth session).
const (
	strongContrast = 2.0
	reachFactor    = 1.5
)

// withModelReach sets how far model m's map spreads a defect: its context
// (the patch and smoothing reach at the coarsest scale, in model pixels)
// times its binning, in camera lines and pixels. A model without a taught
// sidecar spreads it by an unknown amount: 0, so its whole box counts
// (as without a model, m nil).
func (a *merger) withModelReach(m *onnx.Model) *merger {
	if m == nil {
		return a
	}
	prep, err := teach.PrepFromSidecar(m.Sidecar())
	if err != nil || prep.Context <= 0 {
		return a
	}
	px := float64(prep.Context*max(prep.Bin, 1)) * reachFactor
	a.reachCounts = int64(px) * a.k
	if len(a.info.Cameras) > 0 {
		a.reachMM = px * a.info.Cameras[0].PixelMM
	}
	return a
}

package api

import (
	"bytes"
	"cmp"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"image"
	"image/draw"
	"image/png"
	"io"
	"math"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/go-pdf/fpdf"

	"github.com/webinspect/webinspect/rollmap"
)

// ReportStore is what a roll report reads: the roll, its defects and its
// summary (lanes and grading scheme); reviews too when the store is also a
// ReviewStore. *rollmap.Store implements it.
type ReportStore interface {
	RollStore
	SummaryStore
}

var _ ReportStore = (*rollmap.Store)(nil)

// Report formats.
const (
	ReportHTML = "html"
	ReportPDF  = "pdf"
)

// ErrReportFormat is returned by WriteReport for a format other than
// ReportHTML and ReportPDF.
var ErrReportFormat = errors.New("unknown report format")

// Sizes of a report.
const (
	reportWorst       = 6  // worst defects shown with their crops
	reportParetoBars  = 10 // classes in the Pareto chart (the rest summed as "others")
	reportDensityBins = 60 // bins of the density strip
)

// othersColour is the Pareto bar of the classes summed as "others".
const othersColour = "#aab4c3"

// pdfCompress is off in tests, so the PDF's text can be searched.
var pdfCompress = true

// LastContextChange is the newest change of the roll's production
// context, or nil.
func (d *reportData) LastContextChange() *rollmap.ContextChange {
	if n := len(d.Info.ContextHistory); n > 0 {
		return &d.Info.ContextHistory[n-1]
	}
	return nil
}

// reportData is everything a report shows, computed once for both formats.
type reportData struct {
	Info        rollmap.RollInfo
	Generated   time.Time
	Grades      []rollmap.LaneGrade
	GradeNote   string // how the grades were obtained, or why there are none
	Banded      bool   // the scheme names grades (bands): a Grade column beside pass/FAIL
	AltUnit     string // the density's unit in the other unit system ("" when there is none)
	AltFactor   float64
	NotCounted  []notCounted // the roll's defects no lane counted, by reason
	NotCountedN int
	Lanes       []rollmap.Lane
	Counted     int // defects shown in the charts (false alarms excluded)
	Pareto      []paretoBar
	Density     []int
	DensityMax  int
	BinM        float64
	Worst       []worstDefect
	ImagesNote  string
	Stats       ReviewStats
	// Versions names the recipe and model versions that decided the
	// roll's defects, with how many each ("" for a roll written before
	// versions were recorded).
	Versions string
}

// notCounted is a number of defects the lane grades leave out, and why.
type notCounted struct {
	Why string
	N   int
}

type paretoBar struct {
	Class  string
	Style  ClassStyle    // the class's colour and shape, as on the roll map
	Glyph  template.HTML // the class's glyph as SVG (empty for "others")
	Count  int
	Pct    float64 // of Counted
	CumPct float64
}

type worstDefect struct {
	D       rollmap.Defect
	Class   string       // after review ("knot (was slub)" when reclassified)
	Lane    string       // the lane's name, or its index
	W, H    int          // crop size in pixels
	PNG     []byte       // the crop, re-encoded as 8-bit PNG; nil if unavailable
	DataURI template.URL // the crop as a data: URI for the HTML report
	Missing string       // why the crop is not shown
}

// WriteReport writes the one-page report of roll rollID to w as format
// ReportHTML or ReportPDF: the roll's identity, length and dates; the
// grade of each lane (recomputed with the reviews when the roll has a
// grading scheme); a Pareto chart of defects by class and their density
// along the roll (false alarms excluded, reclassified defects under their
// new class); the worst defects with their crops from images (nil: crops
// are skipped, and the report says so); and the review summary. Errors of
// the store are returned before anything is written.
func WriteReport(w io.Writer, format string, store ReportStore, images ImageSource, rollID string) error {
	if format != ReportHTML && format != ReportPDF {
		return fmt.Errorf("api: report: %w %q (want %s or %s)", ErrReportFormat, format, ReportHTML, ReportPDF)
	}
	data, err := buildReport(store, images, rollID)
	if err != nil {
		return err
	}
	if format == ReportHTML {
		return writeReportHTML(w, data)
	}
	return writeReportPDF(w, data)
}

// effectiveClass is the class after review.
func effectiveClass(d *rollmap.Defect) string { return d.ClassAfterReview() }

// versionsText lists the recipe and model versions of ds, in order of
// first appearance, with their defect counts: "recipe 3f9a… (12), model
// 0a1b… (12)"; "threshold only" stands for defects without a model.
func versionsText(ds []rollmap.Defect) string {
	type kv struct {
		v string
		n int
	}
	var recipes, models []kv
	count := func(list []kv, v string) []kv {
		for i := range list {
			if list[i].v == v {
				list[i].n++
				return list
			}
		}
		return append(list, kv{v, 1})
	}
	any := false
	for i := range ds {
		if ds[i].RecipeVersion != "" || ds[i].ModelVersion != "" {
			any = true
		}
		recipes = count(recipes, ds[i].RecipeVersion)
		models = count(models, ds[i].ModelVersion)
	}
	if !any {
		return ""
	}
	var parts []string
	for _, r := range recipes {
		parts = append(parts, fmt.Sprintf("recipe %s (%d)", cmp.Or(r.v, "unrecorded"), r.n))
	}
	for _, m := range models {
		parts = append(parts, fmt.Sprintf("model %s (%d)", cmp.Or(m.v, "none: threshold only"), m.n))
	}
	return strings.Join(parts, ", ")
}

func decisionRank(decision rollmap.Decision) int {
	switch decision {
	case rollmap.DecisionMark:
		return 2
	case rollmap.DecisionReview:
		return 1
	}
	return 0
}

func buildReport(store ReportStore, images ImageSource, id string) (*reportData, error) {
	info, err := store.Roll(id)
	if err != nil {
		return nil, err
	}
	ds, err := allDefects(store, id, rollmap.Query{})
	if err != nil {
		return nil, err
	}
	sum, err := store.Summary(id)
	if err != nil && sum.ID == "" {
		return nil, err
	}
	var revs []rollmap.Review
	if rs, ok := store.(ReviewStore); ok {
		if revs, err = rs.Reviews(id); err != nil && len(revs) == 0 {
			return nil, err
		}
	}
	rd := &reportData{Info: info, Generated: time.Now().UTC(), Stats: computeReviewStats(id, info.LengthM, ds, revs),
		Versions: versionsText(ds)}

	// Grades: recomputed so that reviews count (a false alarm earns no
	// points, a reclassified defect counts under its new class).
	switch {
	case sum.Grading == nil || len(sum.Lanes) == 0:
		rd.GradeNote = "Not graded: the recipe defines no lanes or no grading scheme."
	case info.LengthM <= 0:
		rd.GradeNote = "Not graded: the roll has no length."
	default:
		g, err := rollmap.GradeRoll(*sum.Grading, sum.Lanes, info.LengthM, ds)
		if err != nil {
			rd.GradeNote = "Not graded: " + err.Error()
		} else {
			rd.Grades = g
			rd.Banded = len(sum.Grading.Grades) > 0
			rd.Lanes = sum.Lanes
			rd.GradeNote = fmt.Sprintf("Scheme %s, limit %g %s; %d reviews taken into account.",
				sum.Grading.Kind, sum.Grading.PassLimit, g[0].Unit, len(revs))
			// 4-point densities in both unit systems, the recipe's first.
			switch g[0].Unit {
			case rollmap.UnitPoints100yd2:
				rd.AltUnit, rd.AltFactor = rollmap.UnitPoints100m2, 1/m2PerYd2
			case rollmap.UnitPoints100m2:
				rd.AltUnit, rd.AltFactor = rollmap.UnitPoints100yd2, m2PerYd2
			}
			rd.NotCounted, rd.NotCountedN = uncounted(*sum.Grading, sum.Lanes, ds)
		}
	}

	// Pareto and density over the defects that are not false alarms.
	byClass := map[string]int{}
	length := info.LengthM
	for i := range ds {
		length = max(length, ds[i].MDEndM)
	}
	rd.BinM = math.Max(length, 1) / reportDensityBins
	rd.Density = make([]int, reportDensityBins)
	var real []*rollmap.Defect
	for i := range ds {
		d := &ds[i]
		if d.ReviewStatus == rollmap.ReviewFalseAlarm {
			continue
		}
		real = append(real, d)
		byClass[effectiveClass(d)]++
		b := min(reportDensityBins-1, max(0, int((d.MDStartM+d.MDEndM)/2/rd.BinM)))
		rd.Density[b]++
	}
	rd.Counted = len(real)
	rd.DensityMax = slices.Max(rd.Density)
	for c, n := range byClass {
		rd.Pareto = append(rd.Pareto, paretoBar{Class: c, Style: StyleOf(c), Count: n})
	}
	slices.SortFunc(rd.Pareto, func(a, b paretoBar) int {
		if c := cmp.Compare(b.Count, a.Count); c != 0 {
			return c
		}
		return cmp.Compare(a.Class, b.Class)
	})
	if len(rd.Pareto) > reportParetoBars {
		rest := paretoBar{Class: fmt.Sprintf("%d others", len(rd.Pareto)-reportParetoBars+1), Style: ClassStyle{Colour: othersColour}}
		for _, b := range rd.Pareto[reportParetoBars-1:] {
			rest.Count += b.Count
		}
		rd.Pareto = append(rd.Pareto[:reportParetoBars-1], rest)
	}
	cum := 0
	for i := range rd.Pareto {
		if i < len(rd.Pareto)-1 || len(byClass) <= reportParetoBars {
			rd.Pareto[i].Glyph = template.HTML(svgGlyph(rd.Pareto[i].Style, 74, float64(i)*14+5.5, 4))
		}
		cum += rd.Pareto[i].Count
		rd.Pareto[i].Pct = 100 * float64(rd.Pareto[i].Count) / float64(rd.Counted)
		rd.Pareto[i].CumPct = 100 * float64(cum) / float64(rd.Counted)
	}

	// The worst defects: by severity, then decision, then area.
	slices.SortStableFunc(real, func(a, b *rollmap.Defect) int {
		if c := cmp.Compare(severityRank(b.Severity), severityRank(a.Severity)); c != 0 {
			return c
		}
		if c := cmp.Compare(decisionRank(b.Decision), decisionRank(a.Decision)); c != 0 {
			return c
		}
		return cmp.Compare(b.AreaMM2, a.AreaMM2)
	})
	missing := 0
	for _, d := range real[:min(len(real), reportWorst)] {
		wd := worstDefect{D: *d, Class: d.Class, Lane: fmt.Sprintf("L%d", d.Lane+1)} // as the UI names lanes
		if c := effectiveClass(d); c != d.Class {
			wd.Class = c + " (was " + d.Class + ")"
		}
		if d.Lane >= 0 && d.Lane < len(sum.Lanes) && sum.Lanes[d.Lane].Name != "" {
			wd.Lane = sum.Lanes[d.Lane].Name
		} else if d.Lane == rollmap.NoLane {
			wd.Lane = "none"
		}
		wd.PNG, wd.W, wd.H, wd.Missing = loadCrop(images, d.ImageRef)
		if wd.PNG != nil {
			wd.DataURI = template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(wd.PNG))
		} else {
			missing++
		}
		rd.Worst = append(rd.Worst, wd)
	}
	switch {
	case images == nil && len(rd.Worst) > 0:
		rd.ImagesNote = "Crops not shown: no image archive is attached."
	case missing > 0:
		rd.ImagesNote = fmt.Sprintf("%d of %d crops unavailable (see each defect).", missing, len(rd.Worst))
	}
	return rd, nil
}

// m2PerYd2 is the area of a square yard in m².
const m2PerYd2 = 0.9144 * 0.9144

// uncounted sorts the defects the lane grades leave out by reason, so the
// lane table's Defects column adds up to the roll's defects.
func uncounted(g rollmap.GradingScheme, lanes []rollmap.Lane, ds []rollmap.Defect) ([]notCounted, int) {
	var fa, dec, cls, outside int
	for i := range ds {
		d := &ds[i]
		switch {
		case d.ReviewStatus == rollmap.ReviewFalseAlarm:
			fa++
		case len(g.Decisions) == 0 && d.Decision == "pass" || len(g.Decisions) > 0 && !slices.Contains(g.Decisions, d.Decision):
			dec++
		case len(g.Classes) > 0 && !slices.Contains(g.Classes, effectiveClass(d)):
			cls++
		case rollmap.AssignLane(lanes, *d) == rollmap.NoLane:
			outside++
		}
	}
	decWhy := "decision pass (not graded)"
	if len(g.Decisions) > 0 {
		decWhy = "decision not graded (the scheme grades " + joinDecisions(g.Decisions) + ")"
	}
	var out []notCounted
	for _, n := range []notCounted{{decWhy, dec}, {"reviewed as false alarm", fa}, {"class not graded", cls}, {"outside every lane", outside}} {
		if n.N > 0 {
			out = append(out, n)
		}
	}
	return out, fa + dec + cls + outside
}

// loadCrop reads crop ref and re-encodes it as a non-interlaced 8-bit PNG
// (what the PDF writer takes), or says why it cannot be shown.
func loadCrop(images ImageSource, ref string) (b []byte, w, h int, missing string) {
	switch {
	case images == nil:
		return nil, 0, 0, "no image archive"
	case ref == "":
		return nil, 0, 0, "no crop recorded"
	case !ValidImageRef(ref):
		return nil, 0, 0, "bad image reference"
	}
	rc, err := images.Open(ref)
	if err != nil {
		if imageMissing(err) {
			return nil, 0, 0, "crop not in the archive"
		}
		return nil, 0, 0, "crop unreadable"
	}
	defer rc.Close()
	img, err := png.Decode(io.LimitReader(rc, maxImageBytes))
	if err != nil || img.Bounds().Empty() {
		return nil, 0, 0, "crop is not a readable PNG"
	}
	var out image.Image
	switch img.(type) {
	case *image.Gray, *image.Gray16:
		g := image.NewGray(img.Bounds())
		draw.Draw(g, g.Rect, img, img.Bounds().Min, draw.Src)
		out = g
	default:
		c := image.NewRGBA(img.Bounds())
		draw.Draw(c, c.Rect, image.White, image.Point{}, draw.Src)
		draw.Draw(c, c.Rect, img, img.Bounds().Min, draw.Over)
		out = c
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, out); err != nil {
		return nil, 0, 0, "crop could not be encoded"
	}
	return buf.Bytes(), img.Bounds().Dx(), img.Bounds().Dy(), ""
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

func fmtRate(v *float64) string {
	if v == nil {
		return "—"
	}
	return fmt.Sprintf("%.1f %%", 100**v)
}

func fmtLoad(v *float64) string {
	if v == nil {
		return "—"
	}
	return fmt.Sprintf("%.2f", *v)
}

func passText(pass bool) string {
	if pass {
		return "pass"
	}
	return "FAIL"
}

var reportFuncs = template.FuncMap{
	"time": fmtTime,
	"rate": fmtRate,
	"load": fmtLoad,
	"pass": passText,
	"f1":   func(v float64) string { return fmt.Sprintf("%.1f", v) },
	"f2":   func(v float64) string { return fmt.Sprintf("%.2f", v) },
	"f3":   func(v float64) string { return fmt.Sprintf("%.3f", v) },
	// barW scales a count to a width of at most full.
	"barW": func(n, maxN int, full float64) string {
		if maxN <= 0 {
			return "0"
		}
		return fmt.Sprintf("%.1f", full*float64(n)/float64(maxN))
	},
	// barY is the top of a bar of height barW standing on y = full.
	"barY": func(n, maxN int, full float64) string {
		if maxN <= 0 {
			return fmt.Sprintf("%.1f", full)
		}
		return fmt.Sprintf("%.1f", full-full*float64(n)/float64(maxN))
	},
	"mul":  func(a int, b float64) string { return fmt.Sprintf("%.1f", float64(a)*b) },
	"mulf": func(a, b float64) float64 { return a * b },
	"maxP": func(bars []paretoBar) int { return bars[0].Count },
}

var reportTmpl = template.Must(template.New("report").Funcs(reportFuncs).Parse(reportHTML))

func writeReportHTML(w io.Writer, d *reportData) error {
	var buf bytes.Buffer // render fully first: a template error writes nothing
	if err := reportTmpl.Execute(&buf, d); err != nil {
		return fmt.Errorf("api: report %s: %w", d.Info.ID, err)
	}
	_, err := w.Write(buf.Bytes())
	return err
}

// reportHTML is the printable page: A4, one page, no script, inline style
// and SVG charts.
const reportHTML = `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Roll report {{.Info.ID}}</title>
<style>
@page { size: A4; margin: 12mm; }
body { font: 10pt/1.3 system-ui, sans-serif; color: #111; margin: 0 auto; max-width: 186mm; }
h1 { font-size: 16pt; margin: 0 0 2mm; } h2 { font-size: 11pt; margin: 4mm 0 1mm; border-bottom: 1px solid #999; }
table { border-collapse: collapse; width: 100%; } th, td { text-align: left; padding: 0.5mm 1.5mm; border-bottom: 1px solid #ddd; }
td.n, th.n { text-align: right; } .fail { color: #b00; font-weight: bold; } .note { color: #555; font-size: 9pt; }
.charts { display: flex; gap: 4mm; } .charts > div { flex: 1; }
.worst { display: grid; grid-template-columns: 1fr 1fr 1fr; gap: 2mm; }
.worst div { border: 1px solid #ccc; padding: 1mm; font-size: 8.5pt; }
.worst img { width: 24mm; height: 24mm; object-fit: contain; float: left; margin-right: 1.5mm; image-rendering: pixelated; background: #eee; }
.nocrop { width: 24mm; height: 24mm; float: left; margin-right: 1.5mm; background: #eee; font-size: 7pt; color: #666; display: flex; align-items: center; text-align: center; }
</style></head><body>
<h1>Roll report {{.Info.ID}}</h1>
<table class="meta"><tr><th>Recipe</th><td>{{.Info.Recipe}}</td><th>Material</th><td>{{.Info.Material}}</td><th>Length</th><td>{{f1 .Info.LengthM}} m</td></tr>
<tr><th>Started</th><td>{{time .Info.Started}}</td><th>Ended</th><td>{{if .Info.Open}}open{{else}}{{time .Info.Ended}}{{end}}</td><th>Web width</th><td>{{f1 .Info.WebWidthMM}} mm</td></tr>
<tr><th>Defects</th><td>{{.Info.Defects}}</td><th>Uninspected</th><td>{{f2 .Info.UninspectedM}} m</td><th>Source</th><td>{{.Info.Source}}</td></tr>
{{if not .Info.Context.IsZero}}{{with .Info.Context}}<tr class="context"><th>Product</th><td>{{.Product}}</td><th>Lot</th><td>{{.Lot}}</td><th>Supplier</th><td>{{.Supplier}}</td></tr>
<tr class="context"><th>Shift</th><td>{{.Shift}}</td><th>Operator</th><td>{{.Operator}}</td><th>Order</th><td>{{.Order}}</td></tr>{{end}}{{end}}
{{with .LastContextChange}}<tr class="context"><th>Context set</th><td colspan="5">{{time .Time}} by {{.By}}</td></tr>{{end}}
{{with .Versions}}<tr class="versions"><th>Versions</th><td colspan="5">{{.}}</td></tr>{{end}}</table>

<h2>Grade per lane</h2>
{{if .Grades}}{{$d := .}}<table class="grades"><tr><th>Lane</th><th class="n">Width mm</th><th class="n">Defects</th><th class="n">Points</th><th class="n">Density ({{(index .Grades 0).Unit}})</th>{{if .AltUnit}}<th class="n">Density ({{.AltUnit}})</th>{{end}}{{if .Banded}}<th>Grade</th>{{end}}<th>Result</th></tr>
{{range .Grades}}<tr><td>{{.Name}}</td><td class="n">{{f1 .WidthMM}}</td><td class="n">{{.Defects}}</td><td class="n">{{.Points}}</td><td class="n">{{f2 .Density}}</td>{{if $d.AltUnit}}<td class="n">{{f2 (mulf .Density $d.AltFactor)}}</td>{{end}}{{if $d.Banded}}<td>{{.Grade}}</td>{{end}}<td{{if not .Pass}} class="fail"{{end}}>{{pass .Pass}}</td></tr>
{{end}}{{range .NotCounted}}<tr class="uncounted"><td>not graded</td><td></td><td class="n">{{.N}}</td><td colspan="4" class="note">{{.Why}}</td></tr>
{{end}}<tr class="total"><th>Roll</th><td></td><th class="n">{{.Info.Defects}}</th><td colspan="4" class="note">every defect of the roll{{if .NotCountedN}}: {{.NotCountedN}} not graded (above){{end}}</td></tr></table>{{end}}
<p class="note">{{.GradeNote}}</p>

<div class="charts"><div>
<h2>Defects by class (Pareto)</h2>
{{if .Pareto}}{{$max := maxP .Pareto}}<svg width="100%" viewBox="0 0 300 {{mul (len .Pareto) 14}}" role="img" aria-label="defects by class">
{{range $i, $b := .Pareto}}<text x="0" y="{{mul $i 14}}" dy="10" font-size="9">{{$b.Class}}</text>
{{$b.Glyph}}<rect x="80" y="{{mul $i 14}}" height="11" width="{{barW $b.Count $max 160}}" fill="{{$b.Style.Colour}}" data-class="{{$b.Class}}"></rect>
<text x="244" y="{{mul $i 14}}" dy="10" font-size="9">{{$b.Count}} · {{f1 $b.CumPct}} %</text>
{{end}}</svg>{{else}}<p class="note">No defects.</p>{{end}}
<p class="note">{{.Counted}} defects, false alarms excluded; the last figure is the cumulative share.</p>
</div><div>
<h2>Density along the roll</h2>
<svg width="100%" viewBox="-24 0 324 90" role="img" aria-label="defects per bin along the roll">
<line x1="0" y1="80" x2="300" y2="80" stroke="#999" stroke-width="0.5"></line>
<line class="yaxis" x1="0" y1="0" x2="0" y2="80" stroke="#999" stroke-width="0.5"></line>
<text class="ytick" x="-2" y="80" font-size="7" text-anchor="end">0</text><text class="ytick" x="-2" y="6" font-size="7" text-anchor="end">{{.DensityMax}}</text>
<text x="-18" y="40" font-size="7" text-anchor="middle" transform="rotate(-90 -18 40)">defects</text>
{{$dm := .DensityMax}}{{range $i, $n := .Density}}{{if $n}}<rect x="{{mul $i 5}}" y="{{barY $n $dm 80}}" width="4" height="{{barW $n $dm 80}}" fill="#c0504d"></rect>
{{end}}{{end}}<text x="0" y="89" font-size="8">0 m</text><text x="300" y="89" font-size="8" text-anchor="end">{{f1 .Info.LengthM}} m</text></svg>
<p class="note">Defects per {{f2 .BinM}} m bin, false alarms excluded (y axis: defects in a bin, 0 to the peak {{.DensityMax}}).</p>
</div></div>

<h2>Worst defects</h2>
{{if .Worst}}<div class="worst">{{range .Worst}}<div>{{if .DataURI}}<img src="{{.DataURI}}" alt="crop of defect {{.D.ID}}">{{else}}<span class="nocrop">{{.Missing}}</span>{{end}}
<b>#{{.D.ID}} {{.Class}}</b> {{.D.Severity}}, {{.D.Decision}}<br>MD {{f3 .D.MDStartM}} m, CD {{f1 .D.CDStartMM}} mm<br>{{f1 .D.AreaMM2}} mm², lane {{.Lane}}{{if .D.ReviewStatus}}<br>review: {{.D.ReviewStatus}}{{end}}</div>
{{end}}</div>{{else}}<p class="note">No defects.</p>{{end}}
{{with .ImagesNote}}<p class="note">{{.}}</p>{{end}}

<h2>Review</h2>
<table><tr><th>Need review</th><td class="n">{{.Stats.NeedReview}}</td><th>Reviewed</th><td class="n">{{.Stats.Reviewed}}</td><th>Pending</th><td class="n">{{.Stats.Pending}}</td></tr>
<tr><th>Confirmed</th><td class="n">{{.Stats.Confirmed}}</td><th>False alarms</th><td class="n">{{.Stats.FalseAlarm}}</td><th>Reclassified</th><td class="n">{{.Stats.Reclassified}}</td></tr>
<tr><th>True detection rate</th><td class="n">{{rate .Stats.TrueDetectionRate}}</td><th>False reject rate</th><td class="n">{{rate .Stats.FalseRejectRate}}</td><th>Reviews per 100 m</th><td class="n">{{load .Stats.ReviewLoadPer100M}}</td></tr></table>
<p class="note">Generated {{time .Generated}} by webinspect.</p>
</body></html>
`

// writeReportPDF lays the report out on one A4 page.
func writeReportPDF(w io.Writer, d *reportData) error {
	pdf := fpdf.New("P", "mm", "A4", "")
	pdf.SetCompression(pdfCompress)
	pdf.SetCreationDate(d.Generated)
	pdf.SetTitle("Roll report "+d.Info.ID, true)
	pdf.SetProducer("webinspect", false)
	pdf.SetMargins(12, 12, 12)
	pdf.SetAutoPageBreak(false, 12)
	pdf.AddPage()
	tr := pdf.UnicodeTranslatorFromDescriptor("") // UTF-8 → cp1252 of the core fonts
	const left, width = 12.0, 186.0

	pdf.SetFont("Helvetica", "B", 16)
	pdf.CellFormat(width, 8, tr("Roll report "+d.Info.ID), "", 1, "L", false, 0, "")
	pdf.SetFont("Helvetica", "", 9)
	ended := fmtTime(d.Info.Ended)
	if d.Info.Open {
		ended = "open"
	}
	lines := []string{
		fmt.Sprintf("Recipe %s   Material %s   Source %s", d.Info.Recipe, d.Info.Material, d.Info.Source),
		fmt.Sprintf("Length %.1f m   Web width %.1f mm   Defects %d   Uninspected %.2f m", d.Info.LengthM, d.Info.WebWidthMM, d.Info.Defects, d.Info.UninspectedM),
		fmt.Sprintf("Started %s   Ended %s", fmtTime(d.Info.Started), ended),
	}
	if c := d.Info.Context; !c.IsZero() {
		lines = append(lines,
			fmt.Sprintf("Product %s   Lot %s   Supplier %s", c.Product, c.Lot, c.Supplier),
			fmt.Sprintf("Shift %s   Operator %s   Order %s", c.Shift, c.Operator, c.Order))
		if ch := d.LastContextChange(); ch != nil {
			lines = append(lines, fmt.Sprintf("Context set %s by %s", fmtTime(ch.Time), ch.By))
		}
	}
	if d.Versions != "" {
		lines = append(lines, "Versions: "+d.Versions)
	}
	for _, line := range lines {
		pdf.CellFormat(width, 4.5, tr(strings.ReplaceAll(line, "—", "-")), "", 1, "L", false, 0, "")
	}

	heading := func(s string) {
		pdf.Ln(2)
		pdf.SetFont("Helvetica", "B", 11)
		pdf.CellFormat(width, 6, tr(s), "B", 1, "L", false, 0, "")
		pdf.SetFont("Helvetica", "", 9)
	}
	note := func(s string) {
		pdf.SetFont("Helvetica", "I", 8)
		pdf.MultiCell(width, 4, tr(s), "", "L", false)
		pdf.SetFont("Helvetica", "", 9)
	}

	heading("Grade per lane")
	if len(d.Grades) > 0 {
		type col struct {
			h string
			w float64
		}
		cols := []col{{"Lane", 24}, {"Width mm", 18}, {"Defects", 16}, {"Points", 16}, {d.Grades[0].Unit, 42}}
		if d.AltUnit != "" {
			cols = append(cols, col{d.AltUnit, 34})
		}
		if d.Banded {
			cols = append(cols, col{"Grade", 22})
		}
		cols = append(cols, col{"Result", 14})
		pdf.SetFont("Helvetica", "B", 9)
		for _, c := range cols {
			pdf.CellFormat(c.w, 5, c.h, "B", 0, "L", false, 0, "")
		}
		pdf.Ln(-1)
		pdf.SetFont("Helvetica", "", 9)
		for _, g := range d.Grades[:min(len(d.Grades), 12)] {
			vals := []string{g.Name, fmt.Sprintf("%.1f", g.WidthMM), fmt.Sprint(g.Defects), fmt.Sprint(g.Points),
				fmt.Sprintf("%.2f", g.Density)}
			if d.AltUnit != "" {
				vals = append(vals, fmt.Sprintf("%.2f", g.Density*d.AltFactor))
			}
			if d.Banded {
				vals = append(vals, g.Grade)
			}
			vals = append(vals, passText(g.Pass))
			for i, c := range cols {
				pdf.CellFormat(c.w, 4.5, tr(vals[i]), "", 0, "L", false, 0, "")
			}
			pdf.Ln(-1)
		}
		pdf.SetFont("Helvetica", "I", 8.5)
		for _, n := range d.NotCounted {
			pdf.CellFormat(cols[0].w+cols[1].w, 4.2, "not graded", "", 0, "L", false, 0, "")
			pdf.CellFormat(cols[2].w, 4.2, fmt.Sprint(n.N), "", 0, "L", false, 0, "")
			pdf.CellFormat(110, 4.2, tr(n.Why), "", 1, "L", false, 0, "")
		}
		pdf.SetFont("Helvetica", "B", 9)
		pdf.CellFormat(cols[0].w+cols[1].w, 4.5, "Roll", "T", 0, "L", false, 0, "")
		pdf.CellFormat(cols[2].w, 4.5, fmt.Sprint(d.Info.Defects), "T", 0, "L", false, 0, "")
		pdf.SetFont("Helvetica", "", 8.5)
		pdf.CellFormat(110, 4.5, "every defect of the roll", "T", 1, "L", false, 0, "")
		pdf.SetFont("Helvetica", "", 9)
	}
	note(d.GradeNote)

	// Charts side by side.
	heading("Defects by class (Pareto)                                   Density along the roll")
	top := pdf.GetY() + 1
	const chartH = 46.0
	if len(d.Pareto) > 0 {
		maxN := d.Pareto[0].Count
		barH := math.Min(4.2, chartH/float64(len(d.Pareto)))
		for i, b := range d.Pareto {
			y := top + float64(i)*barH
			pdf.SetXY(left, y)
			pdf.SetFont("Helvetica", "", 7.5)
			pdf.CellFormat(23, barH, tr(b.Class), "", 0, "L", false, 0, "")
			pdf.SetFillColor(b.Style.rgb())
			if pts := shapePoints(b.Style.Shape, left+25, y+barH/2, math.Min(1.5, barH/2.5)); b.Glyph == "" {
				// "others": no glyph
			} else if pts == nil {
				pdf.Circle(left+25, y+barH/2, math.Min(1.5, barH/2.5), "F")
			} else {
				poly := make([]fpdf.PointType, len(pts))
				for k, p := range pts {
					poly[k] = fpdf.PointType{X: p[0], Y: p[1]}
				}
				pdf.Polygon(poly, "F")
			}
			pdf.Rect(left+27, y+0.4, 40*float64(b.Count)/float64(maxN), barH-0.8, "F")
			pdf.SetXY(left+69, y)
			pdf.CellFormat(22, barH, fmt.Sprintf("%d  %.0f%%", b.Count, b.CumPct), "", 0, "L", false, 0, "")
		}
	} else {
		pdf.SetXY(left, top)
		pdf.CellFormat(90, 5, "No defects.", "", 0, "L", false, 0, "")
	}
	// Density: vertical bars in an 84 × 38 mm box, with a y axis.
	bx, bw, bh := left+102, 84.0, 38.0
	pdf.SetDrawColor(150, 150, 150)
	pdf.Line(bx, top+bh, bx+bw, top+bh)
	pdf.Line(bx, top, bx, top+bh)
	pdf.SetFont("Helvetica", "", 7)
	pdf.SetXY(bx-10, top+bh-2)
	pdf.CellFormat(9, 3.5, "0", "", 0, "R", false, 0, "")
	pdf.SetXY(bx-10, top-1)
	pdf.CellFormat(9, 3.5, fmt.Sprint(d.DensityMax), "", 0, "R", false, 0, "")
	pdf.TransformBegin()
	pdf.TransformRotate(90, bx-5, top+bh/2)
	pdf.SetXY(bx-5-12, top+bh/2-1.75)
	pdf.CellFormat(24, 3.5, "defects", "", 0, "C", false, 0, "")
	pdf.TransformEnd()
	pdf.SetFillColor(192, 80, 77)
	step := bw / float64(len(d.Density))
	for i, n := range d.Density {
		if n == 0 || d.DensityMax == 0 {
			continue
		}
		h := bh * float64(n) / float64(d.DensityMax)
		pdf.Rect(bx+float64(i)*step, top+bh-h, step*0.8, h, "F")
	}
	pdf.SetFont("Helvetica", "", 7)
	pdf.SetXY(bx, top+bh+0.5)
	pdf.CellFormat(bw/2, 3.5, "0 m", "", 0, "L", false, 0, "")
	pdf.CellFormat(bw/2, 3.5, fmt.Sprintf("%.1f m", d.Info.LengthM), "", 0, "R", false, 0, "")
	pdf.SetXY(bx, top+bh+4)
	pdf.CellFormat(bw, 3.5, fmt.Sprintf("defects per %.2f m bin (y: 0 to the peak, %d)", d.BinM, d.DensityMax), "", 0, "L", false, 0, "")
	pdf.SetXY(left, top+chartH+1)
	note(fmt.Sprintf("%d defects, false alarms excluded; cumulative share after each count.", d.Counted))

	heading("Worst defects")
	y0 := pdf.GetY() + 1
	const cellW, cellH, crop = 62.0, 30.0, 26.0
	for i, wd := range d.Worst {
		x, y := left+float64(i%3)*cellW, y0+float64(i/3)*cellH
		pdf.SetDrawColor(200, 200, 200)
		pdf.Rect(x, y, cellW-2, cellH-2, "D")
		if wd.PNG != nil {
			name := fmt.Sprintf("crop%d", i)
			opt := fpdf.ImageOptions{ImageType: "PNG", ReadDpi: false}
			pdf.RegisterImageOptionsReader(name, opt, bytes.NewReader(wd.PNG))
			// Fit the crop's aspect into the square, centred.
			iw, ih := crop, crop
			if wd.W > wd.H {
				ih = crop * float64(wd.H) / float64(wd.W)
			} else {
				iw = crop * float64(wd.W) / float64(wd.H)
			}
			pdf.ImageOptions(name, x+1+(crop-iw)/2, y+1+(crop-ih)/2, iw, ih, false, opt, 0, "")
		} else {
			pdf.SetFillColor(235, 235, 235)
			pdf.Rect(x+1, y+1, crop, crop, "F")
			pdf.SetXY(x+1, y+1+crop/2-2)
			pdf.SetFont("Helvetica", "", 6.5)
			pdf.CellFormat(crop, 4, tr(wd.Missing), "", 0, "C", false, 0, "")
		}
		lines := []string{
			fmt.Sprintf("#%d %s", wd.D.ID, wd.Class),
			fmt.Sprintf("%s, %s", wd.D.Severity, wd.D.Decision),
			fmt.Sprintf("MD %.3f m", wd.D.MDStartM),
			fmt.Sprintf("CD %.1f mm", wd.D.CDStartMM),
			fmt.Sprintf("%.1f mm², lane %s", wd.D.AreaMM2, wd.Lane),
		}
		if wd.D.ReviewStatus != "" {
			lines = append(lines, "review: "+wd.D.ReviewStatus)
		}
		for k, l := range lines {
			pdf.SetXY(x+crop+2, y+1+float64(k)*4)
			if k == 0 {
				pdf.SetFont("Helvetica", "B", 7.5)
			} else {
				pdf.SetFont("Helvetica", "", 7.5)
			}
			pdf.CellFormat(cellW-crop-4, 4, tr(l), "", 0, "L", false, 0, "")
		}
	}
	if len(d.Worst) == 0 {
		pdf.SetXY(left, y0)
		pdf.CellFormat(width, 5, "No defects.", "", 0, "L", false, 0, "")
		y0 += 6
	} else {
		y0 += float64((len(d.Worst)+2)/3) * cellH
	}
	pdf.SetXY(left, y0)
	if d.ImagesNote != "" {
		note(d.ImagesNote)
	}

	heading("Review")
	st := d.Stats
	for _, row := range [][]string{
		{"Need review", fmt.Sprint(st.NeedReview), "Reviewed", fmt.Sprint(st.Reviewed), "Pending", fmt.Sprint(st.Pending)},
		{"Confirmed", fmt.Sprint(st.Confirmed), "False alarms", fmt.Sprint(st.FalseAlarm), "Reclassified", fmt.Sprint(st.Reclassified)},
		{"True detection rate", fmtRate(st.TrueDetectionRate), "False reject rate", fmtRate(st.FalseRejectRate),
			"Reviews per 100 m", fmtLoad(st.ReviewLoadPer100M)},
	} {
		for i, v := range row {
			v = strings.ReplaceAll(v, "—", "-")
			if i%2 == 0 {
				pdf.SetFont("Helvetica", "B", 9)
				pdf.CellFormat(36, 5, tr(v), "", 0, "L", false, 0, "")
			} else {
				pdf.SetFont("Helvetica", "", 9)
				pdf.CellFormat(26, 5, tr(v), "", 0, "L", false, 0, "")
			}
		}
		pdf.Ln(-1)
	}
	pdf.SetY(285 - 4)
	pdf.SetFont("Helvetica", "I", 7)
	pdf.CellFormat(width, 4, "Generated "+fmtTime(d.Generated)+" by webinspect", "", 0, "R", false, 0, "")

	var buf bytes.Buffer // render fully first: an error writes nothing
	if err := pdf.Output(&buf); err != nil {
		return fmt.Errorf("api: report %s: pdf: %w", d.Info.ID, err)
	}
	_, err := w.Write(buf.Bytes())
	return err
}

// reportStore returns the server's store as a ReportStore, or answers 501.
func (s *Server) reportStore(w http.ResponseWriter) (ReportStore, bool) {
	rs, ok := s.opts.Store.(ReportStore)
	if !ok {
		s.writeError(w, http.StatusNotImplemented, "this roll store cannot make reports (no summaries)")
	}
	return rs, ok
}

func (s *Server) serveReport(w http.ResponseWriter, r *http.Request, format string) {
	id := r.PathValue("id")
	if _, err := strictQuery(r.URL.RawQuery); err != nil {
		s.writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	store, ok := s.reportStore(w)
	if !ok {
		return
	}
	var buf bytes.Buffer
	if err := WriteReport(&buf, format, store, s.opts.Images, id); err != nil {
		s.storeError(w, r, id, err)
		return
	}
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", fmt.Sprint(buf.Len()))
	if format == ReportPDF {
		h.Set("Content-Type", "application/pdf")
		h.Set("Content-Disposition", fmt.Sprintf(`attachment; filename="roll-%s.pdf"`, id))
	} else {
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Content-Security-Policy", "default-src 'none'; img-src data:; style-src 'unsafe-inline'; frame-ancestors 'none'")
	}
	w.WriteHeader(http.StatusOK)
	w.Write(buf.Bytes())
}

func (s *Server) handleReportHTML(w http.ResponseWriter, r *http.Request) {
	s.serveReport(w, r, ReportHTML)
}

func (s *Server) handleReportPDF(w http.ResponseWriter, r *http.Request) {
	s.serveReport(w, r, ReportPDF)
}

func joinDecisions(ds []rollmap.Decision) string {
	s := make([]string, len(ds))
	for i, d := range ds {
		s[i] = string(d)
	}
	return strings.Join(s, ", ")
}

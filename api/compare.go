package api

import (
	"bytes"
	"cmp"
	"fmt"
	"html/template"
	"io"
	"time"

	"github.com/webinspect/webinspect/rollmap"
)

// ComparisonPage is what WriteComparisonHTML shows: the changes between
// a roll as recorded and the same roll re-scored with a candidate recipe
// or model (webinspect compare).
type ComparisonPage struct {
	RollID string
	// Basis says what was re-scored: the recording re-run, or only the
	// roll map and its archived crops.
	Basis string
	// Recorded and Candidate describe both sides' recipe and model.
	Recorded, Candidate string
	// Limits are what the comparison could not re-score (shown first).
	Limits []string
	// Notes are further facts about the comparison (damaged files, ...).
	Notes []string
	Cmp   *rollmap.Comparison
	// Crop returns the address of a crop relative to the page ("" when
	// it is not available; the page then says "no crop").
	Crop      func(ref string) string
	Generated time.Time
}

// comparisonRow is one change as the template shows it.
type comparisonRow struct {
	rollmap.Change
	Glyph            template.HTML // the new (else old) class's glyph
	OldCrop, NewCrop string
	Decision         string // "pass → review", "" when unchanged
}

type comparisonData struct {
	*ComparisonPage
	Rows                                    []comparisonRow
	NewN, GoneN, ClassN, DecN, SevN, DecChg int
}

// WriteComparisonHTML writes the comparison as one self-contained HTML
// page (inline style, no script; crops are linked by p.Crop, relative to
// the page). Nothing is written when the page cannot be rendered.
func WriteComparisonHTML(w io.Writer, p *ComparisonPage) error {
	d := comparisonData{ComparisonPage: p}
	c := p.Cmp
	d.NewN, d.GoneN, d.ClassN = c.Count(rollmap.ChangeNew), c.Count(rollmap.ChangeGone), c.Count(rollmap.ChangeClass)
	d.DecN, d.SevN, d.DecChg = c.Count(rollmap.ChangeDecision), c.Count(rollmap.ChangeSeverity), c.DecisionChanges()
	crop := func(dd *rollmap.Defect) string {
		if dd == nil || dd.ImageRef == "" || p.Crop == nil {
			return ""
		}
		return p.Crop(dd.ImageRef)
	}
	for _, ch := range c.Changes {
		r := comparisonRow{Change: ch, OldCrop: crop(ch.Old), NewCrop: crop(ch.New)}
		r.Glyph = template.HTML(`<svg width="12" height="12" viewBox="0 0 12 12">` + svgGlyph(StyleOf(ch.At().Class), 6, 6, 5) + `</svg>`)
		if ch.DecisionChanged() {
			r.Decision = fmt.Sprintf("%s → %s", cmp.Or(string(ch.OldDecision()), "none"), cmp.Or(string(ch.NewDecision()), "none"))
		}
		d.Rows = append(d.Rows, r)
	}
	var buf bytes.Buffer
	if err := compareTmpl.Execute(&buf, &d); err != nil {
		return fmt.Errorf("api: comparison of roll %s: %w", p.RollID, err)
	}
	_, err := w.Write(buf.Bytes())
	return err
}

var compareTmpl = template.Must(template.New("compare").Funcs(reportFuncs).Parse(compareHTML))

const compareHTML = `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>What would change: roll {{.RollID}}</title>
<style>
body { font: 10pt/1.3 system-ui, sans-serif; color: #111; margin: 1em auto; max-width: 280mm; }
h1 { font-size: 16pt; margin: 0 0 2mm; } h2 { font-size: 11pt; margin: 4mm 0 1mm; border-bottom: 1px solid #999; }
table { border-collapse: collapse; width: 100%; } th, td { text-align: left; padding: 0.5mm 1.5mm; border-bottom: 1px solid #ddd; vertical-align: top; }
td.n, th.n { text-align: right; } .note { color: #555; font-size: 9pt; } .limit { color: #8a5300; }
img.crop { width: 20mm; height: 20mm; object-fit: contain; image-rendering: pixelated; background: #eee; }
.nocrop { display: inline-block; width: 20mm; height: 20mm; background: #eee; font-size: 7pt; color: #666; text-align: center; }
tr.newly_flagged td.k { color: #b00; } tr.no_longer_flagged td.k { color: #060; }
</style></head><body>
<h1>What would change: roll {{.RollID}}</h1>
<table class="meta"><tr><th>Re-scored from</th><td>{{.Basis}}</td></tr>
<tr><th>Recorded with</th><td>{{.Recorded}}</td></tr>
<tr><th>Candidate</th><td>{{.Candidate}}</td></tr>
<tr><th>Defects</th><td>{{.Cmp.Old}} recorded, {{.Cmp.New}} with the candidate; {{.Cmp.Unchanged}} unchanged</td></tr>
<tr><th>Changes</th><td class="summary">{{.NewN}} newly flagged, {{.GoneN}} no longer flagged, {{.ClassN}} reclassified, {{.DecN}} decision changed (same class), {{.SevN}} severity changed; {{.DecChg}} changes of decision in all</td></tr></table>
{{if .Limits}}<h2>Not re-scored</h2><ul class="limits">{{range .Limits}}<li class="limit">{{.}}</li>{{end}}</ul>{{end}}
{{if .Notes}}<ul class="notes">{{range .Notes}}<li class="note">{{.}}</li>{{end}}</ul>{{end}}
<h2>Changes</h2>
{{if .Rows}}<table class="changes"><tr><th>Change</th><th>MD m</th><th>CD mm</th><th>Class</th><th>Severity</th><th>Decision</th><th>Review</th><th>Recorded</th><th>Candidate</th><th>Note</th></tr>
{{range .Rows}}<tr class="{{.Kind}}"><td class="k">{{.Kind}}</td><td class="n">{{f3 .At.MDStartM}}</td><td class="n">{{f1 .At.CDStartMM}}–{{f1 .At.CDEndMM}}</td>
<td>{{.Glyph}} {{with .Old}}{{.Class}}{{else}}—{{end}} → {{with .New}}{{.Class}}{{else}}—{{end}}</td>
<td>{{with .Old}}{{.Severity}}{{else}}—{{end}} → {{with .New}}{{.Severity}}{{else}}—{{end}}</td>
<td>{{if .Decision}}<b>{{.Decision}}</b>{{else}}{{.At.Decision}}{{end}}</td>
<td>{{with .Old}}{{.ReviewStatus}}{{if .ReviewLabel}}: {{.ReviewLabel}}{{end}}{{end}}</td>
<td>{{with .Old}}#{{.ID}}<br>{{end}}{{if .OldCrop}}<img class="crop" src="{{.OldCrop}}" alt="recorded crop">{{else if .Old}}<span class="nocrop">no crop</span>{{end}}</td>
<td>{{with .New}}#{{.ID}}<br>{{end}}{{if .NewCrop}}<img class="crop" src="{{.NewCrop}}" alt="candidate crop">{{else if .New}}<span class="nocrop">no crop</span>{{end}}</td>
<td class="note">{{.Note}}</td></tr>
{{end}}</table>{{else}}<p class="note">Nothing would change.</p>{{end}}
<p class="note">Pairing rule: a recorded and a re-scored defect are the same defect when their MD and CD ranges both overlap; each is paired once, the largest overlap first (rollmap/compare.go). Generated {{time .Generated}} by webinspect compare.</p>
</body></html>
`

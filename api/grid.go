package api

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"

	"github.com/webinspect/webinspect/internal/textcheck"
	"github.com/webinspect/webinspect/rollmap"
)

// Limits and defaults of the grid endpoint.
const (
	MaxGridMDBins     = 2000
	MaxGridCDBins     = 200
	DefaultGridMDBins = 500
	DefaultGridCDBins = 50
)

// GridCell is one non-empty cell of the aggregated roll map.
type GridCell struct {
	MD       int    `json:"md"`       // MD bin, 0..md_bins-1
	CD       int    `json:"cd"`       // CD bin, 0..cd_bins-1
	Count    int    `json:"count"`    // defects whose centre lies in the cell
	Class    string `json:"class"`    // the most frequent class (ties: alphabetical first)
	Severity string `json:"severity"` // the worst severity: critical > major > minor > other
}

// Grid is the body of GET /api/rolls/{id}/grid.
type Grid struct {
	RollID     string     `json:"roll_id"`
	MDFromM    float64    `json:"md_from"`
	MDToM      float64    `json:"md_to"`
	MDBins     int        `json:"md_bins"`
	CDBins     int        `json:"cd_bins"`
	WebWidthMM float64    `json:"web_width_mm"`
	Cells      []GridCell `json:"cells"` // by MD bin, then CD bin
	Total      int        `json:"total"` // defects counted (the sum of the cells)
}

// MarshalJSON writes the grid by hand: a zoomed-out 10 km roll can have
// 100 000 cells, and reflection-based encoding would cost more than the
// aggregation.
func (g Grid) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 160+len(g.Cells)*56)
	b = append(b, `{"roll_id":`...)
	b = appendJSONString(b, g.RollID)
	b = append(b, `,"md_from":`...)
	b = strconv.AppendFloat(b, g.MDFromM, 'g', -1, 64)
	b = append(b, `,"md_to":`...)
	b = strconv.AppendFloat(b, g.MDToM, 'g', -1, 64)
	b = append(b, `,"md_bins":`...)
	b = strconv.AppendInt(b, int64(g.MDBins), 10)
	b = append(b, `,"cd_bins":`...)
	b = strconv.AppendInt(b, int64(g.CDBins), 10)
	b = append(b, `,"web_width_mm":`...)
	b = strconv.AppendFloat(b, g.WebWidthMM, 'g', -1, 64)
	b = append(b, `,"cells":[`...)
	quoted := map[string][]byte{} // the few class and severity names, encoded once
	str := func(b []byte, s string) []byte {
		q, ok := quoted[s]
		if !ok {
			q = appendJSONString(nil, s)
			quoted[s] = q
		}
		return append(b, q...)
	}
	for i, c := range g.Cells {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"md":`...)
		b = strconv.AppendInt(b, int64(c.MD), 10)
		b = append(b, `,"cd":`...)
		b = strconv.AppendInt(b, int64(c.CD), 10)
		b = append(b, `,"count":`...)
		b = strconv.AppendInt(b, int64(c.Count), 10)
		b = append(b, `,"class":`...)
		b = str(b, c.Class)
		b = append(b, `,"severity":`...)
		b = str(b, c.Severity)
		b = append(b, '}')
	}
	b = append(b, `],"total":`...)
	b = strconv.AppendInt(b, int64(g.Total), 10)
	return append(b, '}'), nil
}

// appendJSONString appends s as a JSON string, as encoding/json writes it.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // rare: escapes and non-ASCII
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// severityRank orders severities for "worst".
func severityRank(s string) int {
	switch s {
	case "critical":
		return 3
	case "major":
		return 2
	case "minor":
		return 1
	}
	return 0
}

// gridQuery is the parsed query of the grid endpoint.
type gridQuery struct {
	q              rollmap.Query
	from, to       float64
	hasTo          bool
	mdBins, cdBins int
}

func parseGridQuery(raw string) (gridQuery, error) {
	g := gridQuery{mdBins: DefaultGridMDBins, cdBins: DefaultGridCDBins}
	vals, err := strictQuery(raw, "md_from", "md_to", "md_bins", "cd_bins", "class", "decision", "review_status")
	if err != nil {
		return g, err
	}
	num := func(name string) (float64, bool, error) {
		v, ok := vals[name]
		if !ok {
			return 0, false, nil
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 {
			return 0, false, fmt.Errorf("%s: must be a number of metres >= 0", name)
		}
		return f, true, nil
	}
	if g.from, _, err = num("md_from"); err != nil {
		return g, err
	}
	if g.to, g.hasTo, err = num("md_to"); err != nil {
		return g, err
	}
	if g.hasTo && g.to <= g.from {
		return g, fmt.Errorf("md_to: must be > md_from (got md_from=%g, md_to=%g)", g.from, g.to)
	}
	bins := func(name string, max int, dst *int) error {
		v, ok := vals[name]
		if !ok {
			return nil
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > max {
			return fmt.Errorf("%s: must be an integer 1..%d", name, max)
		}
		*dst = n
		return nil
	}
	if err := bins("md_bins", MaxGridMDBins, &g.mdBins); err != nil {
		return g, err
	}
	if err := bins("cd_bins", MaxGridCDBins, &g.cdBins); err != nil {
		return g, err
	}
	if v, ok := vals["decision"]; ok {
		if err := checkDecision(v); err != nil {
			return g, err
		}
	}
	if err := textcheck.Check("class", vals["class"], textcheck.MaxName); err != nil {
		return g, err
	}
	g.q.Class, g.q.Decision = vals["class"], rollmap.Decision(vals["decision"])
	if v, ok := vals["review_status"]; ok {
		switch v {
		case rollmap.ReviewNone, rollmap.ReviewConfirmed, rollmap.ReviewFalseAlarm, rollmap.ReviewReclassified:
			g.q.ReviewStatus = v
		default:
			return g, fmt.Errorf("review_status: must be one of none, confirmed, false_alarm, reclassified")
		}
	}
	return g, nil
}

// cellSlots is how many classes a cell counts inline; cells with more
// distinct classes (rare) count the rest in a map.
const cellSlots = 3

// cellAgg accumulates one cell. Classes are interned: cls holds indexes
// into the grid's class list.
type cellAgg struct {
	count   int32
	sev     int8 // severityRank of sevName; -1 before the first defect
	used    int8 // slots of cls and n in use
	sevName string
	cls     [cellSlots]int16
	n       [cellSlots]int32
	more    map[int16]int32
}

func (a *cellAgg) addClass(c int16) {
	for i := range a.used {
		if a.cls[i] == c {
			a.n[i]++
			return
		}
	}
	if a.used < cellSlots {
		a.cls[a.used], a.n[a.used] = c, 1
		a.used++
		return
	}
	if a.more == nil {
		a.more = make(map[int16]int32, 2)
	}
	a.more[c]++
}

// aggregateGrid bins defects by their centre. Defects whose centre falls
// outside [from, to] or the web (they overlap the range but are centred
// just outside it) are counted in the edge bin. scan visits the defects
// (twice when the roll has no web width: first to find the widest CD);
// hint is the expected number of defects, to size the cell table.
func aggregateGrid(g *Grid, hint int, scan func(fn func(d *rollmap.Defect)) error) error {
	mdSpan := g.MDToM - g.MDFromM
	width := g.WebWidthMM
	if width <= 0 {
		if err := scan(func(d *rollmap.Defect) { width = max(width, d.CDEndMM) }); err != nil {
			return err
		}
		if width <= 0 {
			width = 1
		}
		g.WebWidthMM = width
	}
	idx := make([]int32, g.MDBins*g.CDBins) // cell → 1 + index in aggs; 0 = empty
	aggs := make([]cellAgg, 0, max(64, min(hint, len(idx))))
	var (
		classes   []string
		classIdx  = map[string]int16{}
		lastClass string
		lastIdx   int16 = -1
	)
	mdScale, cdScale := float64(g.MDBins)/mdSpan, float64(g.CDBins)/width
	err := scan(func(d *rollmap.Defect) {
		mi := clampBin((d.MDStartM+d.MDEndM)/2-g.MDFromM, mdScale, g.MDBins)
		ci := clampBin((d.CDStartMM+d.CDEndMM)/2, cdScale, g.CDBins)
		cell := mi*g.CDBins + ci
		k := idx[cell]
		if k == 0 {
			aggs = append(aggs, cellAgg{sev: -1})
			k = int32(len(aggs))
			idx[cell] = k
		}
		a := &aggs[k-1]
		a.count++
		if r := int8(severityRank(d.Severity)); r > a.sev {
			a.sev, a.sevName = r, d.Severity
		}
		if lastIdx < 0 || d.Class != lastClass {
			c, ok := classIdx[d.Class]
			if !ok {
				c = int16(len(classes))
				classes = append(classes, d.Class)
				classIdx[d.Class] = c
			}
			lastClass, lastIdx = d.Class, c
		}
		a.addClass(lastIdx)
	})
	if err != nil {
		return err
	}
	g.Cells = make([]GridCell, 0, len(aggs))
	for cell, k := range idx {
		if k == 0 {
			continue
		}
		a := &aggs[k-1]
		best, bn := classes[a.cls[0]], a.n[0]
		consider := func(c int16, n int32) {
			if n > bn || n == bn && classes[c] < best {
				best, bn = classes[c], n
			}
		}
		for i := 1; i < int(a.used); i++ {
			consider(a.cls[i], a.n[i])
		}
		for c, n := range a.more {
			consider(c, n)
		}
		g.Cells = append(g.Cells, GridCell{MD: cell / g.CDBins, CD: cell % g.CDBins, Count: int(a.count),
			Class: best, Severity: a.sevName})
		g.Total += int(a.count)
	}
	return nil
}

func clampBin(x, scale float64, n int) int {
	b := int(math.Floor(x * scale))
	return max(0, min(n-1, b))
}

// handleGrid serves GET /api/rolls/{id}/grid.
func (s *Server) handleGrid(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	gq, err := parseGridQuery(r.URL.RawQuery)
	if err != nil {
		s.writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	info, err := s.opts.Store.Roll(id)
	if err != nil {
		s.storeError(w, r, id, err)
		return
	}
	to := gq.to
	if !gq.hasTo { // the whole roll from md_from (a metre if md_from is past its end)
		to = info.LengthM
		if to <= gq.from {
			to = gq.from + 1
		}
	}
	q := gq.q
	q.MDFromM, q.MDToM = gq.from, to
	g := Grid{RollID: id, MDFromM: gq.from, MDToM: to, MDBins: gq.mdBins, CDBins: gq.cdBins, WebWidthMM: info.WebWidthMM}
	err = aggregateGrid(&g, int(info.Defects), func(fn func(*rollmap.Defect)) error { return scanDefects(s.opts.Store, id, q, fn) })
	if err != nil {
		s.storeError(w, r, id, err)
		return
	} // cells come out in MD, then CD order
	b, _ := g.MarshalJSON() // never fails; written as is (json.Marshal would re-scan it)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(http.StatusOK)
	w.Write(append(b, '\n'))
}

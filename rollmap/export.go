package rollmap

import (
	"bufio"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
)

// CSVHeader is the first line of ExportCSV's output, without the newline.
// The first 13 columns are the command line's stable contract (score is the
// peak score); columns may be added at the end, never reordered.
const CSVHeader = "roll_id,defect_id,md_start_m,md_end_m,cd_start_mm,cd_end_mm,area_mm2," +
	"class,severity,decision,score,detector,camera," +
	"peak_score,mean_score,contrast,polarity,lane,time,encoder_count,image_ref,review_status,review_label," +
	"mark_status,mark_fire_count,image_error,recipe_version,model_version," +
	"learned_class,learned_confidence,classifier_version,rule_class,web_edge_mm"

// csvTime is the layout of the time column: UTC, microseconds, as stored.
const csvTime = "2006-01-02T15:04:05.000000Z07:00"

// csvFlushAt is the size at which ExportCSV hands its row buffer to w.
const csvFlushAt = 32 << 10

// ExportCSV writes ds as CSV (RFC 4180 quoting, "\n" line ends): the
// CSVHeader line, then one row per defect in the order given. MD positions
// have 6 decimals (micrometres), CD positions 3; area, scores and contrast
// are written with the fewest digits that read back to the same float64;
// time is RFC 3339 UTC with microseconds, empty when zero. Strings are
// quoted when they hold a comma, quote, CR or LF or start with a space.
// mark_status and mark_fire_count are the defect's Mark.Status and
// Mark.FireCount (empty status and 0 without mark events); recipe_version
// and model_version name the versions that decided the defect (empty in
// rolls written before they were recorded, and model_version without a
// learned model). web_edge_mm is where the web edge ran beside the defect
// (cd_start_mm + web_edge_mm is its CD on the machine; 0 when no edge was
// found, the CD is then the machine's).
func ExportCSV(w io.Writer, ds []Defect) error {
	return writeCSV(w, "csv", CSVHeader, len(ds), func(b []byte, i int) []byte { return appendCSVRow(b, &ds[i]) })
}

// writeCSV writes header and n rows, row i appended by row, to w in
// chunks of about csvFlushAt bytes; what names the export in errors.
func writeCSV(w io.Writer, what, header string, n int, row func(b []byte, i int) []byte) error {
	buf := make([]byte, 0, csvFlushAt+1024)
	buf = append(buf, header...)
	buf = append(buf, '\n')
	for i := range n {
		if buf = row(buf, i); len(buf) >= csvFlushAt {
			if _, err := w.Write(buf); err != nil {
				return fmt.Errorf("rollmap: export %s: %w", what, err)
			}
			buf = buf[:0]
		}
	}
	if _, err := w.Write(buf); err != nil {
		return fmt.Errorf("rollmap: export %s: %w", what, err)
	}
	return nil
}

func appendCSVRow(b []byte, d *Defect) []byte {
	b = appendCSVString(b, d.RollID)
	b = append(b, ',')
	b = strconv.AppendInt(b, d.ID, 10)
	b = append(b, ',')
	b = strconv.AppendFloat(b, d.MDStartM, 'f', 6, 64)
	b = append(b, ',')
	b = strconv.AppendFloat(b, d.MDEndM, 'f', 6, 64)
	b = append(b, ',')
	b = strconv.AppendFloat(b, d.CDStartMM, 'f', 3, 64)
	b = append(b, ',')
	b = strconv.AppendFloat(b, d.CDEndMM, 'f', 3, 64)
	b = append(b, ',')
	b = strconv.AppendFloat(b, d.AreaMM2, 'f', -1, 64)
	b = append(b, ',')
	b = appendCSVString(b, d.Class)
	b = append(b, ',')
	b = appendCSVString(b, d.Severity)
	b = append(b, ',')
	b = appendCSVString(b, string(d.Decision))
	b = append(b, ',')
	b = strconv.AppendFloat(b, d.PeakScore, 'f', -1, 64)
	b = append(b, ',')
	b = appendCSVString(b, string(d.Detector))
	b = append(b, ',')
	b = strconv.AppendInt(b, int64(d.Camera), 10)
	b = append(b, ',')
	b = strconv.AppendFloat(b, d.PeakScore, 'f', -1, 64)
	b = append(b, ',')
	b = strconv.AppendFloat(b, d.MeanScore, 'f', -1, 64)
	b = append(b, ',')
	b = strconv.AppendFloat(b, d.Contrast, 'f', -1, 64)
	b = append(b, ',')
	b = appendCSVString(b, d.Polarity)
	b = append(b, ',')
	b = strconv.AppendInt(b, int64(d.Lane), 10)
	b = append(b, ',')
	if !d.Time.IsZero() {
		b = d.Time.UTC().AppendFormat(b, csvTime)
	}
	b = append(b, ',')
	b = strconv.AppendInt(b, d.EncoderCount, 10)
	b = append(b, ',')
	b = appendCSVString(b, d.ImageRef)
	b = append(b, ',')
	b = appendCSVString(b, d.ReviewStatus)
	b = append(b, ',')
	b = appendCSVString(b, d.ReviewLabel)
	b = append(b, ',')
	b = appendCSVString(b, d.Mark.Status)
	b = append(b, ',')
	b = strconv.AppendInt(b, d.Mark.FireCount, 10)
	b = append(b, ',')
	b = appendCSVString(b, d.ImageError)
	b = append(b, ',')
	b = appendCSVString(b, d.RecipeVersion)
	b = append(b, ',')
	b = appendCSVString(b, d.ModelVersion)
	b = append(b, ',')
	b = appendCSVString(b, d.LearnedClass)
	b = append(b, ',')
	if d.LearnedClass != "" {
		b = strconv.AppendFloat(b, d.LearnedConfidence, 'f', 4, 64)
	}
	b = append(b, ',')
	b = appendCSVString(b, d.ClassifierVersion)
	b = append(b, ',')
	b = appendCSVString(b, d.RuleClass)
	b = append(b, ',')
	b = strconv.AppendFloat(b, d.WebEdgeMM, 'f', 3, 64)
	return append(b, '\n')
}

// appendCSVString appends s as one CSV field, quoted when needed.
func appendCSVString(b []byte, s string) []byte {
	quote := len(s) > 0 && (s[0] == ' ' || s[0] == '\t')
	for i := 0; i < len(s) && !quote; i++ {
		switch s[i] {
		case ',', '"', '\r', '\n':
			quote = true
		}
	}
	if !quote {
		return append(b, s...)
	}
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' {
			b = append(b, '"')
		}
		b = append(b, s[i])
	}
	return append(b, '"')
}

// ExportJSON writes one indented JSON object
//
//	{"roll": RollMeta, "defects": [Defect...], "uninspected": [Uninspected...]}
//
// with the json names of the structs (the Arrow column names). Empty lists
// are written as []. The output is byte-for-byte what json.MarshalIndent
// with two-space indentation gives for that object, followed by a newline,
// but it is written one defect at a time, so memory does not grow with the
// roll.
func ExportJSON(w io.Writer, meta RollMeta, ds []Defect, us []Uninspected) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	e := jsonExporter{w: bw}
	e.raw("{\n  \"roll\": ")
	e.value(meta, "  ")
	e.raw(",\n  \"defects\": ")
	writeJSONList(&e, ds)
	e.raw(",\n  \"uninspected\": ")
	writeJSONList(&e, us)
	e.raw("\n}\n")
	if e.err == nil {
		e.err = bw.Flush()
	}
	if e.err != nil {
		return fmt.Errorf("rollmap: export json: %w", e.err)
	}
	return nil
}

// jsonExporter writes to w, remembering the first error.
type jsonExporter struct {
	w   io.Writer
	err error
}

func (e *jsonExporter) raw(s string) {
	if e.err == nil {
		_, e.err = io.WriteString(e.w, s)
	}
}

func (e *jsonExporter) value(v any, prefix string) {
	if e.err != nil {
		return
	}
	b, err := json.MarshalIndent(v, prefix, "  ")
	if err != nil {
		e.err = err
		return
	}
	_, e.err = e.w.Write(b)
}

func writeJSONList[T any](e *jsonExporter, rows []T) {
	if len(rows) == 0 {
		e.raw("[]")
		return
	}
	e.raw("[\n")
	for i := range rows {
		if i > 0 {
			e.raw(",\n")
		}
		e.raw("    ")
		e.value(&rows[i], "    ")
	}
	e.raw("\n  ]")
}

// MarkingListHeader is the first line of ExportMarkingList's output.
const MarkingListHeader = "lane,lane_name,lane_cd_start_mm,lane_cd_end_mm,defect_id," +
	"md_start_m,md_end_m,cd_start_mm,cd_end_mm,class,decision"

// ExportMarkingList writes the cutting list of a roll as CSV (quoting as
// ExportCSV): the MarkingListHeader line, then one row per defect to
// remove, grouped by lane in lane order and within a lane by MD start (then
// ID), so a rewinder or cutting table can stop at each in turn.
//
// A defect is listed when its decision is in decisions (nil or empty:
// every decision except DecisionPass) and it was not reviewed as a false alarm;
// class is the class after review. With lanes, each defect is put in its
// lane with AssignLane (a defect across a slit is cut out of the lane
// holding most of it) and defects outside every lane (edge trim) are left
// out. Without lanes every listed defect is in lane -1 and the lane name
// and edges are empty. Positions are formatted as in ExportCSV.
func ExportMarkingList(w io.Writer, lanes []Lane, ds []Defect, decisions []Decision) error {
	if err := validateLanes(lanes); err != nil {
		return fmt.Errorf("rollmap: export marking list: %w", err)
	}
	type item struct {
		lane int
		d    *Defect
	}
	var items []item
	for i := range ds {
		d := &ds[i]
		if d.ReviewStatus == "false_alarm" {
			continue
		}
		if len(decisions) == 0 && d.Decision == DecisionPass || len(decisions) > 0 && !slices.Contains(decisions, d.Decision) {
			continue
		}
		lane := NoLane
		if len(lanes) > 0 {
			if lane = AssignLane(lanes, *d); lane == NoLane {
				continue
			}
		}
		items = append(items, item{lane, d})
	}
	slices.SortFunc(items, func(a, b item) int {
		return cmp.Or(cmp.Compare(a.lane, b.lane), cmp.Compare(a.d.MDStartM, b.d.MDStartM), cmp.Compare(a.d.ID, b.d.ID))
	})
	return writeCSV(w, "marking list", MarkingListHeader, len(items), func(buf []byte, i int) []byte {
		it := items[i]
		d := it.d
		buf = strconv.AppendInt(buf, int64(it.lane), 10)
		buf = append(buf, ',')
		if it.lane >= 0 {
			l := lanes[it.lane]
			buf = appendCSVString(buf, l.Name)
			buf = append(buf, ',')
			buf = strconv.AppendFloat(buf, l.CDStartMM, 'f', 3, 64)
			buf = append(buf, ',')
			buf = strconv.AppendFloat(buf, l.CDEndMM, 'f', 3, 64)
		} else {
			buf = append(buf, ",,"...)
		}
		buf = append(buf, ',')
		buf = strconv.AppendInt(buf, d.ID, 10)
		buf = append(buf, ',')
		buf = strconv.AppendFloat(buf, d.MDStartM, 'f', 6, 64)
		buf = append(buf, ',')
		buf = strconv.AppendFloat(buf, d.MDEndM, 'f', 6, 64)
		buf = append(buf, ',')
		buf = strconv.AppendFloat(buf, d.CDStartMM, 'f', 3, 64)
		buf = append(buf, ',')
		buf = strconv.AppendFloat(buf, d.CDEndMM, 'f', 3, 64)
		buf = append(buf, ',')
		buf = appendCSVString(buf, effectiveClass(d))
		buf = append(buf, ',')
		buf = appendCSVString(buf, string(d.Decision))
		buf = append(buf, '\n')
		return buf
	})
}

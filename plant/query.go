package plant

import (
	"cmp"
	"slices"
	"sort"
	"time"

	"github.com/webinspect/webinspect/rollmap"
)

// LineView is one line's live state at the plant.
type LineView struct {
	Line         string    `json:"line"`
	State        string    `json:"state"` // the engine's, or "silent" when no status came for 10 s
	RollID       string    `json:"roll_id"`
	SpeedMPerMin float64   `json:"speed_m_per_min"`
	MDM          float64   `json:"md_m"`
	Per100m      *float64  `json:"defects_per_100m"` // on the current roll; null before 1 m
	UninspectedM float64   `json:"uninspected_m"`    // lost inspection on the current roll
	LastSeen     time.Time `json:"last_seen,omitzero"`
	Defects      int64     `json:"defects"` // in the plant dataset, every roll
	Rolls        int       `json:"rolls"`
}

// silentAfter: a line whose status has not come for this long is silent.
const silentAfter = 10 * time.Second

// Lines returns every line's live state, by name.
func (s *Service) Lines() []LineView {
	s.mu.RLock()
	defer s.mu.RUnlock()
	byLine := make(map[string]*LineView)
	for name, l := range s.lines {
		v := &LineView{Line: name, State: l.Status.State, RollID: l.Status.RollID, SpeedMPerMin: l.Status.SpeedMPerMin,
			MDM: l.Status.MDM, UninspectedM: l.Status.UninspectedM, LastSeen: l.LastSeen.UTC()}
		if l.LastSeen.IsZero() || time.Since(l.LastSeen) > silentAfter {
			v.State = "silent"
		}
		if l.Status.MDM >= 1 {
			p := float64(l.Status.Defects) * 100 / l.Status.MDM
			v.Per100m = &p
		}
		byLine[name] = v
	}
	for pk, p := range s.parts {
		if v := byLine[pk.line]; v != nil {
			for _, rp := range p.Rolls {
				v.Defects += rp.count()
			}
		}
	}
	for k := range s.rolls {
		if v := byLine[k.line]; v != nil {
			v.Rolls++
		}
	}
	out := make([]LineView, 0, len(byLine))
	for _, v := range byLine {
		out = append(out, *v)
	}
	slices.SortFunc(out, func(a, b LineView) int { return cmp.Compare(a.Line, b.Line) })
	return out
}

// Count is one cell of a trend or Pareto: a group, a class and a count.
type Count struct {
	Day   string `json:"day,omitempty"`
	Shift string `json:"shift,omitempty"`
	Group string `json:"group,omitempty"`
	Class string `json:"class"`
	N     int64  `json:"n"`
}

// Trends counts defects per class by day (UTC day of the defect's time)
// and, with byShift, by shift too (the roll's shift, "" when not given).
// class, when not empty, keeps that class only.
func (s *Service) Trends(byShift bool, class string) []Count {
	s.mu.RLock()
	defer s.mu.RUnlock()
	type k struct{ day, shift, class string }
	m := make(map[k]int64)
	for pk, p := range s.parts {
		for roll, rp := range p.Rolls {
			for c, n := range rp.Class {
				if class != "" && c != class {
					continue
				}
				key := k{day: pk.day, class: c}
				if byShift {
					key.shift = s.contextOf(pk.line, roll).Shift
				}
				m[key] += n
			}
		}
	}
	out := make([]Count, 0, len(m))
	for key, n := range m {
		out = append(out, Count{Day: key.day, Shift: key.shift, Class: key.class, N: n})
	}
	slices.SortFunc(out, func(a, b Count) int {
		return cmp.Or(cmp.Compare(a.Day, b.Day), cmp.Compare(a.Shift, b.Shift), cmp.Compare(a.Class, b.Class))
	})
	return out
}

// contextOf is the roll's production context now (corrections made after
// its defects arrived included). The dataset's rows keep the context each
// defect arrived with.
func (s *Service) contextOf(line, roll string) rollmap.RollContext {
	if st := s.rolls[rollKey{line, roll}]; st != nil {
		return st.Context
	}
	return rollmap.RollContext{}
}

// Pareto counts defects per group (line, product, lot or supplier) and
// class, the largest first.
func (s *Service) Pareto(by string) []Count {
	s.mu.RLock()
	defer s.mu.RUnlock()
	type k struct{ group, class string }
	m := make(map[k]int64)
	for pk, p := range s.parts {
		for roll, rp := range p.Rolls {
			var g string
			switch by {
			case "product":
				g = s.contextOf(pk.line, roll).Product
			case "lot":
				g = s.contextOf(pk.line, roll).Lot
			case "supplier":
				g = s.contextOf(pk.line, roll).Supplier
			default:
				g = pk.line
			}
			for c, n := range rp.Class {
				m[k{g, c}] += n
			}
		}
	}
	out := make([]Count, 0, len(m))
	for key, n := range m {
		out = append(out, Count{Group: key.group, Class: key.class, N: n})
	}
	slices.SortFunc(out, func(a, b Count) int {
		return cmp.Or(cmp.Compare(b.N, a.N), cmp.Compare(a.Group, b.Group), cmp.Compare(a.Class, b.Class))
	})
	return out
}

// Hold is a roll to hold and why.
type Hold struct {
	Line    string              `json:"line"`
	Roll    string              `json:"roll"`
	Ended   bool                `json:"ended"`
	LengthM float64             `json:"length_m"`
	Defects int64               `json:"defects"`
	Context rollmap.RollContext `json:"context"`
	Reasons []string            `json:"reasons"`
	Started time.Time           `json:"started,omitzero"`
	Uninsp  float64             `json:"uninspected_m"`
}

// Holds returns the rolls the rules put on hold, newest first.
func (s *Service) Holds() []Hold {
	rules := s.o.Hold
	s.mu.RLock()
	defer s.mu.RUnlock()
	type agg struct {
		n, severe int64
	}
	per := make(map[rollKey]*agg)
	for pk, p := range s.parts {
		for roll, rp := range p.Rolls {
			k := rollKey{pk.line, roll}
			a := per[k]
			if a == nil {
				a = &agg{}
				per[k] = a
			}
			a.n += rp.count()
			for _, sev := range rules.Severities {
				a.severe += rp.Sev[sev].count()
			}
			// Defects of these severities reviewed as false alarms do
			// not count.
			if st := s.rolls[k]; st != nil && len(rules.Severities) > 0 {
				for _, id := range s.falseAlarms(st) {
					for _, sev := range rules.Severities {
						if rp.Sev[sev].has(id) {
							a.severe--
						}
					}
				}
			}
		}
	}
	var out []Hold
	for k, st := range s.rolls {
		a := per[k]
		if a == nil {
			a = &agg{}
		}
		h := Hold{Line: k.line, Roll: k.roll, Ended: st.Ended, LengthM: st.Info.LengthM, Defects: a.n,
			Context: st.Context, Started: st.Info.Started, Uninsp: st.UninspectedM}
		if rules.MaxPer100m > 0 && st.Info.LengthM >= 1 {
			if d := float64(a.n) * 100 / st.Info.LengthM; d > rules.MaxPer100m {
				h.Reasons = append(h.Reasons, "defects per 100 m "+fmtF(d)+" > "+fmtF(rules.MaxPer100m))
			}
		}
		if rules.MaxUninspectedM > 0 && st.UninspectedM > rules.MaxUninspectedM {
			h.Reasons = append(h.Reasons, "uninspected "+fmtF(st.UninspectedM)+" m > "+fmtF(rules.MaxUninspectedM)+" m")
		}
		if a.severe > 0 {
			h.Reasons = append(h.Reasons, fmtI(a.severe)+" defects of severity "+joinStr(rules.Severities))
		}
		if len(h.Reasons) > 0 {
			out = append(out, h)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Started.Equal(out[j].Started) {
			return out[i].Started.After(out[j].Started)
		}
		return out[i].Line+"/"+out[i].Roll < out[j].Line+"/"+out[j].Roll
	})
	return out
}

// falseAlarms returns the IDs of the roll's defects whose last review
// calls them a false alarm.
func (s *Service) falseAlarms(st *rollState) []int64 {
	type last struct {
		seq    int64
		action string
	}
	by := make(map[int64]last)
	for seq, rv := range st.Reviews {
		if l, ok := by[rv.DefectID]; !ok || seq > l.seq {
			by[rv.DefectID] = last{seq, rv.Action}
		}
	}
	var out []int64
	for id, l := range by {
		if l.action == rollmap.ActionFalseAlarm {
			out = append(out, id)
		}
	}
	return out
}

// Counts are the figures DuckDB checks against: defects per line and per
// day and class.
type Counts struct {
	Total      int64            `json:"total"`
	PerLine    map[string]int64 `json:"per_line"`
	PerDayClas []Count          `json:"per_day_class"`
	Dead       int64            `json:"dead_letters"`
}

// Counts returns the dataset's counts.
func (s *Service) Counts() Counts {
	c := Counts{PerLine: make(map[string]int64), PerDayClas: s.Trends(false, "")}
	s.mu.RLock()
	defer s.mu.RUnlock()
	for pk, p := range s.parts {
		for _, rp := range p.Rolls {
			n := rp.count()
			c.PerLine[pk.line] += n
			c.Total += n
		}
	}
	c.Dead = s.dead
	return c
}

// DefectKey identifies a plant defect with its position.
type DefectKey struct {
	Line    string  `json:"line"`
	Roll    string  `json:"roll"`
	ID      int64   `json:"defect_id"`
	MDStart float64 `json:"md_start_m"`
	CDStart float64 `json:"cd_start_mm"`
	Day     string  `json:"day"`
}

// Defects returns the key and position of every row of the dataset on
// disk, as written (a row written twice is there twice): tests and
// checks. It reads every Parquet file.
func (s *Service) Defects() ([]DefectKey, error) {
	s.comp.swapMu.RLock() // not while a compaction swaps files
	defer s.comp.swapMu.RUnlock()
	var out []DefectKey
	err := readDataset(s.o.Data, false, func(r *defectRow) {
		out = append(out, DefectKey{r.Line, r.Roll, r.ID, r.MDStart, r.CDStart, r.day()})
	})
	return out, err
}

// Has reports whether the plant has taken the defect (line, roll, id).
func (s *Service) Has(line, roll string, id int64) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for pk, p := range s.parts {
		if pk.line != line {
			continue
		}
		if rp := p.Rolls[roll]; rp != nil && rp.has(id) {
			return true
		}
	}
	return false
}

// latSample is one defect's record → queryable latency and when the
// plant took it (the plant's clock).
type latSample struct {
	at time.Time
	d  time.Duration
}

// Latencies returns the record → queryable latencies measured, oldest
// first (at most the newest 65536).
func (s *Service) Latencies() []time.Duration {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]time.Duration, len(s.lat))
	for i, l := range s.lat {
		out[i] = l.d
	}
	return out
}

// Latency sums up the record → queryable latency of the defects this
// service took (since it started; at most the newest 65536).
type Latency struct {
	Window string  `json:"window,omitempty"` // the defects taken within this long before the call; "": all
	N      int     `json:"n"`
	P50MS  float64 `json:"p50_ms"`
	P99MS  float64 `json:"p99_ms"`
	MaxMS  float64 `json:"max_ms"`
}

// LatencySummary sums up the latencies of the defects taken within
// window before now (0: all). A record that waited in the stream while
// the service was down counts with its wait; choose a window after the
// last restart for the steady figure.
func (s *Service) LatencySummary(window time.Duration) Latency {
	s.mu.RLock()
	var ds []time.Duration
	from := time.Now().Add(-window)
	for _, l := range s.lat {
		if window <= 0 || !l.at.Before(from) {
			ds = append(ds, l.d)
		}
	}
	s.mu.RUnlock()
	out := Latency{N: len(ds)}
	if window > 0 {
		out.Window = window.String()
	}
	if len(ds) == 0 {
		return out
	}
	slices.Sort(ds)
	q := func(p float64) float64 { return float64(ds[int(p*float64(len(ds)-1))]) / 1e6 }
	out.P50MS, out.P99MS, out.MaxMS = q(0.5), q(0.99), float64(ds[len(ds)-1])/1e6
	return out
}

// RollView is what the plant knows of a roll.
type RollView struct {
	Line         string                  `json:"line"`
	Roll         string                  `json:"roll"`
	Info         RollInfo                `json:"info"`
	Ended        bool                    `json:"ended"`
	Context      rollmap.RollContext     `json:"context"`
	History      []rollmap.ContextChange `json:"context_history"`
	Splices      int                     `json:"splices"`
	UninspectedM float64                 `json:"uninspected_m"`
	Reviews      int                     `json:"reviews"`
	MarkEvents   int64                   `json:"mark_events"`
}

// Rolls returns the plant's rolls (of one line, if line is not empty).
func (s *Service) Rolls(line string) []RollView {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []RollView
	for k, st := range s.rolls {
		if line != "" && k.line != line {
			continue
		}
		out = append(out, RollView{Line: k.line, Roll: k.roll, Info: st.Info, Ended: st.Ended, Context: st.Context,
			History: slices.Clone(st.History), Splices: len(st.Splices), UninspectedM: st.UninspectedM,
			Reviews: len(st.Reviews), MarkEvents: st.MarkEvents})
	}
	slices.SortFunc(out, func(a, b RollView) int { return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Roll, b.Roll)) })
	return out
}

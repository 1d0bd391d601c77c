package api

import (
	"maps"
	"math"
	"sync"

	"github.com/webinspect/webinspect/engine/status"
	"github.com/webinspect/webinspect/rollmap"
)

// # Live status and the scope of its figures
//
// GET /api/status and the status events carry the engine's status with
// every per-roll count taken from the roll map, never from a counter of
// the engine process (which restarts at 0 when a killed engine resumes a
// roll, and runs on across roll changes):
//
//	defects, defects_by_class, uninspected_m   the roll roll_id, from the roll map (as /api/rolls/{id})
//	roll_blocks_dropped, roll_lines_dropped    the roll roll_id, counted by the engine since it
//	                                           started writing it (a resumed roll: since the restart)
//	md_m, speed_m_per_min                      the line now, on roll roll_id
//	lines_in, blocks_dropped, lines_dropped,   since the engine process started (started)
//	marks
//
// "scope" lists the fields of each kind, so a client can label them.
// When the roll map cannot be read the engine's figures are kept and
// "counts_from" says "engine" with "counts_error" saying why.

// LiveStatus is the body of GET /api/status and of the status events.
type LiveStatus struct {
	status.Status
	// CountsFrom is "rollmap" when defects, defects_by_class and
	// uninspected_m are the roll map's, "engine" when the roll map could
	// not be read (CountsError) or no roll is open.
	CountsFrom  string      `json:"counts_from"`
	CountsError string      `json:"counts_error,omitempty"`
	Scope       StatusScope `json:"scope"`
	// PersistenceError is null while everything the roll map took is on
	// disk as of its last flush; else it names the roll whose writes fail
	// (a full disk, an I/O error), the last error, since when, and whether
	// rows were lost at the roll's close. The live view shows it as a red
	// banner. Present only when the Store reports it (rollmap.Store does).
	PersistenceError *rollmap.PersistenceError `json:"persistence_error"`
}

// persistenceReporter is implemented by stores that know whether their
// writes reach the disk (*rollmap.Store does).
type persistenceReporter interface {
	PersistenceError() *rollmap.PersistenceError
}

// StatusScope names the status fields by what they count.
type StatusScope struct {
	// Roll are the fields about the roll roll_id (the whole roll so far).
	Roll []string `json:"roll"`
	// Engine are the fields counted since the engine process started.
	Engine []string `json:"engine"`
}

var statusScope = StatusScope{
	Roll:   []string{"md_m", "defects", "defects_by_class", "uninspected_m", "roll_blocks_dropped", "roll_lines_dropped"},
	Engine: []string{"lines_in", "blocks_dropped", "lines_dropped", "marks"},
}

// classCounter counts a roll's defects by class from the store,
// incrementally: it reads only the defects after the highest ID it has
// counted, and rereads the roll when its total disagrees with the store's
// count (a defect flushed out of ID order, a roll rewritten).
type classCounter struct {
	mu      sync.Mutex
	roll    string
	afterID int64
	total   int64
	byClass map[string]int64
}

// counts returns the defects of roll id by class and their total, agreeing
// with info.Defects.
func (c *classCounter) counts(store RollStore, id string, info rollmap.RollInfo) (map[string]int64, int64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.roll != id || c.total > info.Defects {
		c.roll, c.afterID, c.total, c.byClass = id, 0, 0, map[string]int64{}
	}
	for pass := 0; c.total != info.Defects && pass < 2; pass++ {
		for {
			ds, err := store.Defects(id, rollmap.Query{AfterID: c.afterID, Limit: MaxDefectLimit})
			if err != nil {
				c.roll = "" // start again next time
				return nil, 0, err
			}
			for i := range ds {
				c.byClass[ds[i].Class]++
				c.afterID = max(c.afterID, ds[i].ID)
			}
			c.total += int64(len(ds))
			if len(ds) < MaxDefectLimit {
				break
			}
		}
		if c.total != info.Defects && pass == 0 {
			// Out of order or rewritten: count the whole roll again.
			c.afterID, c.total, c.byClass = 0, 0, map[string]int64{}
		}
	}
	return maps.Clone(c.byClass), c.total, nil
}

// LiveStatus returns what GET /api/status answers: the engine's status
// with the roll map's per-roll counts. It needs Options.Status. Other
// servers of the same engine (OPC UA) show these figures, so that every
// interface agrees.
func (s *Server) LiveStatus() LiveStatus { return s.liveStatus() }

// liveStatus returns the engine's status with the roll map's counts.
func (s *Server) liveStatus() LiveStatus {
	st := s.opts.Status()
	ls := LiveStatus{Status: st, CountsFrom: "engine", Scope: statusScope}
	if pr, ok := s.opts.Store.(persistenceReporter); ok {
		ls.PersistenceError = pr.PersistenceError()
	}
	if st.RollID != "" {
		info, err := s.opts.Store.Roll(st.RollID)
		var byClass map[string]int64
		var total int64
		if err == nil {
			byClass, total, err = s.classes.counts(s.opts.Store, st.RollID, info)
		}
		if err != nil {
			ls.CountsError = publicError(err)
			s.log.Warn().Err(err).Str("roll", st.RollID).Msg("status: roll map counts unavailable; showing the engine's")
		} else {
			ls.CountsFrom = "rollmap"
			ls.Defects, ls.DefectsByClass, ls.UninspectedM = total, byClass, info.UninspectedM
		}
	}
	if ls.DefectsByClass == nil {
		ls.DefectsByClass = map[string]int64{} // {} rather than null for clients
	}
	if ls.Marks == nil {
		ls.Marks = map[string]int64{}
	}
	ls.MDM = roundTo(ls.MDM, 1e-3)
	ls.UninspectedM = roundTo(ls.UninspectedM, 1e-3)
	ls.SpeedMPerMin = roundTo(ls.SpeedMPerMin, 0.1)
	ls.WebWidthMM = roundTo(ls.WebWidthMM, 0.01)
	return ls
}

// roundTo rounds v to a multiple of step (a unit's resolution), so that
// binary float noise (1.2799999999999727) does not reach clients.
func roundTo(v, step float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return v
	}
	r := math.Round(v/step) * step
	// Print the shortest decimal: 1.28, not 1.2800000000000002.
	digits := int(math.Max(0, math.Ceil(-math.Log10(step))))
	p := math.Pow(10, float64(digits))
	return math.Round(r*p) / p
}

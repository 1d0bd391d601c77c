package api

import (
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"

	"github.com/webinspect/webinspect/rollmap"
)

// DensityStore is implemented by stores that can bin a roll's defects
// along MD (the density strip beside the roll map). *rollmap.Store does.
type DensityStore interface {
	Density(id string, binM float64, lane int) ([]rollmap.DensityBin, error)
}

// SummaryStore is implemented by stores that summarise a roll (counts per
// class, decision and lane, and lane grades). *rollmap.Store does.
type SummaryStore interface {
	Summary(id string) (rollmap.Summary, error)
}

var (
	_ DensityStore = (*rollmap.Store)(nil)
	_ SummaryStore = (*rollmap.Store)(nil)
)

// maxDensityBins bounds the size of a density answer.
const maxDensityBins = 200_000

// densityPage is the body of GET /api/rolls/{id}/density.
type densityPage struct {
	RollID string               `json:"roll_id"`
	BinM   float64              `json:"bin_m"`
	Lane   int                  `json:"lane"` // rollmap.AllLanes (-2) for every lane
	Bins   []rollmap.DensityBin `json:"bins"`
}

// handleDensity serves GET /api/rolls/{id}/density?bin_m=1&lane=N.
func (s *Server) handleDensity(w http.ResponseWriter, r *http.Request) {
	ds, ok := s.opts.Store.(DensityStore)
	if !ok {
		s.writeError(w, http.StatusNotImplemented, "this roll store cannot compute densities")
		return
	}
	id := r.PathValue("id")
	binM, lane, err := parseDensityQuery(r.URL.RawQuery)
	if err != nil {
		s.writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	info, err := s.opts.Store.Roll(id)
	if err != nil {
		s.storeError(w, r, id, err)
		return
	}
	if info.LengthM/binM > maxDensityBins {
		s.writeError(w, http.StatusBadRequest, fmt.Sprintf("bin_m: %g m bins over %.1f m are more than %d bins; use wider bins", binM, info.LengthM, maxDensityBins))
		return
	}
	if lane >= 0 {
		// A lane the roll does not have is a mistake, not an empty lane.
		n := 0
		if ss, ok := s.opts.Store.(SummaryStore); ok {
			sum, err := ss.Summary(id)
			if err != nil && sum.ID == "" {
				s.storeError(w, r, id, err)
				return
			}
			n = len(sum.Lanes)
		}
		if lane >= n {
			want := fmt.Sprintf("0..%d, ", n-1)
			if n == 0 {
				want = ""
			}
			s.writeError(w, http.StatusBadRequest, fmt.Sprintf("lane: %d: roll %q has %d lanes: want %s-1 (outside every lane) or no lane parameter (all lanes)", lane, id, n, want))
			return
		}
	}
	bins, err := ds.Density(id, binM, lane)
	if err != nil {
		s.storeError(w, r, id, err)
		return
	}
	if bins == nil {
		bins = []rollmap.DensityBin{}
	}
	for i := range bins {
		b := &bins[i]
		b.MDStartM, b.MDEndM = roundTo(b.MDStartM, 1e-4), roundTo(b.MDEndM, 1e-4)
		b.AreaMM2, b.UninspectedM = roundTo(b.AreaMM2, 0.01), roundTo(b.UninspectedM, 1e-3)
	}
	s.writeJSON(w, http.StatusOK, densityPage{RollID: id, BinM: binM, Lane: lane, Bins: bins})
}

func parseDensityQuery(raw string) (binM float64, lane int, err error) {
	binM, lane = 1, rollmap.AllLanes
	vals, err := url.ParseQuery(raw)
	if err != nil {
		return 0, 0, fmt.Errorf("query string: %v", err)
	}
	for _, name := range slices.Sorted(maps.Keys(vals)) {
		if name != "bin_m" && name != "lane" {
			return 0, 0, fmt.Errorf("unknown parameter %q (known: bin_m, lane)", name)
		}
		if len(vals[name]) > 1 {
			return 0, 0, fmt.Errorf("%s: given %d times, want at most once", name, len(vals[name]))
		}
	}
	if v, ok := vals["bin_m"]; ok {
		f, err := strconv.ParseFloat(v[0], 64)
		if err != nil || !(f >= 0.01 && f <= 100000) {
			return 0, 0, fmt.Errorf("bin_m: must be a number of metres from 0.01 to 100000")
		}
		binM = f
	}
	if v, ok := vals["lane"]; ok {
		n, err := strconv.Atoi(v[0])
		if err != nil || n < -1 || n > 10000 {
			return 0, 0, fmt.Errorf("lane: must be a lane index >= 0, or -1 for defects outside every lane")
		}
		lane = n
	}
	return binM, lane, nil
}

// handleSummary serves GET /api/rolls/{id}/summary.
func (s *Server) handleSummary(w http.ResponseWriter, r *http.Request) {
	ss, ok := s.opts.Store.(SummaryStore)
	if !ok {
		s.writeError(w, http.StatusNotImplemented, "this roll store cannot summarise rolls")
		return
	}
	id := r.PathValue("id")
	sum, err := ss.Summary(id)
	if err != nil {
		s.storeError(w, r, id, err)
		return
	}
	s.writeJSON(w, http.StatusOK, sum)
}

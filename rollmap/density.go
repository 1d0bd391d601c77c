package rollmap

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"slices"
)

// AllLanes is the lane argument of Store.Density that counts the defects
// of every lane, and of none.
const AllLanes = -2

// maxDensityBins is the most bins Density returns (a 10 km roll in 1 cm
// bins).
const maxDensityBins = 1 << 20

// DensityBin is one MD bin of a roll's defect density: the defects whose
// MD start lies in [MDStartM, MDEndM), and how much of the bin was not
// inspected, so that a clean-looking bin can be told from a blind one.
type DensityBin struct {
	MDStartM     float64 `json:"md_start_m"`
	MDEndM       float64 `json:"md_end_m"`
	Defects      int     `json:"defects"`       // defects starting in the bin
	AreaMM2      float64 `json:"area_mm2"`      // their total area
	UninspectedM float64 `json:"uninspected_m"` // MD metres of the bin with an uninspected range
}

// Density returns the defect density of roll id along MD in bins of binM
// metres, from 0 to the roll's length (or further, to hold the last
// defect counted or uninspected range), for one lane (a lane index, or NoLane
// for the defects outside every lane) or for AllLanes. A defect counts in
// the bin holding its MD start. UninspectedM counts the union of the
// uninspected ranges; for one lane of a roll whose RollMeta has Lanes,
// only the ranges whose CD band overlaps that lane.
//
// binM must be finite and > 0 and give at most 2^20 bins; the error wraps
// ErrInvalid otherwise. Damaged files are handled as in Defects.
func (s *Store) Density(id string, binM float64, lane int) ([]DensityBin, error) {
	if !finite(binM) || binM <= 0 {
		return nil, fmt.Errorf("rollmap: roll %s: density: %w: bin %v m, want finite and > 0", id, ErrInvalid, binM)
	}
	if lane < AllLanes {
		return nil, fmt.Errorf("rollmap: roll %s: density: %w: lane %d, want a lane index >= 0, %d (outside every lane) or %d (all lanes)",
			id, ErrInvalid, lane, NoLane, AllLanes)
	}
	r, dir, err := s.lookup(id)
	if err != nil {
		return nil, err
	}
	var (
		meta  RollMeta
		parts [][]Defect
		us    [][]Uninspected
		rerr  error
	)
	if r != nil {
		var uv rowView[Uninspected]
		parts, _, meta, uv, rerr = s.openRows(r)
		us = uv.slices(0)
		if rerr != nil {
			rerr = fmt.Errorf("rollmap: roll %s: %w", id, rerr)
		}
	} else {
		m, err := readMetaFile(dir)
		if err != nil {
			return nil, err
		}
		meta = m.RollMeta
		ds, _, derr := s.diskDefects(id, dir, -1)
		u, uerr := readStream(nil, filepath.Join(dir, UninspectedFile), uninspectedColumns)
		parts, us = ds, [][]Uninspected{u}
		if derr != nil || uerr != nil {
			rerr = fmt.Errorf("rollmap: roll %s: %w", id, errors.Join(derr, uerr))
		}
	}
	bins, err := densityBins(meta, parts, us, binM, lane)
	if err != nil {
		return nil, fmt.Errorf("rollmap: roll %s: density: %w", id, err)
	}
	return bins, rerr
}

func densityBins(meta RollMeta, parts [][]Defect, us [][]Uninspected, binM float64, lane int) ([]DensityBin, error) {
	// Bins cover the roll's length, every uninspected range and the MD
	// start of every defect counted (a defect may start at or past the
	// last length recorded).
	nf := math.Ceil(meta.LengthM / binM)
	for _, p := range parts {
		for i := range p {
			if lane == AllLanes || p[i].Lane == lane {
				nf = max(nf, math.Floor(p[i].MDStartM/binM)+1)
			}
		}
	}
	// The uninspected ranges that concern the lane, as MD intervals.
	var band *Lane
	if lane >= 0 && lane < len(meta.Lanes) {
		band = &meta.Lanes[lane]
	}
	var iv [][2]float64
	for _, p := range us {
		for _, u := range p {
			if band != nil && (max(u.CDStartMM, u.CDEndMM) <= band.CDStartMM || min(u.CDStartMM, u.CDEndMM) >= band.CDEndMM) {
				continue
			}
			lo, hi := max(0, min(u.MDStartM, u.MDEndM)), max(u.MDStartM, u.MDEndM)
			if hi > lo {
				iv = append(iv, [2]float64{lo, hi})
				nf = max(nf, math.Ceil(hi/binM))
			}
		}
	}
	if nf > maxDensityBins {
		return nil, fmt.Errorf("%w: bin %v m gives %v bins, want at most %d", ErrInvalid, binM, nf, maxDensityBins)
	}
	n := int(nf)
	bins := make([]DensityBin, n)
	for i := range bins {
		bins[i].MDStartM, bins[i].MDEndM = float64(i)*binM, float64(i+1)*binM
	}
	for _, p := range parts {
		for i := range p {
			d := &p[i]
			if lane != AllLanes && d.Lane != lane {
				continue
			}
			k := min(n-1, max(0, int(d.MDStartM/binM)))
			bins[k].Defects++
			bins[k].AreaMM2 += d.AreaMM2
		}
	}
	// Union of the intervals, spread over the bins they cross.
	slices.SortFunc(iv, func(a, b [2]float64) int { return cmp.Compare(a[0], b[0]) })
	for j := 0; j < len(iv); {
		lo, hi := iv[j][0], iv[j][1]
		for j++; j < len(iv) && iv[j][0] <= hi; j++ {
			hi = max(hi, iv[j][1])
		}
		for k := min(n-1, int(lo/binM)); k < n && bins[k].MDStartM < hi; k++ {
			bins[k].UninspectedM += min(hi, bins[k].MDEndM) - max(lo, bins[k].MDStartM)
		}
	}
	return bins, nil
}

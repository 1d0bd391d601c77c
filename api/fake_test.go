package api

import (
	"fmt"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/webinspect/webinspect/rollmap"
)

// fakeStore is an in-memory RollStore with rollmap's semantics (ID
// validation, Query filters, ID order). It fails the test when the API
// misuses it: a query without a limit or above the API's maximum.
type fakeStore struct {
	t *testing.T

	mu          sync.Mutex
	rolls       []rollmap.RollInfo // newest first, as List returns them
	defects     map[string][]rollmap.Defect
	uninspected map[string][]rollmap.Uninspected
	listErr     error // returned by List, with the rolls
	err         error // returned by Roll, Defects and Uninspected when set
	uninspErr   error // returned by Uninspected only
	panicMsg    string
	lastQuery   rollmap.Query
}

var fakeIDRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

func newFakeStore(t *testing.T) *fakeStore {
	return &fakeStore{t: t, defects: map[string][]rollmap.Defect{}, uninspected: map[string][]rollmap.Uninspected{}}
}

// addRoll adds a roll with n defects: IDs 1..n, 1 m apart in MD, classes
// cycling hole, stain, fold and decisions cycling pass, mark.
func (f *fakeStore) addRoll(id string, n int, started time.Time) {
	classes := []string{"hole", "stain", "fold"}
	decisions := []rollmap.Decision{rollmap.DecisionPass, rollmap.DecisionMark}
	ds := make([]rollmap.Defect, n)
	for i := range ds {
		md := float64(i)
		ds[i] = rollmap.Defect{
			RollID: id, ID: int64(i + 1),
			MDStartM: md, MDEndM: md + 0.01,
			CDStartMM: float64(10 * i % 2000), CDEndMM: float64(10*i%2000) + 3,
			AreaMM2: 0.3, PeakScore: 40, MeanScore: 20, Contrast: -30, Polarity: "dark",
			Class: classes[i%len(classes)], Severity: "minor", Decision: decisions[i%len(decisions)],
			Detector: rollmap.DetectorThreshold, Camera: i % 2, Lane: -1,
			Time: started.Add(time.Duration(i) * time.Second), EncoderCount: int64(i) * 1000,
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rolls = append([]rollmap.RollInfo{{
		ID: id, Recipe: "fabric-default", Material: "fabric", Source: "sim",
		WebWidthMM: 2000, Started: started, Open: true, LengthM: float64(n),
		Defects: int64(n),
	}}, f.rolls...)
	f.defects[id] = ds
}

func (f *fakeStore) check(id string) error {
	if !fakeIDRe.MatchString(id) {
		return fmt.Errorf("rollmap: %w: %q", rollmap.ErrBadRollID, id)
	}
	if f.panicMsg != "" {
		panic(f.panicMsg)
	}
	if f.err != nil {
		return f.err
	}
	for _, r := range f.rolls {
		if r.ID == id {
			return nil
		}
	}
	return fmt.Errorf("rollmap: roll %s: %w", id, rollmap.ErrNotFound)
}

func (f *fakeStore) List() ([]rollmap.RollInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]rollmap.RollInfo(nil), f.rolls...), f.listErr
}

func (f *fakeStore) Roll(id string) (rollmap.RollInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check(id); err != nil {
		return rollmap.RollInfo{}, err
	}
	for _, r := range f.rolls {
		if r.ID == id {
			return r, nil
		}
	}
	panic("unreachable")
}

func (f *fakeStore) Defects(id string, q rollmap.Query) ([]rollmap.Defect, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if q.Limit < 1 || q.Limit > MaxDefectLimit {
		f.t.Errorf("Defects(%q): query Limit %d, the API must always ask for 1..%d", id, q.Limit, MaxDefectLimit)
	}
	f.lastQuery = q
	if err := f.check(id); err != nil {
		return nil, err
	}
	var out []rollmap.Defect
	for _, d := range f.defects[id] {
		if q.Limit > 0 && len(out) == q.Limit {
			break
		}
		if (q.MDFromM == 0 || d.MDEndM >= q.MDFromM) &&
			(q.MDToM == 0 || d.MDStartM <= q.MDToM) &&
			(q.Class == "" || d.Class == q.Class) &&
			(q.Decision == "" || d.Decision == q.Decision) &&
			d.ID > q.AfterID {
			out = append(out, d)
		}
	}
	return out, nil
}

func (f *fakeStore) Uninspected(id string) ([]rollmap.Uninspected, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check(id); err != nil {
		return nil, err
	}
	if f.uninspErr != nil {
		return nil, f.uninspErr
	}
	return append([]rollmap.Uninspected(nil), f.uninspected[id]...), nil
}

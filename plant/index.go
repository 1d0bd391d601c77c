package plant

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/webinspect/webinspect/internal/atomicfile"
)

// The dataset's index: what the plant service needs of its defects to
// de-duplicate and to answer its queries, without the rows. One small
// JSON file per partition (line and day) of the dataset,
//
//	DATA/index/line=<line>/day=<YYYY-MM-DD>.json
//
// holds, per roll, the defect IDs by severity (as ranges: a roll's IDs
// run in order) and the count per class. Start-up reads these files and
// the roll states, never the Parquet files: it takes time in proportion
// to the partitions and rolls of the history (and to the runs of equal
// severity in a roll), not to its defects. A defect's partition is fixed
// by its own time at its engine, so a defect delivered again, however
// late, is looked up in the one partition it can be in.
//
// Each write of the dataset first names the partitions it touches in
// DATA/index/pending.json, then writes their part files, then their
// indexes, then removes pending.json; messages are acknowledged after.
// A start that finds pending.json (a crash within a write) rebuilds those
// partitions' indexes from their Parquet files: at most the partitions
// one write touched, the days in flight. A partition with part files and
// no index (a dataset written before the index existed) is rebuilt the
// same way, once.
const (
	indexDir     = "index"
	pendingFile  = "pending.json"
	indexVersion = 1
)

// idRanges is a set of defect IDs as sorted, disjoint, non-adjacent
// closed ranges.
type idRanges [][2]int64

// add puts id in the set; it reports false if it was there.
func (r *idRanges) add(id int64) bool {
	s := *r
	i := sort.Search(len(s), func(i int) bool { return s[i][1] >= id })
	if i < len(s) && s[i][0] <= id {
		return false
	}
	joinLeft := i > 0 && s[i-1][1] == id-1
	joinRight := i < len(s) && s[i][0] == id+1
	switch {
	case joinLeft && joinRight:
		s[i-1][1] = s[i][1]
		s = slices.Delete(s, i, i+1)
	case joinLeft:
		s[i-1][1] = id
	case joinRight:
		s[i][0] = id
	default:
		s = slices.Insert(s, i, [2]int64{id, id})
	}
	*r = s
	return true
}

func (r idRanges) has(id int64) bool {
	i := sort.Search(len(r), func(i int) bool { return r[i][1] >= id })
	return i < len(r) && r[i][0] <= id
}

func (r idRanges) count() int64 {
	var n int64
	for _, v := range r {
		n += v[1] - v[0] + 1
	}
	return n
}

// rollPart is what the index holds of one roll in one partition.
type rollPart struct {
	Sev   map[string]idRanges `json:"severity"` // defect IDs by severity
	Class map[string]int64    `json:"class"`    // defects per class
}

func (p *rollPart) has(id int64) bool {
	for _, r := range p.Sev {
		if r.has(id) {
			return true
		}
	}
	return false
}

func (p *rollPart) count() int64 {
	var n int64
	for _, c := range p.Class {
		n += c
	}
	return n
}

// partition is the index of one line and day.
type partition struct {
	V     int                  `json:"v"`
	Rolls map[string]*rollPart `json:"rolls"`
}

type partKey struct{ line, day string }

func newPartition() *partition { return &partition{V: indexVersion, Rolls: make(map[string]*rollPart)} }

// add indexes a defect; it reports false if the partition has it.
func (p *partition) add(roll string, id int64, class, severity string) bool {
	rp := p.Rolls[roll]
	if rp == nil {
		rp = &rollPart{Sev: make(map[string]idRanges), Class: make(map[string]int64)}
		p.Rolls[roll] = rp
	}
	if rp.has(id) {
		return false
	}
	r := rp.Sev[severity]
	r.add(id)
	rp.Sev[severity] = r
	rp.Class[class]++
	return true
}

func indexPath(root string, k partKey) (dir, name string) {
	return filepath.Join(root, indexDir, "line="+k.line), "day=" + k.day + ".json"
}

func partDir(root string, k partKey) string {
	return filepath.Join(root, datasetDir, "line="+k.line, "day="+k.day)
}

// writeIndex writes a partition's index (JSON) atomically.
func writeIndex(root string, k partKey, b []byte) error {
	dir, name := indexPath(root, k)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return atomicfile.WriteFile(dir, name, b)
}

// writePending names the partitions a write is about to touch.
func writePending(root string, ks []partKey) error {
	dir := filepath.Join(root, indexDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var list [][2]string
	for _, k := range ks {
		list = append(list, [2]string{k.line, k.day})
	}
	b, _ := json.Marshal(list)
	return atomicfile.WriteFile(dir, pendingFile, b)
}

func removePending(root string) error { return removeIndexFile(root, pendingFile) }

// removeIndexFile removes DATA/index/name (pending.json, compact.json),
// durably; one that is not there is no error.
func removeIndexFile(root, name string) error {
	err := os.Remove(filepath.Join(root, indexDir, name))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return atomicfile.SyncDir(filepath.Join(root, indexDir))
}

// rebuildPartition reads a partition's Parquet files into a new index.
func rebuildPartition(root string, k partKey) (*partition, error) {
	p := newPartition()
	dir := partDir(root, k)
	ents, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	for _, e := range ents {
		name := e.Name()
		if strings.HasSuffix(name, ".tmp") {
			os.Remove(filepath.Join(dir, name)) // a write the crash cut short
			continue
		}
		if !strings.HasSuffix(name, ".parquet") {
			continue
		}
		if err := readPart(filepath.Join(dir, name), k.line, func(r *defectRow) { p.add(r.Roll, r.ID, r.Class, r.Severity) }); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// loadIndex reads every partition's index, rebuilding those a crash left
// pending and those that have none.
func loadIndex(root string) (map[partKey]*partition, []partKey, error) {
	out := make(map[partKey]*partition)
	var rebuilt []partKey
	rebuild := make(map[partKey]bool)
	if b, err := os.ReadFile(filepath.Join(root, indexDir, pendingFile)); err == nil {
		var list [][2]string
		if err := json.Unmarshal(b, &list); err != nil {
			return nil, nil, fmt.Errorf("plant index %s: %w", pendingFile, err)
		}
		for _, v := range list {
			rebuild[partKey{v[0], v[1]}] = true
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, nil, err
	}
	// The indexes.
	err := eachPartition(filepath.Join(root, indexDir), false, ".json", func(k partKey, path string) error {
		if rebuild[k] {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		p := newPartition()
		if err := json.Unmarshal(b, p); err != nil {
			return fmt.Errorf("plant index %s: %w", path, err)
		}
		if p.V != indexVersion {
			return fmt.Errorf("plant index %s: version %d, this plant reads %d", path, p.V, indexVersion)
		}
		for _, rp := range p.Rolls {
			if rp.Sev == nil {
				rp.Sev = make(map[string]idRanges)
			}
			if rp.Class == nil {
				rp.Class = make(map[string]int64)
			}
		}
		out[k] = p
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	// The partitions a crash left pending, and those without an index:
	// only their directories are listed here, no file is read.
	err = eachPartition(filepath.Join(root, datasetDir), true, "", func(k partKey, _ string) error {
		if out[k] != nil {
			return nil
		}
		p, err := rebuildPartition(root, k)
		if err != nil {
			return err
		}
		b, _ := json.Marshal(p)
		if err := writeIndex(root, k, b); err != nil {
			return err
		}
		out[k] = p
		rebuilt = append(rebuilt, k)
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	if err := removePending(root); err != nil {
		return nil, nil, err
	}
	return out, rebuilt, nil
}

// eachPartition calls fn for each base/line=L/day=D<suffix> (directories
// when dirs, else files); a missing base has none.
func eachPartition(base string, dirs bool, suffix string, fn func(k partKey, path string) error) error {
	lines, err := os.ReadDir(base)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	for _, l := range lines {
		line, ok := strings.CutPrefix(l.Name(), "line=")
		if !ok || !l.IsDir() {
			continue
		}
		days, err := os.ReadDir(filepath.Join(base, l.Name()))
		if err != nil {
			return err
		}
		for _, d := range days {
			day, ok := strings.CutPrefix(d.Name(), "day=")
			if !ok || d.IsDir() != dirs {
				continue
			}
			if day, ok = strings.CutSuffix(day, suffix); !ok {
				continue
			}
			if err := fn(partKey{line, day}, filepath.Join(base, l.Name(), d.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

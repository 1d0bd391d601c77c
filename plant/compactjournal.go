package plant

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/webinspect/webinspect/internal/atomicfile"
)

// The compaction journal, DATA/index/compact.json (compact.go): the
// partition being compacted, its inputs and outputs, and the phase.
type compactJournal struct {
	V       int      `json:"v"`
	Line    string   `json:"line"`
	Day     string   `json:"day"`
	Phase   string   `json:"phase"`
	Inputs  []string `json:"inputs"`
	Outputs []string `json:"outputs"`
}

const (
	phaseMerge = "merge" // outputs being written as temporary files
	phaseSwap  = "swap"  // outputs complete: renaming them, removing the inputs
)

func (c *compactor) writeJournal(k partKey, j *compactJournal, step string) error {
	dir := filepath.Join(c.root, indexDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b, _ := json.Marshal(j)
	if err := atomicfile.WriteFile(dir, journalFile, b); err != nil {
		return err
	}
	return c.after(k, step)
}

func removeJournal(root string) error { return removeIndexFile(root, journalFile) }

// renameOutputs renames each output's temporary file to its name (one
// already renamed is left). No fsync between these renames and the
// removals after them: whichever of them a crash keeps, the journal's
// swap phase finds each output under one of its two names (the
// temporary files' names were made durable before it).
func renameOutputs(dir string, outs []string) error {
	for _, o := range outs {
		err := os.Rename(filepath.Join(dir, tmpName(o)), filepath.Join(dir, o))
		if errors.Is(err, os.ErrNotExist) {
			if _, serr := os.Stat(filepath.Join(dir, o)); serr == nil {
				continue
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// recover finishes or undoes the compaction a crash cut short, if any:
// in phase merge the temporary outputs are removed (the inputs are all
// there); in phase swap the outputs are complete, so they are renamed
// into place and the inputs removed. Should an output be missing in
// phase swap (removed by hand), the swap is undone instead while every
// input is still there; otherwise it is an error naming the journal and
// nothing is touched.
func (c *compactor) recover() error {
	path := filepath.Join(c.root, indexDir, journalFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("plant compaction journal: %w", err)
	}
	var j compactJournal
	if err := json.Unmarshal(b, &j); err != nil || j.V != 1 {
		return fmt.Errorf("plant compaction journal %s: not a journal this plant reads (%v): compare it with the partition it names, then remove it", path, err)
	}
	k := partKey{j.Line, j.Day}
	dir := partDir(c.root, k)
	ev := c.log.Warn().Str("line", j.Line).Str("day", j.Day).Strs("outputs", j.Outputs).Int("inputs", len(j.Inputs))
	switch {
	case j.Phase == phaseSwap && allExist(dir, j.Outputs, true):
		if _, err := c.swapFiles(k, dir, &j); err != nil {
			return fmt.Errorf("plant compaction of line=%s day=%s, finishing: %w", j.Line, j.Day, err)
		}
		ev.Msg("plant compaction cut short after its merged files were complete: finished (inputs removed)")
	case j.Phase == phaseMerge || allExist(dir, j.Inputs, false):
		for _, o := range j.Outputs {
			for _, n := range []string{tmpName(o), o} {
				if err := os.Remove(filepath.Join(dir, n)); err != nil && !errors.Is(err, os.ErrNotExist) {
					return fmt.Errorf("plant compaction of line=%s day=%s, undoing: %w", j.Line, j.Day, err)
				}
			}
		}
		if err := atomicfile.SyncDir(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		ev.Msg("plant compaction cut short before its merged files were complete: undone (part files kept)")
	default:
		return fmt.Errorf("plant compaction journal %s: phase %s with merged files missing and inputs removed: "+
			"files were removed by hand; compare the partition with the journal, then remove it", path, j.Phase)
	}
	return removeJournal(c.root)
}

// allExist reports whether every name is in dir (or, with tmpToo, its
// temporary file is).
func allExist(dir string, names []string, tmpToo bool) bool {
	for _, n := range names {
		if _, err := os.Stat(filepath.Join(dir, n)); err == nil {
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, tmpName(n))); err != nil || !tmpToo {
			return false
		}
	}
	return true
}

// swap renames the outputs into place and removes the inputs (steps 4
// to 6).
func (c *compactor) swap(k partKey, dir string, j *compactJournal) (time.Duration, error) {
	window, err := c.swapFiles(k, dir, j)
	if err != nil {
		return 0, err
	}
	if err := removeJournal(c.root); err != nil {
		return 0, err
	}
	return window, c.after(k, "done")
}

// swapFiles renames the outputs into place and removes the inputs: the
// window in which a reader of the glob sees the rows twice, returned.
func (c *compactor) swapFiles(k partKey, dir string, j *compactJournal) (window time.Duration, err error) {
	c.swapMu.Lock()
	defer c.swapMu.Unlock()
	start := time.Now()
	if err := renameOutputs(dir, j.Outputs); err != nil {
		return 0, err
	}
	if err := c.after(k, "renamed"); err != nil {
		return 0, err
	}
	for i, in := range j.Inputs {
		if err := os.Remove(filepath.Join(dir, in)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return 0, err
		}
		if i == 0 {
			if err := c.after(k, "removed-one"); err != nil {
				return 0, err
			}
		}
	}
	window = time.Since(start)
	return window, c.syncAfter(k, dir, "removed")
}

func (c *compactor) syncAfter(k partKey, dir, step string) error {
	if err := atomicfile.SyncDir(dir); err != nil {
		return err
	}
	return c.after(k, step)
}

// after calls the test's step function, if any.
func (c *compactor) after(k partKey, step string) error {
	if c.step == nil {
		return nil
	}
	return c.step(k, step)
}

// undo removes a journal's temporary outputs and the journal: the
// inputs stay (an error before the swap).
func (c *compactor) undo(dir string, j *compactJournal) {
	for _, o := range j.Outputs {
		os.Remove(filepath.Join(dir, tmpName(o)))
	}
	if err := removeJournal(c.root); err != nil {
		c.log.Error().Err(err).Msg("plant compaction journal not removed; the next start removes it")
	}
}

package archive

import (
	"cmp"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/webinspect/webinspect/internal/dirlock"
)

// entry is one file in the index, linked oldest first.
type entry struct {
	sum        [32]byte
	size       int64
	mtime      time.Time
	prev, next *entry
}

// list is an intrusive doubly linked list of entries, oldest first: the
// writer appends (a write or a duplicate's touch is the newest), the
// sweeper takes from the front.
type list struct{ front, back *entry }

func (l *list) pushBack(e *entry) {
	e.prev, e.next = l.back, nil
	if l.back != nil {
		l.back.next = e
	} else {
		l.front = e
	}
	l.back = e
}

func (l *list) remove(e *entry) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		l.front = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		l.back = e.prev
	}
	e.prev, e.next = nil, nil
}

// addLocked inserts e as the newest entry. a.mu held.
func (a *Archive) addLocked(e *entry) {
	a.index[e.sum] = e
	a.lru.pushBack(e)
	a.total += e.size
	a.prefixN[e.sum[0]]++
}

// removeLocked drops e from the index. a.mu held.
func (a *Archive) removeLocked(e *entry) {
	delete(a.index, e.sum)
	a.lru.remove(e)
	a.total -= e.size
	a.prefixN[e.sum[0]]--
}

func (a *Archive) gauges() {
	a.mu.Lock()
	total, n := a.total, len(a.index)
	a.mu.Unlock()
	a.m.bytes.Set(float64(total))
	a.m.files.Set(float64(n))
}

// scan reads the tree into the index, oldest first, and removes leftover
// temp files, empty image files and empty prefix dirs.
func (a *Archive) scan() error {
	dirs, err := os.ReadDir(a.root)
	if err != nil {
		return fmt.Errorf("archive: scan root: %w", err)
	}
	var found []*entry
	removed, foreign := 0, 0
	for _, d := range dirs {
		name := d.Name()
		if name == dirlock.Name {
			continue
		}
		if !d.IsDir() || len(name) != 2 || !isLowerHex(name) {
			foreign++
			continue
		}
		dir := filepath.Join(a.root, name)
		files, err := os.ReadDir(dir)
		if err != nil {
			return fmt.Errorf("archive: scan %s: %w", dir, err)
		}
		kept := 0
		for _, f := range files {
			fn := f.Name()
			p := filepath.Join(dir, fn)
			if strings.HasSuffix(fn, ".png.tmp") && ValidRef(strings.TrimSuffix(fn, ".tmp")) == nil {
				if err := os.Remove(p); err != nil {
					return fmt.Errorf("archive: remove leftover temp file: %w", err)
				}
				removed++
				continue
			}
			if !f.Type().IsRegular() || ValidRef(fn) != nil || fn[:2] != name {
				foreign++
				kept++
				continue
			}
			info, err := f.Info()
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return fmt.Errorf("archive: scan %s: %w", p, err)
			}
			if info.Size() == 0 { // torn by a crash before its data reached the disk
				if err := os.Remove(p); err != nil {
					return fmt.Errorf("archive: remove empty image: %w", err)
				}
				removed++
				continue
			}
			e := &entry{size: info.Size(), mtime: info.ModTime()}
			_, _ = hex.Decode(e.sum[:], []byte(fn[:64]))
			found = append(found, e)
			kept++
		}
		if kept == 0 {
			_ = os.Remove(dir) // an empty prefix dir; a failure only leaves it
		}
	}
	slices.SortFunc(found, func(x, y *entry) int {
		if c := x.mtime.Compare(y.mtime); c != 0 {
			return c
		}
		return cmp.Compare(string(x.sum[:]), string(y.sum[:]))
	})
	for _, e := range found {
		a.addLocked(e) // no other goroutine yet
	}
	if removed > 0 || foreign > 0 {
		a.log.Warn().Str("root", a.root).Int("removed", removed).Int("foreign", foreign).
			Msg("image archive scan removed leftover temp/empty files and ignored foreign entries")
	}
	return nil
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// writer writes queued crops until Close closes the queue.
func (a *Archive) writer() {
	defer a.wg.Done()
	for j := range a.queue {
		select {
		case a.room <- struct{}{}:
		default:
		}
		a.handle(j)
		a.mu.Lock()
		p := a.pending[j.sum]
		if p.n--; p.n <= 0 {
			delete(a.pending, j.sum)
		} else {
			a.pending[j.sum] = p
		}
		a.mu.Unlock()
		a.inflight.Add(-1)
	}
}

// handle writes one crop, or touches its existing file.
func (a *Archive) handle(j job) {
	if a.stopped.Load() {
		a.skip(ReasonDiskFull)
		return
	}
	a.fsMu.Lock()
	defer a.fsMu.Unlock()
	ref := refOf(j.sum)
	path := a.path(ref)
	now := a.h.now()

	a.mu.Lock()
	e := a.index[j.sum]
	a.mu.Unlock()
	if e != nil {
		if err := os.Chtimes(path, now, now); err == nil {
			a.mu.Lock()
			a.lru.remove(e)
			e.mtime = now
			a.lru.pushBack(e)
			a.mu.Unlock()
			a.dedup.Add(1)
			a.m.dedup.Inc()
			return
		}
		// Gone behind our back: forget it and write it again.
		a.mu.Lock()
		a.removeLocked(e)
		a.mu.Unlock()
	}

	if a.opts.MinFreeBytes > 0 {
		free, err := a.h.statfs(a.root)
		if err == nil {
			a.setFree(free)
			if free-int64(len(j.data)) < a.opts.MinFreeBytes {
				a.stop(fmt.Sprintf("free space %d bytes below Options.MinFreeBytes %d", free, a.opts.MinFreeBytes), free, nil)
				a.skip(ReasonDiskFull)
				return
			}
		}
	}

	tmp := path + ".tmp"
	err := a.h.writeTemp(tmp, j.data, a.opts.Sync)
	if errors.Is(err, fs.ErrNotExist) { // prefix dir missing
		if err = os.MkdirAll(filepath.Dir(path), 0o755); err == nil {
			err = a.h.writeTemp(tmp, j.data, a.opts.Sync)
		}
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		if isDiskFull(err) {
			free, ferr := a.h.statfs(a.root)
			if ferr != nil {
				free = -1
			}
			a.setFree(free)
			a.stop(fmt.Sprintf("writing %s: %v", ref, err), free, err)
			a.skip(ReasonDiskFull)
			return
		}
		a.skip(ReasonWriteError)
		if a.logAllowed() {
			a.log.Error().Err(err).Str("root", a.root).Str("ref", ref).Uint64("errors_total", a.skWriteError.Load()).
				Msg("image archive write failed; defect recorded without image")
		}
		return
	}
	a.mu.Lock()
	a.addLocked(&entry{sum: j.sum, size: int64(len(j.data)), mtime: now})
	over := a.opts.MaxBytes > 0 && a.total > a.opts.MaxBytes
	a.mu.Unlock()
	a.written.Add(1)
	a.m.written.Inc()
	a.gauges()
	if over {
		select {
		case a.kick <- struct{}{}:
		default:
		}
	}
}

// writeTempFile writes data to name (truncating it), fsyncing if asked.
func writeTempFile(name string, data []byte, sync bool) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil && sync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func (a *Archive) setFree(free int64) {
	a.mu.Lock()
	a.free = free
	a.mu.Unlock()
}

// stop stops archiving, logging and setting the gauge once per stop.
func (a *Archive) stop(reason string, free int64, err error) {
	a.mu.Lock()
	if a.st.stopped {
		a.mu.Unlock()
		return
	}
	a.st = stopState{stopped: true, reason: reason, since: a.h.now(), freeAtStop: free}
	a.stopped.Store(true)
	a.m.stopped.Set(1) // under mu: a concurrent resume cannot reorder the gauge
	a.mu.Unlock()
	a.log.Error().Err(err).Str("root", a.root).Int64("free_bytes", free).Int64("min_free_bytes", a.opts.MinFreeBytes).
		Str("reason", reason).Msg("image archive stopped: disk full; defects are recorded without images until space is freed")
}

// sweeper applies retention every SweepInterval (and when kicked) and
// resumes a stopped archive when space is back.
func (a *Archive) sweeper() {
	defer a.wg.Done()
	t := time.NewTicker(a.opts.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-a.done:
			return
		case <-t.C:
		case <-a.kick:
		}
		a.sweep()
		if a.stopped.Load() {
			a.maybeResume()
		}
	}
}

// sweep deletes files older than MaxAge, then the oldest until the total is
// within MaxBytes, one file per hold of fsMu so the writer interleaves.
func (a *Archive) sweep() {
	if a.opts.MaxAge == 0 && a.opts.MaxBytes == 0 {
		return
	}
	cutoff := a.h.now().Add(-a.opts.MaxAge)
	var freed int64
	deleted := 0
	for {
		select {
		case <-a.done:
			return
		default:
		}
		a.fsMu.Lock()
		a.mu.Lock()
		e := a.lru.front
		byAge := e != nil && a.opts.MaxAge > 0 && e.mtime.Before(cutoff)
		byBudget := e != nil && !byAge && a.opts.MaxBytes > 0 && a.total > a.opts.MaxBytes
		if !byAge && !byBudget {
			a.mu.Unlock()
			a.fsMu.Unlock()
			break
		}
		a.removeLocked(e)
		emptyDir := a.prefixN[e.sum[0]] == 0
		a.mu.Unlock()
		ref := refOf(e.sum)
		err := os.Remove(a.path(ref))
		if emptyDir {
			_ = os.Remove(filepath.Dir(a.path(ref))) // fails harmlessly if something else is in it
		}
		a.fsMu.Unlock()
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			if a.logAllowed() {
				a.log.Error().Err(err).Str("root", a.root).Str("ref", ref).Msg("image archive retention could not delete a file")
			}
			continue // out of the index; a restart's scan finds it again
		}
		freed += e.size
		deleted++
		if byAge {
			a.delAge.Add(1)
			a.m.delAge.Inc()
		} else {
			a.delBudget.Add(1)
			a.m.delBudget.Inc()
		}
	}
	if deleted > 0 {
		a.gauges()
		a.mu.Lock()
		if a.st.stopped {
			a.st.freedSince += freed
		}
		a.mu.Unlock()
		a.log.Debug().Str("root", a.root).Int("deleted", deleted).Int64("freed_bytes", freed).Msg("image archive retention")
	}
}

// maybeResume resumes a stopped archive when free space is at least
// MinFreeBytes and a sweep freed space or free space grew by resumeMargin.
func (a *Archive) maybeResume() {
	free, err := a.h.statfs(a.root)
	if err != nil {
		return
	}
	a.mu.Lock()
	a.free = free
	ok := a.st.stopped && free >= a.opts.MinFreeBytes &&
		(a.st.freedSince > 0 || free >= a.st.freeAtStop+resumeMargin)
	var since time.Time
	if ok {
		since = a.st.since
		a.st = stopState{}
		a.stopped.Store(false)
		a.m.stopped.Set(0)
	}
	a.mu.Unlock()
	if ok {
		a.log.Info().Str("root", a.root).Int64("free_bytes", free).Dur("stopped_for", a.h.now().Sub(since)).
			Msg("image archive resumed")
	}
}

package rollmap

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/webinspect/webinspect/internal/atomicfile"
)

// RecoveredRoll describes a roll whose roll.json says open although no Roll
// of this Store writes it: its writer stopped without closing it (a crash,
// kill -9, a power cut). Store.Recover lists them; Store.ResumeRoll reopens
// one for writing.
type RecoveredRoll struct {
	// Info is the roll as roll.json has it (Open true); its counts and
	// LengthM are those of the last Flush that completed.
	Info RollInfo
	// FlushedLengthM is the roll's length at its last completed Flush:
	// where the engine-restart gap of a resumed roll starts.
	FlushedLengthM float64
	// Defects and Uninspected are the rows readable in the files. They can
	// exceed Info's counts: a Flush that died after syncing its batches
	// but before replacing roll.json.
	Defects, Uninspected int64
	// MarkEvents is the number of mark events readable (0 for a roll
	// without marks.arrows).
	MarkEvents int64
	// MaxDefectID is the largest defect ID readable or reserved in roll.json
	// (IDs that may have been handed out before a crash); a resumed roll gives
	// the next defect without an ID MaxDefectID+1.
	MaxDefectID int64
	// Damage is nil, or what is wrong with the files, naming each one:
	// ErrTruncated for a partial batch at the end (the write a crash
	// interrupted), ErrCorrupt for anything else. Every readable record is
	// counted above and kept by ResumeRoll, which repairs the files.
	Damage error
}

// Recover returns the rolls that a stopped writer left open, oldest first.
// Every roll is inspected (every stream read through); the error joins what
// could not be read: a roll.json that is unreadable, and each roll's
// Damage. It never changes a file.
func (s *Store) Recover() ([]RecoveredRoll, error) {
	entries, err := os.ReadDir(s.root)
	if err != nil {
		return nil, fmt.Errorf("rollmap: recover %s: %w", s.root, err)
	}
	var (
		out  []RecoveredRoll
		errs []error
	)
	for _, e := range entries {
		id := e.Name()
		if !e.IsDir() || ValidRollID(id) != nil {
			continue
		}
		s.mu.Lock()
		_, open := s.open[id]
		s.mu.Unlock()
		if open {
			continue
		}
		dir := filepath.Join(s.root, id)
		m, err := readMetaFile(dir)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !m.Open {
			continue
		}
		if m.ID != id {
			errs = append(errs, fmt.Errorf("rollmap: %s: %w: roll.json names roll %q", dir, ErrCorrupt, m.ID))
			continue
		}
		rr := RecoveredRoll{Info: m.info(), FlushedLengthM: m.LengthM}
		ds, derr := readStream(nil, filepath.Join(dir, DefectsFile), defectColumns)
		us, uerr := readStream(nil, filepath.Join(dir, UninspectedFile), uninspectedColumns)
		evs, merr := readMarks(dir)
		rr.Defects, rr.Uninspected, rr.MarkEvents = int64(len(ds)), int64(len(us)), int64(len(evs))
		rr.MaxDefectID = m.DefectIDsReserved
		for i := range ds {
			rr.MaxDefectID = max(rr.MaxDefectID, ds[i].ID)
		}
		if err := errors.Join(derr, uerr, merr); err != nil {
			rr.Damage = fmt.Errorf("rollmap: roll %s: %w", id, err)
			errs = append(errs, rr.Damage)
		}
		out = append(out, rr)
	}
	for i := 1; i < len(out); i++ { // few rolls: insertion sort by start time
		for j := i; j > 0 && out[j].Info.Started.Before(out[j-1].Info.Started); j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out, errors.Join(errs...)
}

// ResumeRoll reopens for writing a roll whose writer stopped without
// closing it (see Recover), so that a restarted engine continues the same
// roll. restartM is the MD position, in metres from the roll's start, where
// inspection starts again; it must be finite and at least the length of
// the last completed Flush (RecoveredRoll.FlushedLengthM).
//
// Every readable record is kept. A partial batch at the end of a file is
// cut off; a file damaged otherwise (or missing) is replaced by a new one
// holding every record read before the damage, and the damaged file is
// kept beside it as NAME.damaged-UNIXNANO. The returned RecoveredRoll
// reports the damage (naming the files); it is not an error.
//
// The range from the last flushed length to restartM, over the full web
// width, is added as uninspected (camera -1, reason ReasonRestart, Lines
// 0) and flushed, and the roll's length is set to restartM, before
// ResumeRoll returns. Defects without an ID are numbered after the largest
// ID in the files.
//
// Errors: ErrNotFound (no such roll), ErrRollExists (this Store has it
// open), ErrClosed (roll.json says the roll was closed, or the Store is
// closed), ErrInvalid (restartM), ErrVersion, or the I/O error; the files
// are then as they were, or repaired.
func (s *Store) ResumeRoll(id string, restartM float64) (*Roll, RecoveredRoll, error) {
	var rr RecoveredRoll
	if err := ValidRollID(id); err != nil {
		return nil, rr, fmt.Errorf("rollmap: resume roll: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, rr, fmt.Errorf("rollmap: resume roll %s: store %w", id, ErrClosed)
	}
	if err := s.lockLocked(); err != nil {
		return nil, rr, fmt.Errorf("rollmap: resume roll %s: %w", id, err)
	}
	if _, ok := s.open[id]; ok {
		return nil, rr, fmt.Errorf("rollmap: resume roll %s: %w (open)", id, ErrRollExists)
	}
	dir := filepath.Join(s.root, id)
	m, err := readMetaFile(dir)
	if err != nil {
		return nil, rr, fmt.Errorf("rollmap: resume roll %s: %w", id, err)
	}
	if !m.Open {
		return nil, rr, fmt.Errorf("rollmap: resume roll %s: %w: roll.json says it was closed at %s", id, ErrClosed, m.Ended.Format(time.RFC3339))
	}
	if m.ID != id {
		return nil, rr, fmt.Errorf("rollmap: resume roll %s: %w: roll.json names roll %q", id, ErrCorrupt, m.ID)
	}
	if !finite(restartM) || restartM < m.LengthM {
		return nil, rr, fmt.Errorf("rollmap: resume roll %s: %w: restart position %v m, want finite and >= %v m (the length at the last flush)",
			id, ErrInvalid, restartM, m.LengthM)
	}
	rr = RecoveredRoll{Info: m.info(), FlushedLengthM: m.LengthM}

	dh, err := defectHeader()
	if err != nil {
		return nil, rr, err
	}
	uh, err := uninspectedHeader()
	if err != nil {
		return nil, rr, err
	}
	mh, err := markEventHeader()
	if err != nil {
		return nil, rr, err
	}
	ds, dfile, ddmg, err := reopenStream(filepath.Join(dir, DefectsFile), DefectSchema, dh, defectColumns,
		func(rows []Defect) arrow.RecordBatch {
			b := NewDefectBuilder(nil)
			defer b.Release()
			b.Append(rows)
			return b.NewRecordBatch()
		})
	if err != nil {
		return nil, rr, fmt.Errorf("rollmap: resume roll %s: %w", id, err)
	}
	us, ufile, udmg, err := reopenStream(filepath.Join(dir, UninspectedFile), UninspectedSchema, uh, uninspectedColumns,
		func(rows []Uninspected) arrow.RecordBatch {
			b := NewUninspectedBuilder(nil)
			defer b.Release()
			b.Append(rows)
			return b.NewRecordBatch()
		})
	if err != nil {
		dfile.close()
		return nil, rr, fmt.Errorf("rollmap: resume roll %s: %w", id, err)
	}
	// A roll started before marks existed has no marks.arrows: start one.
	var (
		evs   []MarkEvent
		mfile *streamWriter
		mdmg  error
	)
	mpath := filepath.Join(dir, MarksFile)
	if _, serr := os.Stat(mpath); errors.Is(serr, fs.ErrNotExist) {
		mfile, err = createStream(mpath, MarkEventSchema, mh)
		if err == nil {
			err = atomicfile.SyncDir(dir)
			if err != nil {
				mfile.close()
			}
		}
	} else {
		evs, mfile, mdmg, err = reopenStream(mpath, MarkEventSchema, mh, markEventColumns,
			func(rows []MarkEvent) arrow.RecordBatch {
				b := NewMarkEventBuilder(nil)
				defer b.Release()
				b.Append(rows)
				return b.NewRecordBatch()
			})
	}
	if err != nil {
		dfile.close()
		ufile.close()
		return nil, rr, fmt.Errorf("rollmap: resume roll %s: %w", id, err)
	}
	if dmg := errors.Join(ddmg, udmg, mdmg); dmg != nil {
		rr.Damage = fmt.Errorf("rollmap: roll %s: %w", id, dmg)
	}
	rr.Defects, rr.Uninspected, rr.MarkEvents = int64(len(ds)), int64(len(us)), int64(len(evs))

	meta := m.RollMeta
	meta.LengthM = restartM
	r := newRoll(s, dir, meta)
	r.dfile, r.ufile, r.mfile = dfile, ufile, mfile
	for _, e := range evs {
		r.marks.append(e)
	}
	mergeMarksInto(r.mstate, evs)
	for i := range ds {
		if i > 0 && ds[i].ID <= r.maxID {
			r.sorted = false
		}
		r.maxID = max(r.maxID, ds[i].ID)
	}
	// IDs up to the reservation may have been handed out (published,
	// marked, reviewed) without reaching the file: continue above them.
	r.flushedTop = r.maxID
	r.maxID = max(r.maxID, m.DefectIDsReserved)
	r.reserved = m.DefectIDsReserved
	rr.MaxDefectID = r.maxID
	if s.opts.MemoryDefects == 0 {
		for _, d := range ds {
			r.defects.append(d)
		}
	} else {
		r.defects.skip(len(ds)) // queries read them from the file
	}
	for _, u := range us {
		r.unins.append(u)
	}
	r.flushedD, r.flushedU, r.flushedM, r.flushed = len(ds), len(us), len(evs), len(ds)
	r.written = m
	r.unins.append(Uninspected{RollID: id, MDStartM: m.LengthM, MDEndM: restartM, CDStartMM: 0, CDEndMM: m.WebWidthMM,
		Camera: -1, Reason: ReasonRestart})
	s.cmu.Lock()
	if s.cache != nil && s.cache.id == id {
		s.cache = nil // the file may have been replaced or cut
	}
	if s.mcache != nil && s.mcache.id == id {
		s.mcache = nil
	}
	s.cmu.Unlock()
	r.start()
	if err := r.Flush(); err != nil {
		r.stopFlusher()
		r.dfile.close()
		r.ufile.close()
		r.mfile.close()
		return nil, rr, fmt.Errorf("rollmap: resume roll %s: record the restart gap: %w", id, err)
	}
	s.open[id] = r
	return r, rr, nil
}

// reopenStream opens the stream file at path for appending after the rows
// it holds, which it returns. A partial batch at the end, or an EOS marker
// (a Close that did not finish), is cut off. A file that is damaged
// otherwise, missing, or does not start with this package's schema message
// is replaced by a new file holding the rows read (written to NAME.tmp,
// synced and renamed over it), the old one kept as NAME.damaged-UNIXNANO.
// A readable version-1 file is replaced the same way (kept as
// NAME.v1-UNIXNANO) and that is not damage: version-2 messages are never
// appended to a version-1 stream.
// damage describes what was wrong, naming the file; err is returned only
// when nothing was changed or the repair failed.
func reopenStream[T any](path string, schema *arrow.Schema, header []byte, cols []column[T],
	encode func([]T) arrow.RecordBatch) (rows []T, w *streamWriter, damage, err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND, 0)
	var sc streamScan
	var rerr error
	upgrade, olderCols := false, false
	exists := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil, err
	}
	if exists {
		st, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, nil, nil, err
		}
		rows, sc, rerr = readBatches(nil, f, nil, 0, st.Size(), path, cols)
		if errors.Is(rerr, ErrVersion) {
			f.Close()
			return nil, nil, nil, rerr
		}
		clean := rerr == nil || errors.Is(rerr, ErrTruncated) && sc.schemaEnd > 0 && !errors.Is(rerr, ErrCorrupt)
		if clean && sc.schemaEnd == int64(len(header)) {
			got := make([]byte, len(header))
			if _, err := f.ReadAt(got, 0); err != nil || !bytes.Equal(got, header) {
				clean = false
			}
		} else {
			clean = false
		}
		if clean {
			if sc.batchEnd != st.Size() { // a torn batch or an EOS
				if err := f.Truncate(sc.batchEnd); err != nil {
					f.Close()
					return nil, nil, nil, fmt.Errorf("cut %s back to %d bytes: %w", path, sc.batchEnd, err)
				}
				if err := f.Sync(); err != nil {
					f.Close()
					return nil, nil, nil, fmt.Errorf("sync %s: %w", path, err)
				}
			}
			if rerr != nil {
				damage = fmt.Errorf("%w (the partial batch was cut off)", rerr)
			}
			return rows, newStreamWriter(path, f, schema, header, sc.batchEnd), damage, nil
		}
		older := rerr == nil && sc.version == 2 && writtenBeforeAdded(f, sc.schemaEnd, cols)
		f.Close()
		if sc.version == 1 && (rerr == nil || !errors.Is(rerr, ErrCorrupt)) {
			upgrade = true // a readable version-1 stream: rewritten in this version
			if rerr != nil {
				damage = fmt.Errorf("%w (the partial batch was left out)", rerr)
			}
		} else if older {
			upgrade, olderCols = true, true // written before a column was added: rewritten with it
		} else if rerr == nil {
			rerr = fmt.Errorf("%s: %w: the schema message is not the one this package writes", path, ErrCorrupt)
		}
	} else {
		rerr = fmt.Errorf("%s: %w: file missing", path, ErrCorrupt)
	}

	// Replace the file by one holding the rows read.
	tmp := path + ".tmp"
	os.Remove(tmp) // left by a repair that stopped
	w, err = createStream(tmp, schema, header)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("repair %s: %w", path, err)
	}
	fail := func(err error) ([]T, *streamWriter, error, error) {
		w.close()
		os.Remove(tmp)
		return nil, nil, nil, fmt.Errorf("repair %s: %w", path, err)
	}
	if len(rows) > 0 {
		if err := writeBatch(w, encode(rows)); err != nil {
			return fail(err)
		}
		if err := w.sync(); err != nil {
			return fail(err)
		}
	}
	kept, what := "", ".damaged-"
	if upgrade {
		what = ".v1-"
		if olderCols {
			what = ".old-"
		}
	}
	if exists {
		kept = path + what + strconv.FormatInt(time.Now().UnixNano(), 10)
		if err := os.Link(path, kept); err != nil {
			return fail(fmt.Errorf("keep the old file: %w", err))
		}
		kept = ", damaged file kept as " + filepath.Base(kept)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fail(err)
	}
	if err := atomicfile.SyncDir(filepath.Dir(path)); err != nil {
		return fail(err)
	}
	w.path = path
	if upgrade {
		return rows, w, damage, nil
	}
	return rows, w, fmt.Errorf("%w (rewritten with the %d readable records%s)", rerr, len(rows), kept), nil
}

// writtenBeforeAdded reports whether the stream file f's schema message
// (its first schemaEnd bytes) is the one this package wrote before the
// optional columns of cols were added (see FORMAT.md, "Columns added
// later").
func writtenBeforeAdded[T any](f *os.File, schemaEnd int64, cols []column[T]) bool {
	var req []column[T]
	for _, c := range cols {
		if !c.optional {
			req = append(req, c)
		}
	}
	if schemaEnd <= 0 || len(req) == len(cols) {
		return false
	}
	want, err := schemaMessage(schemaOf(req))
	if err != nil || int64(len(want)) != schemaEnd {
		return false
	}
	got := make([]byte, schemaEnd)
	if _, err := f.ReadAt(got, 0); err != nil {
		return false
	}
	return bytes.Equal(got, want)
}

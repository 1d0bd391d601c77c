package rollmap

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/webinspect/webinspect/internal/atomicfile"
	"github.com/webinspect/webinspect/internal/textcheck"
)

// Roll writes one open roll. Its methods are safe for concurrent use; the
// engine calls AddDefects, AddUninspected and SetLength from its assembler
// and Flush from a ticker, while the Store reads the roll for queries.
//
// Rows added are kept in memory and buffered for the files until a Flush.
// Besides the caller's Flush calls, the Roll flushes by itself every
// Options.FlushInterval and as soon as Options.FlushEvery defects wait.
// Once flushed, all but the newest Options.MemoryDefects defects are
// dropped from memory and queries read them from the file. Rows are never
// changed once added, so readers take a view of the rows under the lock
// and read them without it (see rowLog).
type Roll struct {
	store *Store
	dir   string
	id    string
	opts  Options

	// The background flusher: kick asks for a flush now, stop ends it,
	// stopped is closed when it has ended.
	kick     chan struct{}
	stop     chan struct{}
	stopped  chan struct{}
	stopOnce sync.Once

	// mu guards the fields shared with readers.
	mu      sync.Mutex
	meta    RollMeta
	defects rowLog[Defect]      // every defect added, in the order added
	unins   rowLog[Uninspected] // every uninspected range added
	marks   rowLog[MarkEvent]   // every mark event added
	mstate  map[int64]MarkState // marks merged per defect ID
	sorted  bool                // defects are in strictly increasing ID order
	maxID   int64
	// reserved is the defect ID reservation durable in roll.json
	// (metaFile.DefectIDsReserved): no defect above it may be added
	// before roll.json says so. Written with wmu and mu held.
	reserved int64
	// flushedTop is the largest defect ID written and synced (resumed
	// rolls: the largest on disk).
	flushedTop int64
	closed     bool // Close has begun; nothing more can be added
	flushed    int  // defects written by the last Flush (flushedD, for AddDefects)

	// wmu serialises Flush and Close and guards the writer state below.
	wmu      sync.Mutex
	dfile    *streamWriter
	ufile    *streamWriter
	mfile    *streamWriter
	dbuild   *DefectBuilder
	ubuild   *UninspectedBuilder
	mbuild   *MarkEventBuilder
	flushedD int      // defects[:flushedD] are in dfile
	flushedU int      // unins[:flushedU] are in ufile
	flushedM int      // marks[:flushedM] are in mfile
	written  metaFile // the content of roll.json on disk
	done     bool     // Close has finished
}

// createRoll makes the roll directory, its three stream files and roll.json.
func createRoll(s *Store, dir string, meta RollMeta) (_ *Roll, err error) {
	dh, err := defectHeader()
	if err != nil {
		return nil, err
	}
	uh, err := uninspectedHeader()
	if err != nil {
		return nil, err
	}
	mh, err := markEventHeader()
	if err != nil {
		return nil, err
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		if !errors.Is(err, fs.ErrExist) {
			return nil, err
		}
		if err := reclaimUnstarted(dir); err != nil {
			return nil, err
		}
	}
	r := newRoll(s, dir, meta)
	defer func() {
		if err != nil { // remove the directory this call made
			if r.dfile != nil {
				r.dfile.close()
			}
			if r.ufile != nil {
				r.ufile.close()
			}
			if r.mfile != nil {
				r.mfile.close()
			}
			os.RemoveAll(dir)
		}
	}()
	if r.dfile, err = createStream(filepath.Join(dir, DefectsFile), DefectSchema, dh); err != nil {
		return nil, err
	}
	if r.ufile, err = createStream(filepath.Join(dir, UninspectedFile), UninspectedSchema, uh); err != nil {
		return nil, err
	}
	if r.mfile, err = createStream(filepath.Join(dir, MarksFile), MarkEventSchema, mh); err != nil {
		return nil, err
	}
	r.written = metaFile{FormatVersion: FormatVersion, RollMeta: meta}
	if err = writeMetaFile(dir, &r.written); err != nil {
		return nil, err
	}
	if err = atomicfile.SyncDir(filepath.Dir(dir)); err != nil {
		return nil, fmt.Errorf("sync %s: %w", filepath.Dir(dir), err)
	}
	r.start()
	return r, nil
}

func newRoll(s *Store, dir string, meta RollMeta) *Roll {
	return &Roll{store: s, dir: dir, id: meta.ID, opts: s.opts, meta: meta, sorted: true,
		mstate: make(map[int64]MarkState)}
}

// start makes the builders and starts the background flusher of a roll
// whose files are open.
func (r *Roll) start() {
	r.dbuild = NewDefectBuilder(nil)
	r.ubuild = NewUninspectedBuilder(nil)
	r.mbuild = NewMarkEventBuilder(nil)
	r.kick = make(chan struct{}, 1)
	r.stop = make(chan struct{})
	r.stopped = make(chan struct{})
	go r.flusher()
}

// flusher flushes every FlushInterval, and when AddDefects kicks it.
// Its errors are those of Flush: a failed write leaves the rows pending
// for the next Flush, which reports its own failure.
func (r *Roll) flusher() {
	defer close(r.stopped)
	t := time.NewTicker(r.opts.FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
		case <-r.kick:
		}
		r.Flush()
	}
}

// stopFlusher ends the background flusher and waits for it.
func (r *Roll) stopFlusher() {
	r.stopOnce.Do(func() { close(r.stop) })
	<-r.stopped
}

// ID returns the roll's ID.
func (r *Roll) ID() string { return r.id }

// Info returns the roll's summary; counts include rows not yet flushed.
func (r *Roll) Info() RollInfo {
	r.mu.Lock()
	m, nd, us := r.meta, r.defects.len(), r.unins.view()
	r.mu.Unlock()
	return RollInfo{
		ID: m.ID, Recipe: m.Recipe, Material: m.Material, Source: m.Source,
		WebWidthMM: m.WebWidthMM, Started: m.Started, Ended: m.Ended, Open: m.Open,
		LengthM: m.LengthM, Defects: int64(nd), Uninspected: int64(us.n),
		UninspectedM: uninspectedMetres(us.slices(0)...),
		Splices:      slices.Clone(m.Splices), Context: m.Context,
		ContextHistory: slices.Clone(m.ContextHistory),
	}
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

func checkDefect(d *Defect) error {
	if d.ID < 0 {
		return fmt.Errorf("%w: defect ID %d, want >= 0 (0: assign the next ID)", ErrInvalid, d.ID)
	}
	for _, f := range [...]struct {
		name string
		v    float64
	}{
		{"md_start_m", d.MDStartM}, {"md_end_m", d.MDEndM}, {"cd_start_mm", d.CDStartMM},
		{"cd_end_mm", d.CDEndMM}, {"area_mm2", d.AreaMM2}, {"peak_score", d.PeakScore},
		{"mean_score", d.MeanScore}, {"contrast", d.Contrast},
	} {
		if !finite(f.v) {
			return fmt.Errorf("%w: defect %d: %s is %v, want a finite number", ErrInvalid, d.ID, f.name, f.v)
		}
	}
	return nil
}

// AddDefects adds defects to the roll. Each gets the roll's ID as RollID,
// its Time in UTC truncated to the microsecond (as stored), and, if its ID
// is 0, one more than the largest ID added so far. If the roll's RollMeta
// has Lanes, each defect's Lane is set to AssignLane(Lanes, defect),
// whatever it was; otherwise Lane is kept as given. Non-finite values or a
// negative ID reject the whole call with ErrInvalid. The defects are
// visible to queries at once and written to disk by the next Flush.
func (r *Roll) AddDefects(ds ...Defect) error {
	for i := range ds {
		if err := checkDefect(&ds[i]); err != nil {
			return fmt.Errorf("rollmap: roll %s: %w", r.id, err)
		}
	}
	if err := r.reserveFor(ds); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return fmt.Errorf("rollmap: roll %s: add defects: %w", r.id, ErrClosed)
	}
	for _, d := range ds {
		d.RollID = r.id
		d.Time = d.Time.UTC().Truncate(time.Microsecond)
		d.Mark = MarkState{} // derived from the mark events, not stored
		if d.ID == 0 {
			d.ID = r.maxID + 1
		}
		if len(r.meta.Lanes) > 0 {
			d.Lane = AssignLane(r.meta.Lanes, d)
		}
		if r.defects.len() > 0 && d.ID <= r.maxID {
			r.sorted = false
		}
		r.maxID = max(r.maxID, d.ID)
		r.defects.append(d)
	}
	if r.defects.len()-r.flushed >= r.opts.FlushEvery {
		select {
		case r.kick <- struct{}{}:
		default: // a flush is already asked for
		}
	}
	return nil
}

// idReserveStep is how many defect IDs a reservation covers beyond the
// ones in use: roll.json is rewritten for a reservation about once per
// idReserveStep/2 defects, at a flush, and synchronously in AddDefects
// only when a burst outruns it.
const idReserveStep = 4096

// reserveFor makes sure the IDs of ds are covered by the reservation in
// roll.json before they become visible, rewriting roll.json (synced) when
// they are not.
func (r *Roll) reserveFor(ds []Defect) error {
	r.mu.Lock()
	top, next := int64(0), r.maxID
	for _, d := range ds {
		if d.ID == 0 {
			next++
			top = max(top, next)
		} else {
			next = max(next, d.ID)
			top = max(top, d.ID)
		}
	}
	covered := top <= r.reserved
	r.mu.Unlock()
	if covered {
		return nil
	}
	r.wmu.Lock()
	defer r.wmu.Unlock()
	if r.done {
		return fmt.Errorf("rollmap: roll %s: add defects: %w", r.id, ErrClosed)
	}
	m := r.written
	m.DefectIDsReserved = top + idReserveStep
	if err := writeMetaFile(r.dir, &m); err != nil {
		return fmt.Errorf("rollmap: roll %s: reserve defect IDs up to %d: %w", r.id, m.DefectIDsReserved, err)
	}
	r.written = m
	r.mu.Lock()
	r.reserved = max(r.reserved, m.DefectIDsReserved)
	r.mu.Unlock()
	return nil
}

// flushThrough makes sure the defect with ID id, which the roll holds, is
// on disk: it flushes unless a flush already wrote it.
func (r *Roll) flushThrough(id int64) error {
	r.mu.Lock()
	durable := id <= r.flushedTop
	r.mu.Unlock()
	if durable {
		return nil
	}
	err := r.Flush()
	if errors.Is(err, ErrClosed) {
		return nil // Close flushed it, or says why it could not
	}
	return err
}

// AddUninspected adds uninspected ranges, setting their RollID.
// Non-finite positions reject the whole call with ErrInvalid.
func (r *Roll) AddUninspected(us ...Uninspected) error {
	for _, u := range us {
		for _, v := range [...]float64{u.MDStartM, u.MDEndM, u.CDStartMM, u.CDEndMM} {
			if !finite(v) {
				return fmt.Errorf("rollmap: roll %s: %w: uninspected range [%v, %v] m has a non-finite position",
					r.id, ErrInvalid, u.MDStartM, u.MDEndM)
			}
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return fmt.Errorf("rollmap: roll %s: add uninspected: %w", r.id, ErrClosed)
	}
	for _, u := range us {
		u.RollID = r.id
		r.unins.append(u)
	}
	return nil
}

// SetLength records the MD length inspected so far, in metres. Negative or
// non-finite values are ignored. It reaches roll.json with the next Flush.
func (r *Roll) SetLength(m float64) {
	if !(m >= 0) || math.IsInf(m, 0) {
		return
	}
	r.mu.Lock()
	if !r.closed {
		r.meta.LengthM = m
	}
	r.mu.Unlock()
}

// AddSplice records a join in the web at mdM metres on this roll. It
// reaches roll.json with the next Flush (the engine flushes every second).
// The note is free text of at most 256 bytes, without control or
// bidirectional formatting characters (internal/textcheck).
func (r *Roll) AddSplice(mdM float64, note string, t time.Time) error {
	switch {
	case !(mdM >= 0) || math.IsInf(mdM, 0):
		return fmt.Errorf("rollmap: roll %s: splice at %v m: %w: want a finite position >= 0", r.id, mdM, ErrInvalid)
	}
	if err := textcheck.Check("splice note", note, maxSpliceNote); err != nil {
		return fmt.Errorf("rollmap: roll %s: %w: %w", r.id, ErrInvalid, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return fmt.Errorf("rollmap: roll %s: add splice: %w", r.id, ErrClosed)
	}
	r.meta.Splices = append(r.meta.Splices, Splice{MDM: mdM, Time: t.UTC(), Note: note})
	return nil
}

func (r *Roll) snapshotUninspected() rowView[Uninspected] {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.unins.view()
}

// Flush writes the rows added since the last Flush as one record batch per
// file, syncs the files, then rewrites roll.json if anything changed. When
// it returns nil, everything added before the call survives a crash. The
// Roll also calls it by itself (see Options); callers may call it at any
// time, from any goroutine. If a
// write fails the file is cut back to its last complete batch and the rows
// stay pending for the next Flush; if a sync fails, the file's state is
// unknown and every later Flush returns that error.
func (r *Roll) Flush() error {
	r.wmu.Lock()
	defer r.wmu.Unlock()
	if r.done {
		return fmt.Errorf("rollmap: roll %s: flush: %w", r.id, ErrClosed)
	}
	if err := r.flushLocked(); err != nil {
		err = fmt.Errorf("rollmap: roll %s: flush: %w", r.id, err)
		r.store.health.failed(r.id, err, false)
		return err
	}
	r.store.health.ok(r.id)
	return nil
}

// flushLocked writes and syncs the pending rows of every file, then
// roll.json if every write and sync succeeded, so that its counts never
// exceed what the synced files hold.
func (r *Roll) flushLocked() error {
	r.mu.Lock()
	meta, ds, us, ms := r.meta, r.defects.view(), r.unins.view(), r.marks.view()
	reserved, top := r.reserved, r.maxID
	if r.maxID > reserved-idReserveStep/2 {
		// Extend the reservation ahead of the defects to come, with
		// this flush's roll.json, so AddDefects rarely has to.
		reserved = r.maxID + idReserveStep
	}
	r.mu.Unlock()
	var errs []error
	if ds.n > r.flushedD {
		for _, part := range ds.slices(r.flushedD) {
			r.dbuild.Append(part)
		}
		if err := writeBatch(r.dfile, r.dbuild.NewRecordBatch()); err != nil {
			errs = append(errs, err)
		} else {
			r.flushedD = ds.n
		}
	}
	if us.n > r.flushedU {
		for _, part := range us.slices(r.flushedU) {
			r.ubuild.Append(part)
		}
		if err := writeBatch(r.ufile, r.ubuild.NewRecordBatch()); err != nil {
			errs = append(errs, err)
		} else {
			r.flushedU = us.n
		}
	}
	if ms.n > r.flushedM {
		for _, part := range ms.slices(r.flushedM) {
			r.mbuild.Append(part)
		}
		if err := writeBatch(r.mfile, r.mbuild.NewRecordBatch()); err != nil {
			errs = append(errs, err)
		} else {
			r.flushedM = ms.n
		}
	}
	for _, f := range []*streamWriter{r.dfile, r.ufile, r.mfile} {
		if err := f.sync(); err != nil {
			errs = append(errs, err)
		}
	}
	r.mu.Lock()
	r.flushed = r.flushedD
	if len(errs) == 0 {
		r.flushedTop = max(r.flushedTop, top)
	}
	if n := r.opts.MemoryDefects; n > 0 && len(errs) == 0 {
		// Only rows on disk (written and synced) may leave memory.
		r.defects.drop(min(r.flushedD, r.defects.len()-n))
	}
	r.mu.Unlock()
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	m := metaFile{
		FormatVersion: FormatVersion, RollMeta: meta,
		Defects: int64(r.flushedD), Uninspected: int64(r.flushedU), MarkEvents: int64(r.flushedM),
		UninspectedM:      uninspectedMetres(us.prefix(r.flushedU).slices(0)...),
		DefectIDsReserved: max(reserved, r.written.DefectIDsReserved),
	}
	if reflect.DeepEqual(m, r.written) {
		return nil
	}
	if err := writeMetaFile(r.dir, &m); err != nil {
		return err
	}
	r.written = m
	r.mu.Lock()
	r.reserved = max(r.reserved, m.DefectIDsReserved)
	r.mu.Unlock()
	return nil
}

func writeBatch(s *streamWriter, rec arrow.RecordBatch) error {
	defer rec.Release()
	return s.write(rec)
}

// Close flushes, marks the roll ended (Open false, Ended now), ends both
// streams and closes the files; the roll is then served from disk. Close
// always ends the roll: if the final flush fails, the rows added since the
// last successful Flush are not on disk, and the error says how many.
//
// Then Close writes defects.parquet, uninspected.parquet, marks.parquet
// and summary.json from the rows in the streams. A failure there is reported in Close's
// error (naming the file) but does not touch the streams, which remain the
// roll's complete record. Calls after the first return ErrClosed.
func (r *Roll) Close() error {
	r.stopFlusher()
	r.wmu.Lock()
	defer r.wmu.Unlock()
	if r.done {
		return fmt.Errorf("rollmap: roll %s: close: %w", r.id, ErrClosed)
	}
	r.mu.Lock()
	r.closed = true // no more rows; readers still see everything in memory
	r.meta.Open = false
	r.meta.Ended = time.Now().UTC()
	r.mu.Unlock()

	var errs []error
	ferr := r.flushLocked()
	if ferr != nil {
		r.mu.Lock()
		lostD, lostU, lostM := r.defects.len()-r.flushedD, r.unins.len()-r.flushedU, r.marks.len()-r.flushedM
		meta := r.meta
		r.mu.Unlock()
		errs = append(errs, fmt.Errorf("final flush: %w (%d defects, %d uninspected ranges and %d mark events not on disk)",
			ferr, lostD, lostU, lostM))
		r.store.health.failed(r.id, fmt.Errorf("rollmap: roll %s: closed with rows not on disk: %w", r.id, errs[0]), true)
		// Still mark the roll closed on disk, with its true length and
		// the counts last known to be synced; on a full disk the store's
		// reserve makes room for this one write.
		m := r.written
		m.RollMeta = meta
		if err := r.store.writeMetaFileReserve(r.dir, &m); err != nil {
			errs = append(errs, err)
		}
	}
	for _, f := range []*streamWriter{r.dfile, r.ufile, r.mfile} {
		if err := f.close(); err != nil {
			errs = append(errs, err)
		}
	}
	// The IPC streams are complete; the Parquet copies and the summary
	// are derived from the rows they hold, and failing to write them
	// loses nothing.
	if err := r.finish(); err != nil {
		errs = append(errs, err)
	}
	r.dbuild.Release()
	r.ubuild.Release()
	r.mbuild.Release()
	r.done = true
	r.store.remove(r)
	if ferr == nil {
		r.store.health.ok(r.id)
	}
	if len(errs) > 0 {
		return fmt.Errorf("rollmap: roll %s: close: %w", r.id, errors.Join(errs...))
	}
	return nil
}

// finish writes the derived files of a closed roll from the rows on disk
// (the flushed prefix of the rows in memory): the three Parquet files and
// summary.json. Each is written atomically; one failing does not stop the
// others.
func (r *Roll) finish() error {
	r.mu.Lock()
	meta, dv, uv := r.meta, r.defects.view().prefix(r.flushedD), r.unins.view().prefix(r.flushedU)
	mv := r.marks.view().prefix(r.flushedM)
	r.mu.Unlock()
	mparts := mv.slices(0)
	marks := make(map[int64]MarkState)
	for _, p := range mparts {
		mergeMarksInto(marks, p)
	}
	dparts, uparts := dv.slices(0), uv.slices(0)
	var errs []error
	if dv.base > 0 {
		// Rows left memory: read the stream, now complete, back.
		path := filepath.Join(r.dir, DefectsFile)
		ds, err := readStream(nil, path, defectColumns)
		if err != nil {
			return fmt.Errorf("parquet and summary not written (the IPC data is as it is): %w", err)
		}
		dparts, _ = cutParts([][]Defect{ds}, r.flushedD)
	}
	if err := writeParquetFile(r.dir, DefectsParquetFile, defectColumns, DefectSchema, contextMetadata(meta), dparts); err != nil {
		errs = append(errs, fmt.Errorf("parquet (the IPC data is intact): %w", err))
	}
	if err := writeParquetFile(r.dir, UninspectedParquetFile, uninspectedColumns, UninspectedSchema, contextMetadata(meta), uparts); err != nil {
		errs = append(errs, fmt.Errorf("parquet (the IPC data is intact): %w", err))
	}
	if err := writeParquetFile(r.dir, MarksParquetFile, markEventColumns, MarkEventSchema, contextMetadata(meta), mparts); err != nil {
		errs = append(errs, fmt.Errorf("parquet (the IPC data is intact): %w", err))
	}
	sum := summarize(meta, dparts, uparts, marks)
	if err := writeSummaryFile(r.dir, &sum); err != nil {
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		if err := atomicfile.SyncDir(r.dir); err != nil {
			return fmt.Errorf("sync %s: %w", r.dir, err)
		}
	}
	return errors.Join(errs...)
}

// remove forgets an open roll once it is closed.
func (s *Store) remove(r *Roll) {
	s.mu.Lock()
	if s.open[r.id] == r {
		delete(s.open, r.id)
	}
	s.mu.Unlock()
}

// reclaimUnstarted handles a roll directory that already exists. One
// without roll.json is what a kill between the directory's creation and
// roll.json's leaves (roll.json is written last, and no record can be
// added before StartRoll returns): nothing in it was ever taken, so it is
// removed and made again, and the roll can start. One with roll.json is a
// roll: ErrRollExists. The store's lock keeps any other engine out.
func reclaimUnstarted(dir string) error {
	if _, err := os.Lstat(filepath.Join(dir, MetaFile)); !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w (%s)", ErrRollExists, dir)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove the unstarted roll %s: %w", dir, err)
	}
	return os.Mkdir(dir, 0o755)
}

package rollmap

import (
	"cmp"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/webinspect/webinspect/internal/atomicfile"
	"github.com/webinspect/webinspect/internal/boundedfile"

	"github.com/webinspect/webinspect/internal/dirlock"
	"github.com/webinspect/webinspect/internal/textcheck"
)

// RollMeta describes a roll: what was inspected and when. It is stored in
// the roll's roll.json.
type RollMeta struct {
	ID         string    `json:"id"`
	Recipe     string    `json:"recipe"`
	Material   string    `json:"material"`
	Source     string    `json:"source"`
	WebWidthMM float64   `json:"web_width_mm"`
	Started    time.Time `json:"started"`
	Ended      time.Time `json:"ended,omitzero"`
	LengthM    float64   `json:"length_m"` // MD length inspected (from the encoder)
	Open       bool      `json:"open"`     // not yet closed

	// Lanes is the roll's lane layout (see LanesOptions; absent: no lanes).
	// When set, AddDefects assigns every defect's Lane with AssignLane.
	Lanes []Lane `json:"lanes,omitempty"`
	// Grading, with Lanes, grades each lane in the roll's summary.json
	// when the roll is closed.
	Grading *GradingScheme `json:"grading,omitempty"`
	// Splices are the joins in the web recorded on this roll
	// (Roll.AddSplice), in the order they were made.
	Splices []Splice `json:"splices,omitempty"`
	// Context is the roll's production context (product, lot, supplier,
	// shift, operator, order); ContextHistory every change of it, oldest
	// first, with who made it and when (SetContext).
	Context        RollContext     `json:"context,omitzero"`
	ContextHistory []ContextChange `json:"context_history,omitempty"`
}

// Splice is a join in the web: where on the roll (MD, m) it passed the
// cameras, when, and the operator's note.
type Splice struct {
	MDM  float64   `json:"md_m"`
	Time time.Time `json:"time"`
	Note string    `json:"note,omitempty"`
}

// maxSpliceNote bounds a splice note, in bytes.
const maxSpliceNote = textcheck.MaxNote

// metaFile is the content of roll.json: the roll's metadata and the row
// counts of its data files as of the last completed flush.
type metaFile struct {
	FormatVersion string `json:"format_version"`
	RollMeta
	Defects      int64   `json:"defects"`
	Uninspected  int64   `json:"uninspected_ranges"`
	UninspectedM float64 `json:"uninspected_m"`
	MarkEvents   int64   `json:"mark_events,omitempty"` // absent in rolls written before marks existed
	// DefectIDsReserved is the highest defect ID this roll may have
	// handed out (to the live feed, a marker, a reviewer) before its rows
	// were flushed. A resumed roll continues above it, so an ID is never
	// given to two defects, even after kill -9. Absent in older rolls.
	DefectIDsReserved int64 `json:"defect_ids_reserved,omitempty"`
}

func (m *metaFile) info() RollInfo {
	return RollInfo{
		ID: m.ID, Recipe: m.Recipe, Material: m.Material, Source: m.Source,
		WebWidthMM: m.WebWidthMM, Started: m.Started, Ended: m.Ended, Open: m.Open,
		LengthM: m.LengthM, Defects: m.Defects, Uninspected: m.Uninspected, UninspectedM: m.UninspectedM,
		Splices: slices.Clone(m.Splices), Context: m.Context,
		ContextHistory: slices.Clone(m.ContextHistory),
	}
}

// maxIDLen is the longest roll ID accepted.
const maxIDLen = 64

// ReservedRollIDs are names a roll cannot take, compared without case: they
// are the names of other things kept in the rolls directory ("images", the
// image archive of webinspect run; "versions", the version registry,
// rollmap/versions). A roll directory of such a name is not listed as a
// roll.
var ReservedRollIDs = []string{"images", "versions"}

// ValidRollID reports whether id can name a roll: 1 to 64 bytes of
// [A-Za-z0-9._-], starting with a letter or digit, and not one of
// ReservedRollIDs. Such an ID is a single plain path element (never ".",
// ".." or a hidden file) and cannot be taken for a command-line flag. The
// error wraps ErrBadRollID.
func ValidRollID(id string) error {
	if id == "" || len(id) > maxIDLen {
		return fmt.Errorf("%w: %.64q: length %d, want 1 to %d", ErrBadRollID, id, len(id), maxIDLen)
	}
	for _, r := range ReservedRollIDs {
		if strings.EqualFold(id, r) {
			return fmt.Errorf("%w: %q is reserved (the rolls directory's %s folder)", ErrBadRollID, id, r)
		}
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if i == 0 && !alnum {
			return fmt.Errorf("%w: %q: must start with a letter or digit", ErrBadRollID, id)
		}
		if !alnum && c != '.' && c != '_' && c != '-' {
			return fmt.Errorf("%w: %q: byte %d is %q, allowed are A-Z a-z 0-9 . _ -", ErrBadRollID, id, i, c)
		}
	}
	return nil
}

// NewRollID returns an ID made of the UTC time t and a random suffix,
// e.g. "R20250314-061502-3f9a".
func NewRollID(t time.Time) string {
	var r [2]byte
	rand.Read(r[:]) // never fails (crypto/rand)
	return "R" + t.UTC().Format("20060102-150405") + "-" + hex.EncodeToString(r[:])
}

// Store is a directory of rolls. Its methods are safe for concurrent use.
type Store struct {
	root   string
	opts   Options
	mu     sync.Mutex
	open   map[string]*Roll
	closed bool

	// cmu guards cache: the defects file of the roll read last (a closed
	// roll, or the rows an open roll no longer keeps in memory), so that
	// a reviewer paging through a roll does not re-read its file for
	// every page. It holds one roll at most (about 26 MB for 100 000
	// defects). Reading a file is done under cmu.
	cmu    sync.Mutex
	cache  *diskCache
	mcache *markCache // the merged marks of the disk roll read last

	// ctxMu serialises SetContext on closed rolls (read, change and
	// replace roll.json).
	ctxMu sync.Mutex

	reviews reviewLogs // the review log of each roll touched (review.go)

	lock *dirlock.Lock // held from the first write (Lock, StartRoll, ResumeRoll) to Close

	health persistHealth // failed flushes of the rolls written (persist.go)
}

// OpenStore opens the store at root with DefaultOptions, creating the
// directory if needed. Rolls left open by a process that stopped are listed
// and readable, with Open false and a zero Ended time; Recover lists them
// and ResumeRoll reopens one for writing.
func OpenStore(root string) (*Store, error) {
	return OpenStoreOptions(root, DefaultOptions())
}

// OpenStoreOptions is OpenStore with the options of the rolls it writes.
func OpenStoreOptions(root string, o Options) (*Store, error) {
	if err := o.Validate(); err != nil {
		return nil, fmt.Errorf("rollmap: open store: %w", err)
	}
	if root == "" {
		return nil, fmt.Errorf("rollmap: open store: %w: root directory is empty", ErrInvalid)
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("rollmap: open store: %w", err)
	}
	return &Store{root: filepath.Clean(root), opts: o, open: make(map[string]*Roll)}, nil
}

// Options returns the options the Store was opened with.
func (s *Store) Options() Options { return s.opts }

// Root returns the store's directory.
func (s *Store) Root() string { return s.root }

// Close closes every open roll (see Roll.Close) and makes StartRoll fail
// with ErrClosed. Reads keep working from disk.
func (s *Store) Close() error {
	s.mu.Lock()
	s.closed = true
	rolls := make([]*Roll, 0, len(s.open))
	for _, r := range s.open {
		rolls = append(rolls, r)
	}
	s.mu.Unlock()
	var errs []error
	for _, r := range rolls {
		if err := r.Close(); err != nil && !errors.Is(err, ErrClosed) {
			errs = append(errs, err)
		}
	}
	s.mu.Lock()
	errs = append(errs, s.lock.Release())
	s.lock = nil
	s.mu.Unlock()
	return errors.Join(errs...)
}

// Lock makes this Store the only writer of its directory until Close: it
// takes an exclusive lock (flock) on ROOT/.lock. Another process that
// holds it makes Lock fail with ErrLocked, naming the holder's PID. StartRoll
// and ResumeRoll take the lock themselves; a writer calls Lock at start-up
// to fail before it does anything else. Readers never need it.
func (s *Store) Lock() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("rollmap: lock store: %w", ErrClosed)
	}
	if err := s.lockLocked(); err != nil {
		return fmt.Errorf("rollmap: %w", err)
	}
	return nil
}

// Unlock releases the directory lock Lock, StartRoll or ResumeRoll took,
// leaving any roll open as it is (a process that stops with a roll open
// leaves it to be resumed). Call it when this process writes no more.
func (s *Store) Unlock() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.lock.Release()
	s.lock = nil
	return err
}

// lockLocked takes the directory lock if this Store does not hold it yet.
// s.mu is held.
func (s *Store) lockLocked() error {
	if s.lock != nil {
		return nil
	}
	l, err := dirlock.Acquire(s.root, "roll store")
	if err != nil {
		if errors.Is(err, dirlock.ErrLocked) {
			return fmt.Errorf("%w: %w", ErrLocked, err)
		}
		return err
	}
	s.lock = l
	s.ensureReserve()
	return nil
}

// The disk reserve: a full disk must not leave a roll open with a stale
// roll.json (length 0, no defects) while its streams hold defects. The
// writer of a store keeps ReserveFile, ReserveBytes of allocated zeros, in
// the store's root. When a closing roll cannot write roll.json because the
// disk is full (ENOSPC), the reserve is deleted and the write tried again,
// so the roll is closed with its true length and the counts its files
// hold. The reserve is made again when the store is next locked. Its name
// starts with a dot, so it is never taken for a roll.
const (
	ReserveFile  = ".reserve"
	ReserveBytes = 1 << 20
)

// metaWriteFault, when set by a test, is called before each roll.json
// write and its error returned in place of the write's.
var metaWriteFault func(dir string) error

// ensureReserve writes the disk reserve if it is missing or short; best
// effort (a disk already full has no room for it). s.mu is held.
func (s *Store) ensureReserve() {
	path := filepath.Join(s.root, ReserveFile)
	if st, err := os.Stat(path); err == nil && st.Size() >= ReserveBytes {
		return
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return
	}
	_, err = f.Write(make([]byte, ReserveBytes)) // zeros written, not a hole: the blocks are allocated
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
	}
}

// releaseReserve deletes the disk reserve and reports whether there was
// one to delete.
func (s *Store) releaseReserve() bool {
	return os.Remove(filepath.Join(s.root, ReserveFile)) == nil
}

// writeMetaFileReserve is writeMetaFile that, on a full disk, frees the
// store's disk reserve and tries once more.
func (s *Store) writeMetaFileReserve(dir string, m *metaFile) error {
	err := writeMetaFile(dir, m)
	if errors.Is(err, syscall.ENOSPC) && s.releaseReserve() {
		err = writeMetaFile(dir, m)
	}
	return err
}

// StartRoll creates a new roll and returns its writer. An empty meta.ID is
// replaced by NewRollID(meta.Started); a zero Started by the current time.
// Open is set and Ended cleared. The roll's directory, its two (empty)
// stream files and roll.json are on disk, synced, when StartRoll returns.
func (s *Store) StartRoll(meta RollMeta) (*Roll, error) {
	if meta.Started.IsZero() {
		meta.Started = time.Now()
	}
	meta.Started = meta.Started.UTC()
	generated := meta.ID == ""
	if generated {
		meta.ID = NewRollID(meta.Started)
	}
	if err := ValidRollID(meta.ID); err != nil {
		return nil, fmt.Errorf("rollmap: start roll: %w", err)
	}
	if err := checkMeta(meta); err != nil {
		return nil, fmt.Errorf("rollmap: start roll %s: %w", meta.ID, err)
	}
	meta.Open, meta.Ended = true, time.Time{}
	meta.Lanes = slices.Clone(meta.Lanes) // the roll's own copy: the caller may reuse its slice
	meta.Grading = meta.Grading.clone()

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, fmt.Errorf("rollmap: start roll %s: store %w", meta.ID, ErrClosed)
	}
	if err := s.lockLocked(); err != nil {
		return nil, fmt.Errorf("rollmap: start roll %s: %w", meta.ID, err)
	}
	var (
		r   *Roll
		err error
	)
	for try := 0; ; try++ {
		if _, ok := s.open[meta.ID]; ok {
			err = fmt.Errorf("%w (open)", ErrRollExists)
		} else {
			r, err = createRoll(s, filepath.Join(s.root, meta.ID), meta)
		}
		// A generated ID can collide within the same second: draw another.
		if !generated || try == 4 || !errors.Is(err, ErrRollExists) {
			break
		}
		meta.ID = NewRollID(meta.Started)
	}
	if err != nil {
		return nil, fmt.Errorf("rollmap: start roll %s: %w", meta.ID, err)
	}
	s.open[meta.ID] = r
	return r, nil
}

func checkMeta(m RollMeta) error {
	if err := textcheck.Check("Recipe", m.Recipe, textcheck.MaxName); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if err := textcheck.Check("Material", m.Material, textcheck.MaxName); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	for i, sp := range m.Splices {
		if err := textcheck.Check(fmt.Sprintf("Splices[%d].Note", i), sp.Note, maxSpliceNote); err != nil {
			return fmt.Errorf("%w: %w", ErrInvalid, err)
		}
	}
	if err := m.Context.Check(); err != nil {
		return err
	}
	if !(m.WebWidthMM >= 0) || math.IsInf(m.WebWidthMM, 0) {
		return fmt.Errorf("%w: WebWidthMM %v, want finite and >= 0", ErrInvalid, m.WebWidthMM)
	}
	if !(m.LengthM >= 0) || math.IsInf(m.LengthM, 0) {
		return fmt.Errorf("%w: LengthM %v, want finite and >= 0", ErrInvalid, m.LengthM)
	}
	if err := validateLanes(m.Lanes); err != nil {
		return err
	}
	if m.Grading != nil {
		if err := m.Grading.Validate(); err != nil {
			return err
		}
	}
	return nil
}

// List returns every roll: the rolls this Store has open and those found on
// disk, newest (latest Started) first. If some roll directories could not be
// read, the others are returned together with an error naming them.
func (s *Store) List() ([]RollInfo, error) {
	s.mu.Lock()
	infos := make([]RollInfo, 0, len(s.open))
	for _, r := range s.open {
		infos = append(infos, r.Info())
	}
	s.mu.Unlock()
	seen := make(map[string]bool, len(infos))
	for _, in := range infos {
		seen[in.ID] = true
	}
	entries, err := os.ReadDir(s.root)
	if err != nil {
		return nil, fmt.Errorf("rollmap: list %s: %w", s.root, err)
	}
	var errs []error
	for _, e := range entries {
		id := e.Name()
		if !e.IsDir() || seen[id] || ValidRollID(id) != nil {
			continue
		}
		m, err := readMetaFile(filepath.Join(s.root, id))
		if errors.Is(err, ErrNotFound) {
			continue // a start that did not complete, or not a roll
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if m.ID != id {
			errs = append(errs, fmt.Errorf("rollmap: %s: %w: roll.json names roll %q", filepath.Join(s.root, id), ErrCorrupt, m.ID))
			continue
		}
		infos = append(infos, s.diskInfo(&m))
	}
	slices.SortFunc(infos, func(a, b RollInfo) int {
		if c := b.Started.Compare(a.Started); c != 0 {
			return c
		}
		return cmp.Compare(b.ID, a.ID)
	})
	return infos, errors.Join(errs...)
}

// lookup returns the open roll of that ID, or the roll's directory.
func (s *Store) lookup(id string) (*Roll, string, error) {
	if err := ValidRollID(id); err != nil {
		return nil, "", fmt.Errorf("rollmap: %w", err)
	}
	s.mu.Lock()
	r := s.open[id]
	s.mu.Unlock()
	return r, filepath.Join(s.root, id), nil
}

// Roll returns the summary of one roll.
func (s *Store) Roll(id string) (RollInfo, error) {
	r, dir, err := s.lookup(id)
	if err != nil {
		return RollInfo{}, err
	}
	if r != nil {
		return r.Info(), nil
	}
	m, err := readMetaFile(dir)
	if err != nil {
		return RollInfo{}, err
	}
	return s.diskInfo(&m), nil
}

// diskInfo summarises a roll from its roll.json. A roll.json that still
// says open belongs to a roll this Store is not writing: either it was just
// started (then the open roll answers) or its writer stopped without
// closing it (then it is reported closed, with a zero Ended time).
func (s *Store) diskInfo(m *metaFile) RollInfo {
	if m.Open {
		s.mu.Lock()
		r := s.open[m.ID]
		s.mu.Unlock()
		if r != nil {
			return r.Info()
		}
	}
	in := m.info()
	in.Open = false
	return in
}

// Defects returns the defects of roll id that match q, sorted by ID, each
// with its Mark merged from the roll's mark events and its ReviewStatus and
// ReviewLabel from its newest review (AddReview). An open roll is served
// from memory, including rows and mark events not yet flushed, and, for the
// rows it no longer keeps in memory (see Options.MemoryDefects), from its
// file; other rolls from disk. If the roll's defect or marks file is
// truncated or damaged, the matching defects before the damage (with the
// marks read before the damage) are returned with the error.
func (s *Store) Defects(id string, q Query) ([]Defect, error) {
	if err := checkQuery(q); err != nil {
		return nil, fmt.Errorf("rollmap: roll %s: %w", id, err)
	}
	r, dir, err := s.lookup(id)
	if err != nil {
		return nil, err
	}
	var (
		parts  [][]Defect
		sorted bool
		rerr   error
		marks  markLookup
	)
	if r != nil {
		parts, sorted, _, _, rerr = s.openRows(r)
		marks.r = r
		if q.MarkStatus != "" {
			marks.m = r.copyMarkStates()
		}
	} else {
		if _, err := readMetaFile(dir); err != nil {
			return nil, err
		}
		parts, sorted, rerr = s.diskDefects(id, dir, -1)
		var merr error
		marks.m, merr = s.diskMarks(id, dir)
		rerr = errors.Join(rerr, merr)
	}
	revs, verr := s.reviewStates(id, dir)
	rerr = errors.Join(rerr, verr)
	// Count first, so the result is allocated once at its size: growing
	// it by append would copy a large result several times.
	cq := q
	if !sorted {
		cq.Limit = 0 // the first Limit matches in ID order are not the first found
	}
	n := countDefects(parts, cq, sorted, marks.m, revs)
	out := filterDefects(make([]Defect, 0, n), parts, q, sorted, marks.m, revs)
	marks.fill(out)
	fillReviews(out, revs)
	if rerr != nil {
		rerr = fmt.Errorf("rollmap: roll %s: %w", id, rerr)
	}
	return out, rerr
}

// EachDefect calls fn with every defect of roll id that matches q, as
// Defects would return it (Mark and review merged; AfterID and Limit
// applied, Limit in the order stored), but without building a result:
// aggregating the 100 000 defects of a long roll this way copies nothing.
// Defects come in the order stored, which is ID order unless the writer
// added them out of order. *d is valid only during the call and must be
// neither modified nor kept (it may be a row shared with other readers);
// fn returns false to stop. Errors are as for Defects: a damaged file
// gives the defects before the damage, then the error.
func (s *Store) EachDefect(id string, q Query, fn func(d *Defect) bool) error {
	if err := checkQuery(q); err != nil {
		return fmt.Errorf("rollmap: roll %s: %w", id, err)
	}
	r, dir, err := s.lookup(id)
	if err != nil {
		return err
	}
	var (
		parts  [][]Defect
		sorted bool
		rerr   error
		marks  map[int64]MarkState
	)
	if r != nil {
		parts, sorted, _, _, rerr = s.openRows(r)
		marks = r.copyMarkStates()
	} else {
		if _, err := readMetaFile(dir); err != nil {
			return err
		}
		parts, sorted, rerr = s.diskDefects(id, dir, -1)
		var merr error
		marks, merr = s.diskMarks(id, dir)
		rerr = errors.Join(rerr, merr)
	}
	revs, verr := s.reviewStates(id, dir)
	rerr = errors.Join(rerr, verr)
	if rerr != nil {
		rerr = fmt.Errorf("rollmap: roll %s: %w", id, rerr)
	}
	var d Defect
	n := 0
	for _, p := range parts {
		i, ok := firstAfter(p, sorted, q.AfterID)
		if !ok {
			continue
		}
		for ; i < len(p); i++ {
			if !q.matches(&p[i], marks, revs) {
				continue
			}
			row := &p[i]
			m, marked := marks[row.ID]
			rv, reviewed := revs[row.ID]
			if marked || reviewed { // merge into a copy: the rows are shared
				d = *row
				d.Mark = m
				if reviewed {
					applyReview(&d, rv)
				}
				row = &d
			}
			if !fn(row) {
				return rerr
			}
			if n++; n == q.Limit {
				return rerr
			}
		}
	}
	return rerr
}

// openRows returns what open roll r holds: its defects in the order added
// (the rows dropped from memory read from its file, then the rows in
// memory) and whether they are in ID order, its metadata and its
// uninspected ranges. An error says the file did not give back the rows
// dropped from memory; the parts then hold what it gave.
func (s *Store) openRows(r *Roll) (parts [][]Defect, sorted bool, meta RollMeta, us rowView[Uninspected], err error) {
	r.mu.Lock()
	v, sorted, meta, us := r.defects.view(), r.sorted, r.meta, r.unins.view()
	r.mu.Unlock()
	mem := v.slices(0)
	if v.base == 0 {
		return mem, sorted, meta, us, nil
	}
	disk, _, err := s.diskDefects(r.id, r.dir, v.base)
	disk, n := cutParts(disk, v.base)
	if n < v.base {
		err = errors.Join(err, fmt.Errorf("%s: %w: %d defects, want the %d flushed and no longer in memory",
			filepath.Join(r.dir, DefectsFile), ErrTruncated, n, v.base))
		return disk, false, meta, us, err
	}
	return append(disk, mem...), sorted, meta, us, nil
}

// cutParts returns the parts holding the first n rows of parts (fewer if
// parts hold fewer) and how many rows they hold.
func cutParts[T any](parts [][]T, n int) ([][]T, int) {
	out := make([][]T, 0, len(parts)+n/chunkRows+2)
	got := 0
	for _, p := range parts {
		if got == n {
			break
		}
		k := min(len(p), n-got)
		out = append(out, p[:k])
		got += k
	}
	return out, got
}

// diskCache is the defects file of the roll read last, in file order, as
// parts that are shared by every reader and never modified. The file is
// append-only, so when it grows only the batches after end are read
// (extend); the FileInfo tells a replaced file (another inode) apart.
type diskCache struct {
	id     string
	fi     os.FileInfo // the file when read, for os.SameFile
	size   int64
	mod    time.Time
	hdr    []byte // the file's schema message
	end    int64  // offset after the last record batch read (EOS excluded)
	parts  [][]Defect
	n      int
	sorted bool  // the rows are in ID order
	err    error // ErrTruncated for a partial tail at size
}

// maxCacheParts is the number of parts a diskCache merges into one.
const maxCacheParts = 32

// diskDefects returns the defects of the roll in dir in file order, as
// parts shared with the Store's cache (the caller must not modify them),
// and whether they are in ID order. need >= 0 asks only for the first need
// rows (an open roll's flushed rows): a cache holding them is used without
// looking at the file. The cache keeps the last roll read; a file that grew
// since is read from where the cache ends. A read error returns the rows
// before the damage.
func (s *Store) diskDefects(id, dir string, need int) (parts [][]Defect, sorted bool, err error) {
	path := filepath.Join(dir, DefectsFile)
	s.cmu.Lock()
	defer s.cmu.Unlock()
	c := s.cache
	if c != nil && c.id != id {
		c = nil
	}
	if c != nil && need >= 0 && c.n >= need {
		return c.parts, c.sorted, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, false, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, false, err
	}
	if c != nil && (!os.SameFile(c.fi, st) || st.Size() < c.end) {
		c = nil // replaced or cut back: read it again
	}
	if c != nil && c.size == st.Size() && c.mod.Equal(st.ModTime()) {
		return c.parts, c.sorted, c.err
	}
	nc := &diskCache{id: id, fi: st, size: st.Size(), mod: st.ModTime(), sorted: true}
	var (
		off  int64
		prev int64 = -1 << 63
	)
	if c != nil {
		nc.hdr, off, nc.parts, nc.n, nc.sorted = c.hdr, c.end, slices.Clone(c.parts), c.n, c.sorted
		if k := len(c.parts); k > 0 && len(c.parts[k-1]) > 0 {
			prev = c.parts[k-1][len(c.parts[k-1])-1].ID
		}
	}
	rows, sc, err := readBatches(nil, f, nc.hdr, off, st.Size(), path, defectColumns)
	if off == 0 && sc.schemaEnd > 0 {
		nc.hdr = make([]byte, sc.schemaEnd)
		if _, rerr := f.ReadAt(nc.hdr, 0); rerr != nil {
			err = errors.Join(err, rerr)
			nc.hdr = nil
		}
	}
	for i := range rows {
		if rows[i].ID < prev {
			nc.sorted = false
		}
		prev = rows[i].ID
	}
	if len(rows) > 0 {
		nc.parts = append(nc.parts, rows)
		nc.n += len(rows)
	}
	if len(nc.parts) > maxCacheParts {
		all := make([]Defect, 0, nc.n)
		for _, p := range nc.parts {
			all = append(all, p...)
		}
		nc.parts = [][]Defect{all}
	}
	if (err == nil || errors.Is(err, ErrTruncated)) && nc.hdr != nil {
		nc.end, nc.err = sc.batchEnd, err
		s.cache = nc
	}
	return nc.parts, nc.sorted, err
}

// Uninspected returns the uninspected ranges of roll id in the order they
// were recorded. Errors are as for Defects.
func (s *Store) Uninspected(id string) ([]Uninspected, error) {
	r, dir, err := s.lookup(id)
	if err != nil {
		return nil, err
	}
	if r != nil {
		return r.snapshotUninspected().appendTo(nil, 0), nil
	}
	if _, err := readMetaFile(dir); err != nil {
		return nil, err
	}
	us, err := readStream(nil, filepath.Join(dir, UninspectedFile), uninspectedColumns)
	if err != nil {
		err = fmt.Errorf("rollmap: roll %s: %w", id, err)
	}
	return us, err
}

func byID(a, b Defect) int { return cmp.Compare(a.ID, b.ID) }

func checkQuery(q Query) error {
	switch {
	case q.Limit < 0:
		return fmt.Errorf("%w: query Limit %d, want 0 (no limit) or more", ErrInvalid, q.Limit)
	case math.IsNaN(q.MDFromM) || math.IsInf(q.MDFromM, 0):
		return fmt.Errorf("%w: query MDFromM %v, want a finite number", ErrInvalid, q.MDFromM)
	case math.IsNaN(q.MDToM) || math.IsInf(q.MDToM, 0):
		return fmt.Errorf("%w: query MDToM %v, want a finite number (0: no upper bound)", ErrInvalid, q.MDToM)
	case q.ByLane && q.Lane < NoLane:
		return fmt.Errorf("%w: query Lane %d, want a lane index >= 0 or %d (outside every lane)", ErrInvalid, q.Lane, NoLane)
	case q.MarkStatus != "" && q.MarkStatus != MarkNone && markRank(q.MarkStatus) == 0:
		return fmt.Errorf("%w: query MarkStatus %q, want \"\" (no filter), %q, %s, %s, %s, %s or %s", ErrInvalid, q.MarkStatus,
			MarkNone, MarkScheduled, MarkFired, MarkAcknowledged, MarkLate, MarkMissed)
	}
	return nil
}

// matches reports whether d passes every filter of q other than Limit;
// marks holds the mark states (needed only with q.MarkStatus), revs the
// newest reviews (needed only with q.ReviewStatus).
func (q *Query) matches(d *Defect, marks map[int64]MarkState, revs map[int64]Review) bool {
	return (q.MDFromM == 0 || d.MDEndM >= q.MDFromM) &&
		(q.MDToM == 0 || d.MDStartM <= q.MDToM) &&
		(q.Class == "" || d.Class == q.Class) &&
		(q.Decision == "" || d.Decision == q.Decision) &&
		(!q.ByLane || d.Lane == q.Lane) &&
		(q.ReviewStatus == "" || reviewMatches(q.ReviewStatus, reviewStatus(d, revs))) &&
		(q.MarkStatus == "" || markMatches(q.MarkStatus, marks[d.ID].Status)) &&
		d.ID > q.AfterID
}

// firstAfter returns the index in p of the first defect that can have an
// ID above after (0 when p is not in ID order or after is 0), and false
// when no defect of p can.
func firstAfter(p []Defect, sorted bool, after int64) (int, bool) {
	if !sorted || after <= 0 {
		return 0, true
	}
	if len(p) > 0 && p[len(p)-1].ID <= after {
		return 0, false
	}
	return sort.Search(len(p), func(k int) bool { return p[k].ID > after }), true
}

// countDefects returns how many defects of parts match q, at most
// q.Limit; sorted is as for filterDefects.
func countDefects(parts [][]Defect, q Query, sorted bool, marks map[int64]MarkState, revs map[int64]Review) int {
	n := 0
	for _, p := range parts {
		i, ok := firstAfter(p, sorted, q.AfterID)
		if !ok {
			continue
		}
		for ; i < len(p); i++ {
			if q.matches(&p[i], marks, revs) {
				if n++; n == q.Limit {
					return n
				}
			}
		}
	}
	return n
}

// filterDefects appends the defects of parts matching q to dst, in ID
// order, at most q.Limit of them. sorted says the concatenation of parts
// is in ID order. dst may share the array of a single part from its start
// (filtering in place): it never gets ahead of the row being read.
func filterDefects(dst []Defect, parts [][]Defect, q Query, sorted bool, marks map[int64]MarkState, revs map[int64]Review) []Defect {
	start := len(dst)
	if !sorted {
		for _, p := range parts {
			for i := range p {
				if q.matches(&p[i], marks, revs) {
					dst = append(dst, p[i])
				}
			}
		}
		slices.SortStableFunc(dst[start:], byID)
		if q.Limit > 0 && len(dst)-start > q.Limit {
			dst = dst[:start+q.Limit]
		}
		return dst
	}
	for _, p := range parts {
		i := 0
		if q.AfterID > 0 { // live polling: skip straight to the new defects
			if len(p) > 0 && p[len(p)-1].ID <= q.AfterID {
				continue
			}
			i = sort.Search(len(p), func(k int) bool { return p[k].ID > q.AfterID })
		}
		for ; i < len(p); i++ {
			if q.Limit > 0 && len(dst)-start == q.Limit {
				return dst
			}
			if q.matches(&p[i], marks, revs) {
				dst = append(dst, p[i])
			}
		}
	}
	return dst
}

// UninspectedMetres returns the MD length covered by the union of the
// ranges in parts, as RollInfo.UninspectedM counts it: overlapping ranges
// (several cameras, one dropped block) count once.
func UninspectedMetres(parts ...[]Uninspected) float64 { return uninspectedMetres(parts...) }

// uninspectedMetres returns the MD length covered by the union of the
// ranges in parts: overlapping ranges (several cameras, one dropped block)
// count once.
func uninspectedMetres(parts ...[]Uninspected) float64 {
	var iv [][2]float64
	for _, p := range parts {
		for _, u := range p {
			iv = append(iv, [2]float64{min(u.MDStartM, u.MDEndM), max(u.MDStartM, u.MDEndM)})
		}
	}
	if len(iv) == 0 {
		return 0
	}
	slices.SortFunc(iv, func(a, b [2]float64) int { return cmp.Compare(a[0], b[0]) })
	total, lo, hi := 0.0, iv[0][0], iv[0][1]
	for _, v := range iv[1:] {
		if v[0] > hi {
			total += hi - lo
			lo, hi = v[0], v[1]
		} else {
			hi = max(hi, v[1])
		}
	}
	return total + hi - lo
}

// readMetaFile reads dir/roll.json; a missing file gives ErrNotFound.
func readMetaFile(dir string) (metaFile, error) {
	var m metaFile
	err := readVersionedJSON(filepath.Join(dir, MetaFile), &m, &m.FormatVersion)
	if errors.Is(err, fs.ErrNotExist) {
		return m, fmt.Errorf("rollmap: %s: %w", dir, ErrNotFound)
	}
	return m, err
}

// maxJSONFileBytes caps roll.json and summary.json when read: their text
// fields are bounded (textcheck), so even a roll with thousands of lanes
// stays far below it.
const maxJSONFileBytes = 64 << 20

// readVersionedJSON reads a JSON file this package wrote (roll.json,
// summary.json) into v and checks the format version decoded into
// *version: a file that does not parse is ErrCorrupt, one of another
// version ErrVersion. A missing file's error matches fs.ErrNotExist.
func readVersionedJSON(path string, v any, version *string) error {
	b, err := boundedfile.Read(path, maxJSONFileBytes)
	if err != nil {
		return fmt.Errorf("rollmap: %w", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("rollmap: %s: %w: %v", path, ErrCorrupt, err)
	}
	if !readableVersion(*version) {
		return fmt.Errorf("rollmap: %s: %w: format_version %q, this reader reads %q and %q", path, ErrVersion, *version, FormatVersion1, FormatVersion)
	}
	return nil
}

// writeMetaFile replaces dir/roll.json atomically: write a temporary file,
// sync it, rename it over roll.json and sync the directory.
func writeMetaFile(dir string, m *metaFile) error {
	if metaWriteFault != nil {
		if err := metaWriteFault(dir); err != nil {
			return fmt.Errorf("write %s: %w", filepath.Join(dir, MetaFile), err)
		}
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", MetaFile, err)
	}
	b = append(b, '\n')
	if err := atomicfile.WriteFile(dir, MetaFile, b); err != nil {
		return fmt.Errorf("write %s: %w", filepath.Join(dir, MetaFile), err)
	}
	return nil
}

// ReadRoll reads a roll directory directly, without a Store. Each defect's
// Mark is merged from marks.arrows (a roll without that file has no marks)
// and its ReviewStatus and ReviewLabel from reviews.arrows (ReadReviews);
// the events themselves are read with ReadMarkEvents. If a data file is
// truncated or damaged, everything read before the damage is returned
// together with the error (errors.Is(err, ErrTruncated) tells the common
// crash case apart); errors of the files are joined.
func ReadRoll(dir string) (RollMeta, []Defect, []Uninspected, error) {
	m, err := readMetaFile(dir)
	if err != nil {
		return RollMeta{}, nil, nil, err
	}
	ds, derr := readStream(nil, filepath.Join(dir, DefectsFile), defectColumns)
	us, uerr := readStream(nil, filepath.Join(dir, UninspectedFile), uninspectedColumns)
	evs, merr := readMarks(dir)
	if len(evs) > 0 {
		markLookup{m: MergeMarkEvents(evs)}.fill(ds)
	}
	revs, verr := readReviews(dir)
	fillReviews(ds, MergeReviews(revs))
	err = errors.Join(derr, uerr, merr, verr)
	if err != nil {
		err = fmt.Errorf("rollmap: read roll %s: %w", m.ID, err)
	}
	return m.RollMeta, ds, us, err
}

package rollmap

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/webinspect/webinspect/internal/atomicfile"
	"github.com/webinspect/webinspect/internal/textcheck"
)

// # Reviews
//
// A quality inspector looks at a defect and says what it is: a real defect
// of the class the engine gave (confirm), not a defect at all
// (false_alarm), or a real defect of another class (reclassify). Each such
// decision is a Review, appended to the roll's reviews.arrows (an Arrow IPC
// stream of ReviewSchema rows, like marks.arrows). Defect rows are never
// changed: readers merge the newest review of each defect into its
// ReviewStatus and ReviewLabel, and every earlier review stays in the log
// as history.
//
// Reviews are not written by the roll's writer: the Store appends them
// itself, one batch per review, fsynced before AddReview returns, so they
// work the same on an open roll, a closed one and a roll written by an
// earlier process. A closed roll's summary.json is not rewritten; review
// counts are computed from the log when asked for.

// ReviewsFile holds a roll's reviews (ReviewSchema). A roll never reviewed
// has none: readers take a missing file as no reviews.
const ReviewsFile = "reviews.arrows"

// Review actions (Review.Action) and the review status each gives the
// defect (Defect.ReviewStatus).
const (
	ActionConfirm    = "confirm"     // the defect is real and of its class
	ActionFalseAlarm = "false_alarm" // not a defect
	ActionReclassify = "reclassify"  // real, of class Review.Label

	ReviewConfirmed    = "confirmed"
	ReviewFalseAlarm   = "false_alarm"
	ReviewReclassified = "reclassified"
)

// Limits of the free-text fields of a Review, in bytes.
const (
	MaxReviewerLen = 64
	MaxLabelLen    = 64
)

// Errors of the review log (the package's other errors are in rollmap.go).
var (
	// ErrNoDefect is returned by AddReview when the roll has no defect of
	// the given ID.
	ErrNoDefect = errors.New("defect not found")
)

// Review is one inspector's decision about one defect.
type Review struct {
	RollID   string    `json:"roll_id"`
	DefectID int64     `json:"defect_id"`
	Action   string    `json:"action"`   // ActionConfirm, ActionFalseAlarm or ActionReclassify
	Label    string    `json:"label"`    // reclassify: the new class; confirm: the defect's class; false_alarm: optional note
	Reviewer string    `json:"reviewer"` // who decided
	Time     time.Time `json:"time"`     // when, UTC, microseconds
}

// ReviewStatusOf returns the Defect.ReviewStatus an action gives ("" for an
// unknown action).
func ReviewStatusOf(action string) string {
	switch action {
	case ActionConfirm:
		return ReviewConfirmed
	case ActionFalseAlarm:
		return ReviewFalseAlarm
	case ActionReclassify:
		return ReviewReclassified
	}
	return ""
}

// reviewColumns lists Review's columns in schema order.
var reviewColumns = []column[Review]{
	stringCol("roll_id", func(r *Review) *string { return &r.RollID }),
	int64Col("defect_id", "", func(r *Review) *int64 { return &r.DefectID }),
	stringCol("action", func(r *Review) *string { return &r.Action }),
	stringCol("label", func(r *Review) *string { return &r.Label }),
	stringCol("reviewer", func(r *Review) *string { return &r.Reviewer }),
	timeCol("time", func(r *Review) *time.Time { return &r.Time }),
}

// ReviewSchema is the schema of reviews.arrows: one non-nullable column
// per Review field, named by its json tag, with VersionKey = FormatVersion.
var ReviewSchema = schemaOf(reviewColumns)

var reviewHeader = sync.OnceValues(func() ([]byte, error) { return schemaMessage(ReviewSchema) })

// encodeReviews returns rows as one ReviewSchema record batch; the caller
// releases it.
func encodeReviews(rows []Review) arrow.RecordBatch {
	b := newBuilder(nil, reviewColumns, ReviewSchema)
	defer b.rb.Release()
	b.append(rows)
	return b.rb.NewRecordBatch()
}

// MergeReviews returns the newest review of each defect named in rs, which
// are in the order recorded (a later review replaces an earlier one).
// Reviews of an unknown action are ignored.
func MergeReviews(rs []Review) map[int64]Review {
	m := make(map[int64]Review)
	for _, r := range rs {
		if ReviewStatusOf(r.Action) != "" {
			m[r.DefectID] = r
		}
	}
	return m
}

// applyReview sets d's review fields from its newest review.
func applyReview(d *Defect, r Review) {
	d.ReviewStatus, d.ReviewLabel = ReviewStatusOf(r.Action), r.Label
}

// fillReviews applies to every defect of ds its newest review in revs.
func fillReviews(ds []Defect, revs map[int64]Review) {
	if len(revs) == 0 {
		return
	}
	for i := range ds {
		if r, ok := revs[ds[i].ID]; ok {
			applyReview(&ds[i], r)
		}
	}
}

// reviewStatus is d's review status with revs merged (for Query filters).
func reviewStatus(d *Defect, revs map[int64]Review) string {
	if r, ok := revs[d.ID]; ok {
		return ReviewStatusOf(r.Action)
	}
	return d.ReviewStatus
}

// checkText checks a free-text review field with internal/textcheck (at
// most max bytes of UTF-8 without control or bidirectional formatting
// characters), non-empty when required.
func checkText(field, v string, max int, required bool) error {
	check := textcheck.Check
	if required {
		check = textcheck.CheckRequired
	}
	if err := check("review "+field, v, max); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return nil
}

func checkReview(r *Review) error {
	if ReviewStatusOf(r.Action) == "" {
		return fmt.Errorf("%w: review action %q, want %s, %s or %s", ErrInvalid, r.Action,
			ActionConfirm, ActionFalseAlarm, ActionReclassify)
	}
	if r.DefectID < 1 {
		return fmt.Errorf("%w: review defect ID %d, want >= 1", ErrInvalid, r.DefectID)
	}
	if err := checkText("reviewer", r.Reviewer, MaxReviewerLen, true); err != nil {
		return err
	}
	return checkText("label", r.Label, MaxLabelLen, r.Action == ActionReclassify)
}

// reviewLog is the review log of one roll as this Store knows it: the
// reviews read from (or appended to) reviews.arrows when it had size
// bytes. newest is never modified once set (a new map replaces it), so
// readers may keep it without the lock.
type reviewLog struct {
	mu     sync.Mutex
	known  bool  // size, revs and newest reflect the file
	size   int64 // file size when read; -1 for no file
	revs   []Review
	newest map[int64]Review
	err    error // damage found when read
}

// reviewLogs holds the review log of each roll the Store has touched. A
// log is a few hundred bytes plus about 100 bytes per review.
type reviewLogs struct {
	mu sync.Mutex
	m  map[string]*reviewLog
}

func (s *Store) reviewLog(id string) *reviewLog {
	s.reviews.mu.Lock()
	defer s.reviews.mu.Unlock()
	if s.reviews.m == nil {
		s.reviews.m = make(map[string]*reviewLog)
	}
	l := s.reviews.m[id]
	if l == nil {
		l = &reviewLog{}
		s.reviews.m[id] = l
	}
	return l
}

// refresh re-reads the file at path when its size is not the one last
// seen (another process appended, or it was repaired). A partial batch at
// the end is not an error: AddReview returns only after the batch is
// synced, so a torn tail is a review that was never acknowledged (the
// next AddReview cuts it off). Other damage is kept in l.err. Call with
// l.mu held.
func (l *reviewLog) refresh(path string) {
	st, err := os.Stat(path)
	size := int64(-1)
	switch {
	case err == nil:
		size = st.Size()
	case !errors.Is(err, fs.ErrNotExist):
		l.known, l.err = false, err
		return
	}
	if l.known && size == l.size {
		return
	}
	var revs []Review
	err = nil
	if size >= 0 {
		revs, err = readStream(nil, path, reviewColumns)
		if errors.Is(err, ErrTruncated) && !errors.Is(err, ErrCorrupt) {
			err = nil
		}
	}
	l.known, l.size, l.revs, l.newest, l.err = true, size, revs, MergeReviews(revs), err
}

// reviewStates returns the newest review of each reviewed defect of roll
// id (in dir), shared with the log (the caller must not modify it), and
// the damage of the review file if any.
func (s *Store) reviewStates(id, dir string) (map[int64]Review, error) {
	l := s.reviewLog(id)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.refresh(filepath.Join(dir, ReviewsFile))
	return l.newest, l.err
}

// Reviews returns every review of roll id in the order recorded (the
// history; a defect's ReviewStatus is that of its newest). A roll never
// reviewed has none. A damaged file gives the reviews before the damage
// with the error.
func (s *Store) Reviews(id string) ([]Review, error) {
	r, dir, err := s.lookup(id)
	if err != nil {
		return nil, err
	}
	if r == nil {
		if _, err := readMetaFile(dir); err != nil {
			return nil, err
		}
	}
	l := s.reviewLog(id)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.refresh(filepath.Join(dir, ReviewsFile))
	out := append([]Review(nil), l.revs...)
	if l.err != nil {
		return out, fmt.Errorf("rollmap: roll %s: %w", id, l.err)
	}
	return out, nil
}

// ReadReviews reads the reviews of a roll directory without a Store, in
// the order recorded. A roll without reviews.arrows has none; a partial
// batch at the end (an unacknowledged review) is ignored. Other errors are
// as for ReadRoll.
func ReadReviews(dir string) ([]Review, error) {
	m, err := readMetaFile(dir)
	if err != nil {
		return nil, err
	}
	revs, err := readReviews(dir)
	if err != nil {
		err = fmt.Errorf("rollmap: read roll %s: %w", m.ID, err)
	}
	return revs, err
}

// readReviews reads dir/reviews.arrows as refresh does, without a cache.
func readReviews(dir string) ([]Review, error) {
	var l reviewLog
	l.refresh(filepath.Join(dir, ReviewsFile))
	return l.revs, l.err
}

// AddReview records a review of defect rv.DefectID of roll id, open or
// closed, and returns the defect with the review merged. rv.RollID is set
// to id and rv.Time, if zero, to now (stored in UTC to the microsecond).
//
// Rules: Action is one of the three actions; Reviewer is 1 to 64 bytes of
// printable UTF-8; Label at most 64 such bytes, required for reclassify
// (the new class), for confirm either empty or the defect's class (it is
// stored as the class: a reviewer who disagrees with the class
// reclassifies), free for false_alarm. A rule broken wraps ErrInvalid, an
// unknown roll ErrNotFound, an unknown defect ErrNoDefect.
//
// The review is appended to reviews.arrows as one record batch and fsynced
// before AddReview returns: once it returns nil the review survives a
// crash. A partial batch left by a crash during an earlier AddReview is
// cut off first; a file damaged otherwise is rewritten with the reviews
// before the damage (the damaged file kept as NAME.damaged-UNIXNANO, as
// ResumeRoll does), and the review appended. Reviews of one roll are
// serialised; queries see the review as soon as it is on disk.
func (s *Store) AddReview(id string, rv Review) (Defect, error) {
	if err := checkReview(&rv); err != nil {
		return Defect{}, fmt.Errorf("rollmap: roll %s: %w", id, err)
	}
	r, dir, err := s.lookup(id)
	if err != nil {
		return Defect{}, err
	}
	if r == nil {
		if _, err := readMetaFile(dir); err != nil {
			return Defect{}, err
		}
	}
	ds, err := s.Defects(id, Query{AfterID: rv.DefectID - 1, Limit: 1})
	if len(ds) == 0 || ds[0].ID != rv.DefectID {
		if err != nil {
			return Defect{}, fmt.Errorf("rollmap: roll %s: review defect %d: %w", id, rv.DefectID, err)
		}
		return Defect{}, fmt.Errorf("rollmap: roll %s: review: %w: no defect %d", id, ErrNoDefect, rv.DefectID)
	}
	d := ds[0]
	if r != nil {
		// A review must never outlive its defect: a defect fresh from
		// the live feed may not be on disk yet, and after a crash the
		// review would name a defect the roll does not have. Make it
		// durable first.
		if err := r.flushThrough(d.ID); err != nil {
			return Defect{}, fmt.Errorf("rollmap: roll %s: review defect %d: %w: the defect is not on disk yet and could not be flushed: %w",
				id, d.ID, ErrNotDurable, err)
		}
	}
	if rv.Action == ActionConfirm {
		if rv.Label != "" && rv.Label != d.Class {
			return Defect{}, fmt.Errorf("rollmap: roll %s: %w: confirm of defect %d with label %q, but its class is %q (use reclassify)",
				id, ErrInvalid, d.ID, rv.Label, d.Class)
		}
		rv.Label = d.Class
	}
	rv.RollID = id
	if rv.Time.IsZero() {
		rv.Time = time.Now()
	}
	rv.Time = rv.Time.UTC().Truncate(time.Microsecond)

	l := s.reviewLog(id)
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.append(dir, rv); err != nil {
		return Defect{}, fmt.Errorf("rollmap: roll %s: review defect %d: %w", id, d.ID, err)
	}
	applyReview(&d, rv)
	return d, nil
}

// append writes rv to dir/reviews.arrows and syncs it, then updates the
// log from what the file holds. Call with l.mu held.
func (l *reviewLog) append(dir string, rv Review) error {
	hdr, err := reviewHeader()
	if err != nil {
		return err
	}
	path := filepath.Join(dir, ReviewsFile)
	var (
		w    *streamWriter
		revs []Review
	)
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		if w, err = createStream(path, ReviewSchema, hdr); err != nil {
			return err
		}
		if err := atomicfile.SyncDir(dir); err != nil {
			w.w.Close()
			w.f.Close()
			return fmt.Errorf("sync %s: %w", dir, err)
		}
	} else {
		// A torn tail is cut off, other damage repaired; either way w
		// appends after the reviews in revs.
		revs, w, _, err = reopenStream(path, ReviewSchema, hdr, reviewColumns, encodeReviews)
		if err != nil {
			l.known = false
			return err
		}
	}
	err = writeBatch(w, encodeReviews([]Review{rv}))
	if err == nil {
		err = w.sync()
	}
	w.w.Close() // no EOS: the log stays appendable
	if cerr := w.f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close %s: %w", path, cerr)
	}
	if err != nil {
		l.known = false // the file may hold it or not: read it again
		return err
	}
	revs = append(revs, rv)
	l.known, l.size, l.revs, l.newest, l.err = true, w.end, revs, MergeReviews(revs), nil
	return nil
}

// reviewMatches reports whether review status status passes filter want (a
// Query.ReviewStatus).
func reviewMatches(want, status string) bool {
	return status == want || want == ReviewNone && status == ""
}

// ClassAfterReview is the defect's class after its review: the reviewer's
// label when it was reclassified, else the class the engine gave.
// Grading, the cutting list, the report, `webinspect learn` and the
// threshold calibration all count a defect under it.
func (d *Defect) ClassAfterReview() string {
	if d.ReviewStatus == ReviewReclassified && d.ReviewLabel != "" {
		return d.ReviewLabel
	}
	return d.Class
}

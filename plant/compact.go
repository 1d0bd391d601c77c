package plant

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/webinspect/webinspect/internal/atomicfile"
	"github.com/webinspect/webinspect/internal/dirlock"
	"github.com/webinspect/webinspect/internal/metricsreg"
)

// Compaction of the dataset: a partition's many part files (one per
// flush, up to four a second per busy line) merged into a few.
//
// # Files of a partition
//
//	part-<unix ns>-<n>.parquet      one flush of the service
//	compact-<unix ns>-<pass>.parquet part files merged while the day runs
//	day-<unix ns>-<pass>.parquet     the day's files, once it is over
//
// The <unix ns> of a merged file is that of its first input, so that the
// names sorted by it give the order the rows were written in; a merged
// file holds its inputs' rows in that order, values and schema
// unchanged. A part file is never split: a merged file holds at most
// MaxRows rows unless one input alone has more.
//
// # When
//
// A partition is compacted when its UTC day ended more than Grace ago
// (every part and compact file, with the day files below MaxRows rows,
// into day files), or, while its day runs, when it holds more than
// MaxParts part files (those into one compact file). A record that
// arrives for a day already compacted is written as a new part file
// next to the day files, as always; a later pass merges it in.
//
// # The journal
//
// One partition at a time, through DATA/index/compact.json:
//
//  1. journal {phase: merge, inputs, outputs}
//  2. each output written as .<name>.tmp, fsynced, read back fully and
//     its rows counted against its inputs'; the directory fsynced
//  3. journal {phase: swap}
//  4. outputs renamed to their names
//  5. inputs removed, directory fsynced
//  6. journal removed
//
// A start (NewService, Compact) that finds the journal in phase merge
// removes the temporary outputs (the inputs are all there); in phase
// swap it finishes 4 and 5: the outputs are complete and durable since
// 2, each under its temporary name or its own, whichever of the renames
// and removals the crash kept. Each pass does the same first: an error
// that left the journal (a swap half done) stops its pass. A reader of the glob sees each row once
// except between 4 and 5: for the time it takes to remove the inputs
// (26 ms for 2000 part files, BenchmarkCompaction; the log's "window"
// of each partition) a query may
// count the partition's merged rows twice, or miss a file removed after
// it listed it. The service's own reader (Defects) waits for the swap.
// The index (index.go) is per defect, not per file: it does not change.
//
// # Bad input
//
// An input that cannot be read fully (truncated, corrupt, another
// schema) stops the partition's compaction before anything is renamed:
// the error names the file, the partition stays as it is, nothing is
// deleted, and the next pass tries again.
const journalFile = "compact.json"

// CompactOptions configures compaction (ServiceOptions.Compact, Compact).
type CompactOptions struct {
	// Interval is how often the service looks for partitions to compact,
	// 10 ms to 24 h; negative: never (run `webinspect plant compact`).
	// Default 10 min.
	Interval time.Duration
	// Grace after the end of a UTC day before its partitions are
	// compacted into day files, 0 to 30 days: late records of the day
	// still come as part files after it. 0 takes the default of 2 h
	// (1ns: no grace).
	Grace time.Duration
	// MaxParts: a partition with more part files than this is compacted
	// while its day runs, 2 to 1<<20. Default 512.
	MaxParts int
	// MaxRows bounds the rows of a merged file, 1000 to 1<<31.
	// Default 2,000,000.
	MaxRows int64
}

// DefaultCompactOptions are the defaults documented on CompactOptions.
func DefaultCompactOptions() CompactOptions {
	return CompactOptions{Interval: 10 * time.Minute, Grace: 2 * time.Hour, MaxParts: 512, MaxRows: 2_000_000}
}

// withDefaults fills the fields left zero.
func (o CompactOptions) withDefaults() CompactOptions {
	d := DefaultCompactOptions()
	if o.Interval == 0 {
		o.Interval = d.Interval
	}
	if o.Grace == 0 {
		o.Grace = d.Grace
	}
	if o.MaxParts == 0 {
		o.MaxParts = d.MaxParts
	}
	if o.MaxRows == 0 {
		o.MaxRows = d.MaxRows
	}
	return o
}

// Validate names the first field out of range.
func (o CompactOptions) Validate() error {
	switch {
	case o.Interval >= 0 && (o.Interval < 10*time.Millisecond || o.Interval > 24*time.Hour):
		return fmt.Errorf("%w: Compact.Interval %v, want 10ms to 24h (negative: off)", ErrInvalidOptions, o.Interval)
	case o.Grace < 0 || o.Grace > 30*24*time.Hour:
		return fmt.Errorf("%w: Compact.Grace %v, want 0 to 720h", ErrInvalidOptions, o.Grace)
	case o.MaxParts < 2 || o.MaxParts > 1<<20:
		return fmt.Errorf("%w: Compact.MaxParts %d, want 2 to %d", ErrInvalidOptions, o.MaxParts, 1<<20)
	case o.MaxRows < 1000 || o.MaxRows > 1<<31:
		return fmt.Errorf("%w: Compact.MaxRows %d, want 1000 to %d", ErrInvalidOptions, o.MaxRows, int64(1)<<31)
	}
	return nil
}

// CompactStats is what a compaction pass did.
type CompactStats struct {
	Partitions int   // partitions compacted
	Files      int   // input files merged and removed
	Outputs    int   // merged files written
	Rows       int64 // rows in them
	Failed     int   // partitions left as they are, for an error
}

// compactor compacts the dataset under root.
type compactor struct {
	root   string
	o      CompactOptions
	log    zerolog.Logger
	m      compactMetrics
	swapMu sync.RWMutex // held across steps 4-5: readers in this process wait
	// step is called after each step of the journal; tests make it fail
	// to stop there as a crash would (nil: no test).
	step func(k partKey, name string) error
}

type compactMetrics struct {
	files, partitions, errors prometheus.Counter
}

func newCompactor(root string, o CompactOptions, log zerolog.Logger, reg prometheus.Registerer) (*compactor, error) {
	c := &compactor{root: root, o: o, log: log, m: compactMetrics{
		files:      prometheus.NewCounter(prometheus.CounterOpts{Name: "webinspect_plant_compacted_files_total", Help: "Part files of the plant dataset merged by compaction (and removed)."}),
		partitions: prometheus.NewCounter(prometheus.CounterOpts{Name: "webinspect_plant_compacted_partitions_total", Help: "Partitions of the plant dataset compacted."}),
		errors:     prometheus.NewCounter(prometheus.CounterOpts{Name: "webinspect_plant_compaction_errors_total", Help: "Partitions left uncompacted for an error (an unreadable part file, a disk error)."}),
	}}
	var rs metricsreg.Set
	c.m.files = metricsreg.Add(&rs, reg, c.m.files)
	c.m.partitions = metricsreg.Add(&rs, reg, c.m.partitions)
	c.m.errors = metricsreg.Add(&rs, reg, c.m.errors)
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("plant: %w", err)
	}
	return c, nil
}

// Compact compacts the plant dataset in data once, as the service does
// in its background (for `webinspect plant compact`): it finishes or
// undoes a compaction a crash cut short, then compacts every partition
// due now. It fails with ErrDataInUse while a service runs on data.
func Compact(ctx context.Context, data string, o CompactOptions, log zerolog.Logger, reg prometheus.Registerer) (CompactStats, error) {
	o = o.withDefaults()
	if err := o.Validate(); err != nil {
		return CompactStats{}, err
	}
	c, err := newCompactor(data, o, log, reg)
	if err != nil {
		return CompactStats{}, err
	}
	l, err := lockData(data)
	if err != nil {
		return CompactStats{}, err
	}
	defer l.Release()
	return c.pass(ctx, time.Now())
}

// startCompaction runs a compaction pass every Compact.Interval in the
// background, apart from taking and acknowledging messages (it takes no
// lock of theirs), until the returned stop, which waits for the
// partition in hand.
func (s *Service) startCompaction() (stop func()) {
	if s.o.Compact.Interval < 0 {
		return func() {}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(s.o.Compact.Interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if _, err := s.comp.pass(ctx, time.Now()); err != nil && ctx.Err() == nil {
				s.log.Error().Err(err).Msg("plant compaction pass stopped; the next one tries again")
			}
		}
	}()
	return func() { cancel(); <-done }
}

// lockData takes data's directory lock (dirlock), naming a holder.
func lockData(data string) (*dirlock.Lock, error) {
	if err := os.MkdirAll(data, 0o755); err != nil {
		return nil, fmt.Errorf("plant: %w", err)
	}
	l, err := dirlock.Acquire(data, "plant data")
	if errors.Is(err, dirlock.ErrLocked) {
		return nil, fmt.Errorf("%w: %v", ErrDataInUse, err)
	}
	return l, err
}

// dsFile is a file of a partition: its name, kind ('p' part, 'c'
// compact, 'd' day) and the unix ns its name starts with.
type dsFile struct {
	name string
	kind byte
	ns   int64
}

func parseDSName(name string) (dsFile, bool) {
	rest, ok := strings.CutSuffix(name, ".parquet")
	if !ok {
		return dsFile{}, false
	}
	for _, k := range []string{"part-", "compact-", "day-"} {
		if r, ok := strings.CutPrefix(rest, k); ok {
			nsText, _, _ := strings.Cut(r, "-")
			ns, err := strconv.ParseInt(nsText, 10, 64)
			return dsFile{name: name, kind: k[0], ns: ns}, err == nil
		}
	}
	return dsFile{}, false
}

// listPartition lists dir's dataset files in the order they were written.
func listPartition(dir string) ([]dsFile, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []dsFile
	for _, e := range ents {
		if f, ok := parseDSName(e.Name()); ok && !e.IsDir() {
			out = append(out, f)
		}
	}
	slices.SortFunc(out, func(a, b dsFile) int {
		return cmp.Or(cmp.Compare(a.ns, b.ns), strings.Compare(a.name, b.name))
	})
	return out, nil
}

// dayOver reports whether day's UTC end plus grace is before now.
func dayOver(day string, now time.Time, grace time.Duration) bool {
	t, err := time.Parse(time.DateOnly, day)
	return err == nil && now.After(t.Add(24*time.Hour+grace))
}

// pass compacts every partition due at now, one at a time; it stops
// between partitions when ctx is done. It first finishes or undoes a
// compaction cut short (recover), and stops at a partition whose error
// left its journal (a swap half done): the next partition's journal
// would overwrite it, leaving the merged rows next to their inputs.
func (c *compactor) pass(ctx context.Context, now time.Time) (CompactStats, error) {
	var st CompactStats
	if err := c.recover(); err != nil {
		return st, err
	}
	pass := time.Now().UnixNano()
	err := eachPartition(filepath.Join(c.root, datasetDir), true, "", func(k partKey, dir string) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		files, err := listPartition(dir)
		if err != nil {
			return err
		}
		final := dayOver(k.day, now, c.o.Grace)
		groups, err := c.plan(dir, files, final)
		if err == nil && len(groups) > 0 {
			err = c.partition(ctx, k, dir, groups, final, pass, &st)
		}
		if errors.Is(err, errStop) || (err != nil && ctx.Err() != nil) {
			return err // a test's crash; a stop (the merge undone): not the partition's fault
		}
		if err != nil {
			st.Failed++
			c.m.errors.Inc()
			if _, jerr := os.Stat(filepath.Join(c.root, indexDir, journalFile)); jerr == nil {
				return fmt.Errorf("plant compaction of line=%s day=%s stopped with its journal left (the next pass or start finishes or undoes it): %w", k.line, k.day, err)
			}
			c.log.Error().Err(err).Str("line", k.line).Str("day", k.day).Msg("plant partition not compacted: left as it is, nothing deleted")
		}
		return nil
	})
	return st, err
}

// errStop is what a test's step function returns to stop as a crash would.
var errStop = errors.New("plant compaction stopped (test)")

// plan picks a partition's inputs and groups them into merged files:
// none if it is not due. A group of one input is left as it is.
func (c *compactor) plan(dir string, files []dsFile, final bool) ([][]dsFile, error) {
	var parts, compacts int
	for _, f := range files {
		switch f.kind {
		case 'p':
			parts++
		case 'c':
			compacts++
		}
	}
	switch {
	case final && parts+compacts > 0 && len(files) >= 2:
	case !final && parts > c.o.MaxParts:
	default:
		return nil, nil
	}
	var groups [][]dsFile
	var cur []dsFile
	var rows int64
	for _, f := range files {
		if !final && f.kind != 'p' {
			continue
		}
		n, err := partRows(filepath.Join(dir, f.name))
		if err != nil {
			return nil, err
		}
		if f.kind == 'd' && n >= c.o.MaxRows {
			continue
		}
		if len(cur) > 0 && rows+n > c.o.MaxRows {
			groups, cur, rows = append(groups, cur), nil, 0
		}
		cur, rows = append(cur, f), rows+n
	}
	groups = append(groups, cur)
	return slices.DeleteFunc(groups, func(g []dsFile) bool { return len(g) < 2 }), nil
}

// partRows reads the row count from a part file's footer.
func partRows(path string) (int64, error) {
	pf, err := file.OpenParquetFile(path, false)
	if err != nil {
		return 0, fmt.Errorf("%w: %s: %v", ErrBadPart, filepath.Base(path), err)
	}
	defer pf.Close()
	return pf.NumRows(), nil
}

// outName is the merged file of group g in pass.
func outName(g []dsFile, final bool, pass int64) string {
	kind := "compact"
	if final {
		kind = "day"
	}
	return fmt.Sprintf("%s-%d-%d.parquet", kind, g[0].ns, pass)
}

func tmpName(name string) string { return "." + name + ".tmp" }

// partition runs the journal's steps for one partition's groups.
func (c *compactor) partition(ctx context.Context, k partKey, dir string, groups [][]dsFile, final bool, pass int64, st *CompactStats) error {
	start := time.Now()
	j := compactJournal{V: 1, Line: k.line, Day: k.day, Phase: phaseMerge}
	for _, g := range groups {
		j.Outputs = append(j.Outputs, outName(g, final, pass))
		for _, f := range g {
			j.Inputs = append(j.Inputs, f.name)
		}
	}
	if err := c.writeJournal(k, &j, "journal"); err != nil {
		return err
	}
	rows, err := c.merge(ctx, k, dir, groups, j.Outputs)
	if err != nil {
		if !errors.Is(err, errStop) {
			c.undo(dir, &j)
		}
		return err
	}
	j.Phase = phaseSwap
	if err := c.writeJournal(k, &j, "swap"); err != nil {
		return err
	}
	window, err := c.swap(k, dir, &j)
	if err != nil {
		return err
	}
	c.m.files.Add(float64(len(j.Inputs)))
	c.m.partitions.Inc()
	st.Partitions++
	st.Files += len(j.Inputs)
	st.Outputs += len(j.Outputs)
	st.Rows += rows
	c.log.Info().Str("line", k.line).Str("day", k.day).Int("files", len(j.Inputs)).Strs("into", j.Outputs).
		Int64("rows", rows).Dur("took", time.Since(start)).Dur("window", window).Msg("plant partition compacted")
	return nil
}

// merge writes each group's temporary output (step 2).
func (c *compactor) merge(ctx context.Context, k partKey, dir string, groups [][]dsFile, outs []string) (int64, error) {
	var total int64
	for i, g := range groups {
		n, err := writeMerged(ctx, dir, tmpName(outs[i]), g, c.o.MaxRows)
		if err != nil {
			return 0, err
		}
		total += n
	}
	// The temporary files' names durable before the swap phase (recover).
	if err := atomicfile.SyncDir(dir); err != nil {
		return 0, err
	}
	return total, c.after(k, "merged")
}

// writeMerged writes a group's rows, in order, into dir/tmp, then reads
// the file back fully and checks its row count.
func writeMerged(ctx context.Context, dir, tmp string, g []dsFile, maxRows int64) (int64, error) {
	var rows int64
	path := filepath.Join(dir, tmp)
	err := writeParquetFile(path, min(maxRows, 128<<10), func(fw *pqarrow.FileWriter) error {
		for _, f := range g {
			if err := ctx.Err(); err != nil {
				return err
			}
			n, err := copyPart(fw, filepath.Join(dir, f.name))
			if err != nil {
				return err
			}
			rows += n
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	n, err := eachBatch(path, func(arrow.RecordBatch) error { return nil })
	if err == nil && n != rows {
		err = fmt.Errorf("%d rows read back, %d written", n, rows)
	}
	if err != nil {
		os.Remove(path)
		return 0, fmt.Errorf("merged file %s: %w", tmp, err)
	}
	return rows, nil
}

// copyPart appends a part file's rows to fw.
func copyPart(fw *pqarrow.FileWriter, path string) (int64, error) {
	var werr error
	n, err := eachBatch(path, func(rec arrow.RecordBatch) error {
		rec = array.NewRecordBatch(datasetSchema, rec.Columns(), rec.NumRows()) // the writer's schema, without the reader's field IDs
		defer rec.Release()
		werr = fw.WriteBuffered(rec)
		return werr
	})
	if werr != nil {
		return 0, werr // the output's error, not the input's
	}
	if err != nil && !errors.Is(err, ErrBadPart) {
		err = fmt.Errorf("%w: %v", ErrBadPart, err)
	}
	if err != nil {
		return 0, fmt.Errorf("%s: %w", filepath.Base(path), err)
	}
	return n, nil
}

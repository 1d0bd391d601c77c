// # Model
//
// A [Store] is a directory of rolls. A roll is started with [Store.StartRoll],
// which returns the one [Roll] that writes it; the engine appends decided
// defects and uninspected ranges to it in MD order and calls [Roll.Flush]
// every second, and [Roll.Close] when the roll is cut. The Roll also
// flushes by itself every [Options].FlushInterval and every
// Options.FlushEvery defects. While a roll is open the Store serves
// queries on it from memory (including rows not yet flushed) and, for
// older defects that left memory, from its file; once it is closed, or for
// rolls written by an earlier process, queries read its files. [ReadRoll]
// reads a roll directory without a Store (for export).
//
// A roll whose writer died (kill -9, a crash, a power cut) is still marked
// open in its roll.json. [Store.Recover] lists such rolls and
// [Store.ResumeRoll] reopens one for appending: it keeps every readable
// record, repairs the files, records the gap from the last flushed length
// to the restart position as uninspected (reason [ReasonRestart]) and
// continues the defect IDs.
//
// Rows are append-only: a defect, once added, is never changed in place.
// What happens to a defect's mark later (scheduled, fired with its encoder
// count, acknowledged, late, missed) is recorded by the marking unit as
// [MarkEvent] rows ([Roll.AddMarkEvents]) in a separate append-only log;
// readers merge a defect's events into its [Defect].Mark ([MergeMarkEvents]
// gives the precedence: missed > late > acknowledged > fired > scheduled).
//
// What quality staff decide about a defect (confirmed, false alarm,
// reclassified) is recorded by [Store.AddReview] as [Review] rows, with the
// reviewer and the time, in the roll's append-only reviews.arrows (open and
// closed rolls alike); readers merge a defect's newest review into its
// ReviewStatus and ReviewLabel ([MergeReviews]). A roll's splices
// ([Roll.AddSplice]) are kept in its roll.json.
//
// When a roll is closed, four files derived from its IPC data are written
// beside it: the defects, uninspected ranges and mark events as Parquet
// (for any other tool) and summary.json (a [Summary]: counts per class,
// decision, lane and mark status, uninspected metres, lane grades). Failing to write them loses nothing:
// Close reports it and the IPC data stays the roll's record.
//
// # Lanes and grading
//
// A roll may carry its lane layout ([RollMeta].Lanes, see [LanesOptions]):
// the CD bands it is slit into. The roll then assigns each defect's Lane
// itself with [AssignLane] (the lane holding most of the defect's width;
// [NoLane] outside every lane). [GradeRoll] grades each lane by a
// [GradingScheme]: the textile 4-point system (ASTM D5430, points per
// 100 yd² or 100 m²) or a count-per-area limit; with RollMeta.Grading set,
// the grades go into summary.json.
//
// # Queries
//
// [Store.Defects] filters by MD range, class, decision, lane
// ([Query].ByLane), review status and mark status; [Store.MarkEvents] and
// [ReadMarkEvents] return a roll's mark events; [Store.Density] counts defects per MD
// bin (per metre, say) for one lane or all, with the uninspected metres of
// each bin. [ExportCSV], [ExportJSON], [ExportParquet] and
// [ExportMarkingList] (a cutting list per lane) write a roll out.
//
// # Memory and concurrency
//
// An open roll keeps its newest defects in memory, in chunks of 1024 rows
// that are never moved (about 300 bytes per defect). Once flushed, all
// but the newest [Options].MemoryDefects (default 4096, about 1.3 MB) are
// dropped, a chunk at a time, so an open roll's memory is bounded by
// configuration, not by its length (uninspected ranges, a few per
// dropped block, and mark events, a few per marked defect, all stay in
// memory). Queries on an open roll join the
// rows read back from its file with those in memory, so they see exactly
// what an unbounded roll would. MemoryDefects 0 keeps every defect in
// memory.
//
// The Store caches the defects file of the one roll read from disk last:
// a closed roll, or the part of an open roll no longer in memory. The file
// is append-only, so when it has grown only the new batches are read; its
// size and modification time tell when nothing changed, its inode when it
// was replaced. At most one roll's worth (about 26 MB for 100 000
// defects) per Store, and only once the roll is queried from disk.
// All methods of Store and Roll are safe for concurrent use. Readers copy
// a view of the rows under a short lock and never wait for a Flush's disk
// I/O; Flush and Close are serialised with each other.
//
// # Bytes
//
// Every roll is a directory named by its ID holding four files, and four
// more once it is closed (the full description, with every column and its
// unit, is in FORMAT.md next to this file):
//
//	ROOT/
//	└── R20250314-061502-3f9a/        roll ID: [A-Za-z0-9][A-Za-z0-9._-]{0,63}
//	    ├── roll.json                 RollMeta + row counts; replaced atomically
//	    │                             (write roll.json.tmp, fsync, rename, fsync dir)
//	    ├── defects.arrows            Arrow IPC stream, schema DefectSchema
//	    ├── uninspected.arrows        Arrow IPC stream, schema UninspectedSchema
//	    ├── marks.arrows              Arrow IPC stream, schema MarkEventSchema
//	    │                             (absent in rolls written before marks)
//	    ├── defects.parquet           written by Close: the same rows and columns
//	    ├── uninspected.parquet       as Parquet (zstd, Arrow schema stored)
//	    ├── marks.parquet
//	    └── summary.json              written by Close: Summary
//
// The derived files are each written to NAME.tmp, fsynced and renamed, so a
// reader never sees half of one.
//
// Each .arrows file is an Arrow IPC stream (not the random-access file
// format), so it can be appended to and read back while it grows:
//
//	┌────────────────┬────────────────┬────────────────┬─────┬───────────┐
//	│ schema message │ record batch 1 │ record batch 2 │ ... │ EOS (8 B) │
//	└────────────────┴────────────────┴────────────────┴─────┴───────────┘
//	 written by StartRoll   one batch per Flush, fsync'd    written by Close
//
//	message = 0xFFFFFFFF | int32 metadata length L | L bytes: flatbuffer
//	          Message (padded to 8), header CRC, body CRC | body
//	          (Message.bodyLength bytes)
//	EOS     = 0xFFFFFFFF | 0x00000000
//
// The two CRC-32C (Castagnoli) values end the metadata, where Arrow
// readers see padding: the header CRC covers the flatbuffer and then the
// 8-byte prefix, the body CRC the body (format version 2; FORMAT.md,
// "Checksums", has the byte layout). The messages are encoded by
// arrow-go's ipc.Writer and framed by an ipc.PayloadWriter of this
// package.
//
// The schemas carry the metadata key "webinspect.rollmap.version" (see
// [FormatVersion]); readers read versions 1 (no checksums) and 2, refuse
// others with [ErrVersion], look columns up by name and ignore columns
// they do not know.
//
// # Crash safety
//
// Flush writes each file's new batch with one write call, fsyncs the file,
// then replaces roll.json: once Flush returns, everything added before it
// survives kill -9 or a power cut. A crash leaves every file as a
// sequence of complete messages possibly followed by one partial message.
// Readers return every complete batch and report the partial tail with
// [ErrTruncated]; the row counts in roll.json never exceed what the data
// files hold. Any other damage is [ErrCorrupt], naming the file and the
// byte range of each damaged message; in version 2 every intact batch
// before and after it is still returned. A roll directory without roll.json is a roll whose start did
// not complete and is not listed.
//
// [Store.ResumeRoll] cuts a partial tail (or an EOS written by a Close
// that did not finish) off so the file can be appended to; a file damaged
// otherwise is rewritten with every readable record, and the damaged file
// is kept beside it as NAME.damaged-UNIXNANO. The rules are
// in FORMAT.md ("Crash safety and recovery").
package rollmap

import "errors"

// Errors returned by the package. They are wrapped with context (roll ID,
// file, field); test for them with errors.Is.
var (
	// ErrNotFound is returned when no roll of the given ID exists in the
	// store, or a directory given to ReadRoll holds no roll.json.
	ErrNotFound = errors.New("roll not found")
	// ErrRollExists is returned by StartRoll when a roll of that ID is open
	// or already on disk.
	ErrRollExists = errors.New("roll already exists")
	// ErrBadRollID is returned when a roll ID is empty, longer than 64
	// bytes, has characters outside [A-Za-z0-9._-] or does not start with a
	// letter or digit (which rules out ".", ".." and hidden names).
	ErrBadRollID = errors.New("bad roll ID")
	// ErrInvalid is returned when an argument is out of range: a query
	// field, a roll metadata field or a non-finite defect value. The message
	// names the field and the allowed range.
	ErrInvalid = errors.New("invalid argument")
	// ErrClosed is returned by a Roll's methods after Close, and by a
	// Store's StartRoll after Store.Close.
	ErrClosed = errors.New("roll map closed")
	// ErrNotDurable is returned by AddReview when the defect reviewed is
	// not on disk yet and flushing it failed; nothing is recorded, and the
	// review may be tried again.
	ErrNotDurable = errors.New("defect not durable yet")
	// ErrLocked is returned by a Store's Lock, StartRoll and ResumeRoll when
	// another process writes the store's directory; the message names its
	// PID.
	ErrLocked = errors.New("roll store locked")
	// ErrTruncated is returned by readers when a stream file ends in a
	// partial message (the process stopped in the middle of a write). All
	// complete batches before it are returned with the error.
	ErrTruncated = errors.New("roll map file truncated")
	// ErrCorrupt is returned by readers when a file's bytes are not a roll
	// map stream: bad framing, undecodable metadata, a missing or mistyped
	// column, nulls, or bad string offsets. Batches before the damage are
	// returned with the error.
	ErrCorrupt = errors.New("roll map file corrupt")
	// ErrVersion is returned by readers for a file written in a format
	// version this package does not read.
	ErrVersion = errors.New("unsupported roll map format version")
)

// FormatVersion is the value of the schema metadata key VersionKey in every
// file this package writes, and of format_version in roll.json and
// summary.json. It changes only when an older reader would misread a newer
// file; adding a column does not change it. Version 2 added a CRC-32C
// trailer to every stream message (FORMAT.md, "Checksums").
const FormatVersion = "2"

// FormatVersion1 is the version before checksums. Readers read it; a
// roll of version 1 that is resumed or reviewed has its streams rewritten
// in version 2 (the version-1 file kept as NAME.v1-UNIXNANO).
const FormatVersion1 = "1"

// readableVersion reports whether this package reads files of version v.
func readableVersion(v string) bool { return v == FormatVersion || v == FormatVersion1 }

// VersionKey is the schema metadata key that holds FormatVersion.
const VersionKey = "webinspect.rollmap.version"

// File names inside a roll directory.
const (
	MetaFile        = "roll.json"
	DefectsFile     = "defects.arrows"
	UninspectedFile = "uninspected.arrows"
	// MarksFile holds the roll's mark events (MarkEventSchema). Rolls
	// written before marks existed have none: readers take a missing
	// file as no events.
	MarksFile = "marks.arrows"
)

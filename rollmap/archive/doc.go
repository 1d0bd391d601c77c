// Package archive keeps the image crops of defects: small 8-bit grayscale
// PNG files named by the SHA-256 of their bytes, written off the caller's
// goroutine, bounded in age and disk use, and stopped (never blocking) when
// the disk is full.
//
// # Model
//
// The engine cuts each defect's crop (the defect plus a margin, original
// 8-bit pixels) from its line history and calls [Archive.Put]. Put encodes
// the crop as PNG and hashes it on the caller's goroutine (about 50 µs for
// a 64×64 crop and 0.3 to 0.5 ms for 256×256 on a loaded 2-core VM; see
// BenchmarkEncode), queues the bytes for the writer goroutine and returns
// the crop's ref at once. The ref goes into
// the defect record (rollmap Defect.ImageRef); the API serves it with
// [Archive.Open]. Put never blocks and never fails the defect: when the
// queue is full, the archive is stopped or closed it returns "" and a
// sentinel error ([ErrQueueFull], [ErrStopped], [ErrClosed]), counts the
// skip, and the engine records the defect without an image (and the
// reason, Defect.ImageError). [Archive.PutWait] is Put for a caller that
// may wait: a replay, whose recording waits for the engine, waits for room
// in the queue rather than lose the crop (every defect of a replay gets
// its crop unless the disk is full).
//
//	engine ──Put(crop)──▶ encode PNG + SHA-256 ──▶ queue (Options.Queue) ──▶ writer ──▶ <root>/ab/ab…png
//	  ◀── ref ───────────────┘   (caller's goroutine)                       (one goroutine)
//	api ──Open(ref)──▶ pending bytes (queued, not yet on disk) or the file
//	sweeper (every Options.SweepInterval): age and budget retention, resume after a stop
//
// A ref returned by Put is served by Open from memory until the writer has
// written it, then from its file. It is a promise the archive may break:
// if the disk fills (or the process dies) before the write, the file never
// appears and Open returns [ErrNotFound]; so does it after retention has
// deleted the file.
//
// # Files
//
// The layout (also in FORMAT.md):
//
//	<root>/
//	├── 3f/                              prefix dir: first two hex chars of the hash
//	│   ├── 3f9a…c2.png                  one crop: name = hex(SHA-256(file bytes)) + ".png"
//	│   └── 3f9a…c2.png.tmp              transient: being written, renamed over the name
//	└── a0/
//	    └── a07e…11.png
//
//	ref  = 64 lowercase hex chars of SHA-256(PNG bytes) + ".png"   (68 bytes)
//	path = <root>/<ref[0:2]>/<ref>
//	file = PNG (RFC 2083): signature, IHDR (W, H, bit depth 8, colour type 0
//	       = grayscale, no interlace), one IDAT (zlib at Options.Compression
//	       of the rows, each prefixed by filter type 0 = None), IEND; no
//	       ancillary chunks, so equal pixels at equal settings give equal
//	       bytes and one file
//	mtime = time of the last Put of that content (a duplicate Put touches it);
//	        retention deletes by it
//
// A file is written to <ref>.tmp beside its final name and renamed over it,
// so a reader sees either no file or the whole file. Identical content is
// stored once: a Put whose hash is already on disk only refreshes the
// file's mtime. Files are not fsynced unless Options.Sync is set: a power
// cut can lose the last images written (their refs then give ErrNotFound).
// [Open] (the package function) scans the tree into an in-memory index
// (hash, size, mtime; about 130 bytes per file), removes leftover .tmp
// files, empty image files and empty prefix dirs, and ignores anything
// else. Only one process should write a root at a time; any number may
// read its files.
//
// # Retention
//
// The sweeper goroutine runs every Options.SweepInterval, and as soon as
// a write takes the total over Options.MaxBytes. It deletes files older
// than Options.MaxAge, then the oldest files (by mtime, that is by last
// Put) until the total size is at most MaxBytes, and removes prefix dirs
// that became empty. MaxBytes counts file sizes, not filesystem blocks.
//
// # Full disk
//
// When a write fails with ENOSPC or EDQUOT, or free space on the root's
// filesystem (statfs, checked before every write) would fall below
// Options.MinFreeBytes, the archive stops: the partial .tmp file is
// removed, Put returns ErrStopped at once (before encoding), crops already
// queued are dropped, the error is logged once (error level, with root and
// free bytes), the gauge webinspect_image_archive_stopped is 1 and every
// crop not archived is counted in
// webinspect_images_skipped_total{reason="disk_full"}. Images already
// written stay readable. After each sweep the archive resumes when free
// space is at least MinFreeBytes and either that sweep deleted files or
// free space grew by at least 64 KiB since the stop (so another process
// freeing space also resumes it).
//
// # Metrics
//
//	webinspect_images_written_total                 files written
//	webinspect_images_deduplicated_total            Puts whose content was already on disk
//	webinspect_images_skipped_total{reason}         crops not archived: queue_full, disk_full, write_error, closed, invalid
//	webinspect_images_deleted_total{reason}         files deleted by retention: age, budget
//	webinspect_image_archive_bytes / _files         size of the archive
//	webinspect_image_archive_stopped                1 while stopped by a full disk
package archive

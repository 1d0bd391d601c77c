package rollmap

import (
	"fmt"
	"time"
)

// Options configures how a Store writes its open rolls.
type Options struct {
	// FlushInterval is the longest time rows added to an open roll wait
	// before a Flush writes them (the Roll flushes by itself on a timer,
	// besides the caller's Flush calls). 10 ms to 1 h; default 1 s.
	FlushInterval time.Duration
	// FlushEvery starts a Flush as soon as this many defects are waiting
	// for one. 1 to 1 000 000; default 1000.
	FlushEvery int
	// MemoryDefects is how many of the newest defects of an open roll are
	// kept in memory. Older ones, once flushed, are dropped from memory
	// (in chunks of 1024) and queries read them from the roll's file.
	// 0 keeps every defect in memory (memory grows with the roll);
	// otherwise 1024 to 2^30. Default 4096 (about 1.3 MB per open roll).
	MemoryDefects int
}

// DefaultOptions returns the options OpenStore uses.
func DefaultOptions() Options {
	return Options{FlushInterval: time.Second, FlushEvery: 1000, MemoryDefects: 4096}
}

// Validate reports the first field out of range, wrapping ErrInvalid.
func (o Options) Validate() error {
	switch {
	case o.FlushInterval < 10*time.Millisecond || o.FlushInterval > time.Hour:
		return fmt.Errorf("%w: Options.FlushInterval %v, want 10ms to 1h", ErrInvalid, o.FlushInterval)
	case o.FlushEvery < 1 || o.FlushEvery > 1_000_000:
		return fmt.Errorf("%w: Options.FlushEvery %d, want 1 to 1000000", ErrInvalid, o.FlushEvery)
	case o.MemoryDefects != 0 && (o.MemoryDefects < chunkRows || o.MemoryDefects > 1<<30):
		return fmt.Errorf("%w: Options.MemoryDefects %d, want 0 (no bound) or %d to %d", ErrInvalid, o.MemoryDefects, chunkRows, 1<<30)
	}
	return nil
}

package archive

import (
	"fmt"
	"image/png"
	"time"
)

// Options configures an Archive.
type Options struct {
	// MaxAge deletes files whose last Put is older than this. 0 keeps them
	// forever; otherwise 1 s to 100 years. Default 0.
	MaxAge time.Duration
	// MaxBytes is the disk budget: the sweeper deletes the oldest files
	// until the sum of file sizes is at most this. 0 means no budget;
	// otherwise 1 to 2^62. Default 0.
	MaxBytes int64
	// MinFreeBytes stops archiving when a write would leave less than this
	// free on the root's filesystem (bytes available to unprivileged
	// users). 0 stops only on ENOSPC/EDQUOT; otherwise 1 to 2^62. Default
	// 1 GiB, so crops never take the space the roll map needs.
	MinFreeBytes int64
	// Queue is how many encoded crops may wait for the writer; Put fails
	// with ErrQueueFull beyond it. 1 to 65536; default 256.
	Queue int
	// SweepInterval is how often retention runs and a stopped archive
	// checks whether it can resume. 10 ms to 24 h; default 1 min.
	SweepInterval time.Duration
	// Compression is the zlib level of the PNG files: png.BestSpeed,
	// png.DefaultCompression, png.BestCompression or png.NoCompression.
	// Default png.BestSpeed: on 256×256 web texture it encodes about 5×
	// faster than DefaultCompression for files about 4 % larger (64×64:
	// 1.5 to 3× faster, same size); see BenchmarkEncode.
	Compression png.CompressionLevel
	// Sync fsyncs each file before renaming it into place. Default false:
	// a power cut may lose the last images written.
	Sync bool
}

// DefaultOptions returns the options for a line PC: keep images until the
// disk budget or free space says otherwise.
func DefaultOptions() Options {
	return Options{
		MinFreeBytes:  1 << 30,
		Queue:         256,
		SweepInterval: time.Minute,
		Compression:   png.BestSpeed,
	}
}

// Validate reports the first field out of range, wrapping ErrInvalid.
func (o Options) Validate() error {
	const maxBytes = 1 << 62
	switch {
	case o.MaxAge != 0 && (o.MaxAge < time.Second || o.MaxAge > 100*365*24*time.Hour):
		return fmt.Errorf("%w: Options.MaxAge %v, want 0 (keep forever) or 1s to 100 years", ErrInvalid, o.MaxAge)
	case o.MaxBytes < 0 || o.MaxBytes > maxBytes:
		return fmt.Errorf("%w: Options.MaxBytes %d, want 0 (no budget) or 1 to 2^62", ErrInvalid, o.MaxBytes)
	case o.MinFreeBytes < 0 || o.MinFreeBytes > maxBytes:
		return fmt.Errorf("%w: Options.MinFreeBytes %d, want 0 (stop only on ENOSPC) or 1 to 2^62", ErrInvalid, o.MinFreeBytes)
	case o.Queue < 1 || o.Queue > 65536:
		return fmt.Errorf("%w: Options.Queue %d, want 1 to 65536", ErrInvalid, o.Queue)
	case o.SweepInterval < 10*time.Millisecond || o.SweepInterval > 24*time.Hour:
		return fmt.Errorf("%w: Options.SweepInterval %v, want 10ms to 24h", ErrInvalid, o.SweepInterval)
	}
	switch o.Compression {
	case png.BestSpeed, png.DefaultCompression, png.BestCompression, png.NoCompression:
	default:
		return fmt.Errorf("%w: Options.Compression %d, want png.BestSpeed (%d), png.DefaultCompression (%d), png.BestCompression (%d) or png.NoCompression (%d)",
			ErrInvalid, o.Compression, png.BestSpeed, png.DefaultCompression, png.BestCompression, png.NoCompression)
	}
	return nil
}

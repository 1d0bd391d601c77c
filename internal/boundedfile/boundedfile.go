// Package boundedfile reads small configuration and metadata files
// (recipes, model sidecars, geometry files, roll.json) with a size limit,
// so that a path naming /dev/zero, a FIFO or a huge file gives an error
// naming the file instead of exhausting memory or blocking for ever.
package boundedfile

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// Errors returned by Read.
var (
	// ErrNotRegular is returned for a device, FIFO, socket or directory:
	// such a "file" may never end (/dev/zero) or block a read (a FIFO).
	ErrNotRegular = errors.New("not a regular file")
	// ErrTooLarge is returned for a file larger than the caller's limit.
	ErrTooLarge = errors.New("file too large")
)

// Open opens path for reading if it is a regular file (after symlinks),
// and refuses anything else with ErrNotRegular before a read can block
// (a FIFO) or never end (/dev/zero). Errors from opening the file keep
// their fs.ErrNotExist and the like.
func Open(path string) (*os.File, error) {
	// O_NONBLOCK: opening a FIFO with no writer would otherwise block
	// before the mode can be checked. It changes nothing for a regular
	// file.
	f, err := os.OpenFile(path, os.O_RDONLY|nonblock, 0)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%s: %w (%s)", path, ErrNotRegular, kind(fi.Mode()))
	}
	return f, nil
}

// Read returns the contents of the regular file path (see Open), at most
// limit bytes: a larger file is ErrTooLarge, found from its size before
// reading and, for a file that grows while it is read, after limit+1
// bytes.
func Read(path string, limit int64) ([]byte, error) {
	f, err := Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if fi.Size() > limit {
		return nil, fmt.Errorf("%s: %w: %d bytes, larger than %d", path, ErrTooLarge, fi.Size(), limit)
	}
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s: %w: larger than %d bytes", path, ErrTooLarge, limit)
	}
	return b, nil
}

func kind(m os.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&os.ModeNamedPipe != 0:
		return "a FIFO"
	case m&os.ModeSocket != 0:
		return "a socket"
	case m&os.ModeCharDevice != 0:
		return "a character device"
	case m&os.ModeDevice != 0:
		return "a device"
	}
	return "mode " + m.String()
}

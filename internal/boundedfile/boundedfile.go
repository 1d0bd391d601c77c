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

// Read returns the contents of the regular file path, at most limit
// bytes. It refuses anything but a regular file before reading, and
// stops after limit+1 bytes (a file that grows while it is read).
// Errors from opening the file keep their fs.ErrNotExist and the like.
func Read(path string, limit int64) ([]byte, error) {
	// O_NONBLOCK: opening a FIFO with no writer would otherwise block
	// before the mode can be checked.
	f, err := os.OpenFile(path, os.O_RDONLY|nonblock, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: %w (%s)", path, ErrNotRegular, kind(fi.Mode()))
	}
	if fi.Size() > limit {
		return nil, fmt.Errorf("%s: %w: %d bytes, at most %d", path, ErrTooLarge, fi.Size(), limit)
	}
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s: %w: more than %d bytes", path, ErrTooLarge, limit)
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

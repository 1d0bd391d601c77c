//go:build !unix

package archive

import (
	"errors"
	"syscall"
)

// statfsFree is not available here: only ENOSPC stops the archive.
func statfsFree(string) (int64, error) { return 0, errors.ErrUnsupported }

func isDiskFull(err error) bool { return errors.Is(err, syscall.ENOSPC) }

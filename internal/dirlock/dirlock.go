// Package dirlock gives one process at a time a directory to write: the
// roll-map store and the image archive each take one, so two engines
// pointed at the same --rolls directory cannot both write a roll.
//
// # How
//
// The lock is an flock(2) exclusive lock on the file DIR/.lock, taken
// without waiting. The holder writes its PID into the file, so the second
// process can name it. The kernel drops the lock when the holder's file is
// closed or the holder dies (kill -9 included), so a stale lock file never
// blocks a restart. Readers (export, the API reading a closed roll) do not
// take the lock.
package dirlock

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// ErrLocked is returned (wrapped) by Acquire when another process holds
// the directory's lock.
var ErrLocked = errors.New("in use by another process")

// Name is the lock file's name inside the directory.
const Name = ".lock"

// Lock is a held directory lock.
type Lock struct {
	f *os.File
}

// Acquire takes the lock of dir (which must exist). what names the
// directory's role in errors ("roll store", "image archive").
func Acquire(dir, what string) (*Lock, error) {
	path := filepath.Join(dir, Name)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("%s %s: lock: %w", what, dir, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		holder := readHolder(f)
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("%s %s is %w%s: only one process at a time may write it", what, dir, ErrLocked, holder)
		}
		return nil, fmt.Errorf("%s %s: lock: %w", what, dir, err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &Lock{f: f}, nil
}

// readHolder returns " (PID n)" from the lock file, or "".
func readHolder(f *os.File) string {
	b := make([]byte, 32)
	n, _ := f.ReadAt(b, 0)
	pid, err := strconv.Atoi(strings.TrimSpace(string(b[:n])))
	if err != nil || pid <= 0 {
		return ""
	}
	if pid == os.Getpid() {
		return fmt.Sprintf(" (by this process, PID %d, through another handle)", pid)
	}
	return fmt.Sprintf(" (PID %d)", pid)
}

// Release drops the lock. It is safe to call on a nil Lock and more than once.
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close() // closing the descriptor drops the flock
	l.f = nil
	return err
}

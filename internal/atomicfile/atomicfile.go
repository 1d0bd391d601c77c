// Package atomicfile replaces small files so that a crash leaves either
// the old content or the new one, never a torn file: the roll map's
// roll.json and the plant publisher's positions are written this way.
package atomicfile

import (
	"os"
	"path/filepath"
)

// WriteFile writes b to dir/name through dir/name.tmp: write, fsync,
// rename over the old file, then fsync dir so the rename itself is
// durable. On error the temporary file is removed and the old file, if
// any, is untouched.
func WriteFile(dir, name string, b []byte) error {
	tmp := filepath.Join(dir, name+".tmp")
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, name))
	}
	if err == nil {
		err = SyncDir(dir)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

// SyncDir fsyncs a directory: the names created, renamed or removed in it
// become durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

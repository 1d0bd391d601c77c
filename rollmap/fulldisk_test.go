package rollmap

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// fullDiskFile is a stream file on a full disk: every write fails with
// ENOSPC and writes nothing.
type fullDiskFile struct{ *os.File }

func (f fullDiskFile) Write(p []byte) (int, error) { return 0, syscall.ENOSPC }

// A full disk left a replayed roll open with length 0 while its files held
// defects, and the next run resumed on top of it (issue 14 #4). The store's
// disk reserve makes room for the closing roll.json: the roll is closed
// with its true length and the counts its files hold.
func TestFullDiskCloseUsesReserve(t *testing.T) {
	s := openStore(t)
	r, err := s.StartRoll(RollMeta{ID: "F", Recipe: "fabric-default", WebWidthMM: 2000})
	if err != nil {
		t.Fatal(err)
	}
	reserve := filepath.Join(s.Root(), ReserveFile)
	if st, err := os.Stat(reserve); err != nil || st.Size() != ReserveBytes {
		t.Fatalf("no disk reserve after StartRoll: %v", err)
	}
	ds := reviewDefects(10)
	if err := r.AddDefects(ds[:4]...); err != nil {
		t.Fatal(err)
	}
	r.SetLength(20)
	if err := r.Flush(); err != nil {
		t.Fatal(err)
	}

	// The disk fills up: stream writes fail, and roll.json can be written
	// only once the reserve is gone.
	r.dfile.f = fullDiskFile{r.dfile.f.(*os.File)}
	metaWriteFault = func(dir string) error {
		if _, err := os.Stat(reserve); err == nil {
			return syscall.ENOSPC
		}
		return nil
	}
	t.Cleanup(func() { metaWriteFault = nil })
	if err := r.AddDefects(ds[4:]...); err != nil {
		t.Fatal(err)
	}
	r.SetLength(57.5)
	if err := r.Flush(); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("flush on a full disk: %v, want ENOSPC", err)
	}
	err = r.Close()
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Close on a full disk: %v, want the ENOSPC of the final flush", err)
	}
	metaWriteFault = nil

	meta, got, _, rerr := ReadRoll(filepath.Join(s.Root(), "F"))
	if rerr != nil {
		t.Fatalf("ReadRoll after a full-disk close: %v", rerr)
	}
	if meta.Open || meta.LengthM != 57.5 || meta.Ended.IsZero() {
		t.Errorf("roll.json after a full-disk close: open %v, length %v m, ended %v; want closed, 57.5 m", meta.Open, meta.LengthM, meta.Ended)
	}
	if len(got) != 4 {
		t.Errorf("defects on disk: %d, want the 4 flushed before the disk filled", len(got))
	}
	if _, err := os.Stat(reserve); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("reserve still there after it was needed: %v", err)
	}
	if recs, err := s.Recover(); err != nil || len(recs) != 0 {
		t.Errorf("Recover after a full-disk close: %d rolls to resume, %v; want none", len(recs), err)
	}

	// The next writer makes the reserve again.
	if err := s.Unlock(); err != nil {
		t.Fatal(err)
	}
	s2, err := OpenStore(s.Root())
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.Lock(); err != nil {
		t.Fatal(err)
	}
	defer s2.Unlock()
	if st, err := os.Stat(reserve); err != nil || st.Size() != ReserveBytes {
		t.Errorf("reserve not made again by the next writer: %v", err)
	}
	if infos, err := s2.List(); err != nil || len(infos) != 1 || infos[0].ID != "F" {
		t.Errorf("List with a reserve file: %+v, %v", infos, err)
	}
}

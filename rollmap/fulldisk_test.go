package rollmap

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
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

// A failed flush was visible only in a log line; /api/status said
// "running" while nothing reached the disk (issue 14 #3). The store
// reports it from the first failure until a flush succeeds, and for good
// once a roll is closed with rows not on disk.
func TestPersistenceErrorReported(t *testing.T) {
	s := openStore(t)
	r, err := s.StartRoll(RollMeta{ID: "P", Recipe: "fabric-default", WebWidthMM: 2000})
	if err != nil {
		t.Fatal(err)
	}
	ds := reviewDefects(9)
	if err := r.AddDefects(ds[:3]...); err != nil {
		t.Fatal(err)
	}
	if err := r.Flush(); err != nil {
		t.Fatal(err)
	}
	if pe := s.PersistenceError(); pe != nil {
		t.Fatalf("healthy store reports %+v", pe)
	}

	disk := r.dfile.f
	r.dfile.f = fullDiskFile{disk.(*os.File)}
	if err := r.AddDefects(ds[3:6]...); err != nil {
		t.Fatal(err)
	}
	before := time.Now().UTC()
	for i := 0; i < 2; i++ {
		if err := r.Flush(); !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("flush on a full disk: %v, want ENOSPC", err)
		}
	}
	pe := s.PersistenceError()
	if pe == nil {
		t.Fatal("no persistence error after two failed flushes")
	}
	if pe.Roll != "P" || pe.Failures < 2 || pe.Lost || pe.Since.Before(before.Add(-time.Second)) || pe.Last.Before(pe.Since) ||
		!strings.Contains(pe.Message, "no space left on device") || pe.Rolls != 1 {
		t.Errorf("persistence error %+v: want roll P, at least 2 failures since the first, ENOSPC in the message, not lost", pe)
	}

	// Space again: the pending rows are written, the error clears.
	r.dfile.f = disk
	if err := r.Flush(); err != nil {
		t.Fatal(err)
	}
	if pe := s.PersistenceError(); pe != nil {
		t.Errorf("after a flush that wrote everything: %+v, want nil", pe)
	}

	// Full again, and the roll is closed: its pending rows are lost, and
	// that stays reported after the roll is gone from the writer.
	r.dfile.f = fullDiskFile{disk.(*os.File)}
	if err := r.AddDefects(ds[6:]...); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("close on a full disk: %v, want ENOSPC", err)
	}
	pe = s.PersistenceError()
	if pe == nil || !pe.Lost || pe.Roll != "P" || !strings.Contains(pe.Message, "3 defects") {
		t.Fatalf("after a close with 3 defects not on disk: %+v, want a lost-rows error naming them", pe)
	}
	// A later roll that writes fine does not hide the loss.
	r2, err := s.StartRoll(RollMeta{ID: "P2", Recipe: "fabric-default", WebWidthMM: 2000})
	if err != nil {
		t.Fatal(err)
	}
	if err := r2.Close(); err != nil {
		t.Fatal(err)
	}
	if pe := s.PersistenceError(); pe == nil || pe.Roll != "P" || !pe.Lost {
		t.Errorf("after another roll closed fine: %+v, want roll P's loss still reported", pe)
	}
}

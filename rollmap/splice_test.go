package rollmap

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// Splices reach roll.json with the next flush, survive the roll's close
// and are listed with the roll; bad ones are refused with the reason.
func TestSplicesAreKept(t *testing.T) {
	s := openStore(t)
	r, err := s.StartRoll(RollMeta{ID: "S1", WebWidthMM: 1000})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	if err := r.AddSplice(12.5, "glued joint", at); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []struct {
		md   float64
		note string
		want string
	}{{-1, "", "want a finite position"}, {1, strings.Repeat("x", 300), "at most 256"}} {
		if err := r.AddSplice(bad.md, bad.note, at); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("AddSplice(%v, %d bytes) = %v, want ErrInvalid saying %q", bad.md, len(bad.note), err, bad.want)
		}
	}
	if err := r.Flush(); err != nil {
		t.Fatal(err)
	}
	meta, _, _, err := ReadRoll(r.dir)
	if err != nil || len(meta.Splices) != 1 || meta.Splices[0].MDM != 12.5 || meta.Splices[0].Note != "glued joint" || !meta.Splices[0].Time.Equal(at) {
		t.Fatalf("roll.json after flush: splices %+v, %v", meta.Splices, err)
	}
	if err := r.AddSplice(30, "", at); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.AddSplice(31, "", at); !errors.Is(err, ErrClosed) {
		t.Errorf("AddSplice on a closed roll = %v, want ErrClosed", err)
	}
	info, err := s.Roll("S1")
	if err != nil || len(info.Splices) != 2 || info.Splices[1].MDM != 30 {
		t.Fatalf("roll info splices %+v, %v; want the two splices", info.Splices, err)
	}
}

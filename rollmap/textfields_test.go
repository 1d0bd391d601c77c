package rollmap

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/webinspect/webinspect/internal/textcheck"
)

// Every free-text field of a roll is bounded and refuses control and
// bidirectional formatting characters (issue 14 #9): recipe name and
// material in roll.json, splice notes, reviewers and review labels.
func TestTextFieldsRefused(t *testing.T) {
	s := openStore(t)
	for _, c := range []struct {
		name string
		meta RollMeta
		want error
	}{
		{"recipe 100 kB", RollMeta{ID: "T1", Recipe: strings.Repeat("r", 100_000)}, textcheck.ErrTooLong},
		{"recipe NUL", RollMeta{ID: "T2", Recipe: "fab\x00ric"}, textcheck.ErrControl},
		{"recipe newline", RollMeta{ID: "T3", Recipe: "fabric\nok"}, textcheck.ErrControl},
		{"recipe RLO", RollMeta{ID: "T4", Recipe: "cirbaf\u202E"}, textcheck.ErrBidi},
		{"material LRI", RollMeta{ID: "T5", Material: "\u2066film"}, textcheck.ErrBidi},
	} {
		r, err := s.StartRoll(c.meta)
		if err == nil {
			r.Close()
		}
		if !errors.Is(err, ErrInvalid) || !errors.Is(err, c.want) {
			t.Errorf("%s: StartRoll = %v, want ErrInvalid and %v", c.name, err, c.want)
		}
		if _, serr := os.Stat(filepath.Join(s.Root(), c.meta.ID)); !errors.Is(serr, os.ErrNotExist) {
			t.Errorf("%s: refused roll left its directory: %v", c.name, serr)
		}
	}

	r, err := s.StartRoll(RollMeta{ID: "T", Recipe: "fabric-default", Material: "fabric"})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	for _, note := range []string{"join\x00", "two\nlines", "\u202Eeton", strings.Repeat("n", 257)} {
		if err := r.AddSplice(1, note, at); !errors.Is(err, ErrInvalid) || !errors.Is(err, textcheck.ErrText) {
			t.Errorf("AddSplice(note %.20q) = %v, want ErrInvalid and textcheck.ErrText", note, err)
		}
	}
	if err := r.AddSplice(1, "glued, 2 cm overlap — ok", at); err != nil {
		t.Errorf("AddSplice(good note) = %v", err)
	}
	if err := r.AddDefects(reviewDefects(2)...); err != nil {
		t.Fatal(err)
	}
	if err := r.Flush(); err != nil {
		t.Fatal(err)
	}
	for _, rv := range []Review{
		{DefectID: 1, Action: ActionConfirm, Reviewer: "ana\u202E"},
		{DefectID: 1, Action: ActionConfirm, Reviewer: "\u2067ana"},
		{DefectID: 1, Action: ActionReclassify, Label: "hole\u200F", Reviewer: "ana"},
		{DefectID: 1, Action: ActionFalseAlarm, Label: "dust\u2028", Reviewer: "ana"},
	} {
		if _, err := s.AddReview("T", rv); !errors.Is(err, ErrInvalid) || !errors.Is(err, textcheck.ErrText) {
			t.Errorf("AddReview(%+q) = %v, want ErrInvalid and textcheck.ErrText", rv.Reviewer+"/"+rv.Label, err)
		}
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
}

// The roll ID "images" names the image archive folder of the rolls
// directory: it is refused in any case, so a roll never shares (or
// hides) the archive (issue 14 #11).
func TestRollIDImagesReserved(t *testing.T) {
	s := openStore(t)
	for _, id := range []string{"images", "Images", "IMAGES"} {
		if err := ValidRollID(id); !errors.Is(err, ErrBadRollID) {
			t.Errorf("ValidRollID(%q) = %v, want ErrBadRollID", id, err)
		}
		if r, err := s.StartRoll(RollMeta{ID: id}); !errors.Is(err, ErrBadRollID) {
			if err == nil {
				r.Close()
			}
			t.Errorf("StartRoll(%q) = %v, want ErrBadRollID", id, err)
		}
	}
	for _, id := range []string{"images2", "my-images", "img"} {
		if err := ValidRollID(id); err != nil {
			t.Errorf("ValidRollID(%q) = %v", id, err)
		}
	}
	// An archive folder holding a roll.json-like file is still not a roll.
	if err := os.MkdirAll(filepath.Join(s.Root(), "images"), 0o755); err != nil {
		t.Fatal(err)
	}
	infos, err := s.List()
	if err != nil || len(infos) != 0 {
		t.Errorf("List with an images folder: %+v, %v", infos, err)
	}
}

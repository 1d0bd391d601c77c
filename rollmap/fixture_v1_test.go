package rollmap

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fixtureV1Dir holds rolls written by format version 1, frozen: the closed
// roll R20250314-061502-v1cl (defects in three batches, uninspected ranges
// of every reason, mark events, reviews added after close, lanes,
// grading, a splice, and the Parquet and summary files Close wrote) and
// the open roll R20250315-071502-v1op whose writer stopped (roll.json
// open, no EOS, a partial batch at the end of defects.arrows).
// dump.json next to the rolls is what the version-1 reader returned for
// them, written by the same code that wrote the rolls.
var fixtureV1Dir = filepath.Join("..", "testdata", "rollmap", "v1")

// fixtureDump is what the readers return for one roll directory.
type fixtureDump struct {
	Meta        RollMeta      `json:"meta"`
	Defects     []Defect      `json:"defects"`
	Uninspected []Uninspected `json:"uninspected"`
	Marks       []MarkEvent   `json:"marks"`
	Reviews     []Review      `json:"reviews"`
	Summary     *Summary      `json:"summary,omitempty"`
	Errors      []string      `json:"errors,omitempty"`
}

// dumpRoll reads the roll directory dir with every reader of the package.
// Errors are kept by their sentinel only (messages may name paths).
func dumpRoll(dir string) fixtureDump {
	var d fixtureDump
	note := func(what string, err error) {
		for _, e := range []error{ErrTruncated, ErrCorrupt, ErrVersion, ErrNotFound} {
			if err != nil && errors.Is(err, e) {
				d.Errors = append(d.Errors, what+": "+e.Error())
				return
			}
		}
		if err != nil {
			d.Errors = append(d.Errors, what+": "+err.Error())
		}
	}
	var err error
	d.Meta, d.Defects, d.Uninspected, err = ReadRoll(dir)
	note("ReadRoll", err)
	d.Marks, err = ReadMarkEvents(dir)
	note("ReadMarkEvents", err)
	d.Reviews, err = ReadReviews(dir)
	note("ReadReviews", err)
	if _, err := os.Stat(filepath.Join(dir, "summary.json")); err == nil {
		s, err := ReadSummary(dir)
		note("ReadSummary", err)
		d.Summary = &s
	}
	return d
}

func marshalDump(m map[string]fixtureDump) []byte {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		panic(err)
	}
	return append(b, '\n')
}

// fixtureV1Rolls are the roll IDs of the version-1 fixture.
var fixtureV1Rolls = []string{"R20250314-061502-v1cl", "R20250315-071502-v1op"}

// TestFixtureV1ReadsBack reads the frozen version-1 rolls with today's
// readers: every row, mark event, review and summary comes back exactly as
// the version-1 reader returned it (dump.json).
func TestFixtureV1ReadsBack(t *testing.T) {
	want, err := os.ReadFile(filepath.Join(fixtureV1Dir, "dump.json"))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]fixtureDump{}
	for _, id := range fixtureV1Rolls {
		got[id] = dumpRoll(filepath.Join(fixtureV1Dir, id))
	}
	if b := marshalDump(got); !bytes.Equal(b, want) {
		t.Errorf("the version-1 fixture reads back differently:\n%s", lineDiff(string(want), string(b)))
	}
}

// lineDiff describes the first line where got differs from want.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := range max(len(w), len(g)) {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			return fmt.Sprintf("line %d:\n want %s\n  got %s", i+1, wl, gl)
		}
	}
	return "no difference"
}

// TestFixtureV1Upgrade resumes the crashed version-1 roll and reviews the
// closed one: the streams they append to are rewritten in version 2 (every
// row kept, the version-1 file kept beside as NAME.v1-UNIXNANO, not
// reported as damage), never appended to in another framing.
func TestFixtureV1Upgrade(t *testing.T) {
	root := t.TempDir()
	for _, id := range fixtureV1Rolls {
		if err := os.CopyFS(filepath.Join(root, id), os.DirFS(filepath.Join(fixtureV1Dir, id))); err != nil {
			t.Fatal(err)
		}
	}
	var want map[string]fixtureDump
	b, err := os.ReadFile(filepath.Join(fixtureV1Dir, "dump.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	s, err := OpenStore(root)
	if err != nil {
		t.Fatal(err)
	}

	// The crashed roll: the partial batch is the only damage.
	open := fixtureV1Rolls[1]
	r, rr, err := s.ResumeRoll(open, 3)
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(rr.Damage, ErrTruncated) || errors.Is(rr.Damage, ErrCorrupt) || rr.Defects != int64(len(want[open].Defects)) {
		t.Errorf("resume: damage %v, %d defects; want only the partial batch, %d defects", rr.Damage, rr.Defects, len(want[open].Defects))
	}
	for _, f := range []string{DefectsFile, UninspectedFile, MarksFile} {
		p := filepath.Join(root, open, f)
		if v := fileVersion(t, p); v != 2 {
			t.Errorf("%s after resume: version %d framing", f, v)
		}
		if old, _ := filepath.Glob(p + ".v1-*"); len(old) != 1 {
			t.Errorf("%s: version-1 file kept as %v", f, old)
		}
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	_, ds, us, err := ReadRoll(filepath.Join(root, open))
	if err != nil {
		t.Fatal(err)
	}
	equalRows(t, "defects after resume", ds, want[open].Defects)
	if len(us) != len(want[open].Uninspected)+1 || us[len(us)-1].Reason != ReasonRestart {
		t.Errorf("uninspected after resume: %+v", us)
	}

	// The closed roll: a review rewrites reviews.arrows in version 2.
	closed := fixtureV1Rolls[0]
	rt := want[closed].Reviews[len(want[closed].Reviews)-1].Time.Add(time.Minute)
	if _, err := s.AddReview(closed, Review{DefectID: 5, Action: ActionFalseAlarm, Reviewer: "dora", Time: rt}); err != nil {
		t.Fatal(err)
	}
	revs, err := ReadReviews(filepath.Join(root, closed))
	if err != nil {
		t.Fatal(err)
	}
	equalRows(t, "reviews", revs[:len(revs)-1], want[closed].Reviews)
	if last := revs[len(revs)-1]; last.DefectID != 5 || last.Reviewer != "dora" {
		t.Errorf("new review %+v", last)
	}
	if v := fileVersion(t, filepath.Join(root, closed, ReviewsFile)); v != 2 {
		t.Errorf("reviews after a review: version %d framing", v)
	}
	// Its other streams are untouched version 1 and still read.
	if v := fileVersion(t, filepath.Join(root, closed, DefectsFile)); v != 1 {
		t.Errorf("defects of the closed roll: version %d framing", v)
	}
}

// fileVersion returns the framing version of the stream file at path.
func fileVersion(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sc := scanStream(bytes.NewReader(b), int64(len(b)))
	if sc.err != nil {
		t.Fatalf("%s: %v", path, sc.err)
	}
	return sc.version
}

// A version-1 stream (no checksums) damaged inside its second record
// batch: the framing is intact, so the damage shows only when the batch is
// decoded, and the decoder panicked. The export showed the recovered
// panic's text (issue 14 #11). The reader returns the first batch's rows
// and says, in bytes, where the readable records stop.
func TestV1DamagedBatchSaysWhereReadingStops(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "roll-v1", DefectsFile))
	if err != nil {
		t.Fatal(err)
	}
	sc := scanStream(bytes.NewReader(b), int64(len(b)))
	if sc.version != 1 || len(sc.spans) != 2 {
		t.Fatalf("fixture: version %d, %d batches; want version 1 with 2", sc.version, len(sc.spans))
	}
	whole, err := readStreamFrom(nil, bytes.NewReader(b), int64(len(b)), "whole", defectColumns)
	if err != nil {
		t.Fatal(err)
	}
	first, err := readStreamFrom(nil, bytes.NewReader(b[:sc.spans[1].off]), sc.spans[1].off, "first", defectColumns)
	if err != nil {
		t.Fatal(err)
	}
	// 959 bytes into a batch of this fixture is a buffer length that makes
	// arrow-go index out of range (found by flipping every byte).
	sp := sc.spans[1]
	c := append([]byte(nil), b...)
	c[sp.off+959] = 0xff
	got, err := readStreamFrom(nil, bytes.NewReader(c), int64(len(c)), DefectsFile, defectColumns)
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("damaged second batch: %v, want ErrCorrupt", err)
	}
	msg := err.Error()
	for _, want := range []string{DefectsFile, "1 readable record batches", fmt.Sprintf("(%d rows)", len(first)),
		fmt.Sprintf("bytes %d–%d", sp.off, sp.end), fmt.Sprintf("stop at byte %d", sp.off)} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
	if strings.Contains(msg, "panic") || strings.Contains(msg, "runtime error") || strings.Contains(msg, "index out of range") {
		t.Errorf("error shows the decoder's panic: %q", msg)
	}
	if len(got) != len(first) || len(first) == 0 || len(first) >= len(whole) {
		t.Errorf("%d rows read, want the first batch's %d (of %d)", len(got), len(first), len(whole))
	}
}

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

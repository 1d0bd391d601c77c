package plant

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// compactChildEnv, set to a data directory, makes the test binary the
// process TestCompactKill kills: it writes part files of pastDay and
// compacts them, in a loop.
const compactChildEnv = "WEBINSPECT_TEST_COMPACT_CHILD"

// compactChild goes on from the largest defect ID in root: two part files
// of 5 rows, "W <last ID>" once they are on disk, then a compaction pass
// (MaxRows 1000: the day file under it is merged again each time), until
// it is killed (or 30 s, not to outlive a broken parent).
func compactChild(root string) int {
	var id int64
	if err := readDataset(root, false, func(r *defectRow) { id = max(id, r.ID) }); err != nil {
		fmt.Fprintln(os.Stderr, "compact child:", err)
		return 2
	}
	c, err := newCompactor(root, CompactOptions{MaxRows: 1000}.withDefaults(), zerolog.Nop(), nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "compact child:", err)
		return 2
	}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
		for range 2 {
			var rows []*defectRow
			for range 5 {
				id++
				rows = append(rows, testRow("L1", pastDay, id))
			}
			if err := writePart(root, id, rows); err != nil {
				fmt.Fprintln(os.Stderr, "compact child:", err)
				return 2
			}
		}
		fmt.Printf("W %d\n", id)
		if st, err := c.pass(context.Background(), time.Now()); err != nil || st.Failed > 0 {
			fmt.Fprintln(os.Stderr, "compact child:", st, err)
			return 2
		}
	}
	return 0
}

// A process writing and compacting the dataset is killed with SIGKILL at
// random moments; after each kill, a start (NewService) finds every row
// the process reported written exactly once, with its values, and no
// other row twice.
func TestCompactKill(t *testing.T) {
	fileOnly(t)
	kills := 20
	if testing.Short() {
		kills = 6
	}
	root := t.TempDir()
	rng := rand.New(rand.NewPCG(5, 6))
	var reported atomic.Int64
	phases := make(map[string]int) // kills that left the journal, by its phase
	for k := range kills {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), compactChildEnv+"="+root)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				if n, err := strconv.ParseInt(strings.TrimPrefix(sc.Text(), "W "), 10, 64); err == nil {
					reported.Store(n)
				}
			}
		}()
		time.Sleep(time.Duration(50+rng.IntN(400)) * time.Millisecond) // a random moment, not a timing assert
		cmd.Process.Signal(syscall.SIGKILL)
		<-done
		if err := cmd.Wait(); err != nil && !strings.Contains(err.Error(), "killed") {
			t.Fatalf("kill %d: child: %v; stderr: %s", k, err, stderr.String())
		}
		if b, err := os.ReadFile(filepath.Join(root, indexDir, journalFile)); err == nil {
			var j compactJournal
			json.Unmarshal(b, &j)
			phases[j.Phase]++
		}
		if _, err := NewService(ServiceOptions{URLs: []string{"nats://127.0.0.1:1"}, Data: root}); err != nil {
			t.Fatalf("kill %d: start: %v", k, err)
		}
		checkOnce(t, root, k, reported.Load())
	}
	files, _ := listPartition(partDir(root, partKey{"L1", pastDay}))
	t.Logf("%d kills, %d within a compaction (journal left: %v); %d rows reported written; %d files in the partition at the end",
		kills, phases[phaseMerge]+phases[phaseSwap], phases, reported.Load(), len(files))
}

// checkOnce checks that root holds rows 1..reported, each once and as
// written, and no other row twice.
func checkOnce(t *testing.T, root string, k int, reported int64) {
	t.Helper()
	seen := make(map[int64]int)
	err := readDataset(root, false, func(r *defectRow) {
		seen[r.ID]++
		if want := testRow("L1", pastDay, r.ID); *r != *want {
			t.Errorf("kill %d: row %d read back %+v, want %+v", k, r.ID, *r, *want)
		}
	})
	if err != nil {
		t.Fatalf("kill %d: %v", k, err)
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("kill %d: row %d %d times", k, id, n)
		}
	}
	for id := int64(1); id <= reported; id++ {
		if seen[id] != 1 {
			t.Fatalf("kill %d: row %d, reported written, is missing", k, id)
		}
	}
	if ents, _ := os.ReadDir(filepath.Join(root, indexDir)); len(ents) > 0 {
		for _, e := range ents {
			if e.Name() == journalFile {
				t.Fatalf("kill %d: the journal is still there after a start", k)
			}
		}
	}
}

package rollmap

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The kill test re-executes the test binary with killChildEnv set to a
// store directory: TestMain then runs killChild instead of the tests.
const (
	killChildEnv = "ROLLMAP_KILL_CHILD"
	killCountEnv = "ROLLMAP_KILLS" // kills in TestKillChild; default 50
	killRoll     = "K"
	killWidthMM  = 1000
)

func TestMain(m *testing.M) {
	if root := os.Getenv(killChildEnv); root != "" {
		os.Exit(killChild(root))
	}
	os.Exit(m.Run())
}

// killChild is the writer the kill test kills: it resumes roll K if a
// previous child left it open (printing "R <max ID>"), or starts it, then
// adds defects and flushes in a loop, printing "F <ID>" after each Flush
// returns, ID being the largest defect ID flushed. Every defect gets a
// scheduled mark event, every odd one a fired event too, after it was
// added. Its own timer and
// FlushEvery flush too, so the kill can land in any of them.
func killChild(root string) int {
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, "kill child:", err)
		return 2
	}
	s, err := OpenStoreOptions(root, Options{FlushInterval: 10 * time.Millisecond, FlushEvery: 7, MemoryDefects: chunkRows})
	if err != nil {
		return fail(err)
	}
	var (
		r  *Roll
		md float64
	)
	switch info, err := s.Roll(killRoll); {
	case errors.Is(err, ErrNotFound): // the first child, or killed before the roll started
		if r, err = s.StartRoll(RollMeta{ID: killRoll, WebWidthMM: killWidthMM}); err != nil {
			return fail(err)
		}
	case err != nil:
		return fail(err)
	default: // info.LengthM is the length at the last completed flush
		md = info.LengthM + 0.25
		var rr RecoveredRoll
		if r, rr, err = s.ResumeRoll(killRoll, md); err != nil {
			return fail(err)
		}
		fmt.Printf("R %d\n", rr.MaxDefectID)
	}
	rng := rand.New(rand.NewPCG(uint64(os.Getpid()), uint64(time.Now().UnixNano())))
	batch := make([]Defect, 0, 40)
	evs := make([]MarkEvent, 0, 80)
	deadline := time.Now().Add(30 * time.Second) // never outlive a broken parent
	for time.Now().Before(deadline) {
		batch = batch[:0]
		for range 1 + rng.IntN(40) {
			md += 0.01
			cd := rng.Float64() * (killWidthMM - 10)
			batch = append(batch, Defect{MDStartM: md, MDEndM: md + 0.005, CDStartMM: cd, CDEndMM: cd + 5,
				AreaMM2: 1, Class: "hole", Decision: DecisionMark, Polarity: "dark", Time: time.Now(), ImageRef: strings.Repeat("x", rng.IntN(50))})
		}
		if err := r.AddDefects(batch...); err != nil {
			return fail(err)
		}
		r.mu.Lock()
		maxID := r.maxID
		r.mu.Unlock()
		evs = evs[:0]
		for id := maxID - int64(len(batch)) + 1; id <= maxID; id++ {
			evs = append(evs, MarkEvent{DefectID: id, Status: MarkScheduled, Head: "h1", TargetCount: id * 100})
			if id%2 == 1 {
				evs = append(evs, MarkEvent{DefectID: id, Status: MarkFired, Head: "h1", FireCount: id*100 + 1, Time: time.Now()})
			}
		}
		if err := r.AddMarkEvents(evs...); err != nil {
			return fail(err)
		}
		r.SetLength(md)
		if err := r.Flush(); err != nil {
			return fail(err)
		}
		fmt.Printf("F %d\n", maxID)
		if rng.IntN(4) == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	return 0
}

// TestKillChild kills a writer process with SIGKILL at random moments, 50
// times (ROLLMAP_KILLS), and after each kill checks that every defect it
// reported flushed is on disk, that no file is unreadable (a partial batch
// at the end is allowed: it is what a kill leaves), and that every resume
// recorded an engine-restart gap. Each new child resumes the same roll.
func TestKillChild(t *testing.T) {
	kills := 50
	if testing.Short() {
		kills = 5
	}
	if v := os.Getenv(killCountEnv); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("%s=%q, want a positive integer", killCountEnv, v)
		}
		kills = n
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	dir := filepath.Join(root, killRoll)
	rng := rand.New(rand.NewPCG(1, 2))
	var reported int64    // largest ID any child reported flushed
	var marked [][2]int64 // ID ranges whose mark events a child reported flushed
	resumes := 0          // resumes a child reported complete
	torn := 0             // torn writes simulated
	start := time.Now()
	for k := range kills {
		cmd := exec.Command(exe, "-test.run=^$")
		cmd.Env = append(os.Environ(), killChildEnv+"="+root)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		firstFlush := make(chan struct{})
		var (
			wg       sync.WaitGroup
			mu       sync.Mutex
			lastF    int64 = -1
			resumed  bool
			firstID  int64 = 1 // the first defect ID this child adds
			badLines []string
		)
		wg.Go(func() {
			br := bufio.NewReader(out)
			once := sync.OnceFunc(func() { close(firstFlush) })
			defer once()
			for {
				line, err := br.ReadString('\n')
				if err != nil { // a line cut by the kill is not a report
					io.Copy(io.Discard, br)
					return
				}
				f := strings.Fields(line)
				n, perr := int64(0), error(nil)
				if len(f) == 2 {
					n, perr = strconv.ParseInt(f[1], 10, 64)
				}
				mu.Lock()
				switch {
				case len(f) != 2 || perr != nil:
					badLines = append(badLines, line)
				case f[0] == "F":
					lastF = n
				case f[0] == "R":
					resumed = true
					firstID = n + 1
				}
				mu.Unlock()
				if f[0] == "F" {
					once()
				}
			}
		})
		// One kill in four at any moment from the start (during start-up
		// and resume too); the others a little after the first flush.
		if rng.IntN(4) == 0 {
			time.Sleep(time.Duration(rng.IntN(150)) * time.Millisecond)
		} else {
			select {
			case <-firstFlush:
			case <-time.After(10 * time.Second):
				t.Fatalf("kill %d: child never flushed; stderr: %s", k, stderr.String())
			}
			time.Sleep(time.Duration(rng.IntN(25000)) * time.Microsecond)
		}
		cmd.Process.Kill() // SIGKILL
		werr := cmd.Wait()
		wg.Wait()
		if ee := (*exec.ExitError)(nil); !errors.As(werr, &ee) || ee.ExitCode() != -1 {
			t.Fatalf("kill %d: child ended by itself (%v); stderr: %s", k, werr, stderr.String())
		}
		if len(badLines) > 0 {
			t.Fatalf("kill %d: child printed %q", k, badLines)
		}
		reported = max(reported, lastF)
		if lastF >= firstID {
			// The marks of the defects a child added are flushed with its
			// next Flush; those of a child killed before it may be lost
			// though its defects were flushed by the background flusher.
			marked = append(marked, [2]int64{firstID, lastF})
		}
		if resumed {
			resumes++
		}
		checkKilled(t, k, dir, reported, resumes, marked)
		// kill -9 never tears a write (the kernel finishes a write to a
		// regular file before the process dies); a power cut can. One time
		// in four, add the first bytes of a batch message to the end of
		// the defects or the marks file, as a torn write would leave, for
		// the next child to cut off.
		if rng.IntN(4) == 0 {
			if tearTail(t, filepath.Join(dir, []string{DefectsFile, MarksFile}[rng.IntN(2)]), rng) {
				torn++
			}
		}
	}
	// Resume once more here, close, and check the whole roll.
	s, err := OpenStore(root)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := s.Recover()
	if err != nil && !errors.Is(err, ErrTruncated) || len(rec) != 1 {
		t.Fatalf("Recover: %+v, %v", rec, err)
	}
	r, _, err := s.ResumeRoll(killRoll, rec[0].FlushedLengthM+1)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	_, ds, us, err := ReadRoll(dir)
	if err != nil {
		t.Fatalf("closed roll: %v", err)
	}
	checkIDs(t, kills, ds, reported)
	checkMarksKilled(t, kills, dir, ds, marked)
	if n := countRestarts(t, kills, us); n < resumes+1 {
		t.Errorf("%d engine-restart ranges after %d resumes", n, resumes+1)
	}
	t.Logf("%d kills in %v: %d defects, %d resumes, %d torn tails, %d uninspected ranges",
		kills, time.Since(start).Round(time.Millisecond), len(ds), resumes, torn, len(us))
}

// checkKilled checks the roll directory after kill k.
func checkKilled(t *testing.T, k int, dir string, reported int64, resumes int, marked [][2]int64) {
	t.Helper()
	meta, ds, us, err := ReadRoll(dir)
	if errors.Is(err, ErrNotFound) && reported <= 0 {
		return // killed before the roll was started
	}
	if err != nil && !errors.Is(err, ErrTruncated) || errors.Is(err, ErrCorrupt) {
		t.Fatalf("kill %d: roll unreadable: %v", k, err)
	}
	if !meta.Open {
		t.Fatalf("kill %d: roll.json says closed", k)
	}
	checkIDs(t, k, ds, reported)
	checkMarksKilled(t, k, dir, ds, marked)
	if n := countRestarts(t, k, us); n < resumes {
		t.Fatalf("kill %d: %d engine-restart ranges after %d resumes", k, n, resumes)
	}
}

// checkIDs checks that ds are in strictly increasing ID order (a resumed
// roll continues above every ID it may have handed out, so no ID is ever
// given twice, even to a defect lost with a killed child) and hold every
// ID reported flushed.
func checkIDs(t *testing.T, k int, ds []Defect, reported int64) {
	t.Helper()
	have := make(map[int64]bool, len(ds))
	for i, d := range ds {
		if i > 0 && d.ID <= ds[i-1].ID {
			t.Fatalf("kill %d: defect %d has ID %d after ID %d: IDs must only grow", k, i, d.ID, ds[i-1].ID)
		}
		have[d.ID] = true
	}
	if reported > 0 && !have[reported] {
		t.Fatalf("kill %d: the child reported ID %d flushed, it is not on disk (max %d)", k, reported, ds[len(ds)-1].ID)
	}
}

// checkMarksKilled checks the marks of the killed child's roll: every
// defect in the ranges marked has its events (scheduled, and fired for odd
// IDs), and no event names a defect not on disk (events are added after
// their defect and written after it in each Flush).
func checkMarksKilled(t *testing.T, k int, dir string, ds []Defect, marked [][2]int64) {
	t.Helper()
	evs, err := ReadMarkEvents(dir)
	if err != nil && !errors.Is(err, ErrTruncated) || errors.Is(err, ErrCorrupt) {
		t.Fatalf("kill %d: marks unreadable: %v", k, err)
	}
	onDisk := make(map[int64]bool, len(ds))
	for _, d := range ds {
		onDisk[d.ID] = true
	}
	for _, e := range evs {
		if !onDisk[e.DefectID] {
			t.Fatalf("kill %d: mark event of defect %d, which is not on disk (%d defects)", k, e.DefectID, len(ds))
		}
	}
	checked := 0
	for _, d := range ds {
		if !slices.ContainsFunc(marked, func(iv [2]int64) bool { return d.ID >= iv[0] && d.ID <= iv[1] }) {
			continue
		}
		checked++
		m := d.Mark
		want := MarkScheduled
		if d.ID%2 == 1 {
			want = MarkFired
		}
		if !m.Scheduled || m.Status != want || m.TargetCount != d.ID*100 || d.ID%2 == 1 && m.FireCount != d.ID*100+1 {
			t.Fatalf("kill %d: defect %d reported flushed has mark %+v, want %s", k, d.ID, m, want)
		}
	}
	if len(marked) > 0 && checked == 0 {
		t.Fatalf("kill %d: no defect of the ranges %v on disk", k, marked)
	}
}

func countRestarts(t *testing.T, k int, us []Uninspected) int {
	t.Helper()
	n := 0
	for _, u := range us {
		if u.Reason != ReasonRestart {
			t.Fatalf("kill %d: unexpected uninspected range %+v", k, u)
		}
		if u.Camera != -1 || u.CDStartMM != 0 || u.CDEndMM != killWidthMM || u.MDEndM < u.MDStartM {
			t.Fatalf("kill %d: restart gap %+v, want the full width, camera -1", k, u)
		}
		n++
	}
	return n
}

// tearTail appends 1 to 64 bytes of the file's first record batch message
// (a partial message: every batch message is longer) to its end.
func tearTail(t *testing.T, path string, rng *rand.Rand) bool {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		return false // the roll was not started yet
	}
	sc := scanStream(bytesReaderAt(b), int64(len(b)))
	if sc.batches == 0 {
		return false
	}
	n := 1 + rng.IntN(64)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(b[sc.schemaEnd : sc.schemaEnd+int64(n)]); err != nil {
		t.Fatal(err)
	}
	return true
}

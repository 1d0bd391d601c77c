package archive

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/webinspect/webinspect/internal/poll"
)

// smallDisk is a tiny filesystem for the archive's root: a real tmpfs
// when the test may mount one (root), else a write seam that reports
// ENOSPC once the files under dir exceed size.
type smallDisk struct {
	dir, root string
	hooks     hooks
}

// countStatfs makes the hooks count the archive's free-space checks (a
// stopped archive makes one per sweep) and returns the counter.
func (d *smallDisk) countStatfs() *atomic.Int64 {
	var n atomic.Int64
	statfs := d.hooks.statfs
	d.hooks.statfs = func(path string) (int64, error) {
		n.Add(1)
		return statfs(path)
	}
	return &n
}

// afterSweeps waits until the stopped archive's sweeper has made two more
// free-space checks, so that at least one whole resume decision was taken
// after the call.
func afterSweeps(t *testing.T, checks *atomic.Int64) {
	t.Helper()
	n := checks.Load()
	poll.Until(t, 30*time.Second, "two sweeps of the stopped archive", func() bool { return checks.Load() >= n+2 })
}

func newSmallDisk(t *testing.T, size int64) *smallDisk {
	t.Helper()
	d := &smallDisk{dir: filepath.Join(t.TempDir(), "mnt"), hooks: defaultHooks()}
	d.root = filepath.Join(d.dir, "images")
	if err := os.Mkdir(d.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// WEBINSPECT_ARCHIVE_FAKE_DISK=1 tests the fallback where mounting works.
	var out []byte
	err := errors.New("WEBINSPECT_ARCHIVE_FAKE_DISK is set")
	if os.Getenv("WEBINSPECT_ARCHIVE_FAKE_DISK") == "" {
		out, err = exec.Command("mount", "-t", "tmpfs", "-o", "size="+strconv.FormatInt(size, 10), "tmpfs", d.dir).CombinedOutput()
	}
	if err == nil {
		t.Cleanup(func() {
			if out, err := exec.Command("umount", d.dir).CombinedOutput(); err != nil {
				t.Errorf("umount %s: %v: %s", d.dir, err, out)
				_ = exec.Command("umount", "-l", d.dir).Run()
			}
		})
		t.Logf("real full disk: tmpfs of %d bytes at %s", size, d.dir)
		return d
	}
	t.Logf("cannot mount a tmpfs (%v: %s); falling back to a write seam that injects ENOSPC", err, strings.TrimSpace(string(out)))
	used := func() int64 {
		var n int64
		_ = filepath.WalkDir(d.dir, func(_ string, e fs.DirEntry, err error) error {
			if err == nil && !e.IsDir() {
				if fi, err := e.Info(); err == nil {
					n += (fi.Size() + 4095) &^ 4095
				}
			}
			return nil
		})
		return n
	}
	d.hooks.statfs = func(string) (int64, error) { return max(size-used(), 0), nil }
	d.hooks.writeTemp = func(name string, data []byte, sync bool) error {
		if free := size - used(); int64(len(data)) > free {
			_ = os.WriteFile(name, data[:len(data)/2], 0o644) // a partial file, as a real disk leaves
			return &fs.PathError{Op: "write", Path: name, Err: syscall.ENOSPC}
		}
		return writeTempFile(name, data, sync)
	}
	return d
}

func (d *smallDisk) ballast(t *testing.T, n int) string {
	t.Helper()
	p := filepath.Join(d.dir, "ballast")
	if err := os.WriteFile(p, make([]byte, n), 0o644); err != nil {
		t.Fatalf("ballast: %v", err)
	}
	return p
}

// fillUntilStopped puts incompressible crops, one write at a time, until
// Put says ErrStopped; it returns the crops and refs Put accepted.
func fillUntilStopped(t *testing.T, a *Archive) ([]Crop, []string) {
	t.Helper()
	var crops []Crop
	var refs []string
	for i := range 500 {
		c := noiseCrop(64, 64, uint64(1000+i))
		ref, err := a.Put(c)
		if errors.Is(err, ErrStopped) {
			return crops, refs
		}
		if err != nil {
			t.Fatalf("Put %d: %v", i, err)
		}
		crops, refs = append(crops, c), append(refs, ref)
		waitIdle(t, a)
	}
	t.Fatal("archive never stopped on a full disk")
	return nil, nil
}

func checkStoppedState(t *testing.T, h harness, reasonPart string, skipped uint64) {
	t.Helper()
	st := h.a.Stats()
	if !st.Stopped || !strings.Contains(st.StoppedReason, reasonPart) || st.StoppedSince.IsZero() {
		t.Fatalf("stats %+v, want stopped with reason containing %q", st, reasonPart)
	}
	if st.Skipped.DiskFull != skipped || st.Skipped.WriteError != 0 {
		t.Fatalf("skipped %+v, want disk_full %d", st.Skipped, skipped)
	}
	if got := metricValue(t, h.reg, "webinspect_image_archive_stopped", ""); got != 1 {
		t.Fatalf("stopped gauge %v", got)
	}
	if got := metricValue(t, h.reg, "webinspect_images_skipped_total", ReasonDiskFull); got != float64(skipped) {
		t.Fatalf("skipped{disk_full} %v, want %d", got, skipped)
	}
	var stops []string
	for _, l := range strings.Split(h.log.String(), "\n") {
		if strings.Contains(l, "image archive stopped") {
			stops = append(stops, l)
		}
	}
	if len(stops) != 1 {
		t.Fatalf("stop logged %d times, want once:\n%s", len(stops), h.log.String())
	}
	for _, want := range []string{`"level":"error"`, `"root":"` + h.a.root + `"`, `"free_bytes":`} {
		if !strings.Contains(stops[0], want) {
			t.Fatalf("stop log lacks %s: %s", want, stops[0])
		}
	}
	for _, f := range listFiles(t, h.a.root) {
		if strings.HasSuffix(f, ".tmp") {
			t.Fatalf("partial temp file left: %s", f)
		}
	}
}

// TestDiskFull fills a real (tmpfs) filesystem: the write that hits ENOSPC
// stops the archive, which then refuses crops at once; earlier images stay
// readable; freeing space (another file deleted) resumes it.
func TestDiskFull(t *testing.T) {
	d := newSmallDisk(t, 256<<10)
	ballast := d.ballast(t, 96<<10)
	o := testOptions()
	o.SweepInterval = 20 * time.Millisecond
	checks := d.countStatfs()
	h := openT(t, d.root, o, d.hooks)

	crops, refs := fillUntilStopped(t, h.a)
	if len(refs) < 5 {
		t.Fatalf("only %d crops fit before the stop", len(refs))
	}
	checkStoppedState(t, h, "no space left on device", 2) // the failed write + the refused Put
	last := len(refs) - 1
	if _, err := h.a.Open(refs[last]); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the crop whose write hit ENOSPC: Open %v, want ErrNotFound", err)
	}
	for i := range last {
		checkImage(t, h.a, refs[i], crops[i])
	}

	// Stopped means fast refusal, no queueing, no new log lines.
	refused := noiseCrop(64, 64, 7)
	t0 := time.Now()
	for range 1000 {
		if _, err := h.a.Put(refused); !errors.Is(err, ErrStopped) {
			t.Fatalf("Put while stopped: %v", err)
		}
	}
	t.Logf("1000 refused Puts took %v", time.Since(t0))
	afterSweeps(t, checks) // nothing freed: stays stopped
	checkStoppedState(t, h, "no space left on device", 1002)

	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	eventually(t, "resume after space was freed", func() bool { return !h.a.Stats().Stopped })
	if got := metricValue(t, h.reg, "webinspect_image_archive_stopped", ""); got != 0 {
		t.Fatalf("stopped gauge %v after resume", got)
	}
	if !strings.Contains(h.log.String(), "image archive resumed") {
		t.Fatal("resume not logged")
	}
	c := noiseCrop(64, 64, 99999)
	ref, err := h.a.Put(c)
	if err != nil {
		t.Fatalf("Put after resume: %v", err)
	}
	waitIdle(t, h.a)
	checkImage(t, h.a, ref, c)
	if st := h.a.Stats(); st.Stopped || st.Written != uint64(len(refs)) {
		t.Fatalf("after resume %+v", st)
	}
}

// testClock is a clock the test moves forward.
type testClock struct{ off atomic.Int64 }

func (c *testClock) now() time.Time          { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *testClock) advance(d time.Duration) { c.off.Add(int64(d)) }

// TestMinFreeBytes: the archive stops before the disk is full, when free
// space would go below MinFreeBytes, and resumes when age retention has
// deleted files.
func TestMinFreeBytes(t *testing.T) {
	d := newSmallDisk(t, 256<<10)
	clk := &testClock{}
	d.hooks.now = clk.now
	o := testOptions()
	o.SweepInterval = 20 * time.Millisecond
	o.MinFreeBytes = 128 << 10
	o.MaxAge = time.Hour
	checks := d.countStatfs()
	h := openT(t, d.root, o, d.hooks)

	crops, refs := fillUntilStopped(t, h.a)
	checkStoppedState(t, h, "below Options.MinFreeBytes", 2)
	if free, err := d.hooks.statfs(d.dir); err != nil || free < o.MinFreeBytes-16<<10 {
		t.Fatalf("free %d (%v): the archive went well below MinFreeBytes %d", free, err, o.MinFreeBytes)
	}
	last := len(refs) - 1
	if _, err := h.a.Open(refs[last]); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the refused crop: Open %v, want ErrNotFound", err)
	}
	for i := range last {
		checkImage(t, h.a, refs[i], crops[i])
	}
	afterSweeps(t, checks)
	if !h.a.Stats().Stopped {
		t.Fatal("resumed without space freed")
	}

	clk.advance(2 * time.Hour) // every image is now older than MaxAge
	eventually(t, "resume after the sweep", func() bool { return !h.a.Stats().Stopped })
	if st := h.a.Stats(); st.DeletedAge != uint64(last) || st.Files != 0 {
		t.Fatalf("after the sweep %+v", st)
	}
	c := noiseCrop(64, 64, 4242)
	ref, err := h.a.Put(c)
	if err != nil {
		t.Fatalf("Put after resume: %v", err)
	}
	waitIdle(t, h.a)
	checkImage(t, h.a, ref, c)
}

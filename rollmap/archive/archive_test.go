package archive

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"image"
	"image/png"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/webinspect/webinspect/internal/dirlock"
	"github.com/webinspect/webinspect/internal/poll"
	"github.com/webinspect/webinspect/internal/syncbuf"
)

type harness struct {
	a   *Archive
	log *syncbuf.Buffer
	reg *prometheus.Registry
}

func testOptions() Options {
	o := DefaultOptions()
	o.MinFreeBytes = 0
	o.SweepInterval = 10 * time.Millisecond
	return o
}

// openT opens an archive at root with a fresh registry and a captured log;
// it is closed at the end of the test unless the test closed it.
func openT(t *testing.T, root string, o Options, h hooks) harness {
	t.Helper()
	lb := &syncbuf.Buffer{}
	reg := prometheus.NewRegistry()
	a, err := open(root, o, zerolog.New(lb), reg, h)
	if err != nil {
		t.Fatalf("open %s: %v", root, err)
	}
	t.Cleanup(func() { _ = a.Close() })
	return harness{a: a, log: lb, reg: reg}
}

// crop returns a w×h crop in a buffer of the given stride: web texture
// (noise around mid-gray) with a dark blob, distinct per seed.
func crop(w, h, stride int, seed uint64) Crop {
	r := rand.New(rand.NewPCG(seed, 7))
	pix := make([]uint8, (h-1)*stride+w)
	for i := range pix {
		pix[i] = 0xEE // padding a correct encoder never reads
	}
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			v := 128 + r.IntN(17) - 8
			if dx, dy := x-w/2, y-h/2; dx*dx+dy*dy < w*h/16 {
				v -= 60
			}
			pix[y*stride+x] = uint8(v)
		}
	}
	return Crop{W: w, H: h, Stride: stride, Pix: pix}
}

// noiseCrop is incompressible: each PNG is about w*h bytes.
func noiseCrop(w, h int, seed uint64) Crop {
	r := rand.New(rand.NewPCG(seed, 11))
	pix := make([]uint8, w*h)
	for i := range pix {
		pix[i] = uint8(r.Uint32())
	}
	return Crop{W: w, H: h, Stride: w, Pix: pix}
}

func waitIdle(t *testing.T, a *Archive) {
	t.Helper()
	eventually(t, "queue drained", func() bool { return a.Stats().Queued == 0 })
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	poll.Until(t, 30*time.Second, what, cond)
}

// readRef reads the image of ref and checks it decodes to c's pixels.
func checkImage(t *testing.T, a *Archive, ref string, c Crop) {
	t.Helper()
	rc, err := a.Open(ref)
	if err != nil {
		t.Fatalf("Open(%s): %v", ref, err)
	}
	data, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		t.Fatalf("read %s: %v", ref, err)
	}
	if sum := sha256.Sum256(data); hex.EncodeToString(sum[:])+".png" != ref {
		t.Fatalf("ref %s is not the hash of its bytes", ref)
	}
	if ct := http.DetectContentType(data); ct != "image/png" {
		t.Fatalf("content type %q", ct)
	}
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("decode %s: %v", ref, err)
	}
	g, ok := img.(*image.Gray)
	if !ok {
		t.Fatalf("decoded %T, want *image.Gray (8-bit grayscale)", img)
	}
	if g.Rect != image.Rect(0, 0, c.W, c.H) {
		t.Fatalf("decoded bounds %v, want %dx%d", g.Rect, c.W, c.H)
	}
	for y := 0; y < c.H; y++ {
		if !bytes.Equal(g.Pix[y*g.Stride:y*g.Stride+c.W], c.Pix[y*c.Stride:y*c.Stride+c.W]) {
			t.Fatalf("%s: row %d differs from the crop", ref, y)
		}
	}
}

func listFiles(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && d.Name() != dirlock.Name { // the writer's lock holds no image
			rel, _ := filepath.Rel(root, p)
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestRoundTrip(t *testing.T) {
	root := t.TempDir()
	h := openT(t, root, testOptions(), defaultHooks())
	crops := []Crop{
		crop(64, 64, 64, 1), crop(1, 1, 1, 2), crop(37, 5, 64, 3), crop(256, 17, 300, 4), crop(3, 200, 3, 5),
		noiseCrop(300, 40, 6),
	}
	refs := make([]string, len(crops))
	for i, c := range crops {
		ref, err := h.a.Put(c)
		if err != nil {
			t.Fatalf("Put %d: %v", i, err)
		}
		if err := ValidRef(ref); err != nil {
			t.Fatalf("Put returned %v", err)
		}
		refs[i] = ref
		for j := range c.Pix { // Put must not keep the caller's pixels
			c.Pix[j] = ^c.Pix[j]
		}
		for j := range c.Pix {
			c.Pix[j] = ^c.Pix[j]
		}
	}
	if err := h.a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := h.a.Close(); !errors.Is(err, ErrClosed) {
		t.Fatalf("second Close: %v, want ErrClosed", err)
	}
	for i, ref := range refs {
		checkImage(t, h.a, ref, crops[i]) // Open works after Close
		if _, err := os.Stat(filepath.Join(root, ref[:2], ref)); err != nil {
			t.Fatalf("file not at <root>/<2 hex>/<ref>: %v", err)
		}
		if h.a.Path(ref) != filepath.Join(root, ref[:2], ref) {
			t.Fatalf("Path(%s) = %s", ref, h.a.Path(ref))
		}
	}
	st := h.a.Stats()
	if st.Files != len(crops) || st.Written != uint64(len(crops)) || st.Queued != 0 {
		t.Fatalf("stats %+v", st)
	}
	var sum int64
	for _, f := range listFiles(t, root) {
		if strings.HasSuffix(f, ".tmp") {
			t.Fatalf("temp file left: %s", f)
		}
		fi, _ := os.Stat(filepath.Join(root, f))
		sum += fi.Size()
	}
	if st.Bytes != sum {
		t.Fatalf("Stats.Bytes %d, files sum %d", st.Bytes, sum)
	}
	if got := metricValue(t, h.reg, "webinspect_images_written_total", ""); got != float64(len(crops)) {
		t.Fatalf("written metric %v", got)
	}
	if _, err := h.a.Put(crops[0]); !errors.Is(err, ErrClosed) {
		t.Fatalf("Put after Close: %v, want ErrClosed", err)
	}
	if _, err := h.a.Open(strings.Repeat("0", 64) + ".png"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Open of unknown ref: %v, want ErrNotFound", err)
	}
}

func TestPutInvalidCrop(t *testing.T) {
	h := openT(t, t.TempDir(), testOptions(), defaultHooks())
	for _, c := range []Crop{
		{W: 0, H: 4, Stride: 4, Pix: make([]uint8, 16)},
		{W: 4, H: 4, Stride: 3, Pix: make([]uint8, 16)},
		{W: 4, H: 4, Stride: 4, Pix: make([]uint8, 15)},
		{W: 9000, H: 1, Stride: 9000, Pix: make([]uint8, 9000)},
	} {
		if ref, err := h.a.Put(c); !errors.Is(err, ErrInvalid) || ref != "" {
			t.Fatalf("Put(%dx%d stride %d, %d px) = %q, %v; want ErrInvalid", c.W, c.H, c.Stride, len(c.Pix), ref, err)
		}
	}
	if got := h.a.Stats().Skipped.Invalid; got != 4 {
		t.Fatalf("invalid skips %d", got)
	}
}

func TestDedup(t *testing.T) {
	root := t.TempDir()
	h := openT(t, root, testOptions(), defaultHooks())
	c := crop(48, 32, 48, 9)
	wide := crop(48, 32, 80, 9) // same pixels, other stride
	r1, err := h.a.Put(c)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := h.a.Put(wide)
	if err != nil {
		t.Fatal(err)
	}
	waitIdle(t, h.a)
	r3, err := h.a.Put(c) // after the first is on disk
	if err != nil {
		t.Fatal(err)
	}
	r4, err := h.a.Put(crop(48, 32, 48, 10))
	if err != nil {
		t.Fatal(err)
	}
	h.a.Close()
	if r1 != r2 || r1 != r3 {
		t.Fatalf("identical crops gave refs %s %s %s", r1, r2, r3)
	}
	if r4 == r1 {
		t.Fatal("different crops gave the same ref")
	}
	if files := listFiles(t, root); len(files) != 2 {
		t.Fatalf("files %v, want 2", files)
	}
	st := h.a.Stats()
	if st.Written != 2 || st.Deduplicated != 2 || st.Files != 2 {
		t.Fatalf("stats %+v, want 2 written, 2 deduplicated", st)
	}
	checkImage(t, h.a, r1, c)
}

func TestValidRef(t *testing.T) {
	good := strings.Repeat("0123456789abcdef", 4) + ".png"
	if err := ValidRef(good); err != nil {
		t.Fatalf("ValidRef(%s): %v", good, err)
	}
	h := openT(t, t.TempDir(), testOptions(), defaultHooks())
	for _, ref := range []string{
		"",
		"../" + good[3:],
		"ab/../../etc/passwd",
		"../../../../../../../../../../../../../../../../../../etc/passwd.png",
		strings.Repeat("0123456789ABCDEF", 4) + ".png",     // uppercase
		strings.Repeat("0123456789abcdef", 4)[1:] + ".png", // 63 hex
		strings.Repeat("0123456789abcdef", 4) + "0.png",    // 65 hex
		strings.Repeat("0123456789abcdef", 4) + ".PNG",
		strings.Repeat("0123456789abcdef", 4) + ".jpg",
		strings.Repeat("0123456789abcdef", 4) + ".pn/",
		strings.Repeat("0123456789abcdef", 4),
		strings.Repeat("0123456789abcdeg", 4) + ".png",
		"/" + strings.Repeat("0123456789abcdef", 4)[1:] + ".png",
		strings.Repeat("0123456789abcdef", 4)[:63] + "\x00.png",
	} {
		if err := ValidRef(ref); !errors.Is(err, ErrBadRef) {
			t.Errorf("ValidRef(%q) = %v, want ErrBadRef", ref, err)
		}
		if _, err := h.a.Open(ref); !errors.Is(err, ErrBadRef) {
			t.Errorf("Open(%q) = %v, want ErrBadRef", ref, err)
		}
	}
}

func TestOptionsValidate(t *testing.T) {
	if err := DefaultOptions().Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mut := range map[string]func(*Options){
		"MaxAge":        func(o *Options) { o.MaxAge = time.Millisecond },
		"MaxBytes":      func(o *Options) { o.MaxBytes = -1 },
		"MinFreeBytes":  func(o *Options) { o.MinFreeBytes = -5 },
		"Queue":         func(o *Options) { o.Queue = 0 },
		"SweepInterval": func(o *Options) { o.SweepInterval = 0 },
		"Compression":   func(o *Options) { o.Compression = 7 },
	} {
		o := DefaultOptions()
		mut(&o)
		err := o.Validate()
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "Options."+name) {
			t.Errorf("%s: Validate() = %v, want ErrInvalid naming the field", name, err)
		}
	}
	if _, err := Open(t.TempDir(), Options{}, zerolog.Nop(), nil); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Open with zero Options: %v, want ErrInvalid", err)
	}
}

// putAll puts crops one by one, waiting for each to be written.
func putAll(t *testing.T, a *Archive, crops []Crop) []string {
	t.Helper()
	refs := make([]string, len(crops))
	for i, c := range crops {
		ref, err := a.Put(c)
		if err != nil {
			t.Fatalf("Put %d: %v", i, err)
		}
		refs[i] = ref
		waitIdle(t, a)
	}
	return refs
}

func TestRestartRescan(t *testing.T) {
	root := t.TempDir()
	h := openT(t, root, testOptions(), defaultHooks())
	var crops []Crop
	for i := range 12 {
		crops = append(crops, crop(40+i, 30, 40+i, uint64(100+i)))
	}
	refs := putAll(t, h.a, crops)
	before := h.a.Stats()
	h.a.Close()

	// Leftovers of a crash and a stranger's file.
	pre := filepath.Join(root, refs[0][:2])
	tmp := filepath.Join(pre, strings.Repeat("a", 64)+".png.tmp")
	empty := filepath.Join(root, "ee", "ee"+strings.Repeat("1", 62)+".png")
	os.MkdirAll(filepath.Dir(empty), 0o755)
	for _, f := range []string{tmp, empty} {
		if err := os.WriteFile(f, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "README"), []byte("hi"), 0o644); err != nil {
		t.Fatal(err)
	}

	h2 := openT(t, root, testOptions(), defaultHooks())
	st := h2.a.Stats()
	if st.Files != before.Files || st.Bytes != before.Bytes {
		t.Fatalf("rescan found %d files %d bytes, had %d files %d bytes", st.Files, st.Bytes, before.Files, before.Bytes)
	}
	for _, f := range []string{tmp, empty, filepath.Dir(empty)} {
		if _, err := os.Stat(f); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s not removed by the scan: %v", f, err)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "README")); err != nil {
		t.Fatalf("foreign file touched: %v", err)
	}
	if !strings.Contains(h2.log.String(), `"removed":2`) {
		t.Fatalf("scan did not log the removals: %s", h2.log.String())
	}
	for i, ref := range refs {
		checkImage(t, h2.a, ref, crops[i])
	}
	ref, err := h2.a.Put(crops[3])
	if err != nil || ref != refs[3] {
		t.Fatalf("Put after restart: %s, %v", ref, err)
	}
	waitIdle(t, h2.a)
	if st := h2.a.Stats(); st.Written != 0 || st.Deduplicated != 1 {
		t.Fatalf("after restart, a known crop was written again: %+v", st)
	}
}

// setAges sets the mtimes of the files of refs: refs[i] gets base+ages[i].
func setAges(t *testing.T, root string, refs []string, base time.Time, offs []time.Duration) {
	t.Helper()
	for i, ref := range refs {
		tm := base.Add(offs[i])
		if err := os.Chtimes(filepath.Join(root, ref[:2], ref), tm, tm); err != nil {
			t.Fatal(err)
		}
	}
}

func TestRetentionByAge(t *testing.T) {
	root := t.TempDir()
	h := openT(t, root, testOptions(), defaultHooks())
	var crops []Crop
	for i := range 8 {
		crops = append(crops, crop(32, 32, 32, uint64(200+i)))
	}
	refs := putAll(t, h.a, crops)
	h.a.Close()
	now := time.Now()
	offs := []time.Duration{-3 * time.Hour, 0, -90 * time.Minute, -time.Minute, -25 * time.Hour, -30 * time.Minute, -2 * time.Hour, 0}
	setAges(t, root, refs, now, offs)

	o := testOptions()
	o.MaxAge = time.Hour
	h2 := openT(t, root, o, defaultHooks())
	eventually(t, "old files deleted", func() bool { return h2.a.Stats().DeletedAge == 4 })
	for i, ref := range refs {
		_, err := h2.a.Open(ref)
		if old := offs[i] < -time.Hour; old != errors.Is(err, ErrNotFound) {
			t.Fatalf("ref %d (age %v): Open err %v", i, -offs[i], err)
		}
	}
	checkNoEmptyDirs(t, root)
	if st := h2.a.Stats(); st.Files != 4 || st.DeletedBudget != 0 {
		t.Fatalf("stats %+v", st)
	}
	if got := metricValue(t, h2.reg, "webinspect_images_deleted_total", "age"); got != 4 {
		t.Fatalf("deleted{age} = %v", got)
	}
}

func checkNoEmptyDirs(t *testing.T, root string) {
	t.Helper()
	dirs, _ := os.ReadDir(root)
	for _, d := range dirs {
		if !d.IsDir() {
			continue
		}
		if fs, _ := os.ReadDir(filepath.Join(root, d.Name())); len(fs) == 0 {
			t.Fatalf("empty prefix dir %s left", d.Name())
		}
	}
}

func TestRetentionByBudget(t *testing.T) {
	root := t.TempDir()
	h := openT(t, root, testOptions(), defaultHooks())
	var crops []Crop
	for i := range 8 {
		crops = append(crops, crop(32+i, 32, 40, uint64(300+i)))
	}
	refs := putAll(t, h.a, crops)
	h.a.Close()
	// Ages in an order unlike the write order: the budget must follow mtime.
	offs := []time.Duration{-5, -1, -7, -3, -8, -2, -6, -4}
	for i := range offs {
		offs[i] *= time.Minute
	}
	setAges(t, root, refs, time.Now(), offs)
	size := func(ref string) int64 {
		fi, err := os.Stat(filepath.Join(root, ref[:2], ref))
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	newest := []int{1, 5, 3} // offsets -1, -2, -3 minutes
	var budget int64
	for _, i := range newest {
		budget += size(refs[i])
	}

	o := testOptions()
	o.MaxBytes = budget
	h2 := openT(t, root, o, defaultHooks())
	eventually(t, "budget applied", func() bool { return h2.a.Stats().DeletedBudget == 5 })
	keep := map[int]bool{1: true, 5: true, 3: true}
	for i, ref := range refs {
		if _, err := h2.a.Open(ref); keep[i] == errors.Is(err, ErrNotFound) {
			t.Fatalf("ref %d (age %v): Open err %v, keep=%v", i, -offs[i], err, keep[i])
		}
	}
	if st := h2.a.Stats(); st.Bytes != budget || st.Files != 3 {
		t.Fatalf("stats %+v, want %d bytes in 3 files", st, budget)
	}
	checkNoEmptyDirs(t, root)

	// While running: each write over budget evicts the oldest at once.
	var more []Crop
	for i := range 6 {
		more = append(more, crop(32+i, 32, 40, uint64(400+i)))
	}
	for i, c := range more {
		ref, err := h2.a.Put(c)
		if err != nil {
			t.Fatal(err)
		}
		waitIdle(t, h2.a)
		eventually(t, "within budget", func() bool { return h2.a.Stats().Bytes <= budget })
		checkImage(t, h2.a, ref, more[i]) // the newest always survives
	}
	if st := h2.a.Stats(); st.DeletedBudget < 5+3 {
		t.Fatalf("running budget did not delete: %+v", st)
	}
}

// TestDedupRefreshesAge: a duplicate Put makes the file the newest, so
// the budget deletes the other one first.
func TestDedupRefreshesAge(t *testing.T) {
	root := t.TempDir()
	o := testOptions()
	h := openT(t, root, o, defaultHooks())
	a1, b1 := crop(32, 32, 32, 1), crop(32, 32, 32, 2)
	refs := putAll(t, h.a, []Crop{a1, b1})
	time.Sleep(10 * time.Millisecond)
	putAll(t, h.a, []Crop{a1}) // a is now newer than b
	h.a.Close()
	fa, _ := os.Stat(h.a.Path(refs[0]))
	fb, _ := os.Stat(h.a.Path(refs[1]))
	if !fa.ModTime().After(fb.ModTime()) {
		t.Fatalf("duplicate Put did not refresh the mtime: a %v, b %v", fa.ModTime(), fb.ModTime())
	}
	o.MaxBytes = fa.Size()
	h2 := openT(t, root, o, defaultHooks())
	eventually(t, "budget", func() bool { return h2.a.Stats().DeletedBudget == 1 })
	checkImage(t, h2.a, refs[0], a1)
	if _, err := h2.a.Open(refs[1]); !errors.Is(err, ErrNotFound) {
		t.Fatalf("older file kept: %v", err)
	}
}

func TestQueueFullNeverBlocks(t *testing.T) {
	gate := make(chan struct{})
	entered := make(chan struct{}, 16)
	hk := defaultHooks()
	hk.writeTemp = func(name string, data []byte, sync bool) error {
		entered <- struct{}{}
		<-gate // the disk hangs
		return writeTempFile(name, data, sync)
	}
	o := testOptions()
	o.Queue = 2
	h := openT(t, t.TempDir(), o, hk)

	c0, c1, c2, c3 := crop(16, 16, 16, 1), crop(16, 16, 16, 2), crop(16, 16, 16, 3), crop(16, 16, 16, 4)
	r0, err := h.a.Put(c0)
	if err != nil {
		t.Fatal(err)
	}
	<-entered // the writer holds c0 in its hung write
	r1, err1 := h.a.Put(c1)
	r2, err2 := h.a.Put(c2)
	if err1 != nil || err2 != nil {
		t.Fatalf("Puts into a free queue failed: %v %v", err1, err2)
	}
	done := make(chan error, 1)
	go func() {
		for range 1000 {
			if ref, err := h.a.Put(c3); !errors.Is(err, ErrQueueFull) || ref != "" {
				done <- err
				return
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Put on a full queue: %v, want ErrQueueFull", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Put blocked on a full queue")
	}
	// Queued refs are served from memory before they reach the disk.
	checkImage(t, h.a, r1, c1)
	if st := h.a.Stats(); st.Skipped.QueueFull != 1000 || st.Queued != 3 {
		t.Fatalf("stats %+v", st)
	}
	if got := metricValue(t, h.reg, "webinspect_images_skipped_total", "queue_full"); got != 1000 {
		t.Fatalf("skipped{queue_full} = %v", got)
	}
	if n := strings.Count(h.log.String(), "queue full"); n != 1 {
		t.Fatalf("queue-full warning logged %d times, want 1 (rate-limited)", n)
	}
	close(gate)
	if err := h.a.Close(); err != nil { // drains
		t.Fatal(err)
	}
	for i, r := range []string{r0, r1, r2} {
		checkImage(t, h.a, r, []Crop{c0, c1, c2}[i])
		if _, err := os.Stat(h.a.Path(r)); err != nil {
			t.Fatalf("queued crop %d not written by Close: %v", i, err)
		}
	}
}

// PutWait waits for room in a full queue (a replay's crops are never lost
// to a slow disk), gives up with ErrQueueFull after its timeout, and
// answers at once when the archive is closed.
func TestPutWaitWaitsForRoom(t *testing.T) {
	gate := make(chan struct{})
	entered := make(chan struct{}, 16)
	hk := defaultHooks()
	hk.writeTemp = func(name string, data []byte, sync bool) error {
		entered <- struct{}{}
		<-gate // the disk is slow
		return writeTempFile(name, data, sync)
	}
	o := testOptions()
	o.Queue = 1
	h := openT(t, t.TempDir(), o, hk)
	c0, c1, c2, c3 := crop(16, 16, 16, 1), crop(16, 16, 16, 2), crop(16, 16, 16, 3), crop(16, 16, 16, 4)
	if _, err := h.a.Put(c0); err != nil {
		t.Fatal(err)
	}
	<-entered // the writer holds c0
	if _, err := h.a.Put(c1); err != nil {
		t.Fatal(err)
	}
	// Full: Put skips, a short PutWait gives up.
	if _, err := h.a.Put(c2); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("Put on a full queue: %v, want ErrQueueFull", err)
	}
	if _, err := h.a.PutWait(c2, 20*time.Millisecond); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("PutWait past its timeout: %v, want ErrQueueFull", err)
	}
	type res struct {
		ref string
		err error
	}
	got := make(chan res, 1)
	go func() {
		ref, err := h.a.PutWait(c3, time.Minute)
		got <- res{ref, err}
	}()
	close(gate) // the disk catches up: the waiting crop goes in
	r := <-got
	if r.err != nil {
		t.Fatalf("PutWait once the writer made room: %v", r.err)
	}
	if err := h.a.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(h.a.Path(r.ref)); err != nil {
		t.Fatalf("the crop PutWait queued was not written: %v", err)
	}
	checkImage(t, h.a, r.ref, c3)
	if got := metricValue(t, h.reg, "webinspect_images_skipped_total", "queue_full"); got != 2 {
		t.Errorf("skipped{queue_full} = %v, want 2 (the Put and the PutWait that gave up)", got)
	}
	if _, err := h.a.PutWait(c2, time.Minute); !errors.Is(err, ErrClosed) {
		t.Errorf("PutWait after Close: %v, want ErrClosed at once", err)
	}
}

// TestConcurrentPut exercises Put, Open, Stats and the sweeper together
// (for -race).
func TestConcurrentPut(t *testing.T) {
	o := testOptions()
	o.MaxBytes = 20 << 10
	o.Queue = 8
	h := openT(t, t.TempDir(), o, defaultHooks())
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 60 {
				c := crop(24, 24, 24, uint64(g*1000+i%20))
				ref, err := h.a.Put(c)
				if err != nil {
					if !errors.Is(err, ErrQueueFull) {
						t.Error(err)
					}
					continue
				}
				if rc, err := h.a.Open(ref); err == nil {
					rc.Close()
				} else if !errors.Is(err, ErrNotFound) {
					t.Error(err)
				}
				_ = h.a.Stats()
			}
		}()
	}
	wg.Wait()
	h.a.Close()
	st := h.a.Stats()
	// The sweeper stops at Close, so the last queue's worth may be over.
	if st.Queued != 0 || st.Bytes > o.MaxBytes+int64(o.Queue+1)*4<<10 {
		t.Fatalf("stats after close %+v", st)
	}
	var sum int64
	for _, f := range listFiles(t, h.a.root) {
		fi, _ := os.Stat(filepath.Join(h.a.root, f))
		sum += fi.Size()
	}
	if sum != st.Bytes {
		t.Fatalf("index says %d bytes, disk has %d", st.Bytes, sum)
	}
}

// metricValue returns the value of the named counter or gauge (with the
// given reason label, if not empty).
func metricValue(t *testing.T, reg *prometheus.Registry, name, reason string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			match := reason == ""
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" && l.GetValue() == reason {
					match = true
				}
			}
			if !match {
				continue
			}
			if m.Counter != nil {
				return m.Counter.GetValue()
			}
			return m.Gauge.GetValue()
		}
	}
	t.Fatalf("metric %s{reason=%q} not found", name, reason)
	return 0
}

package sim

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/webinspect/webinspect/acquisition"
)

// smallConfig is a fast configuration: a 300 mm web, two cameras.
func smallConfig() Config {
	c := DefaultConfig()
	c.WidthMM = 300
	c.LengthM = 0.5
	c.LearnM = 0.05
	c.Defects = 4
	c.Start = time.Unix(1700000000, 0)
	return c
}

// drain reads every block of one stream and returns a digest of pixels,
// counts, first lines and times, plus the number of lines.
func drain(t testing.TB, st acquisition.Stream, linesPerBlock int) ([32]byte, int) {
	t.Helper()
	h := sha256.New()
	b := acquisition.NewBlock(linesPerBlock, st.Camera().Width)
	total := 0
	for {
		err := st.ReadBlock(context.Background(), b)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(h, "%d %d %d %d|", b.Camera, b.FirstLine, b.Lines, b.Time.UnixNano())
		for i := 0; i < b.Lines; i++ {
			h.Write(b.Line(i))
			fmt.Fprintf(h, "%d,", b.Counts[i])
		}
		total += b.Lines
	}
	var d [32]byte
	copy(d[:], h.Sum(nil))
	return d, total
}

func digestAll(t *testing.T, cfg Config) [][32]byte {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var out [][32]byte
	for _, st := range s.Streams() {
		d, _ := drain(t, st, cfg.LinesPerBlock)
		out = append(out, d)
	}
	return out
}

func TestDeterminism(t *testing.T) {
	t.Parallel()
	for _, m := range []string{Fabric, Leather, Film} {
		t.Run("material="+m, func(t *testing.T) {
			cfg := smallConfig()
			cfg.Material = m
			cfg.LengthM = 0.2
			a := digestAll(t, cfg)
			b := digestAll(t, cfg)
			for i := range a {
				if a[i] != b[i] {
					t.Fatalf("camera %d: same seed gave different output", i)
				}
			}
			cfg.Seed = 2
			c := digestAll(t, cfg)
			for i := range a {
				if a[i] == c[i] {
					t.Fatalf("camera %d: seeds 1 and 2 gave identical output", i)
				}
			}
		})
	}
}

func TestConcurrentStreamsMatchSequential(t *testing.T) {
	cfg := smallConfig()
	cfg.Cameras = 3
	cfg.LengthM = 0.3
	seq := digestAll(t, cfg)
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	par := make([][32]byte, cfg.Cameras)
	var wg sync.WaitGroup
	for i, st := range s.Streams() {
		wg.Go(func() { par[i], _ = drain(t, st, cfg.LinesPerBlock) })
	}
	wg.Wait()
	for i := range seq {
		if seq[i] != par[i] {
			t.Fatalf("camera %d: concurrent read differs from sequential", i)
		}
	}
}

func TestCameraGeometry(t *testing.T) {
	for _, c := range []struct {
		width, overlap, pixel float64
		n                     int
	}{{2000, 16, 0.25, 2}, {1000, 10, 0.3, 3}, {500, 0, 0.25, 1}, {1234.5, 7, 0.1, 4}} {
		cfg := DefaultConfig()
		cfg.WidthMM, cfg.OverlapMM, cfg.PixelMM, cfg.Cameras = c.width, c.overlap, c.pixel, c.n
		s, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		cams := s.Info().Cameras
		if len(cams) != c.n {
			t.Fatalf("%+v: %d cameras", c, len(cams))
		}
		if cams[0].OffsetMM != 0 {
			t.Errorf("%+v: camera 0 offset %v", c, cams[0].OffsetMM)
		}
		last := cams[c.n-1]
		if end := last.OffsetMM + float64(last.Width)*last.PixelMM; end < c.width-1e-9 || end > c.width+c.pixel {
			t.Errorf("%+v: last camera ends at %v", c, end)
		}
		for i := 1; i < c.n; i++ {
			prevEnd := cams[i-1].OffsetMM + float64(cams[i-1].Width)*c.pixel
			if ov := prevEnd - cams[i].OffsetMM; ov < c.overlap-1e-9 || ov > c.overlap+c.pixel {
				t.Errorf("%+v: overlap %d/%d = %v mm", c, i-1, i, ov)
			}
		}
		for _, cam := range cams {
			for x := range cam.Width {
				if cam.White[x] <= cam.Dark[x] {
					t.Fatalf("camera %d px %d: white %d <= dark %d", cam.Index, x, cam.White[x], cam.Dark[x])
				}
			}
		}
		if got, want := s.Info().MMPerCount, cfg.LineMM/float64(cfg.CountsPerLine); got != want {
			t.Errorf("MMPerCount %v, want %v", got, want)
		}
	}
	if w := DefaultConfig().cameraWidth(); w != 4032 {
		t.Errorf("default camera width %d, want 4032", w)
	}
}

// TestOverlapSeesSameWeb checks that the content is a function of web
// position: where two cameras overlap on the same pixel grid they see the
// same true grey values, defects included.
func TestOverlapSeesSameWeb(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("-short: renders metres of web")
	}
	for _, m := range []string{Fabric, Leather, Film} {
		cfg := DefaultConfig()
		cfg.Material = m
		cfg.LengthM = 30
		cfg.Defects = 40
		s, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		a, b := s.streams[0], s.streams[1]
		shift := int(math.Round(b.cam.OffsetMM / cfg.PixelMM)) // 3968
		ov := a.cam.Width - shift                              // 64
		va, vb := make([]int32, a.cam.Width), make([]int32, b.cam.Width)
		var lines []int64
		for y := int64(0); y < 4000; y += 13 {
			lines = append(lines, y)
		}
		straddling := 0
		for _, d := range s.defects {
			if d.cdLo < b.cam.OffsetMM+float64(ov)*cfg.PixelMM && d.cdHi > b.cam.OffsetMM {
				straddling++
				for y := int64(d.mdLo / cfg.LineMM); y <= int64(d.mdHi/cfg.LineMM); y++ {
					lines = append(lines, y)
				}
			}
		}
		if straddling == 0 {
			t.Fatalf("%s: no defect straddles the overlap", m)
		}
		for _, y := range lines {
			trueLine(a, y, va)
			trueLine(b, y, vb)
			for j := range ov {
				if va[shift+j] != vb[j] {
					t.Fatalf("%s line %d: camera 0 px %d = %d, camera 1 px %d = %d", m, y, shift+j, va[shift+j], j, vb[j])
				}
			}
		}
	}
}

func TestBlocksAndEOF(t *testing.T) {
	cfg := smallConfig()
	cfg.LengthM = 0.25 // 1000 lines
	cfg.LinesPerBlock = 256
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	st := s.Streams()[1]
	b := acquisition.NewBlock(256, st.Camera().Width)
	var sizes []int
	var next int64
	var lastTime time.Time
	for {
		err := st.ReadBlock(context.Background(), b)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if b.FirstLine != next {
			t.Fatalf("FirstLine %d, want %d", b.FirstLine, next)
		}
		if b.Camera != 1 || b.Width != st.Camera().Width {
			t.Fatalf("block camera %d width %d", b.Camera, b.Width)
		}
		for i := 0; i < b.Lines; i++ {
			if want := 4 * (next + int64(i)); b.Counts[i] != want {
				t.Fatalf("line %d count %d, want %d", next+int64(i), b.Counts[i], want)
			}
		}
		// 100 m/min = 6666.7 lines/s.
		wantT := cfg.Start.Add(time.Duration(float64(b.FirstLine) / (100000.0 / 60 / 0.25) * 1e9))
		if d := b.Time.Sub(wantT); d < -time.Microsecond || d > time.Microsecond {
			t.Fatalf("block %d time %v, want %v", b.FirstLine, b.Time, wantT)
		}
		if !b.Time.After(lastTime) {
			t.Fatal("block times not increasing")
		}
		lastTime = b.Time
		sizes = append(sizes, b.Lines)
		next += int64(b.Lines)
	}
	if fmt.Sprint(sizes) != "[256 256 256 232]" {
		t.Fatalf("block sizes %v, want [256 256 256 232]", sizes)
	}
	if err := st.ReadBlock(context.Background(), b); !errors.Is(err, io.EOF) {
		t.Fatalf("read after EOF: %v", err)
	}
	small := acquisition.NewBlock(100, st.Camera().Width)
	s2, _ := New(cfg)
	if err := s2.Streams()[0].ReadBlock(context.Background(), small); !errors.Is(err, acquisition.ErrBlockTooSmall) {
		t.Fatalf("small block: %v, want ErrBlockTooSmall", err)
	}
	s2.Close()
	if err := s2.Streams()[0].ReadBlock(context.Background(), b); !errors.Is(err, ErrClosed) {
		t.Fatalf("read after Close: %v, want ErrClosed", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s3, _ := New(cfg)
	if err := s3.Streams()[0].ReadBlock(ctx, b); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled read: %v", err)
	}
}

// trueLine renders the noise-free grey values of line y for a camera.
func trueLine(st *stream, y int64, v []int32) {
	st.tex.line(y, v)
	st.renderDefects(y, v)
}

func TestFlatFieldRoundTrip(t *testing.T) {
	t.Parallel()
	for _, m := range []string{Fabric, Leather, Film} {
		t.Run("material="+m, func(t *testing.T) {
			cfg := smallConfig()
			cfg.Material = m
			cfg.LengthM = 2
			cfg.Defects = 10
			s, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			for _, st := range s.streams {
				cam := st.cam
				v := make([]int32, cam.Width)
				raw := make([]uint8, cam.Width)
				var sum, sum2, n float64
				for y := int64(0); y < 8000; y += 7 {
					trueLine(st, y, v)
					st.expose(y, v, raw)
					for x := range raw {
						g := float64(cam.White[x]-cam.Dark[x]) / 255
						corr := (float64(raw[x]) - float64(cam.Dark[x])) / g
						e := corr - float64(v[x])
						if math.Abs(e) > 3.2*cfg.Noise/g+1 {
							t.Fatalf("camera %d line %d px %d: corrected %.1f, true %d", cam.Index, y, x, corr, v[x])
						}
						sum += e
						sum2 += e * e
						n++
					}
				}
				mean := sum / n
				sd := math.Sqrt(sum2/n - mean*mean)
				if math.Abs(mean) > 0.3 {
					t.Errorf("camera %d: mean flat-field error %.3f", cam.Index, mean)
				}
				// The noise is amplified by 1/g (0.65..0.97).
				if sd < cfg.Noise || sd > cfg.Noise/0.6 {
					t.Errorf("camera %d: flat-field error sd %.2f, want within [%.2f, %.2f]", cam.Index, sd, cfg.Noise, cfg.Noise/0.6)
				}
			}
		})
	}
}

// TestTextureQuiet runs the engine's per-column background model (EWMA mean
// and variance over MD, flag |v-mean| > max(4.5 sigma, 18)) over defect-free
// material and requires no flag at all, and bounds each column's texture
// deviation from its running mean.
func TestTextureQuiet(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("-short: renders metres of web")
	}
	const (
		kSigma   = 4.5
		minDelta = 18.0
		alpha    = 1.0 / 512
		learn    = 256
		lines    = 8000 // 2 m
		step     = 4    // every fourth column
	)
	for _, m := range []string{Fabric, Leather, Film} {
		t.Run("material="+m, func(t *testing.T) {
			cfg := smallConfig()
			cfg.Material = m
			cfg.WidthMM = 600
			cfg.Defects = 0
			// SIMSEED=n explores other seeds by hand.
			if sd := os.Getenv("SIMSEED"); sd != "" {
				cfg.Seed, _ = strconv.ParseInt(sd, 10, 64)
			}
			s, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			for _, st := range s.streams {
				cam := st.cam
				w := cam.Width
				v := make([]int32, w)
				raw := make([]uint8, w)
				mean := make([]float64, w)
				vari := make([]float64, w)
				tmean := make([]float64, w) // noise-free texture running mean
				tvar := make([]float64, w)
				flags, worstDev, worstSD := 0, 0.0, 0.0
				for y := range int64(lines) {
					st.tex.line(y, v)
					st.expose(y, v, raw)
					for x := 0; x < w; x += step {
						g := float64(cam.White[x]-cam.Dark[x]) / 255
						c := max(0, min(255, (float64(raw[x])-float64(cam.Dark[x]))/g))
						tv := float64(v[x])
						if y == 0 {
							mean[x], vari[x] = c, minDelta*minDelta/4
							tmean[x] = tv
							continue
						}
						a := alpha
						if y < learn {
							a = 4 * alpha
						} else {
							d := math.Abs(c - mean[x])
							if d > max(kSigma*math.Sqrt(vari[x]), minDelta) {
								flags++
								t.Logf("flag y=%d x=%d c=%.1f mean=%.1f sd=%.2f tv=%.0f tmean=%.1f g=%.2f", y, x, c, mean[x], math.Sqrt(vari[x]), tv, tmean[x], g)
								continue
							}
						}
						d := c - mean[x]
						mean[x] += a * d
						vari[x] = (1 - a) * (vari[x] + a*d*d)
						td := tv - tmean[x]
						if y > 2000 {
							worstDev = max(worstDev, math.Abs(td))
							worstSD = max(worstSD, math.Sqrt(tvar[x]))
						}
						tmean[x] += alpha * td
						tvar[x] = (1 - alpha) * (tvar[x] + alpha*td*td)
					}
				}
				t.Logf("camera %d: flags %d, worst texture deviation %.1f, worst texture sigma %.2f", cam.Index, flags, worstDev, worstSD)
				if flags != 0 {
					t.Errorf("camera %d: %d pixels of good %s flagged", cam.Index, flags, m)
				}
				if worstDev > 12.5 {
					t.Errorf("camera %d: texture deviates %.1f grey levels from its running mean, want <= 12.5", cam.Index, worstDev)
				}
				if worstSD > 6 {
					t.Errorf("camera %d: texture sigma %.2f, want <= 6", cam.Index, worstSD)
				}
			}
		})
	}
}

func TestTruthPlacement(t *testing.T) {
	t.Parallel()
	for _, m := range []string{Fabric, Leather, Film} {
		for seed := int64(1); seed <= 4; seed++ {
			t.Run(fmt.Sprintf("material=%s/seed=%d", m, seed), func(t *testing.T) {
				testTruthPlacement(t, m, seed)
			})
		}
	}
}

func testTruthPlacement(t *testing.T, m string, seed int64) {
	cfg := DefaultConfig()
	cfg.Material = m
	cfg.Seed = seed
	cfg.Defects = 120
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tr := s.Truth()
	if len(tr) != cfg.Defects {
		t.Fatalf("%d truths, want %d", len(tr), cfg.Defects)
	}
	small, straddle := 0, 0
	zones := overlapZones(&cfg)
	classes := map[string]int{}
	for i, d := range tr {
		if d.ID != i+1 {
			t.Fatalf("truth %d has ID %d", i, d.ID)
		}
		if i > 0 && d.MDStartM < tr[i-1].MDStartM {
			t.Fatalf("truth %d not in MD order", d.ID)
		}
		if d.MDStartM < cfg.LearnM || d.MDEndM >= cfg.LengthM || d.CDStartMM < 0 || d.CDEndMM > cfg.WidthMM {
			t.Fatalf("truth %+v outside the roll", d)
		}
		l, w := (d.MDEndM-d.MDStartM)*1000, d.CDEndMM-d.CDStartMM
		if math.Abs(d.SizeMM-max(l, w)) > 1e-9 {
			t.Fatalf("truth %d SizeMM %v, want %v", d.ID, d.SizeMM, max(l, w))
		}
		if math.Min(l, w) < minWidthMM-1e-9 {
			t.Fatalf("truth %+v narrower than %v mm", d, minWidthMM)
		}
		if d.SizeMM < detectLimitMM {
			small++
		} else if d.Contrast < contrastMin || d.Contrast > contrastMax {
			t.Fatalf("truth %+v contrast out of range", d)
		}
		switch d.Polarity {
		case Bright, Dark, Mixed:
		default:
			t.Fatalf("truth %d polarity %q", d.ID, d.Polarity)
		}
		if (d.Class == ClassCrease) != (d.Polarity == Mixed) {
			t.Fatalf("truth %d: class %s polarity %s", d.ID, d.Class, d.Polarity)
		}
		for _, z := range zones {
			if d.CDStartMM < z[1] && d.CDEndMM > z[0] {
				straddle++
			}
		}
		classes[d.Class]++
		for _, e := range tr[:i] {
			gapMD := max(e.MDStartM-d.MDEndM, d.MDStartM-e.MDEndM) * 1000
			gapCD := max(e.CDStartMM-d.CDEndMM, d.CDStartMM-e.CDEndMM)
			if gapMD < clearanceMM && gapCD < clearanceMM {
				t.Fatalf("truths %d and %d closer than %v mm (MD gap %.1f, CD gap %.1f)", e.ID, d.ID, clearanceMM, gapMD, gapCD)
			}
		}
	}
	if want := 18; small != want {
		t.Errorf("%d defects below %v mm, want %d", small, detectLimitMM, want)
	}
	if straddle < 2 {
		t.Errorf("%d defects straddle a camera overlap, want >= 2", straddle)
	}
	if len(classes) < 5 {
		t.Errorf("only classes %v", classes)
	}
	t.Logf("classes %v, straddling %d", classes, straddle)
}

// TestTruthMatchesRendering renders every defect without noise and checks
// that the pixels it changes lie inside its truth box, reach the box's
// edges, and that a fully covered pixel carries the full contrast.
func TestTruthMatchesRendering(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("-short: renders metres of web")
	}
	classes := map[string]int{}
	for _, c := range []struct {
		material string
		seed     int64
	}{{Film, 1}, {Fabric, 2}} {
		t.Run(fmt.Sprintf("material=%s/seed=%d", c.material, c.seed), func(t *testing.T) {
			testTruthMatchesRendering(t, c.material, c.seed, classes)
		})
	}
	if len(classes) != 8 {
		t.Errorf("rendered classes %v, want all 8", classes)
	}
}

func testTruthMatchesRendering(t *testing.T, material string, seed int64, classes map[string]int) {
	cfg := DefaultConfig()
	cfg.WidthMM = 1000
	cfg.LengthM = 20
	cfg.Defects = 30
	cfg.Material = material
	cfg.Seed = seed
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	lineMM, pmm := cfg.LineMM, cfg.PixelMM
	for _, d := range s.defects {
		tr := d.truth
		classes[tr.Class]++
		var mdLo, mdHi, cdLo, cdHi = math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
		peak := 0.0
		linePeak := map[int64]float64{}
		y0 := int64(math.Floor(tr.MDStartM*1000/lineMM)) - 2
		y1 := int64(math.Ceil(tr.MDEndM*1000/lineMM)) + 2
		for _, st := range s.streams {
			w := st.cam.Width
			base, v := make([]int32, w), make([]int32, w)
			for y := y0; y <= y1; y++ {
				st.tex.line(y, base)
				st.tex.line(y, v)
				st.renderDefect(&d, float64(y)*lineMM, v)
				for x := range w {
					diff := float64(v[x] - base[x])
					if diff == 0 {
						continue
					}
					if base[x]+int32(diff) <= 0 || base[x]+int32(diff) >= 255 {
						diff = math.Copysign(tr.Contrast, diff) // clipped
					}
					peak = max(peak, math.Abs(diff))
					linePeak[y] = max(linePeak[y], math.Abs(diff))
					lo := st.cam.OffsetMM + float64(x)*pmm
					mdLo, mdHi = min(mdLo, float64(y)*lineMM), max(mdHi, float64(y+1)*lineMM)
					cdLo, cdHi = min(cdLo, lo), max(cdHi, lo+pmm)
				}
			}
		}
		// Changed pixels lie within the truth box (to the pixel)...
		if mdLo < tr.MDStartM*1000-lineMM || mdHi > tr.MDEndM*1000+lineMM ||
			cdLo < tr.CDStartMM-pmm || cdHi > tr.CDEndMM+pmm {
			t.Errorf("defect %d %s: rendered MD [%.2f, %.2f] CD [%.2f, %.2f] outside truth MD [%.2f, %.2f] CD [%.2f, %.2f]",
				tr.ID, tr.Class, mdLo, mdHi, cdLo, cdHi, tr.MDStartM*1000, tr.MDEndM*1000, tr.CDStartMM, tr.CDEndMM)
		}
		// ...and reach its edges (a supersample misses at most a quarter pixel).
		if mdLo > tr.MDStartM*1000+lineMM || mdHi < tr.MDEndM*1000-lineMM ||
			cdLo > tr.CDStartMM+pmm || cdHi < tr.CDEndMM-pmm {
			t.Errorf("defect %d %s: rendered MD [%.2f, %.2f] CD [%.2f, %.2f] does not fill truth MD [%.2f, %.2f] CD [%.2f, %.2f]",
				tr.ID, tr.Class, mdLo, mdHi, cdLo, cdHi, tr.MDStartM*1000, tr.MDEndM*1000, tr.CDStartMM, tr.CDEndMM)
		}
		// Every line crossing a line-like defect away from its ends has a
		// pixel with nearly full coverage.
		switch tr.Class {
		case ClassStreak, ClassCrease, ClassScratch:
			for y := y0; y <= y1; y++ {
				if lo := float64(y) * lineMM; lo > tr.MDStartM*1000+2 && lo+lineMM < tr.MDEndM*1000-2 && linePeak[y] < 0.75*tr.Contrast-1 {
					t.Errorf("defect %d %s: line %d peak change %.1f, contrast %.1f", tr.ID, tr.Class, y, linePeak[y], tr.Contrast)
					break
				}
			}
		}
		// Defects at or above the detection limit have a pixel with almost
		// full coverage; smaller ones (down to 2 px across) at least a
		// pixel with a good part of their contrast.
		minPeak := 0.75
		if tr.SizeMM < detectLimitMM {
			minPeak = 0.4
		}
		if peak < minPeak*tr.Contrast-1 || peak > tr.Contrast+1 {
			t.Errorf("defect %d %s size %.2f: peak change %.1f, contrast %.1f", tr.ID, tr.Class, tr.SizeMM, peak, tr.Contrast)
		}
	}
}

func TestTruthCSV(t *testing.T) {
	cfg := smallConfig()
	cfg.LengthM = 20
	cfg.Defects = 12
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := WriteTruthCSV(&buf, s.Truth()); err != nil {
		t.Fatal(err)
	}
	if first, _, _ := strings.Cut(buf.String(), "\n"); first != TruthHeader {
		t.Fatalf("header %q", first)
	}
	got, err := ReadTruthCSV(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	want := s.Truth()
	if len(got) != len(want) {
		t.Fatalf("read %d truths, wrote %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.ID != w.ID || g.Class != w.Class || g.Polarity != w.Polarity ||
			math.Abs(g.MDStartM-w.MDStartM) > 1e-6 || math.Abs(g.MDEndM-w.MDEndM) > 1e-6 ||
			math.Abs(g.CDStartMM-w.CDStartMM) > 1e-3 || math.Abs(g.CDEndMM-w.CDEndMM) > 1e-3 ||
			math.Abs(g.Contrast-w.Contrast) > 0.05 || math.Abs(g.SizeMM-w.SizeMM) > 1e-3 {
			t.Fatalf("truth %d: read %+v, wrote %+v", i, g, w)
		}
	}
	for _, bad := range []string{
		"",
		"id,class\n1,hole\n",
		TruthHeader + "\n1,hole,x,0,0,0,bright,50,1\n",
		TruthHeader + "\n1,hole,0,0\n",
	} {
		if _, err := ReadTruthCSV(strings.NewReader(bad)); err == nil {
			t.Errorf("ReadTruthCSV(%q) succeeded", bad)
		}
	}
}

func TestStopAndJog(t *testing.T) {
	t.Parallel()
	cfg := smallConfig()
	cfg.Cameras = 1
	cfg.OverlapMM = 0
	cfg.WidthMM = 100
	cfg.LengthM = 0.2 // 800 lines
	cfg.SpeedMPerMin = 60
	cfg.Motion = acquisition.StopAndJog(60, 0.1, 0.05, 0.01)
	cfg.Defects = 0
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	st := s.Streams()[0]
	w := st.Camera().Width
	b := acquisition.NewBlock(cfg.LinesPerBlock, w)
	var g acquisition.Gate
	rejected, accepted, backward := 0, 0, 0
	seen := map[int64][][]uint8{}
	var prev int64 = -1
	for {
		err := st.ReadBlock(context.Background(), b)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < b.Lines; i++ {
			c := b.Counts[i]
			if c < prev {
				backward++
			}
			prev = c
			if c == 1500 {
				seen[c] = append(seen[c], append([]uint8(nil), b.Line(i)...))
			}
			if g.Accept(c) {
				accepted++
			} else {
				rejected++
			}
		}
	}
	if accepted != 800 || rejected != 80 || backward != 40 {
		t.Fatalf("accepted %d (want 800), rejected %d (want 80), backward %d (want 40)", accepted, rejected, backward)
	}
	// Count 1500 was imaged three times: same material, fresh noise.
	l := seen[1500]
	if len(l) != 3 {
		t.Fatalf("count 1500 imaged %d times, want 3", len(l))
	}
	for k := 1; k < 3; k++ {
		if bytes.Equal(l[0], l[k]) {
			t.Fatalf("re-imaged line %d has identical noise", k)
		}
		var sad float64
		for x := range l[0] {
			sad += math.Abs(float64(l[0][x]) - float64(l[k][x]))
		}
		// Difference of two noise draws: mean |N(0, 2 sigma^2)| ~ 1.13 sigma.
		if mad := sad / float64(w); mad > 1.5*cfg.Noise {
			t.Fatalf("re-imaged line %d differs by %.2f grey levels on average", k, mad)
		}
	}
}

func TestRealtimePacing(t *testing.T) {
	t.Parallel()
	run := func(cfg Config) time.Duration {
		s, err := New(cfg)
		if err != nil {
			t.Error(err)
			return 0
		}
		start := time.Now()
		var wg sync.WaitGroup
		for _, st := range s.Streams() {
			wg.Go(func() { drain(t, st, cfg.LinesPerBlock) })
		}
		wg.Wait()
		return time.Since(start)
	}
	cfg := smallConfig()
	cfg.Realtime = true
	cfg.WidthMM = 100
	cfg.LengthM = 0.5 // 0.3 s at 100 m/min
	if d := run(cfg); d < 250*time.Millisecond {
		t.Errorf("0.5 m at 100 m/min took %v, want >= 250ms", d)
	}
	// A 0.3 s stop and a jog make the run at least 0.3 s + 0.5 s longer.
	cfg.LengthM = 0.3
	cfg.Motion = acquisition.StopAndJog(100, 0.1, 0.3, 0.02)
	if d := run(cfg); d < 900*time.Millisecond {
		t.Errorf("0.3 m with a 0.3 s stop and a jog took %v, want >= 900ms", d)
	}
}

func TestValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("DefaultConfig: %v", err)
	}
	cases := []struct {
		field string
		mod   func(*Config)
	}{
		{"Material", func(c *Config) { c.Material = "paper" }},
		{"LengthM", func(c *Config) { c.LengthM = 0 }},
		{"WidthMM", func(c *Config) { c.WidthMM = -1 }},
		{"PixelMM", func(c *Config) { c.PixelMM = math.NaN() }},
		{"LineMM", func(c *Config) { c.LineMM = 100 }},
		{"CountsPerLine", func(c *Config) { c.CountsPerLine = 0 }},
		{"SpeedMPerMin", func(c *Config) { c.SpeedMPerMin = 0 }},
		{"Cameras", func(c *Config) { c.Cameras = 0 }},
		{"OverlapMM", func(c *Config) { c.OverlapMM = 1000 }},
		{"Vignetting", func(c *Config) { c.Vignetting = 1 }},
		{"GainSpread", func(c *Config) { c.GainSpread = -0.1 }},
		{"DarkLevel", func(c *Config) { c.DarkLevel = 200 }},
		{"Noise", func(c *Config) { c.Noise = 100 }},
		{"Defects", func(c *Config) { c.Defects = -1 }},
		{"LinesPerBlock", func(c *Config) { c.LinesPerBlock = 0 }},
		{"LearnM", func(c *Config) { c.LearnM = 200 }},
		{"Motion", func(c *Config) { c.Motion = []acquisition.Phase{{SpeedMPerMin: 0}} }},
		{"camera width", func(c *Config) { c.PixelMM = 0.01; c.Cameras = 1; c.OverlapMM = 0 }},
	}
	for _, c := range cases {
		cfg := DefaultConfig()
		c.mod(&cfg)
		err := cfg.Validate()
		if err == nil {
			t.Errorf("%s: Validate accepted %+v", c.field, cfg)
			continue
		}
		if !strings.Contains(err.Error(), c.field) {
			t.Errorf("%s: error %q does not name the field", c.field, err)
		}
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: New accepted an invalid config", c.field)
		}
	}
	// Too many defects for the roll.
	cfg := smallConfig()
	cfg.LengthM = 0.2
	cfg.Defects = 500
	if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), "place") {
		t.Errorf("500 defects on 0.2 m: %v", err)
	}
}

func BenchmarkGenerate(b *testing.B) {
	for _, m := range []string{Fabric, Leather, Film} {
		for _, nd := range []int{0, 200} {
			b.Run(fmt.Sprintf("material=%s/defects=%d", m, nd), func(b *testing.B) {
				cfg := DefaultConfig()
				cfg.Material = m
				cfg.Cameras = 1
				cfg.OverlapMM = 0
				cfg.WidthMM = 1008 // 4032 px
				cfg.LengthM = 100000
				cfg.LearnM = 0
				cfg.Defects = nd
				if nd > 0 {
					// 200 defects on 20 m (one per 0.1 m, ten times a
					// busy roll); the web shuttles over the first 5 m.
					cfg.LengthM = 20
					for range 1000 {
						cfg.Motion = append(cfg.Motion,
							acquisition.Phase{Seconds: 3, SpeedMPerMin: 100},
							acquisition.Phase{Seconds: 3, SpeedMPerMin: -100})
					}
					cfg.Motion = append(cfg.Motion, acquisition.Phase{SpeedMPerMin: 100})
				}
				s, err := New(cfg)
				if err != nil {
					b.Fatal(err)
				}
				st := s.Streams()[0]
				blk := acquisition.NewBlock(cfg.LinesPerBlock, st.Camera().Width)
				px := cfg.LinesPerBlock * st.Camera().Width
				b.SetBytes(int64(px))
				b.ReportAllocs()
				b.ResetTimer()
				for b.Loop() {
					if err := st.ReadBlock(context.Background(), blk); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(px)*float64(b.N)/b.Elapsed().Seconds()/1e6, "Mpx/s")
			})
		}
	}
}

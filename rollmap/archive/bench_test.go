package archive

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"image"
	"image/png"
	"io"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/webinspect/webinspect/internal/poll"
)

var benchLevels = []struct {
	name  string
	level png.CompressionLevel
}{{"speed", png.BestSpeed}, {"default", png.DefaultCompression}}

// BenchmarkPut is the sustained rate of Put with the writer writing every
// crop (distinct crops of web texture, so nothing deduplicates; default
// options, so BestSpeed): when the queue is full the loop yields until it
// has room, so the slower of encoding and file writing sets the rate.
// fs=disk writes under the test temp dir, fs=shm under /dev/shm (memory),
// which separates the cost of the filesystem.
func BenchmarkPut(b *testing.B) {
	for _, sz := range []int{64, 256} {
		for _, fsys := range []string{"disk", "shm"} {
			b.Run(fmt.Sprintf("size=%dx%d/fs=%s", sz, sz, fsys), func(b *testing.B) {
				root := b.TempDir()
				if fsys == "shm" {
					d, err := os.MkdirTemp("/dev/shm", "archive-bench-")
					if err != nil {
						b.Skipf("no /dev/shm: %v", err)
					}
					defer os.RemoveAll(d)
					root = d
				}
				o := DefaultOptions()
				o.MinFreeBytes = 0
				a, err := Open(root, o, zerolog.Nop(), nil)
				if err != nil {
					b.Fatal(err)
				}
				defer a.Close()
				c := crop(sz, sz, sz, 1)
				checkPut(b, a, c)
				b.SetBytes(int64(sz * sz))
				b.ReportAllocs()
				n := 0
				for b.Loop() {
					n++
					c.Pix[0], c.Pix[1], c.Pix[2] = byte(n), byte(n>>8), byte(n>>16)
					for {
						_, err = a.Put(c)
						if !errors.Is(err, ErrQueueFull) {
							break
						}
						runtime.Gosched()
					}
					if err != nil {
						b.Fatal(err)
					}
				}
				a.Close() // the writes belong to the measurement
				st := a.Stats()
				b.ReportMetric(float64(n*sz*sz)/b.Elapsed().Seconds()/1e6, "Mpx/s")
				b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "files/s")
				b.ReportMetric(float64(st.Bytes)/float64(st.Files)/float64(sz*sz), "B/px")
			})
		}
	}
}

// BenchmarkEncode is what Put costs its caller when the queue has room:
// PNG encoding plus SHA-256. enc=imagepng is the standard library's encoder
// (adaptive row filters) on the same crop, for comparison.
func BenchmarkEncode(b *testing.B) {
	for _, content := range []string{"texture", "noise"} {
		for _, sz := range []int{64, 256} {
			for _, lv := range benchLevels {
				for _, enc := range []string{"archive", "imagepng"} {
					name := fmt.Sprintf("content=%s/size=%dx%d/level=%s/enc=%s", content, sz, sz, lv.name, enc)
					b.Run(name, func(b *testing.B) {
						c := crop(sz, sz, sz, 1)
						if content == "noise" {
							c = noiseCrop(sz, sz, 1)
						}
						a := &Archive{opts: Options{Compression: lv.level}}
						a.scratch.New = func() any { return new(encodeScratch) }
						std := png.Encoder{CompressionLevel: lv.level, BufferPool: &stdPool{}}
						img := &image.Gray{Pix: c.Pix, Stride: c.Stride, Rect: image.Rect(0, 0, c.W, c.H)}
						var buf bytes.Buffer
						encode := func() []byte {
							if enc == "archive" {
								data, err := a.encode(c)
								if err != nil {
									b.Fatal(err)
								}
								return data
							}
							buf.Reset()
							if err := std.Encode(&buf, img); err != nil {
								b.Fatal(err)
							}
							return buf.Bytes()
						}
						checkDecodes(b, encode(), c)
						b.SetBytes(int64(sz * sz))
						b.ReportAllocs()
						var size int
						for b.Loop() {
							data := encode()
							_ = sha256.Sum256(data)
							size = len(data)
						}
						b.ReportMetric(float64(b.N*sz*sz)/b.Elapsed().Seconds()/1e6, "Mpx/s")
						b.ReportMetric(float64(size)/float64(sz*sz), "B/px")
					})
				}
			}
		}
	}
}

type stdPool struct{ b *png.EncoderBuffer }

func (p *stdPool) Get() *png.EncoderBuffer  { return p.b }
func (p *stdPool) Put(b *png.EncoderBuffer) { p.b = b }

// checkPut checks the output once before timing.
func checkPut(b *testing.B, a *Archive, c Crop) {
	ref, err := a.Put(c)
	if err != nil {
		b.Fatal(err)
	}
	poll.Until(b, time.Minute, "the crop written", func() bool { return a.Stats().Queued == 0 })
	rc, err := a.Open(ref)
	if err != nil {
		b.Fatal(err)
	}
	data, _ := io.ReadAll(rc)
	rc.Close()
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil || img.Bounds().Dx() != c.W || img.Bounds().Dy() != c.H {
		b.Fatalf("archived image wrong: %v", err)
	}
}

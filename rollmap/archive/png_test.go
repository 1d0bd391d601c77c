package archive

import (
	"bytes"
	"image"
	"image/png"
	"math/rand/v2"
	"testing"
)

// checkDecodes decodes data with image/png and compares it with c.
func checkDecodes(t testing.TB, data []byte, c Crop) {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("%d×%d stride %d: image/png cannot decode: %v", c.W, c.H, c.Stride, err)
	}
	g, ok := img.(*image.Gray)
	if !ok || g.Rect != image.Rect(0, 0, c.W, c.H) {
		t.Fatalf("%d×%d: decoded %T %v", c.W, c.H, img, img.Bounds())
	}
	for y := 0; y < c.H; y++ {
		if !bytes.Equal(g.Pix[y*g.Stride:y*g.Stride+c.W], c.Pix[y*c.Stride:y*c.Stride+c.W]) {
			t.Fatalf("%d×%d stride %d: row %d differs", c.W, c.H, c.Stride, y)
		}
	}
}

// TestGrayPNGCrossCheck: our encoder's files decode with image/png to the
// crop, for many shapes, strides and every level, reusing one encoder.
func TestGrayPNGCrossCheck(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var e grayPNG
	var buf bytes.Buffer
	levels := []png.CompressionLevel{png.BestSpeed, png.DefaultCompression, png.BestCompression, png.NoCompression}
	for i := range 200 {
		w, h := 1+r.IntN(130), 1+r.IntN(70)
		stride := w + r.IntN(9)
		c := Crop{W: w, H: h, Stride: stride, Pix: make([]uint8, (h-1)*stride+w)}
		for j := range c.Pix {
			if i%2 == 0 {
				c.Pix[j] = uint8(r.Uint32())
			} else {
				c.Pix[j] = uint8(100 + r.IntN(5))
			}
		}
		buf.Reset()
		if err := e.encode(&buf, c, levels[i%len(levels)]); err != nil {
			t.Fatal(err)
		}
		checkDecodes(t, buf.Bytes(), c)
	}
}

func FuzzGrayPNG(f *testing.F) {
	f.Add(uint8(3), uint8(2), uint8(1), []byte{1, 2, 3, 4, 5, 6, 7, 8, 9})
	f.Add(uint8(1), uint8(1), uint8(0), []byte{0})
	f.Fuzz(func(t *testing.T, w, h, pad uint8, pix []byte) {
		c := Crop{W: int(w%64) + 1, H: int(h%64) + 1}
		c.Stride = c.W + int(pad%4)
		if c.validate() != nil {
			c.Pix = append(pix, make([]byte, (c.H-1)*c.Stride+c.W)...)
		}
		var e grayPNG
		var buf bytes.Buffer
		if err := e.encode(&buf, c, png.BestSpeed); err != nil {
			t.Fatal(err)
		}
		checkDecodes(t, buf.Bytes(), c)
	})
}

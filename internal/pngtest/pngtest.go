// Package pngtest writes the small 8-bit grey PNG frames that tests of
// data sets, teaching and the frames source build their fixtures from (the
// real data sets are never copied into the repository).
package pngtest

import (
	"image"
	"image/png"
	"os"
	"path/filepath"
	"testing"
)

// Write writes a w×h grey PNG at path (creating its folder) whose pixels
// are pix, row-major.
func Write(t testing.TB, path string, w, h int, pix []uint8) {
	t.Helper()
	if len(pix) != w*h {
		t.Fatalf("pngtest: %d pixels for %d×%d", len(pix), w, h)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	g := image.NewGray(image.Rect(0, 0, w, h))
	copy(g.Pix, pix)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := png.Encode(f, g); err != nil {
		f.Close()
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// WriteFunc writes a w×h grey PNG at path whose pixel (x, y) is fn(x, y).
func WriteFunc(t testing.TB, path string, w, h int, fn func(x, y int) uint8) {
	t.Helper()
	pix := make([]uint8, w*h)
	for y := range h {
		for x := range w {
			pix[y*w+x] = fn(x, y)
		}
	}
	Write(t, path, w, h, pix)
}

package u3v

import (
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"testing"
)

// pack encodes pixels of the given significant bits in pf, bit by bit from
// the PFNC and GigE Vision definitions (a reference independent of to8).
func pack(pf uint32, px []uint16) []byte {
	var out []byte
	switch pf {
	case pfMono8:
		for _, v := range px {
			out = append(out, uint8(v))
		}
	case pfMono10, pfMono12, pfMono16:
		for _, v := range px {
			out = binary.LittleEndian.AppendUint16(out, v)
		}
	case pfMono10Packed, pfMono12Packed:
		lo := map[uint32]uint{pfMono10Packed: 2, pfMono12Packed: 4}[pf]
		for i := 0; i < len(px); i += 2 {
			a, b := px[i], px[i+1]
			mask := uint16(1)<<lo - 1
			mid := uint8(a&mask) | uint8(b&mask)<<4
			out = append(out, uint8(a>>lo), mid, uint8(b>>lo))
		}
	case pfMono10p, pfMono12p:
		bits := map[uint32]int{pfMono10p: 10, pfMono12p: 12}[pf]
		var acc uint64
		n := 0
		for _, v := range px {
			acc |= uint64(v) << n
			n += bits
			for n >= 8 {
				out = append(out, uint8(acc))
				acc >>= 8
				n -= 8
			}
		}
	}
	return out
}

func TestTo8(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for pf, bits := range map[uint32]int{pfMono8: 8, pfMono10: 10, pfMono10Packed: 10, pfMono10p: 10,
		pfMono12: 12, pfMono12Packed: 12, pfMono12p: 12, pfMono16: 16} {
		const width = 64
		px := make([]uint16, width)
		for i := range px {
			px[i] = uint16(rng.IntN(1 << bits))
		}
		src := pack(pf, px)
		if n, err := lineBytes(pf, width); err != nil || n != len(src) {
			t.Fatalf("%s: lineBytes %d, %v; packed %d", PixelFormatName(pf), n, err, len(src))
		}
		dst := make([]uint8, width)
		to8(dst, src, pf)
		for i, v := range px {
			if want := uint8(v >> (bits - 8)); dst[i] != want {
				t.Fatalf("%s: pixel %d = %d, want %d (from %d)", PixelFormatName(pf), i, dst[i], want, v)
			}
		}
	}
}

func TestLineBytesRefuses(t *testing.T) {
	if _, err := lineBytes(0x02180014, 64); !errors.Is(err, ErrUnsupported) { // RGB8
		t.Fatalf("RGB8: %v", err)
	}
	if _, err := lineBytes(pfMono10p, 6); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("Mono10p of 6 pixels: %v", err)
	}
	// Garbage above the significant bits of an unpacked format saturates.
	dst := make([]uint8, 1)
	to8(dst, []byte{0xFF, 0xFF}, pfMono10)
	if dst[0] != 255 {
		t.Fatalf("saturation: %d", dst[0])
	}
}

func BenchmarkTo8(b *testing.B) {
	const width = 4096
	for _, pf := range []uint32{pfMono8, pfMono12p, pfMono16} {
		src := pack(pf, make([]uint16, width))
		dst := make([]uint8, width)
		b.Run("format="+PixelFormatName(pf), func(b *testing.B) {
			b.SetBytes(int64(len(src)))
			b.ReportAllocs()
			for b.Loop() {
				to8(dst, src, pf)
			}
			b.ReportMetric(float64(width)*float64(b.N)/b.Elapsed().Seconds(), "px/s")
		})
	}
}

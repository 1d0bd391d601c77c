// Package pfnc converts the monochrome pixel formats of the GenICam Pixel
// Format Naming Convention that line-scan cameras send (Mono8, Mono10/12/16,
// packed or not) to the engine's 8 bits, and back for emulated devices.
// Both transports (GigE Vision, USB3 Vision) use it: the formats are the
// camera's, not the wire's.
package pfnc

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Errors returned by the converters.
var (
	// ErrUnsupported: the format is not a monochrome one this package
	// converts.
	ErrUnsupported = errors.New("pfnc: unsupported pixel format")
	// ErrShort: the source or destination is too small for the pixels.
	ErrShort = errors.New("pfnc: buffer too short")
)

// PixelFormat is a PFNC / GigE Vision pixel format code.
type PixelFormat uint32

// Monochrome pixel formats.
const (
	Mono8        PixelFormat = 0x01080001
	Mono10       PixelFormat = 0x01100003 // 16-bit little-endian container
	Mono10Packed PixelFormat = 0x010c0004 // GigE Vision: 2 pixels in 3 bytes
	Mono12       PixelFormat = 0x01100005
	Mono12Packed PixelFormat = 0x010c0006 // GigE Vision: 2 pixels in 3 bytes
	Mono16       PixelFormat = 0x01100007
	Mono10p      PixelFormat = 0x010a0046 // PFNC: LSB-first bit stream
	Mono12p      PixelFormat = 0x010c0047
)

var pixelNames = map[PixelFormat]string{
	Mono8: "Mono8", Mono10: "Mono10", Mono10Packed: "Mono10Packed", Mono12: "Mono12",
	Mono12Packed: "Mono12Packed", Mono16: "Mono16", Mono10p: "Mono10p", Mono12p: "Mono12p",
}

// String returns the SFNC name of f.
func (f PixelFormat) String() string {
	if n, ok := pixelNames[f]; ok {
		return n
	}
	return fmt.Sprintf("PixelFormat(0x%08x)", uint32(f))
}

// ParsePixelFormat returns the code of an SFNC monochrome format name.
func ParsePixelFormat(name string) (PixelFormat, bool) {
	for f, n := range pixelNames {
		if n == name {
			return f, true
		}
	}
	return 0, false
}

// Bits returns the bits each pixel occupies on the wire.
func (f PixelFormat) Bits() int { return int(f>>16) & 0xff }

// Depth returns the significant bits of a monochrome format (8, 10, 12 or
// 16), or 0 if f is not one Mono8To8 converts.
func (f PixelFormat) Depth() int {
	switch f {
	case Mono8:
		return 8
	case Mono10, Mono10Packed, Mono10p:
		return 10
	case Mono12, Mono12Packed, Mono12p:
		return 12
	case Mono16:
		return 16
	}
	return 0
}

// LineBytes returns the bytes a line of width pixels takes in format f
// (packed formats round up to whole bytes).
func (f PixelFormat) LineBytes(width int) int { return (width*f.Bits() + 7) / 8 }

// ToMono8 converts one line of width pixels in format f from src to 8 bits
// in dst (the most significant bits). It returns ErrUnsupported for a format
// it does not know and ErrShort if src or dst is too small. Packed formats
// are converted per line, so a line must start on a byte boundary.
func ToMono8(dst, src []byte, width int, f PixelFormat) error {
	if len(dst) < width {
		return fmt.Errorf("%w: %d-byte destination for %d pixels", ErrShort, len(dst), width)
	}
	if f.Depth() == 0 {
		return fmt.Errorf("%w: pixel format %v is not monochrome", ErrUnsupported, f)
	}
	if len(src) < f.LineBytes(width) {
		return fmt.Errorf("%w: %d source bytes for %d pixels of %v", ErrShort, len(src), width, f)
	}
	dst = dst[:width]
	switch f {
	case Mono8:
		copy(dst, src)
	case Mono16:
		src = src[:2*width]
		for i := range dst {
			dst[i] = src[2*i+1] // the high byte of a little-endian u16
		}
	case Mono10, Mono12:
		shift := uint(f.Depth() - 8)
		for i := range dst {
			// bits above the significant ones (a malformed sample) saturate
			dst[i] = uint8(min(binary.LittleEndian.Uint16(src[2*i:])>>shift, 255))
		}
	case Mono12p, Mono12Packed:
		unpack12(dst, src, f == Mono12Packed)
	case Mono10p:
		unpack10p(dst, src)
	case Mono10Packed:
		unpack10Packed(dst, src)
	}
	return nil
}

// unpack12 takes the top 8 of 12 bits. Mono12p: b0 = p0[7:0], b1 =
// p0[11:8] | p1[3:0]<<4, b2 = p1[11:4]. Mono12Packed: b0 = p0[11:4], b1 =
// p0[3:0] | p1[3:0]<<4, b2 = p1[11:4].
func unpack12(dst, src []byte, gev bool) {
	n := len(dst)
	for i := 0; i+1 < n; i += 2 {
		b := src[3*i/2 : 3*i/2+3]
		if gev {
			dst[i] = b[0]
		} else {
			dst[i] = b[1]<<4 | b[0]>>4
		}
		dst[i+1] = b[2]
	}
	if n%2 == 1 {
		b := src[3*(n-1)/2:]
		if gev {
			dst[n-1] = b[0]
		} else {
			dst[n-1] = b[1]<<4 | b[0]>>4
		}
	}
}

// unpack10p reads an LSB-first stream of 10-bit pixels: 4 pixels in 5
// bytes, b0 = p0[7:0], b1 = p0[9:8] | p1[5:0]<<2, b2 = p1[9:6] |
// p2[3:0]<<4, b3 = p2[9:4] | p3[1:0]<<6, b4 = p3[9:2].
func unpack10p(dst, src []byte) {
	for i := range dst {
		bit := 10 * i
		k := bit >> 3
		var v uint16
		if k+1 < len(src) {
			v = binary.LittleEndian.Uint16(src[k:])
		} else {
			v = uint16(src[k])
		}
		dst[i] = uint8((v >> uint(bit&7)) >> 2)
	}
}

// unpack10Packed: 2 pixels in 3 bytes, b0 = p0[9:2], b1 = p0[1:0] |
// p1[1:0]<<4, b2 = p1[9:2].
func unpack10Packed(dst, src []byte) {
	for i := range dst {
		j := 3 * (i / 2)
		if i%2 == 0 {
			dst[i] = src[j]
		} else {
			dst[i] = src[j+2]
		}
	}
}

// FromMono16 encodes one line of 16-bit samples (values < 1<<Depth) in
// format f: the inverse of ToMono8 up to its dropped bits. Devices and
// tests use it to produce every format from one source.
func FromMono16(dst []byte, src []uint16, f PixelFormat) ([]byte, error) {
	switch f {
	case Mono8:
		for _, v := range src {
			dst = append(dst, uint8(v))
		}
	case Mono10, Mono12, Mono16:
		for _, v := range src {
			dst = binary.LittleEndian.AppendUint16(dst, v)
		}
	case Mono12p, Mono12Packed, Mono10Packed:
		dst = pack3(dst, src, f)
	case Mono10p:
		var acc uint32
		nb := uint(0)
		for _, v := range src {
			acc |= uint32(v&0x3ff) << nb
			nb += 10
			for nb >= 8 {
				dst = append(dst, uint8(acc))
				acc >>= 8
				nb -= 8
			}
		}
		if nb > 0 {
			dst = append(dst, uint8(acc))
		}
	default:
		return dst, fmt.Errorf("%w: pixel format %v is not monochrome", ErrUnsupported, f)
	}
	return dst, nil
}

func pack3(dst []byte, src []uint16, f PixelFormat) []byte {
	for i := 0; i < len(src); i += 2 {
		p0 := src[i]
		var p1 uint16
		if i+1 < len(src) {
			p1 = src[i+1]
		}
		switch f {
		case Mono12p:
			dst = append(dst, uint8(p0), uint8(p0>>8&0xf)|uint8(p1&0xf)<<4, uint8(p1>>4))
		case Mono12Packed:
			dst = append(dst, uint8(p0>>4), uint8(p0&0xf)|uint8(p1&0xf)<<4, uint8(p1>>4))
		case Mono10Packed:
			dst = append(dst, uint8(p0>>2), uint8(p0&3)|uint8(p1&3)<<4, uint8(p1>>2))
		}
	}
	if len(src)%2 == 1 {
		dst = dst[:len(dst)-1] // a lone last pixel takes 12 bits: 2 bytes
	}
	return dst
}

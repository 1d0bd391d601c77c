package u3v

import (
	"fmt"

	"github.com/webinspect/webinspect/acquisition/pfnc"
)

// PFNC pixel formats a monochrome line-scan camera sends (package pfnc,
// shared with GigE Vision).
const (
	pfMono8        = uint32(pfnc.Mono8)
	pfMono10       = uint32(pfnc.Mono10)
	pfMono10Packed = uint32(pfnc.Mono10Packed)
	pfMono12       = uint32(pfnc.Mono12)
	pfMono12Packed = uint32(pfnc.Mono12Packed)
	pfMono16       = uint32(pfnc.Mono16)
	pfMono10p      = uint32(pfnc.Mono10p)
	pfMono12p      = uint32(pfnc.Mono12p)
)

// PixelFormatName names a PFNC code ("PixelFormat(0x…)" when unknown).
func PixelFormatName(pf uint32) string { return pfnc.PixelFormat(pf).String() }

// pixelBits is the PFNC bits per pixel of pf.
func pixelBits(pf uint32) int { return pfnc.PixelFormat(pf).Bits() }

// lineBytes is the size of one line of width pixels in pf, or an error
// for a format this package does not convert or a width that does not pack
// into whole packing groups.
func lineBytes(pf uint32, width int) (int, error) {
	f := pfnc.PixelFormat(pf)
	if f.Depth() == 0 {
		return 0, fmt.Errorf("%w: pixel format %s (want Mono8/10/12/16, packed or not)", ErrUnsupported, f)
	}
	group := map[pfnc.PixelFormat]int{pfnc.Mono10Packed: 2, pfnc.Mono12Packed: 2, pfnc.Mono10p: 4, pfnc.Mono12p: 2}[f]
	if width*f.Bits()%8 != 0 || group > 0 && width%group != 0 {
		return 0, fmt.Errorf("%w: %d pixels of %s do not fill whole packing groups", ErrUnsupported, width, f)
	}
	return f.LineBytes(width), nil
}

// to8 converts one line of len(dst) pixels from src in pf to 8 bits (the
// most significant bits). src must hold lineBytes(pf, len(dst)), which
// also checked the format, so the conversion cannot fail.
func to8(dst, src []byte, pf uint32) {
	_ = pfnc.ToMono8(dst, src, len(dst), pfnc.PixelFormat(pf))
}

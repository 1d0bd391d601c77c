package u3v

import "fmt"

// PFNC pixel formats a monochrome line-scan camera sends. Bits 16..23 of a
// PFNC code are the bits per pixel.
const (
	pfMono8        = 0x01080001
	pfMono10       = 0x01100003 // 10 bits in a little-endian u16
	pfMono10Packed = 0x010C0004 // GigE Vision packing: 2 pixels in 3 bytes, MSBs first
	pfMono12       = 0x01100005
	pfMono12Packed = 0x010C0006 // GigE Vision packing: 2 pixels in 3 bytes, MSBs first
	pfMono16       = 0x01100007
	pfMono10p      = 0x010A0046 // PFNC LSB-first packing: 4 pixels in 5 bytes
	pfMono12p      = 0x010C0047 // PFNC LSB-first packing: 2 pixels in 3 bytes
)

var pixelNames = map[uint32]string{
	pfMono8: "Mono8", pfMono10: "Mono10", pfMono10Packed: "Mono10Packed",
	pfMono12: "Mono12", pfMono12Packed: "Mono12Packed", pfMono16: "Mono16",
	pfMono10p: "Mono10p", pfMono12p: "Mono12p",
}

// PixelFormatName names a PFNC code ("0x…" when unknown).
func PixelFormatName(pf uint32) string {
	if n, ok := pixelNames[pf]; ok {
		return n
	}
	return fmt.Sprintf("0x%08x", pf)
}

// pixelBits is the PFNC bits per pixel of pf.
func pixelBits(pf uint32) int { return int(pf >> 16 & 0xFF) }

// lineBytes is the size of one line of width pixels in pf, or an error
// for a format this package does not convert or a width that does not pack
// into whole bytes.
func lineBytes(pf uint32, width int) (int, error) {
	if _, ok := pixelNames[pf]; !ok {
		return 0, fmt.Errorf("%w: pixel format %s (want Mono8/10/12/16, packed or not)", ErrUnsupported, PixelFormatName(pf))
	}
	bits := width * pixelBits(pf)
	group := map[uint32]int{pfMono10Packed: 2, pfMono12Packed: 2, pfMono10p: 4, pfMono12p: 2}[pf]
	if bits%8 != 0 || group > 0 && width%group != 0 {
		return 0, fmt.Errorf("%w: %d pixels of %s do not fill whole packing groups", ErrUnsupported, width, PixelFormatName(pf))
	}
	return bits / 8, nil
}

// to8 converts one line of len(dst) pixels from src in pf to 8 bits by
// keeping the most significant bits. src must hold lineBytes(pf, len(dst)).
func to8(dst, src []byte, pf uint32) {
	switch pf {
	case pfMono8:
		copy(dst, src)
	case pfMono16:
		src = src[:2*len(dst)]
		for i := range dst {
			dst[i] = src[2*i+1] // high byte of a little-endian u16
		}
	case pfMono10, pfMono12:
		shift := map[uint32]uint{pfMono10: 2, pfMono12: 4}[pf] // significant bits - 8
		src = src[:2*len(dst)]
		for i := range dst {
			v := (uint16(src[2*i]) | uint16(src[2*i+1])<<8) >> shift
			dst[i] = uint8(min(v, 255)) // bits above the significant ones saturate
		}
	case pfMono10Packed, pfMono12Packed:
		// b0 = p0's high 8 bits, b1 = both pixels' low bits, b2 = p1's high 8 bits.
		for i := 0; i+1 < len(dst); i += 2 {
			s := src[3*i/2:]
			dst[i], dst[i+1] = s[0], s[2]
		}
	case pfMono12p:
		// p0 = b0 | (b1&0x0F)<<8, p1 = b1>>4 | b2<<4; their top 8 bits:
		src = src[:3*len(dst)/2]
		for i, j := 0, 0; i+1 < len(dst); i, j = i+2, j+3 {
			dst[i], dst[i+1] = src[j]>>4|src[j+1]<<4, src[j+2]
		}
	case pfMono10p:
		// 4 pixels in 40 bits, LSB first; the top 8 bits of each:
		src = src[:5*len(dst)/4]
		for i, j := 0, 0; i+3 < len(dst); i, j = i+4, j+5 {
			b0, b1, b2, b3, b4 := src[j], src[j+1], src[j+2], src[j+3], src[j+4]
			dst[i], dst[i+1], dst[i+2], dst[i+3] = b0>>2|b1<<6, b1>>4|b2<<4, b2>>6|b3<<2, b4
		}
	}
}

package kernels

// FlatFieldGains fills gain[c] with the 8.8 fixed-point gain that maps the
// span white[c]-dark[c] onto target:
//
//	gain[c] = round(target*256 / (white[c]-dark[c]))   (half rounds up)
//
// clamped to [0, 65535]. A column whose white reference is not above its
// dark reference (a dead or saturated pixel) has no usable span; it gets the
// gain for a span of 1, target*256, so FlatField maps any signal above dark
// to white rather than hiding it. Columns 0..len(gain)-1 are filled; dark and
// white must be at least that long.
func FlatFieldGains(gain []uint16, dark, white []uint8, target uint8) {
	n := len(gain)
	need("dark", len(dark), n)
	need("white", len(white), n)
	flatFieldGainsImpl(gain, dark[:n], white[:n], target)
}

func flatFieldGainsGeneric(gain []uint16, dark, white []uint8, target uint8) {
	dark = dark[:len(gain)]
	white = white[:len(gain)]
	num := uint32(target) * 256
	for c := range gain {
		span := uint32(1)
		if white[c] > dark[c] {
			span = uint32(white[c] - dark[c])
		}
		g := (2*num + span) / (2 * span)
		if g > 65535 {
			g = 65535
		}
		gain[c] = uint16(g)
	}
}

// FlatField corrects the len(src)/len(dark) whole lines of src into dst:
//
//	dst[i] = clamp((max(src[i]-dark[c], 0)*gain[c] + 128) >> 8, 0, 255),  c = i % len(dark)
//
// A trailing partial line of src is left alone. gain must hold len(dark)
// entries and dst at least the corrected lines. dst may be src (in place);
// other overlaps are not allowed.
func FlatField(dst, src []uint8, dark []uint8, gain []uint16) {
	w := len(dark)
	if w == 0 {
		return
	}
	n := len(src) / w * w
	need("gain", len(gain), w)
	need("dst", len(dst), n)
	flatFieldImpl(dst[:n], src[:n], dark, gain[:w])
}

// flatFieldGeneric corrects len(src)/len(dark) lines; len(dst) == len(src),
// a multiple of len(dark), and len(gain) == len(dark).
func flatFieldGeneric(dst, src []uint8, dark []uint8, gain []uint16) {
	w := len(dark)
	gain = gain[:w]
	for off := 0; off+w <= len(src); off += w {
		s := src[off : off+w]
		d := dst[off : off+w]
		for c, x := range s {
			// Branch-free: pixels vary at random around dark, so a
			// branch on x > dark would mispredict.
			v := int32(x) - int32(dark[c])
			v &^= v >> 31 // max(v, 0)
			d[c] = uint8(min((uint32(v)*uint32(gain[c])+128)>>8, 255))
		}
	}
}

package kernels

// Bin2 halves a block of lines in both directions: each output pixel is the
// mean of a 2×2 square of input pixels, rounded half up,
//
//	dst[y*(width/2)+x] = (s[2y][2x] + s[2y][2x+1] + s[2y+1][2x] + s[2y+1][2x+1] + 2) >> 2
//
// where s[j] is line j of src, src[j*width:(j+1)*width]:
//
//	src  line 0  a b c d e      dst  line 0  A B       A = (a+b+f+g+2)>>2
//	     line 1  f g h i j                             B = (c+d+h+i+2)>>2
//	     line 2  k l m n o      (width 5: column e/j/o and line 2 dropped)
//
// Only whole pairs
// of whole lines are binned: a last odd line, a last odd column and a
// trailing partial line are dropped. The result, (len(src)/width/2) lines
// of width/2 pixels, is written to the front of dst, which must be that
// long and must not overlap src. A width of 0 or 1 writes nothing.
func Bin2(dst []uint8, src []uint8, width int) {
	if width < 2 {
		return
	}
	pairs := len(src) / width / 2
	ow := width / 2
	need("dst", len(dst), pairs*ow)
	bin2Impl(dst[:pairs*ow], src[:pairs*2*width], width)
}

// bin2Generic bins len(src)/(2*width) line pairs; len(src) is a multiple of
// 2*width, width >= 2 and len(dst) == len(src)/4 rounded down per line.
func bin2Generic(dst []uint8, src []uint8, width int) {
	ow := width / 2
	for y := 0; (2*y+2)*width <= len(src); y++ {
		r0 := src[2*y*width : 2*y*width+2*ow]
		r1 := src[(2*y+1)*width : (2*y+1)*width+2*ow]
		bin2Row(dst[y*ow:(y+1)*ow], r0, r1)
	}
}

// bin2Row bins len(d) output pixels from the line pair r0, r1, which hold
// at least 2*len(d) pixels each.
func bin2Row(d, r0, r1 []uint8) {
	r0 = r0[:2*len(d)]
	r1 = r1[:2*len(d)]
	for x := range d {
		s := uint(r0[2*x]) + uint(r0[2*x+1]) + uint(r1[2*x]) + uint(r1[2*x+1])
		d[x] = uint8((s + 2) >> 2)
	}
}

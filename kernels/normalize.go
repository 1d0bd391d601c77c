package kernels

// Normalize converts 8-bit pixels to float32, as a tile tensor for a model
// wants them:
//
//	dst[i] = float32(src[i])*scale + offset
//
// rounded to float32 after the multiply and again after the add (never
// fused), so every implementation gives the same bits. For inputs in [0, 1]
// use scale 1/255, offset 0; for [-1, 1] use 2/255, -1. dst must be at
// least as long as src.
func Normalize(dst []float32, src []uint8, scale, offset float32) {
	need("dst", len(dst), len(src))
	normalizeImpl(dst[:len(src)], src, scale, offset)
}

func normalizeGeneric(dst []float32, src []uint8, scale, offset float32) {
	dst = dst[:len(src)]
	for i, x := range src {
		// The conversion rounds the product and so forbids fusing it
		// with the add: the assembly does not fuse either.
		dst[i] = float32(float32(x)*scale) + offset
	}
}

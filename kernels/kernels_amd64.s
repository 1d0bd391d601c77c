//go:build amd64 && !noasm && gc

#include "textflag.h"

// AVX2 and AVX-512 inner loops for kernels_amd64.go. Each processes a body whose length
// is a positive multiple of its block; the Go wrapper does the tail. Every
// function ends with VZEROUPPER. Operand order is Go's: sources first,
// destination last (VPSUBUSW B, A, D computes D = A - B).

// func flatFieldBodyAVX2(dst, src, dark *uint8, gain *uint16, n int)
//
// 32 pixels per iteration in 16-bit lanes:
//   v  = subs_u16(zx(src), zx(dark))            max(src-dark, 0), 0..255
//   lo = mullo(v, gain), hi = mulhi_u(v, gain)  v*gain = hi<<16 | lo
//   r  = adds_u16(adds_u16(lo, 128) >> 8, hi << 8)
//   dst = packus(min_u16(r, 255))
// v*gain < 2^24, so hi <= 254 and hi<<8 loses nothing. When hi = 0,
// lo+128 saturating at 65535 only turns a true 256 into 255, which the
// clamp maps to 255 anyway; when hi > 0 the result is >= 256 and clamps.
TEXT ·flatFieldBodyAVX2(SB), NOSPLIT, $0-40
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ dark+16(FP), DX
	MOVQ gain+24(FP), BX
	MOVQ n+32(FP), CX
	MOVL $0x00800080, AX
	MOVD AX, X15
	VPBROADCASTD X15, Y15 // 128 in every word
	MOVL $0x00ff00ff, AX
	MOVD AX, X14
	VPBROADCASTD X14, Y14 // 255 in every word
	XORQ AX, AX

ffloop:
	VPMOVZXBW (SI)(AX*1), Y0
	VPMOVZXBW 16(SI)(AX*1), Y1
	VPMOVZXBW (DX)(AX*1), Y2
	VPMOVZXBW 16(DX)(AX*1), Y3
	VPSUBUSW  Y2, Y0, Y0
	VPSUBUSW  Y3, Y1, Y1
	VMOVDQU   (BX)(AX*2), Y4
	VMOVDQU   32(BX)(AX*2), Y5
	VPMULHUW  Y4, Y0, Y2
	VPMULLW   Y4, Y0, Y0
	VPMULHUW  Y5, Y1, Y3
	VPMULLW   Y5, Y1, Y1
	VPADDUSW  Y15, Y0, Y0
	VPADDUSW  Y15, Y1, Y1
	VPSRLW    $8, Y0, Y0
	VPSRLW    $8, Y1, Y1
	VPSLLW    $8, Y2, Y2
	VPSLLW    $8, Y3, Y3
	VPADDUSW  Y2, Y0, Y0
	VPADDUSW  Y3, Y1, Y1
	VPMINUW   Y14, Y0, Y0
	VPMINUW   Y14, Y1, Y1
	VPACKUSWB Y1, Y0, Y0      // lanes interleave: q0=Y0 lo, q1=Y1 lo, q2=Y0 hi, q3=Y1 hi
	VPERMQ    $0xd8, Y0, Y0   // back to pixel order q0 q2 q1 q3
	VMOVDQU   Y0, (DI)(AX*1)
	ADDQ      $32, AX
	CMPQ      AX, CX
	JB        ffloop
	VZEROUPPER
	RET

// func thresholdMaskBodyAVX2(mask *int8, line, lo, hi *uint8, n int) (flagged int)
//
// 32 pixels per iteration. Unsigned compares through max and equality:
//   ge = (max(x, lo) == x)   x >= lo, i.e. not dark   (all ones or 0)
//   le = (max(x, hi) == hi)  x <= hi, i.e. not bright
//   mask = (^ge & le) + le + 1
// which is +1 where bright (le = 0), -1 where dark and not bright
// (-1 + -1 + 1), 0 otherwise (0 + -1 + 1). Clean pixels are ge & le; their
// count comes from the byte sign mask and POPCNT, and flagged = n - clean.
TEXT ·thresholdMaskBodyAVX2(SB), NOSPLIT, $0-48
	MOVQ mask+0(FP), DI
	MOVQ line+8(FP), SI
	MOVQ lo+16(FP), DX
	MOVQ hi+24(FP), BX
	MOVQ n+32(FP), CX
	MOVL $0x01010101, AX
	MOVD AX, X15
	VPBROADCASTD X15, Y15 // 1 in every byte
	XORQ AX, AX
	XORQ R8, R8

tmloop:
	VMOVDQU   (SI)(AX*1), Y0
	VMOVDQU   (DX)(AX*1), Y1
	VMOVDQU   (BX)(AX*1), Y2
	VPMAXUB   Y0, Y1, Y1
	VPCMPEQB  Y0, Y1, Y1      // ge
	VPMAXUB   Y0, Y2, Y3
	VPCMPEQB  Y2, Y3, Y3      // le
	VPANDN    Y3, Y1, Y4      // ^ge & le
	VPADDB    Y3, Y4, Y4
	VPADDB    Y15, Y4, Y4
	VMOVDQU   Y4, (DI)(AX*1)
	VPAND     Y1, Y3, Y3
	VPMOVMSKB Y3, R9
	POPCNTL   R9, R9
	ADDQ      R9, R8
	ADDQ      $32, AX
	CMPQ      AX, CX
	JB        tmloop
	VZEROUPPER
	SUBQ      R8, CX              // flagged = n - clean
	MOVQ      CX, flagged+40(FP)
	RET

// func updateBackgroundBodyAVX2(mean, variance *float32, line *uint8, mask *int8, n int, alpha, alphaFlagged float32)
//
// 16 columns per iteration (two groups of 8 float32 lanes), the generic
// operations in the generic order, each rounded (no FMA):
//   a = mask == 0 ? alpha : alphaFlagged, b = 1 - a (both precomputed)
//   d = x - m; ad = a*d; mean = m + ad; var = b * (var + ad*d)
TEXT ·updateBackgroundBodyAVX2(SB), NOSPLIT, $0-48
	MOVQ mean+0(FP), DI
	MOVQ variance+8(FP), DX
	MOVQ line+16(FP), SI
	MOVQ mask+24(FP), R8
	MOVQ n+32(FP), CX
	VBROADCASTSS alpha+40(FP), Y15
	VBROADCASTSS alphaFlagged+44(FP), Y14
	MOVL $0x3f800000, AX // 1.0
	MOVD AX, X13
	VPBROADCASTD X13, Y13
	VSUBPS Y15, Y13, Y12 // 1 - alpha
	VSUBPS Y14, Y13, Y11 // 1 - alphaFlagged
	VPXOR  Y10, Y10, Y10
	XORQ   AX, AX

ubloop:
	VPMOVZXBD (SI)(AX*1), Y0
	VPMOVZXBD 8(SI)(AX*1), Y6
	VCVTDQ2PS Y0, Y0
	VCVTDQ2PS Y6, Y6
	VPMOVSXBD (R8)(AX*1), Y1
	VPMOVSXBD 8(R8)(AX*1), Y7
	VPCMPEQD  Y10, Y1, Y1          // all ones where mask == 0
	VPCMPEQD  Y10, Y7, Y7
	VBLENDVPS Y1, Y15, Y14, Y2     // a
	VBLENDVPS Y1, Y12, Y11, Y3     // 1 - a
	VBLENDVPS Y7, Y15, Y14, Y8
	VBLENDVPS Y7, Y12, Y11, Y9
	VMOVUPS   (DI)(AX*4), Y4       // m
	VMOVUPS   32(DI)(AX*4), Y5
	// The variance is loaded before the mean is stored: mean and
	// variance rows are often a multiple of 4 KiB apart, and a load
	// after a store to an address with the same low 12 bits waits for
	// it (4K aliasing).
	VMOVUPS   (DX)(AX*4), Y1       // the masks are used up: reuse
	VMOVUPS   32(DX)(AX*4), Y7
	VSUBPS    Y4, Y0, Y0           // d = x - m
	VSUBPS    Y5, Y6, Y6
	VMULPS    Y0, Y2, Y2           // ad = a*d
	VMULPS    Y6, Y8, Y8
	VADDPS    Y2, Y4, Y4           // m + ad
	VADDPS    Y8, Y5, Y5
	VMOVUPS   Y4, (DI)(AX*4)
	VMOVUPS   Y5, 32(DI)(AX*4)
	VMULPS    Y0, Y2, Y2           // ad*d
	VMULPS    Y6, Y8, Y8
	VADDPS    Y2, Y1, Y4           // var + ad*d
	VADDPS    Y8, Y7, Y5
	VMULPS    Y4, Y3, Y4           // (1-a) * (...)
	VMULPS    Y5, Y9, Y5
	VMOVUPS   Y4, (DX)(AX*4)
	VMOVUPS   Y5, 32(DX)(AX*4)
	ADDQ      $16, AX
	CMPQ      AX, CX
	JB        ubloop
	VZEROUPPER
	RET

// func normalizeBodyAVX2(dst *float32, src *uint8, n int, scale, offset float32)
//
// 32 pixels per iteration: zero-extend to int32, convert (exact), multiply,
// round, add, round: dst = float32(x)*scale + offset without FMA.
TEXT ·normalizeBodyAVX2(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	VBROADCASTSS scale+24(FP), Y15
	VBROADCASTSS offset+28(FP), Y14
	XORQ AX, AX

nmloop:
	VPMOVZXBD (SI)(AX*1), Y0
	VPMOVZXBD 8(SI)(AX*1), Y1
	VPMOVZXBD 16(SI)(AX*1), Y2
	VPMOVZXBD 24(SI)(AX*1), Y3
	VCVTDQ2PS Y0, Y0
	VCVTDQ2PS Y1, Y1
	VCVTDQ2PS Y2, Y2
	VCVTDQ2PS Y3, Y3
	VMULPS    Y15, Y0, Y0
	VMULPS    Y15, Y1, Y1
	VMULPS    Y15, Y2, Y2
	VMULPS    Y15, Y3, Y3
	VADDPS    Y14, Y0, Y0
	VADDPS    Y14, Y1, Y1
	VADDPS    Y14, Y2, Y2
	VADDPS    Y14, Y3, Y3
	VMOVUPS   Y0, (DI)(AX*4)
	VMOVUPS   Y1, 32(DI)(AX*4)
	VMOVUPS   Y2, 64(DI)(AX*4)
	VMOVUPS   Y3, 96(DI)(AX*4)
	ADDQ      $32, AX
	CMPQ      AX, CX
	JB        nmloop
	VZEROUPPER
	RET

// func bin2BodyAVX2(dst, r0, r1 *uint8, n int)
//
// 32 output pixels from 64 input pixels of each line per iteration:
// VPMADDUBSW with all-ones bytes adds horizontal pairs into words (<= 510),
// the two lines' words are added with the rounding 2 (<= 1022), shifted
// right by 2 (<= 255) and packed back to bytes.
TEXT ·bin2BodyAVX2(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ r0+8(FP), SI
	MOVQ r1+16(FP), DX
	MOVQ n+24(FP), CX
	MOVL $0x01010101, AX
	MOVD AX, X15
	VPBROADCASTD X15, Y15 // 1 in every byte
	MOVL $0x00020002, AX
	MOVD AX, X14
	VPBROADCASTD X14, Y14 // 2 in every word
	XORQ AX, AX

bnloop:
	VMOVDQU    (SI)(AX*2), Y0
	VMOVDQU    32(SI)(AX*2), Y1
	VMOVDQU    (DX)(AX*2), Y2
	VMOVDQU    32(DX)(AX*2), Y3
	VPMADDUBSW Y15, Y0, Y0
	VPMADDUBSW Y15, Y1, Y1
	VPMADDUBSW Y15, Y2, Y2
	VPMADDUBSW Y15, Y3, Y3
	VPADDW     Y2, Y0, Y0
	VPADDW     Y3, Y1, Y1
	VPADDW     Y14, Y0, Y0
	VPADDW     Y14, Y1, Y1
	VPSRLW     $2, Y0, Y0
	VPSRLW     $2, Y1, Y1
	VPACKUSWB  Y1, Y0, Y0
	VPERMQ     $0xd8, Y0, Y0
	VMOVDQU    Y0, (DI)(AX*1)
	ADDQ       $32, AX
	CMPQ       AX, CX
	JB         bnloop
	VZEROUPPER
	RET

// AVX-512 (F, BW, VL) versions: the same arithmetic on 512-bit vectors,
// with mask registers where they save work.

// func flatFieldBodyAVX512(dst, src, dark *uint8, gain *uint16, n int)
//
// 64 pixels per iteration, the arithmetic of flatFieldBodyAVX2; the clamp
// and pack are one VPMOVUSWB (unsigned saturation of words to bytes, in
// order, so no lane fix-up).
TEXT ·flatFieldBodyAVX512(SB), NOSPLIT, $0-40
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ dark+16(FP), DX
	MOVQ gain+24(FP), BX
	MOVQ n+32(FP), CX
	MOVL $0x00800080, AX
	MOVD AX, X15
	VPBROADCASTD X15, Z15 // 128 in every word
	XORQ AX, AX

ff5loop:
	VPMOVZXBW  (SI)(AX*1), Z0
	VPMOVZXBW  32(SI)(AX*1), Z1
	VPMOVZXBW  (DX)(AX*1), Z2
	VPMOVZXBW  32(DX)(AX*1), Z3
	VPSUBUSW   Z2, Z0, Z0
	VPSUBUSW   Z3, Z1, Z1
	VMOVDQU16  (BX)(AX*2), Z4
	VMOVDQU16  64(BX)(AX*2), Z5
	VPMULHUW   Z4, Z0, Z2
	VPMULLW    Z4, Z0, Z0
	VPMULHUW   Z5, Z1, Z3
	VPMULLW    Z5, Z1, Z1
	VPADDUSW   Z15, Z0, Z0
	VPADDUSW   Z15, Z1, Z1
	VPSRLW     $8, Z0, Z0
	VPSRLW     $8, Z1, Z1
	VPSLLW     $8, Z2, Z2
	VPSLLW     $8, Z3, Z3
	VPADDUSW   Z2, Z0, Z0
	VPADDUSW   Z3, Z1, Z1
	VPMOVUSWB  Z0, Y0
	VPMOVUSWB  Z1, Y1
	VMOVDQU    Y0, (DI)(AX*1)
	VMOVDQU    Y1, 32(DI)(AX*1)
	ADDQ       $64, AX
	CMPQ       AX, CX
	JB         ff5loop
	VZEROUPPER
	RET

// func thresholdMaskBodyAVX512(mask *int8, line, lo, hi *uint8, n int) (flagged int)
//
// 64 pixels per iteration: unsigned byte compares straight into mask
// registers, K1 = x > hi, K2 = x < lo; the mask is -1 under K2, then +1
// under K1 (bright wins), 0 elsewhere; flagged += popcount(K1 | K2).
TEXT ·thresholdMaskBodyAVX512(SB), NOSPLIT, $0-48
	MOVQ mask+0(FP), DI
	MOVQ line+8(FP), SI
	MOVQ lo+16(FP), DX
	MOVQ hi+24(FP), BX
	MOVQ n+32(FP), CX
	MOVL $0x01010101, AX
	MOVD AX, X15
	VPBROADCASTD X15, Z15 // +1 in every byte
	VPTERNLOGD $0xff, Z14, Z14, Z14 // -1 in every byte
	XORQ AX, AX
	XORQ R8, R8

tm5loop:
	VMOVDQU8   (SI)(AX*1), Z0
	VPCMPUB    $6, (BX)(AX*1), Z0, K1 // x > hi (not less or equal)
	VPCMPUB    $1, (DX)(AX*1), Z0, K2 // x < lo
	VMOVDQU8.Z Z14, K2, Z1
	VMOVDQU8   Z15, K1, Z1
	VMOVDQU8   Z1, (DI)(AX*1)
	KORQ       K1, K2, K3
	KMOVQ      K3, R9
	POPCNTQ    R9, R9
	ADDQ       R9, R8
	ADDQ       $64, AX
	CMPQ       AX, CX
	JB         tm5loop
	VZEROUPPER
	MOVQ       R8, flagged+40(FP)
	RET

// func updateBackgroundBodyAVX512(mean, variance *float32, line *uint8, mask *int8, n int, alpha, alphaFlagged float32)
//
// 32 columns per iteration (two groups of 16), the operations and order of
// updateBackgroundBodyAVX2; K1/K2 = mask != 0 select alphaFlagged.
TEXT ·updateBackgroundBodyAVX512(SB), NOSPLIT, $0-48
	MOVQ mean+0(FP), DI
	MOVQ variance+8(FP), DX
	MOVQ line+16(FP), SI
	MOVQ mask+24(FP), R8
	MOVQ n+32(FP), CX
	VBROADCASTSS alphaFlagged+44(FP), Z14
	VBROADCASTSS alpha+40(FP), Z15
	MOVL $0x3f800000, AX // 1.0
	MOVD AX, X13
	VPBROADCASTD X13, Z13
	VSUBPS Z15, Z13, Z12 // 1 - alpha
	VSUBPS Z14, Z13, Z11 // 1 - alphaFlagged
	XORQ   AX, AX

ub5loop:
	VPMOVZXBD (SI)(AX*1), Z0
	VPMOVZXBD 16(SI)(AX*1), Z6
	VCVTDQ2PS Z0, Z0
	VCVTDQ2PS Z6, Z6
	VMOVDQU   (R8)(AX*1), Y1
	VPTESTMB  Y1, Y1, K1          // bits 0..31: mask != 0
	KSHIFTRD  $16, K1, K2         // columns 16..31
	VBLENDMPS Z14, Z15, K1, Z2    // a
	VBLENDMPS Z11, Z12, K1, Z3    // 1 - a
	VBLENDMPS Z14, Z15, K2, Z8
	VBLENDMPS Z11, Z12, K2, Z9
	VMOVUPS   (DI)(AX*4), Z4      // m
	VMOVUPS   64(DI)(AX*4), Z5
	VMOVUPS   (DX)(AX*4), Z16     // variance before the mean stores (4K aliasing, see AVX2)
	VMOVUPS   64(DX)(AX*4), Z17
	VSUBPS    Z4, Z0, Z0          // d = x - m
	VSUBPS    Z5, Z6, Z6
	VMULPS    Z0, Z2, Z2          // ad = a*d
	VMULPS    Z6, Z8, Z8
	VADDPS    Z2, Z4, Z4          // m + ad
	VADDPS    Z8, Z5, Z5
	VMOVUPS   Z4, (DI)(AX*4)
	VMOVUPS   Z5, 64(DI)(AX*4)
	VMULPS    Z0, Z2, Z2          // ad*d
	VMULPS    Z6, Z8, Z8
	VADDPS    Z2, Z16, Z4         // var + ad*d
	VADDPS    Z8, Z17, Z5
	VMULPS    Z4, Z3, Z4          // (1-a) * (...)
	VMULPS    Z5, Z9, Z5
	VMOVUPS   Z4, (DX)(AX*4)
	VMOVUPS   Z5, 64(DX)(AX*4)
	ADDQ      $32, AX
	CMPQ      AX, CX
	JB        ub5loop
	VZEROUPPER
	RET

// func normalizeBodyAVX512(dst *float32, src *uint8, n int, scale, offset float32)
//
// 64 pixels per iteration, as normalizeBodyAVX2.
TEXT ·normalizeBodyAVX512(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	VBROADCASTSS scale+24(FP), Z15
	VBROADCASTSS offset+28(FP), Z14
	XORQ AX, AX

nm5loop:
	VPMOVZXBD (SI)(AX*1), Z0
	VPMOVZXBD 16(SI)(AX*1), Z1
	VPMOVZXBD 32(SI)(AX*1), Z2
	VPMOVZXBD 48(SI)(AX*1), Z3
	VCVTDQ2PS Z0, Z0
	VCVTDQ2PS Z1, Z1
	VCVTDQ2PS Z2, Z2
	VCVTDQ2PS Z3, Z3
	VMULPS    Z15, Z0, Z0
	VMULPS    Z15, Z1, Z1
	VMULPS    Z15, Z2, Z2
	VMULPS    Z15, Z3, Z3
	VADDPS    Z14, Z0, Z0
	VADDPS    Z14, Z1, Z1
	VADDPS    Z14, Z2, Z2
	VADDPS    Z14, Z3, Z3
	VMOVUPS   Z0, (DI)(AX*4)
	VMOVUPS   Z1, 64(DI)(AX*4)
	VMOVUPS   Z2, 128(DI)(AX*4)
	VMOVUPS   Z3, 192(DI)(AX*4)
	ADDQ      $64, AX
	CMPQ      AX, CX
	JB        nm5loop
	VZEROUPPER
	RET

// func bin2BodyAVX512(dst, r0, r1 *uint8, n int)
//
// 64 output pixels per iteration, as bin2BodyAVX2; VPMOVUSWB packs in
// order.
TEXT ·bin2BodyAVX512(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ r0+8(FP), SI
	MOVQ r1+16(FP), DX
	MOVQ n+24(FP), CX
	MOVL $0x01010101, AX
	MOVD AX, X15
	VPBROADCASTD X15, Z15 // 1 in every byte
	MOVL $0x00020002, AX
	MOVD AX, X14
	VPBROADCASTD X14, Z14 // 2 in every word
	XORQ AX, AX

bn5loop:
	VMOVDQU8   (SI)(AX*2), Z0
	VMOVDQU8   64(SI)(AX*2), Z1
	VMOVDQU8   (DX)(AX*2), Z2
	VMOVDQU8   64(DX)(AX*2), Z3
	VPMADDUBSW Z15, Z0, Z0
	VPMADDUBSW Z15, Z1, Z1
	VPMADDUBSW Z15, Z2, Z2
	VPMADDUBSW Z15, Z3, Z3
	VPADDW     Z2, Z0, Z0
	VPADDW     Z3, Z1, Z1
	VPADDW     Z14, Z0, Z0
	VPADDW     Z14, Z1, Z1
	VPSRLW     $2, Z0, Z0
	VPSRLW     $2, Z1, Z1
	VPMOVUSWB  Z0, Y0
	VPMOVUSWB  Z1, Y1
	VMOVDQU    Y0, (DI)(AX*1)
	VMOVDQU    Y1, 32(DI)(AX*1)
	ADDQ       $64, AX
	CMPQ       AX, CX
	JB         bn5loop
	VZEROUPPER
	RET

// func thresholdsBodyAVX2(lo, hi *uint8, mean, variance *float32, n int, k, minDelta float32)
//
// 16 columns per iteration (two groups of 8), bit-exact with
// thresholdsGeneric:
//   v = max(variance, 0) with NaN -> 0; delta = k*sqrt(v) (VSQRTPS is the
//   correctly rounded float32 square root, the same as float32 of the
//   float64 one); delta = max(delta, minDelta) with NaN -> minDelta
//   l = clamp(m - delta, 0, 255) with NaN -> 0; h likewise with NaN -> 255
//   round half up exactly: floor(x) + (x - floor(x) >= 0.5), the fraction
//   being exact in float32 (x + 0.5 in float32 could round up wrongly)
// (The generic code keeps delta when delta == minDelta where VMAXPS takes
// minDelta; the two differ at most in the sign of a zero, which no
// output can see.) The int32 results pack to bytes: lo columns in the low
// 128 bits, hi columns in the high 128 bits after VPERMD.
TEXT ·thresholdsBodyAVX2(SB), NOSPLIT, $0-48
	MOVQ lo+0(FP), DI
	MOVQ hi+8(FP), BX
	MOVQ mean+16(FP), SI
	MOVQ variance+24(FP), DX
	MOVQ n+32(FP), CX
	VBROADCASTSS k+40(FP), Y14
	VBROADCASTSS minDelta+44(FP), Y13
	MOVL $0x437f0000, AX // 255.0
	MOVD AX, X12
	VPBROADCASTD X12, Y12
	MOVL $0x3f000000, AX // 0.5
	MOVD AX, X11
	VPBROADCASTD X11, Y11
	VMOVDQU thresholdsPerm<>(SB), Y10
	VXORPS Y15, Y15, Y15
	XORQ AX, AX

thloop:
	VMOVUPS    0(DX)(AX*4), Y0
	VMAXPS     Y15, Y0, Y0        // v > 0 ? v : 0 (NaN, negatives -> 0)
	VSQRTPS    Y0, Y0
	VMULPS     Y14, Y0, Y0
	VMAXPS     Y13, Y0, Y0        // delta > minDelta ? delta : minDelta
	VMOVUPS    0(SI)(AX*4), Y1
	VSUBPS     Y0, Y1, Y2        // l = m - delta
	VADDPS     Y0, Y1, Y3        // h = m + delta
	VMAXPS     Y15, Y2, Y2       // l > 0 ? l : 0 (NaN -> 0)
	VMINPS     Y12, Y2, Y2
	VMINPS     Y12, Y3, Y3       // h < 255 ? h : 255 (NaN -> 255)
	VMAXPS     Y15, Y3, Y3
	VROUNDPS   $9, Y2, Y4         // floor
	VSUBPS     Y4, Y2, Y2        // fraction, exact
	VCMPPS     $13, Y11, Y2, Y2  // fraction >= 0.5
	VCVTTPS2DQ Y4, Y4
	VPSUBD     Y2, Y4, Y2        // floor + 1 where rounding up
	VROUNDPS   $9, Y3, Y4         // floor
	VSUBPS     Y4, Y3, Y3        // fraction, exact
	VCMPPS     $13, Y11, Y3, Y3  // fraction >= 0.5
	VCVTTPS2DQ Y4, Y4
	VPSUBD     Y3, Y4, Y3        // floor + 1 where rounding up
	VMOVUPS    32(DX)(AX*4), Y5
	VMAXPS     Y15, Y5, Y5        // v > 0 ? v : 0 (NaN, negatives -> 0)
	VSQRTPS    Y5, Y5
	VMULPS     Y14, Y5, Y5
	VMAXPS     Y13, Y5, Y5        // delta > minDelta ? delta : minDelta
	VMOVUPS    32(SI)(AX*4), Y6
	VSUBPS     Y5, Y6, Y7        // l = m - delta
	VADDPS     Y5, Y6, Y8        // h = m + delta
	VMAXPS     Y15, Y7, Y7       // l > 0 ? l : 0 (NaN -> 0)
	VMINPS     Y12, Y7, Y7
	VMINPS     Y12, Y8, Y8       // h < 255 ? h : 255 (NaN -> 255)
	VMAXPS     Y15, Y8, Y8
	VROUNDPS   $9, Y7, Y9         // floor
	VSUBPS     Y9, Y7, Y7        // fraction, exact
	VCMPPS     $13, Y11, Y7, Y7  // fraction >= 0.5
	VCVTTPS2DQ Y9, Y9
	VPSUBD     Y7, Y9, Y7        // floor + 1 where rounding up
	VROUNDPS   $9, Y8, Y9         // floor
	VSUBPS     Y9, Y8, Y8        // fraction, exact
	VCMPPS     $13, Y11, Y8, Y8  // fraction >= 0.5
	VCVTTPS2DQ Y9, Y9
	VPSUBD     Y8, Y9, Y8        // floor + 1 where rounding up
	VPACKUSDW  Y7, Y2, Y2         // lo words, lanes interleaved
	VPACKUSDW  Y8, Y3, Y3         // hi words
	VPACKUSWB  Y3, Y2, Y2         // dwords: l0a l1a h0a h1a | l0b l1b h0b h1b
	VPERMD     Y2, Y10, Y2        // l0a l0b l1a l1b | h0a h0b h1a h1b
	VMOVDQU    X2, (DI)(AX*1)
	VEXTRACTI128 $1, Y2, X2
	VMOVDQU    X2, (BX)(AX*1)
	ADDQ       $16, AX
	CMPQ       AX, CX
	JB         thloop
	VZEROUPPER
	RET

DATA thresholdsPerm<>+0(SB)/4, $0
DATA thresholdsPerm<>+4(SB)/4, $4
DATA thresholdsPerm<>+8(SB)/4, $1
DATA thresholdsPerm<>+12(SB)/4, $5
DATA thresholdsPerm<>+16(SB)/4, $2
DATA thresholdsPerm<>+20(SB)/4, $6
DATA thresholdsPerm<>+24(SB)/4, $3
DATA thresholdsPerm<>+28(SB)/4, $7
GLOBL thresholdsPerm<>(SB), RODATA|NOPTR, $32

// func thresholdsBodyAVX512(lo, hi *uint8, mean, variance *float32, n int, k, minDelta float32)
//
// 32 columns per iteration (two groups of 16), the arithmetic of
// thresholdsBodyAVX2; the round-up compare goes to K1 and a masked add,
// and VPMOVUSDB narrows each group to 16 bytes in order.
TEXT ·thresholdsBodyAVX512(SB), NOSPLIT, $0-48
	MOVQ lo+0(FP), DI
	MOVQ hi+8(FP), BX
	MOVQ mean+16(FP), SI
	MOVQ variance+24(FP), DX
	MOVQ n+32(FP), CX
	VBROADCASTSS k+40(FP), Z14
	VBROADCASTSS minDelta+44(FP), Z13
	MOVL $0x437f0000, AX // 255.0
	MOVD AX, X12
	VPBROADCASTD X12, Z12
	MOVL $0x3f000000, AX // 0.5
	MOVD AX, X11
	VPBROADCASTD X11, Z11
	MOVL $1, AX
	MOVD AX, X10
	VPBROADCASTD X10, Z10 // int32 1
	VXORPS Y15, Y15, Y15  // zeroes all of Z15
	XORQ AX, AX

th5loop:
	VMOVUPS    0(DX)(AX*4), Z0
	VMAXPS     Z15, Z0, Z0        // v > 0 ? v : 0 (NaN, negatives -> 0)
	VSQRTPS    Z0, Z0
	VMULPS     Z14, Z0, Z0
	VMAXPS     Z13, Z0, Z0        // delta > minDelta ? delta : minDelta
	VMOVUPS    0(SI)(AX*4), Z1
	VSUBPS     Z0, Z1, Z2        // l = m - delta
	VADDPS     Z0, Z1, Z3        // h = m + delta
	VMAXPS     Z15, Z2, Z2       // l > 0 ? l : 0 (NaN -> 0)
	VMINPS     Z12, Z2, Z2
	VMINPS     Z12, Z3, Z3       // h < 255 ? h : 255 (NaN -> 255)
	VMAXPS     Z15, Z3, Z3
	VRNDSCALEPS $9, Z2, Z4        // floor
	VSUBPS     Z4, Z2, Z2        // fraction, exact
	VCMPPS     $13, Z11, Z2, K1   // fraction >= 0.5
	VCVTTPS2DQ Z4, Z2
	VPADDD     Z10, Z2, K1, Z2  // floor + 1 where rounding up
	VRNDSCALEPS $9, Z3, Z4        // floor
	VSUBPS     Z4, Z3, Z3        // fraction, exact
	VCMPPS     $13, Z11, Z3, K1   // fraction >= 0.5
	VCVTTPS2DQ Z4, Z3
	VPADDD     Z10, Z3, K1, Z3  // floor + 1 where rounding up
	VMOVUPS    64(DX)(AX*4), Z5
	VMAXPS     Z15, Z5, Z5        // v > 0 ? v : 0 (NaN, negatives -> 0)
	VSQRTPS    Z5, Z5
	VMULPS     Z14, Z5, Z5
	VMAXPS     Z13, Z5, Z5        // delta > minDelta ? delta : minDelta
	VMOVUPS    64(SI)(AX*4), Z6
	VSUBPS     Z5, Z6, Z7        // l = m - delta
	VADDPS     Z5, Z6, Z8        // h = m + delta
	VMAXPS     Z15, Z7, Z7       // l > 0 ? l : 0 (NaN -> 0)
	VMINPS     Z12, Z7, Z7
	VMINPS     Z12, Z8, Z8       // h < 255 ? h : 255 (NaN -> 255)
	VMAXPS     Z15, Z8, Z8
	VRNDSCALEPS $9, Z7, Z9        // floor
	VSUBPS     Z9, Z7, Z7        // fraction, exact
	VCMPPS     $13, Z11, Z7, K1   // fraction >= 0.5
	VCVTTPS2DQ Z9, Z7
	VPADDD     Z10, Z7, K1, Z7  // floor + 1 where rounding up
	VRNDSCALEPS $9, Z8, Z9        // floor
	VSUBPS     Z9, Z8, Z8        // fraction, exact
	VCMPPS     $13, Z11, Z8, K1   // fraction >= 0.5
	VCVTTPS2DQ Z9, Z8
	VPADDD     Z10, Z8, K1, Z8  // floor + 1 where rounding up
	VPMOVUSDB  Z2, X2
	VPMOVUSDB  Z7, X7
	VPMOVUSDB  Z3, X3
	VPMOVUSDB  Z8, X8
	VMOVDQU    X2, (DI)(AX*1)
	VMOVDQU    X7, 16(DI)(AX*1)
	VMOVDQU    X3, (BX)(AX*1)
	VMOVDQU    X8, 16(BX)(AX*1)
	ADDQ       $32, AX
	CMPQ       AX, CX
	JB         th5loop
	VZEROUPPER
	RET

// func spanEqualBodyAVX2(p *byte, n int, v byte) int
//
// Returns the index of the first of the n bytes at p (n a positive
// multiple of 32) that differs from v, or n when all equal v. 32 bytes per
// iteration: compare, take the byte mask, stop at the first block with a
// clear bit.
TEXT ·spanEqualBodyAVX2(SB), NOSPLIT, $0-32
	MOVQ p+0(FP), SI
	MOVQ n+8(FP), CX
	MOVBLZX v+16(FP), AX
	MOVD AX, X1
	VPBROADCASTB X1, Y1
	XORQ AX, AX

seloop:
	VPCMPEQB  (SI)(AX*1), Y1, Y2
	VPMOVMSKB Y2, DX
	NOTL      DX
	TESTL     DX, DX
	JNZ       sefound
	ADDQ      $32, AX
	CMPQ      AX, CX
	JB        seloop
	VZEROUPPER
	MOVQ      AX, ret+24(FP)
	RET

sefound:
	BSFL      DX, DX
	ADDQ      DX, AX
	VZEROUPPER
	MOVQ      AX, ret+24(FP)
	RET

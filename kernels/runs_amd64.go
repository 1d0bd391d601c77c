//go:build amd64 && !noasm && gc

package kernels

import (
	"encoding/binary"
	"math/bits"
	"unsafe"
)

// spanEqualBodyAVX2 returns the index of the first of the n bytes at p (n a
// positive multiple of 32) that differs from v, or n.
//
//go:noescape
func spanEqualBodyAVX2(p *byte, n int, v byte) int

// spanEqual returns the length of the longest prefix of s whose bytes all
// equal v. A dense mask has runs of a few pixels, so the first two 8-byte
// words are compared in Go (no call); longer spans, the zeros between
// sparse defects above all, go to the AVX2 loop 32 bytes at a time.
func spanEqual(s []byte, v byte) int {
	bv := uint64(v) * 0x0101010101010101
	i := 0
	for ; i < 16 && i+8 <= len(s); i += 8 {
		if x := binary.LittleEndian.Uint64(s[i:]) ^ bv; x != 0 {
			return i + bits.TrailingZeros64(x)/8
		}
	}
	if m := (len(s) - i) &^ 31; m > 0 {
		k := spanEqualBodyAVX2(&s[i], m, v)
		i += k
		if k < m {
			return i
		}
	}
	for ; i+8 <= len(s); i += 8 {
		if x := binary.LittleEndian.Uint64(s[i:]) ^ bv; x != 0 {
			return i + bits.TrailingZeros64(x)/8
		}
	}
	for i < len(s) && s[i] == v {
		i++
	}
	return i
}

// encodeRunsAVX2 skips the zero spans of the mask with spanEqual and
// scans and measures each run with the loop of encodeRunsGeneric, so Sum
// and Peak are bit-identical.
func encodeRunsAVX2(dst []Run, mask []int8, line []uint8, mean []float32) []Run {
	n := len(mask)
	if n == 0 {
		return dst
	}
	line = line[:n]
	mean = mean[:n]
	mb := unsafe.Slice((*byte)(unsafe.Pointer(&mask[0])), n) // int8 and byte share their layout
	for c := 0; c < n; {
		p := mask[c]
		if p == 0 {
			// Skip the zero span: its first bytes inline (in a dense
			// mask most spans end there), the rest by spanEqual.
			c++
			for lim := min(c+3, n); c < lim && mask[c] == 0; c++ {
			}
			if c < n && mask[c] == 0 {
				c += spanEqual(mb[c:], 0)
			}
			continue
		}
		// A run is measured as it is scanned, exactly as in
		// encodeRunsGeneric: every pixel of it costs float work anyway.
		var r Run
		r, c = measureRun(mask, line, mean, c)
		dst = append(dst, r)
	}
	return dst
}

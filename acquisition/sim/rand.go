package sim

import (
	"math"
	"math/bits"
)

// The simulator uses its own small generators rather than math/rand so that
// a seed gives the same web on every Go release.

// mix64 is the splitmix64 finaliser: a bijective 64-bit hash.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// hash combines a seed and a few keys into one well-mixed 64-bit value.
func hash(seed uint64, keys ...uint64) uint64 {
	h := mix64(seed + 0x9e3779b97f4a7c15)
	for _, k := range keys {
		h = mix64(h ^ (k + 0x9e3779b97f4a7c15 + h<<6 + h>>2))
	}
	return h
}

// wyrand is a fast 64-bit generator (Wang Yi's wyrand): one add and one
// 64x64->128 multiply per output.
type wyrand uint64

func (r *wyrand) next() uint64 {
	*r += 0xa0761d6478bd642f
	hi, lo := bits.Mul64(uint64(*r), uint64(*r^0xe7037ed1a0b428db))
	return hi ^ lo
}

// float returns a uniform value in [0, 1).
func (r *wyrand) float() float64 { return float64(r.next()>>11) / (1 << 53) }

// uniform returns a uniform value in [lo, hi).
func (r *wyrand) uniform(lo, hi float64) float64 { return lo + (hi-lo)*r.float() }

// logUniform returns a value in [lo, hi) whose logarithm is uniform, so small
// and large sizes are equally likely per decade.
func (r *wyrand) logUniform(lo, hi float64) float64 {
	return math.Exp(r.uniform(math.Log(lo), math.Log(hi)))
}

// intn returns a uniform value in [0, n).
func (r *wyrand) intn(n int) int {
	hi, _ := bits.Mul64(r.next(), uint64(n))
	return int(hi)
}

// norm returns a standard normal value (Box-Muller).
func (r *wyrand) norm() float64 {
	u := 1 - r.float() // (0, 1]
	v := r.float()
	return math.Sqrt(-2*math.Log(u)) * math.Cos(2*math.Pi*v)
}

// sign returns +1 or -1 with equal probability.
func (r *wyrand) sign() float64 {
	if r.next()&1 == 0 {
		return 1
	}
	return -1
}

// unitHash maps a hash to [-1, 1).
func unitHash(h uint64) float64 { return float64(h>>11)/(1<<52) - 1 }

// floorMod returns a mod b in [0, b) for b > 0.
func floorMod(a, b int64) int64 {
	m := a % b
	if m < 0 {
		m += b
	}
	return m
}

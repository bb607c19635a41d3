package loadgen

import (
	"math"
	"math/bits"
	"time"
)

// rng is a SplitMix64 stream. It is used instead of math/rand so that a seed gives the same
// traffic with every Go release, and because deriving a user from (seed, index) needs a cheap,
// allocation-free generator that can be created by value.
type rng struct{ s uint64 }

const golden = 0x9e3779b97f4a7c15

// mix is the SplitMix64 finalizer: a bijective scrambling of x.
func mix(x uint64) uint64 {
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// derive returns a stream for the item keyed by (key, a, b), independent of other items.
func derive(key, a, b uint64) rng {
	return rng{s: mix(key^mix(a*golden+0x632be59bd9b4e019)) ^ mix(b+0x8cb92ba72f3d8dd7)}
}

func (r *rng) next() uint64 {
	r.s += golden
	return mix(r.s)
}

// intn returns a value in [0, n); n must be positive.
func (r *rng) intn(n int) int {
	hi, _ := bits.Mul64(r.next(), uint64(n))
	return int(hi)
}

// between returns a value in [lo, hi].
func (r *rng) between(lo, hi int) int { return lo + r.intn(hi-lo+1) }

// float returns a value in [0, 1).
func (r *rng) float() float64 { return float64(r.next()>>11) / (1 << 53) }

// chance reports true with probability p.
func (r *rng) chance(p float64) bool { return r.float() < p }

// exp returns an exponentially distributed value with mean 1.
func (r *rng) exp() float64 { return -math.Log(1 - r.float()) }

// dur returns a duration uniformly in [lo, hi].
func (r *rng) dur(lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	return lo + time.Duration(r.float()*float64(hi-lo))
}

// pick returns one element of xs, uniformly.
func pick[T any](r *rng, xs []T) T { return xs[r.intn(len(xs))] }

// weighted returns an index into weights, drawn in proportion to the weights.
func (r *rng) weighted(weights []float64) int {
	total := 0.0
	for _, w := range weights {
		total += w
	}
	x := r.float() * total
	for i, w := range weights {
		if x < w {
			return i
		}
		x -= w
	}
	return len(weights) - 1
}

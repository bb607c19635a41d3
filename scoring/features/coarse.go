package features

import (
	"math"
	"math/bits"
)

// The coarse tier: when a key holds more than MaxEntriesPerKey exact entries (a carrier NAT
// address, a big app, a farm), the oldest entries are not forgotten but folded into 5-minute
// buckets that keep their first and last second, the attempt count, the failure count and a HyperLogLog sketch (64 registers,
// ~13% standard error) of each member field. Queries combine the exact entries with the buckets
// that overlap the window: counts stay exact to a bucket's pro-rated share at the window's edge,
// distinct counts become estimates above the cap instead of saturating. A bucket that reaches past
// the time asked about (entries folded by a state running ahead of it) is pro-rated for both.
//
// Memory: a key that overflows gains retention/5 min + 2 buckets of 148 bytes — 43 KiB at 24 h.

const (
	bucketSec = 300
	hllP      = 6
	hllM      = 1 << hllP
)

type hll [hllM]uint8

func (h *hll) add(m uint32) {
	if m == 0 {
		return
	}
	x := mix64(uint64(m))
	idx := x >> (64 - hllP)
	rho := uint8(bits.LeadingZeros64(x<<hllP|1<<(hllP-1)) + 1)
	if rho > h[idx] {
		h[idx] = rho
	}
}

func (h *hll) merge(o *hll) {
	for i := range h {
		h[i] = max(h[i], o[i])
	}
}

// estimate is the HyperLogLog cardinality with the small-range (linear counting) correction.
func (h *hll) estimate() float64 {
	var sum float64
	zeros := 0
	for _, r := range h {
		sum += math.Ldexp(1, -int(r))
		if r == 0 {
			zeros++
		}
	}
	const alpha = 0.709 // for m = 64
	e := alpha * hllM * hllM / sum
	if e <= 2.5*hllM && zeros > 0 {
		e = hllM * math.Log(float64(hllM)/float64(zeros))
	}
	return e
}

// mix64 spreads a 32-bit member hash over 64 bits (splitmix64 finalizer).
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

type bucket struct {
	idx    uint32 // t / bucketSec of the entries it holds; 0 = empty
	first  uint32 // earliest and latest second folded in: counts are pro-rated over [first, last]
	last   uint32
	count  uint32
	fails  uint32
	sketch [2]hll // member fields A and B
}

type coarse struct {
	b []bucket // ring indexed by idx % len
}

func newCoarse(retention uint32) *coarse {
	return &coarse{b: make([]bucket, retention/bucketSec+2)}
}

// fold adds dropped entries (ew words each: second with the failure bit, member a, member b for
// three-word entries) to their buckets (a stale slot is reused).
func (c *coarse) fold(es []uint32, ew int) {
	for p := 0; p+ew <= len(es); p += ew {
		e := es[p]
		sec := e &^ failBit
		idx := sec / bucketSec
		if idx == 0 {
			idx = 1 // entries at the very start of the epoch share the first bucket
		}
		b := &c.b[idx%uint32(len(c.b))]
		if b.idx != idx {
			if b.idx > idx {
				continue // older than what the slot holds: beyond the retention
			}
			*b = bucket{idx: idx, first: sec, last: sec}
		}
		b.first, b.last = min(b.first, sec), max(b.last, sec)
		b.count++
		if e&failBit != 0 {
			b.fails++
		}
		b.sketch[0].add(es[p+1])
		if ew >= 3 {
			b.sketch[1].add(es[p+2]) // a located phone's entry: its location word follows
		}
	}
}

// share is how much of bucket b lies inside (lo, hi] — 0..1 — assuming its entries spread evenly
// over the seconds it saw, [first, last].
func (b *bucket) share(lo, hi uint32) float64 {
	from, to := max(b.first, lo+1), min(b.last, hi)
	if to < from {
		return 0
	}
	return float64(to-from+1) / float64(b.last-b.first+1)
}

// inWindow calls fn for each bucket holding entries of (lo, hi]: only the ring slots the window
// spans are visited (3 for 10 minutes), not the whole day.
func (c *coarse) inWindow(lo, hi uint32, fn func(b *bucket, share float64)) {
	first, last := (lo+1)/bucketSec, hi/bucketSec
	if n := uint32(len(c.b)); last-first >= n {
		first = last - n + 1
	}
	for idx := max(first, 1); idx <= last; idx++ {
		b := &c.b[idx%uint32(len(c.b))]
		if b.idx != idx {
			continue // empty, or holding another day's bucket
		}
		if s := b.share(lo, hi); s > 0 {
			fn(b, s)
		}
	}
}

// count returns the attempts (or failures) in (lo, hi] held by the buckets, pro-rated at the edges.
func (c *coarse) count(lo, hi uint32, failsOnly bool) float64 {
	var n float64
	c.inWindow(lo, hi, func(b *bucket, s float64) {
		v := b.count
		if failsOnly {
			v = b.fails
		}
		n += s * float64(v)
	})
	return n
}

// sketch merges into h the member sketches of the buckets overlapping (lo, hi] that end by hi (a
// bucket counts whole once it overlaps: distinct members cannot be pro-rated). The bucket that
// reaches past hi, if any, is returned instead, with the share of its seconds in (lo, hi]: a
// state that runs ahead of hi (a scorer behind its feed) has folded later entries into it, whose
// members must not count as of hi (see distinct).
func (c *coarse) sketch(h *hll, f Field, lo, hi uint32) (past *hll, share float64) {
	c.inWindow(lo, hi, func(b *bucket, s float64) {
		if b.last > hi {
			past, share = &b.sketch[f], s
			return
		}
		h.merge(&b.sketch[f])
	})
	return past, share
}

package bench

import (
	"math/rand/v2"
	"slices"
	"sort"
	"time"
)

// RatioInterval is the 95% bootstrap interval of the ratio of two pooled percentiles: q(a)/q(b),
// each pooled over its rounds' requests as Pool does. Rounds, not requests, are drawn again
// (with replacement, reps times, from a fixed seed), since the requests of one round are not
// independent: a GC cycle or a burst of another process slows many at once, and the rounds' p99s
// move by a third while the millions of requests would promise a precision they do not have.
// lo and hi are the 2.5th and 97.5th percentiles of the drawn ratios; both are 0 when either side
// has no requests.
func RatioInterval(a, b []Latency, q float64, reps int, seed uint64) (lo, hi float64) {
	if totalRequests(a) == 0 || totalRequests(b) == 0 || reps <= 0 {
		return 0, 0
	}
	r := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	wa, wb := make([]int, len(a)), make([]int, len(b))
	ratios := make([]float64, 0, reps)
	for range reps {
		draw(r, wa)
		draw(r, wb)
		qa, qb := pooledQuantile(a, wa, q), pooledQuantile(b, wb, q)
		if qb <= 0 || qa < 0 {
			continue // a draw of rounds without requests
		}
		ratios = append(ratios, float64(qa)/float64(qb))
	}
	if len(ratios) == 0 {
		return 0, 0
	}
	slices.Sort(ratios)
	at := func(p float64) float64 { return ratios[int(p*float64(len(ratios)-1))] }
	return at(0.025), at(0.975)
}

// draw sets w to how many times each of len(w) rounds is drawn in len(w) draws with replacement.
func draw(r *rand.Rand, w []int) {
	clear(w)
	for range w {
		w[r.IntN(len(w))]++
	}
}

func totalRequests(ls []Latency) int {
	n := 0
	for _, l := range ls {
		n += len(l.lats)
	}
	return n
}

// pooledQuantile is Pool(ls with round i taken w[i] times).P-q's latency, without building the
// pool: the smallest latency that at least the quantile's rank of the weighted requests are at or
// under, found by bisection over the latencies with a binary search in each round's sorted ones.
// It is -1 when the drawn rounds hold no request.
func pooledQuantile(ls []Latency, w []int, q float64) time.Duration {
	n := 0
	lo, hi := time.Duration(1<<62), time.Duration(0)
	for i, l := range ls {
		if w[i] == 0 || len(l.lats) == 0 {
			continue
		}
		n += w[i] * len(l.lats)
		lo, hi = min(lo, l.lats[0]), max(hi, l.lats[len(l.lats)-1])
	}
	if n == 0 {
		return -1
	}
	rank := int(q*float64(n-1)) + 1 // Pool's index int(q·(n-1)), counted from 1
	atOrUnder := func(v time.Duration) int {
		c := 0
		for i, l := range ls {
			if w[i] != 0 {
				c += w[i] * sort.Search(len(l.lats), func(j int) bool { return l.lats[j] > v })
			}
		}
		return c
	}
	for lo < hi { // the smallest v with rank requests at or under it: one of the latencies
		m := lo + (hi-lo)/2
		if atOrUnder(m) >= rank {
			hi = m
		} else {
			lo = m + 1
		}
	}
	return lo
}

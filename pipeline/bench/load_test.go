package bench

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

func ms(v ...int) []time.Duration {
	out := make([]time.Duration, len(v))
	for i, x := range v {
		out[i] = time.Duration(x) * time.Millisecond
	}
	return out
}

// Pool's percentiles are over every run's requests, not an average of the runs' percentiles.
func TestPoolTakesPercentilesOverAllRequests(t *testing.T) {
	// 99 fast requests and one slow in the first run, 100 fast in the second: each run's p99 is
	// fast, and so is the pool's; its max is the slow one.
	fast := make([]int, 99)
	for i := range fast {
		fast[i] = 1
	}
	a := summarize(ms(append(fast, 500)...), 1, time.Second)
	a.CPU, a.Others = 1.0, 0.5
	b := summarize(ms(append(fast, 1)...), 2, 3*time.Second)
	b.CPU, b.Others = 0.5, 0.1
	p := Pool(a, b)
	if p.Requests != 200 || p.Errors != 3 || p.Duration != 4*time.Second {
		t.Fatalf("pooled %d requests, %d errors over %s; want 200, 3, 4s", p.Requests, p.Errors, p.Duration)
	}
	if p.Throughput != 50 {
		t.Errorf("throughput %v; want 50 req/s (200 over 4 s)", p.Throughput)
	}
	if p.P50 != time.Millisecond || p.P99 != time.Millisecond || p.Max != 500*time.Millisecond {
		t.Errorf("p50 %s p99 %s max %s; want 1ms, 1ms, 500ms", p.P50, p.P99, p.Max)
	}
	// Four slow requests of 300 (the slowest 1.3%): the pool's p99 is slow, though the median
	// of the three runs' p99s is fast.
	c := summarize(ms(append(fast[:96], 400, 400, 400, 400)...), 0, time.Second)
	if p := Pool(a, b, c); p.P99 != 400*time.Millisecond {
		t.Errorf("pool of three runs with one slow request each: p99 %s; want 400ms", p.P99)
	}
	// CPU is weighted by duration: (1.0·1 + 0.5·3) / 4.
	if p.CPU != 0.625 || math.Abs(p.Others-0.2) > 1e-9 {
		t.Errorf("cpu %v others %v; want 0.625 and 0.2", p.CPU, p.Others)
	}
	b.Others = -1
	if Pool(a, b).Others != -1 {
		t.Error("others known although one run's was not")
	}
}

// pooledQuantile picks the latency Pool would with every round taken once, and weights count a
// round as often as it is drawn.
func TestPooledQuantileIsPools(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for trial := range 200 {
		var ls []Latency
		for range 1 + r.IntN(6) {
			lats := make([]time.Duration, r.IntN(300))
			for i := range lats {
				lats[i] = time.Duration(r.ExpFloat64() * float64(time.Millisecond) * float64(1+r.IntN(3)))
			}
			ls = append(ls, summarize(lats, 0, time.Second))
		}
		w := make([]int, len(ls))
		var twice []Latency
		for i := range w {
			w[i] = r.IntN(3)
			for range w[i] {
				twice = append(twice, ls[i])
			}
		}
		for _, q := range []float64{0, 0.5, 0.99, 1} {
			got := pooledQuantile(ls, w, q)
			want := time.Duration(-1)
			if totalRequests(twice) > 0 {
				p := Pool(twice...)
				want = p.lats[int(q*float64(len(p.lats)-1))]
			}
			if got != want {
				t.Fatalf("trial %d q %v weights %v: pooled quantile %s; want %s (Pool's)", trial, q, w, got, want)
			}
		}
	}
}

// The interval is as wide as the rounds disagree: a point when every round is alike, wide when
// one round of five is slow, and it brackets the pooled ratio.
func TestRatioInterval(t *testing.T) {
	round := func(scale int, slow int) Latency {
		lats := make([]time.Duration, 1000)
		for i := range lats {
			lats[i] = time.Duration(scale*(1+i%10)) * time.Millisecond
		}
		for i := range slow {
			lats[i] = time.Duration(scale*100) * time.Millisecond
		}
		return summarize(lats, 0, time.Second)
	}
	same := []Latency{round(1, 0), round(1, 0), round(1, 0)}
	if lo, hi := RatioInterval(same, same, 0.99, 500, 1); lo != 1 || hi != 1 {
		t.Errorf("alike rounds: interval %v–%v; want 1–1", lo, hi)
	}
	double := []Latency{round(2, 0), round(2, 0), round(2, 0)}
	if lo, hi := RatioInterval(double, same, 0.99, 500, 1); lo != 2 || hi != 2 {
		t.Errorf("every round twice as slow: interval %v–%v; want 2–2", lo, hi)
	}
	// One round of five has 30 slow requests (3% of it, 0.6% of the pool): drawn twice or more
	// it moves the pooled p99, drawn once it does not.
	mixed := []Latency{round(1, 30), round(1, 0), round(1, 0), round(1, 0), round(1, 0)}
	lo, hi := RatioInterval(mixed, same, 0.99, 2000, 1)
	point := float64(Pool(mixed...).P99) / float64(Pool(same...).P99)
	if !(lo <= point && point <= hi) || hi/lo < 2 {
		t.Errorf("one slow round: interval %v–%v around %v; want a wide interval holding it", lo, hi, point)
	}
	if lo, hi := RatioInterval(nil, same, 0.99, 100, 1); lo != 0 || hi != 0 {
		t.Errorf("no requests: %v–%v; want 0–0", lo, hi)
	}
}

// verdict reads an interval against its target: met only when all of it is at or under, not met
// only when all of it is above.
func TestVerdict(t *testing.T) {
	for _, c := range []struct {
		iv   [2]float64
		want string
	}{
		{[2]float64{0.82, 1.09}, "met"},
		{[2]float64{0.9, 1.1}, "met"},
		{[2]float64{1.11, 1.4}, "not met"},
		{[2]float64{0.96, 1.38}, "not told apart from the noise by these rounds"},
		{[2]float64{0, 0}, "no requests"},
	} {
		if got := verdict(c.iv, 1.10); got != c.want {
			t.Errorf("verdict(%v, 1.10) = %q; want %q", c.iv, got, c.want)
		}
	}
}

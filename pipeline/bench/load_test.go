package bench

import (
	"math"
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

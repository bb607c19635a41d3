package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Latency summarizes a run.
type Latency struct {
	Requests   int
	Errors     int
	Duration   time.Duration
	Throughput float64 // requests/s
	P50, P99   time.Duration
	P999, Max  time.Duration
	// CPU is this process's CPU (server and load generator) over the run, in cores; Others is the
	// CPU every other process of the machine used meanwhile (a local broker's), -1 if unknown.
	CPU, Others float64

	lats []time.Duration // every request's latency, sorted (for Pool)
}

// Pool summarizes several runs' requests together: percentiles over all their latencies (a
// steadier p99 than any one run's, whose slowest 1% may be a few bursts), throughput and CPU over
// their total duration.
func Pool(ls ...Latency) Latency {
	var (
		all         []time.Duration
		errs        int
		el          time.Duration
		cpu, others float64
		othersKnown = true
	)
	for _, l := range ls {
		all = append(all, l.lats...)
		errs += l.Errors
		el += l.Duration
		cpu += l.CPU * l.Duration.Seconds()
		others += l.Others * l.Duration.Seconds()
		othersKnown = othersKnown && l.Others >= 0
	}
	slices.Sort(all)
	p := summarize(all, errs, el)
	p.Others = -1
	if el > 0 {
		p.CPU = cpu / el.Seconds()
		if othersKnown {
			p.Others = others / el.Seconds()
		}
	}
	return p
}

func (l Latency) String() string {
	return fmt.Sprintf("%8.0f req/s  p50 %-9s p99 %-9s p999 %-9s (%d requests, %d errors)",
		l.Throughput, l.P50.Round(time.Microsecond), l.P99.Round(time.Microsecond), l.P999.Round(time.Microsecond), l.Requests, l.Errors)
}

// Target is one HTTP endpoint under load.
type Target struct {
	URL    string
	Bodies [][]byte // request bodies, used round robin
	User   string
	Pass   string
}

func newClient(conns int) *http.Client {
	return &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{
			MaxIdleConns: conns, MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns,
			IdleConnTimeout: time.Minute, DisableCompression: true,
			DialContext: (&net.Dialer{Timeout: time.Second}).DialContext,
		},
	}
}

// Closed runs `conns` workers back to back for d: the most this endpoint serves at that concurrency.
func Closed(ctx context.Context, t Target, conns int, d time.Duration) Latency {
	return run(ctx, t, conns, d, 0)
}

// Open offers `rate` requests/s (spread over `conns` workers) for d: latency at a fixed load.
func Open(ctx context.Context, t Target, conns int, rate float64, d time.Duration) Latency {
	return run(ctx, t, conns, d, rate)
}

func run(ctx context.Context, t Target, conns int, d time.Duration, rate float64) Latency {
	client := newClient(conns)
	defer client.CloseIdleConnections()
	others, othersOK := othersCPU() // reads /proc: a few ms, before the run's clock starts
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var (
		mu    sync.Mutex
		lats  []time.Duration
		errs  atomic.Int64
		seq   atomic.Uint64
		wg    sync.WaitGroup
		start = time.Now()
		cpu   = processCPU()
	)
	var interval time.Duration
	if rate > 0 {
		interval = time.Duration(float64(conns) / rate * float64(time.Second))
	}
	for w := 0; w < conns; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			local := make([]time.Duration, 0, 1<<14)
			next := time.Now().Add(time.Duration(w) * interval / time.Duration(max(conns, 1)))
			for ctx.Err() == nil {
				if interval > 0 {
					if wait := time.Until(next); wait > 0 {
						select {
						case <-ctx.Done():
						case <-time.After(wait):
						}
						if ctx.Err() != nil {
							break
						}
					}
				}
				body := t.Bodies[seq.Add(1)%uint64(len(t.Bodies))]
				// Latency is measured from the scheduled send time in open mode, so a stalled
				// server is charged for the queueing it causes (no coordinated omission).
				sent := time.Now()
				if interval > 0 {
					sent = next
					next = next.Add(interval)
				}
				if err := do(ctx, client, t, body); err != nil {
					if ctx.Err() == nil {
						errs.Add(1)
					}
					continue
				}
				local = append(local, time.Since(sent))
			}
			mu.Lock()
			lats = append(lats, local...)
			mu.Unlock()
		}(w)
	}
	wg.Wait()
	el := time.Since(start)
	l := summarize(lats, int(errs.Load()), el)
	self := processCPU() - cpu
	l.CPU, l.Others = self.Seconds()/el.Seconds(), -1
	if o, ok := othersCPU(); ok && othersOK {
		l.Others = (o - others).Seconds() / el.Seconds()
	}
	return l
}

func do(ctx context.Context, c *http.Client, t Target, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	if t.User != "" {
		req.SetBasicAuth(t.User, t.Pass)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

func summarize(lats []time.Duration, errs int, el time.Duration) Latency {
	slices.Sort(lats)
	pct := func(p float64) time.Duration {
		if len(lats) == 0 {
			return 0
		}
		i := int(p * float64(len(lats)-1))
		return lats[i]
	}
	l := Latency{Requests: len(lats), Errors: errs, Duration: el, P50: pct(0.5), P99: pct(0.99), P999: pct(0.999), lats: lats}
	if len(lats) > 0 {
		l.Max = lats[len(lats)-1]
	}
	if el > 0 {
		l.Throughput = float64(len(lats)) / el.Seconds()
	}
	return l
}

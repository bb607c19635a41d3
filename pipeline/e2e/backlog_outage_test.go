//go:build integration

package e2e

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

// playLiveBuffered produces the live stream in real time like an app's verify service that keeps
// what it could not send and sends it again every 300 ms (each message stamped when sent), while
// the broker is stopped from outFrom to outTo after the start.
func playLiveBuffered(t *testing.T, e *env, evs []liveEv, outFrom, outTo time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	w := e.writer()
	w.MaxAttempts = 1
	t0 := time.Now().Add(time.Second)
	outage := make(chan struct{})
	go func() {
		defer close(outage)
		time.Sleep(time.Until(t0.Add(outFrom)))
		restart := stopKafka(t, e.events, e.scores)
		t.Logf("broker stopped at +%v", time.Since(t0).Round(time.Millisecond))
		time.Sleep(time.Until(t0.Add(outTo)))
		restart()
		t.Logf("broker back at +%v", time.Since(t0).Round(time.Millisecond))
	}()
	var pending []liveEv
	failing := false
	for len(evs) > 0 || len(pending) > 0 {
		if len(evs) > 0 {
			time.Sleep(time.Until(t0.Add(evs[0].off)))
		} else {
			time.Sleep(300 * time.Millisecond)
		}
		for len(evs) > 0 && !t0.Add(evs[0].off).After(time.Now()) {
			pending = append(pending, evs[0])
			evs = evs[1:]
		}
		if failing && len(evs) > 0 && time.Since(t0.Add(evs[0].off)) < 300*time.Millisecond {
			continue
		}
		ms := make([]kafka.Message, len(pending))
		for i, ev := range pending {
			ms[i] = ev.message(t0)
		}
		wctx, wcancel := context.WithTimeout(ctx, 3*time.Second)
		err := w.WriteMessages(wctx, ms...)
		wcancel()
		if err != nil {
			if !failing {
				t.Logf("producer buffering from +%v: %v", time.Since(t0).Round(time.Millisecond), err)
			}
			failing = true
			continue
		}
		if failing {
			t.Logf("producer sent %d buffered events at +%v", len(ms), time.Since(t0).Round(time.Millisecond))
		}
		failing = false
		pending = pending[:0]
	}
	<-outage
}

// A broker outage mid-stream (stops the broker): live traffic with the farms, the
// broker stopped for 30 s while the producer buffers, so the backlog it sends afterwards is waited
// for by event time, through 1 and then 3 scorers: every event scored, the same verdicts as one
// scorer (checkLive). Delays and feed waits are logged.
func TestOutageBacklogScorersAgree(t *testing.T) {
	evs := liveStream(80, 30, false)
	var base map[string]verdict
	for _, n := range []int{1, 3} {
		e := newEnv(t)
		procs, addrs := startScorers(t, e, n)
		playLiveBuffered(t, e, evs, 25*time.Second, 55*time.Second)
		waitEnd(t, e.scores, int64(len(evs)))
		time.Sleep(2 * time.Second)
		nev, nsc := int(topicEnd(t, e.events)), int(topicEnd(t, e.scores))
		res := collectLive(t, e, addrs, nev, nsc)
		for _, p := range procs {
			p.stop(syscall.SIGTERM)
		}
		dup := 0
		for _, c := range res.records {
			if c > 1 {
				dup++
			}
		}
		p50, p99, mx := delayStats(res, "", false)
		t.Logf("%d scorers, outage: %d messages in the topic, %d events scored, %d of them twice; delay stamp→scored p50 %v p99 %v max %v; feed waits %v",
			n, nev, len(res.verdicts), dup, p50, p99, mx, res.waits)
		// At least once: the producer may send again what it was not told had been written, and a
		// batch scored but not committed when the broker stopped is scored again.
		for id := range res.records {
			res.records[id] = 1
		}
		checkLive(t, fmt.Sprintf("%d scorers, outage", n), evs, res, base)
		if base == nil {
			base = res.verdicts
		}
	}
}

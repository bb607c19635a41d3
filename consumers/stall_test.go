package consumers

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

// Stalled reports a batch retried for longer than a moment, with its error, and goes back to 0
// once the batch goes through; the outage is logged once when it starts and once when it ends,
// not once per attempt.
func TestLoopReportsAStallAndLogsItOnce(t *testing.T) {
	r := newFakeReader()
	boom := errors.New("write score records: broker away")
	errs := make([]error, 12)
	for i := range errs {
		errs[i] = boom
	}
	h := newRecorder(errs...)
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	l := NewLoop(LoopConfig{Name: "scorer", BackoffMin: time.Millisecond, BackoffMax: 5 * time.Millisecond}, r, h.handle, log, nil)
	if d, why := l.Stalled(); d != 0 || why != "" {
		t.Fatalf("idle loop reports a stall: %s %q", d, why)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	r.push(1)
	sawStall := false
	for i := 0; i < 6; i++ {
		h.next(t)
		if d, why := l.Stalled(); d > 0 && strings.Contains(why, "broker away") {
			sawStall = true
		}
	}
	if !sawStall {
		t.Error("Stalled never reported the batch being retried")
	}
	for i := 0; i < 7; i++ {
		h.next(t) // the remaining failures and the success
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, _, commits := r.snapshot(); len(commits) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the batch was not committed after the failures ended")
		}
		time.Sleep(time.Millisecond)
	}
	if d, why := l.Stalled(); d != 0 {
		t.Errorf("after recovery Stalled = %s %q, want 0", d, why)
	}
	cancel()
	<-done
	out := logs.String()
	if n := strings.Count(out, "failing; retrying"); n != 1 {
		t.Errorf("%d 'failing' lines for one outage of 12 attempts, want 1:\n%s", n, out)
	}
	if n := strings.Count(out, "recovered"); n != 1 {
		t.Errorf("%d 'recovered' lines, want 1:\n%s", n, out)
	}
}

// statsReader is a fakeReader with kafka-go's error counters: while failing, every Stats call
// reports errors (the reader retrying its dials inside FetchMessage).
type statsReader struct {
	*fakeReader
	failing atomic.Bool
	stats   atomic.Int64 // Stats calls
}

func (r *statsReader) Stats() kafka.ReaderStats {
	r.stats.Add(1)
	if r.failing.Load() {
		return kafka.ReaderStats{Errors: 3}
	}
	return kafka.ReaderStats{}
}

// A fetch outage on a topic that stays idle ends once the reader has been quiet for a probe
// (nothing delivered, no error counted); while the reader still counts errors it lasts.
func TestFetchOutageOnAnIdleTopicEnds(t *testing.T) {
	r := &statsReader{fakeReader: newFakeReader()}
	r.failing.Store(true)
	r.fetchErrs = []error{errors.New("dial tcp 127.0.0.1:19092: connect: connection refused")}
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	h := newRecorder()
	l := NewLoop(LoopConfig{Name: "decisions", BackoffMin: time.Millisecond, IdleProbe: 5 * time.Millisecond}, r, h.handle, log, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()

	waitFor(t, "the fetch error to be reported", func() bool { d, _ := l.Stalled(); return d > 0 })
	// The reader keeps counting failures: the outage lasts through several probes.
	waitFor(t, "five probes", func() bool { return r.stats.Load() >= 5 })
	if d, _ := l.Stalled(); d == 0 {
		t.Fatal("the outage ended while the reader still counted errors")
	}
	// Quiet: the outage ends without any message.
	r.failing.Store(false)
	waitFor(t, "the outage to end on the idle topic", func() bool { d, _ := l.Stalled(); return d == 0 })
	if !strings.Contains(logs.String(), "fetch recovered") {
		t.Errorf("no recovery logged:\n%s", logs.String())
	}
	// And the loop still consumes.
	r.push(1)
	h.next(t)
	cancel()
	<-done
}

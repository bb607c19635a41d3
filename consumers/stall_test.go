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
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/riskflow/riskflow/internal/syncbuf"
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

// queueReader is a fakeReader that reports its queue as kafka-go's reader does: the errors and
// messages it holds ready.
type queueReader struct{ *fakeReader }

func (r queueReader) Stats() kafka.ReaderStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return kafka.ReaderStats{QueueLength: int64(len(r.fetchErrs) + len(r.queue))}
}

// Errors a kafka-go reader queued while a partition was away (one per attempt of its own retries,
// the group itself fine) are read one after the other, not one per backoff: the message behind
// them is handled at once, and the outage ends.
func TestQueuedFetchErrorsAreNotWaitedOn(t *testing.T) {
	r := queueReader{newFakeReader()}
	for range 200 {
		r.fetchErrs = append(r.fetchErrs, errors.New("[6] Not Leader For Partition"))
	}
	r.push(1)
	h := newRecorder()
	l := NewLoop(LoopConfig{Name: "decisions", BackoffMin: time.Hour, BackoffMax: time.Hour, IdleProbe: 5 * time.Millisecond}, r, h.handle, quiet(), nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	if b := h.next(t); len(b) != 1 {
		t.Fatalf("batch of %d messages, want the 1 behind the queued errors", len(b))
	}
	waitFor(t, "the outage to end", func() bool { d, _ := l.Stalled(); return d == 0 })
	cancel()
	<-done
}

// churningReader is a group reader whose first fetch fails (a new topic's leader not
// settled yet) and whose error counter never goes quiet, as kafka-go's does on a topic that has
// never held a message: it re-dials each empty partition about once a second, counting an i/o
// timeout each time.
type churningReader struct {
	*GroupReader
	failFirst atomic.Bool
}

func (r *churningReader) FetchMessage(ctx context.Context) (kafka.Message, error) {
	if r.failFirst.CompareAndSwap(true, false) {
		return kafka.Message{}, kafka.NotLeaderForPartition
	}
	return r.GroupReader.FetchMessage(ctx)
}

func (r *churningReader) Stats() kafka.ReaderStats {
	s := r.GroupReader.Stats()
	s.Errors++
	return s
}

// The fetch outage of a loop on a topic that never held a message ends once the broker serves the
// topic again, although the reader's error counter never goes quiet; while the broker is away it
// does not end.
func TestFetchOutageOnANewTopicEnds(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(0), kfake.SeedTopics(2, "decisions"))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	c := Config{Brokers: cluster.ListenAddrs(), DialTimeout: time.Second}
	r := &churningReader{GroupReader: NewGroupReader(c, "decisions", "archivers")}
	r.failFirst.Store(true)
	logs := &syncbuf.Buffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	l := NewLoop(LoopConfig{Name: "decisions", BackoffMin: time.Millisecond, IdleProbe: 50 * time.Millisecond}, r, newRecorder().handle, log, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	defer func() { cancel(); <-done; r.Close() }()

	waitFor(t, "the outage to start", func() bool { return strings.Contains(logs.String(), "fetch failing") })
	waitFor(t, "the outage to end on the new, idle topic", func() bool { return strings.Contains(logs.String(), "fetch recovered") })
	if d, why := l.Stalled(); d != 0 {
		t.Errorf("recovered, yet Stalled = %s %q", d, why)
	}

	// The broker goes away: the outage that follows lasts while it is away.
	r2 := &churningReader{GroupReader: NewGroupReader(c, "decisions", "others")}
	r2.failFirst.Store(true)
	l2 := NewLoop(LoopConfig{Name: "decisions", BackoffMin: time.Millisecond, IdleProbe: 50 * time.Millisecond}, r2, newRecorder().handle, quiet(), nil)
	cluster.Close()
	ctx2, cancel2 := context.WithCancel(context.Background())
	done2 := make(chan error, 1)
	go func() { done2 <- l2.Run(ctx2) }()
	defer func() { cancel2(); <-done2; r2.Close() }()
	waitFor(t, "the outage to start", func() bool { d, _ := l2.Stalled(); return d > 0 })
	time.Sleep(500 * time.Millisecond) // ten probes
	if d, _ := l2.Stalled(); d == 0 {
		t.Error("the outage ended while the broker was away")
	}
}

// A batch whose first attempt hangs until it times out (a server that takes the connection and
// never answers) has been stalled since that attempt began, not since it gave up: otherwise
// /readyz learns of the outage only a whole write timeout after kafka.stall_after.
func TestLoopStallCountsFromTheHungAttempt(t *testing.T) {
	r := newFakeReader()
	var l *Loop
	var hung time.Duration                 // how long the first attempt took before it failed
	stalled := make(chan time.Duration, 1) // Stalled as the second attempt saw it
	calls := 0
	h := func(ctx context.Context, batch []kafka.Message) error {
		calls++
		switch calls {
		case 1:
			start := time.Now()
			time.Sleep(100 * time.Millisecond) // the attempt hangs, then times out
			hung = time.Since(start)
			return errors.New("insert: read: i/o timeout")
		case 2:
			d, _ := l.Stalled()
			stalled <- d
		}
		return nil
	}
	l = NewLoop(LoopConfig{Name: "archiver", BackoffMin: time.Millisecond, BackoffMax: time.Millisecond}, r, h, slog.New(slog.DiscardHandler), nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	defer func() { cancel(); <-done }()
	r.push(1)
	select {
	case d := <-stalled:
		if d < hung {
			t.Errorf("stalled for %v when retrying a batch whose failed attempt alone took %v", d, hung)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the batch was not retried")
	}
}

// A batch write that does not return — a broker that accepts connections and answers nothing,
// which kafka-go's writer gives up on only after ~40 s — is a stall while it hangs, from its start,
// with a reason naming it: the loop read as not stalled (ready, riskflow_loop_stalled_seconds 0)
// until the write failed, and a scorer turned unready 75 s after its broker hung instead of
// kafka.stall_after. Once the write returns the loop is not stalled.
func TestLoopCountsAWriteThatDoesNotReturnAsAStall(t *testing.T) {
	r := newFakeReader()
	st := newStageRecorder()
	hold := make(chan struct{})
	st.hold[0] = hold
	l := NewStagedLoop(fastConfig(1), r, st, quiet(), nil)
	stop := start(t, l)
	defer stop()
	r.push(1)
	<-st.flushStart
	waitFor(t, "the hung write reported as a stall", func() bool {
		d, why := l.Stalled()
		return d > 0 && strings.Contains(why, "batch write has not returned")
	})
	close(hold)
	waitFor(t, "the batch committed", func() bool { return len(committedOffsets(r)) == 1 })
	if d, why := l.Stalled(); d != 0 {
		t.Errorf("after the write returned: stalled %s %q, want 0", d, why)
	}
}

// releasingReader is a fakeReader whose batches are released (their partitions revoked) once
// revoked is set.
type releasingReader struct {
	*fakeReader
	revoked atomic.Bool
}

func (r *releasingReader) Release([]kafka.Message) bool { return r.revoked.Load() }

// A batch whose write kept failing and that is then released — its partitions revoked at a
// rebalance, as the group's session runs out while the broker is away — does not end the stall:
// the loop goes back to a fetch that meets the same broker. The stall read 0 and the log said
// "batch write recovered" (held-out run: a scorer's stall started over 44 s into its broker's
// hang, and it turned unready 75 s after it instead of kafka.stall_after). The next batch that
// goes through ends it.
func TestLoopStallGoesOnWhenAFailingBatchIsReleased(t *testing.T) {
	r := &releasingReader{fakeReader: newFakeReader()}
	st := newStageRecorder()
	boom := errors.New("write score records: broker away")
	for range 1000 {
		st.flushErrs[0] = append(st.flushErrs[0], boom)
	}
	logs := &syncbuf.Buffer{}
	l := NewStagedLoop(fastConfig(1), r, st, slog.New(slog.NewTextHandler(logs, nil)), nil)
	stop := start(t, l)
	defer stop()
	r.push(1)
	waitFor(t, "the failing write reported as a stall", func() bool { d, _ := l.Stalled(); return d > 0 })
	r.revoked.Store(true)
	waitFor(t, "the batch released", func() bool { return strings.Contains(logs.String(), "partitions were revoked") })
	if d, why := l.Stalled(); d == 0 {
		t.Errorf("after the failing batch was released: stalled %s %q, want the stall going on", d, why)
	}
	if out := logs.String(); strings.Contains(out, "batch write recovered") {
		t.Errorf("the log says the write recovered; it was released:\n%s", out)
	}
	r.revoked.Store(false)
	r.push(1)
	waitFor(t, "the next batch committed", func() bool { return len(committedOffsets(r.fakeReader)) == 1 })
	if d, why := l.Stalled(); d != 0 {
		t.Errorf("after the next batch went through: stalled %s %q, want 0", d, why)
	}
}

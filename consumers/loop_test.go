package consumers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

// fakeReader is an in-memory consumer-group reader: FetchMessage hands out queued messages in order
// and blocks (honouring ctx) when there are none; CommitMessages records what was committed.
type fakeReader struct {
	mu         sync.Mutex
	queue      []kafka.Message
	wake       chan struct{} // closed and replaced when messages are pushed
	calls      int           // FetchMessage calls
	delivered  int           // messages handed out
	fetchErrs  []error       // returned, in order, by the next FetchMessage calls
	commitErrs int           // fail this many CommitMessages calls
	commitTry  int
	commits    [][]kafka.Message
}

func newFakeReader() *fakeReader { return &fakeReader{wake: make(chan struct{})} }

// push queues n messages with the next offsets of partition 0.
func (r *fakeReader) push(n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := 0; i < n; i++ {
		off := int64(r.delivered + len(r.queue))
		r.queue = append(r.queue, kafka.Message{Topic: "t", Partition: 0, Offset: off, Value: []byte(fmt.Sprint(off))})
	}
	close(r.wake)
	r.wake = make(chan struct{})
}

func (r *fakeReader) FetchMessage(ctx context.Context) (kafka.Message, error) {
	for {
		r.mu.Lock()
		r.calls++
		if len(r.fetchErrs) > 0 {
			err := r.fetchErrs[0]
			r.fetchErrs = r.fetchErrs[1:]
			r.mu.Unlock()
			return kafka.Message{}, err
		}
		if len(r.queue) > 0 {
			m := r.queue[0]
			r.queue = r.queue[1:]
			r.delivered++
			r.mu.Unlock()
			return m, nil
		}
		wake := r.wake
		r.mu.Unlock()
		select {
		case <-ctx.Done():
			return kafka.Message{}, ctx.Err()
		case <-wake:
		}
	}
}

func (r *fakeReader) CommitMessages(ctx context.Context, msgs ...kafka.Message) error {
	if err := ctx.Err(); err != nil {
		return err // as kafka-go may, for a cancelled context
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.commitTry++
	if r.commitErrs > 0 {
		r.commitErrs--
		return errors.New("commit: coordinator not available")
	}
	r.commits = append(r.commits, append([]kafka.Message(nil), msgs...))
	return nil
}

func (r *fakeReader) Close() error { return nil }

func (r *fakeReader) snapshot() (calls, delivered int, commits [][]kafka.Message) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls, r.delivered, append([][]kafka.Message(nil), r.commits...)
}

// recorder is a handler that records every batch it is offered (copied: the loop reuses its slice)
// and answers with the next error of errs (nil once they run out).
type recorder struct {
	mu      sync.Mutex
	errs    []error
	batches [][]kafka.Message
	seen    chan []kafka.Message
	during  func() // called inside the handler, before it answers
}

func newRecorder(errs ...error) *recorder {
	return &recorder{errs: errs, seen: make(chan []kafka.Message, 100)}
}

func (h *recorder) handle(ctx context.Context, batch []kafka.Message) error {
	cp := append([]kafka.Message(nil), batch...)
	h.mu.Lock()
	h.batches = append(h.batches, cp)
	var err error
	if len(h.errs) > 0 {
		err, h.errs = h.errs[0], h.errs[1:]
	}
	during := h.during
	h.mu.Unlock()
	if during != nil {
		during()
	}
	h.seen <- cp
	return err
}

// next waits for the next batch the handler was offered.
func (h *recorder) next(t *testing.T) []kafka.Message {
	t.Helper()
	select {
	case b := <-h.seen:
		return b
	case <-time.After(10 * time.Second):
		t.Fatal("the handler was not called")
		return nil
	}
}

type countingObserver struct {
	mu      sync.Mutex
	batches []int
	retries int
}

func (o *countingObserver) Batch(_ string, size int, _ time.Duration) {
	o.mu.Lock()
	o.batches = append(o.batches, size)
	o.mu.Unlock()
}

func (o *countingObserver) Retry(string, error) {
	o.mu.Lock()
	o.retries++
	o.mu.Unlock()
}

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

func fastConfig(maxBatch int) LoopConfig {
	return LoopConfig{Name: "test", MaxBatch: maxBatch, MaxWait: 5 * time.Millisecond, BackoffMin: time.Millisecond, BackoffMax: 2 * time.Millisecond}
}

// start runs the loop in the background; stop cancels it and returns Run's result.
func start(t *testing.T, l *Loop) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	return func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(10 * time.Second):
			t.Fatal("Run did not return after cancel")
			return nil
		}
	}
}

// waitFor polls cond until it holds (bounded, not a timing assertion).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func offsets(ms []kafka.Message) []int64 {
	out := make([]int64, len(ms))
	for i, m := range ms {
		out[i] = m.Offset
	}
	return out
}

func sameOffsets(a, b []kafka.Message) bool {
	return fmt.Sprint(offsets(a)) == fmt.Sprint(offsets(b))
}

func TestLoopCommitsAfterHandlerSucceeded(t *testing.T) {
	r := newFakeReader()
	r.push(3)
	h := newRecorder()
	h.during = func() {
		// While the handler runs, nothing of its batch is committed.
		if _, _, commits := r.snapshot(); len(commits) != 0 {
			t.Errorf("committed %v before the handler returned", commits)
		}
	}
	obs := &countingObserver{}
	stop := start(t, NewLoop(fastConfig(10), r, h.handle, quiet(), obs))
	b := h.next(t)
	waitFor(t, "the commit", func() bool { _, _, c := r.snapshot(); return len(c) == 1 })
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	_, _, commits := r.snapshot()
	if len(commits) != 1 || !sameOffsets(commits[0], b) {
		t.Errorf("commits %v, want exactly the handled batch %v", commits, offsets(b))
	}
	if fmt.Sprint(offsets(b)) != "[0 1 2]" {
		t.Errorf("batch %v, want offsets 0..2 in order", offsets(b))
	}
	obs.mu.Lock()
	defer obs.mu.Unlock()
	if len(obs.batches) != 1 || obs.batches[0] != 3 || obs.retries != 0 {
		t.Errorf("observer saw batches %v, retries %d", obs.batches, obs.retries)
	}
}

func TestLoopRetriesTheSameBatch(t *testing.T) {
	r := newFakeReader()
	r.push(4)
	boom := errors.New("clickhouse: connection refused")
	h := newRecorder(boom, boom, boom)
	var callsAtFirst int
	attempts := 0
	h.during = func() {
		attempts++
		calls, _, commits := r.snapshot()
		if attempts == 1 {
			callsAtFirst = calls
		} else if calls != callsAtFirst {
			t.Errorf("attempt %d: the loop fetched again (%d FetchMessage calls, %d at the first attempt)", attempts, calls, callsAtFirst)
		}
		if len(commits) != 0 {
			t.Errorf("attempt %d: committed %v while the batch was failing", attempts, commits)
		}
	}
	obs := &countingObserver{}
	stop := start(t, NewLoop(fastConfig(10), r, h.handle, quiet(), obs))
	first := h.next(t)
	for i := 2; i <= 4; i++ {
		if b := h.next(t); !sameOffsets(b, first) {
			t.Fatalf("attempt %d offered %v, want the same batch %v", i, offsets(b), offsets(first))
		}
	}
	waitFor(t, "the commit", func() bool { _, _, c := r.snapshot(); return len(c) == 1 })
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	_, delivered, commits := r.snapshot()
	if delivered != 4 {
		t.Errorf("%d messages fetched, want 4 (each once)", delivered)
	}
	if !sameOffsets(commits[0], first) {
		t.Errorf("committed %v, want %v", offsets(commits[0]), offsets(first))
	}
	obs.mu.Lock()
	defer obs.mu.Unlock()
	if obs.retries != 3 || len(obs.batches) != 1 {
		t.Errorf("observer: %d retries, batches %v; want 3 retries and one batch", obs.retries, obs.batches)
	}
}

func TestLoopRespectsMaxBatch(t *testing.T) {
	r := newFakeReader()
	r.push(25)
	h := newRecorder()
	stop := start(t, NewLoop(fastConfig(10), r, h.handle, quiet(), nil))
	var got [][]kafka.Message
	total := 0
	for total < 25 {
		b := h.next(t)
		if len(b) > 10 {
			t.Fatalf("batch of %d, MaxBatch is 10", len(b))
		}
		got = append(got, b)
		total += len(b)
	}
	waitFor(t, "all commits", func() bool { _, _, c := r.snapshot(); return len(c) == len(got) })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if len(got[0]) != 10 {
		t.Errorf("first batch %d messages; 25 were waiting, want a full batch of 10", len(got[0]))
	}
	var all []int64
	for _, b := range got {
		all = append(all, offsets(b)...)
	}
	for i, o := range all {
		if o != int64(i) {
			t.Fatalf("offsets %v: not every message exactly once, in order", all)
		}
	}
	_, _, commits := r.snapshot()
	for i := range got {
		if !sameOffsets(commits[i], got[i]) {
			t.Errorf("commit %d is %v, want batch %v", i, offsets(commits[i]), offsets(got[i]))
		}
	}
}

func TestLoopMaxBatchOne(t *testing.T) {
	r := newFakeReader()
	r.push(3)
	h := newRecorder()
	stop := start(t, NewLoop(fastConfig(1), r, h.handle, quiet(), nil))
	for i := 0; i < 3; i++ {
		if b := h.next(t); len(b) != 1 || b[0].Offset != int64(i) {
			t.Fatalf("batch %d: %v", i, offsets(b))
		}
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

func TestLoopHandsOverPartialBatchAfterMaxWait(t *testing.T) {
	r := newFakeReader()
	r.push(3)
	h := newRecorder()
	// MaxBatch is far away and no more messages come: the 3 must be handed over when MaxWait ends.
	stop := start(t, NewLoop(fastConfig(1000), r, h.handle, quiet(), nil))
	if b := h.next(t); len(b) != 3 {
		t.Fatalf("partial batch %v, want the 3 waiting messages", offsets(b))
	}
	waitFor(t, "the commit", func() bool { _, _, c := r.snapshot(); return len(c) == 1 })
	// Later messages form the next batch.
	r.push(2)
	if b := h.next(t); fmt.Sprint(offsets(b)) != "[3 4]" {
		t.Fatalf("second batch %v, want [3 4]", offsets(b))
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

func TestLoopCancelDoesNotCommitUnhandledBatch(t *testing.T) {
	r := newFakeReader()
	r.push(2)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	handlerDone := make(chan error, 1)
	h := func(hctx context.Context, batch []kafka.Message) error {
		cancel() // shutdown arrives while the batch is in flight
		<-hctx.Done()
		err := fmt.Errorf("write: %w", hctx.Err())
		handlerDone <- err
		return err
	}
	err := NewLoop(fastConfig(10), r, h, quiet(), nil).Run(ctx)
	if err != nil {
		t.Fatalf("Run after cancel: %v, want nil", err)
	}
	<-handlerDone
	if _, _, commits := r.snapshot(); len(commits) != 0 {
		t.Errorf("committed %v after cancellation; the batch was never handled", commits)
	}
}

func TestLoopCancelDuringBackoff(t *testing.T) {
	r := newFakeReader()
	r.push(1)
	h := newRecorder(errors.New("down"), errors.New("down"), errors.New("down"))
	l := NewLoop(LoopConfig{Name: "t", MaxBatch: 10, MaxWait: time.Millisecond, BackoffMin: time.Hour, BackoffMax: time.Hour}, r, h.handle, quiet(), nil)
	stop := start(t, l)
	h.next(t) // first attempt failed; the loop now waits an hour before retrying
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if _, _, commits := r.snapshot(); len(commits) != 0 {
		t.Errorf("committed %v", commits)
	}
}

func TestLoopCancelWhileIdle(t *testing.T) {
	r := newFakeReader()
	h := newRecorder()
	stop := start(t, NewLoop(fastConfig(10), r, h.handle, quiet(), nil))
	waitFor(t, "a fetch", func() bool { c, _, _ := r.snapshot(); return c > 0 })
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
}

func TestLoopSurvivesCommitFailure(t *testing.T) {
	r := newFakeReader()
	r.commitErrs = 3 // every attempt for the first batch fails
	r.push(2)
	h := newRecorder()
	stop := start(t, NewLoop(fastConfig(10), r, h.handle, quiet(), nil))
	first := h.next(t)
	waitFor(t, "the commit attempts", func() bool { r.mu.Lock(); defer r.mu.Unlock(); return r.commitTry >= 3 })
	r.push(2)
	second := h.next(t)
	waitFor(t, "the second commit", func() bool { _, _, c := r.snapshot(); return len(c) == 1 })
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if sameOffsets(first, second) {
		t.Fatalf("the loop re-offered %v", offsets(first))
	}
	_, _, commits := r.snapshot()
	// Kafka offsets are positions: committing the second batch covers the first.
	if got := commits[0][len(commits[0])-1].Offset; got != 3 {
		t.Errorf("last committed offset %d, want 3", got)
	}
}

func TestLoopCommitRetriedOnce(t *testing.T) {
	r := newFakeReader()
	r.commitErrs = 1
	r.push(1)
	h := newRecorder()
	stop := start(t, NewLoop(fastConfig(10), r, h.handle, quiet(), nil))
	b := h.next(t)
	waitFor(t, "the commit", func() bool { _, _, c := r.snapshot(); return len(c) == 1 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	_, _, commits := r.snapshot()
	if !sameOffsets(commits[0], b) {
		t.Errorf("committed %v, want %v", offsets(commits[0]), offsets(b))
	}
}

func TestLoopRetriesTransientFetchErrors(t *testing.T) {
	r := newFakeReader()
	r.fetchErrs = []error{errors.New("[15] Group Coordinator Not Available"), errors.New("dial tcp: connection refused")}
	r.push(2)
	h := newRecorder()
	stop := start(t, NewLoop(fastConfig(10), r, h.handle, quiet(), nil))
	if b := h.next(t); len(b) != 2 {
		t.Fatalf("batch %v after fetch errors, want both messages", offsets(b))
	}
	waitFor(t, "the commit", func() bool { _, _, c := r.snapshot(); return len(c) == 1 })
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
}

// A connection the broker (or a proxy in front of it) closes is an error wrapping io.EOF, from the
// group's coordinator as from a partition: retried, never taken for a closed reader (it ended the
// loop, and took the node down, while a port accepted connections and closed them).
func TestLoopRetriesErrorsWrappingEOF(t *testing.T) {
	r := newFakeReader()
	r.fetchErrs = []error{fmt.Errorf("consumer group g: %w", io.EOF), fmt.Errorf("partition 3 of t: %w", io.ErrUnexpectedEOF),
		fmt.Errorf("consumer group g: %w", io.EOF)}
	r.push(2)
	h := newRecorder()
	stop := start(t, NewLoop(fastConfig(10), r, h.handle, quiet(), nil))
	if b := h.next(t); len(b) != 2 {
		t.Fatalf("batch %v after fetch errors wrapping io.EOF, want both messages", offsets(b))
	}
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
}

func TestLoopClosedReaderEndsRun(t *testing.T) {
	r := newFakeReader()
	r.fetchErrs = []error{io.EOF}
	h := newRecorder()
	err := NewLoop(fastConfig(10), r, h.handle, quiet(), nil).Run(context.Background())
	if !errors.Is(err, io.EOF) {
		t.Fatalf("Run on a closed reader: %v, want an error wrapping io.EOF", err)
	}
}

func TestLoopConfigDefaults(t *testing.T) {
	c := LoopConfig{}.withDefaults()
	if c.MaxBatch != 500 || c.MaxWait != 5*time.Millisecond || c.BackoffMin != 100*time.Millisecond || c.BackoffMax != 5*time.Second {
		t.Errorf("defaults %+v", c)
	}
}

// A batch stops growing at MaxBatchBytes as well as at MaxBatch: large records do not take
// MaxBatch times their size in memory. A message larger than the bound still makes a batch.
func TestLoopBatchBoundedByBytes(t *testing.T) {
	r := newFakeReader()
	r.mu.Lock()
	for i, size := range []int{400, 400, 400, 400, 400, 2000, 10} {
		r.queue = append(r.queue, kafka.Message{Topic: "t", Offset: int64(i), Value: make([]byte, size)})
	}
	r.mu.Unlock()
	h := newRecorder()
	l := NewLoop(LoopConfig{Name: "archiver", MaxBatch: 100, MaxBatchBytes: 1000, MaxWait: time.Second}, r, h.handle, slog.New(slog.DiscardHandler), nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	var got [][]int64
	for n := 0; n < 7; {
		b := h.next(t)
		got = append(got, offsets(b))
		n += len(b)
	}
	cancel()
	<-done
	want := [][]int64{{0, 1, 2}, {3, 4, 5}, {6}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("batches %v, want %v (1,000 bytes at most, after the message that reaches it)", got, want)
	}
}

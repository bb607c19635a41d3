package consumers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

// stageRecorder is a Stage whose prepares and flushes are recorded and can be held or failed.
type stageRecorder struct {
	mu          sync.Mutex
	prepared    [][]int64 // offsets of each Prepare call, in order
	flushed     [][]int64 // offsets of each successful flush
	prepareErrs []error
	flushErrs   map[int64][]error // by first offset of a batch: errors of its next flushes
	hold        map[int64]chan struct{}
	flushStart  chan []int64
}

func newStageRecorder() *stageRecorder {
	return &stageRecorder{flushErrs: map[int64][]error{}, hold: map[int64]chan struct{}{}, flushStart: make(chan []int64, 100)}
}

func (s *stageRecorder) Prepare(ctx context.Context, batch []kafka.Message) (Flush, error) {
	offs := offsets(batch)
	s.mu.Lock()
	s.prepared = append(s.prepared, offs)
	var err error
	if len(s.prepareErrs) > 0 {
		err, s.prepareErrs = s.prepareErrs[0], s.prepareErrs[1:]
	}
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context) error {
		s.flushStart <- offs
		s.mu.Lock()
		hold := s.hold[offs[0]]
		var err error
		if errs := s.flushErrs[offs[0]]; len(errs) > 0 {
			err, s.flushErrs[offs[0]] = errs[0], errs[1:]
		}
		s.mu.Unlock()
		if hold != nil {
			select {
			case <-hold:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if err != nil {
			return err
		}
		s.mu.Lock()
		s.flushed = append(s.flushed, offs)
		s.mu.Unlock()
		return nil
	}, nil
}

func (s *stageRecorder) snapshot() (prepared, flushed [][]int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]int64(nil), s.prepared...), append([][]int64(nil), s.flushed...)
}

func committedOffsets(r *fakeReader) []string {
	_, _, commits := r.snapshot()
	out := make([]string, len(commits))
	for i, c := range commits {
		out[i] = fmt.Sprint(offsets(c))
	}
	return out
}

// The next batch is prepared while the previous one is still flushing, and nothing is committed
// before its own flush succeeded.
func TestStagedLoopOverlapsFlushWithNextPrepare(t *testing.T) {
	r := newFakeReader()
	st := newStageRecorder()
	release := make(chan struct{})
	st.hold[0] = release // batch [0 1 2] flushes only when released
	stop := start(t, NewStagedLoop(fastConfig(3), r, st, quiet(), nil))
	r.push(3)
	<-st.flushStart // batch 1 is flushing, and held
	r.push(3)
	waitFor(t, "batch 2 prepared while batch 1 flushes", func() bool { p, _ := st.snapshot(); return len(p) == 2 })
	if c := committedOffsets(r); len(c) != 0 {
		t.Fatalf("committed %v before any flush finished", c)
	}
	close(release)
	waitFor(t, "both commits", func() bool { return len(committedOffsets(r)) == 2 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(committedOffsets(r)); got != "[[0 1 2] [3 4 5]]" {
		t.Errorf("commits %s, want both batches in order", got)
	}
}

// A failing flush is retried; the batch after it is neither flushed nor committed before it.
func TestStagedLoopRetriesFlushAndKeepsOrder(t *testing.T) {
	r := newFakeReader()
	st := newStageRecorder()
	boom := errors.New("risk.scores: not enough replicas")
	st.flushErrs[0] = []error{boom, boom, boom}
	obs := &countingObserver{}
	r.push(4) // two batches: the second is prepared while the first keeps failing
	release := make(chan struct{})
	st.hold[2] = release // and the second's flush waits until the first was committed
	stop := start(t, NewStagedLoop(fastConfig(2), r, st, quiet(), obs))
	for range 4 { // three failures, then success
		<-st.flushStart
	}
	waitFor(t, "the first commit", func() bool { return len(committedOffsets(r)) >= 1 })
	if c := committedOffsets(r); len(c) != 1 || c[0] != "[0 1]" {
		t.Fatalf("commits %v, want the first batch alone", c)
	}
	close(release)
	waitFor(t, "both commits", func() bool { return len(committedOffsets(r)) == 2 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	prepared, flushed := st.snapshot()
	if fmt.Sprint(prepared) != "[[0 1] [2 3]]" {
		t.Errorf("prepared %v: a flush retry must not prepare its batch again", prepared)
	}
	if fmt.Sprint(flushed) != "[[0 1] [2 3]]" || fmt.Sprint(committedOffsets(r)) != "[[0 1] [2 3]]" {
		t.Errorf("flushed %v, committed %v; want both in order", flushed, committedOffsets(r))
	}
	obs.mu.Lock()
	defer obs.mu.Unlock()
	if obs.retries != 3 {
		t.Errorf("observer saw %d retries, want 3", obs.retries)
	}
}

// A failing Prepare is retried with the same batch, nothing fetched meanwhile.
func TestStagedLoopRetriesPrepare(t *testing.T) {
	r := newFakeReader()
	st := newStageRecorder()
	st.prepareErrs = []error{errors.New("no rule pack loaded"), errors.New("no rule pack loaded")}
	stop := start(t, NewStagedLoop(fastConfig(5), r, st, quiet(), nil))
	r.push(3)
	waitFor(t, "the commit", func() bool { return len(committedOffsets(r)) == 1 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	prepared, _ := st.snapshot()
	if fmt.Sprint(prepared) != "[[0 1 2] [0 1 2] [0 1 2]]" {
		t.Errorf("prepared %v, want the same batch three times", prepared)
	}
	if _, delivered, _ := r.snapshot(); delivered != 3 {
		t.Errorf("%d messages fetched, want 3", delivered)
	}
}

// Cancelling while a flush hangs commits nothing of it, and Run returns.
func TestStagedLoopCancelDuringFlush(t *testing.T) {
	r := newFakeReader()
	st := newStageRecorder()
	st.hold[0] = make(chan struct{}) // never released
	stop := start(t, NewStagedLoop(fastConfig(3), r, st, quiet(), nil))
	r.push(6)
	<-st.flushStart
	waitFor(t, "the second batch prepared", func() bool { p, _ := st.snapshot(); return len(p) == 2 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond) // a late commit would show now
	if c := committedOffsets(r); len(c) != 0 {
		t.Errorf("committed %v: neither batch was flushed", c)
	}
}

// A closed reader ends Run even while a flush hangs (a broker that does not answer): nothing of
// it is committed.
func TestStagedLoopClosedReaderEndsRunDuringHungFlush(t *testing.T) {
	r := newFakeReader()
	st := newStageRecorder()
	st.hold[0] = make(chan struct{}) // never released: the flush ends only when cancelled
	r.push(2)
	done := make(chan error, 1)
	go func() { done <- NewStagedLoop(fastConfig(2), r, st, quiet(), nil).Run(context.Background()) }()
	<-st.flushStart // the first batch is flushing, and hangs
	r.mu.Lock()
	r.fetchErrs = append(r.fetchErrs, io.EOF)
	r.mu.Unlock()
	r.push(0) // wake the fetch
	select {
	case err := <-done:
		if !errors.Is(err, io.EOF) {
			t.Errorf("Run: %v, want the closed reader's io.EOF", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after the reader closed")
	}
	if c := committedOffsets(r); len(c) != 0 {
		t.Errorf("committed %v: the flush never succeeded", c)
	}
}

// A flush that completes while shutdown begins is still committed: the batch is done, and a
// commit spares its redelivery.
func TestStagedLoopCommitsAFinishedFlushAtShutdown(t *testing.T) {
	r := newFakeReader()
	st := newStageRecorder()
	release := make(chan struct{})
	st.hold[0] = release
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	loop := NewStagedLoop(fastConfig(3), r, st, quiet(), nil)
	loop.stage = flushIgnoringCancel{st}
	go func() { done <- loop.Run(ctx) }()
	r.push(3)
	<-st.flushStart
	cancel()
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(committedOffsets(r)); got != "[[0 1 2]]" {
		t.Errorf("commits %s, want the flushed batch", got)
	}
}

// flushIgnoringCancel flushes with a context that shutdown does not cancel (a write already on
// the wire completes).
type flushIgnoringCancel struct{ st *stageRecorder }

func (f flushIgnoringCancel) Prepare(ctx context.Context, batch []kafka.Message) (Flush, error) {
	flush, err := f.st.Prepare(ctx, batch)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context) error { return flush(context.WithoutCancel(ctx)) }, nil
}

// arrayStage records where each batch's messages lie and checks, when the batch is flushed, that
// they are still the ones it prepared.
type arrayStage struct {
	mu     sync.Mutex
	arrays []*kafka.Message // &batch[0] of each prepared batch
	bad    []string
}

func (s *arrayStage) Prepare(_ context.Context, batch []kafka.Message) (Flush, error) {
	want := fmt.Sprint(offsets(batch))
	s.mu.Lock()
	s.arrays = append(s.arrays, &batch[0])
	s.mu.Unlock()
	return func(context.Context) error {
		if got := fmt.Sprint(offsets(batch)); got != want {
			s.mu.Lock()
			s.bad = append(s.bad, fmt.Sprintf("prepared %s, flushed %s", want, got))
			s.mu.Unlock()
		}
		return nil
	}, nil
}

// Committed batches' arrays are reused for later batches, never one still being flushed.
func TestStagedLoopReusesCommittedBatchArrays(t *testing.T) {
	r := newFakeReader()
	st := &arrayStage{}
	stop := start(t, NewStagedLoop(fastConfig(3), r, st, quiet(), nil))
	for i := 1; i <= 4; i++ {
		r.push(3) // one batch at a time: each is committed before the next arrives
		waitFor(t, fmt.Sprintf("commit %d", i), func() bool { return len(committedOffsets(r)) == i })
	}
	// Then batches back to back, the next fetched while the last one flushes.
	r.push(30)
	waitFor(t, "all commits", func() bool { return len(committedOffsets(r)) == 14 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if len(st.bad) > 0 {
		t.Errorf("batches changed before their flush: %v", st.bad)
	}
	// The stage holds on to every array it saw, so none was freed and allocated again: an array
	// seen twice was reused. At most three are in use at once (one flushing, one waiting for
	// the flusher, one being fetched).
	distinct := map[*kafka.Message]bool{}
	for _, a := range st.arrays {
		distinct[a] = true
	}
	if len(st.arrays) != 14 || len(distinct) > 3 {
		t.Errorf("%d batches in %d arrays, want 14 batches in at most 3", len(st.arrays), len(distinct))
	}
	for i, c := range committedOffsets(r) {
		if want := fmt.Sprint([]int64{int64(3 * i), int64(3*i + 1), int64(3*i + 2)}); c != want {
			t.Errorf("commit %d: %s, want %s", i, c, want)
		}
	}
}

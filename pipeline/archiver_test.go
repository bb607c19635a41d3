package pipeline

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/riskflow/riskflow/consumers"
	"github.com/riskflow/riskflow/schemas"
)

func scoreMsg(t *testing.T, p int, off int64, id string) kafka.Message {
	return kafka.Message{Topic: "risk.scores", Partition: p, Offset: off, Value: scoreJSON(t, id, 0)}
}

// manyRejected is a sink error naming several records at once, as chsink.InvalidRecordsError does.
type manyRejected []int

func (m manyRejected) Error() string { return fmt.Sprintf("%d records cannot be stored", len(m)) }
func (m manyRejected) Rejections() []error {
	out := make([]error, len(m))
	for i, idx := range m {
		out[i] = rejected{idx}
	}
	return out
}

// scriptSink stores what it is given, or fails: refuses records whose id is in bad (all at once,
// like chsink), and fails with errs[0], errs[1], … on its first calls.
type scriptSink struct {
	mu     sync.Mutex
	bad    map[string]bool
	errs   []error
	calls  []int // records offered per call
	stored []string
	block  func(recs []schemas.ScoreRecord) // called first, outside the lock
}

func (s *scriptSink) WriteBatch(ctx context.Context, recs []schemas.ScoreRecord) error {
	if s.block != nil {
		s.block(recs)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, len(recs))
	var refuse manyRejected
	for i, r := range recs {
		if s.bad[r.EventID] {
			refuse = append(refuse, i)
		}
	}
	if len(refuse) > 0 {
		return refuse
	}
	if len(s.errs) > 0 {
		err := s.errs[0]
		s.errs = s.errs[1:]
		return err
	}
	for _, r := range recs {
		s.stored = append(s.stored, r.EventID)
	}
	return nil
}

func (s *scriptSink) snapshot() (calls []int, stored []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int(nil), s.calls...), append([]string(nil), s.stored...)
}

func runStaged(t *testing.T, r *fakeReader, st consumers.Stage) (stop func()) {
	t.Helper()
	loop := consumers.NewStagedLoop(consumers.LoopConfig{Name: "archiver", MaxBatch: 4, MaxWait: time.Millisecond, BackoffMin: time.Millisecond, BackoffMax: 5 * time.Millisecond}, r, st, quiet(), nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- loop.Run(ctx) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
}

// In the staged loop a failing ClickHouse write is retried on its own: the batch is not decoded
// again, its dead letters are not written again, and nothing is committed or counted before the
// write succeeds.
func TestArchiveStageStagedRetriesOnlyTheWrite(t *testing.T) {
	boom := errors.New("clickhouse: connection refused")
	sink := &scriptSink{errs: []error{boom, boom, boom}}
	dlq, obs := &fakeWriter{}, newCountObs()
	stage := &ArchiveStage{Sink: sink, DLQ: dlq, Log: quiet(), Obs: obs}
	r := &fakeReader{queue: []kafka.Message{scoreMsg(t, 0, 1, "e1"), {Topic: "risk.scores", Offset: 2, Value: []byte("not json")}, scoreMsg(t, 0, 3, "e2")}}
	stop := runStaged(t, r, stage)
	waitFor(t, "the commit", func() bool { return r.committed() == 1 })
	stop()
	calls, stored := sink.snapshot()
	if fmt.Sprint(calls) != "[2 2 2 2]" || fmt.Sprint(stored) != "[e1 e2]" {
		t.Errorf("sink calls %v stored %v; want 3 failures, then both records", calls, stored)
	}
	if dlq.calls != 1 || len(dlq.written()) != 1 {
		t.Errorf("dead-letter topic: %d writes, %d messages; want the undecodable record written once", dlq.calls, len(dlq.written()))
	}
	if obs.archived != 2 || obs.dead["decode_score_record"] != 1 {
		t.Errorf("observer: archived %d, dead %v; want each counted once", obs.archived, obs.dead)
	}
}

// Records the sink refuses cost one more write of the rest, however many there are; each is
// dead-lettered once, with its own error, and the breaker does not count them against the sink.
func TestArchiveStageRejectedRecordsCostOneRetry(t *testing.T) {
	sink := &scriptSink{bad: map[string]bool{"e2": true, "e5": true, "e7": true}}
	dlq, obs := &fakeWriter{}, newCountObs()
	stage := &ArchiveStage{Sink: NewBreakerSink("t", sink, BreakerConfig{Failures: 1}, quiet(), nil), DLQ: dlq, Log: quiet(), Obs: obs}
	var batch []kafka.Message
	for i := 1; i <= 8; i++ {
		batch = append(batch, scoreMsg(t, 1, int64(i), fmt.Sprintf("e%d", i)))
	}
	before := slices.Clone(batch)
	if err := stage.Handle(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	for i := range batch {
		if batch[i].Offset != before[i].Offset || string(batch[i].Value) != string(before[i].Value) {
			t.Fatalf("the batch (what the loop commits) was changed at %d", i)
		}
	}
	calls, stored := sink.snapshot()
	if fmt.Sprint(calls) != "[8 5]" {
		t.Errorf("sink calls %v, want [8 5]: the whole batch, then the rest once", calls)
	}
	if got := strings.Join(stored, ","); got != "e1,e3,e4,e6,e8" {
		t.Errorf("stored %s", got)
	}
	dl := dlq.written()
	if len(dl) != 3 || dlq.calls != 1 {
		t.Fatalf("%d dead letters in %d writes, want 3 in 1", len(dl), dlq.calls)
	}
	for i, off := range []string{"2", "5", "7"} {
		if got, _ := header(dl[i], HeaderOffset); got != off {
			t.Errorf("dead letter %d from offset %s, want %s", i, got, off)
		}
		if got, _ := header(dl[i], HeaderError); got != "cannot be stored" {
			t.Errorf("dead letter %d error %q, want the record's own", i, got)
		}
	}
	if obs.archived != 5 || obs.dead["unstorable_record"] != 3 {
		t.Errorf("observer: archived %d dead %v", obs.archived, obs.dead)
	}
	if stage.Sink.(*BreakerSink).State() != "closed" {
		t.Error("refused records tripped the breaker")
	}
}

// A flush that fails after the sink refused records, and again when it writes the rest, is
// retried without dead-lettering those records twice.
func TestArchiveFlushRetriesAfterRejections(t *testing.T) {
	boom := errors.New("clickhouse: timeout")
	sink := &scriptSink{bad: map[string]bool{"e2": true}, errs: []error{boom}}
	dlq := &fakeWriter{err: boom}
	stage := &ArchiveStage{Sink: sink, DLQ: dlq, Log: quiet()}
	batch := []kafka.Message{scoreMsg(t, 0, 1, "e1"), scoreMsg(t, 0, 2, "e2"), scoreMsg(t, 0, 3, "e3")}
	flush, err := stage.Prepare(context.Background(), batch)
	if err != nil {
		t.Fatal(err)
	}
	// 1: the sink refuses e2; its dead letter cannot be written.
	if err := flush(context.Background()); !errors.Is(err, boom) {
		t.Fatalf("flush 1: %v", err)
	}
	dlq.fail(nil)
	// 2: the dead letter goes out; the rest fails (ClickHouse timeout).
	if err := flush(context.Background()); !errors.Is(err, boom) {
		t.Fatalf("flush 2: %v", err)
	}
	// 3: the rest is stored.
	if err := flush(context.Background()); err != nil {
		t.Fatalf("flush 3: %v", err)
	}
	// 4: nothing is left to do.
	if err := flush(context.Background()); err != nil {
		t.Fatalf("flush 4: %v", err)
	}
	calls, stored := sink.snapshot()
	if fmt.Sprint(calls) != "[3 2 2]" || fmt.Sprint(stored) != "[e1 e3]" {
		t.Errorf("sink calls %v stored %v", calls, stored)
	}
	if n := len(dlq.written()); n != 1 {
		t.Errorf("%d dead letters written, want 1", n)
	}
}

// Dead letters that were acknowledged are not written again when others of the same flush failed.
func TestArchiveFlushWritesDeadLettersOnce(t *testing.T) {
	dlq := &partialWriter{failFirst: 1}
	sink := &scriptSink{}
	stage := &ArchiveStage{Sink: sink, DLQ: dlq, Log: quiet()}
	batch := []kafka.Message{{Offset: 1, Value: []byte("x1")}, {Offset: 2, Value: []byte("x2")}, {Offset: 3, Value: []byte("x3")}, scoreMsg(t, 0, 4, "e4")}
	flush, _ := stage.Prepare(context.Background(), batch)
	if err := flush(context.Background()); err == nil {
		t.Fatal("flush succeeded with a dead letter unwritten")
	}
	if calls, _ := sink.snapshot(); len(calls) != 0 {
		t.Error("records stored before the dead letters of their batch")
	}
	if err := flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range dlq.written() {
		got = append(got, string(m.Value))
	}
	if strings.Join(got, ",") != "x2,x3,x1" {
		t.Errorf("dead letters written %v, want each once", got)
	}
}

// partialWriter fails the first failFirst messages of its first call (kafka.WriteErrors) and
// writes the others.
type partialWriter struct {
	fakeWriter
	failFirst int
	called    bool
}

func (w *partialWriter) WriteMessages(ctx context.Context, msgs ...kafka.Message) error {
	w.mu.Lock()
	first := !w.called
	w.called = true
	w.mu.Unlock()
	if !first {
		return w.fakeWriter.WriteMessages(ctx, msgs...)
	}
	errs := make(kafka.WriteErrors, len(msgs))
	for i := range msgs {
		if i < w.failFirst {
			errs[i] = kafka.LeaderNotAvailable
		} else if err := w.fakeWriter.WriteMessages(ctx, msgs[i]); err != nil {
			errs[i] = err
		}
	}
	return errs
}

// prepareCounter counts the batches a stage has prepared.
type prepareCounter struct {
	consumers.Stage
	mu sync.Mutex
	n  int
}

func (p *prepareCounter) Prepare(ctx context.Context, b []kafka.Message) (consumers.Flush, error) {
	f, err := p.Stage.Prepare(ctx, b)
	p.mu.Lock()
	p.n++
	p.mu.Unlock()
	return f, err
}

func (p *prepareCounter) prepared() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n
}

// The next batch is decoded while this one is written: the first write only returns once the
// second batch has been prepared (without overlap this test would never finish), and the
// commits still come in order, each after its own write.
func TestArchiveStageDecodesWhileWriting(t *testing.T) {
	var pc *prepareCounter
	var commitsAtFirstWrite int
	var r *fakeReader
	sink := &scriptSink{block: func(recs []schemas.ScoreRecord) {
		if recs[0].EventID == "e0" {
			waitFor(t, "the second batch to be decoded while the first is written", func() bool { return pc.prepared() >= 2 })
			commitsAtFirstWrite = r.committed()
		}
	}}
	stage := &ArchiveStage{Sink: sink, DLQ: &fakeWriter{}, Log: quiet()}
	pc = &prepareCounter{Stage: stage}
	var msgs []kafka.Message
	for i := range 8 {
		msgs = append(msgs, scoreMsg(t, 0, int64(i), fmt.Sprintf("e%d", i)))
	}
	r = &fakeReader{queue: msgs}
	stop := runStaged(t, r, pc)
	waitFor(t, "both commits", func() bool { return r.committed() == 2 })
	stop()
	if commitsAtFirstWrite != 0 {
		t.Errorf("%d commits before the first write returned", commitsAtFirstWrite)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if last := r.commits[0][len(r.commits[0])-1].Offset; last != 3 || r.commits[1][0].Offset != 4 {
		t.Errorf("commits out of order: first ends at %d, second starts at %d", last, r.commits[1][0].Offset)
	}
	if _, stored := sink.snapshot(); fmt.Sprint(stored) != "[e0 e1 e2 e3 e4 e5 e6 e7]" {
		t.Errorf("stored %v", stored)
	}
}

// Parallel decoding keeps the batch order, undecodable records included.
func TestArchiveStageParallelDecodeKeepsOrder(t *testing.T) {
	var batch []kafka.Message
	for i := range 3000 {
		if i%500 == 7 {
			batch = append(batch, kafka.Message{Offset: int64(i), Value: []byte("{")})
			continue
		}
		batch = append(batch, scoreMsg(t, i%4, int64(i), fmt.Sprintf("e%04d", i)))
	}
	sink, dlq := &scriptSink{}, &fakeWriter{}
	stage := &ArchiveStage{Sink: sink, DLQ: dlq, Log: quiet(), Workers: 4}
	if err := stage.Handle(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	_, stored := sink.snapshot()
	if len(stored) != 2994 || len(dlq.written()) != 6 {
		t.Fatalf("stored %d, dead-lettered %d", len(stored), len(dlq.written()))
	}
	for i := 1; i < len(stored); i++ {
		if stored[i] <= stored[i-1] {
			t.Fatalf("%s stored after %s", stored[i], stored[i-1])
		}
	}
	for i, m := range dlq.written() {
		if got, _ := header(m, HeaderOffset); got != fmt.Sprint(i*500+7) {
			t.Errorf("dead letter %d from offset %s", i, got)
		}
	}
}

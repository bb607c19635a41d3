package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/riskflow/riskflow/consumers"
	"github.com/riskflow/riskflow/internal/syncbuf"
	"github.com/riskflow/riskflow/rules"
	"github.com/riskflow/riskflow/schemas"
)

// fakeWriter records what it was asked to write, or fails with err.
type fakeWriter struct {
	mu    sync.Mutex
	err   error
	calls int
	msgs  []kafka.Message
}

func (w *fakeWriter) WriteMessages(ctx context.Context, msgs ...kafka.Message) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.calls++
	if w.err != nil {
		return w.err
	}
	// Copies, as a writer must not keep what it was given (the decision log reuses its buffer).
	for _, m := range msgs {
		m.Key, m.Value = bytes.Clone(m.Key), bytes.Clone(m.Value)
		w.msgs = append(w.msgs, m)
	}
	return nil
}

func (w *fakeWriter) callCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.calls
}

func (w *fakeWriter) written() []kafka.Message {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]kafka.Message(nil), w.msgs...)
}

func (w *fakeWriter) fail(err error) {
	w.mu.Lock()
	w.err = err
	w.mu.Unlock()
}

var testHasher = schemas.NewPhoneHasher([]byte("pipeline-test-key"))

// fakeScorer scores like scoring.Scorer would shape its output: 900 for a datacenter IP, else 0.
type fakeScorer struct {
	mu      sync.Mutex // ScoreStage calls Process from one goroutine per partition
	err     error      // returned with a record (a rule failed at run time)
	noPack  bool       // return ErrNoPack-like failure with an empty record
	scored  []string
	scoreOf func(*schemas.VerifyEvent) int
}

func (s *fakeScorer) Process(ev *schemas.VerifyEvent) (schemas.ScoreRecord, error) {
	if s.noPack {
		return schemas.ScoreRecord{}, schemas.Unavailable("no rule pack loaded")
	}
	s.mu.Lock()
	s.scored = append(s.scored, ev.EventID)
	s.mu.Unlock()
	score := 0
	if s.scoreOf != nil {
		score = s.scoreOf(ev)
	}
	return schemas.ScoreRecord{
		EventID: ev.EventID, TS: ev.TS, AppID: ev.AppID, Flow: ev.Flow,
		PhoneHash: testHasher.Hex(ev.Phone), PhoneMasked: schemas.MaskPhone(ev.Phone), PhoneSegment: schemas.PhoneSegment(ev.Phone),
		IP: ev.IP.String(), Outcome: ev.Outcome, Score: score, RulesVersion: "v-test", ScoredAt: ev.TS,
	}, s.err
}

type countObs struct {
	mu       sync.Mutex
	scored   []int
	dead     map[string]int
	archived int
}

func newCountObs() *countObs { return &countObs{dead: map[string]int{}} }

func (o *countObs) Scored(score int) { o.mu.Lock(); o.scored = append(o.scored, score); o.mu.Unlock() }
func (o *countObs) DeadLettered(reason string) {
	o.mu.Lock()
	o.dead[reason]++
	o.mu.Unlock()
}
func (o *countObs) Archived(rows int) { o.mu.Lock(); o.archived += rows; o.mu.Unlock() }

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

func eventJSON(id, phone, ip string) []byte {
	return []byte(fmt.Sprintf(`{"event_id":%q,"ts":"2025-03-14T17:26:53+08:00","app_id":"app1","flow":"one_click_login","phone":%q,"ip":%q,"outcome":"success"}`, id, phone, ip))
}

func msg(offset int64, key string, value []byte) kafka.Message {
	return kafka.Message{Topic: "verify.events", Partition: 3, Offset: offset, Key: []byte(key), Value: value}
}

func header(m kafka.Message, key string) (string, bool) {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value), true
		}
	}
	return "", false
}

func TestScoreStageRoutesMessages(t *testing.T) {
	scores, dlq, obs := &fakeWriter{}, &fakeWriter{}, newCountObs()
	sc := &fakeScorer{scoreOf: func(ev *schemas.VerifyEvent) int {
		if strings.HasPrefix(ev.IP.String(), "47.92.") {
			return 900
		}
		return 0
	}}
	stage := &ScoreStage{Scorer: sc, Scores: scores, DLQ: dlq, Log: quiet(), Obs: obs}

	unknownField := []byte(`{"event_id":"e9","ts":1741944413589,"app_id":"app1","flow":"one_click_login","phone":"13812348000","ip":"1.2.3.4","outcome":"success","colour":"red"}`)
	batch := []kafka.Message{
		msg(10, "k-a", eventJSON("e1", "+8613800138000", "223.104.3.7")),
		msg(11, "k-b", []byte(`{"event_id":"e2",`)),
		msg(12, "k-c", eventJSON("e3", "13700009999", "47.92.10.20")),
		msg(13, "k-d", eventJSON("e4", "13700009999", "999.1.1.1")),
		msg(14, "", unknownField),
		msg(15, "k-f", []byte{0xff, 0x00, 'x'}),
	}
	if err := stage.Handle(context.Background(), batch); err != nil {
		t.Fatalf("Handle: %v", err)
	}

	// Valid events: scored and written to risk.scores, keyed by the phone's keyed hash.
	out := scores.written()
	if len(out) != 2 {
		t.Fatalf("%d score messages, want 2", len(out))
	}
	for i, want := range []struct {
		id, phone string
		score     int
	}{{"e1", "13800138000", 0}, {"e3", "13700009999", 900}} {
		m := out[i]
		if string(m.Key) != testHasher.Hex(want.phone) {
			t.Errorf("score %s keyed %q, want the hash of %s", want.id, m.Key, want.phone)
		}
		if strings.Contains(string(m.Key), want.phone) || strings.Contains(string(m.Value), want.phone) {
			t.Errorf("score message %s carries the plaintext phone: key %q", want.id, m.Key)
		}
		rec, err := schemas.DecodeScoreRecord(m.Value)
		if err != nil {
			t.Fatalf("score message %s does not decode: %v", want.id, err)
		}
		if rec.EventID != want.id || rec.Score != want.score || rec.PhoneMasked != schemas.MaskPhone(want.phone) {
			t.Errorf("record %+v, want %s with score %d", rec, want.id, want.score)
		}
	}

	// Everything else: dead-lettered with the original bytes and key, and headers saying why.
	dead := dlq.written()
	wants := []struct {
		offset int64
		field  string
	}{{11, ""}, {13, "ip"}, {14, "colour"}, {15, ""}}
	if len(dead) != len(wants) {
		t.Fatalf("%d dead letters, want %d", len(dead), len(wants))
	}
	for i, w := range wants {
		m, orig := dead[i], batch[w.offset-10]
		if string(m.Value) != string(orig.Value) || string(m.Key) != string(orig.Key) {
			t.Errorf("dead letter %d: value %q key %q, want the original %q %q", i, m.Value, m.Key, orig.Value, orig.Key)
		}
		if m.Topic != "" {
			t.Errorf("dead letter %d has topic %q; the writer decides the topic", i, m.Topic)
		}
		reason, ok := header(m, HeaderError)
		if !ok || reason == "" {
			t.Errorf("dead letter %d: no %s header", i, HeaderError)
		}
		if field, ok := header(m, HeaderField); !ok || field != w.field {
			t.Errorf("dead letter %d: field header %q (present %v), want %q (error %q)", i, field, ok, w.field, reason)
		}
		if w.field != "" && !strings.HasPrefix(reason, w.field+": ") {
			t.Errorf("dead letter %d: error %q does not name field %q", i, reason, w.field)
		}
		if v, _ := header(m, HeaderTopic); v != "verify.events" {
			t.Errorf("dead letter %d: source topic %q", i, v)
		}
		if v, _ := header(m, HeaderPartition); v != "3" {
			t.Errorf("dead letter %d: source partition %q", i, v)
		}
		if v, _ := header(m, HeaderOffset); v != strconv.FormatInt(w.offset, 10) {
			t.Errorf("dead letter %d: source offset %q, want %d", i, v, w.offset)
		}
	}

	if fmt.Sprint(sc.scored) != "[e1 e3]" {
		t.Errorf("scorer saw %v", sc.scored)
	}
	if fmt.Sprint(obs.scored) != "[0 900]" || obs.dead["decode"] != 4 {
		t.Errorf("observer: scored %v, dead %v", obs.scored, obs.dead)
	}
}

func TestScoreStageWriteFailuresFailTheBatch(t *testing.T) {
	batch := []kafka.Message{msg(1, "", eventJSON("e1", "13800138000", "1.2.3.4")), msg(2, "", []byte("not json"))}
	boom := errors.New("kafka: not enough replicas")

	t.Run("dlq", func(t *testing.T) {
		scores, dlq, obs := &fakeWriter{}, &fakeWriter{err: boom}, newCountObs()
		stage := &ScoreStage{Scorer: &fakeScorer{}, Scores: scores, DLQ: dlq, Log: quiet(), Obs: obs}
		err := stage.Handle(context.Background(), batch)
		if !errors.Is(err, boom) || !strings.Contains(err.Error(), "dead-letter") {
			t.Fatalf("Handle: %v, want the DLQ failure", err)
		}
		if len(obs.scored) != 0 || len(obs.dead) != 0 {
			t.Errorf("a failed batch was counted: %v %v", obs.scored, obs.dead)
		}
	})
	t.Run("scores", func(t *testing.T) {
		scores, dlq, obs := &fakeWriter{err: boom}, &fakeWriter{}, newCountObs()
		stage := &ScoreStage{Scorer: &fakeScorer{}, Scores: scores, DLQ: dlq, Log: quiet(), Obs: obs}
		err := stage.Handle(context.Background(), batch)
		if !errors.Is(err, boom) || !strings.Contains(err.Error(), "score records") {
			t.Fatalf("Handle: %v, want the scores failure", err)
		}
		if len(obs.scored) != 0 {
			t.Errorf("a batch whose scores were not written was counted as scored: %v", obs.scored)
		}
	})
	t.Run("no pack", func(t *testing.T) {
		scores, dlq := &fakeWriter{}, &fakeWriter{}
		stage := &ScoreStage{Scorer: &fakeScorer{noPack: true}, Scores: scores, DLQ: dlq, Log: quiet()}
		if err := stage.Handle(context.Background(), batch); err == nil {
			t.Fatal("Handle succeeded without a rule pack; the batch would be committed unscored")
		}
		if len(scores.written()) != 0 {
			t.Errorf("wrote %d scores", len(scores.written()))
		}
	})
	t.Run("rule error keeps the verdict", func(t *testing.T) {
		scores, dlq := &fakeWriter{}, &fakeWriter{}
		stage := &ScoreStage{Scorer: &fakeScorer{err: &rules.RuleError{Rule: "x", Err: errors.New("division by zero")}}, Scores: scores, DLQ: dlq}
		if err := stage.Handle(context.Background(), batch); err != nil {
			t.Fatalf("Handle: %v", err)
		}
		if len(scores.written()) != 1 {
			t.Errorf("wrote %d scores, want 1", len(scores.written()))
		}
	})
	// Decided by what the error is, not by which fields of the record are empty: an error nothing
	// says more about retries the batch even with a filled-in record.
	t.Run("unclassified error with a record", func(t *testing.T) {
		scores, dlq := &fakeWriter{}, &fakeWriter{}
		stage := &ScoreStage{Scorer: &fakeScorer{err: errors.New("connection reset")}, Scores: scores, DLQ: dlq, Log: quiet()}
		if err := stage.Handle(context.Background(), batch); err == nil || len(scores.written()) != 0 || len(dlq.written()) != 0 {
			t.Errorf("Handle: %v, %d scores, %d dead letters; want the batch retried", err, len(scores.written()), len(dlq.written()))
		}
	})
	t.Run("misconfigured scorer", func(t *testing.T) {
		scores, dlq := &fakeWriter{}, &fakeWriter{}
		stage := &ScoreStage{Scorer: &fakeScorer{err: schemas.Misconfigured("no phone hasher configured")}, Scores: scores, DLQ: dlq, Log: quiet()}
		if err := stage.Handle(context.Background(), batch); !errors.Is(err, schemas.ErrMisconfigured) || len(dlq.written()) != 0 {
			t.Errorf("Handle: %v, %d dead letters; want the batch failed, nothing dead-lettered", err, len(dlq.written()))
		}
	})
}

// fakeReader is a consumer-group reader over a fixed set of messages.
type fakeReader struct {
	mu      sync.Mutex
	queue   []kafka.Message
	commits [][]kafka.Message
}

func (r *fakeReader) FetchMessage(ctx context.Context) (kafka.Message, error) {
	r.mu.Lock()
	if len(r.queue) > 0 {
		m := r.queue[0]
		r.queue = r.queue[1:]
		r.mu.Unlock()
		return m, nil
	}
	r.mu.Unlock()
	<-ctx.Done()
	return kafka.Message{}, ctx.Err()
}

func (r *fakeReader) CommitMessages(ctx context.Context, msgs ...kafka.Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.commits = append(r.commits, append([]kafka.Message(nil), msgs...))
	return nil
}

func (r *fakeReader) Close() error { return nil }

func (r *fakeReader) committed() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.commits)
}

// The stage and the loop together: nothing is committed while risk.scores refuses writes, and the
// batch is committed once the write goes through.
func TestScoreStageInLoopCommitsOnlyWritten(t *testing.T) {
	boom := errors.New("kafka: leader not available")
	scores, dlq := &fakeWriter{err: boom}, &fakeWriter{}
	stage := &ScoreStage{Scorer: &fakeScorer{}, Scores: scores, DLQ: dlq, Log: quiet()}
	r := &fakeReader{queue: []kafka.Message{msg(0, "", eventJSON("e1", "13800138000", "1.2.3.4")), msg(1, "", eventJSON("e2", "13800138001", "1.2.3.4"))}}
	loop := consumers.NewLoop(consumers.LoopConfig{Name: "scorer", MaxBatch: 10, MaxWait: time.Millisecond, BackoffMin: time.Millisecond, BackoffMax: time.Millisecond}, r, stage.Handle, quiet(), nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- loop.Run(ctx) }()

	waitFor(t, "several failed attempts", func() bool { scores.mu.Lock(); defer scores.mu.Unlock(); return scores.calls >= 3 })
	if n := r.committed(); n != 0 {
		t.Fatalf("%d commits while risk.scores was failing", n)
	}
	scores.fail(nil)
	waitFor(t, "the commit", func() bool { return r.committed() == 1 })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if got := len(scores.written()); got != 2 {
		t.Errorf("%d score messages written, want 2", got)
	}
}

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

func TestDeadLetterWithoutFieldError(t *testing.T) {
	m := DeadLetter(kafka.Message{Topic: "risk.scores", Partition: 0, Offset: 7, Value: []byte("x")}, errors.New("broken"))
	if v, _ := header(m, HeaderField); v != "" {
		t.Errorf("field header %q for an error without a field", v)
	}
	if v, _ := header(m, HeaderError); v != "broken" {
		t.Errorf("error header %q", v)
	}
	// A wrapped field error still names its field.
	m = DeadLetter(kafka.Message{}, fmt.Errorf("decode: %w", &schemas.FieldError{Field: "ts", Reason: "is required"}))
	if v, _ := header(m, HeaderField); v != "ts" {
		t.Errorf("field header %q, want ts", v)
	}
}

// fakeSink records stored batches or fails with err.
type fakeSink struct {
	mu    sync.Mutex
	err   error
	calls int
	recs  []schemas.ScoreRecord
	block bool // wait for ctx and fail with its error
}

func (s *fakeSink) WriteBatch(ctx context.Context, recs []schemas.ScoreRecord) error {
	s.mu.Lock()
	s.calls++
	err, block := s.err, s.block
	s.mu.Unlock()
	if block {
		<-ctx.Done()
		return ctx.Err()
	}
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.recs = append(s.recs, recs...)
	s.mu.Unlock()
	return nil
}

func (s *fakeSink) set(err error) {
	s.mu.Lock()
	s.err = err
	s.mu.Unlock()
}

func (s *fakeSink) callCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

func scoreJSON(t *testing.T, id string, score int) []byte {
	t.Helper()
	b, err := json.Marshal(schemas.ScoreRecord{
		EventID: id, TS: time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC), AppID: "app1",
		PhoneHash: testHasher.Hex("13800138000"), Score: score, RulesVersion: "v",
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestArchiveStage(t *testing.T) {
	sink, dlq, obs := &fakeSink{}, &fakeWriter{}, newCountObs()
	stage := &ArchiveStage{Sink: sink, DLQ: dlq, Log: quiet(), Obs: obs}
	batch := []kafka.Message{
		{Topic: "risk.scores", Partition: 1, Offset: 5, Value: scoreJSON(t, "e1", 600)},
		{Topic: "risk.scores", Partition: 1, Offset: 6, Value: []byte(`{"event_id":`)},
		{Topic: "risk.scores", Partition: 1, Offset: 7, Value: scoreJSON(t, "e2", 450)},
		{Topic: "risk.scores", Partition: 1, Offset: 8, Value: scoreJSON(t, "e3", 0)},
	}
	if err := stage.Handle(context.Background(), batch); err != nil {
		t.Fatalf("Handle: %v", err)
	}
	if len(sink.recs) != 2 || sink.recs[0].EventID != "e1" || sink.recs[1].EventID != "e3" {
		t.Errorf("stored %+v, want e1 and e3", sink.recs)
	}
	dead := dlq.written()
	if len(dead) != 2 {
		t.Fatalf("%d dead letters, want 2", len(dead))
	}
	if string(dead[0].Value) != `{"event_id":` {
		t.Errorf("dead letter value %q, want the original bytes", dead[0].Value)
	}
	if v, _ := header(dead[1], HeaderField); v != "score" {
		t.Errorf("dead letter field %q, want score", v)
	}
	if v, _ := header(dead[1], HeaderOffset); v != "7" {
		t.Errorf("dead letter offset %q, want 7", v)
	}
	if v, _ := header(dead[1], HeaderTopic); v != "risk.scores" {
		t.Errorf("dead letter topic %q", v)
	}
	if obs.archived != 2 || obs.dead["decode_score_record"] != 2 {
		t.Errorf("observer: archived %d, dead %v", obs.archived, obs.dead)
	}
}

func TestArchiveStageFailures(t *testing.T) {
	good := []kafka.Message{{Value: scoreJSON(t, "e1", 0)}}
	boom := errors.New("clickhouse: connection refused")

	sink, dlq, obs := &fakeSink{err: boom}, &fakeWriter{}, newCountObs()
	stage := &ArchiveStage{Sink: sink, DLQ: dlq, Log: quiet(), Obs: obs}
	if err := stage.Handle(context.Background(), good); !errors.Is(err, boom) {
		t.Errorf("sink failure: %v", err)
	}
	if obs.archived != 0 {
		t.Errorf("archived %d on failure", obs.archived)
	}

	sink, dlq = &fakeSink{}, &fakeWriter{err: boom}
	stage = &ArchiveStage{Sink: sink, DLQ: dlq, Log: quiet()}
	mixed := append([]kafka.Message{{Value: []byte("garbage")}}, good...)
	if err := stage.Handle(context.Background(), mixed); !errors.Is(err, boom) {
		t.Errorf("DLQ failure: %v", err)
	}

	// A batch with nothing storable does not call the sink.
	sink, dlq = &fakeSink{}, &fakeWriter{}
	stage = &ArchiveStage{Sink: sink, DLQ: dlq}
	if err := stage.Handle(context.Background(), []kafka.Message{{Value: []byte("garbage")}}); err != nil {
		t.Errorf("all-bad batch: %v", err)
	}
	if sink.callCount() != 0 {
		t.Errorf("sink called %d times for an all-bad batch", sink.callCount())
	}
}

func recs() []schemas.ScoreRecord { return []schemas.ScoreRecord{{EventID: "e1"}} }

func TestBreakerSinkOpensAndFailsFast(t *testing.T) {
	sink := &fakeSink{err: errors.New("clickhouse: connection refused")}
	b := NewBreakerSink("ch", sink, BreakerConfig{Failures: 3, OpenFor: time.Hour}, quiet(), nil)
	ctx := context.Background()
	for i := 1; i <= 3; i++ {
		if err := b.WriteBatch(ctx, recs()); err == nil || errors.Is(err, ErrOpen) {
			t.Fatalf("write %d: %v, want the sink's error", i, err)
		}
		want := "closed"
		if i == 3 {
			want = "open"
		}
		if b.State() != want {
			t.Fatalf("after %d failures: %s, want %s", i, b.State(), want)
		}
	}
	calls := sink.callCount()
	for i := 0; i < 5; i++ {
		if err := b.WriteBatch(ctx, recs()); !errors.Is(err, ErrOpen) {
			t.Fatalf("while open: %v, want ErrOpen", err)
		}
	}
	if sink.callCount() != calls {
		t.Fatalf("the sink was called %d times while the breaker was open", sink.callCount()-calls)
	}
}

func TestBreakerSinkHalfOpensAndCloses(t *testing.T) {
	sink := &fakeSink{err: errors.New("clickhouse: connection refused")}
	var mu sync.Mutex
	var states []string
	changes := func() string {
		mu.Lock()
		defer mu.Unlock()
		return strings.Join(states, ",")
	}
	var logged syncbuf.Buffer
	b := NewBreakerSink("ch", sink, BreakerConfig{Failures: 2, OpenFor: 5 * time.Millisecond}, slog.New(slog.NewTextHandler(&logged, nil)), func(s string) {
		mu.Lock()
		states = append(states, s)
		mu.Unlock()
	})
	ctx := context.Background()
	_ = b.WriteBatch(ctx, recs())
	_ = b.WriteBatch(ctx, recs())
	if got := changes(); got != "open" {
		t.Fatalf("state changes %q after 2 failures, want open", got)
	}
	// After OpenFor the breaker lets one probe through; a failing probe opens it again.
	waitFor(t, "half-open", func() bool { return b.State() == "half-open" })
	calls := sink.callCount()
	if err := b.WriteBatch(ctx, recs()); err == nil || errors.Is(err, ErrOpen) {
		t.Fatalf("failing probe: %v, want the sink's error", err)
	}
	if sink.callCount() != calls+1 {
		t.Fatal("the probe did not reach the sink")
	}
	if got := changes(); got != "open,half-open,open" {
		t.Fatalf("state changes %q, want open,half-open,open", got)
	}
	// The sink recovers: the next probe closes the breaker.
	sink.set(nil)
	waitFor(t, "half-open again", func() bool { return b.State() == "half-open" })
	if err := b.WriteBatch(ctx, recs()); err != nil {
		t.Fatalf("probe: %v", err)
	}
	if b.State() != "closed" {
		t.Fatalf("after a successful probe: %s, want closed", b.State())
	}
	if err := b.WriteBatch(ctx, recs()); err != nil {
		t.Fatalf("closed again: %v", err)
	}
	if got := changes(); got != "open,half-open,open,half-open,closed" {
		t.Errorf("state changes %q", got)
	}
	// At info, the outage's start and end only: not its probes (two lines every OpenFor).
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(logged.String()), "\n") {
		_, rest, _ := strings.Cut(l, " level=")
		lines = append(lines, "level="+rest)
	}
	want := []string{
		`level=WARN msg="circuit breaker state change" breaker=ch from=closed to=open`,
		`level=INFO msg="circuit breaker state change" breaker=ch from=half-open to=closed`,
	}
	if !slices.Equal(lines, want) {
		t.Errorf("logged at info:\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
}

func TestBreakerSinkSuccessResetsFailures(t *testing.T) {
	sink := &fakeSink{}
	b := NewBreakerSink("ch", sink, BreakerConfig{Failures: 2, OpenFor: time.Hour}, quiet(), nil)
	boom := errors.New("timeout")
	for i := 0; i < 5; i++ {
		sink.set(boom)
		_ = b.WriteBatch(context.Background(), recs())
		sink.set(nil)
		if err := b.WriteBatch(context.Background(), recs()); err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
	}
	if b.State() != "closed" {
		t.Errorf("non-consecutive failures opened the breaker: %s", b.State())
	}
}

func TestBreakerSinkIgnoresCancellation(t *testing.T) {
	boom := errors.New("clickhouse: connection refused")
	canceled, cancel := context.WithCancel(context.Background())
	cancel()

	t.Run("not a failure", func(t *testing.T) {
		sink := &fakeSink{block: true}
		b := NewBreakerSink("ch", sink, BreakerConfig{Failures: 2, OpenFor: time.Hour}, quiet(), nil)
		for i := 0; i < 5; i++ {
			if err := b.WriteBatch(canceled, recs()); !errors.Is(err, context.Canceled) {
				t.Fatalf("canceled write: %v", err)
			}
		}
		if b.State() != "closed" {
			t.Fatalf("cancellations opened the breaker: %s", b.State())
		}
	})
	t.Run("not a success", func(t *testing.T) {
		// fail, canceled, fail: two consecutive real failures open a breaker of 2.
		sink := &fakeSink{err: boom}
		b := NewBreakerSink("ch", sink, BreakerConfig{Failures: 2, OpenFor: time.Hour}, quiet(), nil)
		_ = b.WriteBatch(context.Background(), recs())
		sink.mu.Lock()
		sink.block = true
		sink.mu.Unlock()
		_ = b.WriteBatch(canceled, recs())
		sink.mu.Lock()
		sink.block = false
		sink.mu.Unlock()
		_ = b.WriteBatch(context.Background(), recs())
		if b.State() != "open" {
			t.Fatalf("a cancellation reset the failure count: %s, want open", b.State())
		}
	})
	t.Run("driver error after cancel", func(t *testing.T) {
		// The driver does not wrap context.Canceled; the breaker still sees a cancellation.
		sink := &fakeSink{err: errors.New("clickhouse: read: use of closed network connection")}
		b := NewBreakerSink("ch", sink, BreakerConfig{Failures: 1, OpenFor: time.Hour}, quiet(), nil)
		err := b.WriteBatch(canceled, recs())
		if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "closed network connection") {
			t.Fatalf("error %v, want the cancellation and the driver's error", err)
		}
		if b.State() != "closed" {
			t.Fatalf("a write cut short by shutdown opened the breaker")
		}
	})
	t.Run("half-open probe canceled", func(t *testing.T) {
		sink := &fakeSink{err: boom}
		b := NewBreakerSink("ch", sink, BreakerConfig{Failures: 1, OpenFor: 10 * time.Millisecond}, quiet(), nil)
		_ = b.WriteBatch(context.Background(), recs())
		waitFor(t, "half-open", func() bool { return b.State() == "half-open" })
		sink.mu.Lock()
		sink.block = true
		sink.mu.Unlock()
		_ = b.WriteBatch(canceled, recs())
		if b.State() != "half-open" {
			t.Fatalf("a canceled probe moved the breaker to %s; it proved nothing", b.State())
		}
		// The slot is free for a real probe.
		sink.mu.Lock()
		sink.block, sink.err = false, nil
		sink.mu.Unlock()
		if err := b.WriteBatch(context.Background(), recs()); err != nil {
			t.Fatalf("real probe: %v", err)
		}
		if b.State() != "closed" {
			t.Fatalf("after a real successful probe: %s", b.State())
		}
	})
	t.Run("deadline is a failure", func(t *testing.T) {
		sink := &fakeSink{block: true}
		b := NewBreakerSink("ch", sink, BreakerConfig{Failures: 1, OpenFor: time.Hour}, quiet(), nil)
		ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
		defer cancel()
		_ = b.WriteBatch(ctx, recs())
		if b.State() != "open" {
			t.Fatalf("a sink too slow to answer did not count: %s", b.State())
		}
	})
}

func TestBreakerSinkDefaults(t *testing.T) {
	sink := &fakeSink{err: errors.New("down")}
	b := NewBreakerSink("ch", sink, BreakerConfig{}, quiet(), nil)
	for i := 0; i < 2; i++ {
		_ = b.WriteBatch(context.Background(), recs())
	}
	if b.State() != "closed" {
		t.Fatalf("opened after 2 failures; default is 3")
	}
	_ = b.WriteBatch(context.Background(), recs())
	if b.State() != "open" {
		t.Fatalf("not open after 3 failures")
	}
}

func TestPublisherKeysByPhoneHash(t *testing.T) {
	w := &fakeWriter{}
	p := &Publisher{W: w, Hasher: testHasher}
	var evs []schemas.VerifyEvent
	for _, raw := range [][]byte{
		eventJSON("e1", "13812348000", "1.2.3.4"),
		eventJSON("e2", "+8613812348000", "1.2.3.4"),
		eventJSON("e3", "13900001111", "2001:db8::1"),
	} {
		ev, err := schemas.DecodeEvent(raw)
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, ev)
	}
	// A caller that did not normalize: the key must still be the hash of the bare number.
	evs = append(evs, evs[0])
	evs[3].EventID, evs[3].Phone = "e4", "8613812348000"

	if err := p.Publish(context.Background(), evs); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	out := w.written()
	if len(out) != 4 {
		t.Fatalf("%d messages, want 4", len(out))
	}
	for i, m := range out {
		phone := "13812348000"
		if i == 2 {
			phone = "13900001111"
		}
		if string(m.Key) != testHasher.Hex(phone) {
			t.Errorf("message %d keyed %q, want the keyed hash of %s", i, m.Key, phone)
		}
		for _, plain := range []string{phone, phone[3:], "8613812348000"} {
			if strings.Contains(string(m.Key), plain) {
				t.Errorf("message %d key %q contains the plaintext %s", i, m.Key, plain)
			}
		}
		ev, err := schemas.DecodeEvent(m.Value)
		if err != nil {
			t.Fatalf("message %d value is not a valid VerifyEvent: %v", i, err)
		}
		if ev.EventID != evs[i].EventID || ev.Phone != phone {
			t.Errorf("message %d: %+v", i, ev)
		}
	}
	if string(out[0].Key) != string(out[1].Key) || string(out[0].Key) != string(out[3].Key) {
		t.Error("one number in different spellings got different keys (different partitions)")
	}
	if string(out[0].Key) == string(out[2].Key) {
		t.Error("two numbers got the same key")
	}
	// The key depends on the secret: another deployment's hashes do not match.
	if other := schemas.NewPhoneHasher([]byte("other")); other.Hex("13812348000") == string(out[0].Key) {
		t.Error("the key does not depend on the hash key")
	}
}

func TestPublisherErrors(t *testing.T) {
	ev, err := schemas.DecodeEvent(eventJSON("e1", "13812348000", "1.2.3.4"))
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("kafka: broker not available")
	p := &Publisher{W: &fakeWriter{err: boom}, Hasher: testHasher}
	if err := p.Publish(context.Background(), []schemas.VerifyEvent{ev}); !errors.Is(err, boom) {
		t.Errorf("writer failure: %v", err)
	}
	// The broker away for a batch of 1,000: kafka-go fails each message; the error (which the
	// API answers with) says how many failed and why, once, and keeps the chain.
	we := make(kafka.WriteErrors, 1000)
	for i := range we {
		we[i] = errors.New("kafka.(*Client).Produce: dial tcp 127.0.0.1:9092: connect: connection refused")
	}
	evs := make([]schemas.VerifyEvent, len(we))
	for i := range evs {
		evs[i] = ev
	}
	p = &Publisher{W: &fakeWriter{err: we}, Hasher: testHasher}
	err = p.Publish(context.Background(), evs)
	var got kafka.WriteErrors
	if !errors.As(err, &got) || len(got) != len(we) {
		t.Errorf("broker away: %v does not unwrap to the WriteErrors", err)
	}
	if msg := err.Error(); strings.Count(msg, "connection refused") != 1 || !strings.Contains(msg, "1000 of 1000") || len(msg) > consumers.MaxErrorText+100 {
		t.Errorf("broker away, %d bytes of error: %.300s…", len(msg), msg)
	}
	p = &Publisher{W: &fakeWriter{}}
	if err := p.Publish(context.Background(), []schemas.VerifyEvent{ev}); err == nil {
		t.Error("published without a hasher")
	}
	bad := ev
	bad.Phone = "12345"
	w := &fakeWriter{}
	p = &Publisher{W: w, Hasher: testHasher}
	if err := p.Publish(context.Background(), []schemas.VerifyEvent{ev, bad}); err == nil {
		t.Error("published an event whose phone is not a number")
	}
	if len(w.written()) != 0 {
		t.Error("a partly invalid batch was partly written")
	}
}

// rejectingSink refuses records whose event id is in bad, like chsink does for unstorable rows.
type rejectingSink struct {
	bad    map[string]bool
	stored []string
}

type rejected struct{ i int }

func (r rejected) Error() string      { return "cannot be stored" }
func (r rejected) RejectedIndex() int { return r.i }

func (s *rejectingSink) WriteBatch(_ context.Context, recs []schemas.ScoreRecord) error {
	for i, r := range recs {
		if s.bad[r.EventID] {
			return rejected{i}
		}
	}
	for _, r := range recs {
		s.stored = append(s.stored, r.EventID)
	}
	return nil
}

func TestArchiveStageDeadLettersUnstorableRecords(t *testing.T) {
	sink := &rejectingSink{bad: map[string]bool{"e2": true, "e4": true}}
	dlq := &fakeWriter{}
	stage := &ArchiveStage{Sink: NewBreakerSink("t", sink, BreakerConfig{Failures: 1}, slog.New(slog.DiscardHandler), nil), DLQ: dlq}
	var batch []kafka.Message
	for i := 1; i <= 5; i++ {
		b, err := json.Marshal(schemas.ScoreRecord{
			EventID: fmt.Sprintf("e%d", i), TS: time.Unix(1700000000, 0).UTC(), PhoneHash: strings.Repeat("ab", 32),
			PhoneMasked: "1380013****", PhoneSegment: "1380013", ScoredAt: time.Unix(1700000000, 0).UTC(),
		})
		if err != nil {
			t.Fatal(err)
		}
		batch = append(batch, kafka.Message{Partition: 0, Offset: int64(i), Value: b})
	}
	if err := stage.Handle(context.Background(), batch); err != nil {
		t.Fatalf("Handle: %v (a poison record must not block the batch)", err)
	}
	if got := strings.Join(sink.stored, ","); got != "e1,e3,e5" {
		t.Errorf("stored %s, want e1,e3,e5", got)
	}
	dl := dlq.written()
	if len(dl) != 2 || string(dl[0].Value) != string(batch[1].Value) || string(dl[1].Value) != string(batch[3].Value) {
		t.Fatalf("dead letters %d, want the 2 refused records with their original bytes", len(dl))
	}
	if got, _ := header(dl[0], HeaderOffset); got != "2" {
		t.Errorf("dead letter offset header %q, want 2", got)
	}
	if stage.Sink.(*BreakerSink).State() != "closed" {
		t.Errorf("refused records tripped the breaker")
	}
}

func TestScoreStageDeadLettersEventsFromTheFuture(t *testing.T) {
	scores, dlq := &fakeWriter{}, &fakeWriter{}
	stage := &ScoreStage{Scorer: &fakeScorer{}, Scores: scores, DLQ: dlq, Workers: 1}
	ev := func(id string, ts time.Time) []byte {
		b, _ := json.Marshal(map[string]any{"event_id": id, "ts": ts.UnixMilli(), "app_id": "a", "flow": "one_click_login", "phone": "13800138000", "ip": "1.2.3.4", "outcome": "success"})
		return b
	}
	batch := []kafka.Message{msg(1, "k", ev("now", time.Now())), msg(2, "k", ev("future", time.Now().Add(time.Hour)))}
	if err := stage.Handle(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	if n := len(scores.written()); n != 1 {
		t.Errorf("%d scored, want 1", n)
	}
	dl := dlq.written()
	if len(dl) != 1 {
		t.Fatalf("%d dead letters, want 1", len(dl))
	}
	if f, _ := header(dl[0], HeaderField); f != "ts" {
		t.Errorf("dead letter field %q, want ts", f)
	}
}

// In the scorer's staged loop a failing risk.scores write is retried without scoring the batch
// again and without writing its dead letters twice; nothing is committed or counted before the
// write succeeds.
func TestScoreStageStagedRetriesOnlyTheWrite(t *testing.T) {
	boom := errors.New("kafka: not enough replicas")
	scores, dlq, obs := &fakeWriter{err: boom}, &fakeWriter{}, newCountObs()
	sc := &fakeScorer{}
	stage := &ScoreStage{Scorer: sc, Scores: scores, DLQ: dlq, Log: quiet(), Obs: obs}
	r := &fakeReader{queue: []kafka.Message{
		msg(0, "", eventJSON("e1", "13800138000", "1.2.3.4")), msg(1, "", []byte("not json")),
		msg(2, "", eventJSON("e2", "13800138001", "1.2.3.4")),
	}}
	loop := consumers.NewStagedLoop(consumers.LoopConfig{Name: "scorer", MaxBatch: 10, MaxWait: time.Millisecond, BackoffMin: time.Millisecond, BackoffMax: time.Millisecond}, r, stage, quiet(), nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- loop.Run(ctx) }()

	waitFor(t, "several failed writes", func() bool { scores.mu.Lock(); defer scores.mu.Unlock(); return scores.calls >= 3 })
	if n := r.committed(); n != 0 {
		t.Fatalf("%d commits while risk.scores was failing", n)
	}
	obs.mu.Lock()
	counted := len(obs.scored)
	obs.mu.Unlock()
	if counted != 0 {
		t.Errorf("%d events counted as scored before their write succeeded", counted)
	}
	scores.fail(nil)
	waitFor(t, "the commit", func() bool { return r.committed() == 1 })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if got := fmt.Sprint(sc.scored); got != "[e1 e2]" {
		t.Errorf("scored %s, want each event once", got)
	}
	if dlq.calls != 1 || len(dlq.written()) != 1 {
		t.Errorf("dead-letter topic: %d writes, %d messages; want the bad message written once", dlq.calls, len(dlq.written()))
	}
	if got := len(scores.written()); got != 2 {
		t.Errorf("%d score messages written, want 2", got)
	}
	obs.mu.Lock()
	defer obs.mu.Unlock()
	if len(obs.scored) != 2 || len(obs.dead) != 1 {
		t.Errorf("observer: scored %v, dead %v; want each counted once", obs.scored, obs.dead)
	}
}

// A batch from several partitions is scored in parallel, and each partition's events in order.
func TestScoreStageScoresPartitionsInParallelInOrder(t *testing.T) {
	sc := &fakeScorer{}
	scores, dlq := &fakeWriter{}, &fakeWriter{}
	stage := &ScoreStage{Scorer: sc, Scores: scores, DLQ: dlq, Log: quiet(), Workers: 3}
	var batch []kafka.Message
	for i := range 300 {
		p := i % 3
		id := fmt.Sprintf("p%d-%03d", p, i/3)
		batch = append(batch, kafka.Message{Topic: "verify.events", Partition: p, Offset: int64(i / 3), Value: eventJSON(id, "13800138000", "1.2.3.4")})
	}
	if err := stage.Handle(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	if got := len(scores.written()); got != 300 {
		t.Fatalf("%d records written, want 300", got)
	}
	last := map[string]string{}
	for _, id := range sc.scored {
		p := id[:2]
		if id <= last[p] {
			t.Fatalf("partition %s: %s scored after %s", p, id, last[p])
		}
		last[p] = id
	}
	if len(sc.scored) != 300 || len(last) != 3 {
		t.Errorf("scored %d events over %d partitions, want 300 over 3", len(sc.scored), len(last))
	}
}

package pipeline

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/segmentio/kafka-go"

	"github.com/riskflow/riskflow/consumers"
	"github.com/riskflow/riskflow/schemas"
)

// limitWriter acknowledges messages up to limit bytes each and rejects larger ones as the broker
// does; fails makes the next calls fail with a passing error.
type limitWriter struct {
	limit int
	fails int
	msgs  []kafka.Message
	calls int
}

func (w *limitWriter) WriteMessages(_ context.Context, msgs ...kafka.Message) error {
	w.calls++
	if w.fails > 0 {
		w.fails--
		return kafka.NotEnoughReplicas
	}
	we := make(kafka.WriteErrors, len(msgs))
	bad := false
	for i := range msgs {
		if consumers.MessageSize(&msgs[i]) > w.limit {
			we[i], bad = kafka.MessageSizeTooLarge, true
		}
	}
	if bad {
		return we
	}
	w.msgs = append(w.msgs, msgs...)
	return nil
}

// A score record larger than the broker takes does not block its batch: its event goes to the
// dead-letter topic, the other records are written, and the flush succeeds.
func TestScoreStageDeadLettersUnwritableRecords(t *testing.T) {
	batch := []kafka.Message{
		msg(1, "", eventJSON("e1", "13800138000", "1.2.3.4")),
		msg(2, "", eventJSON("e2", "13800138001", "1.2.3.4")),
		msg(3, "", eventJSON("e3", "13800138002", "1.2.3.4")),
	}
	scores, dlq, obs := &limitWriter{limit: 1 << 20}, &limitWriter{limit: 1 << 20}, newCountObs()
	// e2's record carries a long reason: over the limit, while its event's dead letter is not.
	big := &bigRecordScorer{fakeScorer: &fakeScorer{}, big: "e2", reason: strings.Repeat("r", 2000)}
	stage := &ScoreStage{Scorer: big, Scores: scores, DLQ: dlq, Log: quiet(), Obs: obs, Workers: 1, MaxMessageBytes: 1500}
	f, err := stage.Prepare(context.Background(), batch)
	if err != nil {
		t.Fatal(err)
	}
	if err := f(context.Background()); err != nil {
		t.Fatalf("flush: %v", err)
	}
	if len(scores.msgs) != 2 {
		t.Errorf("%d score records written, want 2", len(scores.msgs))
	}
	if len(dlq.msgs) != 1 || !bytes.Equal(dlq.msgs[0].Value, batch[1].Value) {
		t.Fatalf("dead letters %d, want e2's event", len(dlq.msgs))
	}
	if e, _ := header(dlq.msgs[0], HeaderError); !strings.Contains(e, "write score record") || !strings.Contains(e, "larger than the broker accepts") {
		t.Errorf("dead letter error %q", e)
	}
	if obs.dead["unwritable_record"] != 1 || len(obs.scored) != 2 {
		t.Errorf("observer: dead %v, scored %v", obs.dead, obs.scored)
	}
}

// A flush that fails half-way is retried with only what was not acknowledged: dead letters are
// never written twice.
func TestScoreStageRetryWritesOnlyTheRest(t *testing.T) {
	batch := []kafka.Message{msg(1, "", []byte("not json")), msg(2, "", eventJSON("e1", "13800138000", "1.2.3.4"))}
	scores, dlq, obs := &limitWriter{limit: 1 << 20, fails: 2}, &limitWriter{limit: 1 << 20}, newCountObs()
	stage := &ScoreStage{Scorer: &fakeScorer{}, Scores: scores, DLQ: dlq, Log: quiet(), Obs: obs, Workers: 1}
	f, err := stage.Prepare(context.Background(), batch)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if err := f(context.Background()); !errors.Is(err, kafka.NotEnoughReplicas) {
			t.Fatalf("attempt %d: %v, want the broker's error", i, err)
		}
	}
	if err := f(context.Background()); err != nil {
		t.Fatalf("third attempt: %v", err)
	}
	if len(dlq.msgs) != 1 || dlq.calls != 1 {
		t.Errorf("dead letters written %d times in %d calls, want once", len(dlq.msgs), dlq.calls)
	}
	if len(scores.msgs) != 1 || obs.dead["decode"] != 1 || len(obs.scored) != 1 {
		t.Errorf("scores %d, observer dead %v scored %v", len(scores.msgs), obs.dead, obs.scored)
	}
}

// A dead letter of a message at the broker's limit gets headers on top: it is cut to fit, and
// says from how many bytes.
func TestFitDeadLetterTruncates(t *testing.T) {
	orig := kafka.Message{Key: []byte("k"), Value: bytes.Repeat([]byte("a"), 1_048_400), Topic: "verify.events", Offset: 9}
	dl := DeadLetter(orig, errors.New(strings.Repeat("bad ", 100_000)))
	fit := FitDeadLetter(dl, 943_000)
	if n := consumers.MessageSize(&fit); n > 943_000 {
		t.Fatalf("fitted dead letter is %d bytes", n)
	}
	if v, _ := header(fit, HeaderTruncated); v != strconv.Itoa(len(orig.Value)) {
		t.Errorf("truncation header %q, want %d", v, len(orig.Value))
	}
	if e, _ := header(fit, HeaderError); len(e) > consumers.MaxErrorText+40 {
		t.Errorf("error header is %d bytes", len(e))
	}
	if !bytes.HasPrefix(orig.Value, fit.Value) || len(fit.Value) < 900_000 {
		t.Errorf("value kept %d bytes of the original's prefix", len(fit.Value))
	}
	small := DeadLetter(kafka.Message{Value: []byte("x")}, errors.New("bad"))
	if got := FitDeadLetter(small, 943_000); len(got.Headers) != len(small.Headers) {
		t.Error("a dead letter that fits was changed")
	}
}

// A key too large for a dead letter is left out and said so, while a value that fits is kept
// whole and not said to be cut.
func TestFitDeadLetterDropsHugeKey(t *testing.T) {
	orig := kafka.Message{Key: bytes.Repeat([]byte("k"), 5<<20), Value: []byte(`{"bad":1}`), Topic: "verify.events", Offset: 3}
	fit := FitDeadLetter(DeadLetter(orig, errors.New("bad: unknown field")), 943_000)
	if n := consumers.MessageSize(&fit); n > 943_000 {
		t.Fatalf("fitted dead letter is %d bytes", n)
	}
	if len(fit.Key) != 0 || string(fit.Value) != string(orig.Value) {
		t.Errorf("key %d bytes, value %q: want no key and the whole value", len(fit.Key), fit.Value)
	}
	if v, _ := header(fit, HeaderKeyDropped); v != strconv.Itoa(len(orig.Key)) {
		t.Errorf("%s header %q, want %d", HeaderKeyDropped, v, len(orig.Key))
	}
	if v, ok := header(fit, HeaderTruncated); ok {
		t.Errorf("%s header %q on a dead letter whose value is whole", HeaderTruncated, v)
	}
	// Key and value both too large: the key goes, the value is cut.
	orig.Value = bytes.Repeat([]byte("v"), 2<<20)
	fit = FitDeadLetter(DeadLetter(orig, errors.New("bad")), 943_000)
	if n := consumers.MessageSize(&fit); n > 943_000 || len(fit.Key) != 0 || len(fit.Value) < 900_000 {
		t.Errorf("dead letter %d bytes, key %d, value %d", n, len(fit.Key), len(fit.Value))
	}
	if v, _ := header(fit, HeaderTruncated); v != strconv.Itoa(len(orig.Value)) {
		t.Errorf("%s header %q, want %d", HeaderTruncated, v, len(orig.Value))
	}
}

// bigRecordScorer gives the event big a record with a long reason.
type bigRecordScorer struct {
	*fakeScorer
	big, reason string
}

func (s *bigRecordScorer) Process(ev *schemas.VerifyEvent) (schemas.ScoreRecord, error) {
	rec, err := s.fakeScorer.Process(ev)
	if ev.EventID == s.big {
		rec.Score, rec.Tags = 900, []string{"x"}
		rec.Detail = map[string]schemas.TagDetail{"x": {Score: 900, Reason: s.reason}}
	}
	return rec, err
}

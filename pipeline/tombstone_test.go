package pipeline

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/riskflow/riskflow/schemas"
)

// A tombstone (null value) or an empty message among good ones is dead-lettered once, saying that
// the message had no value — not "invalid JSON: unexpected end of input", which reads as a cut
// message — and the events around it are scored. Found by producing tombstones into a live
// scorer's verify.events and into the archiver's risk.scores.
func TestEmptyMessagesAreDeadLetteredAsEmpty(t *testing.T) {
	t.Run("scorer", func(t *testing.T) {
		scores, dlq, obs := &fakeWriter{}, &fakeWriter{}, newCountObs()
		stage := &ScoreStage{Scorer: &fakeScorer{}, Scores: scores, DLQ: dlq, Log: quiet(), Obs: obs}
		batch := []kafka.Message{
			msg(1, "k1", eventJSON("e1", "13800138000", "1.2.3.4")),
			msg(2, "k2", nil),      // a tombstone
			msg(3, "k3", []byte{}), // an empty value
			msg(4, "k4", eventJSON("e4", "13800138000", "1.2.3.4")),
		}
		if err := stage.Handle(context.Background(), batch); err != nil {
			t.Fatalf("Handle: %v", err)
		}
		if n := len(scores.written()); n != 2 {
			t.Errorf("%d scored, want the 2 events around the empty messages", n)
		}
		dl := dlq.written()
		if len(dl) != 2 {
			t.Fatalf("%d dead letters, want 2", len(dl))
		}
		for i, want := range []string{"2", "3"} {
			if off, _ := header(dl[i], HeaderOffset); off != want {
				t.Errorf("dead letter %d: offset %s, want %s", i, off, want)
			}
			if e, _ := header(dl[i], HeaderError); !strings.Contains(e, "empty message") || !strings.Contains(e, "VerifyEvent") {
				t.Errorf("dead letter %d: error %q, want it to say the message is empty", i, e)
			}
		}
		if obs.dead["decode"] != 2 {
			t.Errorf("dead letters counted %v, want decode: 2", obs.dead)
		}
		if _, err := Admit(msg(5, "k", nil), time.Now()); err == nil {
			t.Error("Admit took a tombstone")
		} else if fe, ok := schemas.AsFieldError(err); !ok || !strings.Contains(fe.Reason, "empty message") {
			t.Errorf("Admit: %v, want a FieldError saying the message is empty", err)
		}
	})
	t.Run("archiver", func(t *testing.T) {
		sink, dlq := &fakeSink{}, &fakeWriter{}
		stage := &ArchiveStage{Sink: sink, DLQ: dlq, Log: quiet(), Obs: newCountObs()}
		batch := []kafka.Message{
			{Topic: "risk.scores", Partition: 1, Offset: 5, Value: scoreJSON(t, "e1", 600)},
			{Topic: "risk.scores", Partition: 1, Offset: 6},
			{Topic: "risk.scores", Partition: 1, Offset: 7, Value: scoreJSON(t, "e2", 0)},
		}
		if err := stage.Handle(context.Background(), batch); err != nil {
			t.Fatalf("Handle: %v", err)
		}
		if len(sink.recs) != 2 {
			t.Errorf("stored %d records, want 2", len(sink.recs))
		}
		dl := dlq.written()
		if len(dl) != 1 {
			t.Fatalf("%d dead letters, want 1", len(dl))
		}
		if e, _ := header(dl[0], HeaderError); !strings.Contains(e, "empty message") || !strings.Contains(e, "score record") {
			t.Errorf("dead letter error %q, want it to say the message is empty", e)
		}
	})
	t.Run("decisions", func(t *testing.T) {
		dlq := &fakeWriter{}
		sink := decisionSinkFunc(func(context.Context, []schemas.Decision) error { return nil })
		stage := &DecisionArchiveStage{Sink: sink, DLQ: dlq, Log: quiet()}
		if err := stage.Handle(context.Background(), []kafka.Message{{Topic: "risk.decisions", Offset: 9}}); err != nil {
			t.Fatalf("Handle: %v", err)
		}
		dl := dlq.written()
		if len(dl) != 1 {
			t.Fatalf("%d dead letters, want 1", len(dl))
		}
		if e, _ := header(dl[0], HeaderError); !strings.Contains(e, "empty message") || !strings.Contains(e, "decision") {
			t.Errorf("dead letter error %q, want it to say the message is empty", e)
		}
	})
}

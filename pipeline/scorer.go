package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"

	"github.com/segmentio/kafka-go"

	"github.com/riskflow/riskflow/schemas"
)

// MessageWriter is the part of *kafka.Writer the stages need.
type MessageWriter interface {
	WriteMessages(ctx context.Context, msgs ...kafka.Message) error
}

// EventScorer scores a decoded event and records it (scoring.Scorer).
type EventScorer interface {
	Process(ev *schemas.VerifyEvent) (schemas.ScoreRecord, error)
}

// Observer receives stage counts (metrics); methods must be cheap.
type Observer interface {
	Scored(score int)
	DeadLettered(reason string)
	Archived(rows int)
}

// ScoreStage is the scorer role's handler: decode, score, publish.
type ScoreStage struct {
	Scorer EventScorer
	Scores MessageWriter // risk.scores
	DLQ    MessageWriter // verify.events.dlq
	Log    *slog.Logger
	Obs    Observer
}

// Handle decodes and scores a batch and writes the results. It returns nil only once risk.scores
// and the dead-letter topic acknowledged every message of the batch, so the caller may commit.
// Retrying a batch is safe: the scorer does not count an event id twice and risk.scores consumers
// deduplicate by event_id.
func (s *ScoreStage) Handle(ctx context.Context, batch []kafka.Message) error {
	scores := make([]kafka.Message, 0, len(batch))
	levels := make([]int, 0, len(batch))
	var dead []kafka.Message
	for _, m := range batch {
		ev, err := schemas.DecodeEvent(m.Value)
		if err != nil {
			dead = append(dead, DeadLetter(m, err))
			continue
		}
		rec, err := s.Scorer.Process(&ev)
		if err != nil {
			if rec.EventID == "" { // nothing scored (no pack loaded): retry the batch later
				return fmt.Errorf("score event %s: %w", ev.EventID, err)
			}
			// A rule failed at run time; the verdict of the other rules stands. Logged, not fatal.
			logger(s.Log).Warn("rule evaluation error", "event_id", ev.EventID, "err", err)
		}
		v, err := json.Marshal(rec)
		if err != nil {
			return fmt.Errorf("encode score record %s: %w", rec.EventID, err)
		}
		scores = append(scores, kafka.Message{Key: []byte(rec.PhoneHash), Value: v})
		levels = append(levels, rec.Score)
	}
	if len(dead) > 0 {
		if err := s.DLQ.WriteMessages(ctx, dead...); err != nil {
			return fmt.Errorf("write %d messages to the dead-letter topic: %w", len(dead), err)
		}
		if s.Obs != nil {
			for range dead {
				s.Obs.DeadLettered("decode")
			}
		}
	}
	if len(scores) > 0 {
		if err := s.Scores.WriteMessages(ctx, scores...); err != nil {
			return fmt.Errorf("write %d score records: %w", len(scores), err)
		}
	}
	// Counted once written: a batch that fails and is retried is not counted twice.
	if s.Obs != nil {
		for _, l := range levels {
			s.Obs.Scored(l)
		}
	}
	return nil
}

func logger(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.Default()
	}
	return l
}

// Dead-letter headers: the original bytes are the message value; these say why and where from.
const (
	HeaderError     = "riskflow-error"
	HeaderField     = "riskflow-error-field"
	HeaderTopic     = "riskflow-source-topic"
	HeaderPartition = "riskflow-source-partition"
	HeaderOffset    = "riskflow-source-offset"
)

// DeadLetter builds the dead-letter message for m: the original key and bytes, and headers naming
// the error, the offending field and the source position.
func DeadLetter(m kafka.Message, err error) kafka.Message {
	field := ""
	var fe *schemas.FieldError
	if errors.As(err, &fe) {
		field = fe.Field
	}
	return kafka.Message{
		Key:   m.Key,
		Value: m.Value,
		Headers: []kafka.Header{
			{Key: HeaderError, Value: []byte(err.Error())},
			{Key: HeaderField, Value: []byte(field)},
			{Key: HeaderTopic, Value: []byte(m.Topic)},
			{Key: HeaderPartition, Value: []byte(strconv.Itoa(m.Partition))},
			{Key: HeaderOffset, Value: []byte(strconv.FormatInt(m.Offset, 10))},
		},
	}
}

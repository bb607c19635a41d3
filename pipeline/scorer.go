package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/riskflow/riskflow/consumers"
	"github.com/riskflow/riskflow/schemas"
)

// MessageWriter is the part of *kafka.Writer the stages need.
type MessageWriter interface {
	WriteMessages(ctx context.Context, msgs ...kafka.Message) error
}

// EventScorer scores a decoded event and records it (scoring.Scorer). ScoreStage calls it from
// several goroutines at once (one per partition of a batch).
type EventScorer interface {
	Process(ev *schemas.VerifyEvent) (schemas.ScoreRecord, error)
}

// Observer receives stage counts (metrics); methods must be cheap.
type Observer interface {
	Scored(score int)
	DeadLettered(reason string)
	Archived(rows int)
}

// ScoreStage is the scorer role's handler: decode, score, publish. It is a consumers.Stage (for
// NewStagedLoop: scoring the next batch overlaps writing this one) and has a consumers.Handler,
// Handle.
type ScoreStage struct {
	Scorer EventScorer
	Scores MessageWriter // risk.scores
	DLQ    MessageWriter // verify.events.dlq
	Log    *slog.Logger
	Obs    Observer
	// Workers scores the partitions of a batch in parallel (0 = GOMAXPROCS, 1 = serial). Order
	// within a partition — all attempts of one number — is kept, so per-phone windows see their
	// events in order; cross-partition features (per IP, device) see the interleaving any
	// multi-consumer deployment sees.
	Workers int
}

// outcome is what became of one message: a score record or a dead letter.
type outcome struct {
	msg   kafka.Message
	dead  bool
	level int
	err   error // nothing could be scored: retry the batch
}

// Handle decodes and scores a batch and writes the results: Prepare and its flush at once. It
// returns nil only once risk.scores and the dead-letter topic acknowledged every message of the
// batch, so the caller may commit. Retrying a batch is safe: the scorer does not count an event id
// twice and risk.scores consumers deduplicate by event_id.
func (s *ScoreStage) Handle(ctx context.Context, batch []kafka.Message) error {
	flush, err := s.Prepare(ctx, batch)
	if err != nil {
		return err
	}
	return flush(ctx)
}

// Prepare decodes and scores a batch (the consumers.Stage half that runs in batch order) and
// returns the flush that writes its dead letters and score records. A flush that fails is
// retried without scoring again, and without writing the dead letters again once they were
// acknowledged. It fails only when nothing could be scored (no rule pack loaded yet).
func (s *ScoreStage) Prepare(ctx context.Context, batch []kafka.Message) (consumers.Flush, error) {
	res := make([]outcome, len(batch))
	s.scoreAll(batch, res)
	scores := make([]kafka.Message, 0, len(batch))
	var dead []kafka.Message
	for i := range res {
		switch {
		case res[i].err != nil:
			return nil, res[i].err
		case res[i].dead:
			dead = append(dead, res[i].msg)
		default:
			scores = append(scores, res[i].msg)
		}
	}
	deadDone := len(dead) == 0
	return func(ctx context.Context) error {
		if !deadDone {
			if err := s.DLQ.WriteMessages(ctx, dead...); err != nil {
				return fmt.Errorf("write %d messages to the dead-letter topic: %w", len(dead), err)
			}
			deadDone = true
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
		// Counted once written: a flush that fails and is retried is not counted twice.
		if s.Obs != nil {
			for i := range res {
				if !res[i].dead {
					s.Obs.Scored(res[i].level)
				}
			}
		}
		return nil
	}, nil
}

// scoreAll fills res[i] for batch[i], partition by partition, partitions in parallel.
func (s *ScoreStage) scoreAll(batch []kafka.Message, res []outcome) {
	now := time.Now()
	workers := s.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	parts := map[int][]int{}
	for i := range batch {
		parts[batch[i].Partition] = append(parts[batch[i].Partition], i)
	}
	if workers == 1 || len(parts) == 1 {
		for i := range batch {
			res[i] = s.scoreOne(batch[i], now)
		}
		return
	}
	sem := make(chan struct{}, workers)
	var wg sync.WaitGroup
	for _, idx := range parts {
		wg.Add(1)
		sem <- struct{}{}
		go func(idx []int) {
			defer func() { <-sem; wg.Done() }()
			for _, i := range idx {
				res[i] = s.scoreOne(batch[i], now)
			}
		}(idx)
	}
	wg.Wait()
}

// Admit decodes a verify.events message and decides whether it may enter the feature state: it
// must decode and validate, and its ts may be at most MaxClockSkew after the message was produced
// (its Kafka timestamp, when it has one) and after now. The scorer dead-letters what Admit
// refuses, and the replay and replica feeds skip the same messages, so that a restarted scorer and
// an API node see the windows the scorer built. One case differs: an event from a producer whose
// whole clock runs ahead is refused live, but admitted by a replay that runs after its ts has
// passed (nothing in the message tells the two apart then).
func Admit(m kafka.Message, now time.Time) (schemas.VerifyEvent, error) {
	ev, err := schemas.DecodeEvent(m.Value)
	if err != nil {
		return ev, err
	}
	if !m.Time.IsZero() && m.Time.Before(now) {
		now = m.Time
	}
	if err := schemas.CheckNotFuture(&ev, now, schemas.MaxClockSkew); err != nil {
		return schemas.VerifyEvent{}, err
	}
	return ev, nil
}

func (s *ScoreStage) scoreOne(m kafka.Message, now time.Time) outcome {
	ev, err := Admit(m, now)
	if err != nil {
		return outcome{msg: DeadLetter(m, err), dead: true}
	}
	rec, err := s.Scorer.Process(&ev)
	if err != nil {
		if rec.EventID == "" { // nothing scored (no pack loaded): retry the batch later
			return outcome{err: fmt.Errorf("score event %s: %w", ev.EventID, err)}
		}
		// A rule failed at run time; the verdict of the other rules stands. Logged, not fatal.
		logger(s.Log).Warn("rule evaluation error", "event_id", ev.EventID, "err", err)
	}
	v, err := rec.MarshalJSON() // hand-written: json.Marshal would re-validate its output
	if err != nil {
		// A record JSON cannot hold (a timestamp beyond year 9999) stays so on every retry: dead-letter
		// the event rather than block its partition.
		return outcome{msg: DeadLetter(m, fmt.Errorf("encode score record: %w", err)), dead: true}
	}
	return outcome{msg: kafka.Message{Key: []byte(rec.PhoneHash), Value: v}, level: rec.Score}
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

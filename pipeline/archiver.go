package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/sony/gobreaker/v2"

	"github.com/riskflow/riskflow/consumers"
	"github.com/riskflow/riskflow/schemas"
)

// Sink stores score records durably. WriteBatch returns nil only when every record is stored; the
// same batch may be offered again after any error, so writes must be idempotent by event_id.
type Sink interface {
	WriteBatch(ctx context.Context, recs []schemas.ScoreRecord) error
}

// RejectedRecord is a sink error about one record that can never be stored (the sink is healthy;
// retrying would fail the same way). The stage dead-letters that record and stores the rest.
type RejectedRecord interface {
	error
	RejectedIndex() int // position of the record in the batch given to WriteBatch
}

// ArchiveStage is the archiver role's handler: decode risk.scores records and store them.
type ArchiveStage struct {
	Sink Sink
	DLQ  MessageWriter // undecodable records go here (they cannot be stored)
	Log  *slog.Logger
	Obs  Observer
	// MaxMessageBytes: dead letters are truncated to it (see ScoreStage.MaxMessageBytes).
	MaxMessageBytes int
}

// writeDead writes dead letters, truncated to fit; one the broker still refuses is logged and
// dropped rather than retried for ever.
func (a *ArchiveStage) writeDead(ctx context.Context, dead ...kafka.Message) error {
	limit := a.MaxMessageBytes
	if limit <= 0 {
		limit = consumers.Config{}.BatchBytes()
	}
	for i := range dead {
		dead[i] = FitDeadLetter(dead[i], limit)
	}
	for len(dead) > 0 {
		rejected, retry, err := consumers.Produce(ctx, a.DLQ, dead, limit)
		for _, r := range rejected {
			logger(a.Log).Error("dead letter cannot be written; dropped", "bytes", len(dead[r.Index].Value), "err", consumers.Summarize(r.Err))
		}
		if err != nil {
			return err
		}
		dead = keep(dead, retry)
	}
	return nil
}

// Handle stores a batch; nil means durable, and the caller commits.
func (a *ArchiveStage) Handle(ctx context.Context, batch []kafka.Message) error {
	recs := make([]schemas.ScoreRecord, 0, len(batch))
	src := make([]kafka.Message, 0, len(batch)) // src[i] is the message recs[i] came from
	var dead []kafka.Message
	for _, m := range batch {
		r, err := schemas.DecodeScoreRecord(m.Value)
		if err != nil {
			dead = append(dead, DeadLetter(m, err))
			continue
		}
		recs = append(recs, r)
		src = append(src, m)
	}
	if len(dead) > 0 {
		if err := a.writeDead(ctx, dead...); err != nil {
			return fmt.Errorf("write %d undecodable score records to the dead-letter topic: %w", len(dead), err)
		}
		logger(a.Log).Warn("undecodable score records dead-lettered", "count", len(dead))
		if a.Obs != nil {
			for range dead {
				a.Obs.DeadLettered("decode_score_record")
			}
		}
	}
	for len(recs) > 0 {
		err := a.Sink.WriteBatch(ctx, recs)
		var rej RejectedRecord
		if err == nil {
			break
		}
		if !errors.As(err, &rej) || rej.RejectedIndex() < 0 || rej.RejectedIndex() >= len(recs) {
			return fmt.Errorf("archive %d records: %w", len(recs), err)
		}
		// A poison record: dead-letter it and store the others, instead of retrying forever.
		i := rej.RejectedIndex()
		if err := a.writeDead(ctx, DeadLetter(src[i], rej)); err != nil {
			return fmt.Errorf("dead-letter unstorable record %s: %w", recs[i].EventID, err)
		}
		logger(a.Log).Error("score record cannot be stored; dead-lettered", "event_id", recs[i].EventID, "err", rej)
		if a.Obs != nil {
			a.Obs.DeadLettered("unstorable_record")
		}
		recs = append(recs[:i], recs[i+1:]...)
		src = append(src[:i], src[i+1:]...)
	}
	if a.Obs != nil {
		a.Obs.Archived(len(recs))
	}
	return nil
}

// BreakerConfig tunes the circuit breaker around a sink.
type BreakerConfig struct {
	Failures uint32        // consecutive failures that open it; default 3
	OpenFor  time.Duration // how long it stays open before a probe; default 5 s
}

// BreakerSink guards a sink with a gobreaker circuit breaker. While open, WriteBatch fails at once
// with ErrOpen, so the archiver stops hammering a dead ClickHouse and — because its loop retries the
// same batch instead of fetching more — stops consuming: Kafka buffers until the sink is back.
type BreakerSink struct {
	sink Sink
	cb   *gobreaker.CircuitBreaker[struct{}]
}

// ErrOpen is returned while the breaker is open.
var ErrOpen = gobreaker.ErrOpenState

// NewBreakerSink wraps sink; onState (may be nil) hears every state change.
func NewBreakerSink(name string, sink Sink, cfg BreakerConfig, log *slog.Logger, onState func(state string)) *BreakerSink {
	if cfg.Failures == 0 {
		cfg.Failures = 3
	}
	if cfg.OpenFor <= 0 {
		cfg.OpenFor = 5 * time.Second
	}
	st := gobreaker.Settings{
		Name:        name,
		MaxRequests: 1,
		Timeout:     cfg.OpenFor,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= cfg.Failures },
		// The caller giving up (shutdown) says nothing about the sink's health: such a call counts
		// neither as a failure nor as a success (a success would close a half-open breaker and
		// reset the run of consecutive failures without the sink having answered).
		IsExcluded: func(err error) bool { return errors.Is(err, context.Canceled) },
		// A record the sink refuses says nothing against the sink's health either.
		IsSuccessful: func(err error) bool {
			var rej RejectedRecord
			return err == nil || errors.As(err, &rej)
		},
		OnStateChange: func(name string, from, to gobreaker.State) {
			log.Warn("circuit breaker state change", "breaker", name, "from", from.String(), "to", to.String())
			if onState != nil {
				onState(to.String())
			}
		},
	}
	return &BreakerSink{sink: sink, cb: gobreaker.NewCircuitBreaker[struct{}](st)}
}

// WriteBatch implements Sink.
func (b *BreakerSink) WriteBatch(ctx context.Context, recs []schemas.ScoreRecord) error {
	_, err := b.cb.Execute(func() (struct{}, error) {
		err := b.sink.WriteBatch(ctx, recs)
		if err != nil && errors.Is(ctx.Err(), context.Canceled) && !errors.Is(err, context.Canceled) {
			// Drivers do not always wrap the context's error; the cancellation is what happened.
			err = fmt.Errorf("%w: %w", context.Canceled, err)
		}
		return struct{}{}, err
	})
	return err
}

// State is "closed", "half-open" or "open".
func (b *BreakerSink) State() string { return b.cb.State().String() }

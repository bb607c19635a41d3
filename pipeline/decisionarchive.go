package pipeline

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/segmentio/kafka-go"

	"github.com/riskflow/riskflow/consumers"
	"github.com/riskflow/riskflow/schemas"
)

// DecisionSink stores decisions durably (chsink: risk_decisions). WriteDecisions returns nil only
// when every decision is stored; the same batch may be offered again after any error, so writes
// must be idempotent by (app_id, decision_id).
type DecisionSink interface {
	WriteDecisions(ctx context.Context, ds []schemas.Decision) error
}

// DecisionArchiveStage is the archiver's path for risk.decisions: decode the decisions of a batch,
// dead-letter the undecodable ones, store the rest. Its Handle returns nil only once the sink
// acknowledged the batch, so the loop commits offsets only after the write is durable.
type DecisionArchiveStage struct {
	Sink DecisionSink
	DLQ  MessageWriter
	Log  *slog.Logger
	// MaxMessageBytes: dead letters are truncated to it (see ScoreStage.MaxMessageBytes).
	MaxMessageBytes int
	// Archived, if set, hears how many decisions each stored batch held.
	Archived func(n int)
}

// Handle implements consumers.Handler.
func (a *DecisionArchiveStage) Handle(ctx context.Context, batch []kafka.Message) error {
	ds := make([]schemas.Decision, 0, len(batch))
	var dead []kafka.Message
	limit := a.MaxMessageBytes
	if limit <= 0 {
		limit = consumers.Config{}.BatchBytes()
	}
	for i := range batch {
		d, err := schemas.DecodeDecision(batch[i].Value)
		if err != nil {
			dead = append(dead, FitDeadLetter(DeadLetter(batch[i], fmt.Errorf("decode decision: %w", err)), limit))
			continue
		}
		ds = append(ds, d)
	}
	if err := a.Sink.WriteDecisions(ctx, ds); err != nil {
		return fmt.Errorf("archive %d decisions: %w", len(ds), err)
	}
	if a.Archived != nil {
		a.Archived(len(ds))
	}
	if len(dead) == 0 {
		return nil
	}
	// After the decisions are stored: a retry after a failed dead-letter write stores them again,
	// which the table's key makes harmless.
	logger(a.Log).Warn("undecodable decisions go to the dead-letter topic", "count", len(dead))
	rejected, retry, err := consumers.Produce(ctx, a.DLQ, dead, limit)
	for _, r := range rejected {
		logger(a.Log).Error("dead letter cannot be written; dropped", "bytes", len(dead[r.Index].Value), "err", consumers.Summarize(r.Err))
	}
	if err != nil {
		return fmt.Errorf("write %d dead letters of risk.decisions: %w", len(retry), err)
	}
	return nil
}

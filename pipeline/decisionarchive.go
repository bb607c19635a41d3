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
// must be idempotent by (app_id, decision_id). A decision it can never store is reported as a
// RejectedRecord (or RejectedRecords) naming its position, before anything is written.
type DecisionSink interface {
	WriteDecisions(ctx context.Context, ds []schemas.Decision) error
}

// DecisionArchiveStage is the archiver's path for risk.decisions: decode the decisions of a batch,
// dead-letter the undecodable ones and those the sink refuses for good (a RejectedRecord), store
// the rest. Its Handle returns nil only once the sink
// acknowledged the batch, so the loop commits offsets only after the write is durable.
type DecisionArchiveStage struct {
	Sink DecisionSink
	DLQ  MessageWriter
	Log  *slog.Logger
	// MaxMessageBytes: dead letters are truncated to it (see ScoreStage.MaxMessageBytes).
	MaxMessageBytes int
	// Archived, if set, hears how many decisions each stored batch held.
	Archived func(n int)
	// DeadLettered, if set, hears each dead letter the dead-letter topic acknowledged, by reason
	// (decode_decision, unstorable_decision), and each one the broker refused for good
	// (dropped_unwritable): what never reaches risk_decisions is counted, not only logged.
	DeadLettered func(reason string)
}

// Handle implements consumers.Handler.
func (a *DecisionArchiveStage) Handle(ctx context.Context, batch []kafka.Message) error {
	ds := make([]schemas.Decision, 0, len(batch))
	src := make([]int, 0, len(batch)) // ds[i] was decoded from batch[src[i]]
	var dead []kafka.Message
	var reasons []string // of dead, by index
	limit := a.MaxMessageBytes
	if limit <= 0 {
		limit = consumers.Config{}.BatchBytes()
	}
	for i := range batch {
		var d schemas.Decision
		var err error
		if len(batch[i].Value) == 0 {
			err = EmptyMessage("a decision JSON object")
		} else {
			d, err = schemas.DecodeDecision(batch[i].Value)
		}
		if err != nil {
			dead = append(dead, FitDeadLetter(DeadLetter(batch[i], fmt.Errorf("decode decision: %w", err)), limit))
			reasons = append(reasons, ReasonDecodeDecision)
			continue
		}
		ds, src = append(ds, d), append(src, i)
	}
	for {
		err := a.Sink.WriteDecisions(ctx, ds)
		if err == nil {
			break
		}
		// Decisions the sink can never store (it checks them before it sends anything): retried
		// as they are, they would hold the partition for ever. Dead-letter them, store the rest.
		rejected := rejections(err, len(ds))
		if rejected == nil {
			return fmt.Errorf("archive %d decisions: %w", len(ds), err)
		}
		drop := make(map[int]bool, len(rejected))
		for _, r := range rejected {
			drop[r.index] = true
			logger(a.Log).Error("decision cannot be stored; dead-lettered", "decision_id", schemas.Excerpt(ds[r.index].DecisionID, 80), "err", r.err)
			dead = append(dead, FitDeadLetter(DeadLetter(batch[src[r.index]], r.err), limit))
			reasons = append(reasons, ReasonUnstorableDecision)
		}
		n := 0
		for i := range ds {
			if !drop[i] {
				ds[n], src[n] = ds[i], src[i]
				n++
			}
		}
		ds, src = ds[:n], src[:n]
	}
	if a.Archived != nil {
		a.Archived(len(ds))
	}
	if len(dead) == 0 {
		return nil
	}
	// After the decisions are stored: a retry after a failed dead-letter write stores them again,
	// which the table's key makes harmless.
	logger(a.Log).Warn("undecodable or unstorable decisions go to the dead-letter topic", "count", len(dead))
	rejected, retry, err := consumers.Produce(ctx, a.DLQ, dead, limit)
	unacked := make(map[int]bool, len(retry)+len(rejected))
	for _, i := range retry {
		unacked[i] = true
	}
	for _, r := range rejected {
		unacked[r.Index] = true
		logger(a.Log).Error("dead letter cannot be written; dropped", "bytes", len(dead[r.Index].Value), "err", consumers.Summarize(r.Err))
		if a.DeadLettered != nil {
			a.DeadLettered(ReasonDroppedUnwritable)
		}
	}
	if a.DeadLettered != nil {
		for i := range dead {
			if !unacked[i] {
				a.DeadLettered(reasons[i])
			}
		}
	}
	if err != nil {
		return fmt.Errorf("write %d dead letters of risk.decisions: %w", len(retry), err)
	}
	return nil
}

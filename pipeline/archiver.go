package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"sync"

	"github.com/segmentio/kafka-go"

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

// RejectedRecords is a sink error about every record of a batch that can never be stored, found
// at once (chsink checks the whole batch before it sends anything). Each of Rejections is a
// RejectedRecord. The stage dead-letters them all and stores the rest with one more write, where
// one rejection at a time would cost a write (and a check of the whole batch) per record.
type RejectedRecords interface {
	error
	Rejections() []error
}

// ArchiveStage is the archiver role's stage: decode risk.scores records and store them. It is a
// consumers.Stage — with NewStagedLoop the next batch is decoded while this one is written, and
// batches still commit in order, each once its write was acknowledged — and has a
// consumers.Handler, Handle (Prepare and its flush at once).
//
// The decoded records point into the messages' Value bytes (no copy): a batch's values must not
// change until its flush has returned nil, which holds for kafka-go's messages and the loops.
type ArchiveStage struct {
	Sink Sink
	DLQ  MessageWriter // undecodable and unstorable records go here
	Log  *slog.Logger
	Obs  Observer
	// MaxMessageBytes: dead letters are truncated to it (see ScoreStage.MaxMessageBytes).
	MaxMessageBytes int
	// Workers decode a batch in that many parallel slices (0 = GOMAXPROCS, 1 = serial). Records
	// keep their batch order either way.
	Workers int
}

// Handle stores a batch; nil means durable, and the caller may commit.
func (a *ArchiveStage) Handle(ctx context.Context, batch []kafka.Message) error {
	flush, err := a.Prepare(ctx, batch)
	if err != nil {
		return err
	}
	return flush(ctx)
}

// Prepare decodes a batch (the consumers.Stage half that runs in batch order; it cannot fail)
// and returns the flush that writes it: first the dead letters of undecodable records, then the
// records to the sink. The flush may be called again after it failed; it then writes only what
// is not acknowledged yet — dead letters are written once, and the records go to the sink again
// as a whole (which the sink's idempotence by event id allows).
func (a *ArchiveStage) Prepare(_ context.Context, batch []kafka.Message) (consumers.Flush, error) {
	recs := getRecords(len(batch))
	errs := make([]error, len(batch))
	a.decodeAll(batch, recs, errs)
	f := &archiveFlush{a: a, recs: recs, src: batch, pooled: recs}
	if n := countErrs(errs); n > 0 {
		// Undecodable records leave the batch (in place, keeping the order) for the dead-letter topic.
		f.src = make([]kafka.Message, 0, len(batch)-n)
		k := 0
		for i := range batch {
			if errs[i] != nil {
				f.dead = append(f.dead, deadLetter{msg: DeadLetter(batch[i], errs[i]), reason: ReasonDecodeScoreRecord})
				continue
			}
			recs[k] = recs[i]
			f.src = append(f.src, batch[i])
			k++
		}
		clear(recs[k:])
		f.recs = recs[:k]
		logger(a.Log).Warn("undecodable score records go to the dead-letter topic", "count", n)
	}
	return f.flush, nil
}

func countErrs(errs []error) int {
	n := 0
	for _, e := range errs {
		if e != nil {
			n++
		}
	}
	return n
}

// decodeAll decodes batch[i] into recs[i] (or errs[i]), in Workers contiguous slices at once.
func (a *ArchiveStage) decodeAll(batch []kafka.Message, recs []schemas.ScoreRecord, errs []error) {
	workers := a.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	const minPerWorker = 256 // below this a goroutine costs more than it saves
	workers = min(workers, max(1, len(batch)/minPerWorker))
	decode := func(lo, hi int) {
		for i := lo; i < hi; i++ {
			if len(batch[i].Value) == 0 {
				errs[i] = fmt.Errorf("decode score record: %w", EmptyMessage("a score record JSON object"))
				continue
			}
			// The records share the messages' bytes: the batch outlives its flush.
			errs[i] = decodeScoreRecordInto(batch[i].Value, &recs[i], true)
		}
	}
	if workers == 1 {
		decode(0, len(batch))
		return
	}
	var wg sync.WaitGroup
	per := (len(batch) + workers - 1) / workers
	for lo := 0; lo < len(batch); lo += per {
		wg.Add(1)
		go func() {
			defer wg.Done()
			decode(lo, min(lo+per, len(batch)))
		}()
	}
	wg.Wait()
}

func (a *ArchiveStage) maxBytes() int {
	if a.MaxMessageBytes > 0 {
		return a.MaxMessageBytes
	}
	return consumers.Config{}.BatchBytes()
}

// archiveFlush is the write half of a decoded batch. What is acknowledged leaves its lists, so a
// retry writes only the rest.
type archiveFlush struct {
	a      *ArchiveStage
	dead   []deadLetter          // dead letters not yet acknowledged
	recs   []schemas.ScoreRecord // records not yet stored,
	src    []kafka.Message       // and the messages they came from (read only: may be the batch)
	pooled []schemas.ScoreRecord // the array recs lives in, returned to recordPool once stored
}

// recordPool recycles the record arrays of stored batches: a batch of 100,000 decoded records is
// 46 MB, and a fresh array costs the page faults of touching it, and the collector the work of
// reclaiming the last one.
var recordPool sync.Pool // of *[]schemas.ScoreRecord

// getRecords returns n zero records.
func getRecords(n int) []schemas.ScoreRecord {
	if p, ok := recordPool.Get().(*[]schemas.ScoreRecord); ok && cap(*p) >= n {
		return (*p)[:n]
	}
	return make([]schemas.ScoreRecord, n)
}

// putRecords recycles recs, zeroed (so that it holds on to no message bytes).
func putRecords(recs []schemas.ScoreRecord) {
	if cap(recs) == 0 {
		return
	}
	recs = recs[:cap(recs)]
	clear(recs)
	recordPool.Put(&recs)
}

func (f *archiveFlush) flush(ctx context.Context) error {
	if err := f.writeDead(ctx); err != nil {
		return err
	}
	for len(f.recs) > 0 {
		err := f.a.Sink.WriteBatch(ctx, f.recs)
		if err == nil {
			if f.a.Obs != nil {
				f.a.Obs.Archived(len(f.recs))
			}
			f.recs, f.src = nil, nil
			putRecords(f.pooled) // stored: the sink keeps no reference to them
			f.pooled = nil
			return nil
		}
		rejected := rejections(err, len(f.recs))
		if rejected == nil {
			return fmt.Errorf("archive %d records: %w", len(f.recs), err)
		}
		// Records the sink can never store: dead-letter them all, then store the rest — one more
		// write, however many were refused.
		drop := make(map[int]bool, len(rejected))
		for _, r := range rejected {
			drop[r.index] = true
			logger(f.a.Log).Error("score record cannot be stored; dead-lettered", "event_id", f.recs[r.index].EventID, "err", r.err)
			f.dead = append(f.dead, deadLetter{msg: DeadLetter(f.src[r.index], r.err), reason: ReasonUnstorableRecord})
		}
		// recs is the flush's own; src may be the loop's batch, which must stay as it is.
		src := make([]kafka.Message, 0, len(f.src)-len(rejected))
		n := 0
		for i := range f.recs {
			if !drop[i] {
				f.recs[n] = f.recs[i]
				src = append(src, f.src[i])
				n++
			}
		}
		clear(f.recs[n:])
		f.recs, f.src = f.recs[:n], src
		if err := f.writeDead(ctx); err != nil {
			return err
		}
	}
	return nil
}

// rejection is one record the sink refused for good.
type rejection struct {
	index int
	err   error
}

// rejections returns the records err says can never be stored, in batch order, or nil when err
// is a failure to retry (including a rejection that names no record of the batch, or one twice).
func rejections(err error, n int) []rejection {
	var list []error
	var many RejectedRecords
	var one RejectedRecord
	switch {
	case errors.As(err, &many):
		list = many.Rejections()
	case errors.As(err, &one):
		list = []error{one}
	default:
		return nil
	}
	out := make([]rejection, 0, len(list))
	seen := make(map[int]bool, len(list))
	for _, e := range list {
		var r RejectedRecord
		if !errors.As(e, &r) {
			return nil
		}
		i := r.RejectedIndex()
		if i < 0 || i >= n || seen[i] {
			return nil
		}
		seen[i] = true
		out = append(out, rejection{index: i, err: e})
	}
	if len(out) == 0 {
		return nil
	}
	slices.SortFunc(out, func(a, b rejection) int { return a.index - b.index })
	return out
}

// writeDead writes the pending dead letters, truncated to fit. One the broker still refuses is
// logged and dropped rather than retried for ever; the others leave the list once acknowledged.
func (f *archiveFlush) writeDead(ctx context.Context) error {
	if len(f.dead) == 0 {
		return nil
	}
	limit := f.a.maxBytes()
	msgs := make([]kafka.Message, len(f.dead))
	for i := range f.dead {
		msgs[i] = FitDeadLetter(f.dead[i].msg, limit)
	}
	rejected, retry, err := consumers.Produce(ctx, f.a.DLQ, msgs, limit)
	skip := make(map[int]bool, len(retry)+len(rejected))
	for _, i := range retry {
		skip[i] = true
	}
	for _, r := range rejected {
		skip[r.Index] = true
		logger(f.a.Log).Error("dead letter cannot be written; dropped", "bytes", len(msgs[r.Index].Value), "err", consumers.Summarize(r.Err))
		if f.a.Obs != nil {
			f.a.Obs.DeadLettered(ReasonDroppedUnwritable)
		}
	}
	if f.a.Obs != nil {
		for i := range f.dead {
			if !skip[i] {
				f.a.Obs.DeadLettered(f.dead[i].reason)
			}
		}
	}
	f.dead = keep(f.dead, retry)
	if err != nil {
		return fmt.Errorf("write %d dead letters to the dead-letter topic: %w", len(retry), err)
	}
	return nil
}

// BreakerSink guards a sink with a circuit breaker (Breaker). While open, WriteBatch fails at once
// with ErrOpen, so the archiver stops hammering a dead ClickHouse and — because its loop retries the
// same batch instead of fetching more — stops consuming: Kafka buffers until the sink is back.
type BreakerSink struct {
	sink Sink
	b    *Breaker
}

// NewBreakerSink wraps sink; onState (may be nil) hears every state change.
func NewBreakerSink(name string, sink Sink, cfg BreakerConfig, log *slog.Logger, onState func(state string)) *BreakerSink {
	return &BreakerSink{sink: sink, b: NewBreaker(name, cfg, SinkFailed, log, onState)}
}

// SinkFailed is the archiver's breaker's classifier: every error of a write counts against the
// sink but a record the sink refuses (RejectedRecord, RejectedRecords), which says nothing
// against the sink's health.
func SinkFailed(err error) bool {
	var rej RejectedRecord
	var many RejectedRecords
	return !errors.As(err, &rej) && !errors.As(err, &many)
}

// WriteBatch implements Sink.
func (b *BreakerSink) WriteBatch(ctx context.Context, recs []schemas.ScoreRecord) error {
	return b.b.Do(ctx, func() error { return b.sink.WriteBatch(ctx, recs) })
}

// State is "closed", "half-open" or "open".
func (b *BreakerSink) State() string { return b.b.State() }

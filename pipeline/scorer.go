package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
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
	// MaxMessageBytes is the largest message the writers send (consumers.Config.BatchBytes): a
	// score record over it is dead-lettered instead, and a dead letter over it is truncated.
	// 0 means consumers.DefaultMaxMessageBytes' share.
	MaxMessageBytes int
	// Gate, when set, is the node's full-state feed: before a batch is scored, Prepare waits up to
	// GateWait (default 2 s) until the feed has applied every partition up to the batch's newest
	// message time and event ts (consumers.Point), so per-IP, device, network and prefix windows
	// count the attempts that other scorers' partitions carried until then. Features are
	// event-time, so state that runs ahead does not leak into an earlier event. A wait that times
	// out scores anyway (counted).
	Gate     Gate
	GateWait time.Duration
	// Workers scores the partitions of a batch in parallel (0 = GOMAXPROCS, 1 = serial). Order
	// within a partition — all attempts of one number — is kept, so per-phone windows see their
	// events in order; cross-partition features (per IP, device) see the interleaving any
	// multi-consumer deployment sees.
	Workers int
}

// Gate is a feature state's feed as a scorer waits on it (Feed).
type Gate interface {
	WaitApplied(ctx context.Context, at consumers.Point, max time.Duration) (waited time.Duration, ok bool)
}

// HitObserver, if the stage's Observer has it, hears the rule hits (enforce, shadow, tag, allow)
// of every score record written.
type HitObserver interface {
	RuleHits(hits []schemas.RuleHit)
}

// GateObserver, if the stage's Observer has it, hears every gate wait: how long, whether it was
// met, and whether the batch was waited for by event time (a replay or backlog: consumers.Point).
type GateObserver interface {
	GateWaited(waited time.Duration, ok, replayed bool)
}

// waitGate waits for the feed to reach the newest message time and event ts of batch (evs[i] is
// batch[i]'s event, its ts zero when it did not decode).
func (s *ScoreStage) waitGate(ctx context.Context, batch []kafka.Message, evs []schemas.VerifyEvent) {
	if s.Gate == nil {
		return
	}
	var at consumers.Point
	for i := range batch {
		if batch[i].Time.After(at.Stamp) {
			at.Stamp = batch[i].Time
		}
		if evs[i].TS.After(at.Event) {
			at.Event = evs[i].TS
		}
		if !slices.Contains(at.Partitions, batch[i].Partition) {
			at.Partitions = append(at.Partitions, batch[i].Partition)
		}
	}
	if at.Stamp.IsZero() {
		return
	}
	limit := s.GateWait
	if limit <= 0 {
		limit = 2 * time.Second
	}
	waited, ok := s.Gate.WaitApplied(ctx, at, limit)
	if o, has := s.Obs.(GateObserver); has {
		o.GateWaited(waited, ok, at.Replayed())
	}
}

// outcome is what became of one message: a score record or a dead letter.
type outcome struct {
	msg   kafka.Message
	dead  bool
	level int
	hits  []schemas.RuleHit
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
// retried without scoring again, writing only what was not acknowledged yet. It fails only when
// nothing could be scored (no rule pack loaded yet).
func (s *ScoreStage) Prepare(ctx context.Context, batch []kafka.Message) (consumers.Flush, error) {
	res := make([]outcome, len(batch))
	evs := make([]schemas.VerifyEvent, len(batch))
	now := time.Now()
	s.eachPartition(batch, func(i int) {
		var err error
		if evs[i], err = Admit(batch[i], now); err != nil { // *schemas.FieldError: dead-lettered
			res[i] = outcome{msg: DeadLetter(batch[i], err), dead: true}
		}
	})
	s.waitGate(ctx, batch, evs)
	s.eachPartition(batch, func(i int) {
		if !res[i].dead {
			res[i] = s.scoreOne(batch[i], &evs[i])
		}
	})
	f := &scoreFlush{s: s, max: s.maxBytes()}
	for i := range res {
		switch {
		case res[i].err != nil:
			return nil, res[i].err
		case res[i].dead:
			f.dead = append(f.dead, deadLetter{msg: res[i].msg, reason: ReasonDecode})
		default:
			f.scores = append(f.scores, res[i].msg)
			f.levels = append(f.levels, res[i].level)
			f.hits = append(f.hits, res[i].hits)
			f.src = append(f.src, batch[i])
		}
	}
	return f.flush, nil
}

func (s *ScoreStage) maxBytes() int {
	if s.MaxMessageBytes > 0 {
		return s.MaxMessageBytes
	}
	return consumers.Config{}.BatchBytes()
}

// deadLetter is a dead letter waiting to be written and the reason it is counted under.
type deadLetter struct {
	msg    kafka.Message
	reason string
}

// scoreFlush is the write half of a scored batch. What is acknowledged leaves its lists, so a retry
// writes only the rest: dead letters are never written twice, score records only when an
// acknowledgement was lost.
type scoreFlush struct {
	s      *ScoreStage
	max    int
	dead   []deadLetter
	scores []kafka.Message     // score records still to write,
	levels []int               // their scores,
	hits   [][]schemas.RuleHit // their rule hits,
	src    []kafka.Message     // and the events they came from
}

func (f *scoreFlush) flush(ctx context.Context) error {
	if err := f.writeDead(ctx); err != nil {
		return err
	}
	if len(f.scores) > 0 {
		rejected, retry, err := consumers.Produce(ctx, f.s.Scores, f.scores, f.max)
		f.countScored(retry, rejected)
		// A record the broker can never take would block its partition for ever: its event is
		// dead-lettered instead (the verdict is lost, the event is kept and the reason logged).
		for _, r := range rejected {
			logger(f.s.Log).Error("score record cannot be written; its event is dead-lettered",
				"event_key", string(f.scores[r.Index].Key), "bytes", len(f.scores[r.Index].Value), "err", consumers.Summarize(r.Err))
			f.dead = append(f.dead, deadLetter{msg: DeadLetter(f.src[r.Index], fmt.Errorf("write score record: %w", r.Err)), reason: ReasonUnwritableRecord})
		}
		f.scores, f.levels, f.hits, f.src = keep(f.scores, retry), keep(f.levels, retry), keep(f.hits, retry), keep(f.src, retry)
		if err := f.writeDead(ctx); err != nil {
			return err
		}
		if err != nil {
			return fmt.Errorf("write score records: %w", err)
		}
	}
	return nil
}

// countScored counts the records just written: all but those to retry and those rejected.
func (f *scoreFlush) countScored(retry []int, rejected []consumers.Rejection) {
	if f.s.Obs == nil {
		return
	}
	skip := make(map[int]bool, len(retry)+len(rejected))
	for _, i := range retry {
		skip[i] = true
	}
	for _, r := range rejected {
		skip[r.Index] = true
	}
	ho, _ := f.s.Obs.(HitObserver)
	for i, level := range f.levels {
		if !skip[i] {
			f.s.Obs.Scored(level)
			if ho != nil && len(f.hits[i]) > 0 {
				ho.RuleHits(f.hits[i])
			}
		}
	}
}

// writeDead writes the pending dead letters, truncated to fit. One the broker still refuses is
// logged and dropped: nothing smaller can be written for it, and retrying would block the batch.
func (f *scoreFlush) writeDead(ctx context.Context) error {
	if len(f.dead) == 0 {
		return nil
	}
	msgs := make([]kafka.Message, len(f.dead))
	for i := range f.dead {
		msgs[i] = FitDeadLetter(f.dead[i].msg, f.max)
	}
	rejected, retry, err := consumers.Produce(ctx, f.s.DLQ, msgs, f.max)
	skip := make(map[int]bool, len(retry))
	for _, i := range retry {
		skip[i] = true
	}
	for _, r := range rejected {
		skip[r.Index] = true
		logger(f.s.Log).Error("dead letter cannot be written; dropped", "bytes", len(msgs[r.Index].Value), "err", consumers.Summarize(r.Err))
		if f.s.Obs != nil {
			f.s.Obs.DeadLettered(ReasonDroppedUnwritable)
		}
	}
	if f.s.Obs != nil {
		for i := range f.dead {
			if !skip[i] {
				f.s.Obs.DeadLettered(f.dead[i].reason)
			}
		}
	}
	f.dead = keep(f.dead, retry)
	if err != nil {
		return fmt.Errorf("write to the dead-letter topic: %w", err)
	}
	return nil
}

// keep returns the elements of xs at the (ascending) indexes idx.
func keep[T any](xs []T, idx []int) []T {
	out := make([]T, 0, len(idx))
	for _, i := range idx {
		out = append(out, xs[i])
	}
	return out
}

// eachPartition calls fn(i) for every index of batch: in offset order within a partition,
// partitions in parallel (at most Workers at once).
func (s *ScoreStage) eachPartition(batch []kafka.Message, fn func(i int)) {
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
			fn(i)
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
				fn(i)
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
	if len(m.Value) == 0 {
		return schemas.VerifyEvent{}, EmptyMessage("a VerifyEvent JSON object")
	}
	ev, err := schemas.DecodeEvent(m.Value)
	if err != nil {
		return ev, err
	}
	if err := schemas.CheckNotFuture(&ev, now, schemas.MaxClockSkew); err != nil {
		if m.Time.Sub(now) > schemas.MaxClockSkew && ev.TS.Sub(m.Time) <= schemas.MaxClockSkew {
			// Its message was stamped ahead of this node's clock too (by its producer or the
			// broker): this node's own clock is the likelier cause.
			return schemas.VerifyEvent{}, &schemas.FieldError{Field: "ts", Reason: fmt.Sprintf(
				"%s is %s in the future of this node's clock, %s, and so is the Kafka timestamp of its message, %s (allowed clock skew %s): this node's clock is likely behind (check its NTP)",
				ev.TS.Format(time.RFC3339), ev.TS.Sub(now).Round(time.Second), now.UTC().Format(time.RFC3339), m.Time.UTC().Format(time.RFC3339Nano), schemas.MaxClockSkew)}
		}
		return schemas.VerifyEvent{}, err
	}
	if !m.Time.IsZero() && m.Time.Before(now) {
		// The message's own timestamp is the bound: named, as the event's ts is not in the future
		// (a producer stamping records 1970-01-01 had every event refused as "499052h in the future").
		if ahead := ev.TS.Sub(m.Time); ahead > schemas.MaxClockSkew {
			return schemas.VerifyEvent{}, &schemas.FieldError{Field: "ts", Reason: fmt.Sprintf(
				"%s is %s after the Kafka timestamp of its message, %s (allowed clock skew %s): is the producer's clock or record timestamp wrong?",
				ev.TS.Format(time.RFC3339), ahead.Round(time.Second), m.Time.UTC().Format(time.RFC3339Nano), schemas.MaxClockSkew)}
		}
	}
	return ev, nil
}

// EmptyMessage is the error of a message without a value — a tombstone (null value) or an empty
// one — where want was expected. The decoders would call it invalid JSON ("unexpected end of
// input"), which sends an operator looking for a cut message instead of a producer that deletes.
func EmptyMessage(want string) error {
	return &schemas.FieldError{Reason: "empty message (no value: a tombstone?), expected " + want}
}

// ReuseChecker, if the stage's Scorer has it (scoring.Scorer), says whether an event is an id
// the feature state already counted with another ts: another attempt under a reused id, not a
// re-delivery (a *schemas.FieldError; nil otherwise). The stage dead-letters such an event
// instead of scoring it: the state counts an id once, the first time, and a record of the other
// copy would replace the first one's in ClickHouse (or sit beside it, in another day's partition
// that merges never collapse).
type ReuseChecker interface {
	CheckReuse(ev *schemas.VerifyEvent) error
}

// scoreOne scores m, whose admitted event is ev.
func (s *ScoreStage) scoreOne(m kafka.Message, ev *schemas.VerifyEvent) outcome {
	if rc, ok := s.Scorer.(ReuseChecker); ok {
		if err := rc.CheckReuse(ev); err != nil {
			return outcome{msg: DeadLetter(m, err), dead: true}
		}
	}
	rec, err := s.Scorer.Process(ev)
	switch schemas.Classify(err) {
	case schemas.Proceed:
		// err, if any, is a rule that failed at run time: the verdict of the other rules stands.
		// The scorer counts and logs it (at most once per 10 s per rule, not once per event).
	case schemas.DeadLetter:
		return outcome{msg: DeadLetter(m, err), dead: true}
	case schemas.Fail:
		logger(s.Log).Error("scorer cannot score; the batch is retried until it is fixed", "err", err)
		return outcome{err: fmt.Errorf("score event %s: %w", ev.EventID, err)}
	default: // Retry: nothing scored (no pack loaded yet)
		return outcome{err: fmt.Errorf("score event %s: %w", ev.EventID, err)}
	}
	v, err := rec.MarshalJSON() // hand-written: json.Marshal would re-validate its output
	if err != nil {
		// A record JSON cannot hold (a timestamp beyond year 9999) stays so on every retry: dead-letter
		// the event rather than block its partition.
		return outcome{msg: DeadLetter(m, fmt.Errorf("encode score record: %w", err)), dead: true}
	}
	return outcome{msg: kafka.Message{Key: []byte(rec.PhoneHash), Value: v}, level: rec.Score, hits: rec.Hits}
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

// HeaderTruncated is set on a dead letter whose value was cut to fit the broker's limit; it holds
// the original value's length in bytes.
const HeaderTruncated = "riskflow-truncated-from"

// HeaderKeyDropped is set on a dead letter whose key was left out to fit the broker's limit (a key
// larger than the dead letter may be); it holds the original key's length in bytes.
const HeaderKeyDropped = "riskflow-key-dropped-from"

// maxErrorHeader bounds the error text in a dead letter's header.
const maxErrorHeader = consumers.MaxErrorText

// DeadLetter builds the dead-letter message for m: the original key and bytes, and headers naming
// the error (at most maxErrorHeader bytes), the offending field and the source position.
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
			{Key: HeaderError, Value: []byte(consumers.Summarize(err).Error())},
			{Key: HeaderField, Value: []byte(field)},
			{Key: HeaderTopic, Value: []byte(m.Topic)},
			{Key: HeaderPartition, Value: []byte(strconv.Itoa(m.Partition))},
			{Key: HeaderOffset, Value: []byte(strconv.FormatInt(m.Offset, 10))},
		},
	}
}

// FitDeadLetter returns dl cut to at most limit bytes (as consumers.MessageSize counts): the value is
// truncated and a HeaderTruncated header says from how many bytes. A message that came through
// Kafka fits the broker's limit, but its dead letter adds headers, so it may not. A key too large
// to leave room for the headers is left out, and HeaderKeyDropped says so; the value then stays
// whole if it fits.
func FitDeadLetter(dl kafka.Message, limit int) kafka.Message {
	if limit <= 0 || consumers.MessageSize(&dl) <= limit {
		return dl
	}
	out := kafka.Message{Key: dl.Key, Value: dl.Value, Headers: slices.Clone(dl.Headers)}
	cut := kafka.Header{Key: HeaderTruncated, Value: []byte(strconv.Itoa(len(dl.Value)))}
	if bare := (kafka.Message{Key: dl.Key, Headers: append(slices.Clone(out.Headers), cut)}); consumers.MessageSize(&bare) > limit {
		out.Key = nil
		out.Headers = append(out.Headers, kafka.Header{Key: HeaderKeyDropped, Value: []byte(strconv.Itoa(len(dl.Key)))})
	}
	if consumers.MessageSize(&out) > limit {
		out.Headers = append(out.Headers, cut)
		bare := kafka.Message{Key: out.Key, Headers: out.Headers}
		out.Value = dl.Value[:max(0, min(limit-consumers.MessageSize(&bare), len(dl.Value)))]
	}
	return out
}

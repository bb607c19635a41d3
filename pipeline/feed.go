package pipeline

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/riskflow/riskflow/consumers"
	"github.com/riskflow/riskflow/schemas"
)

// StateApplier records events in feature state without scoring them (scoring.Scorer.ApplyBatch):
// as applying them one by one would, reporting how many were recorded (not duplicates).
type StateApplier interface {
	ApplyBatch(evs []schemas.VerifyEvent, applied []bool) int
}

// Feed keeps feature state fed from verify.events: every partition, from `since` on (goka's
// "view" shape). Every node that holds feature state follows one: an API node for its replica, a
// scorer so that its windows count every partition's attempts however the consumer group spreads
// partitions over scorers (the group divides the scoring, not the state). Messages Admit refuses
// are skipped here (the scorer dead-letters them).
type Feed struct {
	tail    *consumers.Tail
	applied atomic.Int64
}

// NewFeed prepares a feed of topic into st.
func NewFeed(kc consumers.Config, topic string, since time.Time, st StateApplier, log *slog.Logger) *Feed {
	f := &Feed{}
	f.tail = consumers.NewEventTail(kc, topic, since, func(ms []kafka.Message) (newest time.Time) {
		// A partition's messages as its reader fetched them: one when the feed keeps up, up to
		// consumers.TailBatch while it catches up, applied as one batch (fewer state locks).
		bp := evBufs.Get().(*[]schemas.VerifyEvent)
		evs := (*bp)[:0]
		now := time.Now()
		for _, m := range ms {
			if ev, err := Admit(m, now); err == nil {
				evs = append(evs, ev)
				if ev.TS.After(newest) {
					newest = ev.TS
				}
			}
		}
		if len(evs) > 0 {
			f.applied.Add(int64(st.ApplyBatch(evs, nil)))
		}
		clear(evs) // the events' strings are not kept alive by the pool
		*bp = evs[:0]
		evBufs.Put(bp)
		return newest
	}, log)
	return f
}

// evBufs holds the feed's decoded batches (one per partition reader at a time).
var evBufs = sync.Pool{New: func() any { return new([]schemas.VerifyEvent) }}

// StartAt resumes partitions at the given positions (from a snapshot) instead of at since.
func (f *Feed) StartAt(marks map[int]consumers.Mark) { f.tail.StartAt(marks) }

// SetSkew sets how far apart messages of one time may reach different partitions (see
// consumers.Tail.SetSkew); WaitApplied trusts an idle partition's end only that long after the
// time it waits for. Call it before Follow.
func (f *Feed) SetSkew(d time.Duration) { f.tail.SetSkew(d) }

// Positions returns the next offset to apply per partition and the time of the message before it
// (see consumers.Tail.Positions).
func (f *Feed) Positions() map[int]consumers.Mark { return f.tail.Positions() }

// CatchUp applies everything up to the end offsets seen at call time.
func (f *Feed) CatchUp(ctx context.Context) (int, error) { return f.tail.CatchUp(ctx) }

// Follow applies messages until ctx is done.
func (f *Feed) Follow(ctx context.Context) error { return f.tail.Follow(ctx) }

// Lag is the number of messages not yet applied (-1 before start).
func (f *Feed) Lag() int64 { return f.tail.Lag() }

// Deleted returns how many events the topic deleted (retention) before the feed applied them:
// missing from the state (see consumers.Tail.Deleted).
func (f *Feed) Deleted() int64 { return f.tail.Deleted() }

// WaitApplied waits, at most max, until every partition has been applied up to at: the batch's
// newest message time and newest event ts (see consumers.Tail.WaitThrough). A scorer calls it
// before scoring a batch so that the windows count the other partitions' attempts up to the
// batch's time. It reports the wait and whether it was met.
func (f *Feed) WaitApplied(ctx context.Context, at consumers.Point, max time.Duration) (time.Duration, bool) {
	return f.tail.WaitThrough(ctx, at, max)
}

// Fresh is the newest time as of which every event in the topic has been applied (zero until the
// feed first caught up); it stops moving while the broker cannot be reached.
func (f *Feed) Fresh() time.Time { return f.tail.Fresh() }

// Applied is the number of events recorded so far.
func (f *Feed) Applied() int64 { return f.applied.Load() }

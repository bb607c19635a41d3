package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/riskflow/riskflow/consumers"
	"github.com/riskflow/riskflow/pipeline"
	"github.com/riskflow/riskflow/schemas"
)

// writeWatch follows one archiving loop's writes to ClickHouse: since when ClickHouse has refused
// them (answered with an exception) without a break. Pings say whether ClickHouse answers; this
// says whether it takes the loop's rows — a read-only user, a table it cannot write, a database it
// may not use answer every ping and refuse every INSERT. A record ClickHouse can never store (pipeline.SinkFailed false) says
// nothing against the store, and neither does a write cut short by its caller (a stop, the
// groups left) or one the circuit breaker refused without trying. Safe for concurrent use.
type writeWatch struct {
	now func() time.Time // nil: time.Now

	mu       sync.Mutex
	failing  time.Time // when the writes started failing; zero while they succeed
	lastFail time.Time // the last failed write
	why      string
}

func (w *writeWatch) clock() time.Time {
	if w.now == nil {
		return time.Now()
	}
	return w.now()
}

// noted records the outcome of one write made under ctx (nothing on a nil watch).
func (w *writeWatch) noted(ctx context.Context, err error) {
	if w == nil {
		return
	}
	if err != nil && (ctx.Err() != nil || !pipeline.SinkFailed(err) || pipeline.IsBreakerRefusal(err)) {
		return // nothing said about the store: the breaker's refusal comes from no write
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	var ex *clickhouse.Exception
	if err == nil || !errors.As(err, &ex) {
		// Written, or no answer (a connection refused or cut, a timeout: a server away or too
		// slow, which the pings and the INSERT bound deal with): no refusal, or the run broken.
		w.failing, w.lastFail, w.why = time.Time{}, time.Time{}, ""
		return
	}
	now := w.clock()
	if w.failing.IsZero() {
		w.failing = now
	}
	w.lastFail, w.why = now, consumers.Summarize(err).Error()
}

// refused reports whether the writes have been refused by a ClickHouse that answers: they have
// failed without a break for d, and failed again after a ping answered (at answered) since they
// started failing. While ClickHouse is away its pings fail too, and the pings decide (pingWatch).
func (w *writeWatch) refused(d time.Duration, answered time.Time) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return !w.failing.IsZero() && w.clock().Sub(w.failing) >= d &&
		answered.After(w.failing) && w.lastFail.After(answered)
}

// failingSince is when the writes started failing (zero while they succeed) and the last error.
func (w *writeWatch) failingSince() (time.Time, string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.failing, w.why
}

// watchedSink is the archiver's sink with its writes noted in a writeWatch.
type watchedSink struct {
	sink   pipeline.Sink
	writes *writeWatch
}

// WriteBatch implements pipeline.Sink.
func (s watchedSink) WriteBatch(ctx context.Context, recs []schemas.ScoreRecord) error {
	err := s.sink.WriteBatch(ctx, recs)
	s.writes.noted(ctx, err)
	return err
}

// heldOut is the readiness of an archiver that left its consumer groups because its writes were
// refused, until it joins them again: stalled since its writes started failing, saying why.
type heldOut struct {
	since time.Time
	why   string
	until time.Time
	now   func() time.Time
}

// Stalled implements staller.
func (h heldOut) Stalled() (time.Duration, string) {
	return h.now().Sub(h.since), fmt.Sprintf("its writes are refused while ClickHouse answers its pings; out of the consumer groups until %s: %s",
		h.until.UTC().Format(time.TimeOnly), h.why)
}

// nextHoldOff is how long an archiver whose writes were refused stays out of its groups: after
// stall at first, twice the last hold-off when its writes were refused again without one going
// through in between, up to maxHoldOff (or stall, if longer).
func nextHoldOff(last, stall time.Duration, refusedThroughout bool) time.Duration {
	if last == 0 || !refusedThroughout {
		return stall
	}
	return min(2*last, max(maxHoldOff, stall))
}

// maxHoldOff bounds nextHoldOff: an archiver whose writes are refused for good (a read-only user)
// tries again every five minutes, taking its partitions for one failed write each time.
const maxHoldOff = 5 * time.Minute

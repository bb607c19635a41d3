package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/riskflow/riskflow/pipeline"
	"github.com/riskflow/riskflow/pipeline/chsink"
)

// A write counts against the store only when ClickHouse was asked and said no: not a record it
// can never store, not the breaker holding the writes back, not a write its caller gave up, not a
// write that got no answer (a timeout: a slow server gets smaller INSERTs, not an archiver that
// leaves). The writes are refused once they have failed for the stall bound and again after a
// ping answered; while the pings fail too, ClickHouse is away, and the pings decide.
func TestWriteWatchRefusedOnlyByAnAnsweringStore(t *testing.T) {
	now := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	w := &writeWatch{now: func() time.Time { return now }}
	ctx := context.Background()
	refusedErr := fmt.Errorf("chsink: insert 3 rows into db.verify_events: %w", &clickhouse.Exception{Code: 164, Message: "Cannot insert into table in readonly mode"})
	const stall = 5 * time.Second

	w.noted(ctx, &chsink.InvalidRecordError{Index: 0, Reason: "no event_id"})
	w.noted(ctx, pipeline.ErrOpen)
	gone, cancel := context.WithCancel(ctx)
	cancel()
	w.noted(gone, refusedErr)
	if since, _ := w.failingSince(); !since.IsZero() {
		t.Fatalf("failing since %v after a rejected record, a breaker refusal and a cancelled write; want not failing", since)
	}

	start := now
	w.noted(ctx, refusedErr)
	now = now.Add(stall)
	w.noted(ctx, pipeline.ErrOpen) // the breaker holding: says nothing, clears nothing
	if since, why := w.failingSince(); !since.Equal(start) || why != refusedErr.Error() {
		t.Fatalf("failingSince = %v, %q; want %v, %q", since, why, start, refusedErr)
	}
	if w.refused(stall, time.Time{}) {
		t.Error("refused with no ping answered since the writes started failing (ClickHouse away: the pings decide)")
	}
	answered := now.Add(-time.Second)
	if w.refused(stall, answered) {
		t.Error("refused with no write failed after the ping that answered")
	}
	now = now.Add(time.Second)
	w.noted(ctx, refusedErr)
	if !w.refused(stall, answered) {
		t.Error("not refused: failing for the stall bound, and again after a ping answered")
	}
	if w.refused(2*stall, answered) {
		t.Error("refused before the writes had failed for the stall bound")
	}
	w.noted(ctx, nil)
	if w.refused(stall, answered) {
		t.Error("still refused after a write went through")
	}
	w.noted(ctx, refusedErr)
	now = now.Add(2 * stall)
	w.noted(ctx, fmt.Errorf("chsink: insert 3 rows into db.verify_events: %w", context.DeadlineExceeded))
	if since, _ := w.failingSince(); !since.IsZero() {
		t.Errorf("failing since %v after a write that timed out; want the run of refusals broken", since)
	}
}

func TestNextHoldOff(t *testing.T) {
	const stall = 30 * time.Second
	for _, c := range []struct {
		last       time.Duration
		throughout bool
		want       time.Duration
	}{
		{0, true, stall},
		{stall, true, 2 * stall},
		{stall, false, stall},
		{4 * time.Minute, true, maxHoldOff},
		{maxHoldOff, true, maxHoldOff},
	} {
		if got := nextHoldOff(c.last, stall, c.throughout); got != c.want {
			t.Errorf("nextHoldOff(%v, %v, %v) = %v, want %v", c.last, stall, c.throughout, got, c.want)
		}
	}
	if got := nextHoldOff(10*time.Minute, 10*time.Minute, true); got != 10*time.Minute {
		t.Errorf("a stall bound above maxHoldOff: hold-off %v, want the stall bound", got)
	}
}

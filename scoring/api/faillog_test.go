package api

import (
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// A route in a run of failures is reported failing (degraded, failingFor) while its last failure
// is recent; a failure after a quiet minute starts a run of its own, not one "since" the old
// run's first failure; an answer ends the run.
func TestFailureRunsAreCurrent(t *testing.T) {
	t0 := time.Date(2026, 3, 14, 9, 0, 0, 0, time.UTC)
	now := t0
	f := &failureLog{clock: func() time.Time { return now }}
	log := slog.New(slog.DiscardHandler)
	f.failed(log, "events", now, 503, errors.New("publish to Kafka failed: connection refused"))
	now = t0.Add(10 * time.Second)
	f.failed(log, "events", now, 503, errors.New("publish to Kafka failed: leader not available"))
	now = t0.Add(30 * time.Second)
	if got := f.failingFor("events"); got != 30*time.Second {
		t.Errorf("failingFor 30 s into the run: %s", got)
	}
	if d := f.degraded(); len(d) != 1 || !strings.HasPrefix(d[0], "events: 2 failed since 2026-03-14T09:00:00Z, the last 20s ago with 503: ") ||
		!strings.Contains(d[0], "leader not available") {
		t.Errorf("degraded 30 s into the run: %q", d)
	}
	now = t0.Add(10*time.Second + failRecent + time.Second)
	if got, d := f.failingFor("events"), f.degraded(); got != 0 || len(d) != 0 {
		t.Errorf("a minute after the last failure: failingFor %s, degraded %q; want nothing", got, d)
	}
	now = t0.Add(time.Hour)
	f.failed(log, "events", now, 503, errors.New("publish to Kafka failed: connection refused"))
	now = t0.Add(time.Hour + 5*time.Second)
	if d := f.degraded(); len(d) != 1 || !strings.HasPrefix(d[0], "events: 1 failed since 2026-03-14T10:00:00Z") {
		t.Errorf("a failure an hour later: %q, want a run of its own", d)
	}
	f.ok(log, "events", now)
	if got, d := f.failingFor("events"), f.degraded(); got != 0 || len(d) != 0 {
		t.Errorf("once answered: failingFor %s, degraded %q; want nothing", got, d)
	}
}

// An outcome counts only if its request started after the newest failed one: a publication
// answered after its client left is recorded when Kafka answers, and its success, started before
// a failure recorded meanwhile, says nothing of the route now — it left /readyz saying "ready"
// while every event sent after it was refused. A success started after that failure ends the run.
func TestLateSuccessKeepsNewerFailure(t *testing.T) {
	t0 := time.Date(2026, 3, 14, 9, 0, 0, 0, time.UTC)
	now := t0
	f := &failureLog{clock: func() time.Time { return now }}
	log := slog.New(slog.DiscardHandler)
	early := t0                   // a publication handed to the writer, its client gone
	now = t0.Add(2 * time.Second) // a later request fails meanwhile
	f.failed(log, "events", now, 503, errors.New("publish to Kafka failed: leader not available"))
	now = t0.Add(20 * time.Second) // Kafka answers the early publication at last
	f.ok(log, "events", early)
	if got, d := f.failingFor("events"), f.degraded(); got != 18*time.Second || len(d) != 1 {
		t.Errorf("after a success started before the failure: failingFor %s, degraded %q; want the failure still reported", got, d)
	}
	f.ok(log, "events", t0.Add(2*time.Second)) // started with the failure: not older than it
	if got, d := f.failingFor("events"), f.degraded(); got != 0 || len(d) != 0 {
		t.Errorf("after a success started with the failure: failingFor %s, degraded %q; want nothing", got, d)
	}
	f.failed(log, "events", t0.Add(21*time.Second), 503, errors.New("publish to Kafka failed: connection refused"))
	f.failed(log, "events", t0.Add(19*time.Second), 503, errors.New("publish to Kafka failed: connection refused"))
	f.ok(log, "events", t0.Add(20*time.Second)) // newer than one failure of the run, older than the newest
	if d := f.degraded(); len(d) != 1 {
		t.Errorf("after a success older than the run's newest failure: degraded %q; want the run still reported", d)
	}
}

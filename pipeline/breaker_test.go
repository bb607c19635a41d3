package pipeline

import (
	"context"
	"errors"
	"testing"
	"time"
)

// One breaker, two classifiers: it trips the same way (cfg.Failures consecutive counted failures,
// then refuses at once), and what counts is the classifier's to say — an error it does not count
// is a success that resets the run; a use whose caller gave up counts neither way, whether or not
// its error wraps the cancellation.
func TestBreakerCountsWhatItsClassifierSays(t *testing.T) {
	away, answered := errors.New("dial tcp: connection refused"), errors.New("code: 60, table does not exist")
	onlyAway := func(err error) bool { return errors.Is(err, away) }
	ctx := context.Background()
	fail := func(err error) func() error { return func() error { return err } }

	var states []string
	b := NewBreaker("test", BreakerConfig{Failures: 2, OpenFor: time.Hour}, onlyAway, nil, func(s string) { states = append(states, s) })
	for i, err := range []error{away, answered, away, answered, answered} {
		if got := b.Do(ctx, fail(err)); !errors.Is(got, err) {
			t.Fatalf("use %d: %v, want %v", i, got, err)
		}
	}
	if b.State() != "closed" {
		t.Fatalf("failures not in a row (each followed by an error the classifier does not count): %s, want closed", b.State())
	}
	// Uses whose caller went away, the driver's error not saying so: not counted.
	for range 3 {
		cctx, cancel := context.WithCancel(ctx)
		err := b.Do(cctx, func() error { cancel(); return away })
		if !errors.Is(err, context.Canceled) || !errors.Is(err, away) {
			t.Fatalf("a use canceled mid-way: %v, want the cancellation and the driver's error", err)
		}
	}
	if b.State() != "closed" || len(states) != 0 {
		t.Fatalf("after canceled uses: %s, changes %v; want closed, none", b.State(), states)
	}
	for range 2 {
		_ = b.Do(ctx, fail(away))
	}
	called := false
	if err := b.Do(ctx, func() error { called = true; return nil }); !errors.Is(err, ErrOpen) || !IsBreakerRefusal(err) || called {
		t.Fatalf("after 2 failures in a row: %v (called %v), want ErrOpen without a call", err, called)
	}
	if len(states) != 1 || states[0] != "open" {
		t.Fatalf("state changes %v, want [open]", states)
	}

	// The archiver's classifier: everything but a refused record counts.
	s := NewBreaker("sink", BreakerConfig{Failures: 1, OpenFor: time.Hour}, SinkFailed, nil, nil)
	_ = s.Do(ctx, fail(rejected{i: 0}))
	if s.State() != "closed" {
		t.Fatalf("a rejected record opened the archiver's breaker")
	}
	_ = s.Do(ctx, fail(answered))
	if s.State() != "open" {
		t.Fatalf("an error ClickHouse answered did not count for the archiver: %s", s.State())
	}
}

// Zero settings take the defaults: 3 failures, 5 s open.
func TestBreakerDefaults(t *testing.T) {
	b := NewBreaker("test", BreakerConfig{}, func(error) bool { return true }, nil, nil)
	for i := range 3 {
		if b.State() != "closed" {
			t.Fatalf("open after %d failures", i)
		}
		_ = b.Do(context.Background(), func() error { return errors.New("x") })
	}
	if b.State() != "open" {
		t.Fatalf("after 3 failures: %s", b.State())
	}
}

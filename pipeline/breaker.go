package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/sony/gobreaker/v2"
)

// BreakerConfig tunes a circuit breaker around a store.
type BreakerConfig struct {
	Failures uint32        // consecutive failures that open it; default 3
	OpenFor  time.Duration // how long it stays open before a probe; default 5 s
}

// ErrOpen is returned while the breaker is open.
var ErrOpen = gobreaker.ErrOpenState

// ErrProbing is returned while a half-open breaker's one probe is under way.
var ErrProbing = gobreaker.ErrTooManyRequests

// IsBreakerRefusal reports whether err is a use refused by a breaker without being tried (open,
// or half-open with its probe under way).
func IsBreakerRefusal(err error) bool { return errors.Is(err, ErrOpen) || errors.Is(err, ErrProbing) }

// Breaker is a circuit breaker around the uses of one store (the archiver's ClickHouse sink, the
// console's and the rule-pack history's ClickHouse). Every breaker trips the same way: after
// cfg.Failures consecutive failed uses it opens and refuses every use at once (ErrOpen) for
// cfg.OpenFor, then lets one use probe the store (the others get ErrProbing); the probe's success
// closes it. What counts as a failure is the user's to say (the failed classifier); a use whose
// caller gave up (its context canceled: shutdown, a page closed) counts neither way.
type Breaker struct {
	cb *gobreaker.CircuitBreaker[struct{}]
}

// NewBreaker returns a closed breaker named name (in its log lines). failed reports whether a
// use's non-nil error says the store is unhealthy; an error it does not count is a success
// (it resets the run of failures and closes a half-open breaker: the store answered). onState
// (may be nil) hears every state change, as "closed", "half-open" or "open" (the
// riskflow_breaker_state{breaker,state} gauge); log may be nil.
func NewBreaker(name string, cfg BreakerConfig, failed func(error) bool, log *slog.Logger, onState func(state string)) *Breaker {
	if cfg.Failures == 0 {
		cfg.Failures = 3
	}
	if cfg.OpenFor <= 0 {
		cfg.OpenFor = 5 * time.Second
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	st := gobreaker.Settings{
		Name:        name,
		MaxRequests: 1,
		Timeout:     cfg.OpenFor,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= cfg.Failures },
		// The caller giving up says nothing about the store's health: such a use counts neither
		// as a failure nor as a success (a success would close a half-open breaker and reset the
		// run of consecutive failures without the store having answered).
		IsExcluded:   func(err error) bool { return errors.Is(err, context.Canceled) },
		IsSuccessful: func(err error) bool { return err == nil || !failed(err) },
		OnStateChange: func(name string, from, to gobreaker.State) {
			// An outage is logged when it starts (open, warn) and when it ends (closed, info); the
			// probes between — half-open, and open again after a failed probe, every cfg.OpenFor —
			// at debug: at warn they were two lines every 5 s for as long as ClickHouse was away.
			level := slog.LevelDebug
			switch {
			case from == gobreaker.StateClosed && to == gobreaker.StateOpen:
				level = slog.LevelWarn
			case to == gobreaker.StateClosed:
				level = slog.LevelInfo
			}
			log.Log(context.Background(), level, "circuit breaker state change", "breaker", name, "from", from.String(), "to", to.String())
			if onState != nil {
				onState(to.String())
			}
		},
	}
	return &Breaker{cb: gobreaker.NewCircuitBreaker[struct{}](st)}
}

// Do runs f behind the breaker: at once ErrOpen or ErrProbing when the breaker refuses, else f's
// error. An error f returns after ctx was canceled is the cancellation (it wraps context.Canceled)
// whether or not f's driver wrapped it.
func (b *Breaker) Do(ctx context.Context, f func() error) error {
	_, err := b.cb.Execute(func() (struct{}, error) {
		err := f()
		if err != nil && errors.Is(ctx.Err(), context.Canceled) && !errors.Is(err, context.Canceled) {
			// Drivers do not always wrap the context's error; the cancellation is what happened.
			err = fmt.Errorf("%w: %w", context.Canceled, err)
		}
		return struct{}{}, err
	})
	return err
}

// State is "closed", "half-open" or "open".
func (b *Breaker) State() string { return b.cb.State().String() }

package consumers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/segmentio/kafka-go"
)

// Reader is what a consumer loop needs from a consumer-group reader (*kafka.Reader has it).
type Reader interface {
	FetchMessage(ctx context.Context) (kafka.Message, error)
	CommitMessages(ctx context.Context, msgs ...kafka.Message) error
	Close() error
}

// Handler makes the effect of a batch durable. It returns nil only when every message's effect is
// durable (written downstream and acknowledged); then — and only then — the batch is committed.
// On error the same batch is offered again after a backoff, so handlers must be idempotent.
type Handler func(ctx context.Context, batch []kafka.Message) error

// LoopConfig bounds batches and retries.
type LoopConfig struct {
	Name       string        // for logs and metrics ("scorer", "archiver")
	MaxBatch   int           // messages per batch; default 500
	MaxWait    time.Duration // how long a partial batch waits for more messages; default 5 ms
	BackoffMin time.Duration // first retry delay after a handler error; default 100 ms
	BackoffMax time.Duration // default 5 s
}

func (c LoopConfig) withDefaults() LoopConfig {
	if c.MaxBatch <= 0 {
		c.MaxBatch = 500
	}
	if c.MaxWait <= 0 {
		c.MaxWait = 5 * time.Millisecond
	}
	if c.BackoffMin <= 0 {
		c.BackoffMin = 100 * time.Millisecond
	}
	if c.BackoffMax <= 0 {
		c.BackoffMax = 5 * time.Second
	}
	return c
}

// LoopObserver receives loop events (metrics). Every method must be cheap and non-blocking.
type LoopObserver interface {
	Batch(name string, size int, took time.Duration)
	Retry(name string, err error)
}

type nopObserver struct{}

func (nopObserver) Batch(string, int, time.Duration) {}
func (nopObserver) Retry(string, error)              {}

// Loop fetches batches from a Reader, hands them to a Handler and commits them after it succeeded.
// While the handler keeps failing (a downstream outage) the loop fetches nothing new: Kafka buffers.
type Loop struct {
	cfg LoopConfig
	r   Reader
	h   Handler
	log *slog.Logger
	obs LoopObserver
}

// NewLoop builds a loop; obs may be nil.
func NewLoop(cfg LoopConfig, r Reader, h Handler, log *slog.Logger, obs LoopObserver) *Loop {
	if obs == nil {
		obs = nopObserver{}
	}
	return &Loop{cfg: cfg.withDefaults(), r: r, h: h, log: log.With("loop", cfg.Name), obs: obs}
}

// Run consumes until ctx is done. It returns nil on cancellation and an error only for a failure it
// cannot retry (a closed reader: io.EOF). Other fetch errors — kafka-go reports a broker that is
// away for a while, or a failed group join, and then heals — are retried with backoff. An
// uncommitted batch at shutdown is simply redelivered later.
func (l *Loop) Run(ctx context.Context) error {
	batch := make([]kafka.Message, 0, l.cfg.MaxBatch)
	fetchDelay, fetchFailures := l.cfg.BackoffMin, 0
	for {
		batch = batch[:0]
		var err error
		if batch, err = l.fetch(ctx, batch); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, io.EOF) {
				return fmt.Errorf("%s: fetch: reader closed: %w", l.cfg.Name, err)
			}
			fetchFailures++
			lvl := slog.LevelDebug
			if fetchFailures == 1 || fetchFailures%20 == 0 {
				lvl = slog.LevelWarn
			}
			l.log.Log(ctx, lvl, "fetch failed; retrying", "err", err, "attempt", fetchFailures, "retry_in", fetchDelay)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(fetchDelay):
			}
			fetchDelay = min(2*fetchDelay, l.cfg.BackoffMax)
			continue
		}
		if fetchFailures > 0 {
			l.log.Info("fetching again after failures", "failures", fetchFailures)
			fetchDelay, fetchFailures = l.cfg.BackoffMin, 0
		}
		if err := l.handle(ctx, batch); err != nil {
			return nil // only ctx cancellation ends handle
		}
		if err := l.commit(ctx, batch); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			// A failed commit is not a lost event: the batch is redelivered and handled again.
			l.log.Warn("commit failed; batch will be redelivered", "err", err, "size", len(batch))
		}
	}
}

// fetch blocks for the first message, then gathers more for at most MaxWait.
func (l *Loop) fetch(ctx context.Context, batch []kafka.Message) ([]kafka.Message, error) {
	m, err := l.r.FetchMessage(ctx)
	if err != nil {
		return batch, err
	}
	batch = append(batch, m)
	if l.cfg.MaxBatch == 1 {
		return batch, nil
	}
	wctx, cancel := context.WithTimeout(ctx, l.cfg.MaxWait)
	defer cancel()
	for len(batch) < l.cfg.MaxBatch {
		m, err := l.r.FetchMessage(wctx)
		if err != nil {
			if ctx.Err() != nil {
				return batch, ctx.Err()
			}
			break // the wait is over: hand over what we have
		}
		batch = append(batch, m)
	}
	return batch, nil
}

// handle retries the handler with exponential backoff until it succeeds or ctx is done.
func (l *Loop) handle(ctx context.Context, batch []kafka.Message) error {
	delay := l.cfg.BackoffMin
	for attempt := 1; ; attempt++ {
		start := time.Now()
		err := l.h(ctx, batch)
		if err == nil {
			l.obs.Batch(l.cfg.Name, len(batch), time.Since(start))
			if attempt > 1 {
				l.log.Info("batch handled after retries", "attempts", attempt, "size", len(batch))
			}
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		l.obs.Retry(l.cfg.Name, err)
		lvl := slog.LevelDebug
		if attempt == 1 || attempt%20 == 0 {
			lvl = slog.LevelWarn // an outage warns at its start and now and then, not on every retry
		}
		l.log.Log(ctx, lvl, "batch failed; retrying the same batch", "err", err, "attempt", attempt, "size", len(batch), "retry_in", delay)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
		delay = min(2*delay, l.cfg.BackoffMax)
	}
}

func (l *Loop) commit(ctx context.Context, batch []kafka.Message) error {
	var err error
	for i := 0; i < 3; i++ {
		if err = l.r.CommitMessages(ctx, batch...); err == nil || ctx.Err() != nil {
			return err
		}
	}
	return err
}

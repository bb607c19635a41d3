package consumers

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// outage tracks one thing that keeps failing (a fetch, a batch, a tail) so that its log says so
// once when it starts and once when it ends — not once per attempt — with a reminder every
// remindEvery while it lasts. Safe for concurrent use: several readers of one topic may share one.
type outage struct {
	mu       sync.Mutex
	log      *slog.Logger
	what     string
	since    atomic.Int64 // unix nanoseconds of the first failure of this run; 0 = healthy
	attempts int
	reminded time.Time
	// inflight is the unix nanoseconds at which the attempt in progress started (0: none), for
	// attempts whose time counts while they run (begin).
	inflight atomic.Int64
}

const remindEvery = time.Minute

func newOutage(log *slog.Logger, what string) *outage { return &outage{log: log, what: what} }

// fail records a failed attempt; extra are log attributes.
func (o *outage) fail(ctx context.Context, err error, extra ...any) {
	o.failStarted(ctx, time.Now(), err, extra...)
}

// failStarted records a failed attempt that began at started: a run of failures counts from the
// start of its first attempt, so an attempt that hung until its timeout (a server that accepts
// the connection and never answers) counts as stalled for all that time, not from its end.
func (o *outage) failStarted(ctx context.Context, started time.Time, err error, extra ...any) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.attempts++
	now := time.Now()
	args := append([]any{"err", Summarize(err), "attempt", o.attempts}, extra...)
	switch {
	case o.since.Load() == 0:
		o.since.Store(min(started.UnixNano(), now.UnixNano()))
		o.reminded = now
		o.log.Log(ctx, slog.LevelWarn, o.what+" failing; retrying with backoff", args...)
	case now.Sub(o.reminded) >= remindEvery:
		o.reminded = now
		args = append(args, "failing_for", now.Sub(time.Unix(0, o.since.Load())).Round(time.Second))
		o.log.Log(ctx, slog.LevelWarn, o.what+" still failing", args...)
	default:
		o.log.Log(ctx, slog.LevelDebug, o.what+" failed again", args...)
	}
}

// ok records a success; it logs the recovery if there was an outage.
func (o *outage) ok(ctx context.Context, extra ...any) {
	if o.since.Load() == 0 {
		return // the common case, without the lock
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	since := o.since.Load()
	if since == 0 {
		return
	}
	args := append([]any{"attempts", o.attempts, "failed_for", time.Since(time.Unix(0, since)).Round(time.Millisecond)}, extra...)
	o.log.Log(ctx, slog.LevelInfo, o.what+" recovered", args...)
	o.since.Store(0)
	o.attempts = 0
}

// handOver ends o's run of failures without a recovery and carries it on in next (from o's
// start, when earlier than next's own), which then reports it until its next success. A run
// handed over is logged as recovered by next only.
func (o *outage) handOver(next *outage) {
	o.mu.Lock()
	since := o.since.Load()
	o.since.Store(0)
	o.attempts = 0
	o.mu.Unlock()
	if since == 0 {
		return
	}
	next.mu.Lock()
	defer next.mu.Unlock()
	if cur := next.since.Load(); cur == 0 || since < cur {
		if cur == 0 {
			next.reminded = time.Now()
		}
		next.since.Store(since)
	}
}

// failingFor is how long the current run of failures has lasted (0 when healthy).
func (o *outage) failingFor() time.Duration {
	since := o.since.Load()
	if since == 0 {
		return 0
	}
	return time.Since(time.Unix(0, since))
}

// begin records that an attempt started at started is in progress, until end.
func (o *outage) begin(started time.Time) { o.inflight.Store(started.UnixNano()) }

// end records that the attempt in progress returned.
func (o *outage) end() { o.inflight.Store(0) }

// stalledFor is failingFor, or how long the attempt in progress has run when that is longer than
// grace — an attempt that does not return (a write to a broker that accepts connections and
// answers nothing, which kafka-go's writer gives up on only after ~40 s) is a stall before it
// fails, as failStarted counts it once it has. inflight says the attempt in progress is what
// counts.
func (o *outage) stalledFor(grace time.Duration) (d time.Duration, inflight bool) {
	d = o.failingFor()
	if a := o.inflight.Load(); a != 0 {
		if ad := time.Since(time.Unix(0, a)); ad > grace && ad > d {
			return ad, true
		}
	}
	return d, false
}

// Retry calls fn until it returns nil or ctx is done, with exponential backoff from min to max
// between attempts, logging when it starts failing and when it recovers. It returns ctx's error
// if ctx ended first. It is for work that cannot be skipped (creating topics at start, reading
// partition offsets): a broker that is away must delay it, never end the process.
func Retry(ctx context.Context, log *slog.Logger, what string, min, max time.Duration, fn func(context.Context) error) error {
	o := newOutage(log, what)
	delay := min
	for {
		err := fn(ctx)
		if err == nil {
			o.ok(ctx)
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		o.fail(ctx, err, "retry_in", delay)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
		delay = nextDelay(delay, max)
	}
}

// nextDelay doubles d up to max.
func nextDelay(d, max time.Duration) time.Duration { return min(2*d, max) }

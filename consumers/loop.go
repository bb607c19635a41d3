package consumers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
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

// A Stage splits the work of a batch in two, so that writing one batch downstream overlaps
// preparing the next (see NewStagedLoop). Prepare does what must happen in batch order, one batch
// at a time (scoring: the feature state sees events in order); it may fail, and is then retried
// with the same batch. The Flush it returns makes the batch's effect durable (writing and waiting
// for acknowledgements); it runs while the next batch is prepared, is retried until it succeeds,
// and only then is its batch committed. Batches are flushed and committed in fetch order. Once
// its batch is committed, the loop reuses the batch's slice: a stage may keep the messages (and
// their Key and Value bytes) but not the slice.
type Stage interface {
	Prepare(ctx context.Context, batch []kafka.Message) (Flush, error)
}

// Flush makes a prepared batch's effect durable; see Stage. It must be safe to call again after
// it failed (a retry).
type Flush func(ctx context.Context) error

// LoopConfig bounds batches and retries.
type LoopConfig struct {
	Name     string // for logs and metrics ("scorer", "archiver")
	MaxBatch int    // messages per batch; default 500
	// MaxBatchBytes bounds a batch's keys and values too (a batch holds at least one message), so
	// that records ten times larger than usual cannot take MaxBatch times their size in memory;
	// default 64 MiB.
	MaxBatchBytes int
	MaxWait       time.Duration // how long a partial batch waits for more messages; default 5 ms
	BackoffMin    time.Duration // first retry delay after a handler error; default 100 ms
	BackoffMax    time.Duration // default 5 s
	// IdleProbe ends a fetch outage on an idle topic: after a failed fetch, a wait this long with
	// neither a message nor an error (the reader's own counters included) means the broker is
	// back and there is nothing to read. Default 3 s.
	IdleProbe time.Duration
}

func (c LoopConfig) withDefaults() LoopConfig {
	if c.MaxBatch <= 0 {
		c.MaxBatch = 500
	}
	if c.MaxBatchBytes <= 0 {
		c.MaxBatchBytes = 64 << 20
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
	if c.IdleProbe <= 0 {
		c.IdleProbe = 3 * time.Second
	}
	return c
}

// LoopObserver receives loop events (metrics). Every method must be cheap and non-blocking. Batch
// reports a batch made durable and how long that took: the handler's run, retries included, or for
// a staged loop the flush.
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
	cfg   LoopConfig
	r     Reader
	h     Handler
	stage Stage // set by NewStagedLoop (then h is nil)
	log   *slog.Logger
	obs   LoopObserver
	// One outage per kind of work, each touched by one goroutine: fetching, preparing or handling
	// (this goroutine), flushing (the staged loop's flusher).
	fetching, working, flushing *outage
	lastErr                     atomic.Pointer[string]
	// readerErrs is the reader's error count (kafka-go's, which each Stats call resets) since
	// readerQuiet last looked. Only the fetching goroutine touches it.
	readerErrs int64
}

// NewLoop builds a loop; obs may be nil.
func NewLoop(cfg LoopConfig, r Reader, h Handler, log *slog.Logger, obs LoopObserver) *Loop {
	if obs == nil {
		obs = nopObserver{}
	}
	log = log.With("loop", cfg.Name)
	return &Loop{cfg: cfg.withDefaults(), r: r, h: h, log: log, obs: obs,
		fetching: newOutage(log, "fetch"), working: newOutage(log, "batch"), flushing: newOutage(log, "batch write")}
}

// Stalled reports how long the loop has been failing to move on — fetching, or retrying the same
// batch — and the last error (0 and "" while it makes progress). Safe to call from any goroutine;
// readiness probes and metrics use it to tell an outage or a poison batch from an idle topic.
//
// An attempt to prepare or flush a batch that has not returned for longer than BackoffMax counts
// too, from its start: against a broker that accepts connections and answers nothing (SIGSTOP,
// a half-open connection) a scorer's write of its score records hangs for ~40 s before kafka-go
// gives up, and the loop read as not stalled — ready, riskflow_loop_stalled_seconds 0 — all that
// time (held-out run: a scorer turned unready 75 s after its broker hung, kafka.stall_after 30 s).
func (l *Loop) Stalled() (time.Duration, string) {
	d := l.fetching.failingFor()
	why := ""
	for _, o := range []*outage{l.working, l.flushing} {
		od, inflight := o.stalledFor(l.cfg.BackoffMax)
		if od > d {
			d = od
			why = ""
			if inflight {
				why = fmt.Sprintf("%s has not returned for %s", o.what, od.Round(time.Second))
			}
		}
	}
	if d == 0 {
		return 0, ""
	}
	if why != "" {
		return d, why
	}
	if p := l.lastErr.Load(); p != nil {
		return d, *p
	}
	return d, ""
}

func (l *Loop) noteErr(err error) {
	s := Summarize(err).Error()
	l.lastErr.Store(&s)
}

// NewStagedLoop builds a loop over a Stage: while batch N is flushed and committed, batch N+1 is
// fetched and prepared (at most two batches in flight). The guarantees are a Handler loop's: a
// batch is committed only after its flush succeeded, batches commit in order, and whatever was not
// committed at shutdown or on a crash is delivered again. obs may be nil.
func NewStagedLoop(cfg LoopConfig, r Reader, st Stage, log *slog.Logger, obs LoopObserver) *Loop {
	l := NewLoop(cfg, r, nil, log, obs)
	l.stage = st
	return l
}

// Run consumes until ctx is done. It returns nil on cancellation and an error only for a failure it
// cannot retry: a closed reader, which FetchMessage says with io.EOF itself. Other fetch errors —
// kafka-go reports a broker that is away for a while, or a failed group join, and then heals —
// are retried with backoff, those that wrap io.EOF included (a connection the broker, or a proxy
// in front of it, closed). An uncommitted batch at shutdown is simply redelivered later.
func (l *Loop) Run(ctx context.Context) error {
	if l.stage != nil {
		return l.runStaged(ctx)
	}
	batch := make([]kafka.Message, 0, l.cfg.MaxBatch)
	for {
		var err error
		if batch, err = l.next(ctx, batch[:0]); err != nil {
			return err
		}
		if batch == nil {
			return nil
		}
		if l.release(batch) {
			continue
		}
		if err := l.handle(ctx, batch); err != nil {
			return nil // only ctx cancellation ends handle
		}
		l.commitOrWarn(ctx, batch)
	}
}

// prepared is a batch waiting for its flush and commit.
type prepared struct {
	batch []kafka.Message
	flush Flush
}

// runStaged is Run for a Stage: this goroutine fetches and prepares, a second one flushes and
// commits, in order, one batch behind.
func (l *Loop) runStaged(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	queue := make(chan prepared) // unbuffered: the flusher holds one batch, this goroutine the next
	// The arrays of committed batches come back for the next ones: a batch of the archiver's
	// 100,000 messages is a 15 MB array, and a fresh one costs the page faults of touching it
	// (measured: a twentieth of the archiver's CPU) and the collector the work of reclaiming the
	// last. Nothing keeps a batch after its commit (Stage).
	free := make(chan []kafka.Message, 2)
	flusherDone := make(chan struct{})
	go func() {
		defer close(flusherDone)
		for p := range queue {
			start := time.Now()
			released := false
			if err := l.retry(ctx, l.flushing, len(p.batch), func() error {
				if released = l.release(p.batch); released {
					return errReleased
				}
				return p.flush(ctx)
			}); err != nil {
				return // cancelled: the batch was not committed and is delivered again
			}
			if released {
				continue
			}
			l.obs.Batch(l.cfg.Name, len(p.batch), time.Since(start))
			l.commitOrWarn(ctx, p.batch)
			clear(p.batch) // holds on to no message
			select {
			case free <- p.batch[:0]:
			default:
			}
		}
	}()
	defer func() {
		// Whatever ended the loop (cancellation, a closed reader), the flusher stops too: a batch
		// still flushing is not committed and is delivered again.
		cancel()
		close(queue)
		<-flusherDone
	}()
	for {
		// Not the previous batch's slice: the flusher still holds it.
		var buf []kafka.Message
		select {
		case buf = <-free:
		default:
			buf = make([]kafka.Message, 0, l.cfg.MaxBatch)
		}
		batch, err := l.next(ctx, buf)
		if err != nil || batch == nil {
			return err
		}
		var flush Flush
		if err := l.retry(ctx, l.working, len(batch), func() (err error) {
			flush, err = l.stage.Prepare(ctx, batch)
			return err
		}); err != nil {
			return nil
		}
		select {
		case queue <- prepared{batch: batch, flush: flush}:
		case <-ctx.Done():
			return nil
		case <-flusherDone: // the flusher stopped: cancelled
			return nil
		}
	}
}

// next fetches the next batch, retrying fetch errors with backoff. It returns a nil batch when ctx
// is done, and an error only for a closed reader.
//
// An error the reader has more queued behind is not waited on: kafka-go's partition readers retry
// on their own, with their own backoff, and queue an error for every failed attempt. While the
// group itself is fine (a new topic's leaders settling, a leader moving) those errors pile up, and
// waiting a backoff for each one held the loop — and the messages queued behind them — for
// minutes after the partition was back.
func (l *Loop) next(ctx context.Context, batch []kafka.Message) ([]kafka.Message, error) {
	fetchDelay := l.cfg.BackoffMin
	drained := 0
	for {
		var err error
		if batch, err = l.fetch(ctx, batch[:0]); err != nil {
			if ctx.Err() != nil {
				return nil, nil
			}
			if err == io.EOF { //nolint:errorlint // the sentinel itself: a closed reader, not a connection closed under it
				return nil, fmt.Errorf("%s: fetch: reader closed: %w", l.cfg.Name, err)
			}
			l.noteErr(err)
			if l.readerQueue() > 0 && drained < maxDrain {
				drained++
				l.fetching.fail(ctx, err, "queued", true)
				continue
			}
			drained = 0
			l.fetching.fail(ctx, err, "retry_in", fetchDelay)
			select {
			case <-ctx.Done():
				return nil, nil
			case <-time.After(fetchDelay):
			}
			fetchDelay = nextDelay(fetchDelay, l.cfg.BackoffMax)
			continue
		}
		l.fetching.ok(ctx)
		return batch, nil
	}
}

// releaser is a reader that takes back a batch not yet written whose partitions were revoked
// (GroupReader.Release).
type releaser interface {
	Release(msgs []kafka.Message) bool
}

// release hands a batch not yet written (or whose write failed) back to the reader when its
// partitions were revoked: it is not written, and their next owner reads it. It reports whether
// it did.
func (l *Loop) release(batch []kafka.Message) bool {
	rl, ok := l.r.(releaser)
	if !ok || !rl.Release(batch) {
		return false
	}
	l.log.Info("batch not written: its partitions were revoked at a rebalance, and their next owner reads it", "size", len(batch))
	return true
}

// commitOrWarn commits a handled batch. A failed commit is not a lost event: the batch is
// redelivered and handled again.
func (l *Loop) commitOrWarn(ctx context.Context, batch []kafka.Message) {
	if err := l.commit(ctx, batch); err != nil {
		l.log.Warn("commit failed; batch will be redelivered", "err", err, "size", len(batch))
	}
}

// fetch blocks for the first message, then gathers more for at most MaxWait.
func (l *Loop) fetch(ctx context.Context, batch []kafka.Message) ([]kafka.Message, error) {
	m, err := l.first(ctx)
	if err != nil {
		return batch, err
	}
	batch = append(batch, m)
	if l.cfg.MaxBatch == 1 {
		return batch, nil
	}
	wctx, cancel := context.WithTimeout(ctx, l.cfg.MaxWait)
	defer cancel()
	size := len(m.Key) + len(m.Value)
	for len(batch) < l.cfg.MaxBatch && size < l.cfg.MaxBatchBytes {
		m, err := l.r.FetchMessage(wctx)
		if err != nil {
			if ctx.Err() != nil {
				return batch, ctx.Err()
			}
			break // the wait is over: hand over what we have
		}
		batch = append(batch, m)
		size += len(m.Key) + len(m.Value)
	}
	return batch, nil
}

// first waits for the next message. While a fetch outage lasts it waits in IdleProbe rounds: an
// idle topic delivers nothing to prove the broker is back (a consumer of risk.decisions on a node
// that serves no checks would otherwise report the outage for ever), so a round that ends with
// neither a message nor an error ends the outage if the broker serves the topic again — asked
// directly for a kafka-go reader (brokerServes), whose error counters never go quiet on a topic
// that has never held a message (it re-dials every empty partition about once a second); for
// other readers, if they counted no error since the last round.
func (l *Loop) first(ctx context.Context) (kafka.Message, error) {
	for l.fetching.failingFor() > 0 {
		pctx, cancel := context.WithTimeout(ctx, l.cfg.IdleProbe)
		m, err := l.r.FetchMessage(pctx)
		probeOver := pctx.Err() != nil
		cancel()
		if err == nil || ctx.Err() != nil || !probeOver || !errors.Is(err, context.DeadlineExceeded) {
			return m, err
		}
		quiet := l.readerQuiet()
		if kr, ok := l.r.(interface{ Config() kafka.ReaderConfig }); ok {
			quiet = brokerServes(ctx, kr.Config(), l.cfg.IdleProbe)
		}
		if quiet {
			l.fetching.ok(ctx, "idle", true)
		}
	}
	return l.r.FetchMessage(ctx)
}

// brokerServes reports whether the brokers of rc serve every partition of its topic: the
// partitions are listed, and each one's leader answers for its end offset (a new topic's
// partitions answer "not leader" until their leader is settled), all within timeout.
func brokerServes(ctx context.Context, rc kafka.ReaderConfig, timeout time.Duration) bool {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	d := rc.Dialer
	if d == nil {
		d = kafka.DefaultDialer
	}
	for _, broker := range rc.Brokers {
		parts, err := d.LookupPartitions(ctx, "tcp", broker, rc.Topic)
		if err != nil || len(parts) == 0 {
			continue
		}
		for _, p := range parts {
			conn, err := d.DialLeader(ctx, "tcp", broker, rc.Topic, p.ID)
			if err != nil {
				return false
			}
			if dl, ok := ctx.Deadline(); ok {
				_ = conn.SetDeadline(dl)
			}
			_, err = conn.ReadLastOffset()
			conn.Close()
			if err != nil {
				return false
			}
		}
		return true
	}
	return false
}

// maxDrain bounds the queued errors next reads one after the other before it waits a backoff
// (a kafka-go reader queues at most its QueueCapacity).
const maxDrain = 1000

// readerStats reads the reader's counters, keeping its error count for readerQuiet; ok is false for
// a reader without counters.
func (l *Loop) readerStats() (s kafka.ReaderStats, ok bool) {
	sr, ok := l.r.(interface{ Stats() kafka.ReaderStats })
	if !ok {
		return s, false
	}
	s = sr.Stats()
	l.readerErrs += s.Errors
	return s, true
}

// readerQueue is how many messages and errors the reader holds ready (0 without counters).
func (l *Loop) readerQueue() int64 {
	s, _ := l.readerStats()
	return s.QueueLength
}

// readerQuiet reports whether the reader counted no error since the last call (kafka-go retries
// dials and group joins inside FetchMessage and only counts most failures). Readers without
// counters are taken at their word.
func (l *Loop) readerQuiet() bool {
	if _, ok := l.readerStats(); !ok {
		return true
	}
	quiet := l.readerErrs == 0
	l.readerErrs = 0
	return quiet
}

// handle retries the handler with exponential backoff until it succeeds or ctx is done.
func (l *Loop) handle(ctx context.Context, batch []kafka.Message) error {
	start := time.Now()
	if err := l.retry(ctx, l.working, len(batch), func() error { return l.h(ctx, batch) }); err != nil {
		return err
	}
	l.obs.Batch(l.cfg.Name, len(batch), time.Since(start))
	return nil
}

// retry calls fn, the work on a batch of size messages, with exponential backoff until it
// succeeds (nil) or ctx is done (ctx's error). o tracks the run of failures: logged when it starts
// and ends, and reported by Stalled while it lasts.
func (l *Loop) retry(ctx context.Context, o *outage, size int, fn func() error) error {
	delay := l.cfg.BackoffMin
	for {
		started := time.Now()
		o.begin(started)
		err := fn()
		o.end()
		if err == errReleased { //nolint:errorlint // the sentinel itself
			// Not a recovery: the write still failed, and the fetch that follows meets the same
			// broker. The run of failures goes on as the fetch's, from its start: released at a
			// rebalance (the group's session ran out while the write hung), the stall read 0 and
			// the log said "batch write recovered" (held-out run: a scorer's stall started over
			// 44 s into its broker's hang).
			o.handOver(l.fetching)
			return nil
		}
		if err == nil {
			o.ok(ctx, "size", size)
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		l.obs.Retry(l.cfg.Name, err)
		l.noteErr(err)
		o.failStarted(ctx, started, err, "size", size, "retry_in", delay)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
		delay = nextDelay(delay, l.cfg.BackoffMax)
	}
}

// errReleased is what a flush attempt returns when its batch was released instead (Loop.release).
var errReleased = errors.New("batch released: its partitions were revoked")

// commit commits a batch whose effect is durable. It does not give up when ctx is cancelled just
// then (a shutdown): the batch is done, and committing it spares a redelivery; commitTimeout
// bounds the wait, and stopCommitWait what is left of it once ctx is cancelled — against a hung
// broker a stopping archiver waited the whole 10 s for the commit of its last batch.
func (l *Loop) commit(ctx context.Context, batch []kafka.Message) error {
	parent := ctx
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), commitTimeout)
	defer cancel()
	stop := context.AfterFunc(parent, func() { time.AfterFunc(stopCommitWait, cancel) })
	defer stop()
	var err error
	for i := 0; i < 3; i++ {
		if err = l.r.CommitMessages(ctx, batch...); err == nil || ctx.Err() != nil {
			return err
		}
	}
	return err
}

// commitTimeout bounds a commit (a coordinator that does not answer); stopCommitWait bounds it
// from the moment the loop is told to stop.
// (Variables: tests lengthen commitTimeout.)
var (
	commitTimeout  = 10 * time.Second
	stopCommitWait = 2 * time.Second
)

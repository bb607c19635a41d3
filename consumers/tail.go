package consumers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
)

// Tail reads every partition of a topic from a point in time onwards, without a consumer group, and
// calls apply for each message, or each batch (NewBatchTail), from one goroutine per partition. It
// is how feature state is rebuilt after a restart and how an API node keeps its replica.
//
// A broker that goes away never ends a tail: listing partitions, reading offsets and fetching are
// retried with backoff (logged when the failures start and when they end), and reading resumes at
// the next unread offset, so nothing is applied twice or skipped.
type Tail struct {
	cfg     Config
	topic   string
	since   time.Time
	from    map[int]Mark // partition → where to start (a snapshot's); others start at since
	apply   func([]kafka.Message) time.Time
	log     *slog.Logger
	backoff time.Duration // longest wait between attempts; default 2 s
	probe   time.Duration // Follow: how often end offsets are read for Lag and Fresh; default 1 s
	skew    time.Duration // WaitThrough: how far apart messages of one time may reach partitions; default DefaultSkew

	mu      sync.Mutex
	targets map[int]int64 // partition → the newest end offset known
	// pm holds the per-partition positions (nil before the tail started). The maps are never
	// changed once stored: a partition added to the topic while the tail follows it gets new maps
	// (copied, under mu), so readers load pm once and use its maps without locking.
	pm      atomic.Pointer[partMaps]
	freshAt atomic.Int64 // unix ns: every message produced before it has been applied
	down    *outage      // reading the topic: one outage while any reader or the probe fails

	clientOnce sync.Once
	admin      *kafka.Client

	// after is time.After; tests see the waits between failed end-offsets probes through it.
	after func(time.Duration) <-chan time.Time

	failMu  sync.Mutex
	failing map[int]bool // partition (probePart: the offsets probe) → failing now
	anyFail atomic.Bool  // len(failing) > 0, for the readers' fast path

	deleted atomic.Int64 // messages the topic deleted before the tail read them (Deleted)

	goneTold bool // the probe logged that partitions are gone (only the probe uses it)
}

// partState is what a tail knows of one partition. Its reader is the only writer of every field.
type partState struct {
	pos   atomic.Int64 // the next offset to apply
	last  atomic.Int64 // timestamp (unix ns) of the last message applied
	event atomic.Int64 // newest event time (unix ns) apply reported; 0: none
	seen  atomic.Int64 // when (unix ns, this clock) a message was last applied
	mark  mark         // the timestamp of the message before pos, for Positions
}

// partMaps are the states of a tail's partitions, by partition.
type partMaps map[int]*partState

// with returns a copy of m (nil: none) with partition p added at position start.
func (m *partMaps) with(p int, start int64) *partMaps {
	n := partMaps{}
	if m != nil {
		maps.Copy(n, *m)
	}
	st := new(partState)
	st.pos.Store(start)
	n[p] = st
	return &n
}

// parts returns the partitions' states (none before the tail started).
func (t *Tail) parts() partMaps {
	if m := t.pm.Load(); m != nil {
		return *m
	}
	return nil
}

// healthyAfter is how long a reopened partition reader must run without an error to count as
// recovered when no message arrives to say so.
const healthyAfter = 5 * time.Second

// retryProbe is how soon a failed end-offsets probe is first tried again; the wait doubles with
// each failure in a row, up to the probe interval, so a broker that stays away is asked once per
// interval (at 50 ms every node asked it 20 times a second through a whole outage, and all at
// once when it came back).
const retryProbe = 50 * time.Millisecond

// probePart stands for the end-offsets probe among the failing readers.
const probePart = -1

// partFailed records that reader p (or the probe) failed: the first failure of an outage is
// logged, later ones (other partitions, retries) only counted.
func (t *Tail) partFailed(ctx context.Context, p int, err error, extra ...any) {
	t.failMu.Lock()
	defer t.failMu.Unlock()
	if t.failing == nil {
		t.failing = map[int]bool{}
	}
	t.failing[p] = true
	t.anyFail.Store(true)
	if p != probePart {
		extra = append(extra, "partition", p)
	}
	t.down.fail(ctx, err, extra...)
}

// partOK records that reader p (or the probe) works again; the outage ends, logged once, when no
// reader and not the probe is failing.
func (t *Tail) partOK(ctx context.Context, p int) {
	if !t.anyFail.Load() {
		return
	}
	t.failMu.Lock()
	defer t.failMu.Unlock()
	if !t.failing[p] {
		return
	}
	delete(t.failing, p)
	if len(t.failing) == 0 {
		t.anyFail.Store(false)
		t.down.ok(ctx)
	}
}

// NewTail prepares a tail of topic from time since. apply must be safe for concurrent calls.
func NewTail(c Config, topic string, since time.Time, apply func(kafka.Message), log *slog.Logger) *Tail {
	return NewBatchTail(c, topic, since, func(ms []kafka.Message) {
		for _, m := range ms {
			apply(m)
		}
	}, log)
}

// NewBatchTail is NewTail with messages handed over in batches: one partition's messages in offset
// order, as many as its reader has fetched already (up to TailBatch) — one message when the tail
// keeps up, more when it catches up or a burst arrives; the tail never waits to fill a batch.
// apply must be safe for concurrent calls and must not keep the slice.
func NewBatchTail(c Config, topic string, since time.Time, apply func([]kafka.Message), log *slog.Logger) *Tail {
	return NewEventTail(c, topic, since, func(ms []kafka.Message) time.Time {
		apply(ms)
		return time.Time{}
	}, log)
}

// NewEventTail is NewBatchTail for messages that carry their own time (an event's ts): apply
// returns the newest such time among the batch's messages (zero when none has one), and
// WaitThrough uses it for batches produced after the fact (see Point).
func NewEventTail(c Config, topic string, since time.Time, apply func([]kafka.Message) time.Time, log *slog.Logger) *Tail {
	log = log.With("tail", topic)
	return &Tail{cfg: c.withDefaults(), topic: topic, since: since, apply: apply, log: log,
		backoff: 2 * time.Second, probe: time.Second, skew: DefaultSkew, down: newOutage(log, "reading "+topic), after: time.After}
}

// DefaultSkew is how far apart, by default, messages stamped at one time may reach different
// partitions: a producer sends each partition's batch on its own, and `riskflow produce` of a
// recorded stream sends 1,000 events per call, whose partitions' batches were seen arriving
// 120 ms apart on a loaded 2-core machine.
const DefaultSkew = 250 * time.Millisecond

// SetSkew sets how far apart messages of one time may reach different partitions (WaitThrough
// reads an idle partition's end only once that long has passed since the time it waits for).
// Call it before the tail starts.
func (t *Tail) SetSkew(d time.Duration) { t.skew = max(d, 0) }

// Mark is where a reader stands in one partition: Next, the next offset to apply (every message
// before it has been applied), and Last, the timestamp of the message at Next-1 (zero when not
// known: nothing applied since the start). The pair identifies the partition's history: a topic
// deleted and created again holds another message, of another time, at that offset.
type Mark struct {
	Next int64
	Last time.Time
}

// mark is a partition's Last, kept consistent with its position by a sequence number (odd while
// the partition's one reader updates them).
type mark struct {
	seq atomic.Uint64
	ns  atomic.Int64
}

// StartAt makes the tail start partition p at marks[p].Next (the next offset a snapshot did not
// cover) instead of at since; partitions not in marks start at since. Call it before CatchUp or
// Follow. An offset the topic no longer holds (retention deleted it) starts at the oldest one left,
// with a warning: the events in between are missing from the state.
func (t *Tail) StartAt(marks map[int]Mark) { t.from = marks }

// Positions returns, per partition, the next offset to apply and the time of the message before
// it, as one consistent pair (nil before the tail started).
func (t *Tail) Positions() map[int]Mark {
	pm := t.pm.Load()
	if pm == nil {
		return nil
	}
	out := make(map[int]Mark, len(*pm))
	for p, st := range *pm {
		m := &st.mark
		for {
			s := m.seq.Load()
			next, ns := st.pos.Load(), m.ns.Load()
			if s%2 == 0 && m.seq.Load() == s {
				out[p] = Mark{Next: next}
				if ns != 0 {
					out[p] = Mark{Next: next, Last: time.Unix(0, ns)}
				}
				break
			}
			runtime.Gosched()
		}
	}
	return out
}

// CatchUp reads every partition up to the end offsets it sees when called, then returns. It
// returns an error only when ctx ends first.
func (t *Tail) CatchUp(ctx context.Context) (int, error) {
	return t.run(ctx, true)
}

// Follow reads every partition and keeps reading until ctx is done; it returns nil then.
func (t *Tail) Follow(ctx context.Context) error {
	_, err := t.run(ctx, false)
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// Lag returns how many messages are behind the newest end offsets known, summed over partitions
// (-1 before the tail started).
func (t *Tail) Lag() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.targets == nil {
		return -1
	}
	var lag int64
	pm := t.parts()
	for p, end := range t.targets {
		if st, ok := pm[p]; ok {
			if d := end - st.pos.Load(); d > 0 {
				lag += d
			}
		}
	}
	return lag
}

// Fresh returns the newest time T such that every message the topic held at T has been applied
// (zero before the tail first caught up). While the broker cannot be reached it stops moving:
// time.Since(Fresh()) is how stale the state fed by this tail may be.
func (t *Tail) Fresh() time.Time {
	ns := t.freshAt.Load()
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

func (t *Tail) run(ctx context.Context, stopAtEnd bool) (int, error) {
	started := time.Now()
	var parts []int
	err := Retry(ctx, t.log, "listing partitions", 100*time.Millisecond, t.backoff, func(ctx context.Context) (err error) {
		parts, err = Partitions(ctx, t.cfg, t.topic)
		if err == nil && len(parts) == 0 {
			err = fmt.Errorf("topic %s has no partition with a leader", t.topic)
		}
		return err
	})
	if err != nil {
		return 0, err
	}
	b := make(map[int]bounds, len(parts))
	for _, p := range parts {
		var bb bounds
		err := Retry(ctx, t.log, fmt.Sprintf("reading offsets of partition %d", p), 100*time.Millisecond, t.backoff, func(ctx context.Context) (err error) {
			bb, err = t.readBounds(ctx, p)
			return err
		})
		if err != nil {
			return 0, err
		}
		b[p] = bb
	}
	t.mu.Lock()
	t.targets = map[int]int64{}
	pm := make(partMaps, len(b))
	for p, bb := range b {
		t.targets[p] = bb.end
		st := new(partState)
		st.pos.Store(bb.start)
		if from, ok := t.from[p]; ok && from.Next == bb.start && !from.Last.IsZero() {
			st.mark.ns.Store(from.Last.UnixNano())
		}
		pm[p] = st
	}
	t.pm.Store(&pm)
	t.mu.Unlock()

	var wg sync.WaitGroup
	var total atomic.Int64
	for p, bb := range b {
		if stopAtEnd && bb.start >= bb.end {
			continue
		}
		wg.Add(1)
		go func(p int, bb bounds) {
			defer wg.Done()
			total.Add(int64(t.partition(ctx, p, bb.end, stopAtEnd)))
		}(p, bb)
	}
	if !stopAtEnd {
		wg.Add(1)
		go func() { defer wg.Done(); t.probeEnds(ctx, parts, &wg) }()
	}
	wg.Wait()
	if ctx.Err() != nil {
		return int(total.Load()), ctx.Err()
	}
	t.freshAt.Store(started.UnixNano()) // CatchUp: everything there at start is applied
	return int(total.Load()), nil
}

type bounds struct{ start, end int64 }

func (t *Tail) readBounds(ctx context.Context, p int) (bounds, error) {
	conn, err := dialLeader(ctx, t.cfg, t.topic, p)
	if err != nil {
		return bounds{}, fmt.Errorf("tail %s/%d: dial leader: %w", t.topic, p, err)
	}
	defer conn.Close()
	defer bound(ctx, conn)()
	first, last, err := conn.ReadOffsets()
	if mk, ok := t.from[p]; ok && err == nil {
		from := mk.Next
		switch {
		case from < first:
			t.log.Warn("snapshot offset no longer in the topic; events in between are missing from the state", "partition", p, "snapshot_offset", from, "oldest_offset", first)
			t.deleted.Add(first - from)
			from = first
		case from > last:
			t.log.Warn("snapshot offset beyond the end of the topic (topic recreated?); reading from the oldest offset", "partition", p, "snapshot_offset", from, "end_offset", last)
			from = first
		}
		return bounds{from, last}, nil
	}
	if err == nil && !t.since.IsZero() {
		var at int64
		if at, err = conn.ReadOffset(t.since); err == nil {
			switch {
			case at < 0:
				// No message at or after since (Kafka answers -1): nothing to read from the
				// past, not everything.
				first = last
			case at > first:
				first = at
			}
		}
	}
	if err != nil {
		return bounds{}, fmt.Errorf("tail %s/%d: read offsets: %w", t.topic, p, err)
	}
	return bounds{first, last}, nil
}

// partition applies partition p's messages from its current position, until end when stopAtEnd,
// else until ctx is done. A failing reader is closed and a new one opened at the next unread
// offset after a backoff: kafka-go's partition reader gives up after a few dial attempts.
func (t *Tail) partition(ctx context.Context, p int, end int64, stopAtEnd bool) int {
	st := t.parts()[p]
	delay := 100 * time.Millisecond
	n := 0
	for ctx.Err() == nil {
		if stopAtEnd && st.pos.Load() >= end {
			return n
		}
		got, err := t.read(ctx, p, st, end, stopAtEnd)
		n += got
		if got > 0 {
			delay = 100 * time.Millisecond
		}
		if err == nil || ctx.Err() != nil {
			continue
		}
		t.partFailed(ctx, p, err, "offset", st.pos.Load(), "retry_in", delay)
		select {
		case <-ctx.Done():
		case <-time.After(delay):
		}
		delay = nextDelay(delay, t.backoff)
	}
	return n
}

// read runs one partition reader from pos until end (stopAtEnd), an error, or ctx's end.
func (t *Tail) read(ctx context.Context, p int, st *partState, end int64, stopAtEnd bool) (int, error) {
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers: t.cfg.Brokers, Topic: t.topic, Partition: p, Dialer: t.cfg.fetchDialer(ctx),
		MinBytes: 1, MaxBytes: 16 << 20, MaxWait: 50 * time.Millisecond, QueueCapacity: 1000,
		ReadBackoffMin: 10 * time.Millisecond, ReadBackoffMax: 100 * time.Millisecond, MaxAttempts: 3,
	})
	defer r.Close()
	if err := r.SetOffset(st.pos.Load()); err != nil {
		return 0, fmt.Errorf("tail %s/%d: set offset %d: %w", t.topic, p, st.pos.Load(), err)
	}
	// An idle partition delivers nothing to prove the reader is back: a reader that has not failed
	// within healthyAfter of opening counts as recovered. (kafka-go gives up on a dead broker within
	// a few dial attempts, well before that.)
	healthy := time.AfterFunc(healthyAfter, func() { t.partOK(ctx, p) })
	defer healthy.Stop()
	n := 0
	batch := make([]kafka.Message, 0, TailBatch)
	next := st.pos.Load() // the offset the next message should have
	var jumped jumps
	// seen checks m's offset against the one expected: kafka-go's reader jumps without a word to
	// the oldest offset when the topic deleted what was next (a node frozen or cut off for longer
	// than the retention), and what it jumped over is missing from the state.
	seen := func(m kafka.Message) {
		if now := time.Now(); jumped.add(next, m.Offset, now) {
			t.noteJumps(ctx, p, jumped.take(now))
		}
		next = m.Offset + 1
	}
	for {
		if stopAtEnd && st.pos.Load() >= end {
			return n, nil
		}
		m, err := r.FetchMessage(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return n, nil
			}
			return n, fmt.Errorf("tail %s/%d: fetch: %w", t.topic, p, err)
		}
		t.partOK(ctx, p) // a fetch went through: this reader is back
		seen(m)
		batch = append(batch[:0], m)
		// When the partition holds more than this message, the reader may have fetched some of
		// them already: take those too (they are in its queue, so fetching them does not wait).
		// Stats reads the queue's length (about 0.3 µs, once per batch, and only then).
		if m.HighWaterMark > m.Offset+1 {
			for q := r.Stats().QueueLength; q > 0 && len(batch) < TailBatch; q-- {
				if m, err = r.FetchMessage(ctx); err != nil {
					break
				}
				seen(m)
				batch = append(batch, m)
			}
		}
		n += t.applyBatch(p, st, batch)
		if err != nil {
			if ctx.Err() != nil {
				return n, nil
			}
			return n, fmt.Errorf("tail %s/%d: fetch: %w", t.topic, p, err)
		}
	}
}

// noteJumps logs and counts the messages of spans ([from, to) offsets of partition p the reader
// jumped over) that the topic deleted before the tail read them.
func (t *Tail) noteJumps(ctx context.Context, p int, spans [][2]int64) {
	n, lo, hi, err := deletedUnread(ctx, t.cfg, t.topic, p, spans)
	switch {
	case err != nil:
		t.log.Warn("skipped offsets not applied yet; whether the topic deleted them could not be told", "partition", p, "from_offset", spans[0][0], "to_offset", spans[len(spans)-1][1], "err", err)
	case n > 0:
		t.deleted.Add(n)
		t.log.Warn("messages deleted by the topic's retention before they were applied: missing from the state", "partition", p, "from_offset", lo, "to_offset", hi, "messages", n)
	}
}

// Deleted returns how many messages the tail skipped, since it started, because the topic had
// deleted them before it read them.
func (t *Tail) Deleted() int64 { return t.deleted.Load() }

// TailBatch is the most messages a batch tail (NewBatchTail) hands over at once.
const TailBatch = 256

// applyBatch applies batch, messages of partition p in offset order, then records the position
// after them. It returns how many it applied.
func (t *Tail) applyBatch(p int, st *partState, batch []kafka.Message) int {
	from := st.pos.Load()
	for len(batch) > 0 && batch[0].Offset < from {
		batch = batch[1:] // already applied (a reader reopened at an older offset never happens, but cheap to guard)
	}
	if len(batch) == 0 {
		return 0
	}
	if ev := t.apply(batch); !ev.IsZero() && ev.UnixNano() > st.event.Load() {
		st.event.Store(ev.UnixNano())
	}
	st.seen.Store(time.Now().UnixNano())
	last := batch[len(batch)-1]
	for i := len(batch) - 1; i >= 0; i-- {
		if !batch[i].Time.IsZero() {
			st.last.Store(batch[i].Time.UnixNano())
			break
		}
	}
	var ns int64
	if !last.Time.IsZero() {
		ns = last.Time.UnixNano()
	}
	mk := &st.mark
	mk.seq.Add(1)
	mk.ns.Store(ns)
	st.pos.Store(last.Offset + 1)
	mk.seq.Add(1)
	if hw := last.HighWaterMark; hw > 0 {
		t.raiseTarget(p, hw)
	}
	return len(batch)
}

func (t *Tail) raiseTarget(p int, end int64) {
	t.mu.Lock()
	if end > t.targets[p] {
		t.targets[p] = end
	}
	t.mu.Unlock()
}

// probeEnds reads the end offsets of every partition every t.probe. An answer at time T whose
// offsets have all been applied makes the state fresh as of T; an unreachable broker leaves the
// freshness where it was, so staleness grows.
//
// Each probe also lists the topic's partitions: one added since the tail started (the topic grown
// to spread scoring over more processes) is read from then on as the others are — without it,
// every node's state would miss the events keyed to the new partitions until it restarted.
func (t *Tail) probeEnds(ctx context.Context, parts []int, wg *sync.WaitGroup) {
	client := t.client()
	type snapshot struct {
		at   time.Time
		ends map[int]int64
	}
	var pending []snapshot // oldest first
	probe := time.NewTicker(t.probe)
	defer probe.Stop()
	check := time.NewTicker(5 * time.Millisecond) // a snapshot's ends are usually reached soon after it
	defer check.Stop()
	retry := retryProbe
	for {
		at := time.Now()
		var gone error
		parts, gone = t.addPartitions(ctx, client, parts, wg)
		applied := t.applied() // before the ends: a live topic's ends only grow past them
		var ends map[int]int64
		err := gone
		if err == nil {
			ends, err = t.readEnds(ctx, client, parts)
		}
		if err == nil {
			err = t.endsBelow(ends, applied)
		}
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			t.partFailed(ctx, probePart, err)
			// Try again soon rather than at the next tick: until a probe answers, the state
			// cannot be called fresh (a topic just created may not list its offsets yet).
			select {
			case <-ctx.Done():
				return
			case <-t.after(retry):
			}
			retry = nextDelay(retry, max(t.probe, retryProbe))
			continue
		default:
			retry = retryProbe
			t.partOK(ctx, probePart)
			for p, e := range ends {
				t.raiseTarget(p, e)
			}
			if pending = append(pending, snapshot{at, ends}); len(pending) > 32 {
				pending = pending[1:]
			}
		}
	wait:
		for {
			// The newest snapshot whose ends have all been reached sets the freshness.
			for len(pending) > 0 && t.reached(pending[0].ends) {
				t.freshAt.Store(pending[0].at.UnixNano())
				pending = pending[1:]
			}
			select {
			case <-ctx.Done():
				return
			case <-probe.C:
				break wait
			case <-check.C:
			}
		}
	}
}

// applied returns, per partition, the next offset to apply.
func (t *Tail) applied() map[int]int64 {
	pm := t.parts()
	out := make(map[int]int64, len(pm))
	for p, st := range pm {
		out[p] = st.pos.Load()
	}
	return out
}

// endsBelow returns an error when a partition ends below what was applied from it (read before
// the ends): the topic no longer holds messages this tail applied — it was deleted and created
// again, or the broker lost them. A node following the topic through such a change used to go on
// as fresh and ready with the old topic's state, waiting for offsets the new topic reaches only
// much later (held-out run: 245 of 600 checks answered otherwise than by a node started after the
// change); the probe fails instead, so the state goes stale and says why.
func (t *Tail) endsBelow(ends, applied map[int]int64) error {
	for p, e := range ends {
		if a, ok := applied[p]; ok && a > e {
			return fmt.Errorf("partition %d of %s ends at offset %d, below offset %d already applied: the topic was deleted and created again (or lost messages); restart the node to rebuild its state from the topic", p, t.topic, e, a)
		}
	}
	return nil
}

// addPartitions starts reading the partitions of the topic that are not among parts (added since
// the tail started) and returns parts with them. A partition whose offsets cannot be read yet is
// left for the next call; so is everything while the broker cannot list the partitions.
//
// It returns an error when partitions the tail reads are no longer in the topic: Kafka never
// removes a partition, so the topic was deleted and created again with fewer (the end offsets of
// the gone partitions cannot be read, and the probe failed with "Unknown Topic Or Partition", which
// did not say what happened or what to do).
func (t *Tail) addPartitions(ctx context.Context, client *kafka.Client, parts []int, wg *sync.WaitGroup) ([]int, error) {
	mctx, cancel := context.WithTimeout(ctx, t.cfg.DialTimeout)
	defer cancel()
	md, err := client.Metadata(mctx, &kafka.MetadataRequest{Topics: []string{t.topic}})
	if err != nil || len(md.Topics) != 1 || md.Topics[0].Error != nil || len(md.Topics[0].Partitions) == 0 {
		return parts, nil
	}
	known := make(map[int]bool, len(parts))
	for _, p := range parts {
		known[p] = true
	}
	listed := make(map[int]bool, len(md.Topics[0].Partitions))
	for _, mp := range md.Topics[0].Partitions {
		listed[mp.ID] = true
	}
	var gone []int
	for _, p := range parts {
		if !listed[p] {
			gone = append(gone, p)
		}
	}
	if len(gone) > 0 {
		slices.Sort(gone)
		err := fmt.Errorf("partitions %v of %s no longer exist (it has %d): the topic was deleted and created again with fewer partitions; restart the node to rebuild its state from the topic", gone, t.topic, len(listed))
		if !t.goneTold { // an outage logs only its first error, and the topic was likely missing then
			t.goneTold = true
			t.log.Error("topic created again with fewer partitions", "err", err)
		}
		return parts, err
	}
	for _, mp := range md.Topics[0].Partitions {
		p := mp.ID
		if known[p] || mp.Leader.Host == "" {
			continue
		}
		bb, err := t.readBounds(ctx, p)
		if err != nil {
			continue
		}
		t.mu.Lock()
		t.targets[p] = bb.end
		t.pm.Store(t.pm.Load().with(p, bb.start))
		t.mu.Unlock()
		t.log.Info("partition added to the topic; reading it too", "partition", p, "offset", bb.start)
		parts = append(parts, p)
		wg.Add(1)
		go func() { defer wg.Done(); t.partition(ctx, p, bb.end, false) }()
	}
	return parts, nil
}

func (t *Tail) readEnds(ctx context.Context, client *kafka.Client, parts []int) (map[int]int64, error) {
	ctx, cancel := context.WithTimeout(ctx, t.cfg.DialTimeout)
	defer cancel()
	reqs := make([]kafka.OffsetRequest, len(parts))
	for i, p := range parts {
		reqs[i] = kafka.LastOffsetOf(p)
	}
	resp, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{t.topic: reqs}})
	if err != nil {
		return nil, fmt.Errorf("tail %s: list end offsets: %w", t.topic, err)
	}
	ends := make(map[int]int64, len(parts))
	for _, po := range resp.Topics[t.topic] {
		if po.Error != nil {
			return nil, fmt.Errorf("tail %s/%d: list end offset: %w", t.topic, po.Partition, po.Error)
		}
		ends[po.Partition] = po.LastOffset
	}
	if len(ends) != len(parts) {
		return nil, errors.New("tail " + t.topic + ": end offsets missing for some partitions")
	}
	return ends, nil
}

// Point is how far a reader must have applied every partition before it handles a batch: Stamp is
// the newest Kafka timestamp among the batch's messages, Event the newest time their payloads
// carry (an event's ts; zero when not known). Partitions are the batch's own partitions: a
// partition added to the topic may reach a consumer group's member before the tail has listed
// it, and until then the tail's partitions say nothing about it.
type Point struct {
	Stamp, Event time.Time
	Partitions   []int
}

// Replayed reports whether the batch was produced after the fact (see ReplayLag): WaitThrough then
// waits for it by event time.
func (p Point) Replayed() bool { return !p.Event.IsZero() && p.Event.Before(p.Stamp.Add(-ReplayLag)) }

// ReplayLag tells a batch produced after the fact from a live one: when its newest event is older
// than its newest stamp by more than this, the batch is a recorded stream played back or a backlog
// sent after an outage. Its stamps then say nothing about the order of events across partitions
// (one producer batch carries an hour of events, stamped alike, and each partition's batches go
// out on their own), so WaitThrough waits for it by event time. Live events reach the topic
// within a second or two of their ts.
const ReplayLag = 5 * time.Second

// idleRecheck is how often, at most, WaitThrough reads the end offsets again while a partition
// that is behind the event time asked for has gone quiet, or while the broker cannot tell them.
const idleRecheck = 25 * time.Millisecond

// WaitThrough waits, at most max, until every partition has been applied up to at. It reports how
// long it waited and whether the condition was met (false: max passed or ctx ended). End offsets
// the broker cannot tell are asked for again until then: giving up at once would let a batch be
// handled without the other partitions' messages right after the broker came back.
//
// A live batch (see ReplayLag) is waited for by stamp: a partition is through when its last
// applied message is stamped at or after at.Stamp, or it had nothing more to read when its end
// offset was read at least the tail's skew (SetSkew) after at.Stamp. A partition's end known from
// earlier says nothing about messages produced since, so unless every partition is already past
// at.Stamp, the end offsets are read afresh (one ListOffsets round trip).
//
// Every partition of at.Partitions must first be one the tail reads: a batch from a partition
// added since the tail last listed the topic's partitions waits for the next listing (within the
// tail's probe interval, a second), so that the attempts written to the new partition before the
// batch are applied too.
//
// A batch produced after the fact is waited for by stamp as above and then by event time: a
// partition is through when it has applied an event whose time is at or after at.Event (a
// partition's events are in time order when a recorded stream is played back), or it is idle: at
// its end offset, read when nothing had reached the partition for the skew. Event time alone is
// not enough when such batches arrive amid live traffic (an app whose attempts are uploaded in
// batches after the fact): a partition that carries live events has applied newer ones, while the
// same upload's batch for it, produced with this one, may still be on its way.
func (t *Tail) WaitThrough(ctx context.Context, at Point, max time.Duration) (time.Duration, bool) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, max)
	defer cancel()
	tick := time.NewTicker(500 * time.Microsecond)
	defer tick.Stop()
	for !t.started() || !t.reads(at.Partitions) { // the partitions are being listed
		select {
		case <-ctx.Done():
			return time.Since(start), false
		case <-tick.C:
		}
	}
	ok := t.waitStamps(ctx, at.Stamp, tick)
	if ok && at.Replayed() {
		ok = t.waitEvents(ctx, at.Event.UnixNano(), tick)
	}
	return time.Since(start), ok
}

// waitStamps waits until every partition's last applied message is stamped at or after at, or
// the partition had nothing more to read when its end offset was read at least the skew after at.
func (t *Tail) waitStamps(ctx context.Context, at time.Time, tick *time.Ticker) bool {
	ns := at.UnixNano()
	if t.pastAll(ns, nil) {
		return true
	}
	// A partition at its end may still be about to receive messages stamped at or before at: a
	// producer's batches for different partitions reach the broker up to skew apart. So the end
	// offsets are read only once skew has passed since at; partitions that move past at meanwhile
	// end the wait sooner. (At most skew from now: a producer's clock ahead of this one does not
	// hold every batch up for longer.)
	if d := min(time.Until(at.Add(t.skew)), t.skew); d > 0 {
		settled := time.NewTimer(d)
		defer settled.Stop()
	wait:
		for {
			select {
			case <-ctx.Done():
				return false
			case <-settled.C:
				break wait
			case <-tick.C:
				if t.pastAll(ns, nil) {
					return true
				}
			}
		}
	}
	ends, ok := t.endsWithin(ctx, t.partitions())
	if !ok {
		return false
	}
	for p, e := range ends {
		t.raiseTarget(p, e)
	}
	for !t.pastAll(ns, ends) {
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
		}
	}
	return true
}

// waitEvents waits until every partition has applied an event at or after ns (unix ns), or is
// idle: applied up to its end offset as read when nothing had reached it for the skew. A partition
// found idle stays so for this wait.
func (t *Tail) waitEvents(ctx context.Context, ns int64, tick *time.Ticker) bool {
	idle := map[int]bool{}
	var read time.Time
	var behind, quiet []int // reused by every tick of the wait
	for {
		now := time.Now()
		quietSince := now.Add(-t.skew).UnixNano()
		behind, quiet = behind[:0], quiet[:0]
		pm := t.parts()
		for p, st := range pm {
			if idle[p] || st.event.Load() >= ns {
				continue
			}
			behind = append(behind, p)
			if st.seen.Load() <= quietSince {
				quiet = append(quiet, p)
			}
		}
		if len(behind) == 0 {
			return true
		}
		if len(quiet) > 0 && now.Sub(read) >= idleRecheck {
			ends, ok := t.endsWithin(ctx, quiet)
			if !ok {
				return false
			}
			read = now
			for p, e := range ends {
				t.raiseTarget(p, e)
				// Quiet before the read and still so after it: nothing reached p in between.
				if st := pm[p]; st != nil && st.pos.Load() >= e && st.seen.Load() <= quietSince {
					idle[p] = true
				}
			}
			continue
		}
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
		}
	}
}

// endsWithin reads the end offsets of parts, again every idleRecheck while the broker cannot
// tell them (a broker coming back, a partition between leaders), until ctx ends (false then).
func (t *Tail) endsWithin(ctx context.Context, parts []int) (map[int]int64, bool) {
	for {
		ends, err := t.readEnds(ctx, t.client(), parts)
		if err == nil {
			return ends, true
		}
		retry := time.NewTimer(idleRecheck)
		select {
		case <-ctx.Done():
			retry.Stop()
			return nil, false
		case <-retry.C:
		}
	}
}

func (t *Tail) started() bool { return t.pm.Load() != nil }

// pastAll reports whether every partition's last applied message is stamped at or after ns, or
// (with ends) the partition has been applied up to its end offset in ends.
func (t *Tail) pastAll(ns int64, ends map[int]int64) bool {
	pm := t.parts()
	for p, st := range pm {
		if st.last.Load() >= ns {
			continue
		}
		if e, ok := ends[p]; ok && st.pos.Load() >= e {
			continue
		}
		return false
	}
	return true
}

// reads reports whether the tail reads every partition of ps.
func (t *Tail) reads(ps []int) bool {
	pm := t.parts()
	for _, p := range ps {
		if _, ok := pm[p]; !ok {
			return false
		}
	}
	return true
}

func (t *Tail) partitions() []int {
	pm := t.parts()
	ps := make([]int, 0, len(pm))
	for p := range pm {
		ps = append(ps, p)
	}
	return ps
}

// client returns the tail's admin client (one per tail, made on first use).
func (t *Tail) client() *kafka.Client {
	t.clientOnce.Do(func() {
		t.admin = &kafka.Client{Addr: kafka.TCP(t.cfg.Brokers...), Timeout: t.cfg.DialTimeout,
			Transport: &kafka.Transport{ClientID: t.cfg.ClientID, Dial: (&net.Dialer{Timeout: t.cfg.DialTimeout}).DialContext}}
	})
	return t.admin
}

// reached reports whether every partition has been applied up to ends.
func (t *Tail) reached(ends map[int]int64) bool {
	pm := t.parts()
	for p, e := range ends {
		if st, ok := pm[p]; ok && st.pos.Load() < e {
			return false
		}
	}
	return true
}

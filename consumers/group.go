package consumers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
)

// GroupReader is a consumer-group reader (a Reader) that hands its partitions over cleanly at a
// rebalance: when its generation ends it stops handing out messages of it, and before it rejoins
// the group it waits — at most DrainTimeout — until every message it has handed out is committed.
// A loop that is writing a batch when its partitions are revoked thus commits that batch before
// the partitions' new owner reads their committed offsets, instead of after (kafka-go's Reader
// rejoins at once, and the batch was written again by the new owner: two archivers starting
// together stored 4,300 records for 4,000).
//
// Nothing is ever committed before the loop asks (commit only what is durable stays the loop's
// rule); a commit that comes after the drain gave up fails, and its messages are delivered again
// to whoever owns their partition then. A loop hands back (Release) a batch it has not started
// writing when the generation has ended, so that the drain waits only for the batch being written.
type GroupReader struct {
	rc    kafka.ReaderConfig // what partition readers are built from (GroupID unset)
	cfg   Config
	group string
	cg    *kafka.ConsumerGroup
	drain time.Duration

	msgs   chan fetched
	errs   chan error
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	mu   sync.Mutex
	live *generation // the generation commits go through: the current one, or one draining

	log       *slog.Logger
	onDeleted func(int64)

	parts     sync.Map // partition → *kafka.Reader, for Stats
	errCount  atomic.Int64
	deleted   atomic.Int64 // messages deleted by the topic before the group read them (Deleted)
	rebalance atomic.Int64
	closeOnce sync.Once
}

// fetched is a message (or an error) of a generation.
type fetched struct {
	m   kafka.Message
	gen *generation
	err error
}

// generation is what a GroupReader knows of one generation of the group.
type generation struct {
	g *kafka.Generation

	mu        sync.Mutex
	ended     bool          // no more messages are handed out
	abandoned bool          // the drain is over: commits fail
	first     map[int]int64 // partition → first offset handed out
	last      map[int]int64 // partition → last offset handed out
	committed map[int]int64 // partition → next offset committed
	changed   chan struct{} // a commit happened (buffered 1)
}

func newGeneration(g *kafka.Generation) *generation {
	return &generation{g: g, first: map[int]int64{}, last: map[int]int64{}, committed: map[int]int64{}, changed: make(chan struct{}, 1)}
}

// handOut records m as handed out; false when the generation has ended.
func (g *generation) handOut(m kafka.Message) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ended {
		return false
	}
	if _, ok := g.first[m.Partition]; !ok {
		g.first[m.Partition] = m.Offset
	}
	g.last[m.Partition] = m.Offset
	return true
}

// drained reports whether every message handed out is committed.
func (g *generation) drained() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	for p, last := range g.last {
		if g.committed[p] <= last {
			return false
		}
	}
	return true
}

// forget drops what g handed out of partition p: the partition is read again from its start (the
// topic created again), and what was handed out of the old one is not waited for nor committed.
func (g *generation) forget(p int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.first, p)
	delete(g.last, p)
	delete(g.committed, p)
}

// owns reports whether m was handed out by g.
func (g *generation) owns(m kafka.Message) bool {
	first, ok := g.first[m.Partition]
	return ok && m.Offset >= first && m.Offset <= g.last[m.Partition]
}

// DefaultDrainTimeout bounds how long a revoked generation waits for its handed-out messages to be
// committed. kafka-go stops heartbeating when a generation ends, so the drain must end well within
// the session timeout (a member silent for that long is dropped from the group, and its commits
// refused) and the rebalance timeout (the group waits that long for its members to rejoin); it is
// long enough for a few of an archiver's batches to be written.
const DefaultDrainTimeout = 7 * time.Second

// groupSessionTimeout and groupRebalanceTimeout are the group's session and rebalance timeouts.
const (
	groupSessionTimeout   = 10 * time.Second
	groupRebalanceTimeout = 10 * time.Second
)

// GroupOption configures a GroupReader.
type GroupOption func(*GroupReader)

// WithGroupLogger is where the reader says what it could not read (slog.Default() without it).
func WithGroupLogger(log *slog.Logger) GroupOption {
	return func(r *GroupReader) { r.log = log }
}

// WithDeletedUnread calls fn with the number of messages each time the reader finds some that the
// topic deleted before the group read them (for a metric; Deleted is the running total).
func WithDeletedUnread(fn func(n int64)) GroupOption {
	return func(r *GroupReader) { r.onDeleted = fn }
}

// NewGroupReader returns a consumer-group reader of topic. Offsets are committed explicitly
// (CommitMessages), never automatically; a new group starts at the earliest offset. At a
// rebalance the reader gives up its partitions only once what it handed out is committed (see
// GroupReader). Messages the topic deleted before the group read them (its committed offset
// older than the topic's oldest, after an outage longer than the retention) are skipped, logged
// and counted (Deleted).
func NewGroupReader(c Config, topic, group string, opts ...GroupOption) *GroupReader {
	c = c.withDefaults()
	rc := kafka.ReaderConfig{
		Brokers:          c.Brokers,
		Topic:            topic,
		Dialer:           c.dialer(), // a partition reader's: fetchDialer of its generation (fetchPartition)
		MinBytes:         1,
		MaxBytes:         16 << 20,
		MaxWait:          50 * time.Millisecond,
		ReadBatchTimeout: time.Second,
		QueueCapacity:    c.ReaderQueueCapacity(),
		StartOffset:      kafka.FirstOffset,
		ReadBackoffMin:   10 * time.Millisecond,
		ReadBackoffMax:   200 * time.Millisecond,
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &GroupReader{rc: rc, cfg: c, group: group, drain: DefaultDrainTimeout,
		msgs: make(chan fetched, max(1, rc.QueueCapacity/2)), errs: make(chan error, 1),
		ctx: ctx, cancel: cancel, done: make(chan struct{}), log: slog.Default()}
	for _, o := range opts {
		o(r)
	}
	cg, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID:                     group,
		Brokers:                c.Brokers,
		Dialer:                 c.dialer(),
		Topics:                 []string{topic},
		HeartbeatInterval:      time.Second,
		SessionTimeout:         groupSessionTimeout,
		RebalanceTimeout:       groupRebalanceTimeout,
		JoinGroupBackoff:       500 * time.Millisecond,
		WatchPartitionChanges:  true,
		PartitionWatchInterval: 5 * time.Second,
		StartOffset:            kafka.FirstOffset,
		Timeout:                c.DialTimeout,
	})
	if err != nil {
		// Only a configuration kafka-go refuses: every FetchMessage reports it.
		r.errs = make(chan error, 1)
		r.errs <- fmt.Errorf("consumer group %s: %w", group, err)
		close(r.done)
		return r
	}
	r.cg = cg
	go r.run()
	return r
}

// Config is the configuration of the reader's partition readers, with the group's id (the loop
// asks it for brokers and topic).
func (r *GroupReader) Config() kafka.ReaderConfig {
	rc := r.rc
	rc.GroupID = r.group
	return rc
}

// Stats sums the partition readers' counters; QueueLength counts what waits for FetchMessage too.
func (r *GroupReader) Stats() kafka.ReaderStats {
	s := kafka.ReaderStats{Topic: r.rc.Topic, ClientID: r.rc.Dialer.ClientID}
	r.parts.Range(func(_, v any) bool {
		ps := v.(*kafka.Reader).Stats()
		s.Messages += ps.Messages
		s.Bytes += ps.Bytes
		s.Errors += ps.Errors
		s.Timeouts += ps.Timeouts
		s.Dials += ps.Dials
		s.Fetches += ps.Fetches
		s.Lag += ps.Lag
		s.QueueLength += ps.QueueLength
		return true
	})
	s.QueueLength += int64(len(r.msgs))
	s.Errors += r.errCount.Swap(0)
	s.Rebalances = r.rebalance.Load()
	return s
}

// run follows the group's generations until the reader is closed.
func (r *GroupReader) run() {
	defer close(r.done)
	for {
		g, err := r.cg.Next(r.ctx)
		if err != nil {
			if r.ctx.Err() != nil {
				return
			}
			r.errCount.Add(1)
			select { // the loop hears of it if it is not busy with another
			case r.errs <- fmt.Errorf("consumer group %s: %w", r.group, err):
			default:
			}
			continue
		}
		r.rebalance.Add(1)
		gen := newGeneration(g)
		r.mu.Lock()
		r.live = gen
		r.mu.Unlock()
		g.Start(func(ctx context.Context) { r.revoke(ctx, gen) })
		assigned := g.Assignments[r.rc.Topic]
		// The partition readers' queues share the other half of QueueCapacity: what the reader
		// holds stays within ReaderQueueCapacity, however many partitions it is assigned.
		perPart := max(1, r.rc.QueueCapacity/2/max(1, len(assigned)))
		for _, a := range assigned {
			g.Start(func(ctx context.Context) { r.fetchPartition(ctx, gen, a.ID, a.Offset, perPart) })
		}
	}
}

// revoke waits for the generation to end, then holds the group's rejoin until every message the
// generation handed out is committed, or the drain timeout passes.
func (r *GroupReader) revoke(ctx context.Context, gen *generation) {
	select {
	case <-ctx.Done():
	case <-r.ctx.Done():
	}
	gen.mu.Lock()
	gen.ended = true
	gen.mu.Unlock()
	timer := time.NewTimer(r.drain)
	defer timer.Stop()
	for !gen.drained() && !gen.isAbandoned() {
		select {
		case <-gen.changed:
		case <-timer.C:
			r.abandon(gen)
			return
		case <-r.ctx.Done():
			r.abandon(gen)
			return
		}
	}
	r.abandon(gen)
}

func (g *generation) isAbandoned() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.abandoned
}

// abandon makes commits through gen fail from now on (the group moves on without it).
func (r *GroupReader) abandon(gen *generation) {
	gen.mu.Lock()
	gen.abandoned = true
	gen.mu.Unlock()
}

// fetchPartition reads one assigned partition from offset until the generation ends. A partition
// whose end is found behind the reader's position (the topic deleted and created again under the
// group, which a node's RestoringWriter does for risk.scores) is read again from its oldest offset.
func (r *GroupReader) fetchPartition(ctx context.Context, gen *generation, partition int, offset int64, queue int) {
	for r.fetchPartitionFrom(ctx, gen, partition, offset, queue) && ctx.Err() == nil {
		gen.forget(partition)
		offset = kafka.FirstOffset
	}
}

// fetchPartitionFrom reads partition from offset until the generation ends (false) or the
// partition's end is found behind its position (true: read it again from the oldest offset).
// kafka-go's partition reader waits without a word at a position past the end, for new messages
// to reach it, and then reads on from there: with a committed offset of the topic deleted since
// (risk.scores deleted and created again by the scorers' writers) the archivers skipped, never
// saying so, every record of the new topic up to the old offsets (held-out run: 6,030 scores
// written to the new risk.scores, none stored in ClickHouse).
func (r *GroupReader) fetchPartitionFrom(ctx context.Context, gen *generation, partition int, offset int64, queue int) (again bool) {
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	rc := r.rc
	rc.Partition = partition
	rc.QueueCapacity = queue
	rc.Dialer = r.cfg.fetchDialer(rctx)
	pr := kafka.NewReader(rc)
	defer pr.Close()
	if err := pr.SetOffset(offset); err != nil {
		r.errCount.Add(1)
		return false
	}
	r.parts.Store(partition, pr)
	defer r.parts.CompareAndDelete(partition, pr)
	next := offset // the offset the next message should have; < 0: none committed (the oldest)
	var pos atomic.Int64
	pos.Store(next)
	var end atomic.Int64 // the partition's end, once found behind pos
	go r.watchPastEnd(rctx, partition, &pos, &end, cancel)
	var jumped jumps
	for {
		m, err := pr.FetchMessage(rctx)
		if ctx.Err() != nil {
			return false
		}
		if rctx.Err() != nil { // watchPastEnd found the end behind next
			r.log.Warn("partition's end is behind this consumer group's position: the topic was deleted and created again (or truncated); reading the partition from its oldest offset",
				"topic", r.rc.Topic, "group", r.group, "partition", partition, "position", next, "end_offset", end.Load())
			return true
		}
		f := fetched{m: m, gen: gen}
		if err == nil {
			if now := time.Now(); next >= 0 && jumped.add(next, m.Offset, now) {
				r.noteJumps(ctx, partition, jumped.take(now))
			}
			next = m.Offset + 1
			pos.Store(next)
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return false
			}
			f = fetched{gen: gen, err: fmt.Errorf("partition %d of %s: %w", partition, r.rc.Topic, err)}
		}
		select {
		case r.msgs <- f:
		case <-ctx.Done():
			return false
		}
	}
}

// pastEndCheckEvery is how often a partition reader's position that has not moved is checked
// against the partition's end (watchPastEnd): one offsets request per idle partition that often.
const pastEndCheckEvery = 10 * time.Second

// watchPastEnd calls cancel, with end set, once the partition's end is behind *pos, a position
// that has not moved for pastEndCheckEvery.
func (r *GroupReader) watchPastEnd(ctx context.Context, p int, pos, end *atomic.Int64, cancel func()) {
	t := time.NewTicker(pastEndCheckEvery)
	defer t.Stop()
	seen := pos.Load()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		at := pos.Load()
		if at <= 0 || at != seen {
			seen = at // no position yet, or moving: nothing to check
			continue
		}
		last, err := endOffset(ctx, r.cfg, r.rc.Topic, p)
		if err != nil || last >= at {
			continue
		}
		end.Store(last)
		cancel()
		return
	}
}

// noteJumps logs and counts the messages of spans ([from, to) offsets of partition p the
// partition reader jumped over) that the topic deleted before the group read them.
func (r *GroupReader) noteJumps(ctx context.Context, p int, spans [][2]int64) {
	n, lo, hi, err := deletedUnread(ctx, r.cfg, r.rc.Topic, p, spans)
	switch {
	case err != nil:
		r.log.Warn("consumer group skipped offsets it had not read; whether the topic deleted them could not be told", "topic", r.rc.Topic, "group", r.group, "partition", p, "from_offset", spans[0][0], "to_offset", spans[len(spans)-1][1], "err", err)
	case n > 0:
		r.deleted.Add(n)
		if r.onDeleted != nil {
			r.onDeleted(n)
		}
		r.log.Warn("messages deleted by the topic's retention before this consumer group read them: never consumed", "topic", r.rc.Topic, "group", r.group, "partition", p, "from_offset", lo, "to_offset", hi, "messages", n)
	}
}

// Deleted returns how many messages the reader skipped, since it started, because the topic had
// deleted them before the group read them.
func (r *GroupReader) Deleted() int64 { return r.deleted.Load() }

// FetchMessage returns the next message of the current generation. Messages of a generation that
// has ended are dropped: their partitions may have moved, and they are not committed.
func (r *GroupReader) FetchMessage(ctx context.Context) (kafka.Message, error) {
	for {
		select {
		case <-ctx.Done():
			return kafka.Message{}, ctx.Err()
		case <-r.ctx.Done():
			return kafka.Message{}, io.EOF
		case err := <-r.errs:
			return kafka.Message{}, err
		case f := <-r.msgs:
			if f.err != nil {
				f.gen.mu.Lock()
				ended := f.gen.ended
				f.gen.mu.Unlock()
				if ended {
					continue
				}
				return kafka.Message{}, f.err
			}
			if f.gen.handOut(f.m) {
				return f.m, nil
			}
		}
	}
}

// Release takes back msgs, the newest messages handed out on their partitions, when the
// generation that handed them out has ended: the loop will not write them, their partitions' next
// owner reads them from the committed offsets, and the drain stops waiting for them. It reports
// whether it did; while the generation lasts (or when msgs are not the newest handed out on
// their partitions) it does nothing and returns false. A loop asks before it starts writing a
// batch, so that a rebalance waits only for the batch being written, not for the batches queued
// behind it too: an archiver behind, with a 100,000-record batch written and the next one
// prepared, outlasted the drain (DefaultDrainTimeout) whenever two of its INSERTs took longer,
// and the new owner wrote the first one again.
func (r *GroupReader) Release(msgs []kafka.Message) bool {
	if len(msgs) == 0 {
		return false
	}
	r.mu.Lock()
	gen := r.live
	r.mu.Unlock()
	if gen == nil {
		return false
	}
	gen.mu.Lock()
	defer gen.mu.Unlock()
	if !gen.ended {
		return false
	}
	lo, hi := map[int]int64{}, map[int]int64{}
	for _, m := range msgs {
		if !gen.owns(m) {
			return false // of an earlier generation, or not handed out: its commit fails anyway
		}
		if o, ok := lo[m.Partition]; !ok || m.Offset < o {
			lo[m.Partition] = m.Offset
		}
		if m.Offset > hi[m.Partition] {
			hi[m.Partition] = m.Offset
		}
	}
	for p, h := range hi {
		if h != gen.last[p] {
			return false // not the newest handed out: what is after it would be skipped
		}
	}
	for p, l := range lo {
		if l <= gen.first[p] {
			delete(gen.first, p)
			delete(gen.last, p)
			continue
		}
		gen.last[p] = l - 1
	}
	gen.signal()
	return true
}

// ErrGenerationEnded is what CommitMessages returns for messages of a generation that ended
// before they were committed: they are delivered again.
var ErrGenerationEnded = errors.New("the group generation that delivered the messages has ended; they are delivered again")

// CommitMessages commits msgs (each one's offset + 1, the highest per partition) through the
// generation that handed them out — even if that generation has ended, while its drain lasts.
func (r *GroupReader) CommitMessages(ctx context.Context, msgs ...kafka.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	r.mu.Lock()
	gen := r.live
	r.mu.Unlock()
	if gen == nil {
		return ErrGenerationEnded
	}
	gen.mu.Lock()
	if gen.abandoned {
		gen.mu.Unlock()
		return ErrGenerationEnded
	}
	offsets := map[int]int64{}
	stale := 0
	for _, m := range msgs {
		if !gen.owns(m) {
			stale++
			continue
		}
		if o, ok := offsets[m.Partition]; !ok || m.Offset+1 > o {
			offsets[m.Partition] = m.Offset + 1
		}
	}
	gen.mu.Unlock()
	if len(offsets) > 0 {
		if err := r.commit(ctx, gen, offsets); err != nil {
			return fmt.Errorf("commit offsets of %s for group %s: %w", r.rc.Topic, r.group, err)
		}
	}
	if stale > 0 {
		return fmt.Errorf("commit %d of %d messages: %w", stale, len(msgs), ErrGenerationEnded)
	}
	return nil
}

// commit sends offsets through gen and records them.
func (r *GroupReader) commit(ctx context.Context, gen *generation, offsets map[int]int64) error {
	errc := make(chan error, 1)
	go func() { errc <- gen.g.CommitOffsets(map[string]map[int]int64{r.rc.Topic: offsets}) }()
	select {
	case err := <-errc:
		if err != nil {
			gen.mu.Lock()
			ended := gen.ended
			if ended { // the coordinator is likely gone: waiting longer gains nothing
				gen.abandoned = true
			}
			gen.mu.Unlock()
			gen.signal()
			if ended {
				// kafka-go closes an ended generation's connection: the commit fails with
				// whatever the connection said ("use of closed network connection"), and the
				// messages are delivered again like any of an ended generation.
				return fmt.Errorf("%w: %w", ErrGenerationEnded, err)
			}
			return err
		}
	case <-ctx.Done():
		return ctx.Err()
	}
	gen.mu.Lock()
	for p, o := range offsets {
		if o > gen.committed[p] {
			gen.committed[p] = o
		}
	}
	gen.mu.Unlock()
	gen.signal()
	return nil
}

// signal wakes the generation's drain.
func (g *generation) signal() {
	select {
	case g.changed <- struct{}{}:
	default:
	}
}

// leaveWait bounds how long Close waits for the group to be left. Leaving takes milliseconds when
// the broker answers; against a hung broker kafka-go's leave waits for a coordinator lookup and
// the leave request, each up to Config.DialTimeout (5 s), and a stopping archiver — which closes
// two group readers, one after the other — took 20 s to exit (a scorer 32 s, with its writers).
// Leaving is a courtesy: without it the partitions move once the member's session times out.
const leaveWait = 2 * time.Second

// Close leaves the group and stops every partition reader. It returns once the reader hands out
// nothing more; the group is left in the background if that takes longer than leaveWait.
func (r *GroupReader) Close() error {
	r.closeOnce.Do(func() {
		r.cancel()
		if r.cg != nil {
			left := make(chan struct{})
			go func() { r.cg.Close(); close(left) }()
			t := time.NewTimer(leaveWait)
			select {
			case <-left:
			case <-t.C:
			}
			t.Stop()
		}
		<-r.done
	})
	return nil
}

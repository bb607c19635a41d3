package consumers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
)

// Tail reads every partition of a topic from a point in time onwards, without a consumer group, and
// calls apply for each message (from one goroutine per partition). It is how feature state is
// rebuilt after a restart and how an API node keeps its replica.
type Tail struct {
	cfg     Config
	topic   string
	since   time.Time
	apply   func(kafka.Message)
	log     *slog.Logger
	mu      sync.Mutex
	targets map[int]int64 // partition → high watermark when the tail started
	pos     map[int]*atomic.Int64
}

// NewTail prepares a tail of topic from time since. apply must be safe for concurrent calls.
func NewTail(c Config, topic string, since time.Time, apply func(kafka.Message), log *slog.Logger) *Tail {
	return &Tail{cfg: c.withDefaults(), topic: topic, since: since, apply: apply, log: log.With("tail", topic)}
}

// CatchUp reads every partition up to the end offsets it sees when called, then returns.
func (t *Tail) CatchUp(ctx context.Context) (int, error) {
	return t.run(ctx, true)
}

// Follow reads every partition and keeps reading until ctx is done.
func (t *Tail) Follow(ctx context.Context) error {
	_, err := t.run(ctx, false)
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// Lag returns how many messages are behind the end offsets seen at start, summed over partitions
// (-1 before the tail started).
func (t *Tail) Lag() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.targets == nil {
		return -1
	}
	var lag int64
	for p, end := range t.targets {
		if d := end - t.pos[p].Load(); d > 0 {
			lag += d
		}
	}
	return lag
}

func (t *Tail) run(ctx context.Context, stopAtEnd bool) (int, error) {
	parts, err := Partitions(ctx, t.cfg, t.topic)
	if err != nil {
		return 0, err
	}
	b := make(map[int]bounds, len(parts))
	for _, p := range parts {
		bb, err := t.bounds(ctx, p)
		if err != nil {
			return 0, err
		}
		b[p] = bb
	}
	t.mu.Lock()
	t.targets = map[int]int64{}
	t.pos = map[int]*atomic.Int64{}
	for p, bb := range b {
		t.targets[p] = bb.end
		t.pos[p] = new(atomic.Int64)
		t.pos[p].Store(bb.start)
	}
	t.mu.Unlock()

	var wg sync.WaitGroup
	var total atomic.Int64
	errs := make(chan error, len(b))
	for p, bb := range b {
		if stopAtEnd && bb.start >= bb.end {
			continue
		}
		wg.Add(1)
		go func(p int, bb bounds) {
			defer wg.Done()
			n, err := t.partition(ctx, p, bb.start, bb.end, stopAtEnd)
			total.Add(int64(n))
			if err != nil {
				errs <- err
			}
		}(p, bb)
	}
	wg.Wait()
	close(errs)
	return int(total.Load()), errors.Join(collect(errs)...)
}

type bounds struct{ start, end int64 }

// bounds returns where to start reading partition p (the first offset at or after since) and its
// end offset now. A partition whose leader is not known yet (a topic just created, a leader
// election) is asked again, with backoff, until ctx is done.
func (t *Tail) bounds(ctx context.Context, p int) (bounds, error) {
	delay := 100 * time.Millisecond
	for {
		bb, err := t.readBounds(ctx, p)
		var kerr kafka.Error
		if err == nil || !errors.As(err, &kerr) || !kerr.Temporary() {
			return bb, err
		}
		t.log.Debug("partition offsets not available yet; retrying", "partition", p, "err", err, "retry_in", delay)
		select {
		case <-ctx.Done():
			return bb, err
		case <-time.After(delay):
		}
		delay = min(2*delay, 2*time.Second)
	}
}

func (t *Tail) readBounds(ctx context.Context, p int) (bounds, error) {
	conn, err := t.cfg.dialer().DialLeader(ctx, "tcp", t.cfg.Brokers[0], t.topic, p)
	if err != nil {
		return bounds{}, fmt.Errorf("tail %s/%d: dial leader: %w", t.topic, p, err)
	}
	defer conn.Close()
	first, last, err := conn.ReadOffsets()
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

func collect(ch <-chan error) []error {
	var out []error
	for e := range ch {
		out = append(out, e)
	}
	return out
}

func (t *Tail) partition(ctx context.Context, p int, start, end int64, stopAtEnd bool) (int, error) {
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers: t.cfg.Brokers, Topic: t.topic, Partition: p, Dialer: t.cfg.dialer(),
		MinBytes: 1, MaxBytes: 16 << 20, MaxWait: 50 * time.Millisecond, QueueCapacity: 1000,
		ReadBackoffMin: 10 * time.Millisecond, ReadBackoffMax: 100 * time.Millisecond,
	})
	defer r.Close()
	if err := r.SetOffset(start); err != nil {
		return 0, fmt.Errorf("tail %s/%d: set offset %d: %w", t.topic, p, start, err)
	}
	pos := t.pos[p]
	n := 0
	for {
		if stopAtEnd && pos.Load() >= end {
			return n, nil
		}
		m, err := r.FetchMessage(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return n, nil
			}
			return n, fmt.Errorf("tail %s/%d: fetch: %w", t.topic, p, err)
		}
		t.apply(m)
		n++
		pos.Store(m.Offset + 1)
		if !stopAtEnd {
			// keep the target moving so Lag reports distance to the live end
			if hw := m.HighWaterMark; hw > 0 {
				t.mu.Lock()
				if hw > t.targets[p] {
					t.targets[p] = hw
				}
				t.mu.Unlock()
			}
		}
	}
}

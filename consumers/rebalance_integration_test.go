//go:build integration

package consumers_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/riskflow/riskflow/consumers"
)

// countingStage is an archiver's shape: Prepare keeps the batch, the flush "writes" it (counts
// every message written, by partition and offset). The first flush of a stage waits for hold to
// be closed, as a slow write does.
type countingStage struct {
	mu     *sync.Mutex    // guards writes and total, shared by every member
	writes map[string]int // "partition/offset" → times written (shared by every member)
	total  *int
	mine   int           // messages this member wrote
	hold   chan struct{} // nil: no wait
	held   chan struct{} // closed when the first flush is waiting
	once   sync.Once
	// later, when set, is waited for by every flush after the first: a write slower than the drain.
	later <-chan struct{}
	// wrote, when set, is closed at this member's first write.
	wrote     chan struct{}
	wroteOnce sync.Once
	flushes   int
}

func (s *countingStage) Prepare(_ context.Context, batch []kafka.Message) (consumers.Flush, error) {
	keys := make([]string, len(batch))
	for i, m := range batch {
		keys[i] = fmt.Sprintf("%d/%d", m.Partition, m.Offset)
	}
	return func(ctx context.Context) error {
		if s.hold != nil {
			first := false
			s.once.Do(func() { first = true; close(s.held) })
			if first {
				select {
				case <-s.hold:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
		}
		s.mu.Lock()
		s.flushes++
		later := s.later != nil && s.flushes > 1
		s.mu.Unlock()
		if later {
			select {
			case <-s.later:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if s.wrote != nil {
			s.wroteOnce.Do(func() { close(s.wrote) })
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, k := range keys {
			s.writes[k]++
			*s.total++
			s.mine++
		}
		return nil
	}, nil
}

// A member joining the group while another is writing a batch does not make that batch be written
// twice: the member losing partitions commits what it wrote before they move, and the new owner
// starts after it. (kafka-go's Reader rejoined at once and committed the batch only in the next
// generation, after the new owner had read the old offsets: two archivers starting together stored
// 4,300 records for 4,000.) Every message is written exactly once, and nothing is lost.
func TestRebalanceDoesNotRewriteWhatWasWritten(t *testing.T) {
	const n = 2000
	c, topic, group := filledTopic(t, "rebalance-", n)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // a bound on the test
	defer cancel()

	writes, total := map[string]int{}, 0
	var mu sync.Mutex
	member := func(hold chan struct{}) (*countingStage, func()) {
		st := &countingStage{mu: &mu, writes: writes, total: &total, hold: hold, held: make(chan struct{})}
		r := consumers.NewGroupReader(c, topic, group)
		l := consumers.NewStagedLoop(consumers.LoopConfig{Name: "archiver", MaxBatch: 100}, r, st, slog.New(slog.DiscardHandler), nil)
		lctx, lcancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- l.Run(lctx) }()
		return st, func() { lcancel(); <-done; r.Close() }
	}
	hold := make(chan struct{})
	first, stopFirst := member(hold)
	defer stopFirst()
	select { // the first member writes its first batch, slowly
	case <-first.held:
	case <-ctx.Done():
		t.Fatal("the first member wrote nothing")
	}
	second, stopSecond := member(nil)
	defer stopSecond()
	// The second member's join starts a rebalance while the first member's batch is being written;
	// the first notices it at its next heartbeat (every second), then its write completes.
	time.Sleep(3 * time.Second)
	close(hold)

	for {
		mu.Lock()
		done := len(writes) == n
		mu.Unlock()
		if done {
			break
		}
		select {
		case <-ctx.Done():
			mu.Lock()
			t.Fatalf("%d of %d messages written", len(writes), n)
		case <-time.After(100 * time.Millisecond):
		}
	}
	lag := waitLag(t, ctx, c, group, topic)
	mu.Lock()
	defer mu.Unlock()
	if total != n {
		twice := 0
		for _, k := range writes {
			if k > 1 {
				twice++
			}
		}
		t.Errorf("%d writes for %d messages (%d messages written more than once): the rebalance re-wrote what was written", total, n, twice)
	}
	if first.mine == 0 || second.mine == 0 {
		t.Errorf("the first member wrote %d messages, the second %d: both should have had partitions", first.mine, second.mine)
	}
	t.Logf("written by the first member %d, the second %d; lag after the work: %v", first.mine, second.mine, lag)
}

// waitLag waits until group has committed all of topic.
func waitLag(t *testing.T, ctx context.Context, c consumers.Config, group, topic string) map[int]int64 {
	t.Helper()
	for {
		lag, err := consumers.GroupLag(ctx, c, group, topic)
		left := int64(0)
		for _, l := range lag {
			left += l
		}
		if err == nil && left == 0 {
			return lag
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the group did not commit everything: lag %v, err %v", lag, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// A member whose partitions are revoked while it writes a batch, with the next batch prepared
// behind it, writes only the first: the one queued is handed back (GroupReader.Release) and read
// by the partitions' next owner, so the drain waits for one write, not two. Here every write after
// the first member's first one is slower than the drain — it waits until the second member has
// written — as an archiver's second 100,000-record INSERT is on a loaded ClickHouse. Before, the
// queued batch was written after the drain had given up and its partitions had moved: written
// twice (2,100 writes for 2,000 messages).
func TestRebalanceDoesNotWriteTheQueuedBatch(t *testing.T) {
	const n = 2000
	c, topic, group := filledTopic(t, "rebalance-q-", n)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // a bound on the test
	defer cancel()

	writes, total := map[string]int{}, 0
	var mu sync.Mutex
	member := func(st *countingStage) func() {
		st.mu, st.writes, st.total, st.held = &mu, writes, &total, make(chan struct{})
		r := consumers.NewGroupReader(c, topic, group)
		l := consumers.NewStagedLoop(consumers.LoopConfig{Name: "archiver", MaxBatch: 100}, r, st, slog.New(slog.DiscardHandler), nil)
		lctx, lcancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- l.Run(lctx) }()
		return func() { lcancel(); <-done; r.Close() }
	}
	hold, secondWrote := make(chan struct{}), make(chan struct{})
	first := &countingStage{hold: hold, later: secondWrote}
	stopFirst := member(first)
	defer stopFirst()
	select { // the first member writes its first batch, slowly, and prepares the next meanwhile
	case <-first.held:
	case <-ctx.Done():
		t.Fatal("the first member wrote nothing")
	}
	second := &countingStage{wrote: secondWrote}
	stopSecond := member(second)
	defer stopSecond()
	// The second member's join starts a rebalance while the first member's batch is being written;
	// the first notices it at its next heartbeat (every second), then its write completes.
	time.Sleep(3 * time.Second)
	close(hold)

	for {
		mu.Lock()
		done := len(writes) == n
		mu.Unlock()
		if done {
			break
		}
		select {
		case <-ctx.Done():
			mu.Lock()
			t.Fatalf("%d of %d messages written", len(writes), n)
		case <-time.After(100 * time.Millisecond):
		}
	}
	lag := waitLag(t, ctx, c, group, topic)
	mu.Lock()
	defer mu.Unlock()
	if total != n {
		twice := 0
		for _, k := range writes {
			if k > 1 {
				twice++
			}
		}
		t.Errorf("%d writes for %d messages (%d messages written more than once): the batch queued at the rebalance was written after its partitions moved", total, n, twice)
	}
	if second.mine == 0 {
		t.Errorf("the second member wrote nothing")
	}
	t.Logf("written by the first member %d, the second %d; lag after the work: %v", first.mine, second.mine, lag)
}

// filledTopic creates a 4-partition topic of n messages on the test broker (deleted at the end)
// and names a group for it, both with prefix and a random suffix; it skips the test without a
// broker.
func filledTopic(t *testing.T, prefix string, n int) (c consumers.Config, topic, group string) {
	t.Helper()
	brokers := os.Getenv("RISKFLOW_KAFKA_BROKERS")
	if brokers == "" {
		t.Skip("RISKFLOW_KAFKA_BROKERS is not set (make test starts Kafka and sets it)")
	}
	c = consumers.DefaultConfig()
	c.Brokers = strings.Split(brokers, ",")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	topic = consumers.OwnTopic(t, c, prefix)
	if err := consumers.EnsureTopics(ctx, c, []consumers.TopicSpec{{Name: topic, Partitions: 4}}, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	w := consumers.NewWriter(c, topic)
	defer w.Close()
	msgs := make([]kafka.Message, n)
	for i := range msgs {
		msgs[i] = kafka.Message{Key: []byte(fmt.Sprint(i)), Value: []byte(fmt.Sprint(i))}
	}
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	return c, topic, topic
}

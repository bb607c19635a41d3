package consumers_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/riskflow/riskflow/consumers"
)

// slowFetchBroker is a broker (kfake) holding topic with one partition of n messages that answers
// every fetch delay late: a broker that is busy (GC, disk), far away, or — the case that was seen —
// the dev broker under the race detector on a loaded machine, where building a fetch answer of a
// few thousand records took longer than the readers waited.
func slowFetchBroker(t *testing.T, topic string, n int, delay time.Duration) consumers.Config {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(0), kfake.SeedTopics(1, topic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	cfg := consumers.Config{Brokers: c.ListenAddrs()}
	w := consumers.NewWriter(cfg, topic)
	msgs := make([]kafka.Message, n)
	for i := range msgs {
		msgs[i] = kafka.Message{Key: []byte(fmt.Sprint(i)), Value: []byte(fmt.Sprint(i))}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	c.ControlKey(int16(kmsg.Fetch), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		time.Sleep(delay)
		return nil, nil, false // then answered as usual
	})
	return cfg
}

// fetchLate is how late slowFetchBroker answers in these tests: more than the readers' fetch wait
// (50 ms), far less than a request's time limit.
const fetchLate = 300 * time.Millisecond

// A tail reads from a broker that answers its fetches later than the fetch wait. Before, the
// readers gave up on every answer that came more than a quarter of the fetch wait (12.5 ms) after
// the wait — kafka-go uses the fetch wait as the connection's read deadline — reconnected, and
// asked again: the partition was never read. The demo's collector missed a quarter of the
// verdicts that way (one partition at offset 0 for a minute), and any broker more than 12.5 ms
// away would have done the same to every node's feature feed.
func TestTailReadsFromABrokerSlowerThanTheFetchWait(t *testing.T) {
	const n = 50
	cfg := slowFetchBroker(t, "slow", n, fetchLate)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var applied atomic.Int64
	tl := consumers.NewBatchTail(cfg, "slow", time.Time{}, func(ms []kafka.Message) { applied.Add(int64(len(ms))) },
		slog.New(slog.DiscardHandler))
	follow(t, ctx, tl)
	for applied.Load() < n {
		select {
		case <-ctx.Done():
			t.Fatalf("the tail applied %d of %d messages within a minute from a broker answering %s late", applied.Load(), n, fetchLate)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// The same for a consumer group's partition readers: the scorer and the archivers read through
// them.
func TestGroupReaderReadsFromABrokerSlowerThanTheFetchWait(t *testing.T) {
	const n = 50
	cfg := slowFetchBroker(t, "slow", n, fetchLate)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	r := consumers.NewGroupReader(cfg, "slow", "g")
	defer r.Close()
	for i := 0; i < n; i++ {
		if _, err := r.FetchMessage(ctx); err != nil {
			t.Fatalf("fetched %d of %d messages from a broker answering %s late: %v", i, n, fetchLate, err)
		}
	}
}

package consumers_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/riskflow/riskflow/consumers"
)

// fakeBroker starts an in-process broker (kfake) holding topic with one partition, closed when
// the test ends.
func fakeBroker(t *testing.T, topic string) consumers.Config {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(0), kfake.SeedTopics(1, topic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return consumers.Config{Brokers: c.ListenAddrs()}
}

// follow runs tl.Follow until the test ends.
func follow(t *testing.T, ctx context.Context, tl *consumers.Tail) {
	ctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- tl.Follow(ctx) }()
	t.Cleanup(func() { stop(); <-done })
}

// onePartition sends every message to partition p.
type onePartition int

func (p onePartition) Balance(kafka.Message, ...int) int { return int(p) }

// A partition added to the topic while a tail follows it is read too: its messages are applied,
// and Positions and Lag count it. (Every node's feature state is fed by such a tail; before, a
// topic grown from 4 to 6 partitions left a third of the events out of every node's state until
// the node restarted.)
func TestTailReadsPartitionAddedWhileFollowing(t *testing.T) {
	cfg := fakeBroker(t, "ev")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	var mu sync.Mutex
	applied := map[string]int{} // value → partition
	tl := consumers.NewBatchTail(cfg, "ev", time.Time{}, func(ms []kafka.Message) {
		mu.Lock()
		defer mu.Unlock()
		for _, m := range ms {
			applied[string(m.Value)] = m.Partition
		}
	}, slog.New(slog.DiscardHandler))
	follow(t, ctx, tl)
	seen := func(v string) bool {
		mu.Lock()
		defer mu.Unlock()
		_, ok := applied[v]
		return ok
	}
	waitFor := func(v string) {
		t.Helper()
		for !seen(v) {
			select {
			case <-ctx.Done():
				t.Fatalf("%q was never applied; applied: %v, positions %v", v, applied, tl.Positions())
			case <-time.After(10 * time.Millisecond):
			}
		}
	}

	w0 := &kafka.Writer{Addr: kafka.TCP(cfg.Brokers...), Topic: "ev", Balancer: onePartition(0), BatchTimeout: time.Millisecond}
	defer w0.Close()
	if err := w0.WriteMessages(ctx, kafka.Message{Value: []byte("before")}); err != nil {
		t.Fatal(err)
	}
	waitFor("before")

	client := &kafka.Client{Addr: kafka.TCP(cfg.Brokers...)}
	resp, err := client.CreatePartitions(ctx, &kafka.CreatePartitionsRequest{Topics: []kafka.TopicPartitionsConfig{{Name: "ev", Count: 2}}})
	if err != nil || resp.Errors["ev"] != nil {
		t.Fatalf("adding a partition: %v %v", err, resp)
	}
	w1 := &kafka.Writer{Addr: kafka.TCP(cfg.Brokers...), Topic: "ev", Balancer: onePartition(1), BatchTimeout: time.Millisecond}
	defer w1.Close()
	for { // the writer may not see the new partition at once
		err := w1.WriteMessages(ctx, kafka.Message{Value: []byte("after")})
		if err == nil {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal(err)
		case <-time.After(50 * time.Millisecond):
		}
	}
	waitFor("after")
	mu.Lock()
	p := applied["after"]
	mu.Unlock()
	if p != 1 {
		t.Fatalf("the message written to partition 1 came from partition %d", p)
	}
	if mk, ok := tl.Positions()[1]; !ok || mk.Next != 1 {
		t.Errorf("positions %v: want partition 1 at offset 1", tl.Positions())
	}
	if lag := tl.Lag(); lag != 0 {
		t.Errorf("lag %d after applying everything, want 0", lag)
	}
}

// A batch from a partition the tail has not listed yet (added to the topic, and handed to a
// consumer group's member first) is not through until the tail reads that partition: WaitThrough
// waits for it, and says so when it cannot. Before, the tail's known partitions were all past the
// batch's time, so a scorer scored the batch without the new partition's earlier attempts.
func TestWaitThroughWaitsForAPartitionTheTailDoesNotReadYet(t *testing.T) {
	cfg := fakeBroker(t, "ev")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	tl := consumers.NewBatchTail(cfg, "ev", time.Time{}, func([]kafka.Message) {}, slog.New(slog.DiscardHandler))
	follow(t, ctx, tl)

	w0 := &kafka.Writer{Addr: kafka.TCP(cfg.Brokers...), Topic: "ev", Balancer: onePartition(0), BatchTimeout: time.Millisecond}
	defer w0.Close()
	if err := w0.WriteMessages(ctx, kafka.Message{Value: []byte("before")}); err != nil {
		t.Fatal(err)
	}
	past := consumers.Point{Stamp: time.Now().Add(-time.Minute)} // every listed partition is past it
	if _, ok := tl.WaitThrough(ctx, past, 30*time.Second); !ok {
		t.Fatal("a point a minute ago: not through on the one partition")
	}
	past.Partitions = []int{0}
	if _, ok := tl.WaitThrough(ctx, past, 30*time.Second); !ok {
		t.Fatal("a batch of partition 0: not through")
	}
	past.Partitions = []int{0, 1}
	if waited, ok := tl.WaitThrough(ctx, past, 300*time.Millisecond); ok {
		t.Fatalf("a batch of partition 1, which the topic does not have: through after %s", waited)
	}

	client := &kafka.Client{Addr: kafka.TCP(cfg.Brokers...)}
	resp, err := client.CreatePartitions(ctx, &kafka.CreatePartitionsRequest{Topics: []kafka.TopicPartitionsConfig{{Name: "ev", Count: 2}}})
	if err != nil || resp.Errors["ev"] != nil {
		t.Fatalf("adding a partition: %v %v", err, resp)
	}
	if waited, ok := tl.WaitThrough(ctx, past, 30*time.Second); !ok {
		t.Fatalf("a batch of the added partition 1: not through after %s; positions %v", waited, tl.Positions())
	}
	if _, ok := tl.Positions()[1]; !ok {
		t.Fatalf("through, but the tail does not read partition 1: positions %v", tl.Positions())
	}
}

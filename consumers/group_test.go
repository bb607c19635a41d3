package consumers

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
)

// A member whose handed-out messages are not committed within the drain (its write is stuck: a
// ClickHouse outage) gives its partitions up anyway — the group does not wait for ever — and its
// late commit fails with ErrGenerationEnded instead of moving the new owner's offsets; the message
// is delivered again.
func TestGroupReaderGivesUpADrainThatDoesNotEnd(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(0), kfake.SeedTopics(2, "scores"))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	c := Config{Brokers: cluster.ListenAddrs(), DialTimeout: time.Second}
	w := NewWriter(c, "scores")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a bound on the test
	defer cancel()
	var msgs []kafka.Message
	for i := range 20 {
		msgs = append(msgs, kafka.Message{Key: []byte(fmt.Sprint(i)), Value: []byte(fmt.Sprint(i))})
	}
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	w.Close()

	r1 := NewGroupReader(c, "scores", "archivers")
	r1.drain = 300 * time.Millisecond
	defer r1.Close()
	stuck, err := r1.FetchMessage(ctx) // handed out, never durable in time
	if err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	seen := map[string]int{} // partition/offset → deliveries after the rebalance
	got := make(chan struct{}, 100)
	fetchAll := func(r *GroupReader) {
		for {
			m, err := r.FetchMessage(ctx)
			if err != nil {
				if ctx.Err() != nil || errors.Is(err, context.Canceled) {
					return
				}
				continue
			}
			mu.Lock()
			seen[fmt.Sprintf("%d/%d", m.Partition, m.Offset)]++
			mu.Unlock()
			got <- struct{}{}
			if err := r.CommitMessages(ctx, m); err != nil && !errors.Is(err, ErrGenerationEnded) {
				t.Errorf("commit: %v", err)
			}
		}
	}
	r2 := NewGroupReader(c, "scores", "archivers")
	r2.drain = 300 * time.Millisecond
	defer r2.Close()
	go fetchAll(r2)
	select { // the second member is assigned partitions: the first has given up its drain
	case <-got:
	case <-ctx.Done():
		t.Fatal("the second member never got a message")
	}
	if err := r1.CommitMessages(ctx, stuck); !errors.Is(err, ErrGenerationEnded) {
		t.Fatalf("late commit of a message of an ended generation: %v, want ErrGenerationEnded", err)
	}
	go fetchAll(r1)
	key := fmt.Sprintf("%d/%d", stuck.Partition, stuck.Offset)
	for {
		mu.Lock()
		n := seen[key]
		mu.Unlock()
		if n > 0 {
			break
		}
		select {
		case <-got:
		case <-ctx.Done():
			t.Fatalf("the message whose commit failed (%s) was not delivered again", key)
		}
	}
}

package consumers

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/riskflow/riskflow/internal/syncbuf"
	"github.com/riskflow/riskflow/internal/testaddr"
)

// A cluster whose first address in kafka.brokers is down (kafka-0 of three restarting, or an
// address no longer served) is used through the others: every dial of a partition's leader asked
// only the first, so a node started then waited 30 s to create its topics, then never read its
// feed or lists — unready for good (held-out run: kafka.brokers=127.0.0.1:DOWN,127.0.0.1:UP).
func TestTheFirstBrokerDownIsNotTheCluster(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(0), kfake.SeedTopics(2, "events"))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	c := Config{Brokers: append([]string{testaddr.Free(t)}, cluster.ListenAddrs()...)}.withDefaults()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second) // a bound on the test
	defer cancel()
	if !partitionServed(ctx, c, "events", 1) {
		t.Error("partitionServed: false")
	}
	if _, err := endOffset(ctx, c, "events", 1); err != nil {
		t.Errorf("endOffset: %v", err)
	}
	if _, _, _, err := deletedUnread(ctx, c, "events", 1, [][2]int64{{0, 1}}); err != nil {
		t.Errorf("deletedUnread: %v", err)
	}
	if _, _, err := messageTime(ctx, c, "events", 1, 0); err != nil {
		t.Errorf("messageTime: %v", err)
	}
	if err := EnsureTopics(ctx, c, []TopicSpec{{Name: "scores", Partitions: 2}}, slog.New(slog.DiscardHandler)); err != nil {
		t.Errorf("EnsureTopics: %v", err)
	}
	tail := NewTail(c, "events", time.Time{}, func(kafka.Message) {}, slog.New(slog.DiscardHandler))
	if _, err := tail.readBounds(ctx, 1); err != nil {
		t.Errorf("a tail's partition bounds: %v", err)
	}
}

// A topic made with fewer partitions than riskflow asks for (by hand, or by a broker's defaults)
// is left as it is, and said: a consumer group spreads its work over at most its partitions, so
// scorers past that count idled without a word.
func TestEnsureTopicsSaysATopicHasFewerPartitions(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(0), kfake.SeedTopics(1, "events"))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	c := Config{Brokers: cluster.ListenAddrs()}.withDefaults()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second) // a bound on the test
	defer cancel()
	var logs syncbuf.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	if err := EnsureTopics(ctx, c, []TopicSpec{{Name: "events", Partitions: 4}, {Name: "scores", Partitions: 4}}, log); err != nil {
		t.Fatal(err)
	}
	out := logs.String()
	if !strings.Contains(out, "topic has fewer partitions than riskflow makes") || !strings.Contains(out, "topic=events partitions=1 kafka.partitions=4") {
		t.Errorf("a topic of 1 partition where riskflow makes 4, unsaid:\n%s", out)
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "fewer partitions") && strings.Contains(line, "topic=scores") {
			t.Errorf("the topic riskflow created is said to have fewer: %s", line)
		}
	}
}

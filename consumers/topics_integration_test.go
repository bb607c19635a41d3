//go:build integration

package consumers_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/riskflow/riskflow/consumers"
)

// Topics EnsureTopics created answer at once: every partition's leader serves its offsets. KRaft
// names a leader in the metadata a moment before the partition takes requests, and the readers a
// node starts right after creating its topics logged "reading offsets of partition 0 failing …
// Not Leader For Partition" at every first start.
func TestEnsureTopicsReturnsOnceThePartitionsAnswer(t *testing.T) {
	brokers := os.Getenv("RISKFLOW_KAFKA_BROKERS")
	if brokers == "" {
		t.Skip("RISKFLOW_KAFKA_BROKERS is not set (make test starts Kafka and sets it)")
	}
	c := consumers.DefaultConfig()
	c.Brokers = strings.Split(brokers, ",")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a bound on the test
	defer cancel()
	for round := 0; round < 3; round++ {
		b := make([]byte, 4)
		rand.Read(b)
		topic := "ensure-topics-" + hex.EncodeToString(b)
		if err := consumers.EnsureTopics(ctx, c, []consumers.TopicSpec{{Name: topic, Partitions: 4}}, slog.New(slog.DiscardHandler)); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			cl := &kafka.Client{Addr: kafka.TCP(c.Brokers...)}
			_, _ = cl.DeleteTopics(context.Background(), &kafka.DeleteTopicsRequest{Topics: []string{topic}})
		})
		for p := 0; p < 4; p++ {
			conn, err := kafka.DialLeader(ctx, "tcp", c.Brokers[0], topic, p)
			if err != nil {
				t.Fatalf("%s/%d: dial leader: %v", topic, p, err)
			}
			_, _, err = conn.ReadOffsets()
			conn.Close()
			if err != nil {
				t.Errorf("%s/%d right after EnsureTopics: read offsets: %v", topic, p, err)
			}
		}
	}
}

//go:build integration

package consumers_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"os"
	"strconv"
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
	c := realBroker(t)
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

// An input topic bounds what a batch inflates to, not only its compressed bytes: a zstd batch of
// a few kilobytes holding 20 MB of JSON whitespace is refused as too large, where a topic under
// the default compression.type took it (and every node reading it inflated it in memory — a
// 300 MB one took a scorer to 2.9 GB). A producer that compresses ordinary events still may.
func TestInputTopicRefusesACompressionBomb(t *testing.T) {
	c := realBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a bound on the test
	defer cancel()
	b := make([]byte, 4)
	rand.Read(b)
	topic := "input-topic-" + hex.EncodeToString(b)
	if err := consumers.EnsureTopics(ctx, c, []consumers.TopicSpec{consumers.InputTopic(topic, 1)}, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cl := &kafka.Client{Addr: kafka.TCP(c.Brokers...)}
		_, _ = cl.DeleteTopics(context.Background(), &kafka.DeleteTopicsRequest{Topics: []string{topic}})
	})
	if ct, err := consumers.TopicSetting(ctx, c, topic, "compression.type"); err != nil || ct != consumers.InputTopicCompression {
		t.Errorf("compression.type of the created topic: %q, %v", ct, err)
	}
	w := &kafka.Writer{Addr: kafka.TCP(c.Brokers...), Topic: topic, Compression: kafka.Zstd, BatchBytes: 32 << 20,
		RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond}
	defer w.Close()
	// The writer's metadata may not list a topic created a moment ago yet.
	write := func(v []byte) error {
		for {
			err := w.WriteMessages(ctx, kafka.Message{Value: v})
			var we kafka.WriteErrors
			unknown := errors.Is(err, kafka.UnknownTopicOrPartition) || errors.As(err, &we) && len(we) == 1 && errors.Is(we[0], kafka.UnknownTopicOrPartition)
			if unknown && ctx.Err() == nil {
				time.Sleep(100 * time.Millisecond)
				continue
			}
			return err
		}
	}
	if err := write([]byte(`{"event_id":"e0"}`)); err != nil {
		t.Fatalf("an ordinary zstd batch: %v", err)
	}
	bomb := append(bytes.Repeat([]byte(" "), 20<<20), []byte(`{"event_id":"e1"}`)...)
	err := write(bomb)
	var we kafka.WriteErrors
	if !errors.As(err, &we) || len(we) != 1 || !errors.Is(we[0], kafka.MessageSizeTooLarge) {
		t.Errorf("a zstd batch inflating to 20 MB: %v, want it refused with %v", err, kafka.MessageSizeTooLarge)
	}
}

// A topic deleted while a node writes to it is created again by the node's writer: kafka-go's
// writer never asks the broker to create a topic, so without RestoringWriter every write failed
// until a restart, on any cluster (auto.create.topics.enable only acts on requests that ask).
func TestRestoringWriterCreatesADeletedTopicAgain(t *testing.T) {
	c := realBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // a bound on the test
	defer cancel()
	b := make([]byte, 4)
	rand.Read(b)
	spec := consumers.TopicSpec{Name: "restoring-writer-" + hex.EncodeToString(b), Partitions: 3}
	log := slog.New(slog.DiscardHandler)
	if err := consumers.EnsureTopics(ctx, c, []consumers.TopicSpec{spec}, log); err != nil {
		t.Fatal(err)
	}
	cl := &kafka.Client{Addr: kafka.TCP(c.Brokers...)}
	t.Cleanup(func() {
		_, _ = cl.DeleteTopics(context.Background(), &kafka.DeleteTopicsRequest{Topics: []string{spec.Name}})
	})
	w := consumers.NewRestoringWriter(consumers.NewWriter(c, spec.Name), c, spec, log)
	defer w.Close()
	msg := func(i int) kafka.Message { return kafka.Message{Key: []byte(strconv.Itoa(i)), Value: []byte("v")} }
	if err := w.WriteMessages(ctx, msg(0)); err != nil {
		t.Fatalf("write before the topic was deleted: %v", err)
	}
	if resp, err := cl.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: []string{spec.Name}}); err != nil || resp.Errors[spec.Name] != nil {
		t.Fatalf("delete topic: %v %v", err, resp)
	}
	var lastErr error
	for i := 1; ctx.Err() == nil; i++ {
		if lastErr = w.WriteMessages(ctx, msg(i)); lastErr == nil {
			break
		}
		time.Sleep(200 * time.Millisecond) // the caller's retry backoff
	}
	if lastErr != nil {
		t.Fatalf("writes never succeeded after the topic was deleted: %v", lastErr)
	}
	parts, err := consumers.Partitions(ctx, c, spec.Name)
	if err != nil || len(parts) != spec.Partitions {
		t.Fatalf("topic after the restore: partitions %v, %v; want %d", parts, err, spec.Partitions)
	}
}

// realBroker is the configuration of the broker make test started (RISKFLOW_KAFKA_BROKERS); the
// test is skipped without one.
func realBroker(t *testing.T) consumers.Config {
	t.Helper()
	brokers := os.Getenv("RISKFLOW_KAFKA_BROKERS")
	if brokers == "" {
		t.Skip("RISKFLOW_KAFKA_BROKERS is not set (make test starts Kafka and sets it)")
	}
	c := consumers.DefaultConfig()
	c.Brokers = strings.Split(brokers, ",")
	return c
}

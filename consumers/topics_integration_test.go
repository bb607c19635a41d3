//go:build integration

package consumers_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/riskflow/riskflow/consumers"
	"github.com/riskflow/riskflow/internal/syncbuf"
)

// Topics EnsureTopics created answer at once: every partition's leader serves its offsets. KRaft
// names a leader in the metadata a moment before the partition takes requests, and the readers a
// node starts right after creating its topics logged "reading offsets of partition 0 failing …
// Not Leader For Partition" at every first start.
func TestEnsureTopicsReturnsOnceThePartitionsAnswer(t *testing.T) {
	c := consumers.RealBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a bound on the test
	defer cancel()
	for round := 0; round < 3; round++ {
		topic := consumers.OwnTopic(t, c, "ensure-topics-")
		if err := consumers.EnsureTopics(ctx, c, []consumers.TopicSpec{{Name: topic, Partitions: 4}}, slog.New(slog.DiscardHandler)); err != nil {
			t.Fatal(err)
		}
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
	c := consumers.RealBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a bound on the test
	defer cancel()
	topic := consumers.OwnTopic(t, c, "input-topic-")
	if err := consumers.EnsureTopics(ctx, c, []consumers.TopicSpec{consumers.InputTopic(topic, 1)}, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
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
	c := consumers.RealBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // a bound on the test
	defer cancel()
	spec := consumers.TopicSpec{Name: consumers.OwnTopic(t, c, "restoring-writer-"), Partitions: 3}
	log := slog.New(slog.DiscardHandler)
	if err := consumers.EnsureTopics(ctx, c, []consumers.TopicSpec{spec}, log); err != nil {
		t.Fatal(err)
	}
	cl := &kafka.Client{Addr: kafka.TCP(c.Brokers...)}
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
		// A write taken before the deletion has stopped the topic's partitions is no restore:
		// only one after which the topic is listed again is.
		if lastErr = w.WriteMessages(ctx, msg(i)); lastErr == nil {
			if _, err := consumers.Partitions(ctx, c, spec.Name); err == nil {
				break
			}
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

// A deleted topic is created again with the partitions it had when the writer last wrote to it,
// not its spec's (kafka.partitions): partitions added since it was created were lost with it, and
// every node following the topic's partitions went stale until restarted (held-out run:
// verify.events created again with 4 partitions where it had 6). The log says which count and why.
func TestRestoringWriterCreatesADeletedTopicAgainWithThePartitionsItHad(t *testing.T) {
	c := consumers.RealBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // a bound on the test
	defer cancel()
	spec := consumers.ReadTopic(consumers.TopicSpec{Name: consumers.OwnTopic(t, c, "h3-restoring-had-"), Partitions: 2})
	logs := &syncbuf.Buffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	// Created with the spec's 2, then grown to 5 by an operator scaling out.
	if err := consumers.EnsureTopics(ctx, c, []consumers.TopicSpec{spec}, log); err != nil {
		t.Fatal(err)
	}
	cl := &kafka.Client{Addr: kafka.TCP(c.Brokers...)}
	if resp, err := cl.CreatePartitions(ctx, &kafka.CreatePartitionsRequest{Topics: []kafka.TopicPartitionsConfig{{Name: spec.Name, Count: 5}}}); err != nil || resp.Errors[spec.Name] != nil {
		t.Fatalf("add partitions: %v %v", err, resp)
	}
	// The broker answers before its metadata lists them (on a loaded machine, for a while): a
	// write before then is balanced over the 2 and teaches the writer 2.
	for parts, err := consumers.Partitions(ctx, c, spec.Name); len(parts) != 5; parts, err = consumers.Partitions(ctx, c, spec.Name) {
		if ctx.Err() != nil {
			t.Fatalf("partitions after adding them: %v, %v; want 5", parts, err)
		}
		time.Sleep(50 * time.Millisecond) // polling the broker's metadata
	}
	w := consumers.NewRestoringWriter(consumers.NewWriter(c, spec.Name), c, spec, log)
	defer w.Close()
	if err := w.WriteMessages(ctx, kafka.Message{Key: []byte("k"), Value: []byte("before")}); err != nil {
		t.Fatalf("write before the topic was deleted: %v", err)
	}
	if resp, err := cl.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: []string{spec.Name}}); err != nil || resp.Errors[spec.Name] != nil {
		t.Fatalf("delete topic: %v %v", err, resp)
	}
	waitDeleted(ctx, t, cl, spec.Name)
	for i := 0; ; i++ {
		err := w.WriteMessages(ctx, kafka.Message{Key: []byte(strconv.Itoa(i)), Value: []byte("after")})
		if err == nil {
			// The broker answers metadata from its new image before its partitions are stopped:
			// a write in between is taken by the dying partition (on a loaded machine, seen once).
			// Only a write to the topic as it exists again is the restore's.
			if _, perr := consumers.Partitions(ctx, c, spec.Name); perr == nil {
				break
			}
		}
		if ctx.Err() != nil {
			t.Fatalf("writes never succeeded after the topic was deleted: %v", err)
		}
		time.Sleep(100 * time.Millisecond) // the caller's retry backoff
	}
	if parts, err := consumers.Partitions(ctx, c, spec.Name); err != nil || len(parts) != 5 {
		t.Errorf("topic created again: partitions %v, %v; want the 5 it had", parts, err)
	}
	if ct, err := consumers.TopicSetting(ctx, c, spec.Name, "compression.type"); err != nil || ct != consumers.InputTopicCompression {
		t.Errorf("topic created again: compression.type %q, %v; want the spec's %q", ct, err, consumers.InputTopicCompression)
	}
	out := logs.String()
	if want := `msg="topic missing on write; creating it again" topic=` + spec.Name + ` partitions=5 partitions_as="as it had when last written to"`; !strings.Contains(out, want) {
		t.Errorf("log does not say %s:\n%s", want, out)
	}
	if strings.Contains(out, "not with riskflow's settings") {
		t.Errorf("the writer created it itself, yet says it differs:\n%s", out)
	}
}

// Two nodes' writers finding their topic deleted at once both create it again: the one that loses
// the race (TopicAlreadyExists) goes on writing as the other, every write acknowledged after the
// restore is in the topic, and the topic has the spec's partitions and settings, not the broker's
// defaults (num.partitions, compression.type=producer).
func TestRestoringWritersRacingToCreateTheTopicAgain(t *testing.T) {
	c := consumers.RealBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // a bound on the test
	defer cancel()
	spec := consumers.ReadTopic(consumers.TopicSpec{Name: consumers.OwnTopic(t, c, "h4-restoring-race-"), Partitions: 3})
	logs := &syncbuf.Buffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	if err := consumers.EnsureTopics(ctx, c, []consumers.TopicSpec{spec}, log); err != nil {
		t.Fatal(err)
	}
	cl := &kafka.Client{Addr: kafka.TCP(c.Brokers...)}
	ws := []*consumers.RestoringWriter{
		consumers.NewRestoringWriter(consumers.NewWriter(c, spec.Name), c, spec, log),
		consumers.NewRestoringWriter(consumers.NewWriter(c, spec.Name), c, spec, log),
	}
	for i, w := range ws {
		defer w.Close()
		if err := w.WriteMessages(ctx, kafka.Message{Key: []byte{byte(i)}, Value: []byte("before")}); err != nil {
			t.Fatalf("writer %d before the topic was deleted: %v", i, err)
		}
	}
	if resp, err := cl.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: []string{spec.Name}}); err != nil || resp.Errors[spec.Name] != nil {
		t.Fatalf("delete topic: %v %v", err, resp)
	}
	// Each writer writes 50 messages, each retried until acknowledged, as the scorer's flush does.
	const each = 50
	errs := make(chan error, len(ws))
	for i, w := range ws {
		go func() {
			for k := 0; k < each; k++ {
				m := kafka.Message{Key: []byte(strconv.Itoa(k)), Value: []byte(strconv.Itoa(i) + "-" + strconv.Itoa(k))}
				for {
					err := w.WriteMessages(ctx, m)
					if err == nil {
						break
					}
					if ctx.Err() != nil {
						errs <- fmt.Errorf("writer %d, message %d: %w", i, k, err)
						return
					}
					time.Sleep(100 * time.Millisecond) // the caller's retry backoff
				}
			}
			errs <- nil
		}()
	}
	for range ws {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	parts, err := consumers.Partitions(ctx, c, spec.Name)
	if err != nil || len(parts) != spec.Partitions {
		t.Fatalf("topic created again: partitions %v, %v; want %d", parts, err, spec.Partitions)
	}
	if ct, err := consumers.TopicSetting(ctx, c, spec.Name, "compression.type"); err != nil || ct != consumers.InputTopicCompression {
		t.Errorf("topic created again: compression.type %q, %v; want %q", ct, err, consumers.InputTopicCompression)
	}
	if out := logs.String(); strings.Contains(out, "not with riskflow's settings") {
		t.Errorf("the writers created it themselves, yet one says it differs:\n%s", out)
	}
	got := map[string]int{}
	for _, p := range parts {
		conn, err := kafka.DialLeader(ctx, "tcp", c.Brokers[0], spec.Name, p)
		if err != nil {
			t.Fatal(err)
		}
		last, err := conn.ReadLastOffset()
		if err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		for read := int64(0); read < last; {
			batch := conn.ReadBatch(1, 10<<20)
			for {
				m, err := batch.ReadMessage()
				if err != nil {
					break
				}
				got[string(m.Value)]++
				read = m.Offset + 1
			}
			if err := batch.Close(); err != nil {
				t.Fatalf("read partition %d: %v", p, err)
			}
		}
		conn.Close()
	}
	for i := range ws {
		for k := 0; k < each; k++ {
			if v := strconv.Itoa(i) + "-" + strconv.Itoa(k); got[v] < 1 {
				t.Errorf("message %s acknowledged but not in the topic created again", v)
			}
		}
	}
}

// An operator who deleted the topic and created it again with settings of their own (fewer
// partitions, another compression) is not fought: the writer writes to it as it is.
func TestRestoringWriterLeavesATopicTheOperatorCreatedAgain(t *testing.T) {
	c := consumers.RealBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // a bound on the test
	defer cancel()
	spec := consumers.ReadTopic(consumers.TopicSpec{Name: consumers.OwnTopic(t, c, "h4-restoring-operator-"), Partitions: 3})
	log := slog.New(slog.DiscardHandler)
	if err := consumers.EnsureTopics(ctx, c, []consumers.TopicSpec{spec}, log); err != nil {
		t.Fatal(err)
	}
	cl := &kafka.Client{Addr: kafka.TCP(c.Brokers...)}
	w := consumers.NewRestoringWriter(consumers.NewWriter(c, spec.Name), c, spec, log)
	defer w.Close()
	if err := w.WriteMessages(ctx, kafka.Message{Key: []byte("k"), Value: []byte("before")}); err != nil {
		t.Fatal(err)
	}
	if resp, err := cl.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: []string{spec.Name}}); err != nil || resp.Errors[spec.Name] != nil {
		t.Fatalf("delete topic: %v %v", err, resp)
	}
	mine := kafka.TopicConfig{Topic: spec.Name, NumPartitions: 2, ReplicationFactor: 1,
		ConfigEntries: []kafka.ConfigEntry{{ConfigName: "compression.type", ConfigValue: "producer"}, {ConfigName: "retention.ms", ConfigValue: "3600000"}}}
	for {
		resp, err := cl.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{mine}})
		if err == nil && resp.Errors[spec.Name] == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("create the topic as the operator: %v %v", err, resp)
		}
		time.Sleep(100 * time.Millisecond) // the deletion settling
	}
	for k := 0; k < 20; k++ {
		for {
			err := w.WriteMessages(ctx, kafka.Message{Key: []byte(strconv.Itoa(k)), Value: []byte("after")})
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("message %d to the operator's topic: %v", k, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	parts, err := consumers.Partitions(ctx, c, spec.Name)
	if err != nil || len(parts) != 2 {
		t.Errorf("the operator's topic after the writes: partitions %v, %v; want their 2", parts, err)
	}
	for name, want := range map[string]string{"compression.type": "producer", "retention.ms": "3600000"} {
		if v, err := consumers.TopicSetting(ctx, c, spec.Name, name); err != nil || v != want {
			t.Errorf("the operator's topic after the writes: %s %q, %v; want their %q", name, v, err, want)
		}
	}
}

// waitDeleted waits until the broker's metadata no longer lists topic: DeleteTopics answers before
// the broker applied it, and a write in between is taken by the old topic. The metadata request
// does not allow auto-creation.
func waitDeleted(ctx context.Context, t *testing.T, cl *kafka.Client, topic string) {
	t.Helper()
	for {
		md, err := cl.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
		if err == nil && len(md.Topics) == 1 && errors.Is(md.Topics[0].Error, kafka.UnknownTopicOrPartition) {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("%s still listed after its deletion: %v", topic, err)
		}
		time.Sleep(50 * time.Millisecond) // polling the broker's metadata
	}
}

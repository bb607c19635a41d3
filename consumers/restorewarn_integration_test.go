//go:build integration

package consumers

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/riskflow/riskflow/internal/syncbuf"
)

// A deleted topic that someone else created again before the writer could — the broker at a
// reader's metadata request (auto.create.topics.enable), with its defaults, or an operator — is
// written to as it is, and the writer says how it differs from riskflow's settings: it was
// silently left with compression.type=producer (and the broker's default partition count).
func TestRestoringWriterSaysTheTopicCameBackWithOtherSettings(t *testing.T) {
	c := realBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // a bound on the test
	defer cancel()
	spec := ReadTopic(TopicSpec{Name: testTopic(t, c, "h4-restoring-other-"), Partitions: 3})
	logs := &syncbuf.Buffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	if err := EnsureTopics(ctx, c, []TopicSpec{spec}, log); err != nil {
		t.Fatal(err)
	}
	cl := &kafka.Client{Addr: kafka.TCP(c.Brokers...)}
	w := NewRestoringWriter(NewWriter(c, spec.Name), c, spec, log)
	defer w.Close()
	if err := w.WriteMessages(ctx, kafka.Message{Value: []byte("before")}); err != nil {
		t.Fatal(err)
	}
	if resp, err := cl.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: []string{spec.Name}}); err != nil || resp.Errors[spec.Name] != nil {
		t.Fatalf("delete topic: %v %v", err, resp)
	}
	// Someone else creates it between the write that finds it missing and the writer's own try.
	w.ensure = func(ctx context.Context, _ []TopicSpec) error {
		theirs := kafka.TopicConfig{Topic: spec.Name, NumPartitions: 2, ReplicationFactor: 1,
			ConfigEntries: []kafka.ConfigEntry{{ConfigName: "compression.type", ConfigValue: "producer"}}}
		for {
			resp, err := cl.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{theirs}})
			if err == nil && resp.Errors[spec.Name] == nil {
				return nil
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			time.Sleep(100 * time.Millisecond) // the deletion settling
		}
	}
	for i := 0; ; i++ {
		err := w.WriteMessages(ctx, kafka.Message{Value: []byte("after-" + strconv.Itoa(i))})
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("writes never succeeded after the topic came back: %v", err)
		}
		time.Sleep(100 * time.Millisecond) // the caller's retry backoff
	}
	out := logs.String()
	for _, want := range []string{"not with riskflow's settings", "2 partitions (riskflow's: 3)", "compression.type=producer (riskflow's: uncompressed)"} {
		if !strings.Contains(out, want) {
			t.Errorf("log does not say %q:\n%s", want, out)
		}
	}
	if parts, err := Partitions(ctx, c, spec.Name); err != nil || len(parts) != 2 {
		t.Errorf("their topic after the writes: partitions %v, %v; want their 2 (left as it is)", parts, err)
	}
}

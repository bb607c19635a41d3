//go:build integration

package consumers_test

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/riskflow/riskflow/consumers"
	"github.com/riskflow/riskflow/internal/syncbuf"
)

// A topic deleted and created again under a consumer group whose committed offsets are past the
// new topic's end (risk.scores deleted while nodes run, created again by the scorers' writers):
// a reader that ran through the change reads the new topic from its start (and so does one
// started after it: Kafka drops a deleted topic's committed offsets). kafka-go's partition reader waited at the old offset without a word and read on
// from there once the new topic reached it: the archivers never stored the first scores of the
// new topic (held-out run: 6,030 scores written to the new risk.scores, none archived).
func TestGroupReaderReadsATopicCreatedAgainFromItsStart(t *testing.T) {
	c := consumers.RealBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // a bound on the test
	defer cancel()
	spec := consumers.TopicSpec{Name: consumers.OwnTopic(t, c, "h4-recreated-"), Partitions: 1}
	group := spec.Name
	logs := &syncbuf.Buffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	cl := &kafka.Client{Addr: kafka.TCP(c.Brokers...)}
	create := func() {
		t.Helper()
		for {
			err := consumers.EnsureTopics(ctx, c, []consumers.TopicSpec{spec}, log)
			if err == nil {
				return
			}
			if ctx.Err() != nil {
				t.Fatalf("create topic: %v", err)
			}
			time.Sleep(100 * time.Millisecond) // the deletion settling
		}
	}
	remove := func() {
		t.Helper()
		if resp, err := cl.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: []string{spec.Name}}); err != nil || resp.Errors[spec.Name] != nil {
			t.Fatalf("delete topic: %v %v", err, resp)
		}
	}
	write := func(prefix string, n int) {
		t.Helper()
		w := consumers.NewWriter(c, spec.Name)
		defer w.Close()
		for i := 0; i < n; i++ {
			for {
				err := w.WriteMessages(ctx, kafka.Message{Value: []byte(fmt.Sprintf("%s-%d", prefix, i))})
				if err == nil {
					break
				}
				if ctx.Err() != nil {
					t.Fatalf("write %s-%d: %v", prefix, i, err)
				}
				time.Sleep(100 * time.Millisecond) // the new partition's leader settling
			}
		}
	}
	// read fetches and commits until it has every value of prefix-0 … prefix-(n-1).
	read := func(r *consumers.GroupReader, prefix string, n int) {
		t.Helper()
		want := map[string]bool{}
		for i := 0; i < n; i++ {
			want[fmt.Sprintf("%s-%d", prefix, i)] = true
		}
		for len(want) > 0 {
			m, err := r.FetchMessage(ctx)
			if ctx.Err() != nil {
				t.Fatalf("%d messages of %q never read (%v); log:\n%s", len(want), prefix, want, logs.String())
			}
			if err != nil {
				continue // the topic away for a moment
			}
			delete(want, string(m.Value))
			_ = r.CommitMessages(ctx, m)
		}
	}

	create()
	write("old", 30)
	r := consumers.NewGroupReader(c, spec.Name, group, consumers.WithGroupLogger(log))
	read(r, "old", 30)
	remove()
	create()
	write("new", 5)
	read(r, "new", 5) // the reader that ran through it
	r.Close()

	remove()
	create()
	write("newer", 3)
	r = consumers.NewGroupReader(c, spec.Name, group, consumers.WithGroupLogger(log))
	defer r.Close()
	read(r, "newer", 3) // a reader started after it
}

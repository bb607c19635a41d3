package consumers_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/riskflow/riskflow/consumers"
)

// smallBroker is a Kafka-protocol broker (kfake) that refuses produce batches over limit bytes,
// like a real broker's message.max.bytes.
func smallBroker(t *testing.T, limit int) consumers.Config {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(0), kfake.SeedTopics(2, "t"),
		kfake.BrokerConfigs(map[string]string{"message.max.bytes": fmtInt(limit)}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return consumers.Config{Brokers: c.ListenAddrs(), MaxMessageBytes: limit}
}

func fmtInt(n int) string { return strconv.Itoa(n) }

func msgs(n, size int) []kafka.Message {
	out := make([]kafka.Message, n)
	for i := range out {
		out[i] = kafka.Message{Key: []byte(fmtInt(i)), Value: []byte(strings.Repeat("x", size))}
	}
	return out
}

// A batch of many records whose total is far over the broker's limit is written whole: the writer
// splits it into requests under the limit (it used to be one 16 MiB request, refused for ever).
func TestProduceSplitsBatchesUnderTheBrokerLimit(t *testing.T) {
	kc := smallBroker(t, 100_000)
	w := consumers.NewWriter(kc, "t")
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	batch := msgs(600, 1300) // ~800 KB: eight times the limit
	rejected, retry, err := consumers.Produce(ctx, w, batch, kc.BatchBytes())
	if err != nil || len(rejected) != 0 || len(retry) != 0 {
		t.Fatalf("Produce: rejected %d, retry %d, err %v", len(rejected), len(retry), err)
	}
	if got := countTopic(t, kc, "t"); got != len(batch) {
		t.Errorf("topic holds %d messages, want %d", got, len(batch))
	}
}

// A message over the limit is rejected with ErrTooLarge, and only that one: the others are written.
func TestProduceRejectsOnlyTheOversizeMessage(t *testing.T) {
	kc := smallBroker(t, 100_000)
	w := consumers.NewWriter(kc, "t")
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	batch := msgs(5, 100)
	batch[2].Value = []byte(strings.Repeat("y", 95_000)) // under the broker's limit, over 90% of it
	rejected, retry, err := consumers.Produce(ctx, w, batch, kc.BatchBytes())
	if err != nil || len(retry) != 0 {
		t.Fatalf("Produce: retry %v, err %v", retry, err)
	}
	if len(rejected) != 1 || rejected[0].Index != 2 || !errors.Is(rejected[0].Err, consumers.ErrTooLarge) {
		t.Fatalf("rejected %+v, want message 2 with ErrTooLarge", rejected)
	}
	if got := countTopic(t, kc, "t"); got != 4 {
		t.Errorf("topic holds %d messages, want the 4 others", got)
	}
}

// The broker refusing a batch (its limit lower than the writer was told) is not retried as is:
// each message is tried alone, and the ones that still fail are rejected.
func TestProduceRetriesRefusedBatchesMessageByMessage(t *testing.T) {
	kc := smallBroker(t, 20_000)
	kc.MaxMessageBytes = 1_000_000 // the writer believes the broker takes far more
	w := consumers.NewWriter(kc, "t")
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	batch := msgs(40, 1000) // 40 KB in one request: refused by the broker
	batch[7].Value = []byte(strings.Repeat("z", 30_000))
	rejected, retry, err := consumers.Produce(ctx, w, batch, kc.BatchBytes())
	if err != nil || len(retry) != 0 {
		t.Fatalf("Produce: retry %v, err %v", retry, err)
	}
	if len(rejected) != 1 || rejected[0].Index != 7 || !consumers.IsRejection(rejected[0].Err) {
		t.Fatalf("rejected %+v, want only message 7", rejected)
	}
	if got := countTopic(t, kc, "t"); got != 39 {
		t.Errorf("topic holds %d messages, want 39", got)
	}
}

// countingWriter counts the WriteMessages calls of the writer it wraps.
type countingWriter struct {
	consumers.MessageWriter
	calls int
}

func (w *countingWriter) WriteMessages(ctx context.Context, m ...kafka.Message) error {
	w.calls++
	return w.MessageWriter.WriteMessages(ctx, m...)
}

// A large batch the broker refuses as a whole (its limit lowered below what the writer was told,
// as when a topic's max.message.bytes is changed under a running scorer) is written in halves, in
// a few dozen writes: one write per message made such a flush of 2,000 score records take minutes.
func TestProduceSplitsARefusedBatchInHalves(t *testing.T) {
	kc := smallBroker(t, 20_000)
	kc.MaxMessageBytes = 1_000_000
	kw := consumers.NewWriter(kc, "t")
	defer kw.Close()
	w := &countingWriter{MessageWriter: kw}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	batch := msgs(2000, 1000)
	batch[1234].Value = []byte(strings.Repeat("z", 30_000)) // refused even alone
	rejected, retry, err := consumers.Produce(ctx, w, batch, kc.BatchBytes())
	if err != nil || len(retry) != 0 {
		t.Fatalf("Produce: retry %d, err %v", len(retry), err)
	}
	if len(rejected) != 1 || rejected[0].Index != 1234 {
		t.Fatalf("rejected %+v, want only message 1234", rejected)
	}
	if got := countTopic(t, kc, "t"); got != 1999 {
		t.Errorf("topic holds %d messages, want 1999", got)
	}
	if w.calls > 200 {
		t.Errorf("%d writes for a refused batch of %d messages", w.calls, len(batch))
	}
}

type flakyWriter struct {
	err   error
	calls int
}

func (w *flakyWriter) WriteMessages(ctx context.Context, m ...kafka.Message) error {
	w.calls++
	we := make(kafka.WriteErrors, len(m))
	for i := range we {
		if i%2 == 1 {
			we[i] = w.err
		}
	}
	return we
}

// Messages that failed for a passing reason come back in retry, with a short error; the rest are
// durable and must not be written again.
func TestProduceReturnsWhatToRetry(t *testing.T) {
	w := &flakyWriter{err: kafka.NotEnoughReplicas}
	rejected, retry, err := consumers.Produce(context.Background(), w, msgs(2000, 10), 0)
	if len(rejected) != 0 || len(retry) != 1000 || retry[0] != 1 || retry[999] != 1999 {
		t.Fatalf("rejected %d, retry %d (%v…)", len(rejected), len(retry), retry[:min(3, len(retry))])
	}
	if !errors.Is(err, kafka.NotEnoughReplicas) {
		t.Errorf("err %v does not wrap the broker's error", err)
	}
	if len(err.Error()) > 700 {
		t.Errorf("error text is %d bytes: %.200s…", len(err.Error()), err)
	}
	if w.calls != 1 {
		t.Errorf("%d calls: a passing error is the caller's to retry", w.calls)
	}
}

func TestSummarizeCountsEqualErrors(t *testing.T) {
	we := make(kafka.WriteErrors, 2000)
	for i := range we {
		we[i] = kafka.MessageSizeTooLarge
	}
	s := consumers.Summarize(we)
	if !strings.Contains(s.Error(), "2000 of 2000 messages failed") || !strings.Contains(s.Error(), "(×2000)") || len(s.Error()) > 600 {
		t.Errorf("summary %q", s)
	}
	var back kafka.WriteErrors
	if !errors.As(s, &back) || len(back) != 2000 {
		t.Error("the summary does not unwrap to the original errors")
	}
	long := errors.New(strings.Repeat("e", 100_000))
	if n := len(consumers.Summarize(long).Error()); n > consumers.MaxErrorText+40 {
		t.Errorf("a 100 KB error text became %d bytes", n)
	}
}

func countTopic(t *testing.T, kc consumers.Config, topic string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	parts, err := consumers.Partitions(ctx, kc, topic)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, p := range parts {
		conn, err := kafka.DialLeader(ctx, "tcp", kc.Brokers[0], topic, p)
		if err != nil {
			t.Fatal(err)
		}
		first, last, err := conn.ReadOffsets()
		conn.Close()
		if err != nil {
			t.Fatal(err)
		}
		n += int(last - first)
	}
	return n
}

// GroupLag counts what the group has not committed, per partition.
func TestGroupLag(t *testing.T) {
	kc := smallBroker(t, 1_000_000)
	w := consumers.NewWriter(kc, "t")
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	batch := msgs(10, 10)
	for i := range batch {
		batch[i].Partition = i % 2
	}
	w.Balancer = kafka.BalancerFunc(func(m kafka.Message, _ ...int) int { return m.Partition })
	if err := w.WriteMessages(ctx, batch...); err != nil {
		t.Fatal(err)
	}
	lag, err := consumers.GroupLag(ctx, kc, "g", "t")
	if err != nil || lag[0] != 5 || lag[1] != 5 {
		t.Fatalf("before any commit: %v %v, want 5 and 5", lag, err)
	}
	r := consumers.NewGroupReader(kc, "t", "g")
	defer r.Close()
	for i := 0; i < 3; i++ {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.CommitMessages(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	lag, err = consumers.GroupLag(ctx, kc, "g", "t")
	if err != nil || lag[0]+lag[1] != 7 {
		t.Fatalf("after commits: %v %v", lag, err)
	}
}

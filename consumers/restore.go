package consumers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
)

// RestoreEvery is how often a RestoringWriter tries to create its topic again while writes keep
// finding it missing.
const RestoreEvery = 10 * time.Second

// restoreWithin bounds one attempt to create the topic again (the write waits for it): EnsureTopics
// waits up to 30 s for the new partitions' leaders.
const restoreWithin = 40 * time.Second

// RestoringWriter is a writer to one topic that creates the topic again when writes find it
// missing: deleted while the node ran (an operator's mistake, a cleanup script). kafka-go's writer
// never asks the broker to create a topic (its metadata requests do not allow it), so whatever
// auto.create.topics.enable says, every write failed until the process was restarted (EnsureTopics
// runs at start) or another client happened to create it: the scorer stalled,
// and every node's dead letters and decisions were held or dropped. The failed write still returns
// its error: the caller's retry finds the topic.
type RestoringWriter struct {
	*kafka.Writer // Close, Stats, …

	spec    TopicSpec
	ensure  func(context.Context, []TopicSpec) error
	differs func(context.Context, TopicSpec) string // how the topic differs from spec ("" alike)
	log     *slog.Logger

	// had is how many partitions the topic had when a message was last balanced onto it (the
	// writer's metadata), 0 before the first.
	had atomic.Int64

	mu   sync.Mutex
	last time.Time // of the last attempt to create the topic
	now  func() time.Time
}

// NewRestoringWriter returns w, a writer to spec.Name on the cluster of c (NewWriter, with the
// caller's settings), that creates the topic (EnsureTopics) when a write finds it missing, at most
// once every RestoreEvery: with spec's settings, and as many partitions as it had when w last wrote
// to it (spec.Partitions if w never did). It wraps w's Balancer to learn that count.
//
// The partitions it had, not spec's: partitions added since it was created (more scorers,
// docs/SCALING.md) were lost with it — the consumer group's work then spread over fewer, the
// scorers past the count idle — and a feature feed following the topic said it was created again
// "with fewer partitions" (held-out run: verify.events created again with kafka.partitions' 4
// where it had 6). A node's feed still needs a restart after its topic is created again, whatever
// the count (Tail).
func NewRestoringWriter(w *kafka.Writer, c Config, spec TopicSpec, log *slog.Logger) *RestoringWriter {
	rw := &RestoringWriter{
		Writer:  w,
		spec:    spec,
		ensure:  func(ctx context.Context, t []TopicSpec) error { return EnsureTopics(ctx, c, t, log) },
		differs: func(ctx context.Context, t TopicSpec) string { return topicDiffers(ctx, c, t) },
		log:     log,
		now:     time.Now,
	}
	b := w.Balancer
	if b == nil {
		b = &kafka.RoundRobin{} // kafka-go's default
	}
	w.Balancer = countingBalancer{Balancer: b, n: &rw.had}
	return rw
}

// countingBalancer records how many partitions its writer's metadata lists for the topic each
// time it balances a message.
type countingBalancer struct {
	kafka.Balancer
	n *atomic.Int64
}

func (b countingBalancer) Balance(msg kafka.Message, partitions ...int) int {
	b.n.Store(int64(len(partitions)))
	return b.Balancer.Balance(msg, partitions...)
}

// WriteMessages writes msgs; when that fails because the topic does not exist, it creates the
// topic (at most once every RestoreEvery) before it returns the write's error.
func (w *RestoringWriter) WriteMessages(ctx context.Context, msgs ...kafka.Message) error {
	err := w.Writer.WriteMessages(ctx, msgs...)
	if err != nil && topicMissing(err) {
		w.restore(ctx)
	}
	return err
}

func (w *RestoringWriter) restore(ctx context.Context) {
	w.mu.Lock()
	now := w.now()
	due := w.last.IsZero() || now.Sub(w.last) >= RestoreEvery
	if due {
		w.last = now
	}
	w.mu.Unlock()
	if !due {
		return
	}
	spec, as := w.spec, "riskflow's spec (never written to it)"
	if n := int(w.had.Load()); n > 0 {
		spec.Partitions, as = n, "as it had when last written to"
	}
	w.log.Warn("topic missing on write; creating it again", "topic", spec.Name, "partitions", spec.Partitions, "partitions_as", as)
	ctx, cancel := context.WithTimeout(ctx, restoreWithin)
	defer cancel()
	if err := w.ensure(ctx, []TopicSpec{spec}); err != nil {
		w.log.Warn("creating missing topic failed; trying again on a later write", "topic", w.spec.Name, "err", Summarize(err))
		return
	}
	// Someone else may have created it first: an operator, with settings of their own, or the
	// broker itself (auto.create.topics.enable, Kafka's default), with its defaults, at the first
	// metadata request of a client reading it — kafka-go's readers ask in a way that lets it (held-out
	// run: risk.scores deleted under two scorers and an archiver came back with compression.type
	// producer, "Sent auto-creation request" in the broker's log). riskflow does not fight either;
	// it says so.
	if d := w.differs(ctx, spec); d != "" {
		w.log.Warn("the topic was created again, but not with riskflow's settings (by the broker's auto.create.topics.enable, or an operator): riskflow leaves it as it is; if that was not meant, set auto.create.topics.enable=false on the brokers and create the topic again (riskflow migrate, or any node's start)",
			"topic", w.spec.Name, "differs", d)
	}
}

// topicDiffers says how topic t on the cluster of c differs from its spec — fewer or more
// partitions, a setting of Configs with another value — or "" when it does not (or cannot be read).
func topicDiffers(ctx context.Context, c Config, t TopicSpec) string {
	var d []string
	if parts, err := Partitions(ctx, c, t.Name); err == nil && len(parts) != t.Partitions {
		d = append(d, fmt.Sprintf("%d partitions (riskflow's: %d)", len(parts), t.Partitions))
	}
	names := make([]string, 0, len(t.Configs))
	for k := range t.Configs {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if v, err := TopicSetting(ctx, c, t.Name, k); err == nil && v != t.Configs[k] {
			d = append(d, fmt.Sprintf("%s=%s (riskflow's: %s)", k, v, t.Configs[k]))
		}
	}
	return strings.Join(d, ", ")
}

// topicMissing reports whether a write failed because its topic does not exist: the whole call
// (the writer's metadata says so) or any of its messages (the topic was deleted after the
// writer's metadata was cached).
func topicMissing(err error) bool {
	if errors.Is(err, kafka.UnknownTopicOrPartition) {
		return true
	}
	var we kafka.WriteErrors
	if errors.As(err, &we) {
		for _, e := range we {
			if e != nil && errors.Is(e, kafka.UnknownTopicOrPartition) {
				return true
			}
		}
	}
	return false
}

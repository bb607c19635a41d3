package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/riskflow/riskflow/consumers"
	"github.com/riskflow/riskflow/pipeline"
	"github.com/riskflow/riskflow/schemas"
	"github.com/riskflow/riskflow/scoring"
)

// PipelineResult compares the scorer pipeline with a raw consumer on the same messages.
type PipelineResult struct {
	Events       int
	RawRate      float64 // messages/s: kafka-go group reader in the scorer's staged loop, fetch + commit per batch, no work
	DecodeRate   float64 // messages/s: the same, decoding every event (the floor of any JSON consumer)
	PipelineRate float64 // events/s: consume → decode → score → write risk.scores → commit
	Ratio        float64 // target ≥ 0.5
}

// Report renders the result.
func (r PipelineResult) Report(w io.Writer) {
	fmt.Fprintf(w, "Pipeline: %d events on real Kafka\n", r.Events)
	fmt.Fprintf(w, "    raw kafka-go consume          %9.0f msg/s\n", r.RawRate)
	fmt.Fprintf(w, "    consume + decode only         %9.0f msg/s   (%.2f of raw)\n", r.DecodeRate, r.DecodeRate/r.RawRate)
	fmt.Fprintf(w, "    scorer → risk.scores          %9.0f events/s\n", r.PipelineRate)
	fmt.Fprintf(w, "  ratio pipeline/raw %.2f (target ≥ 0.50); pipeline/decode-only %.2f\n", r.Ratio, r.PipelineRate/r.DecodeRate)
}

// FreshnessResult is produce → visible-in-state latency.
type FreshnessResult struct {
	Probes        int
	P50, P99, Max time.Duration
}

// Report renders the result.
func (r FreshnessResult) Report(w io.Writer) {
	fmt.Fprintf(w, "Freshness (produced → visible to /v1/risk/check's state), %d probes: p50 %s p99 %s max %s (target p99 ≤ 50ms)\n",
		r.Probes, r.P50.Round(time.Microsecond), r.P99.Round(time.Microsecond), r.Max.Round(time.Microsecond))
}

func runID() string {
	b := make([]byte, 4)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func benchEvent(i int, ts time.Time) []byte {
	ev := schemas.VerifyEvent{
		EventID: fmt.Sprintf("pb-%d", i), TS: ts, AppID: "bench",
		Flow: schemas.FlowOneClickLogin, Phone: phoneOf(i), IP: ipOf(i % 5000), Carrier: "CM",
		Platform: "android", Outcome: schemas.OutcomeSuccess,
	}
	b, _ := json.Marshal(&ev)
	return b
}

// RunPipeline produces n events to a fresh topic, then consumes them twice from the start: once raw,
// once through the scorer stage. newScorer builds a fresh scorer with the pack to use. The run's
// topics are deleted at the end unless keep.
func RunPipeline(ctx context.Context, kc consumers.Config, n int, newScorer func() (*scoring.Scorer, error), keep bool, log *slog.Logger) (PipelineResult, error) {
	res := PipelineResult{Events: n}
	id := runID()
	events, scores := "bench."+id+".events", "bench."+id+".scores"
	if err := consumers.EnsureTopics(ctx, kc, []consumers.TopicSpec{{Name: events, Partitions: 4}, {Name: scores, Partitions: 4}, {Name: "bench." + id + ".dlq", Partitions: 1}}, log); err != nil {
		return res, err
	}
	if !keep { // registered first, so run last: after the run's readers and writers are closed
		defer deleteTopics(context.WithoutCancel(ctx), kc, log, events, scores, "bench."+id+".dlq")
	}
	w := consumers.NewWriter(kc, events)
	now := time.Now().Add(-time.Hour)
	for i := 0; i < n; i += 5000 {
		msgs := make([]kafka.Message, 0, 5000)
		for k := i; k < min(i+5000, n); k++ {
			msgs = append(msgs, kafka.Message{Key: []byte(phoneOf(k)), Value: benchEvent(k, now.Add(time.Duration(k)*time.Millisecond))})
		}
		if err := w.WriteMessages(ctx, msgs...); err != nil {
			w.Close()
			return res, fmt.Errorf("produce: %w", err)
		}
	}
	w.Close()
	log.Info("produced", "events", n, "topic", events)

	// Raw and decode-only run through the same staged loop as the scorer, with stages that do
	// nothing but (decode-only) decode.
	rawTook, err := consumeStaged(ctx, kc, events, "bench-raw-"+id, n, &atomic.Int64{}, stageFunc(func([]kafka.Message) error { return nil }), log)
	if err != nil {
		return res, fmt.Errorf("raw consume: %w", err)
	}
	res.RawRate = float64(n) / rawTook.Seconds()

	decTook, err := consumeStaged(ctx, kc, events, "bench-decode-"+id, n, &atomic.Int64{}, stageFunc(func(b []kafka.Message) error {
		for i := range b {
			if _, err := schemas.DecodeEvent(b[i].Value); err != nil {
				return err
			}
		}
		return nil
	}), log)
	if err != nil {
		return res, fmt.Errorf("decode-only consume: %w", err)
	}
	res.DecodeRate = float64(n) / decTook.Seconds()

	s, err := newScorer()
	if err != nil {
		return res, err
	}
	sw := consumers.NewWriter(kc, scores)
	dlq := consumers.NewWriter(kc, "bench."+id+".dlq")
	defer sw.Close()
	defer dlq.Close()
	stage := &pipeline.ScoreStage{Scorer: s, Scores: sw, DLQ: dlq, Log: log}
	var scored atomic.Int64
	pipeTook, err := consumeStaged(ctx, kc, events, "bench-pipe-"+id, n, &scored, stage, log)
	if err != nil {
		return res, fmt.Errorf("pipeline consume: %w", err)
	}
	res.PipelineRate = float64(n) / pipeTook.Seconds()
	res.Ratio = res.PipelineRate / res.RawRate
	return res, nil
}

// batchSize is the consumer batch of every run (the scorer's default kafka.scorer_batch).
var batchSize = 2000

// stageFunc is a stage that does its work in Prepare and has nothing to flush.
type stageFunc func(batch []kafka.Message) error

func (f stageFunc) Prepare(_ context.Context, b []kafka.Message) (consumers.Flush, error) {
	if err := f(b); err != nil {
		return nil, err
	}
	return func(context.Context) error { return nil }, nil
}

// consumeStaged runs st over topic in a new consumer group, through a staged loop as the scorer
// runs, until done (the messages of the batches flushed) reaches n, and returns the time from the
// first message to the last.
func consumeStaged(ctx context.Context, kc consumers.Config, topic, group string, n int, done *atomic.Int64, st consumers.Stage, log *slog.Logger) (time.Duration, error) {
	r := consumers.NewGroupReader(kc, topic, group)
	defer r.Close()
	var first atomic.Int64
	loop := consumers.NewStagedLoop(consumers.LoopConfig{Name: group, MaxBatch: batchSize, MaxWait: 5 * time.Millisecond}, r,
		countingStage{st, &first, done}, log, nil)
	return runLoop(ctx, loop, n, done, &first)
}

// countingStage notes when the first batch arrived and counts the messages flushed.
type countingStage struct {
	consumers.Stage
	first, done *atomic.Int64
}

func (c countingStage) Prepare(ctx context.Context, b []kafka.Message) (consumers.Flush, error) {
	c.first.CompareAndSwap(0, time.Now().UnixNano())
	flush, err := c.Stage.Prepare(ctx, b)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context) error {
		if err := flush(ctx); err != nil {
			return err
		}
		c.done.Add(int64(len(b)))
		return nil
	}, nil
}

// runLoop runs loop until done reaches n and returns the time from the first message (first, in
// Unix nanoseconds) to the last.
func runLoop(ctx context.Context, loop *consumers.Loop, n int, done, first *atomic.Int64) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- loop.Run(ctx) }()
	for done.Load() < int64(n) {
		select {
		case err := <-errc:
			return 0, fmt.Errorf("loop ended early at %d of %d: %v", done.Load(), n, err)
		case <-ctx.Done():
			return 0, fmt.Errorf("timed out at %d of %d", done.Load(), n)
		case <-time.After(2 * time.Millisecond):
		}
	}
	took := time.Since(time.Unix(0, first.Load()))
	cancel()
	<-errc
	return took, nil
}

// RunFreshness follows a fresh topic into s's state (as an API node's replica does) and measures,
// for each of `probes` events, the time from handing it to the producer to its visibility in the state.
func RunFreshness(ctx context.Context, kc consumers.Config, s *scoring.Scorer, probes int, keep bool, log *slog.Logger) (FreshnessResult, error) {
	res := FreshnessResult{Probes: probes}
	id := runID()
	topic := "bench." + id + ".fresh"
	if err := consumers.EnsureTopics(ctx, kc, []consumers.TopicSpec{{Name: topic, Partitions: 4}}, log); err != nil {
		return res, err
	}
	if !keep {
		defer deleteTopics(context.WithoutCancel(ctx), kc, log, topic)
	}
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	feed := pipeline.NewFeed(kc, topic, time.Time{}, s, log)
	followed := make(chan error, 1)
	go func() { followed <- feed.Follow(fctx) }()
	for deadline := time.Now().Add(time.Minute); feed.Lag() < 0; { // wait until the replica has its partitions
		select {
		case err := <-followed:
			return res, fmt.Errorf("follow %s: %v", topic, err)
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return res, fmt.Errorf("follow %s: no partitions assigned within a minute", topic)
		}
	}
	time.Sleep(200 * time.Millisecond)
	w := consumers.NewWriter(kc, topic)
	defer w.Close()
	lats := make([]time.Duration, 0, probes)
	for i := 0; i < probes; i++ {
		v := benchEvent(1_000_000+i, time.Now()) // stamped now: the replica admits nothing from the future
		evID := fmt.Sprintf("pb-%d", 1_000_000+i)
		start := time.Now()
		if err := w.WriteMessages(ctx, kafka.Message{Key: []byte(evID), Value: v}); err != nil {
			return res, fmt.Errorf("produce probe: %w", err)
		}
		deadline := start.Add(5 * time.Second)
		for !s.Seen("bench", evID) {
			if time.Now().After(deadline) {
				return res, fmt.Errorf("probe %s not visible after 5 s", evID)
			}
			time.Sleep(100 * time.Microsecond)
		}
		lats = append(lats, time.Since(start))
		time.Sleep(5 * time.Millisecond)
	}
	slices.Sort(lats)
	res.P50 = lats[len(lats)/2]
	res.P99 = lats[int(0.99*float64(len(lats)-1))]
	res.Max = lats[len(lats)-1]
	return res, nil
}

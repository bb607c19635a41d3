package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/riskflow/riskflow/consumers"
	"github.com/riskflow/riskflow/pipeline"
	"github.com/riskflow/riskflow/schemas"
	"github.com/riskflow/riskflow/scoring/api"
)

// decisionDrain is how long a stopping API node keeps publishing the verdicts still queued.
const decisionDrain = 3 * time.Second

// startDecisionLog starts the decision log of an API node: every verdict served goes to
// kafka.decisions_topic through a bounded queue. stop waits until what is queued was published
// (at most decisionDrain) once ctx is done.
func (a *app) startDecisionLog(ctx context.Context, node string) (log *pipeline.DecisionLog, stop func()) {
	kc := a.decisionsKafka()
	w := newDecisionWriter(kc, a.cfg.Kafka.DecisionsTopic)
	var dw consumers.MessageWriter = w
	if len(a.cfg.Kafka.DecisionsBrokers) == 0 {
		dw = a.restoring(kc, w) // topics are created only on kafka.brokers, deleted ones too
	}
	dl := pipeline.NewDecisionLog(pipeline.DecisionLogConfig{
		Queue: a.cfg.API.DecisionQueue, Node: node, MaxMessageBytes: a.kc.BatchBytes(),
	}, dw, a.hasher, a.log.With("role", "api", "part", "decision log"))
	registerDecisionMetrics(a.reg, dl)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = dl.Run(ctx, decisionDrain)
		// What the drain could not publish is counted lost; a batch kafka-go still has in flight
		// to a hung broker is not waited for (its WriteTimeout).
		consumers.CloseWithin(consumers.StopCloseWait, w)
	}()
	a.log.Info("decision log on", "topic", a.cfg.Kafka.DecisionsTopic, "brokers", strings.Join(kc.Brokers, ","), "queue", a.cfg.API.DecisionQueue)
	return dl, func() { <-done }
}

// newDecisionWriter is the decision log's writer: one attempt per produce call. The decision log
// retries a failed call itself, with its own backoff, and counts each failure
// (riskflow_decision_publish_failures_total) and tells it in the log: with the writer's own five
// attempts, a broker refusing or resetting connections showed as one failure about every 3 s, the
// first one 3 s after it went away (33 s for a broker that stopped answering), while the verdicts
// were already piling up.
func newDecisionWriter(kc consumers.Config, topic string) *kafka.Writer {
	w := consumers.NewWriter(kc, topic)
	w.MaxAttempts = 1
	return w
}

// newEventsWriter is the API's writer of POST /v1/events to kafka.events_topic, and its close for
// the node's stop, bounded by consumers.StopCloseWait. kafka-go's Close waits for every batch in
// flight, five attempts of 10 s each against a broker that hangs: an API node told to stop 20 s
// into a frozen broker under load took 44 s to exit (past Kubernetes' 30 s grace period), all of it
// in this close, though every request those batches came from had been answered (202 only once
// Kafka acknowledged; the others 503, to send again).
func newEventsWriter(kc consumers.Config, topic string) (*kafka.Writer, func()) {
	w := consumers.NewWriter(kc, topic)
	return w, func() { consumers.CloseWithin(consumers.StopCloseWait, w) }
}

// decisionsKafka is the cluster of kafka.decisions_topic: kafka.decisions_brokers when set, which
// the API's decision log writes to and the decision archiver reads from, else kafka.brokers.
func (a *app) decisionsKafka() consumers.Config {
	kc := a.kc
	if len(a.cfg.Kafka.DecisionsBrokers) > 0 {
		kc.Brokers = a.cfg.Kafka.DecisionsBrokers
	}
	return kc
}

// registerDecisionMetrics exposes the decision log's counters: riskflow_decisions_total by result
// (recorded, published, dropped: queue full, rejected: refused by the broker, lost: still queued
// when the stop's drain ran out of time) and the queue's length.
func registerDecisionMetrics(reg prometheus.Registerer, dl *pipeline.DecisionLog) {
	for result, f := range map[string]func() uint64{
		"recorded": dl.Recorded, "published": dl.Published, "dropped": dl.Dropped, "rejected": dl.Rejected, "lost": dl.Lost,
	} {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "riskflow_decisions_total", Help: "Verdicts of /v1/risk/check by what the decision log did with them.",
			ConstLabels: prometheus.Labels{"result": result},
		}, func() float64 { return float64(f()) }))
	}
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "riskflow_decision_publish_failures_total", Help: "Failed produce calls of the decision log (each retried).",
	}, func() float64 { return float64(dl.Failures()) }))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "riskflow_decision_queue_length", Help: "Verdicts waiting for Kafka: queued, or in the batch being written or retried.",
	}, func() float64 { return float64(dl.Pending()) }))
}

// apiInvestigation is the admin routes' options: explain from the scorer, labels into ClickHouse
// (when configured). closeFn releases the ClickHouse connections.
func (a *app) apiInvestigation(ctx context.Context) (opts []api.Option, closeFn func()) {
	opts = []api.Option{api.WithAdmins(a.cfg.API.AdminKeys)}
	c := a.cfg.ClickHouse
	if c.Addr == "" {
		return append(opts, api.WithInvestigation(a.scorer, nil)), func() {}
	}
	st, err := openStore(ctx, c, a.log)
	if err != nil {
		a.log.Warn("labels through the API are off: clickhouse", "err", err)
		return append(opts, api.WithInvestigation(a.scorer, nil)), func() {}
	}
	sink := newMigratingSink(st, a.log)
	return append(opts, api.WithInvestigation(a.scorer, labelStore{sink})), func() { st.Close() }
}

// labelStore stores labels (api.Labeler), migrating the schema before the first write.
type labelStore struct{ m *migratingSink }

func (l labelStore) Label(ctx context.Context, labels []schemas.Label) error {
	if err := l.m.migrate(ctx); err != nil {
		return err
	}
	return l.m.written(l.m.store.WriteLabels(ctx, labels))
}

// UnknownTargets tells which labels' decisions or events are not stored (api's labelChecker).
func (l labelStore) UnknownTargets(ctx context.Context, labels []schemas.Label) ([]schemas.Label, error) {
	return l.m.store.UnknownTargets(ctx, labels)
}

// decisionStore stores decisions (pipeline.DecisionSink), migrating the schema before the first
// write (and again after a write that found a table missing); writes notes each write's outcome.
type decisionStore struct {
	m      *migratingSink
	writes *writeWatch
}

func (d decisionStore) WriteDecisions(ctx context.Context, ds []schemas.Decision) error {
	err := d.m.migrate(ctx)
	if err == nil {
		err = d.m.written(d.m.store.WriteDecisions(ctx, ds))
	}
	d.writes.noted(ctx, err)
	return err
}

// runDecisionArchiver consumes kafka.decisions_topic into risk_decisions, in the group
// kafka.decisions_group; each batch is committed once ClickHouse acknowledged it. readiness is the
// loop's readiness check, which runArchiver registered with its pings of that ClickHouse (the loop
// is unready with them while it has nothing to write): it is handed the loop here. archived is
// riskflow_decisions_archived_total, registered by runArchiver from the start; writes follows
// the loop's writes (runArchiver leaves the groups while they are refused).
func (a *app) runDecisionArchiver(ctx context.Context, sink *migratingSink, writes *writeWatch, readiness *laterLoop, archived prometheus.Counter) error {
	k, c := a.cfg.Kafka, a.cfg.ClickHouse
	// The decisions' own cluster: they were written there. Dead letters go where the others do.
	reader := a.groupReader(a.decisionsKafka(), k.DecisionsTopic, k.DecisionsGroup)
	dlq := a.restoring(a.kc, consumers.NewWriter(a.kc, k.DLQTopic))
	defer consumers.CloseWithin(consumers.StopCloseWait, reader, dlq) // a hung broker does not hold the stop
	stage := &pipeline.DecisionArchiveStage{Sink: decisionStore{sink, writes}, DLQ: dlq, Log: a.log.With("role", "archiver", "part", "decisions"),
		MaxMessageBytes: a.kc.BatchBytes(), Archived: func(n int) { archived.Add(float64(n)) }, DeadLettered: a.obs.DeadLettered}
	loop := consumers.NewLoop(consumers.LoopConfig{
		Name: "decisions", MaxBatch: min(c.BatchSize, 20_000), MaxWait: c.FlushInterval.D(),
		BackoffMin: 200 * time.Millisecond, BackoffMax: c.BreakerOpenFor.D(),
	}, reader, stage.Handle, a.log, a.obs)
	readiness.set(loop) // registered by runArchiver, with the store's pings (and its group lag)
	a.log.Info("decision archiver running", "topic", k.DecisionsTopic, "group", k.DecisionsGroup, "brokers", strings.Join(a.decisionsKafka().Brokers, ","))
	if err := loop.Run(ctx); err != nil {
		return fmt.Errorf("decision archiver: %w", err)
	}
	return nil
}

package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/riskflow/riskflow/consumers"
	"github.com/riskflow/riskflow/pipeline"
	"github.com/riskflow/riskflow/schemas"
)

// recordVerdict records the i-th verdict of a test in dl.
func recordVerdict(dl *pipeline.DecisionLog, i int) {
	dl.Record(schemas.CheckRequest{Phone: fmt.Sprintf("1381234%04d", i), IP: netip.MustParseAddr("47.92.10.20"), AppID: "app1"},
		schemas.RiskCheck{ID: fmt.Sprintf("n1-%016x", i), Tags: []string{}, RulesVersion: "v1"}, nil, time.Millisecond)
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
	}
}

// A broker that refuses every produce request (it closes the connection) once the topic's
// partitions are known: each refused request is a failure the decision log counts
// (riskflow_decision_publish_failures_total) and retries with its own backoff. The writer made
// five attempts of its own inside each produce call, so the metric rose by one for five refused
// requests: on a broker resetting connections the first failure showed 3 s after it went away,
// on one that stopped answering 33 s after.
func TestDecisionLogCountsEveryRefusedProduce(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(0), kfake.SeedTopics(2, "decisions"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	w := newDecisionWriter(consumers.Config{Brokers: c.ListenAddrs(), DialTimeout: time.Second}, "decisions")
	defer w.Close()
	dl := pipeline.NewDecisionLog(pipeline.DecisionLogConfig{Linger: time.Millisecond, RetryMin: time.Millisecond, RetryMax: 5 * time.Millisecond},
		w, schemas.NewPhoneHasher([]byte("k")), slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { dl.Run(ctx, 10*time.Millisecond); close(done) }()
	defer func() { cancel(); <-done }()

	recordVerdict(dl, 0)
	waitUntil(t, "the first verdict published", func() bool { return dl.Published() == 1 })

	var refused atomic.Int64
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		refused.Add(1)
		return nil, errors.New("refused"), true // closes the connection
	})
	recordVerdict(dl, 1)
	waitUntil(t, "five publish failures", func() bool { return dl.Failures() >= 5 })
	n, failures := refused.Load(), dl.Failures()
	// The request in flight may be refused before its failure is counted.
	if n > int64(failures)+1 {
		t.Errorf("%d produce requests refused, %d publish failures counted: want each refused request counted", n, failures)
	}
}

// riskflow_decision_queue_length counts every verdict held for Kafka — those queued and those in
// the batch being retried — so that the value scraped last before a stop bounds what the stop
// loses, as README says. It counted the queue only: 0 while a batch of up to 4,000 verdicts
// waited for a broker that was away, and a node stopped then lost them all.
func TestDecisionQueueLengthCountsTheBatchBeingRetried(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(0), kfake.SeedTopics(2, "decisions"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		return nil, errors.New("refused"), true
	})
	w := newDecisionWriter(consumers.Config{Brokers: c.ListenAddrs(), DialTimeout: time.Second}, "decisions")
	defer w.Close()
	dl := pipeline.NewDecisionLog(pipeline.DecisionLogConfig{Queue: 10, Batch: 4, Linger: time.Millisecond, RetryMin: time.Millisecond, RetryMax: 5 * time.Millisecond},
		w, schemas.NewPhoneHasher([]byte("k")), slog.New(slog.DiscardHandler))
	reg := prometheus.NewRegistry()
	registerDecisionMetrics(reg, dl)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { dl.Run(ctx, 10*time.Millisecond); close(done) }()
	for i := range 3 {
		recordVerdict(dl, i)
	}
	waitUntil(t, "a publish failure", func() bool { return dl.Failures() >= 1 })
	if q := gauge(t, reg, "riskflow_decision_queue_length"); q != 3 {
		t.Errorf("riskflow_decision_queue_length %v with 3 verdicts in the batch being retried; want 3", q)
	}
	for i := 3; i < 20; i++ {
		recordVerdict(dl, i)
	}
	held := gauge(t, reg, "riskflow_decision_queue_length")
	cancel()
	<-done
	// The batch of 3 being retried and the queue of 10 are held; the other 7 are dropped.
	if held != float64(dl.Lost()) || dl.Lost() != 13 || dl.Dropped() != 7 {
		t.Errorf("riskflow_decision_queue_length %v before the stop, %d verdicts lost at the stop, %d dropped; want 13 held and lost (the batch of 3 and the queue of 10), 7 dropped",
			held, dl.Lost(), dl.Dropped())
	}
}

func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			m := mf.GetMetric()[0]
			if g := m.GetGauge(); g != nil {
				return g.GetValue()
			}
			return m.GetCounter().GetValue()
		}
	}
	t.Fatalf("no %s", name)
	return 0
}

// An API node stopping while its broker hangs does not wait for the batches of POST /v1/events its
// events writer still has in flight: kafka-go's Close waits for them — five attempts of 10 s — and
// an API node stopped 20 s into a frozen broker under load took 44 s to exit.
func TestEventsWriterCloseDoesNotWaitForAHungBroker(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(0), kfake.SeedTopics(2, "events"))
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	var held atomic.Int64
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		held.Add(1)
		<-release // the broker hangs: no answer until the test ends
		return nil, errors.New("refused"), true
	})
	defer c.Close()
	defer close(release)
	w, closeW := newEventsWriter(consumers.Config{Brokers: c.ListenAddrs(), DialTimeout: time.Second}, "events")
	ctx, cancel := context.WithCancel(context.Background())
	go func() { _ = w.WriteMessages(ctx, kafka.Message{Value: []byte("{}")}) }()
	waitUntil(t, "the produce request held by the broker", func() bool { return held.Load() > 0 })
	cancel() // the request was answered 503 (the API's own wait); the batch stays in flight
	closed := make(chan struct{})
	go func() { closeW(); close(closed) }()
	waitUntil(t, "the events writer closed while the broker hangs", func() bool {
		select {
		case <-closed:
			return true
		default:
			return false
		}
	})
}

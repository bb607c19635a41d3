package pipeline

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/riskflow/riskflow/internal/syncbuf"
	"github.com/riskflow/riskflow/schemas"
)

var decHasher = schemas.NewPhoneHasher([]byte("decision test key"))

func verdictOf(i int) (schemas.CheckRequest, schemas.RiskCheck, []schemas.RuleHit) {
	req := schemas.CheckRequest{Phone: fmt.Sprintf("1381234%04d", i), IP: netip.MustParseAddr("47.92.10.20"), AppID: "app1", Flow: "one_click_login", DeviceID: "dev-1"}
	rc := schemas.RiskCheck{Score: 600, Tags: []string{"phones_per_ip"}, Detail: map[string]schemas.TagDetail{"phones_per_ip": {Score: 600, Reason: "26 phones"}},
		ID: fmt.Sprintf("node-1-%016x", i), RulesVersion: "v1"}
	hits := []schemas.RuleHit{{Rule: "phones_per_ip", Tag: "phones_per_ip", Score: 600, Mode: "enforce", Reason: "26 phones"},
		{Rule: "odd_hour", Tag: "odd_hour", Score: 300, Mode: "shadow", Reason: "03:00"}}
	return req, rc, hits
}

// Every verdict is published intact: batches of 7 (the first verdicts of a batch are encoded into
// the buffer the previous batch used) and messages checked field by field.
func TestDecisionLogPublishes(t *testing.T) {
	w := &fakeWriter{}
	d := NewDecisionLog(DecisionLogConfig{Node: "node-1", Batch: 7, Linger: time.Millisecond}, w, decHasher, quiet())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.Run(ctx, time.Second); close(done) }()
	for i := range 50 {
		req, rc, hits := verdictOf(i)
		d.Record(req, rc, hits, 250*time.Microsecond)
	}
	deadline := time.Now().Add(10 * time.Second)
	for d.Published() < 50 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	msgs := w.written()
	if len(msgs) != 50 || d.Published() != 50 || d.Dropped() != 0 {
		t.Fatalf("%d messages, published %d, dropped %d; want 50, 50, 0", len(msgs), d.Published(), d.Dropped())
	}
	if calls := w.callCount(); calls < 50/7+1 {
		t.Fatalf("%d produce calls; want batches of at most 7", calls)
	}
	for i, m := range msgs {
		if bytes.Contains(m.Value, []byte(fmt.Sprintf("1381234%04d", i))) {
			t.Fatalf("message %d holds the plaintext phone: %s", i, m.Value)
		}
		dec, err := schemas.DecodeDecision(m.Value)
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		req, rc, _ := verdictOf(i)
		if dec.DecisionID != rc.ID || dec.PhoneHash != decHasher.Hex(req.Phone) || string(m.Key) != dec.PhoneHash ||
			dec.PhoneMasked != schemas.MaskPhone(req.Phone) || dec.PhoneSegment != "1381234" || dec.Node != "node-1" ||
			dec.LatencyUS != 250 || len(dec.Hits) != 2 || dec.Hits[1].Mode != "shadow" || dec.Score != 600 || dec.IP != "47.92.10.20" {
			t.Fatalf("message %d decoded to %+v", i, dec)
		}
	}
}

// A writer that always fails (Kafka away): Record never blocks, the queue fills, the rest is
// dropped and counted, and the drops are logged once per DropLogEvery, not once per verdict.
func TestDecisionLogFailingWriterDropsAndCounts(t *testing.T) {
	w := &fakeWriter{err: errors.New("dial tcp 127.0.0.1:1: connection refused")}
	var logs syncbuf.Buffer
	d := NewDecisionLog(DecisionLogConfig{Queue: 10, Batch: 5, RetryMin: time.Millisecond, RetryMax: 2 * time.Millisecond, DropLogEvery: time.Hour},
		w, decHasher, slog.New(slog.NewTextHandler(&logs, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.Run(ctx, 10*time.Millisecond); close(done) }()
	const n = 1000
	for i := range n {
		req, rc, hits := verdictOf(i)
		d.Record(req, rc, hits, time.Microsecond) // returns at once, whatever Kafka does
	}
	// At most the queue and the batch in flight are held; everything else is dropped.
	if d.Dropped() < n-10-5 || d.Recorded() != n {
		t.Errorf("recorded %d, dropped %d; want %d recorded and at least %d dropped", d.Recorded(), d.Dropped(), n, n-15)
	}
	deadline := time.Now().Add(10 * time.Second)
	for d.Failures() < 3 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	running := logs.String()
	cancel()
	<-done
	if d.Published() != 0 || d.Failures() < 3 {
		t.Errorf("published %d, failures %d; want 0 and retries", d.Published(), d.Failures())
	}
	if c := strings.Count(running, "verdicts dropped"); c != 1 {
		t.Errorf("drops logged %d times during the outage, want once per interval:\n%s", c, running)
	}
	out := logs.String()
	if strings.Contains(out, "13812340") {
		t.Errorf("a log line shows a phone number:\n%s", out)
	}
}

// Verdicts still queued when the node stops and the drain's time runs out are lost: counted
// (Lost, riskflow_decisions_total{result="lost"}) and logged with the count, so that recorded =
// published + dropped + rejected + lost once the log stopped. They were only logged.
func TestDecisionLogCountsVerdictsLostAtTheStop(t *testing.T) {
	w := &fakeWriter{}
	var logs syncbuf.Buffer
	d := NewDecisionLog(DecisionLogConfig{Queue: 20, Batch: 5, Linger: time.Millisecond, RetryMin: time.Millisecond, RetryMax: 2 * time.Millisecond},
		w, decHasher, slog.New(slog.NewTextHandler(&logs, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.Run(ctx, 20*time.Millisecond); close(done) }()
	for i := range 10 {
		req, rc, hits := verdictOf(i)
		d.Record(req, rc, hits, time.Microsecond)
	}
	for deadline := time.Now().Add(10 * time.Second); d.Published() < 10 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	w.fail(errors.New("dial tcp 127.0.0.1:1: connection refused")) // Kafka away
	for i := 10; i < 100; i++ {
		req, rc, hits := verdictOf(i)
		d.Record(req, rc, hits, time.Microsecond)
	}
	cancel()
	<-done
	lost := d.Recorded() - d.Published() - d.Dropped() - d.Rejected()
	if d.Published() != 10 || d.Dropped() == 0 || lost == 0 || d.Lost() != lost || d.Queued() != 0 {
		t.Errorf("recorded %d, published %d, dropped %d, rejected %d, lost %d, queued %d; want 10 published, some dropped, the other %d lost and none queued",
			d.Recorded(), d.Published(), d.Dropped(), d.Rejected(), d.Lost(), d.Queued(), lost)
	}
	if want := fmt.Sprintf("lost=%d lost_total=%d recorded_total=100 published_total=10", lost, lost); !strings.Contains(logs.String(), want) {
		t.Errorf("no %q in the log:\n%s", want, logs.String())
	}
}

// A batch never holds more than the queue: with Kafka away and verdicts arriving while a batch
// lingers (and is taken into it every EncodeEvery), at most the queue and one batch of the
// queue's size are held; the rest is dropped.
func TestDecisionLogHoldsAtMostTwiceTheQueue(t *testing.T) {
	w := &fakeWriter{err: errors.New("broker away")}
	d := NewDecisionLog(DecisionLogConfig{Queue: 20, Linger: 20 * time.Millisecond, EncodeEvery: time.Millisecond,
		RetryMin: time.Hour, RetryMax: time.Hour}, w, decHasher, quiet())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.Run(ctx, time.Millisecond); close(done) }()
	const n = 300
	for i := range n {
		req, rc, hits := verdictOf(i)
		d.Record(req, rc, hits, time.Microsecond)
		if i%5 == 4 {
			time.Sleep(time.Millisecond) // spread over many EncodeEvery ticks
		}
	}
	if held := d.Recorded() - d.Dropped(); held > 2*20 {
		t.Errorf("recorded %d, dropped %d: %d held; want at most 40 (queue 20 and a batch of at most 20)", d.Recorded(), d.Dropped(), held)
	}
	cancel()
	<-done
}

// Kafka back after an outage: what was queued is published, nothing twice.
func TestDecisionLogRetriesUntilKafkaIsBack(t *testing.T) {
	w := &fakeWriter{err: errors.New("broker away")}
	d := NewDecisionLog(DecisionLogConfig{Queue: 100, RetryMin: time.Millisecond, RetryMax: time.Millisecond}, w, decHasher, quiet())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go d.Run(ctx, time.Second)
	for i := range 20 {
		req, rc, hits := verdictOf(i)
		d.Record(req, rc, hits, 0)
	}
	for d.Failures() < 2 {
		time.Sleep(time.Millisecond)
	}
	w.fail(nil)
	deadline := time.Now().Add(10 * time.Second)
	for d.Published() < 20 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	ids := map[string]bool{}
	for _, m := range w.written() {
		dec, _ := schemas.DecodeDecision(m.Value)
		ids[dec.DecisionID] = true
	}
	if d.Published() != 20 || len(ids) != 20 || len(w.written()) != 20 || d.Dropped() != 0 {
		t.Errorf("published %d, %d messages, %d ids, dropped %d; want 20 of each and none dropped", d.Published(), len(w.written()), len(ids), d.Dropped())
	}
}

// While Kafka does not take verdicts, Degraded says since when, how many were dropped since and
// why, with no phone number (the API's /readyz shows it); once Kafka takes them again, nothing.
func TestDecisionLogSaysWhileItCannotPublish(t *testing.T) {
	w := &fakeWriter{err: errors.New("broker 13812348000 away")}
	d := NewDecisionLog(DecisionLogConfig{Queue: 2, Batch: 1, RetryMin: time.Millisecond, RetryMax: time.Millisecond}, w, decHasher, quiet())
	if got := d.Degraded(); got != "" {
		t.Errorf("before any failure: %q", got)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go d.Run(ctx, time.Second)
	req, rc, hits := verdictOf(0)
	d.Record(req, rc, hits, 0)
	for d.Failures() < 2 {
		time.Sleep(time.Millisecond)
	}
	for i := range 10 { // the queue of 2 takes two, then drops
		req, rc, hits := verdictOf(i + 1)
		d.Record(req, rc, hits, 0)
	}
	got := d.Degraded()
	if !strings.HasPrefix(got, "decisions: not published to Kafka since ") || !strings.Contains(got, fmt.Sprintf(", %d verdicts dropped since: ", d.Dropped())) ||
		!strings.Contains(got, "away") || schemas.MaskPhones(got) != got || d.Dropped() == 0 {
		t.Errorf("while failing (%d dropped): %q", d.Dropped(), got)
	}
	w.fail(nil)
	deadline := time.Now().Add(10 * time.Second)
	for d.Degraded() != "" && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if got := d.Degraded(); got != "" {
		t.Errorf("once Kafka takes verdicts again: %q", got)
	}
}

type decisionSinkFunc func(ctx context.Context, ds []schemas.Decision) error

func (f decisionSinkFunc) WriteDecisions(ctx context.Context, ds []schemas.Decision) error {
	return f(ctx, ds)
}

func TestDecisionArchiveStage(t *testing.T) {
	var stored []schemas.Decision
	fail := errors.New("clickhouse away")
	sinkErr := fail
	sink := decisionSinkFunc(func(_ context.Context, ds []schemas.Decision) error {
		if sinkErr != nil {
			return sinkErr
		}
		stored = append(stored, ds...)
		return nil
	})
	dlq := &fakeWriter{}
	stage := &DecisionArchiveStage{Sink: sink, DLQ: dlq, Log: quiet()}
	var batch []kafka.Message
	for i := range 3 {
		req, rc, hits := verdictOf(i)
		dec := NewDecision(decHasher, "n", &req, &rc, hits, time.Now(), time.Millisecond)
		m, _ := (&DecisionLog{hasher: decHasher}).encode(nil, &verdict{req: req, rc: rc, hits: hits, at: time.Now()})
		if string(m.Key) != dec.PhoneHash {
			t.Fatal("key is not the phone hash")
		}
		batch = append(batch, m)
	}
	batch = append(batch, kafka.Message{Value: []byte(`{"decision_id":""}`)})
	if err := stage.Handle(context.Background(), batch); !errors.Is(err, fail) {
		t.Fatalf("sink failing: %v; want its error (the loop retries, nothing committed)", err)
	}
	if len(dlq.written()) != 0 {
		t.Error("dead letters written before the decisions were stored")
	}
	sinkErr = nil
	if err := stage.Handle(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	if len(stored) != 3 || len(dlq.written()) != 1 {
		t.Fatalf("stored %d, dead letters %d; want 3 and 1", len(stored), len(dlq.written()))
	}
	if h := dlq.written()[0].Headers; len(h) == 0 {
		t.Error("dead letter without the reason header")
	}
}

// BenchmarkDecisionRecord is the check path's share of the decision log: Record (a channel send).
// BenchmarkDecisionEncode is the background's share per verdict: hash, mask, encode (into the
// batch's reused buffer).
func BenchmarkDecisionRecord(b *testing.B) {
	d := NewDecisionLog(DecisionLogConfig{Queue: 1 << 20}, &fakeWriter{}, decHasher, quiet())
	req, rc, hits := verdictOf(1)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if i%(1<<20-1) == 0 {
			for len(d.q) > 0 {
				<-d.q
			}
		}
		d.Record(req, rc, hits, time.Millisecond)
	}
}

func BenchmarkDecisionEncode(b *testing.B) {
	d := NewDecisionLog(DecisionLogConfig{}, &fakeWriter{}, decHasher, quiet())
	req, rc, hits := verdictOf(1)
	v := verdict{req: req, rc: rc, hits: hits, at: time.Now(), latency: time.Millisecond}
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		_, buf = d.encode(buf[:0], &v) // as Run does: one buffer per batch, reused
	}
}

// While a batch lingers, the verdicts queued meanwhile are taken and encoded every EncodeEvery,
// not all at once when the linger ends; they are published once it ends (here: at stop).
func TestDecisionLogEncodesWhileLingering(t *testing.T) {
	w := &fakeWriter{}
	d := NewDecisionLog(DecisionLogConfig{Linger: time.Hour, EncodeEvery: time.Millisecond}, w, decHasher, quiet())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.Run(ctx, time.Second); close(done) }()
	for i := range 20 {
		req, rc, hits := verdictOf(i)
		d.Record(req, rc, hits, time.Millisecond)
	}
	deadline := time.Now().Add(10 * time.Second)
	for d.Queued() > 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if q, p := d.Queued(), d.Published(); q != 0 || p != 0 {
		t.Fatalf("queued %d, published %d during an hour's linger; want 0 and 0 (taken into the batch, not yet sent)", q, p)
	}
	cancel()
	<-done
	if n := len(w.written()); n != 20 || d.Published() != 20 {
		t.Fatalf("%d messages, published %d after stop; want 20", n, d.Published())
	}
}

// A decision that decodes but that the sink can never store (a phone hash of 64 characters that
// are not hex, a time ClickHouse cannot hold) is dead-lettered and the rest of the batch stored:
// retried as is, it held the decision archiver's partition for ever.
func TestDecisionArchiveStageDeadLettersUnstorableDecisions(t *testing.T) {
	var stored []string
	sink := decisionSinkFunc(func(_ context.Context, ds []schemas.Decision) error {
		for i, d := range ds {
			if strings.HasPrefix(d.DecisionID, "poison") {
				return rejected{i}
			}
		}
		for _, d := range ds {
			stored = append(stored, d.DecisionID)
		}
		return nil
	})
	dlq := &fakeWriter{}
	stage := &DecisionArchiveStage{Sink: sink, DLQ: dlq, Log: quiet()}
	var batch []kafka.Message
	for i := range 5 {
		req, rc, hits := verdictOf(i)
		if i == 1 || i == 3 {
			rc.ID = fmt.Sprintf("poison-%d", i)
		}
		m, _ := (&DecisionLog{hasher: decHasher}).encode(nil, &verdict{req: req, rc: rc, hits: hits, at: time.Now()})
		batch = append(batch, m)
	}
	if err := stage.Handle(context.Background(), batch); err != nil {
		t.Fatalf("a batch with unstorable decisions: %v; want them dead-lettered and the rest stored", err)
	}
	if want := []string{"node-1-0000000000000000", "node-1-0000000000000002", "node-1-0000000000000004"}; !slices.Equal(stored, want) {
		t.Errorf("stored %v, want %v", stored, want)
	}
	dead := dlq.written()
	if len(dead) != 2 {
		t.Fatalf("%d dead letters, want 2", len(dead))
	}
	for i, m := range dead {
		if d, err := schemas.DecodeDecision(m.Value); err != nil || d.DecisionID != fmt.Sprintf("poison-%d", 2*i+1) {
			t.Errorf("dead letter %d: %v %+v", i, err, d.DecisionID)
		}
	}
}

// Decisions that never reach risk_decisions are counted by reason once the dead-letter topic
// acknowledged them, as the score archiver's are (riskflow_dead_lettered_total): they were only
// logged, so an alert on dead letters never saw the decision log's.
func TestDecisionArchiveStageCountsDeadLetters(t *testing.T) {
	sink := decisionSinkFunc(func(_ context.Context, ds []schemas.Decision) error {
		for i, d := range ds {
			if strings.HasPrefix(d.DecisionID, "poison") {
				return rejected{i}
			}
		}
		return nil
	})
	dlq := &fakeWriter{err: errors.New("broker away")}
	counted := map[string]int{}
	stage := &DecisionArchiveStage{Sink: sink, DLQ: dlq, Log: quiet(), DeadLettered: func(reason string) { counted[reason]++ }}
	var batch []kafka.Message
	for i := range 4 {
		req, rc, hits := verdictOf(i)
		if i == 1 || i == 2 {
			rc.ID = fmt.Sprintf("poison-%d", i)
		}
		m, _ := (&DecisionLog{hasher: decHasher}).encode(nil, &verdict{req: req, rc: rc, hits: hits, at: time.Now()})
		batch = append(batch, m)
	}
	batch = append(batch, kafka.Message{Value: []byte("not a decision")})
	if err := stage.Handle(context.Background(), batch); err == nil {
		t.Fatal("dead-letter topic away: no error; want the batch retried")
	}
	if len(counted) != 0 {
		t.Errorf("counted %v before the dead-letter topic took them; want nothing yet", counted)
	}
	dlq.mu.Lock()
	dlq.err = nil
	dlq.mu.Unlock()
	if err := stage.Handle(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	if want := map[string]int{"decode_decision": 1, "unstorable_decision": 2}; !maps.Equal(counted, want) {
		t.Errorf("dead letters counted %v, want %v", counted, want)
	}
}

// Every dropped verdict is in the log: a burst of drops shorter than DropLogEvery was logged as its
// first drop only ("dropped=1") and the rest never, though the node went on to stop or to publish
// again. The lines' dropped counts add up to every verdict dropped.
func TestDecisionLogLogsEveryDrop(t *testing.T) {
	for _, back := range []bool{false, true} {
		w := &fakeWriter{err: errors.New("dial tcp 127.0.0.1:1: connection refused")}
		var logs syncbuf.Buffer
		d := NewDecisionLog(DecisionLogConfig{Queue: 10, Batch: 5, RetryMin: time.Millisecond, RetryMax: 2 * time.Millisecond, DropLogEvery: time.Hour},
			w, decHasher, slog.New(slog.NewTextHandler(&logs, nil)))
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { d.Run(ctx, 10*time.Millisecond); close(done) }()
		for i := range 500 {
			req, rc, hits := verdictOf(i)
			d.Record(req, rc, hits, time.Microsecond)
		}
		deadline := time.Now().Add(10 * time.Second)
		for d.Failures() < 2 && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		if back { // Kafka is back: the outage's drops are told when publishing resumes
			w.fail(nil)
			for d.Queued() > 0 && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
			time.Sleep(20 * time.Millisecond)
		}
		cancel()
		<-done
		total := 0
		for _, m := range regexp.MustCompile(` dropped=(\d+)`).FindAllStringSubmatch(logs.String(), -1) {
			n, _ := strconv.Atoi(m[1])
			total += n
		}
		if d.Dropped() < 400 || uint64(total) != d.Dropped() {
			t.Errorf("Kafka back %v: %d verdicts dropped, the log tells of %d:\n%s", back, d.Dropped(), total, logs.String())
		}
	}
}

// Drops while Kafka is fine (the queue full for a moment) are told within DropLogEvery or so,
// without waiting for a next drop or for the stop: the last drops of a burst waited for either,
// so that a node's log could tell of fewer drops than its metric for as long as it ran.
func TestDecisionLogTellsTheLastDropsOfABurst(t *testing.T) {
	w := &fakeWriter{}
	var logs syncbuf.Buffer
	d := NewDecisionLog(DecisionLogConfig{Queue: 10, Batch: 5, DropLogEvery: 20 * time.Millisecond},
		w, decHasher, slog.New(slog.NewTextHandler(&logs, nil)))
	for i := range 500 { // before Run: all but the queue's 10 are dropped, within one DropLogEvery
		req, rc, hits := verdictOf(i)
		d.Record(req, rc, hits, time.Microsecond)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go d.Run(ctx, 10*time.Millisecond)
	told := func() uint64 {
		total := 0
		for _, m := range regexp.MustCompile(` dropped=(\d+)`).FindAllStringSubmatch(logs.String(), -1) {
			n, _ := strconv.Atoi(m[1])
			total += n
		}
		return uint64(total)
	}
	deadline := time.Now().Add(10 * time.Second) // a guard, not a measurement
	for told() != d.Dropped() && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if d.Dropped() != 490 || told() != d.Dropped() {
		t.Errorf("%d verdicts dropped, the log tells of %d while the node runs:\n%s", d.Dropped(), told(), logs.String())
	}
}

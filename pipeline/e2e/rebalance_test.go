//go:build integration

package e2e

import (
	"context"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/riskflow/riskflow/consumers"
	"github.com/riskflow/riskflow/internal/testaddr"
	"github.com/riskflow/riskflow/pipeline"
)

// waitGroupDone waits until group has committed every message of topic (want in all).
func waitGroupDone(t *testing.T, group, topic string, want int64, within time.Duration) {
	t.Helper()
	kc := consumers.Config{Brokers: []string{kafkaAddr}}
	deadline := time.Now().Add(within)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		lag, err := consumers.GroupLag(ctx, kc, group, topic)
		cancel()
		var left int64
		for _, l := range lag {
			left += l
		}
		if err == nil && len(lag) > 0 && left == 0 && topicEnd(t, topic) == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("group %s has not committed all %d messages of %s within %s: lag %v, err %v", group, want, topic, within, lag, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Two archivers started together over a backlog write every record once: the first to join takes
// every partition and starts writing, the second's join moves half of them, and what the first
// had already stored is committed before the partitions move instead of being stored again by
// their new owner. (Before, the first archiver's commit came after the new owner had read the old
// offsets: riskflow_archived_total summed to 5,750–6,058 for 4,000 records.) The writes are
// idempotent, so the tables hold one row per event either way; the count of writes is the test.
func TestArchiversStartingTogetherWriteEachRecordOnce(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	const n = 4000
	now := time.Now().Add(-time.Hour)
	vs := make([][]byte, n)
	for i := range vs {
		vs[i] = event(i, now.Add(time.Duration(i)*time.Millisecond))
	}
	e.produce(ctx, e.writer(), vs)
	scorer := e.start("scorer")
	waitGroupDone(t, "it-scorer-"+e.id, e.events, n, 2*time.Minute)
	scorer.stop(syscall.SIGTERM)
	if got := topicEnd(t, e.scores); got != n {
		t.Fatalf("risk.scores holds %d records for %d events", got, n)
	}

	// Small batches, so that the first archiver is mid-stream when the second joins.
	small := []string{"--set", "clickhouse.batch_size=200", "--set", "clickhouse.flush_interval=20ms"}
	var archivers []archiverProc
	for range 2 {
		ops := testaddr.Free(t)
		archivers = append(archivers, archiverProc{p: e.start("archiver", append(small, "--set", "ops.listen="+ops)...), ops: ops})
	}
	waitGroupDone(t, "it-archiver-"+e.id, e.scores, n, 2*time.Minute)
	if got := e.count(ctx, exactlyOnceQuery); got != n {
		t.Fatalf("risk_scores FINAL: %d rows, want %d", got, n)
	}
	var sum float64
	var each []float64
	for _, a := range archivers {
		v := archivedBy(t, a)
		each = append(each, v)
		sum += v
	}
	t.Logf("riskflow_archived_total of the two archivers: %v", each)
	if sum != n {
		t.Errorf("the two archivers stored %v records for %d (each: %v): a rebalance re-wrote what was already stored", sum, n, each)
	}
}

// Two scorers started together over a backlog produce one score record per event: what the first
// scored before the second joined is committed before its partitions move.
func TestScorersStartingTogetherScoreEachEventOnce(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	const n = 4000
	now := time.Now().Add(-time.Hour)
	vs := make([][]byte, n)
	for i := range vs {
		vs[i] = event(i, now.Add(time.Duration(i)*time.Millisecond))
	}
	e.produce(ctx, e.writer(), vs)
	small := []string{"--set", "kafka.scorer_batch=100"}
	for range 2 {
		e.start("scorer", append(small, "--set", "ops.listen="+testaddr.Free(t))...)
	}
	waitGroupDone(t, "it-scorer-"+e.id, e.events, n, 2*time.Minute)
	if got := topicEnd(t, e.scores); got != n {
		t.Errorf("risk.scores holds %d records for %d events: a rebalance scored a batch twice", got, n)
	}
}

// The group rebalances while ClickHouse is away and the archivers' batches cannot be written (one
// of two archivers leaves): the one that stays gives up waiting for its write (the drain is
// bounded, the group does not wait for ever), partitions move uncommitted, and once ClickHouse is
// back every record is stored — nothing is lost and nothing stalls. (An archiver started while
// ClickHouse is away does not join the group until it has reached ClickHouse:
// TestArchiverThatCannotReachClickHouseTakesNoPartitions; so both join before the outage.) Needs
// a ClickHouse the test may stop (deploy/local with its own RISKFLOW_LOCAL_DIR and ports; see
// clickhouseCtl).
func TestArchiverJoiningDuringClickHouseOutageLosesNothing(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	const n = 4000
	small := []string{"--set", "clickhouse.batch_size=200", "--set", "clickhouse.flush_interval=20ms"}
	first, second := archiverProc{ops: testaddr.Free(t)}, archiverProc{ops: testaddr.Free(t)}
	first.p = e.start("archiver", append(small, "--set", "ops.listen="+first.ops)...)
	second.p = e.start("archiver", append(small, "--set", "ops.listen="+second.ops)...)
	for _, a := range []archiverProc{first, second} {
		if ok, code, body := waitReadyz(a.ops, time.Minute, func(code int, _ string) bool { return code == http.StatusOK }); !ok {
			t.Fatalf("archiver before the outage: /readyz %d %s", code, body)
		}
	}
	now := time.Now().Add(-time.Hour)
	vs := make([][]byte, n)
	for i := range vs {
		vs[i] = event(i, now.Add(time.Duration(i)*time.Millisecond))
	}
	e.produce(ctx, e.writer(), vs)
	scorer := e.start("scorer")
	if got := e.waitCount(ctx, exactlyOnceQuery, 200, time.Minute); got < 200 {
		t.Fatalf("only %d rows stored before the outage", got)
	}
	clickhouseCtl(t, "stop")
	stopped := true
	defer func() {
		if stopped {
			clickhouseCtl(t, "start")
		}
	}()
	outageEnd := time.Now().Add(20 * time.Second)
	second.p.stop(syscall.SIGTERM) // the rebalance happens while no batch can be written
	time.Sleep(time.Until(outageEnd))
	clickhouseCtl(t, "start")
	stopped = false

	waitGroupDone(t, "it-scorer-"+e.id, e.events, n, 2*time.Minute)
	scorer.stop(syscall.SIGTERM)
	waitGroupDone(t, "it-archiver-"+e.id, e.scores, n, 3*time.Minute)
	if got := e.count(ctx, exactlyOnceQuery); got != n {
		t.Errorf("risk_scores FINAL: %d rows, want %d", got, n)
	}
	if got := e.count(ctx, eventsQuery); got != n {
		t.Errorf("verify_events FINAL: %d rows, want %d", got, n)
	}
	if got := topicEnd(t, e.dlq); got != 0 {
		t.Errorf("%d dead letters from valid records", got)
	}
	t.Logf("riskflow_archived_total: first %v, second %v", archivedBy(t, first), archivedBy(t, second))
}

// Poison records in risk.scores — bytes that are no JSON, an empty value, an object without the
// fields a record needs — go to the dead-letter topic with their original bytes and the error,
// while two archivers start together over the backlog: every valid record is stored, each
// written once, and the group commits past the poison (nothing stalls).
func TestArchiversDeadLetterPoisonRecords(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	const n = 2000
	now := time.Now().Add(-time.Hour)
	vs := make([][]byte, n)
	for i := range vs {
		vs[i] = event(i, now.Add(time.Duration(i)*time.Millisecond))
	}
	e.produce(ctx, e.writer(), vs[:n/2])
	scorer := e.start("scorer")
	waitGroupDone(t, "it-scorer-"+e.id, e.events, n/2, 2*time.Minute)
	poison := [][]byte{[]byte("not json at all"), {}, []byte(`{"event_id":"p-1"}`)}
	sw := consumers.NewWriter(consumers.Config{Brokers: []string{kafkaAddr}}, e.scores)
	defer sw.Close()
	for i, p := range poison {
		if err := sw.WriteMessages(ctx, kafka.Message{Key: []byte{byte('a' + i)}, Value: p}); err != nil {
			t.Fatal(err)
		}
	}
	e.produce(ctx, e.writer(), vs[n/2:])
	waitGroupDone(t, "it-scorer-"+e.id, e.events, n, 2*time.Minute)
	scorer.stop(syscall.SIGTERM)

	small := []string{"--set", "clickhouse.batch_size=200", "--set", "clickhouse.flush_interval=20ms"}
	var archivers []archiverProc
	for range 2 {
		ops := testaddr.Free(t)
		archivers = append(archivers, archiverProc{p: e.start("archiver", append(small, "--set", "ops.listen="+ops)...), ops: ops})
	}
	waitGroupDone(t, "it-archiver-"+e.id, e.scores, n+int64(len(poison)), 2*time.Minute)
	if got := e.count(ctx, exactlyOnceQuery); got != n {
		t.Errorf("risk_scores FINAL: %d rows, want %d", got, n)
	}
	dead := readAll(t, e.dlq, len(poison))
	if len(dead) != len(poison) {
		t.Fatalf("%d dead letters, want %d", len(dead), len(poison))
	}
	for _, m := range dead {
		if header(m, pipeline.HeaderError) == "" || header(m, pipeline.HeaderTopic) != e.scores {
			t.Errorf("dead letter %q: error %q, source topic %q", m.Value, header(m, pipeline.HeaderError), header(m, pipeline.HeaderTopic))
		}
	}
	if got := topicEnd(t, e.dlq); got != int64(len(poison)) {
		t.Errorf("%d dead letters written for %d poison records", got, len(poison))
	}
	if sum := archivedBy(t, archivers[0]) + archivedBy(t, archivers[1]); sum != n {
		t.Errorf("the two archivers stored %v records for %d", sum, n)
	}
}

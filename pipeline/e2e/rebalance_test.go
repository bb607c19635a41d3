//go:build integration

package e2e

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/riskflow/riskflow/consumers"
	"github.com/riskflow/riskflow/internal/testaddr"
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

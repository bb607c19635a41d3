//go:build integration

package e2e

import (
	"context"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/riskflow/riskflow/internal/testaddr"
)

// archiverProc is one `riskflow serve --roles archiver` process of a group, with its ops port.
type archiverProc struct {
	p   *proc
	ops string
}

func (e *env) startArchiver(t *testing.T) archiverProc {
	t.Helper()
	ops := testaddr.Free(t)
	return archiverProc{p: e.start("archiver", "--set", "ops.listen="+ops), ops: ops}
}

// archivedBy is what riskflow_archived_total says one archiver stored (-1 when it does not answer).
func archivedBy(t *testing.T, a archiverProc) float64 {
	v := metric(t, a.ops, "riskflow_archived_total")
	if v == "" {
		return -1
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return -1
	}
	return f
}

// Three archivers in one consumer group share risk.scores: each stores part of the stream, and
// together — with one of them killed with SIGKILL mid-stream, another stopped and replaced —
// they leave exactly one row per event in both tables (under FINAL: a batch written but not yet
// committed when its archiver died is written again by the next owner), no dead letter, one
// schema and one rule_versions row.
func TestArchiversShareTheWork(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.start("scorer")
	archivers := []archiverProc{e.startArchiver(t), e.startArchiver(t), e.startArchiver(t)}

	const n = 30000
	now := time.Now().Add(-time.Hour)
	w := e.writer()
	produced := make(chan struct{})
	go func() { // a steady stream over ~20 s
		defer close(produced)
		for i := 0; i < n; i += 500 {
			var vs [][]byte
			for k := i; k < min(i+500, n); k++ {
				vs = append(vs, event(k, now.Add(time.Duration(k)*time.Millisecond)))
			}
			e.produce(ctx, w, vs)
			time.Sleep(300 * time.Millisecond)
		}
	}()

	// Every archiver gets partitions (4 partitions, 3 members) and stores rows.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		working := 0
		for _, a := range archivers {
			if archivedBy(t, a) > 0 {
				working++
			}
		}
		if working == len(archivers) {
			break
		}
		if time.Now().After(deadline) {
			for i, a := range archivers {
				t.Logf("archiver %d: riskflow_archived_total %v", i, archivedBy(t, a))
			}
			t.Fatalf("only %d of %d archivers stored rows within 2 minutes", working, len(archivers))
		}
		time.Sleep(200 * time.Millisecond)
	}
	var shares []float64
	for _, a := range archivers {
		shares = append(shares, archivedBy(t, a))
	}
	t.Logf("rows stored by each archiver before the kill: %v", shares)

	// Mid-stream: one archiver dies without a word (its uncommitted batches are redelivered to
	// the others), then another leaves cleanly and a new one joins.
	archivers[0].p.stop(syscall.SIGKILL)
	time.Sleep(3 * time.Second)
	archivers[1].p.stop(syscall.SIGTERM)
	archivers = append(archivers[2:], e.startArchiver(t))
	<-produced

	if got := e.waitCount(ctx, exactlyOnceQuery, n, 3*time.Minute); got != n {
		t.Fatalf("risk_scores FINAL: %d rows, want %d", got, n)
	}
	if got := e.waitCount(ctx, eventsQuery, n, time.Minute); got != n {
		t.Fatalf("verify_events FINAL: %d rows, want %d", got, n)
	}
	// Let any straggling redelivery land, then check it left no second row.
	time.Sleep(2 * time.Second)
	for _, q := range []string{exactlyOnceQuery, eventsQuery, distinctQuery, "SELECT uniqExact(event_id) FROM {db}.verify_events"} {
		if got := e.count(ctx, q); got != n {
			t.Errorf("%s: %d, want %d", q, got, n)
		}
	}
	if got := topicEnd(t, e.dlq); got != 0 {
		t.Errorf("%d dead letters from a stream of valid events", got)
	}
	// Every archiver migrated the schema and recorded the running pack before its first write;
	// concurrently, that is still one schema and one rule_versions row.
	if got := e.count(ctx, "SELECT count() FROM {db}.rule_versions FINAL"); got != 1 {
		t.Errorf("rule_versions FINAL: %d rows, want the one pack all archivers run", got)
	}
	raw := e.count(ctx, "SELECT count() FROM {db}.risk_scores")
	t.Logf("risk_scores holds %d rows before merges for %d events (redelivered after the kill and the rebalances)", raw, n)
	for i, a := range archivers {
		t.Logf("archiver %d after the churn: riskflow_archived_total %v", i, archivedBy(t, a))
	}
}

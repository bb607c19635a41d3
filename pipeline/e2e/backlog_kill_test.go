//go:build integration

package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/riskflow/riskflow/internal/testaddr"
	"github.com/riskflow/riskflow/schemas"
)

// backlogStream is netDevicePrefixStream's shape over more filler: a /24 farm, a device farm and a
// number-block burst amid filler events an hour old, produced after the fact.
func backlogStream(base time.Time, filler int) []kafka.Message {
	return farmsAmidFiller(base, "b", filler, rand.New(rand.NewPCG(3, 33)))
}

// produceChunks produces the stream in chunks of 500 every 50 ms (a backlog being sent).
func produceChunks(ctx context.Context, w *kafka.Writer, stream []kafka.Message) {
	for i := 0; i < len(stream); i += 500 {
		if err := w.WriteMessages(ctx, stream[i:min(i+500, len(stream))]...); err != nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// scoreVerdicts reads risk.scores (at least n records) and returns each event's verdicts (every
// record's, in the order read) .
func scoreVerdicts(t *testing.T, topic string, n int) map[string][]verdict {
	out := map[string][]verdict{}
	for _, m := range readAllPartitions(t, topic, n) {
		r, err := schemas.DecodeScoreRecord(m.Value)
		if err != nil {
			t.Fatalf("score record: %v", err)
		}
		v := verdict{score: r.Score, counts: map[string]int{}}
		for tag, d := range r.Detail {
			v.counts[tag] = firstInt(d.Reason)
		}
		out[r.EventID] = append(out[r.EventID], v)
	}
	return out
}

// A backlog an hour old: one scorer undisturbed, then three scorers with snapshots where one is
// stopped and restarted from its snapshot mid-backlog and another SIGKILLed; ClickHouse must hold
// every event once, and every verdict must be the single scorer's.
func TestBacklogScorersAgreeThroughRestartAndKill(t *testing.T) {
	stream := backlogStream(time.Now().UTC().Add(-65*time.Minute).Truncate(time.Second), 40000)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()

	e1 := newEnv(t)
	one := e1.start("scorer")
	waitAllReady(t, e1, []*proc{one})
	produceChunks(ctx, e1.writer(), stream)
	waitEnd(t, e1.scores, int64(len(stream)))
	base := scoreVerdicts(t, e1.scores, len(stream))
	one.stop(syscall.SIGTERM)

	e := newEnv(t)
	dirs := []string{t.TempDir(), t.TempDir(), t.TempDir()}
	ops := []string{testaddr.Free(t), testaddr.Free(t), testaddr.Free(t)}
	start := func(i int) *proc {
		return e.start("scorer", "--set", "scoring.snapshot_dir="+dirs[i], "--set", "scoring.snapshot_interval=2s", "--set", "ops.listen="+ops[i])
	}
	procs := []*proc{start(0), start(1), start(2)}
	archiver := e.start("archiver")
	waitAllReady(t, e, procs)
	go produceChunks(ctx, e.writer(), stream)
	for topicEnd(t, e.scores) < 10000 {
		time.Sleep(20 * time.Millisecond)
	}
	procs[0].stop(syscall.SIGTERM)
	restarted := start(0)
	for topicEnd(t, e.scores) < 25000 {
		time.Sleep(20 * time.Millisecond)
	}
	procs[1].stop(syscall.SIGKILL)
	t.Logf("killed scorer 1 at %d score records", topicEnd(t, e.scores))
	waits := func(i int) string {
		var out []string
		for _, by := range []string{"stamp", "event_time"} {
			for _, r := range []string{"met", "timeout"} {
				c, _ := metricValue(t, ops[i], `riskflow_scorer_feed_wait_seconds_count{by="`+by+`",result="`+r+`"}`)
				s, _ := metricValue(t, ops[i], `riskflow_scorer_feed_wait_seconds_sum{by="`+by+`",result="`+r+`"}`)
				out = append(out, fmt.Sprintf("%s %s %.0f (%.2f s)", by, r, c, s))
			}
		}
		return strings.Join(out, ", ")
	}
	got := e.waitCount(ctx, "SELECT count() FROM {db}.risk_scores FINAL", uint64(len(stream)), 3*time.Minute)
	distinct := e.count(ctx, "SELECT uniqExact(event_id) FROM {db}.risk_scores")
	total := e.count(ctx, "SELECT count() FROM {db}.risk_scores")
	recs := topicEnd(t, e.scores)
	t.Logf("feed waits: restarted scorer 0: %s; scorer 2: %s", waits(0), waits(2))
	t.Logf("ClickHouse: %d rows FINAL, %d distinct events, %d rows before merging; risk.scores holds %d records for %d events", got, distinct, total, recs, len(stream))
	if got != uint64(len(stream)) || distinct != uint64(len(stream)) {
		t.Errorf("ClickHouse holds %d rows FINAL and %d distinct events, want %d", got, distinct, len(stream))
	}
	if !strings.Contains(restarted.log.String(), "feature snapshot loaded") {
		t.Errorf("the restarted scorer did not load its snapshot:\n%s", tail(restarted.log, 20))
	}
	vs := scoreVerdicts(t, e.scores, int(recs))
	diff, redo, redoDiff := 0, 0, 0
	for id, want := range base {
		rs := vs[id]
		if len(rs) == 0 {
			t.Errorf("%s not scored", id)
			continue
		}
		if len(rs) > 1 {
			redo++
		}
		for k, g := range rs {
			bad := g.score != want[0].score || len(g.counts) != len(want[0].counts)
			for tag, c := range want[0].counts {
				if gc, ok := g.counts[tag]; !ok || gc != c {
					bad = true
				}
			}
			if bad {
				if k == 0 {
					diff++
				} else {
					redoDiff++
				}
				if diff+redoDiff <= 10 {
					t.Logf("%s (record %d of %d) scored %d %v, one scorer %d %v", id, k+1, len(rs), g.score, g.counts, want[0].score, want[0].counts)
				}
			}
		}
	}
	t.Logf("%d events scored more than once (the killed scorer's uncommitted batches); %d first records and %d repeats differ from one scorer", redo, diff, redoDiff)
	if diff+redoDiff > 0 {
		t.Errorf("%d events got another verdict or count than with one scorer", diff+redoDiff)
	}
	if strings.Contains(restarted.log.String(), "level=ERROR") {
		t.Logf("restarted scorer errors:\n%s", tail(restarted.log, 30))
	}
	_ = archiver
}

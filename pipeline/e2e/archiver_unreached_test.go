//go:build integration

package e2e

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/riskflow/riskflow/internal/testaddr"
)

// groupMembers is how many members a consumer group has now (-1 when the broker does not say).
func groupMembers(t *testing.T, group string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := &kafka.Client{Addr: kafka.TCP(kafkaAddr)}
	resp, err := c.DescribeGroups(ctx, &kafka.DescribeGroupsRequest{GroupIDs: []string{group}})
	if err != nil || len(resp.Groups) != 1 || resp.Groups[0].Error != nil {
		return -1
	}
	return len(resp.Groups[0].Members)
}

// Two archivers of one group, one started with a wrong ClickHouse password (a rollout with a bad
// secret): the working one stores every score, and the other, unready and naming why, never
// joins the group. It joined at its start and took its share of the partitions, which it held
// without writing one: half the scores stayed out of ClickHouse for as long as it ran.
func TestArchiverThatCannotReachClickHouseTakesNoPartitions(t *testing.T) {
	e := newEnv(t)
	e.dropTopicsAtEnd()
	ctx := context.Background()
	e.start("scorer")
	good := e.startArchiver(t)
	badOps := testaddr.Free(t)
	bad := archiverProc{p: e.start("archiver", "--set", "ops.listen="+badOps, "--set", "clickhouse.password=h1-wrong-password"), ops: badOps}
	if ok, code, body := waitReadyz(good.ops, time.Minute, func(code int, _ string) bool { return code == http.StatusOK }); !ok {
		t.Fatalf("working archiver: /readyz %d %s; want ready", code, body)
	}
	ok, code, body := waitReadyz(bad.ops, time.Minute, func(_ int, body string) bool {
		return strings.Contains(body, "has not reached its store since the start")
	})
	if !ok || code != http.StatusServiceUnavailable || !strings.Contains(body, "archiver:") || !strings.Contains(body, "decisions:") ||
		!strings.Contains(strings.ToLower(body), "password") {
		t.Fatalf("archiver with a wrong password: /readyz %d %s; want 503 naming the archiver, the decision archiver and the password", code, body)
	}

	const n = 2000
	now := time.Now().Add(-time.Hour)
	var vs [][]byte
	for k := range n {
		vs = append(vs, event(k, now.Add(time.Duration(k)*time.Millisecond)))
	}
	e.produce(ctx, e.writer(), vs)
	if got := e.waitCount(ctx, exactlyOnceQuery, n, 2*time.Minute); got != n {
		t.Errorf("%d of %d scores stored beside an archiver that cannot reach ClickHouse", got, n)
	}
	if got := e.waitCount(ctx, eventsQuery, n, time.Minute); got != n {
		t.Errorf("%d of %d events stored", got, n)
	}
	if m := groupMembers(t, "it-archiver-"+e.id); m != 1 {
		t.Errorf("archiver group has %d members; want 1 (the archiver that cannot reach ClickHouse stays out)", m)
	}
	if v := archivedBy(t, bad); v > 0 {
		t.Errorf("archiver with a wrong password: riskflow_archived_total %v", v)
	}
	if code, body := readyz(bad.ops); code != http.StatusServiceUnavailable {
		t.Errorf("archiver with a wrong password, after the run: /readyz %d %s; want 503", code, body)
	}
}

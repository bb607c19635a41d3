//go:build integration

package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Two archivers of one group, one of which loses its ClickHouse after it had reached it (its
// connection cut, new ones refused): once its pings have failed for kafka.stall_after it leaves the consumer
// groups — unready, riskflow_archiver_joined 0 — and the other archiver stores every score,
// once each; at the first ping that answers again it joins again. It used to keep its share of the
// partitions for as long as its ClickHouse was away: half of the scores stayed out of ClickHouse
// although the other archiver could have stored them.
func TestArchiverWhoseClickHouseGoesAwayLeavesTheGroup(t *testing.T) {
	chAddr, db, id, conn := throwawayDatabase(t, "riskflow_h4leave")
	proxy := newHangProxy(t, chAddr)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute) // a bound on the test
	defer cancel()
	g := newArchiverGroup(ctx, t, "h4leave", id)
	stored := func() uint64 {
		var n uint64
		_ = conn.QueryRow(ctx, "SELECT count() FROM "+db+".risk_scores FINAL").Scan(&n)
		return n
	}
	var rows uint64
	total := func() uint64 {
		_ = conn.QueryRow(ctx, "SELECT count() FROM "+db+".risk_scores").Scan(&rows)
		return rows
	}

	cut, cutLogs := g.start("cut", proxy.ln.Addr().String(), db)
	_, keptLogs := g.start("kept", chAddr, db)
	g.poll("both archivers in the group", func() bool { return g.members() == 2 }, cutLogs, keptLogs)

	proxy.refuse.Store(true)
	proxy.closeAll()
	const n = 400
	g.writeScores(n)
	g.poll(fmt.Sprintf("%d scores stored beside an archiver whose ClickHouse went away", n), func() bool { return stored() == n }, cutLogs, keptLogs)
	if m := g.members(); m != 1 {
		t.Errorf("archiver group has %d members with one archiver's ClickHouse away; want 1", m)
	}
	if v := gaugeValue(t, cut.reg, "riskflow_archiver_joined"); v != 0 {
		t.Errorf("riskflow_archiver_joined of the archiver whose ClickHouse is away: %v, want 0", v)
	}
	if err := cut.health.ready(); err == nil || !strings.Contains(err.Error(), "archiver") {
		t.Errorf("readiness of the archiver whose ClickHouse is away: %v, want the archiver named", err)
	}

	proxy.refuse.Store(false)
	g.poll("the archiver joins again once its ClickHouse answers", func() bool {
		return g.members() == 2 && gaugeValue(t, cut.reg, "riskflow_archiver_joined") == 1
	}, cutLogs, keptLogs)
	if got := stored(); got != n {
		t.Errorf("%d of %d scores stored", got, n)
	}
	if total() > n {
		t.Logf("%d rows before merges for %d scores (a batch in hand when the archiver left is written again by the new owner)", rows, n)
	}
}

// gaugeValue is the value of the metric name (without labels) in reg, or -1 when absent.
func gaugeValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return -1
}

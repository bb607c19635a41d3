//go:build integration

package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// Two archivers of one group, one of which has a ClickHouse that answers its pings but refuses
// every write (held-out run: an archiver whose clickhouse.username is a read-only user; here a
// table missing a column): once its writes have failed for kafka.stall_after it leaves the
// consumer groups — unready, saying why, riskflow_archiver_joined 0 — and the other archiver
// stores every score; it joins again later, and stays once its writes go through. It used to
// keep its share of the partitions for as long as it ran (its pings answered, so it never left):
// half of the scores stayed out of ClickHouse beside an archiver that could have stored them.
func TestArchiverWhoseWritesAreRefusedLeavesTheGroup(t *testing.T) {
	chAddr, db, conn, _ := migratedDatabase(t, "riskflow_h1refused")
	_, refusedDB, refusedConn, _ := migratedDatabase(t, "riskflow_h1refused")
	id := strings.TrimPrefix(db, "riskflow_h1refused_")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // a bound on the test
	defer cancel()
	if err := refusedConn.Exec(ctx, "ALTER TABLE "+refusedDB+".verify_events DROP COLUMN ex_id"); err != nil {
		t.Fatal(err)
	}
	g := newArchiverGroup(ctx, t, "h1refused", id)
	stored := func() uint64 {
		var n uint64
		_ = conn.QueryRow(ctx, "SELECT count() FROM "+db+".verify_events FINAL").Scan(&n)
		return n
	}

	refused, refusedLogs := g.start("refused", chAddr, refusedDB)
	_, keptLogs := g.start("kept", chAddr, db)
	g.poll("both archivers in the group", func() bool { return g.members() == 2 }, refusedLogs, keptLogs)

	const n = 400
	g.writeScores(n)
	g.poll("the refused archiver unready, naming its refused writes", func() bool {
		err := refused.health.ready()
		return err != nil && strings.Contains(err.Error(), "archiver") && strings.Contains(err.Error(), "ex_id")
	}, refusedLogs)
	g.poll(fmt.Sprintf("%d scores stored beside an archiver whose writes are refused", n), func() bool { return stored() == n }, refusedLogs, keptLogs)
	if !strings.Contains(refusedLogs.String(), "leaving the consumer groups") {
		t.Errorf("the refused archiver's log does not say it left the groups:\n%s", refusedLogs.String())
	}

	// Its table mended, it joins again and stays.
	if err := refusedConn.Exec(ctx, "ALTER TABLE "+refusedDB+".verify_events ADD COLUMN ex_id String"); err != nil {
		t.Fatal(err)
	}
	g.poll("the archiver joins again and its writes go through", func() bool {
		return g.members() == 2 && gaugeValue(t, refused.reg, "riskflow_archiver_joined") == 1 && refused.health.ready() == nil
	}, refusedLogs, keptLogs)
}

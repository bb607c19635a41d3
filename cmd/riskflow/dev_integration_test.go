//go:build integration

package main

import (
	"context"
	"strings"
	"testing"
	"time"
)

// `riskflow dev --once` with ClickHouse configured leaves the sample's scores in the history it
// names: it used to stop the archiver with the process before its first flush (before even the
// database was created), so the README's "dev mode also archives" held only without --once.
func TestDevOnceArchivesTheSample(t *testing.T) {
	cleanEnv(t)
	addr, db, _, conn := throwawayDatabase(t, "riskflow_devonce")
	r := runCmd(t, context.Background(), "dev", "--once", "--listen", "127.0.0.1:0",
		"--set", "clickhouse.addr="+addr, "--set", "clickhouse.database="+db, "--set", "log.level=warn")
	if r.code != 0 || !strings.Contains(r.stdout, "archived the ") {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	var rows uint64
	if err := conn.QueryRow(context.Background(), "SELECT count() FROM "+db+".risk_scores FINAL").Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if want := len(sampleEvents(time.Now(), devAppKey)); rows != uint64(want) {
		t.Errorf("risk_scores holds %d rows after dev --once, want the sample's %d", rows, want)
	}
}

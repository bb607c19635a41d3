//go:build integration

package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// A backtest whose report is whole but whose run ClickHouse did not record (backtest_runs
// gone, the server frozen after the read) says so — the report above is complete, what was not
// stored, where, and --no-record —: it ended on "riskflow: backtest: record run bt-…: chsink:
// insert 1 rows into ….backtest_runs: context deadline exceeded", as though the backtest had
// failed.
func TestBacktestNotRecordedSaysTheReportIsComplete(t *testing.T) {
	addr, db, conn, _ := migratedDatabase(t, "riskflow_btrec")
	ctx := context.Background()
	if err := conn.Exec(ctx, "DROP TABLE "+db+".backtest_runs"); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	code := run(ctx, []string{"backtest", "--rules", "../../rules/packs/default/rules.yaml", "--from", "3h",
		"--set", "clickhouse.addr=" + addr, "--set", "clickhouse.database=" + db}, &out, &errb)
	if code != 1 || !strings.Contains(out.String(), "score transitions") {
		t.Fatalf("exit %d, stdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())
	}
	for _, want := range []string{"the report above is complete", "not recorded in backtest_runs", "clickhouse.addr " + addr, "--no-record"} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, errb.String())
		}
	}
}

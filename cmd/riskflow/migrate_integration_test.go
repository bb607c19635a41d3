//go:build integration

package main

import (
	"context"
	"strings"
	"testing"

	chschema "github.com/riskflow/riskflow/deploy/clickhouse"
)

// riskflow migrate says which migrations it skipped because the server is older than they
// require: "up to date" alone would hide that the TTLs and LowCardinality columns are not there.
func TestMigrateNamesSkippedMigrations(t *testing.T) {
	cleanEnv(t)
	addr, db, _, conn := throwawayDatabase(t, "migrate_cli")
	var v string
	if err := conn.QueryRow(context.Background(), "SELECT version()").Scan(&v); err != nil {
		t.Fatal(err)
	}
	server, err := chschema.ParseVersion(v)
	if err != nil {
		t.Fatal(err)
	}
	r := runCmd(t, context.Background(), "migrate", "--set", "clickhouse.addr="+addr, "--set", "clickhouse.database="+db)
	if r.code != 0 || !strings.Contains(r.stdout, "applied 0002_verify_events") {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	old := !server.AtLeast(chschema.Version{20, 3})
	if skipped := strings.Contains(r.stderr, "migration=0011_retention_ttl"); skipped != old {
		t.Errorf("server %s: 0011_retention_ttl named as skipped %v, want %v\nstderr: %s", v, skipped, old, r.stderr)
	}
	if old && !strings.Contains(r.stderr, "requires=20.3") {
		t.Errorf("the skip does not say what it requires:\n%s", r.stderr)
	}
	// Again: nothing to apply, and the skipped ones are still named.
	r = runCmd(t, context.Background(), "migrate", "--set", "clickhouse.addr="+addr, "--set", "clickhouse.database="+db)
	if r.code != 0 || !strings.Contains(r.stdout, "is up to date") || strings.Contains(r.stderr, "migration=0011_retention_ttl") != old {
		t.Errorf("second migrate: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
}

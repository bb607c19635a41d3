//go:build integration

package main

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/riskflow/riskflow/pipeline/chsink"
	"github.com/riskflow/riskflow/schemas"
)

// A table dropped under a running archiver (risk_scores, risk_decisions here) fails one write, which says so, and
// the retry applies the schema again and stores the batch: the archiver recovers as a restarted
// one would, without riskflow migrate.
func TestArchiverSinkMigratesAgainWhenATableIsDropped(t *testing.T) {
	_, db, conn, st := migratedDatabase(t, "rf_archmig")
	ctx := context.Background()
	sink := newMigratingSink(st, slog.New(slog.DiscardHandler))
	rec := func(id string) []schemas.ScoreRecord { return oneScore(id, "") }
	if err := sink.WriteBatch(ctx, rec("e1")); err != nil {
		t.Fatal(err)
	}
	if err := conn.Exec(ctx, "DROP TABLE "+db+".risk_scores"); err != nil {
		t.Fatal(err)
	}
	err := sink.WriteBatch(ctx, rec("e2"))
	if !errors.Is(err, chsink.ErrNoTable) {
		t.Fatalf("write with risk_scores dropped: %v, want ErrNoTable", err)
	}
	if err := sink.WriteBatch(ctx, rec("e2")); err != nil {
		t.Fatalf("the retry: %v, want the schema applied again and the batch stored", err)
	}
	var n uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM "+db+".risk_scores FINAL WHERE event_id = 'e2'").Scan(&n); err != nil || n != 1 {
		t.Errorf("risk_scores holds %d rows of e2 (%v), want 1", n, err)
	}

	// The decision archiver's store likewise.
	decisions := decisionStore{m: sink}
	dec := []schemas.Decision{{DecisionID: "d1", TS: time.Now().UTC(), AppID: "app1", PhoneHash: strings.Repeat("ab", 32),
		PhoneMasked: "1381234****", PhoneSegment: "1381234", IP: "1.2.3.4", RulesVersion: "v1", Node: "n1"}}
	if err := conn.Exec(ctx, "DROP TABLE "+db+".risk_decisions"); err != nil {
		t.Fatal(err)
	}
	if err := decisions.WriteDecisions(ctx, dec); !errors.Is(err, chsink.ErrNoTable) {
		t.Fatalf("decisions with risk_decisions dropped: %v, want ErrNoTable", err)
	}
	if err := decisions.WriteDecisions(ctx, dec); err != nil {
		t.Fatalf("the decisions' retry: %v, want the schema applied again and the decisions stored", err)
	}
	if err := conn.QueryRow(ctx, "SELECT count() FROM "+db+".risk_decisions FINAL WHERE decision_id = 'd1'").Scan(&n); err != nil || n != 1 {
		t.Errorf("risk_decisions holds %d rows of d1 (%v), want 1", n, err)
	}
}

// A database restored under a running archiver from a backup older than a migration (here one
// taken before 0012, which gave verify_events its decision_id) fails one write, which says a
// column is missing, and the retry applies the schema again and stores the batch. The archiver
// retried "No such column decision_id in table verify_events" for as long as it ran (held-out
// run: the database dropped and migrated by a build from before 0012 under a running archiver;
// 500 events scored, none stored), where a restarted one, or riskflow migrate, mended it at once.
func TestArchiverSinkMigratesAgainUnderAnOlderSchema(t *testing.T) {
	_, db, conn, st := migratedDatabase(t, "rf_archold")
	ctx := context.Background()
	sink := newMigratingSink(st, slog.New(slog.DiscardHandler))
	rec := func(id string) []schemas.ScoreRecord { return oneScore(id, "d-"+id) }
	if err := sink.WriteBatch(ctx, rec("e1")); err != nil {
		t.Fatal(err)
	}
	// The restore: verify_events without decision_id, schema_migrations without 0012 and later.
	for _, stmt := range []string{
		"ALTER TABLE " + db + ".verify_events DROP COLUMN decision_id",
		"DROP TABLE " + db + ".schema_migrations",
		"CREATE TABLE " + db + ".schema_migrations (id UInt32, name String, applied_at DateTime) ENGINE = ReplacingMergeTree ORDER BY id",
		"INSERT INTO " + db + ".schema_migrations (id, name, applied_at) SELECT number, 'restored', now() FROM system.numbers WHERE number BETWEEN 1 AND 11 LIMIT 11",
	} {
		if err := conn.Exec(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	err := sink.WriteBatch(ctx, rec("e2"))
	if err == nil || !strings.Contains(err.Error(), "decision_id") || !strings.Contains(err.Error(), "riskflow migrate") {
		t.Fatalf("write under the older schema: %v, want the missing column named, and riskflow migrate", err)
	}
	if err := sink.WriteBatch(ctx, rec("e2")); err != nil {
		t.Fatalf("the retry: %v, want the schema applied again and the batch stored", err)
	}
	var n uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM "+db+".verify_events FINAL WHERE event_id = 'e2' AND decision_id = 'd-e2'").Scan(&n); err != nil || n != 1 {
		t.Errorf("verify_events holds %d rows of e2 with its decision (%v), want 1", n, err)
	}
}

// oneScore is a batch of one score record of event id (and decisionID, "" for none).
func oneScore(id, decisionID string) []schemas.ScoreRecord {
	return []schemas.ScoreRecord{{
		EventID: id, TS: time.Now().UTC().Truncate(time.Second), AppID: "app1", Flow: "one_click_login",
		PhoneHash: "ab12000000000000000000000000000000000000000000000000000000000000", PhoneMasked: "1381234****",
		PhoneSegment: "1381234", IP: "1.2.3.4", Outcome: "success", RulesVersion: "v1", DecisionID: decisionID,
	}}
}

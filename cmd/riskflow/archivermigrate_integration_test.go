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
	addr, db, conn, _ := migratedDatabase(t, "rf_archmig")
	ctx := context.Background()
	st, err := chsink.Open(ctx, chsink.Config{Addr: addr, Database: db})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	sink := newMigratingSink(st, slog.New(slog.DiscardHandler))
	rec := func(id string) []schemas.ScoreRecord {
		return []schemas.ScoreRecord{{
			EventID: id, TS: time.Now().UTC().Truncate(time.Second), AppID: "app1", Flow: "one_click_login",
			PhoneHash: "ab12000000000000000000000000000000000000000000000000000000000000", PhoneMasked: "1381234****",
			PhoneSegment: "1381234", IP: "1.2.3.4", Outcome: "success", RulesVersion: "v1",
		}}
	}
	if err := sink.WriteBatch(ctx, rec("e1")); err != nil {
		t.Fatal(err)
	}
	if err := conn.Exec(ctx, "DROP TABLE "+db+".risk_scores"); err != nil {
		t.Fatal(err)
	}
	err = sink.WriteBatch(ctx, rec("e2"))
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

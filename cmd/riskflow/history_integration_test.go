//go:build integration

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/riskflow/riskflow/rules"
	"github.com/riskflow/riskflow/rules/packs"
	"github.com/riskflow/riskflow/schemas"
)

// History in a throwaway database: score a stream with the default pack, store it, then check that
// `riskflow backtest` finds exactly the change a hand-edited pack implies and that `riskflow rules
// report` lists the rules that fired.
func TestBacktestAndRulesReportOnClickHouse(t *testing.T) {
	addr, db, conn, st := migratedDatabase(t, "riskflow_cli")
	ctx := context.Background()

	// Score a stream the way the scorer does: 20 numbers, each verified twice within 10 minutes
	// (0 under the default pack; 300 if phone_velocity_observe fired at 2), 30 ordinary logins.
	cfg := Default()
	cfg.ClickHouse.Addr, cfg.ClickHouse.Database = addr, db
	s, err := buildScorer(cfg.Scoring, schemas.NewPhoneHasher([]byte("k")), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now().UTC().Add(-2 * time.Hour).Truncate(time.Second)
	var recs []schemas.ScoreRecord
	add := func(id, phone string, at time.Time) {
		ev := schemas.VerifyEvent{EventID: id, TS: at, AppID: "app", Flow: schemas.FlowOneClickLogin, Phone: phone, Carrier: "CM", Outcome: schemas.OutcomeSuccess}
		ev.IP, _ = schemas.ParseIP("100.64.3.4")
		rec, err := s.Process(&ev)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, rec)
	}
	for i := 0; i < 20; i++ {
		phone := fmt.Sprintf("139%04d%04d", i*101%10000, i) // distinct 7-digit blocks: no prefix burst
		add(fmt.Sprintf("twice-%d-a", i), phone, start.Add(time.Duration(i)*time.Minute))
		add(fmt.Sprintf("twice-%d-b", i), phone, start.Add(time.Duration(i)*time.Minute+30*time.Second))
	}
	for i := 0; i < 30; i++ {
		add(fmt.Sprintf("once-%d", i), fmt.Sprintf("138%04d%04d", i*97%10000, i), start.Add(time.Duration(30+i)*time.Minute))
	}
	if err := st.WriteBatch(ctx, recs); err != nil {
		t.Fatal(err)
	}

	cand := filepath.Join(tempDir(t), "candidate.yaml")
	edited := strings.Replace(string(packs.Default()), "when: phone_verifies_10m >= 3", "when: phone_verifies_10m >= 2", 1)
	if edited == string(packs.Default()) {
		t.Fatal("the default pack no longer has the line this test edits")
	}
	os.WriteFile(cand, []byte(edited), 0o644)
	env := []string{"--set", "clickhouse.addr=" + addr, "--set", "clickhouse.database=" + db}

	var out, errb bytes.Buffer
	code := run(ctx, append([]string{"backtest", "--rules", cand, "--from", "3h", "--json"}, env...), &out, &errb)
	if code != 0 {
		t.Fatalf("backtest exited %d: %s", code, errb.String())
	}
	js := out.String()
	// Exactly the 20 second attempts move 0 → 300, only phone_velocity_observe gains hits.
	for _, want := range []string{`"from": 0`, `"to": 300`, `"count": 20`, `"rule": "phone_velocity_observe"`} {
		if !strings.Contains(js, want) {
			t.Errorf("backtest JSON lacks %s:\n%s", want, js)
		}
	}
	var n uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM "+db+".backtest_runs").Scan(&n); err != nil || n != 1 {
		t.Errorf("backtest_runs rows %d (%v), want 1", n, err)
	}

	out.Reset()
	code = run(ctx, append([]string{"rules", "report", "--window", "6h"}, env...), &out, &errb)
	if code != 0 {
		t.Fatalf("rules report exited %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "(70 events)") {
		t.Errorf("rules report does not count the 70 stored events:\n%s", out.String())
	}
}

// A report window that starts inside an hour (--window 90m) splits that hour's hits at the
// window's start, as it splits the events: the hits were split by hour, so 10 events in the
// window, all matching, showed 0 hits (counted against the window before, which had no event).
func TestRulesReportWindowStartingInsideAnHour(t *testing.T) {
	addr, db, _, st := migratedDatabase(t, "riskflow_report")
	ctx := context.Background()
	cfg := Default()
	s, err := buildScorer(cfg.Scoring, schemas.NewPhoneHasher([]byte("k")), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	p, err := rules.Compile([]byte("pack: p\nrules:\n  - {id: always, tag: always, mode: tag, when: 'true'}\n"), s.Env())
	if err != nil {
		t.Fatal(err)
	}
	s.SetPack(p)

	// The report's window: [end-90m, end), end the next full hour, as cmdRulesReport computes it.
	end := time.Now().UTC().Truncate(time.Hour).Add(time.Hour)
	cur := end.Add(-90 * time.Minute) // hh:30 of the hour before the current one
	var recs []schemas.ScoreRecord
	add := func(id string, at time.Time) {
		ev := schemas.VerifyEvent{EventID: id, TS: at, AppID: "app", Flow: schemas.FlowOneClickLogin, Phone: "13800138000", Carrier: "CM", Outcome: schemas.OutcomeSuccess}
		ev.IP, _ = schemas.ParseIP("100.64.3.4")
		rec, err := s.Process(&ev)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, rec)
	}
	for i := range 4 { // in the window, in the hour it starts inside
		add(fmt.Sprintf("in-%d", i), cur.Add(10*time.Minute+time.Duration(i)*time.Second))
	}
	for i := range 2 { // before the window, in that same hour
		add(fmt.Sprintf("before-%d", i), cur.Add(-10*time.Minute+time.Duration(i)*time.Second))
	}
	if err := st.WriteBatch(ctx, recs); err != nil {
		t.Fatal(err)
	}

	var out, errb bytes.Buffer
	env := []string{"--set", "clickhouse.addr=" + addr, "--set", "clickhouse.database=" + db}
	if code := run(ctx, append([]string{"rules", "report", "--window", "90m"}, env...), &out, &errb); code != 0 {
		t.Fatalf("rules report exited %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "(4 events) vs the 1h30m before (2 events)") {
		t.Errorf("events not split at the window's start:\n%s", out.String())
	}
	var row []string
	for _, l := range strings.Split(out.String(), "\n") {
		if f := strings.Fields(l); len(f) > 1 && f[1] == "always" {
			row = f
		}
	}
	// mode rule tag level hits rate before trend… sparkline
	if len(row) < 8 || row[4] != "4" || row[5] != "100.000%" || row[6] != "100.000%" || !strings.ContainsAny(strings.Join(row[8:], ""), "▁▂▃▄▅▆▇█") {
		t.Errorf("rule always: %q, want 4 hits, 100%% now and before, and a sparkline:\n%s", row, out.String())
	}

	// --json: the same numbers, rates as fractions, and the window's two hours each with its hits.
	out.Reset()
	if code := run(ctx, append([]string{"rules", "report", "--window", "90m", "--json"}, env...), &out, &errb); code != 0 {
		t.Fatalf("rules report --json exited %d: %s", code, errb.String())
	}
	var rep reportJSON
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("rules report --json: %v:\n%s", err, out.String())
	}
	if rep.Events != 4 || rep.EventsBefore != 2 || !rep.From.Equal(cur) || !rep.To.Equal(end) || !rep.BeforeFrom.Equal(cur.Add(-90*time.Minute)) || len(rep.Rules) != 1 {
		t.Fatalf("rules report --json:\n%s", out.String())
	}
	r := rep.Rules[0]
	hours := []reportHourJSON{{Hour: cur.Truncate(time.Hour), Hits: 4}, {Hour: cur.Truncate(time.Hour).Add(time.Hour), Hits: 0}}
	if r.Rule != "always" || r.Hits != 4 || r.HitsBefore != 2 || r.Rate == nil || *r.Rate != 1 || r.RateBefore == nil || *r.RateBefore != 1 ||
		len(r.Hourly) != 2 || !r.Hourly[0].Hour.Equal(hours[0].Hour) || r.Hourly[0].Hits != 4 || !r.Hourly[1].Hour.Equal(hours[1].Hour) || r.Hourly[1].Hits != 0 {
		t.Errorf("rule always in --json: %+v, want 4 hits and 2 before at rate 1, hours %v:\n%s", r, hours, out.String())
	}
}

// rules report on a database riskflow migrate has not created says what creates it.
func TestRulesReportWithoutTheDatabase(t *testing.T) {
	addr, db, _, _ := throwawayDatabase(t, "riskflow_noreport")
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"rules", "report", "--set", "clickhouse.addr=" + addr, "--set", "clickhouse.database=" + db}, &out, &errb)
	if code != 1 || !strings.Contains(errb.String(), "rules report: count events: table missing (riskflow migrate creates it)") || !strings.Contains(errb.String(), db) {
		t.Errorf("exit %d, stderr %q; want 1 and the database missing, and riskflow migrate", code, errb.String())
	}
}

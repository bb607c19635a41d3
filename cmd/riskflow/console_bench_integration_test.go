//go:build integration

package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"golang.org/x/sync/errgroup"

	"github.com/riskflow/riskflow/pipeline/chsink"
	"github.com/riskflow/riskflow/rules/packs"
	"github.com/riskflow/riskflow/scoring/console"
	"github.com/riskflow/riskflow/scoring/console/consoletest"
)

// fillConsoleHistory fills db (migrated) with n verifications over the last 7 days, their scores
// and n decisions, in ClickHouse itself (INSERT … SELECT from numbers(n)), so that the hourly
// views fill as the archiver's inserts fill them: 5 apps, 200,000 numbers, 50,000 addresses,
// 100,000 devices; 40% of events scored above 0, each with one enforce hit and half with a shadow
// hit.
func fillConsoleHistory(ctx context.Context, conn clickhouse.Conn, db string, n int) error {
	span := 7 * 24 * 3600
	common := fmt.Sprintf(`SELECT number AS n, concat('ev-', toString(n)) AS event_id,
  toDateTime(toUInt32(now()) - intDiv(n * %[1]d, %[2]d)) AS ts, concat('app-', toString(n %% 5)) AS app_id,
  ['one_click_login', 'number_verify', 'h5_quick_login'][n %% 3 + 1] AS flow,
  (n * 7919) %% 200000 AS p, lower(concat(hex(MD5(toString(p))), hex(MD5(concat('x', toString(p)))))) AS phone_hash,
  concat('138', toString(1000 + p %% 9000), '****') AS phone_masked, concat('138', toString(1000 + p %% 9000)) AS phone_segment,
  concat('198.18.', toString(intDiv(n %% 50000, 250)), '.', toString(n %% 250)) AS ip,
  concat('dev-', toString((n * 31) %% 100000)) AS device_id, ['CM', 'CU', 'CT'][n %% 3 + 1] AS carrier,
  toUInt16([0, 0, 0, 0, 0, 0, 300, 300, 600, 900][n %% 10 + 1]) AS score,
  if(score > 0, ['ip_many_phones'], emptyArrayString()) AS tags,
  if(score > 0, if(n %% 2 = 0, ['r_ip_phones', 'r_shadow_new'], ['r_ip_phones']), emptyArrayString()) AS hit_rules,
  if(score > 0, if(n %% 2 = 0, ['ip_many_phones', 'new_rule'], ['ip_many_phones']), emptyArrayString()) AS hit_tags,
  if(score > 0, if(n %% 2 = 0, [score, toUInt16(600)], [score]), emptyArrayUInt16()) AS hit_scores,
  if(score > 0, if(n %% 2 = 0, ['enforce', 'shadow'], ['enforce']), emptyArrayString()) AS hit_modes,
  if(score > 0, if(n %% 2 = 0, ['38 phones from this IP in 1h', 'shadow'], ['38 phones from this IP in 1h']), emptyArrayString()) AS hit_reasons
FROM numbers(%[2]d)`, span, n)
	stmts := []string{
		`INSERT INTO ` + db + `.verify_events (event_id, ts, app_id, flow, phone_hash, phone_masked, phone_segment, ip, carrier, platform, device_id, outcome, error_code, token_digest, ex_id, decision_id, country, province, city, asn, ip_type)
SELECT event_id, ts, app_id, flow, phone_hash, phone_masked, phone_segment, ip, carrier, 'android', device_id, if(n % 7 = 0, 'fail', 'success'), if(n % 7 = 0, '103911', ''), '', '', concat('d-', toString(n)), 'CN', 'Guangdong', 'Shenzhen', toUInt32(9808), 'mobile' FROM (` + common + `)`,
		`INSERT INTO ` + db + `.risk_scores (event_id, ts, app_id, flow, phone_hash, phone_segment, ip, carrier, score, tags, detail, hit_rules, hit_tags, hit_scores, hit_modes, hit_reasons, shadow_tags, rules_version, scored_at)
SELECT event_id, ts, app_id, flow, phone_hash, phone_segment, ip, carrier, score, tags, '{}', hit_rules, hit_tags, hit_scores, hit_modes, hit_reasons, emptyArrayString(), 'bench00000000001', ts FROM (` + common + `)`,
		`INSERT INTO ` + db + `.risk_decisions (decision_id, ts, app_id, flow, phone_hash, phone_masked, phone_segment, ip, carrier, platform, device_id, token_digest, ex_id, score, tags, detail, hit_rules, hit_tags, hit_scores, hit_modes, hit_reasons, rules_version, node, latency_us)
SELECT concat('d-', toString(n)), ts, app_id, flow, phone_hash, phone_masked, phone_segment, ip, carrier, 'android', device_id, '', '', score, tags, '{}', hit_rules, hit_tags, hit_scores, hit_modes, hit_reasons, 'bench00000000001', 'bench', toUInt32(800) FROM (` + common + `)`,
	}
	for _, q := range stmts {
		if err := conn.Exec(ctx, q); err != nil {
			return fmt.Errorf("fill: %w\n%s", err, q)
		}
	}
	return nil
}

// BenchmarkConsolePages times the server render of every console page (the whole HTTP round trip
// on loopback: session, ClickHouse reads, template) on a history of RISKFLOW_BENCH_CONSOLE_ROWS
// (default 1,000,000) verifications, their scores and as many decisions over 7 days, and reports
// p50 and p99 per page in milliseconds. The overview's 30 s cache is off: every render runs its
// queries; the overview keeps past hours (overviewHours), so its first render reads the whole
// range and the next ones the last hours: *-whole-range pages are the overview reading its whole
// range every time, as before. RISKFLOW_BENCH_CONSOLE_DB names a database to fill once and keep (else a throwaway one).
//
//	go test -tags integration -run '^$' -bench ConsolePages -benchtime 30x ./cmd/riskflow
func BenchmarkConsolePages(b *testing.B) {
	rows := 1_000_000
	if v := os.Getenv("RISKFLOW_BENCH_CONSOLE_ROWS"); v != "" {
		var err error
		if rows, err = strconv.Atoi(v); err != nil {
			b.Fatal(err)
		}
	}
	cfg, db := testWorld(b)
	if keep := os.Getenv("RISKFLOW_BENCH_CONSOLE_DB"); keep != "" {
		db, cfg.ClickHouse.Database = keep, keep
	}
	ctx, cancel := context.WithCancel(context.Background())
	var g errgroup.Group
	b.Cleanup(func() { cancel(); g.Wait() })
	a, err := newApp(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	st, err := openStore(ctx, cfg.ClickHouse, nil)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := st.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	st.Close()
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{cfg.ClickHouse.Addr}, ReadTimeout: 10 * time.Minute})
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	var have uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM "+db+".risk_scores").Scan(&have); err != nil {
		b.Fatal(err)
	}
	if have < uint64(rows) {
		start := time.Now()
		if err := fillConsoleHistory(ctx, conn, db, rows); err != nil {
			b.Fatal(err)
		}
		b.Logf("filled %s with %d events, scores and decisions in %s", db, rows, time.Since(start).Round(time.Millisecond))
	}
	var phoneHash, ip, device string
	if err := conn.QueryRow(ctx, "SELECT phone_hash, ip, device_id FROM "+db+".verify_events WHERE event_id = 'ev-4242' LIMIT 1").Scan(&phoneHash, &ip, &device); err != nil {
		b.Fatal(err)
	}

	if err := a.prepareKafka(ctx); err != nil {
		b.Fatal(err)
	}
	if _, err := a.rules.Start(ctx); err != nil {
		b.Fatal(err)
	}
	a.rules.Tick(ctx)
	v2 := strings.Replace(string(packs.Default()), "pack: default", "pack: default # v2", 1)
	if _, err := a.rules.Load(ctx, []byte(v2), "bench", "bench"); err != nil {
		b.Fatal(err)
	}
	a.startLists(ctx, &g)
	if !waitFresh(ctx, a.lists) {
		b.Fatal("lists not read")
	}
	cfg.API.ConsoleApprovals = 2
	a.cfg.API.ConsoleApprovals = 2
	deps := a.consoleDeps()
	deps.CacheFor = -1
	c, err := console.New(deps, nil)
	if err != nil {
		b.Fatal(err)
	}
	ts := httptest.NewTLSServer(c)
	defer ts.Close()
	n := &consoleNode{a: a, base: ts.URL, hc: ts.Client()}
	// The same console reading every overview's whole range (no hours kept): the overview before.
	whole := deps
	whole.History = &consoleHistory{ch: deps.History.(*consoleHistory).ch}
	cw, err := console.New(whole, nil)
	if err != nil {
		b.Fatal(err)
	}
	tsw := httptest.NewTLSServer(cw)
	defer tsw.Close()
	aliceWhole := (&consoleNode{a: a, base: tsw.URL, hc: tsw.Client()}).login(b, "alice", "a-secret")
	alice := n.login(b, "alice", "a-secret")
	anonymous := &consoletest.Browser{T: b, Base: n.base, HTTP: n.hc}
	for i := range 20 {
		alice.Post("/console/lists", url.Values{"action": {"block"}, "kind": {"ip"}, "value": {fmt.Sprintf("203.0.113.%d", i)}, "why": {"bench"}})
	}
	v3 := strings.Replace(string(packs.Default()), "pack: default", "pack: default # v3", 1)
	if code, _, _ := alice.Post("/console/rules/draft", url.Values{"action": {"promote"}, "draft": {v3}}); code != http.StatusSeeOther {
		b.Fatalf("promotion request: %d", code)
	}
	_, body, _ := alice.Get("/console/rules")
	pending := regexp.MustCompile(`href="(/console/rules/pending/[0-9a-f]+)"`).FindStringSubmatch(body)
	if pending == nil {
		b.Fatal("no pending request")
	}
	code, _, h := alice.Post("/console/backtests", url.Values{"hours": {"1"}})
	if code != http.StatusSeeOther {
		b.Fatalf("backtest: %d", code)
	}
	job := h.Get("Location")
	eventually(b, "the backtest", 5*time.Minute, func() error {
		if _, body, _ := alice.Get(job + "/progress"); !strings.Contains(body, `"done":true`) {
			return fmt.Errorf("%s", body)
		}
		return nil
	})
	version := a.rules.Current().Version

	pages := []struct{ name, path string }{
		{"overview-24h-whole-range", "/console/overview?range=24h"},
		{"overview-7d-whole-range", "/console/overview?range=7d"},
		{"login", "/console/login"},
		{"overview-24h", "/console/overview?range=24h"},
		{"overview-7d", "/console/overview?range=7d"},
		{"overview-30d", "/console/overview?range=30d"},
		{"overview-7d-app", "/console/overview?range=7d&app=app-1"},
		{"rules", "/console/rules"},
		{"version-diff", "/console/rules/versions/" + version},
		{"pending", pending[1]},
		{"draft", "/console/rules/draft"},
		{"backtest", job},
		{"lists", "/console/lists"},
		{"investigate-phone", "/console/investigate?kind=phone_hash&value=" + phoneHash},
		{"investigate-ip", "/console/investigate?kind=ip&value=" + ip},
		{"investigate-device", "/console/investigate?kind=device&value=" + device},
	}
	for _, p := range pages {
		b.Run(p.name, func(b *testing.B) {
			var ds []time.Duration
			for range b.N {
				who := alice
				if strings.HasSuffix(p.name, "-whole-range") {
					who = aliceWhole
				}
				if p.name == "login" {
					who = anonymous // a session would be sent on to the overview
				}
				start := time.Now()
				code, body, _ := who.Get(p.path)
				ds = append(ds, time.Since(start))
				if code != http.StatusOK || strings.Contains(body, `class="problem"`) {
					b.Fatalf("%s: %d\n%s", p.path, code, body)
				}
			}
			slices.Sort(ds)
			ms := func(q float64) float64 { return float64(ds[min(len(ds)-1, int(q*float64(len(ds))))]) / 1e6 }
			b.ReportMetric(ms(0.5), "p50-ms")
			b.ReportMetric(ms(0.99), "p99-ms")
			b.ReportMetric(0, "ns/op")
		})
	}
	st, err = openStore(ctx, cfg.ClickHouse, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	lookupBeforeAfter(b, st, db, phoneHash, ip, device)
}

// joinedLookupSQL is the attempts read of investigate before PREWHERE (and before the verdicts
// were read by primary key): the key's attempts ANY LEFT JOINed to a scan of risk_scores for the
// same key. Kept here to measure against.
func joinedLookupSQL(database, col, val string, since time.Time, limit int) string {
	where := col + " = '" + val + "' AND ts >= toDateTime(" + strconv.FormatInt(since.Unix(), 10) + ")"
	scoresWhere := where
	if col == "device_id" {
		scoresWhere = "ts >= toDateTime(" + strconv.FormatInt(since.Unix(), 10) + ") AND (app_id, event_id) IN (SELECT app_id, event_id FROM " + database + ".verify_events WHERE " + where + ")"
	}
	return fmt.Sprintf("SELECT e.ts, e.app_id, e.event_id, e.flow, e.phone_masked, e.ip, e.device_id, e.outcome, e.error_code, e.decision_id, "+
		"s.score, s.tags, s.rules_version FROM (SELECT ts, app_id, event_id, flow, phone_masked, ip, device_id, outcome, error_code, decision_id "+
		"FROM %[1]s.verify_events WHERE %[2]s ORDER BY ts DESC, app_id, event_id, inserted_at DESC LIMIT 1 BY app_id, event_id LIMIT %[3]d) AS e "+
		"ANY LEFT JOIN (SELECT app_id, event_id, score, tags, rules_version "+
		"FROM %[1]s.risk_scores WHERE %[4]s ORDER BY scored_at DESC LIMIT 1 BY app_id, event_id) "+
		"AS s USING (app_id, event_id) ORDER BY e.ts DESC, e.app_id, e.event_id LIMIT %[3]d",
		database, where, limit, scoresWhere)
}

// lookupBeforeAfter alternates, on db, the attempts read of investigate as it was (one query
// joining a scan of risk_scores) and chsink.Lookup now (attempts by PREWHERE, their verdicts by
// primary key, decisions at the same time), and reports the p50 of each and their ratio.
func lookupBeforeAfter(b *testing.B, st *chsink.Store, db, phoneHash, ip, device string) {
	ctx := context.Background()
	since := time.Now().Add(-7 * 24 * time.Hour)
	for _, k := range []struct {
		name, col, val string
		key            chsink.LookupKey
	}{
		{"phone", "phone_hash", phoneHash, chsink.LookupKey{PhoneHash: phoneHash}},
		{"ip", "ip", ip, chsink.LookupKey{IP: ip}},
		{"device", "device_id", device, chsink.LookupKey{DeviceID: device}},
	} {
		b.Run("lookup-before-after-"+k.name, func(b *testing.B) {
			var before, after []time.Duration
			for range b.N {
				start := time.Now()
				rows, err := st.Query(ctx, joinedLookupSQL(db, k.col, k.val, since, 100))
				if err != nil {
					b.Fatal(err)
				}
				for rows.Next() {
				}
				rows.Close()
				before = append(before, time.Since(start))
				start = time.Now()
				if _, _, err := st.Lookup(ctx, k.key, chsink.LookupRange{Since: since}, 100); err != nil {
					b.Fatal(err)
				}
				after = append(after, time.Since(start))
			}
			slices.Sort(before)
			slices.Sort(after)
			p50 := func(ds []time.Duration) float64 { return float64(ds[len(ds)/2]) / 1e6 }
			b.ReportMetric(p50(before), "before-p50-ms")
			b.ReportMetric(p50(after), "now-p50-ms")
			b.ReportMetric(p50(after)/p50(before), "now/before")
			b.ReportMetric(0, "ns/op")
		})
	}
}

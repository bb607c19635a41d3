//go:build integration && chdb

package chsink

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	chschema "github.com/riskflow/riskflow/deploy/clickhouse"
	"github.com/riskflow/riskflow/schemas"
)

// TestSQLOnBothClickHouses runs every statement riskflow ships or sends — migrations (those
// meant for each release), the archiver's inserts, the backfill, the migrator's and the
// backtest's reads, `riskflow rules report`, the analyst queries, riskflow demo's questions
// and the dashboards' ClickHouse panels — on the ClickHouse 18.16 server of CI and on current
// ClickHouse embedded by chDB (deploy/local/chdb.sh installs it from PyPI), over one fixture,
// and requires the same results from both.
//
// On 18.16 the migrations and inserts go through chsink itself (Store.Migrate, WriteBatch,
// RecordRuleVersion, RecordBacktestRun, over the native protocol); chDB gets the same
// statements as text, with the same rows as JSONEachRow. Every other statement is text on
// both (18.16 over HTTP, RISKFLOW_CLICKHOUSE_HTTP, default 127.0.0.1:18123). Statements that
// read the clock run twice: as shipped (both must succeed) and with now() pinned to the
// fixture's clock (results compared).
//
//	make chdb    (CI: .ci/run), or
//	go test -count=1 -tags integration,chdb -run TestSQLOnBothClickHouses -v ./pipeline/chsink/
func TestSQLOnBothClickHouses(t *testing.T) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	// The clock both servers see: half past, in the past (the data ends there).
	now := time.Now().UTC().Truncate(time.Hour).Add(-30 * time.Minute)
	fx := newCrossFixture(now)

	// 18.16: the real migrator and writers, then every other statement over HTTP.
	st := newTestStoreAt(t, slog.LevelInfo)
	oldVersion, err := st.ServerVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	oldPlan, err := buildCrossPlan(st.db, now, oldVersion, fx)
	if err != nil {
		t.Fatal(err)
	}
	applied, err := st.Migrate(ctx)
	if err != nil {
		t.Fatalf("migrate on %s: %v", oldVersion, err)
	}
	if !slices.Equal(applied, oldPlan.migrations) {
		t.Fatalf("Migrate applied %q on %s; the plan has %q", applied, oldVersion, oldPlan.migrations)
	}
	for _, batch := range [][]schemas.ScoreRecord{fx.records, fx.redelivered} {
		if err := st.WriteBatch(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	for _, v := range fx.versions {
		if err := st.RecordRuleVersion(ctx, v); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range fx.runs {
		if err := st.RecordBacktestRun(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.WriteDecisions(ctx, fx.decisions); err != nil {
		t.Fatal(err)
	}
	if err := st.WriteLabels(ctx, fx.labels); err != nil {
		t.Fatal(err)
	}
	oldStart := time.Now()
	oldResults := runOnServer(ctx, oldPlan)
	oldTook := time.Since(oldStart)

	// Current ClickHouse: the whole plan, as text, in a fresh chDB session.
	newVersion := chdbVersion(ctx, t)
	newPlan, err := buildCrossPlan(st.db, now, newVersion, fx)
	if err != nil {
		t.Fatal(err)
	}
	res := runOnChdb(ctx, t, newPlan)
	dumpResults(t, newPlan, oldResults, res.byName())

	// Everything ran; the same answers.
	counts, failed := checkCross(t, oldPlan, newPlan, oldResults, res, crossCheck{oldVersion: oldVersion.String()})
	t.Logf("chDB pass: ClickHouse %s (server, UTC) and %s (chDB %s, %s), database %s, clock pinned at %s",
		oldVersion, res.Version, res.Chdb, res.TimeZone, st.db, now.Format(time.RFC3339))
	t.Logf("chDB pass: migrations: %d files on %s, %d on %s (%d statements); skipped on %s: %s",
		len(oldPlan.migrations), oldVersion, len(newPlan.migrations), res.Version, counts[stepMigration], oldVersion,
		strings.Join(missing(newPlan.migrations, oldPlan.migrations), ", "))
	t.Logf("chDB pass: %d inserts (%d events, %d re-delivered, %d rule versions, %d backtest runs), %d backfill statements",
		counts[stepInsert], len(fx.records), len(fx.redelivered), len(fx.versions), len(fx.runs), counts[stepExec])
	t.Logf("chDB pass: %d statements with identical results, %d clock-dependent statements ran on both, %d storage checks, %d migration statements sent again",
		counts[stepCompare], counts[stepRuns], counts[stepExpect], counts[stepAgain])
	t.Logf("chDB pass: %d failed; 18.16 checks %.1fs, chDB %.1fs, total %.1fs",
		failed, oldTook.Seconds(), res.Seconds, time.Since(start).Seconds())
	if failed == 0 {
		fmt.Printf("chdb: %d passed, 0 failed\n", len(newPlan.steps))
	}
}

// TestSQLOnBothClickHousesOtherData runs every read of the cross-version check on data other than
// its fixture, on the 18.16 server and on chDB: by default an empty database (every table
// migrated, no row), or with RISKFLOW_CROSS_DATABASE=NAME a database of the 18.16 server that
// riskflow filled (loadgen through Kafka, the scorer and the archiver, checks and labels through
// the API): its tables are copied as they are stored, re-deliveries not merged yet included, into
// chDB, and so are the hourly views' states, which still count the copies 18.16 has merged away.
// chDB gets the schema as 18.16 has it, then the rows, then the migrations only newer releases
// apply (LowCardinality, TTL): an upgrade in place. RISKFLOW_CROSS_NOW (RFC 3339, default now)
// pins the clock. The statements that read the clock are compared on the pinned clock.
//
// uniq estimates above 65,536 distinct values: 18.16 and current releases keep the same state
// but estimate differently (18.16 counts 301,320 of 300,000 distinct strings, 26.9 301,750), so
// numbers of a large database are compared within 1 % and the ones that differ are counted.
//
//	go test -count=1 -tags integration,chdb -run TestSQLOnBothClickHousesOtherData -v ./pipeline/chsink/
func TestSQLOnBothClickHousesOtherData(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Minute)
	if v := os.Getenv("RISKFLOW_CROSS_NOW"); v != "" {
		var err error
		if now, err = time.Parse(time.RFC3339, v); err != nil {
			t.Fatalf("RISKFLOW_CROSS_NOW: %v", err)
		}
		now = now.UTC()
	}
	db := os.Getenv("RISKFLOW_CROSS_DATABASE")
	if db == "" {
		st := newTestStoreAt(t, slog.LevelWarn)
		if _, err := st.Migrate(testContext(t)); err != nil {
			t.Fatal(err)
		}
		db = st.db
	}
	crossOtherData(t, db, now, db != os.Getenv("RISKFLOW_CROSS_DATABASE"))
}

// A database as riskflow fills it, not the fixture: events written twice (a re-delivered batch,
// not merged yet on 18.16) and tables with no row (no backtest, no label) — the copy of such a
// database into chDB stopped at the empty tables (NO_DATA_TO_INSERT), and the demo's count of
// landed records counted the copies, which chDB had merged and 18.16 not.
//
// And re-delivered events scored otherwise the second time, merged on 18.16 before the copy
// (risk_scores keeps the latest scoring; the hourly views counted both): the copy of the event
// tables alone gave chDB's views one scoring, so hourly_traffic, daily_score_distribution,
// rule_hits_by_mode, tag_trends and the panels on the views answered otherwise on chDB, and
// RISKFLOW_CROSS_DATABASE failed on any database riskflow filled with such re-deliveries.
func TestSQLOnBothClickHousesRedelivered(t *testing.T) {
	st := newTestStoreAt(t, slog.LevelWarn)
	ctx := testContext(t)
	if _, err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	recs := recentRecords(300)
	rescored := slices.Clone(recs[200:220])
	for i := range rescored {
		r := &rescored[i]
		r.Score, r.ScoredAt = 900, r.ScoredAt.Add(time.Minute)
		r.Tags = []string{"rescored"}
		r.Hits = []schemas.RuleHit{{Rule: "rescored_block", Tag: "rescored", Score: 900, Mode: "enforce", Reason: "again"}}
	}
	for _, b := range [][]schemas.ScoreRecord{recs, recs[:120], rescored} {
		if err := st.WriteBatch(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.conn.Exec(ctx, "OPTIMIZE TABLE "+st.table("risk_scores")+" FINAL"); err != nil {
		t.Fatal(err)
	}
	if n := queryUint(t, st, "SELECT count() FROM "+st.table("risk_scores")+" WHERE hit_rules = ['rescored_block']"); n != uint64(len(rescored)) {
		t.Fatalf("%d re-scored rows, want %d", n, len(rescored))
	}
	if n := queryUint(t, st, fmt.Sprintf("SELECT count() FROM %s WHERE app_id = '%s' AND event_id = '%s'", st.table("risk_scores"), rescored[0].AppID, rescored[0].EventID)); n != 1 {
		t.Fatalf("risk_scores holds %d rows of a re-scored event after OPTIMIZE FINAL, want its latest scoring only: the test proves nothing", n)
	}
	crossOtherData(t, st.db, time.Now().UTC().Truncate(time.Minute), false)
}

// TestAnalystQueriesOnOddData's data (a re-delivered event scored otherwise each time, sixty apps
// with one event id, a long device id beyond ASCII, empty optional fields, a China midnight, a
// late event) answers the same on current ClickHouse as on 18.16, where that test checks the
// numbers: every read of the cross-version check, on both.
func TestSQLOnBothClickHousesOddData(t *testing.T) {
	st := newTestStoreAt(t, slog.LevelWarn)
	ctx := testContext(t)
	if _, err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	shanghai, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Minute)
	for _, b := range newOddData(now, shanghai).batches {
		if err := st.WriteBatch(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	crossOtherData(t, st.db, now, false)
}

// crossOtherData runs every read of the cross-version check over database db of the 18.16
// server (empty: only migrated) and over a copy of it in chDB, and compares.
func crossOtherData(t *testing.T, db string, now time.Time, empty bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	oldVersion, err := chschema.ParseVersion(strings.TrimSpace(mustQuery(ctx, t, serverVersionSQL)))
	if err != nil {
		t.Fatal(err)
	}

	// What the parameterised reads ask about: the busiest app, phone, address and device.
	rp := readParams{ruleVersion: "v-none", app: "app-none", lookups: []LookupKey{{PhoneHash: strings.Repeat("0", 64)}, {IP: "192.0.2.1"}, {DeviceID: "none"}},
		scoreKeys: []EventKey{{"app-none", "e-none"}}}
	if !empty {
		top := func(col, where string) string {
			return strings.TrimSpace(mustQuery(ctx, t, fmt.Sprintf("SELECT %s FROM %s.verify_events WHERE %s GROUP BY %s ORDER BY count() DESC, %s LIMIT 1", col, db, where, col, col)))
		}
		rp.app = top("app_id", "1")
		rp.lookups = []LookupKey{{PhoneHash: top("phone_hash", "1")}, {IP: top("ip", "1")}, {DeviceID: top("device_id", "device_id != ''")}}
		rp.ruleVersion = strings.TrimSpace(mustQuery(ctx, t, "SELECT version FROM "+db+".rule_versions ORDER BY loaded_at DESC, version LIMIT 1"))
		for _, line := range strings.Split(strings.TrimSpace(mustQuery(ctx, t, "SELECT app_id, event_id FROM "+db+".risk_scores ORDER BY app_id, event_id LIMIT 5")), "\n") {
			if app, id, ok := strings.Cut(line, "\t"); ok {
				rp.scoreKeys = append(rp.scoreKeys, EventKey{app, id})
			}
		}
	}
	// chDB takes the schema as 18.16 has it, then the rows, then upgrades: the migrations a newer
	// release applies run on tables that hold the data, as on a server upgraded in place.
	build := func(v chschema.Version, tables []tableCopy) (*crossPlan, error) {
		p, migs, err := newCrossPlan(db, now, oldVersion)
		if err != nil {
			return nil, err
		}
		for _, tc := range tables {
			if tc.rows == 0 {
				continue // ClickHouse refuses an INSERT without rows (NO_DATA_TO_INSERT)
			}
			st := xstep{Name: "insert " + tc.table + ": copied from 18.16", SQL: "INSERT INTO " + db + "." + tc.table + " FORMAT TabSeparated",
				DataFile: tc.file, kind: stepInsert}
			if tc.states {
				// Binary uniq states: chDB reads the file itself (the runner sends text as UTF-8).
				st.SQL, st.DataFile = "INSERT INTO "+db+"."+tc.table+" FROM INFILE '"+strings.ReplaceAll(tc.file, "'", "\\'")+"' FORMAT TabSeparated", ""
			}
			p.steps = append(p.steps, st)
		}
		if err := p.addUpgrade(migs, v); err != nil {
			return nil, err
		}
		if err := p.addBackfill(); err != nil {
			return nil, err
		}
		return p, p.addReads(migs, rp)
	}

	// The tables as 18.16 stores them (SELECT *: every copy of a re-delivered row not merged yet,
	// inserted_at), then the hourly views' states: the copies 18.16 has merged away since (a
	// re-delivered event scored otherwise the second time: ReplacingMergeTree keeps the latest
	// scoring) are no longer in risk_scores, but the views counted them under every score and rule
	// they got; the states, uniq sets, add them back to what chDB's views count of the copied rows.
	dir := t.TempDir()
	var tables []tableCopy
	rows := 0
	if !empty {
		for _, table := range []string{"verify_events", "risk_scores", "rule_versions", "backtest_runs", "risk_decisions", "labels",
			"verify_events_hourly", "risk_scores_hourly", "rule_hits_hourly"} {
			tc := tableCopy{table: table, file: filepath.Join(dir, table+".tsv"), states: strings.HasSuffix(table, "_hourly")}
			f, err := os.Create(tc.file)
			if err != nil {
				t.Fatal(err)
			}
			err = httpQueryTo(ctx, "SELECT * FROM "+db+"."+table+" FORMAT TabSeparated", f)
			f.Close()
			if err != nil {
				t.Fatalf("copy %s.%s: %v", db, table, err)
			}
			n, _ := strconv.Atoi(strings.TrimSpace(mustQuery(ctx, t, "SELECT count() FROM "+db+"."+table)))
			t.Logf("%s: %d rows stored on 18.16", table, n)
			rows += n
			tc.rows = n
			tables = append(tables, tc)
		}
	}
	oldPlan, err := build(oldVersion, nil)
	if err != nil {
		t.Fatal(err)
	}
	oldResults := runOnServer(ctx, oldPlan)
	newPlan, err := build(chdbVersion(ctx, t), tables)
	if err != nil {
		t.Fatal(err)
	}
	res := runOnChdb(ctx, t, newPlan)
	dumpResults(t, newPlan, oldResults, res.byName())
	c := crossCheck{oldVersion: oldVersion.String(), emptyOK: true}
	if !empty {
		c.approx = 0.01
	}
	counts, failed := checkCross(t, oldPlan, newPlan, oldResults, res, c)
	what := "an empty database"
	if !empty {
		what = fmt.Sprintf("database %s (%d rows copied)", db, rows)
	}
	t.Logf("other data: %s, ClickHouse %s (UTC) and %s (chDB %s, %s), clock pinned at %s: %d statements compared, %d within the uniq tolerance, %d failed; chDB %.1fs",
		what, oldVersion, res.Version, res.Chdb, res.TimeZone, now.Format(time.RFC3339), counts[stepCompare], counts["approx"], failed, res.Seconds)
}

// tableCopy is one table copied from the 18.16 server into a file of TabSeparated rows, and
// how many rows it holds.
type tableCopy struct {
	table, file string
	rows        int
	states      bool // an hourly view's table: aggregate states, binary
}

// crossCheck says how checkCross compares.
type crossCheck struct {
	oldVersion string
	approx     float64 // >0: numbers within this relative difference are the same (uniq estimates)
	emptyOK    bool    // a read may find nothing on both servers
}

// checkCross reports every statement that failed on either side or answered differently, and
// returns the statements per kind that ran on chDB ("approx": compared within c.approx only) and
// the number that failed.
func checkCross(t *testing.T, oldPlan, newPlan *crossPlan, oldResults map[string]stepResult, res chdbRun, c crossCheck) (map[string]int, int) {
	t.Helper()
	newResults := res.byName()
	counts := map[string]int{}
	failed := 0
	// A migration statement sent again is in effect on each server, whatever the other applies.
	for _, side := range []struct {
		name    string
		plan    *crossPlan
		results map[string]stepResult
	}{{"ClickHouse " + c.oldVersion, oldPlan, oldResults}, {"chDB " + res.Version, newPlan, newResults}} {
		for _, s := range side.plan.steps {
			if s.kind != stepAgain {
				continue
			}
			r, ok := side.results[s.Name]
			if !ok {
				t.Errorf("%s: no result for %s", side.name, s.Name)
				failed++
			} else if ex := serverError(r.Error); !r.OK && (ex == nil || !alreadyExists(ex)) {
				t.Errorf("%s: %s: the migrator would stop at %q\n%s", side.name, s.Name, r.Error, clip(s.SQL))
				failed++
			}
		}
	}
	for _, s := range newPlan.steps {
		nr, ok := newResults[s.Name]
		switch {
		case !ok:
			t.Errorf("chDB: no result for %s", s.Name)
			failed++
			continue
		case s.kind == stepAgain: // checked above
			counts[s.kind]++
			continue
		case !nr.OK:
			t.Errorf("chDB %s: %s failed:\n%s\n%s", res.Version, s.Name, nr.Error, clip(s.SQL))
			failed++
			continue
		}
		counts[s.kind]++
		if s.kind == stepMigration || s.kind == stepInsert {
			continue
		}
		or, ok := oldResults[s.Name]
		switch {
		case !ok:
			t.Errorf("18.16: no result for %s", s.Name)
			failed++
		case !or.OK:
			t.Errorf("ClickHouse %s: %s failed:\n%s\n%s", c.oldVersion, s.Name, or.Error, clip(s.SQL))
			failed++
		case s.kind == stepExpect:
			if want := s.expect(oldPlan.current); or.Output != want {
				t.Errorf("ClickHouse %s: %s:\n got %q\nwant %q", c.oldVersion, s.Name, or.Output, want)
				failed++
			}
			if want := s.expect(newPlan.current); nr.Output != want {
				t.Errorf("chDB %s: %s:\n got %q\nwant %q", res.Version, s.Name, nr.Output, want)
				failed++
			}
		case s.kind == stepCompare:
			diff := sameResults(or.Output, nr.Output, s.ordered)
			if diff != "" && c.approx > 0 && sameResultsWithin(or.Output, nr.Output, s.ordered, c.approx) == "" {
				counts["approx"]++
				t.Logf("%s: the same within %.0f %% (uniq estimates): %s", s.Name, 100*c.approx, diff)
				diff = ""
			}
			if diff != "" {
				t.Errorf("%s: results differ between ClickHouse %s and %s: %s\n%s", s.Name, c.oldVersion, res.Version, diff, clip(s.SQL))
				failed++
			} else if strings.TrimSpace(or.Output) == "" && !c.emptyOK && !emptyAllowed(s.Name) {
				t.Errorf("%s: no rows on either server; the fixture should give it some\n%s", s.Name, clip(s.SQL))
				failed++
			}
		}
	}
	return counts, failed
}

// chdbScript is deploy/local/chdb.sh, which installs chDB if needed and runs the runner.
var chdbScript = filepath.Join("..", "..", "deploy", "local", "chdb.sh")

// chdbVersion is the release of ClickHouse chDB embeds.
func chdbVersion(ctx context.Context, t *testing.T) chschema.Version {
	t.Helper()
	out, err := exec.CommandContext(ctx, chdbScript, "version").Output()
	if err != nil {
		t.Fatalf("%s version: %v (%s)", chdbScript, err, stderrOf(err))
	}
	v, err := chschema.ParseVersion(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// chdbTimeZone is the server time zone chDB runs in, while the 18.16 server runs in UTC (its
// config): riskflow's statements must not depend on the server's zone, and one five hours and 45
// minutes from UTC moves every window that rounds now() in it (toStartOfHour(now()) of a server
// at UTC+5:45 is a quarter to the UTC hour) and every day it cuts.
const chdbTimeZone = "Asia/Kathmandu"

// chdbRun is what the chDB runner answered for a plan.
type chdbRun struct {
	Version  string       `json:"version"`
	TimeZone string       `json:"timezone"`
	Chdb     string       `json:"chdb"`
	Seconds  float64      `json:"seconds"`
	Steps    []stepResult `json:"steps"`
}

func (r chdbRun) byName() map[string]stepResult {
	m := make(map[string]stepResult, len(r.Steps))
	for _, s := range r.Steps {
		m[s.Name] = s
	}
	return m
}

// runOnChdb runs the whole plan, as text, in a fresh chDB session.
func runOnChdb(ctx context.Context, t *testing.T, p *crossPlan) chdbRun {
	t.Helper()
	dir := t.TempDir()
	planFile, outFile := filepath.Join(dir, "plan.json"), filepath.Join(dir, "results.json")
	b, err := json.Marshal(map[string]any{"timezone": chdbTimeZone, "steps": p.steps})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(planFile, b, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, chdbScript, "run", planFile, outFile)
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("chDB runner: %v", err)
	}
	var res chdbRun
	if b, err = os.ReadFile(outFile); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	if res.TimeZone != chdbTimeZone {
		t.Fatalf("chDB ran in time zone %q, not %s", res.TimeZone, chdbTimeZone)
	}
	return res
}

// runOnServer runs every statement of the plan but the migrations and inserts (chsink sent those)
// on the 18.16 server over HTTP.
func runOnServer(ctx context.Context, p *crossPlan) map[string]stepResult {
	out := map[string]stepResult{}
	for _, s := range p.steps {
		if s.kind == stepMigration || s.kind == stepInsert {
			continue
		}
		o, err := httpQuery(ctx, s.SQL, s.Result)
		out[s.Name] = stepResult{Name: s.Name, OK: err == nil, Error: errText(err), Output: o}
	}
	return out
}

// dumpResults keeps, with RISKFLOW_CROSS_DUMP=DIR, what both servers answered, one file per
// statement and server.
func dumpResults(t *testing.T, p *crossPlan, oldResults, newResults map[string]stepResult) {
	dump := os.Getenv("RISKFLOW_CROSS_DUMP")
	if dump == "" {
		return
	}
	if err := os.MkdirAll(dump, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, s := range p.steps {
		if !s.Result {
			continue
		}
		base := filepath.Join(dump, fmt.Sprintf("%03d_%s", i, strings.Map(func(r rune) rune {
			if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' {
				return r
			}
			return '_'
		}, strings.ToLower(s.Name))))
		_ = os.WriteFile(base+".sql", []byte(s.SQL+"\n"), 0o644)
		_ = os.WriteFile(base+".18.tsv", []byte(oldResults[s.Name].Output+oldResults[s.Name].Error), 0o644)
		_ = os.WriteFile(base+".chdb.tsv", []byte(newResults[s.Name].Output+newResults[s.Name].Error), 0o644)
	}
}

func mustQuery(ctx context.Context, t *testing.T, sql string) string {
	t.Helper()
	out, err := httpQuery(ctx, sql, true)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return out
}

type stepResult struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Error  string `json:"error"`
	Output string `json:"output"`
}

// emptyAllowed names the compared statements that may find nothing in the fixture.
func emptyAllowed(name string) bool {
	return strings.HasPrefix(name, "migrate: ") || strings.HasPrefix(name, "backtest read ")
}

func missing(all, some []string) (out []string) {
	for _, a := range all {
		if !slices.Contains(some, a) {
			out = append(out, a)
		}
	}
	return out
}

func clickhouseHTTP() string {
	if a := os.Getenv("RISKFLOW_CLICKHOUSE_HTTP"); a != "" {
		return a
	}
	return "127.0.0.1:18123"
}

// httpQuery runs one statement on the 18.16 server; a SELECT answers TabSeparated.
func httpQuery(ctx context.Context, sql string, result bool) (string, error) {
	if result {
		sql += "\nFORMAT TabSeparated"
	}
	var b strings.Builder
	err := httpQueryTo(ctx, sql, &b)
	return b.String(), err
}

// httpQueryTo runs one statement on the 18.16 server and copies its answer to w.
func httpQueryTo(ctx context.Context, sql string, w io.Writer) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+clickhouseHTTP()+"/?"+url.Values{"max_execution_time": {"60"}}.Encode(), strings.NewReader(sql))
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		return fmt.Errorf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(body)))
	}
	_, err = io.Copy(w, resp.Body)
	return err
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func stderrOf(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return string(ee.Stderr)
	}
	return ""
}

func clip(s string) string {
	if len(s) > 1500 {
		return s[:1500] + " …"
	}
	return s
}

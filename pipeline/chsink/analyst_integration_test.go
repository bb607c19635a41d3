//go:build integration

package chsink

import (
	"context"
	"fmt"
	"io/fs"
	"math"
	"path"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	chschema "github.com/riskflow/riskflow/deploy/clickhouse"
	"github.com/riskflow/riskflow/deploy/grafana"
	"github.com/riskflow/riskflow/schemas"
)

// recentRecords are n scored events over the last hours (the documented queries look at
// the last day or two), spread over apps, carriers, IPs, failure codes and verdicts.
func recentRecords(n int) []schemas.ScoreRecord {
	now := time.Now().UTC().Truncate(time.Second)
	h := schemas.NewPhoneHasher([]byte("test key"))
	carriers := []string{"CM", "CU", "CT"}
	scores := []int{0, 0, 0, 300, 600, 900}
	out := make([]schemas.ScoreRecord, n)
	for i := range out {
		phone := fmt.Sprintf("1380013%04d", i%400)
		r := schemas.ScoreRecord{
			// Two apps numbering their attempts alike: app-0's and app-1's ids are the same
			// n/2 ids, and every (app, id) is one event.
			EventID:      fmt.Sprintf("an-%06d", i/2),
			TS:           now.Add(-time.Duration(i) * 10 * time.Second),
			AppID:        fmt.Sprintf("app-%d", i%2),
			Flow:         schemas.FlowOneClickLogin,
			PhoneHash:    h.Hex(phone),
			PhoneMasked:  schemas.MaskPhone(phone),
			PhoneSegment: schemas.PhoneSegment(phone),
			IP:           fmt.Sprintf("10.1.%d.%d", i%7, i%30),
			Carrier:      carriers[i%3],
			Platform:     "android",
			DeviceID:     fmt.Sprintf("dev-%d", i%90),
			Outcome:      schemas.OutcomeSuccess,
			Geo:          schemas.Geo{Country: "CN", Province: "Guangdong", City: "Shenzhen", ASN: 9808, IPType: "mobile"},
			Score:        scores[i%len(scores)],
			RulesVersion: []string{"v1", "v2"}[i%2],
		}
		if i%4 == 0 {
			r.Outcome, r.ErrorCode = schemas.OutcomeFail, []string{"103911", "-40101"}[i%8/4]
		}
		r.ScoredAt = r.TS.Add(50 * time.Millisecond)
		r.Hits = []schemas.RuleHit{{Rule: "odd_hour", Tag: "odd_hour", Score: 300, Mode: "shadow", Reason: "night"}}
		if r.Score > 0 {
			r.Tags = []string{"phone_velocity"}
			r.Detail = map[string]schemas.TagDetail{"phone_velocity": {Score: r.Score, Reason: "many"}}
			r.Hits = append(r.Hits, schemas.RuleHit{Rule: "phone_velocity_observe", Tag: "phone_velocity", Score: r.Score, Mode: "enforce", Reason: "many"})
		}
		out[i] = r
	}
	return out
}

// statementsOf reads one SQL file of the embedded fs with the database name substituted, as
// the migrator does.
func statementsOf(t *testing.T, fsys fs.FS, file, db string) []string {
	t.Helper()
	src, err := fs.ReadFile(fsys, file)
	if err != nil {
		t.Fatal(err)
	}
	stmts, err := splitSQL(string(src), db)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return stmts
}

// runQuery runs a SELECT and returns its rows as text, one string per row.
func runQuery(t *testing.T, st *Store, q string) []string {
	t.Helper()
	rows, err := st.conn.Query(testContext(t), q)
	if err != nil {
		t.Fatalf("%v\n%s", err, q)
	}
	defer rows.Close()
	types := rows.ColumnTypes()
	var out []string
	for rows.Next() {
		vals := make([]any, len(types))
		for i, ct := range types {
			vals[i] = newScanTarget(ct.ScanType())
		}
		if err := rows.Scan(vals...); err != nil {
			t.Fatalf("scan: %v\n%s", err, q)
		}
		var cells []string
		for _, v := range vals {
			cells = append(cells, fmt.Sprint(deref(v)))
		}
		out = append(out, strings.Join(cells, " | "))
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%v\n%s", err, q)
	}
	return out
}

// The hourly views count every event once, however often it is written, and the backfill
// re-counts nothing — also merged across apps whose event ids are the same (0015); every
// documented query runs on the migrated schema.
func TestAnalystViewsAndQueries(t *testing.T) {
	st := migrated(t)
	ctx := testContext(t)
	const n = 3000
	recs := recentRecords(n)
	// Everything twice (a retried batch), part of it three times.
	for _, b := range [][]schemas.ScoreRecord{recs, recs, recs[:500]} {
		if err := st.WriteBatch(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	wantFails := uint64(0)
	wantScore := map[int]uint64{}
	for _, r := range recs {
		if r.Outcome == schemas.OutcomeFail {
			wantFails++
		}
		wantScore[r.Score]++
	}

	checkViews := func(when string) {
		t.Helper()
		if got := queryUint(t, st, "SELECT uniqMerge(events) FROM "+st.table("verify_events_hourly")); got != n {
			t.Errorf("%s: verify_events_hourly counts %d events, want %d", when, got, n)
		}
		if got := queryUint(t, st, "SELECT sum(e) FROM (SELECT hour, app_id, uniqMerge(events) AS e FROM "+st.table("verify_events_hourly")+" GROUP BY hour, app_id)"); got != n {
			t.Errorf("%s: per hour and app the views count %d events, want %d", when, got, n)
		}
		if got := queryUint(t, st, "SELECT uniqMergeIf(events, outcome = 'fail') FROM "+st.table("verify_events_hourly")); got != wantFails {
			t.Errorf("%s: %d failures, want %d", when, got, wantFails)
		}
		if got := queryUint(t, st, "SELECT uniqMerge(phones) FROM "+st.table("verify_events_hourly")); got != 400 {
			t.Errorf("%s: %d distinct phones, want 400", when, got)
		}
		if got := queryUint(t, st, "SELECT uniqIfMerge(devices) FROM "+st.table("verify_events_hourly")); got != 90 {
			t.Errorf("%s: %d distinct devices, want 90", when, got)
		}
		for score, want := range wantScore {
			col := fmt.Sprintf("score_%d", score)
			if got := queryUint(t, st, "SELECT uniqIfMerge("+col+") FROM "+st.table("risk_scores_hourly")); got != want {
				t.Errorf("%s: %s = %d, want %d", when, col, got, want)
			}
		}
		if got := queryUint(t, st, "SELECT uniqMerge(events) FROM "+st.table("risk_scores_hourly")+" WHERE rules_version = 'v1'"); got != n/2 {
			t.Errorf("%s: v1 scored %d, want %d", when, got, n/2)
		}
		if got := queryUint(t, st, "SELECT uniqMerge(events) FROM "+st.table("rule_hits_hourly")+" WHERE mode = 'shadow' AND rule = 'odd_hour'"); got != n {
			t.Errorf("%s: shadow odd_hour hits %d, want %d", when, got, n)
		}
		if got := queryUint(t, st, "SELECT uniqMerge(events) FROM "+st.table("rule_hits_hourly")+" WHERE tag = 'phone_velocity'"); got != wantScore[300]+wantScore[600]+wantScore[900] {
			t.Errorf("%s: phone_velocity tagged %d", when, got)
		}
	}
	checkViews("after writing")

	// The backfill, twice: the same numbers.
	files, err := fs.Glob(chschema.Backfill, "backfill/*.sql")
	if err != nil || len(files) == 0 {
		t.Fatalf("backfill files: %v %v", files, err)
	}
	for range 2 {
		for _, f := range files {
			for _, stmt := range statementsOf(t, chschema.Backfill, f, st.db) {
				if err := st.conn.Exec(ctx, stmt); err != nil {
					t.Fatalf("%s: %v\n%s", f, err, stmt)
				}
			}
		}
	}
	checkViews("after two backfills")
	if err := st.conn.Exec(ctx, "OPTIMIZE TABLE "+st.table("risk_scores_hourly")+" FINAL"); err != nil {
		t.Fatal(err)
	}
	checkViews("after merging")

	// A backtest run for backtest_runs_recent.
	p, r := 0.5, 0.25
	run := BacktestRun{
		RunID: "bt-it-1", StartedAt: time.Now(), FinishedAt: time.Now(), From: time.Now().Add(-time.Hour), To: time.Now(),
		CurrentName: "default", CurrentVersion: "aaaa", CandidateName: "default", CandidateVersion: "bbbb",
		Events: 10, ChangedEvents: 2, EventsPerSec: 1234.5,
		TransitionFrom: []uint16{0, 0, 300}, TransitionTo: []uint16{0, 300, 300}, TransitionCount: []uint64{8, 2, 0},
		RuleIDs: []string{"phone_velocity_observe", "odd_hour"}, RuleCurrentHits: []uint64{0, 3}, RuleCandidateHits: []uint64{2, 3},
		RuleGained: []uint64{2, 0}, RuleLost: []uint64{0, 0},
		FlagAt: 600, Labeled: 4, CurrentPrecision: &p, CandidateRecall: &r,
	}
	if err := st.RecordBacktestRun(ctx, run); err != nil {
		t.Fatal(err)
	}

	// Every documented query, as it is but for the database name.
	queries, err := fs.Glob(chschema.Queries, "queries/*.sql")
	if err != nil || len(queries) < 5 {
		t.Fatalf("query files: %v %v", queries, err)
	}
	results := map[string][]string{}
	for _, f := range queries {
		stmts := statementsOf(t, chschema.Queries, f, st.db)
		if len(stmts) != 1 {
			t.Fatalf("%s: %d statements", f, len(stmts))
		}
		rows := runQuery(t, st, stmts[0])
		name := strings.TrimSuffix(path.Base(f), ".sql")
		results[name] = rows
		t.Logf("%s: %d rows; first: %q", name, len(rows), first(rows))
	}
	// Each query finds what was written.
	for name, min := range map[string]int{
		"top_risky_ips": 1, "tag_trends": 1, "carrier_failure_spikes": 1, "score_drift": 2,
		"rule_hit_rates": 2, "backtest_runs_recent": 1, "hourly_traffic": 1,
	} {
		if len(results[name]) < min {
			t.Errorf("%s returned %d rows, want at least %d", name, len(results[name]), min)
		}
	}
	if got := first(results["backtest_runs_recent"]); !strings.Contains(got, "0→300: 2") || !strings.Contains(got, "phone_velocity_observe +2/-0") || strings.Contains(got, "odd_hour") {
		t.Errorf("backtest_runs_recent row: %s", got)
	}
	if got := strings.Join(results["rule_hit_rates"], "\n"); !strings.Contains(got, "odd_hour | shadow") || !strings.Contains(got, "phone_velocity_observe | enforce") {
		t.Errorf("rule_hit_rates:\n%s", got)
	}

	// The run row round-trips, NULLs included.
	var cp, cr *float64
	var labeled uint64
	if err := st.conn.QueryRow(ctx, "SELECT current_precision, current_recall, labeled FROM "+st.table("backtest_runs")+" FINAL WHERE run_id = 'bt-it-1'").Scan(&cp, &cr, &labeled); err != nil {
		t.Fatal(err)
	}
	if cp == nil || *cp != 0.5 || cr != nil || labeled != 4 {
		t.Errorf("precision %v recall %v labeled %d", cp, cr, labeled)
	}
	if err := st.RecordBacktestRun(ctx, BacktestRun{RunID: "x", StartedAt: time.Now(), FinishedAt: time.Now(), From: time.Now(), To: time.Now(),
		TransitionFrom: []uint16{1}}); err == nil {
		t.Error("ragged transition slices accepted")
	}
	nan := math.NaN()
	if err := st.RecordBacktestRun(ctx, BacktestRun{RunID: "x", StartedAt: time.Now(), FinishedAt: time.Now(), From: time.Now(), To: time.Now(),
		CurrentRecall: &nan}); err == nil {
		t.Error("NaN recall accepted")
	}
}

// A batch written twice — by an archiver whose shutdown drain (consumers.DefaultDrainTimeout)
// its 100,000-record INSERT outlasted, and then by the partitions' next owner, in other batches —
// changes no number an analyst reads: every shipped query and every ClickHouse panel of the
// dashboards answers on the doubled table what it answers on the table written once (they read
// with FINAL, uniq or the hourly views' uniq states), before background merges and after.
func TestShippedQueriesReadADoubleWrittenBatchOnce(t *testing.T) {
	once, twice := migrated(t), migrated(t)
	ctx := testContext(t)
	recs := recentRecords(3000)
	if err := once.WriteBatch(ctx, recs); err != nil {
		t.Fatal(err)
	}
	// The first owner's batches, then the next owner's re-reading of the last one and more, cut
	// where its own batches end.
	for _, b := range [][]schemas.ScoreRecord{recs[:1000], recs[1000:2200], recs[2200:], recs[1000:1700], recs[1700:2600]} {
		if err := twice.WriteBatch(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	if n := queryUint(t, twice, "SELECT count() FROM "+twice.table("verify_events")); n != 4600 {
		t.Fatalf("%d rows in verify_events, want the 1,600 doubles as well (4,600): the test proves nothing", n)
	}
	now := time.Now().UTC().Truncate(time.Hour).Add(time.Hour)
	queries := map[string]string{}
	files, err := fs.Glob(chschema.Queries, "queries/*.sql")
	if err != nil || len(files) < 5 {
		t.Fatalf("query files: %v %v", files, err)
	}
	for _, f := range files {
		queries[f] = strings.Join(statementsOf(t, chschema.Queries, f, "riskflow"), ";")
	}
	panels, err := grafana.ClickHousePanels()
	if err != nil || len(panels) == 0 {
		t.Fatalf("dashboard panels: %d, %v", len(panels), err)
	}
	for _, pn := range panels {
		sql, err := grafana.ExpandMacros(pn.SQL, now.Add(-7*24*time.Hour), now, time.Hour)
		if err != nil {
			t.Fatalf("%s: %v", pn.Name(), err)
		}
		queries["panel "+pn.Name()] = sql
	}
	in := func(st *Store, sql string) string {
		return regexp.MustCompile(`\briskflow\.`).ReplaceAllLiteralString(sql, st.db+".")
	}
	compare := func(when string) {
		t.Helper()
		for name, sql := range queries {
			want, got := runQuery(t, once, in(once, sql)), runQuery(t, twice, in(twice, sql))
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("%s: %s reads the doubled batch otherwise:\n%s\nwritten once:\n%s", when, name, strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		}
	}
	compare("before merges")
	for _, table := range []string{"verify_events", "risk_scores", "verify_events_hourly", "risk_scores_hourly", "rule_hits_hourly"} {
		for _, st := range []*Store{once, twice} {
			if err := st.conn.Exec(ctx, "OPTIMIZE TABLE "+st.table(table)+" FINAL"); err != nil {
				t.Fatal(err)
			}
		}
	}
	compare("after merges")
}

func newScanTarget(t reflect.Type) any { return reflect.New(t).Interface() }

// deref turns a scan target back into a value to print; NULL for a nil Nullable.
func deref(v any) any {
	x := reflect.ValueOf(v).Elem()
	if x.Kind() == reflect.Pointer {
		if x.IsNil() {
			return "NULL"
		}
		x = x.Elem()
	}
	return x.Interface()
}

func first(rows []string) string {
	if len(rows) == 0 {
		return ""
	}
	return rows[0]
}

// ReadEvents returns every event of the period once, in ts order, across chunks.
func TestReadEvents(t *testing.T) {
	st := migrated(t)
	ctx := testContext(t)
	recs := make([]schemas.ScoreRecord, 5000)
	for i := range recs {
		recs[i] = testRecord(i) // every 7 min from 2024-05-01 10:00 UTC: about 24 days
	}
	// Re-delivered copies and a shuffled insert order do not matter.
	if err := st.WriteBatch(ctx, recs[2000:]); err != nil {
		t.Fatal(err)
	}
	if err := st.WriteBatch(ctx, recs[:3000]); err != nil {
		t.Fatal(err)
	}
	from, to := recs[100].TS, recs[4000].TS // [100, 4000)
	for _, opts := range []ReadOptions{{}, {Chunk: 5 * time.Hour, Batch: 7}, {Chunk: 72 * time.Hour}} {
		rd, err := st.ReadEvents(ctx, from, to, opts)
		if err != nil {
			t.Fatal(err)
		}
		var got []StoredEvent
		for {
			e, ok, err := rd.Next(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				break
			}
			got = append(got, e)
		}
		if err := rd.Close(); err != nil {
			t.Fatal(err)
		}
		if len(got) != 3900 || rd.Rows() != 3900 {
			t.Fatalf("%+v: read %d events, want 3900", opts, len(got))
		}
		for i, e := range got {
			want := recs[100+i]
			if e.EventID != want.EventID || !e.TS.Equal(want.TS) || e.PhoneHash != want.PhoneHash || e.PhoneSegment != want.PhoneSegment ||
				e.IP != want.IP || e.AppID != want.AppID || e.DeviceID != want.DeviceID || e.Carrier != want.Carrier ||
				e.Outcome != want.Outcome || e.TokenDigest != want.TokenDigest || e.Flow != want.Flow || e.Platform != want.Platform {
				t.Fatalf("%+v: event %d = %+v, want %s at %s", opts, i, e, want.EventID, want.TS)
			}
		}
	}

	// Same second: ordered by event id.
	a, b := testRecord(9001), testRecord(9000)
	a.TS, b.TS = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := st.WriteBatch(ctx, []schemas.ScoreRecord{a, b}); err != nil {
		t.Fatal(err)
	}
	rd, err := st.ReadEvents(ctx, a.TS, a.TS.Add(time.Second), ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for {
		e, ok, err := rd.Next(ctx)
		if err != nil || !ok {
			break
		}
		ids = append(ids, e.EventID)
	}
	rd.Close()
	if !slices.Equal(ids, []string{"ev-009000", "ev-009001"}) {
		t.Errorf("same second: %q", ids)
	}

	// Stopping early: Close ends the background read without an error.
	rd, err = st.ReadEvents(ctx, recs[0].TS, recs[4999].TS, ReadOptions{Chunk: time.Hour, Batch: 10})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := rd.Next(ctx); !ok || err != nil {
		t.Fatalf("first event: %v %v", ok, err)
	}
	if err := rd.Close(); err != nil {
		t.Errorf("close after one event: %v", err)
	}

	// A cancelled context ends Next with its error.
	cctx, cancel := context.WithCancel(ctx)
	rd, err = st.ReadEvents(cctx, recs[0].TS, recs[4999].TS, ReadOptions{Batch: 10})
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	for {
		_, ok, err := rd.Next(cctx)
		if err != nil {
			break
		}
		if !ok {
			t.Error("a cancelled read ended without an error")
			break
		}
	}
	rd.Close()

	for _, bad := range [][2]time.Time{{to, from}, {from, from}, {time.Time{}, to}} {
		if _, err := st.ReadEvents(ctx, bad[0], bad[1], ReadOptions{}); err == nil {
			t.Errorf("period %v: no error", bad)
		}
	}
}

// A period of decades with a few days of events is read with a query per day that has events,
// not one per day (`riskflow backtest --from 2000-01-01` sent 9,800 queries), and still
// returns every event in order, whatever the chunk.
func TestReadEventsSkipsEmptyDays(t *testing.T) {
	st := migrated(t)
	ctx := testContext(t)
	var recs []schemas.ScoreRecord
	for i, ts := range []time.Time{
		time.Date(2001, 3, 4, 23, 59, 59, 0, time.UTC),
		time.Date(2001, 3, 5, 0, 0, 0, 0, time.UTC),
		time.Date(2013, 7, 1, 12, 0, 0, 0, time.UTC),
		time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC),
		time.Date(2024, 5, 1, 10, 0, 1, 0, time.UTC),
		time.Date(2024, 5, 3, 1, 0, 0, 0, time.UTC),
	} {
		r := testRecord(i)
		r.TS = ts
		recs = append(recs, r)
	}
	if err := st.WriteBatch(ctx, recs); err != nil {
		t.Fatal(err)
	}
	from, to := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 12, 6, 16, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		opts    ReadOptions
		queries int
	}{
		// the list of days, then days 2001-03-04, 2001-03-05, 2013-07-01, 2024-05-01, 2024-05-03,
		// then the list again after the last one (nothing new)
		{ReadOptions{}, 1 + 5 + 1},
		// 5-hour chunks: the five of each day with events, from its midnight or from where the
		// previous day's last chunk ended (2001-03-05 01:00), into the next day
		{ReadOptions{Chunk: 5 * time.Hour, Batch: 2}, 1 + 5*5 + 1},
		// 3-day chunks from the day's midnight: 2001-03-04 to 07, 2013-07-01 to 04, 2024-05-01 to 04
		{ReadOptions{Chunk: 72 * time.Hour}, 1 + 3 + 1},
	} {
		rd, err := st.ReadEvents(ctx, from, to, c.opts)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for {
			e, ok, err := rd.Next(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				break
			}
			got = append(got, e.EventID+" "+e.TS.Format(time.RFC3339))
		}
		if err := rd.Close(); err != nil {
			t.Fatal(err)
		}
		var want []string
		for _, r := range recs {
			want = append(want, r.EventID+" "+r.TS.Format(time.RFC3339))
		}
		if !slices.Equal(got, want) {
			t.Errorf("%+v: read\n%s\nwant\n%s", c.opts, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		if rd.queries != c.queries {
			t.Errorf("%+v: %d queries, want %d", c.opts, rd.queries, c.queries)
		}
	}
}

// Events written, while a read is under way, into a day after the last one that had events
// when it began are read too: a backtest up to now meets what the archiver writes meanwhile.
func TestReadEventsMeetsEventsWrittenMeanwhile(t *testing.T) {
	st := migrated(t)
	ctx := testContext(t)
	var first []schemas.ScoreRecord
	for i := range 20 {
		r := testRecord(i)
		r.TS = time.Date(2024, 5, 1, 10, 0, i, 0, time.UTC)
		first = append(first, r)
	}
	if err := st.WriteBatch(ctx, first); err != nil {
		t.Fatal(err)
	}
	// One event per batch: the background read waits inside the first day until Next takes
	// the first day's events (the stream holds 4 batches and Next one).
	rd, err := st.ReadEvents(ctx, first[0].TS, time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC), ReadOptions{Batch: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	if _, ok, err := rd.Next(ctx); !ok || err != nil {
		t.Fatalf("first event: %v %v", ok, err)
	}
	later := testRecord(100)
	later.TS = time.Date(2024, 5, 20, 8, 0, 0, 0, time.UTC)
	if err := st.WriteBatch(ctx, []schemas.ScoreRecord{later}); err != nil {
		t.Fatal(err)
	}
	n, last := 1, ""
	for {
		e, ok, err := rd.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		n, last = n+1, e.EventID
	}
	if n != 21 || last != later.EventID {
		t.Errorf("read %d events, the last %q; want 21, the last %q (written during the read)", n, last, later.EventID)
	}
}

// A stream consumed slower than Config.WriteTimeout still completes (the driver's read
// timeout covers a whole result stream), and ChunkTimeout bounds it instead.
func TestReadEventsSlowConsumer(t *testing.T) {
	st := migrated(t)
	ctx := testContext(t)
	recs := make([]schemas.ScoreRecord, 3000)
	for i := range recs {
		recs[i] = testRecord(i)
	}
	if err := st.WriteBatch(ctx, recs); err != nil {
		t.Fatal(err)
	}
	readBlockRows = 100
	t.Cleanup(func() { readBlockRows = 0 })
	short, err := Open(ctx, Config{Addr: clickhouseAddr(), Database: st.db, WriteTimeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer short.Close()
	slowRead := func(opts ReadOptions) (int, error) {
		rd, err := short.ReadEvents(ctx, recs[0].TS, recs[len(recs)-1].TS.Add(time.Second), opts)
		if err != nil {
			return 0, err
		}
		defer rd.Close()
		n := 0
		for {
			_, ok, err := rd.Next(ctx)
			if err != nil || !ok {
				return n, err
			}
			if n++; n%10 == 0 {
				time.Sleep(5 * time.Millisecond) // about 1.5 s in all
			}
		}
	}
	year := 365 * 24 * time.Hour // one chunk, one stream
	start := time.Now()
	if n, err := slowRead(ReadOptions{Chunk: year, Batch: 10}); err != nil || n != len(recs) {
		t.Errorf("slow consumer: %d rows, %v", n, err)
	}
	if time.Since(start) < 2*500*time.Millisecond {
		t.Errorf("the stream took %s, not longer than the write timeout: the test proves nothing", time.Since(start))
	}
	if n, err := slowRead(ReadOptions{Chunk: year, Batch: 10, ChunkTimeout: 700 * time.Millisecond}); err == nil {
		t.Errorf("a chunk timeout of 700ms let a 1.5s stream finish (%d rows)", n)
	}
}

// The daily queries answer whole China days: their window starts at a China midnight, so the
// oldest day they list holds all of that day's events. Cut at the hour 30 (14) days back, the
// oldest row was the tail of a day (at 15:30 UTC, 23:30 in China, one hour of it) and read as
// a day whose traffic had collapsed.
func TestDailyQueriesListWholeChinaDays(t *testing.T) {
	st := migrated(t)
	ctx := testContext(t)
	shanghai, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().In(shanghai)
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, shanghai)
	for _, c := range []struct {
		file string
		days int
	}{{"queries/daily_score_distribution.sql", 30}, {"queries/rule_hits_by_mode.sql", 14}} {
		t.Run(c.file, func(t *testing.T) {
			if err := st.conn.Exec(ctx, "TRUNCATE TABLE "+st.table("risk_scores_hourly")); err != nil {
				t.Fatal(err)
			}
			if err := st.conn.Exec(ctx, "TRUNCATE TABLE "+st.table("rule_hits_hourly")); err != nil {
				t.Fatal(err)
			}
			first := today.AddDate(0, 0, -(c.days - 1)) // the oldest whole China day of the window
			// The last minute of the hour the window started at until now: the day before first.
			cut := time.Now().UTC().Truncate(time.Hour).AddDate(0, 0, -c.days).Add(59 * time.Minute)
			var recs []schemas.ScoreRecord
			for i, ts := range []time.Time{first.Add(30 * time.Second), first.Add(90 * time.Minute), cut} {
				r := recentRecords(1)[0]
				r.EventID, r.TS, r.ScoredAt = fmt.Sprintf("day-%d", i), ts.UTC().Truncate(time.Second), ts.UTC()
				r.Hits = []schemas.RuleHit{{Rule: "r", Tag: "t", Score: 600, Mode: "enforce"}}
				recs = append(recs, r)
			}
			if err := st.WriteBatch(ctx, recs); err != nil {
				t.Fatal(err)
			}
			q := strings.Join(statementsOf(t, chschema.Queries, c.file, st.db), ";")
			rows := runQuery(t, st, q)
			if len(rows) != 1 {
				t.Fatalf("want one row, day %s with 2 events, got %d:\n%s", first.Format("2006-01-02"), len(rows), strings.Join(rows, "\n"))
			}
			if !strings.HasPrefix(rows[0], first.Format("2006-01-02")) {
				t.Errorf("want day %s, got %s", first.Format("2006-01-02"), rows[0])
			}
		})
	}
}

// A read broken off mid-stream (ClickHouse restarted: a proxy in front of it closes every
// connection) is taken up after the last row it read: every event once, in replay order, where a
// backtest of half an hour stopped with a partial report at the first restart. Rows share their
// second and their event id across apps, so the resumed query's place is found by all three
// columns of the order.
func TestReadEventsResumesAfterTheConnectionBroke(t *testing.T) {
	st := migrated(t)
	ctx := testContext(t)
	const n = 100_000
	base := time.Now().UTC().Add(-2 * time.Hour).Truncate(time.Hour)
	for lo := 0; lo < n; lo += 20_000 {
		recs := make([]schemas.ScoreRecord, 0, 20_000)
		for i := lo; i < lo+20_000; i++ {
			r := testRecord(i)
			r.TS = base.Add(time.Duration(i/50) * time.Second)
			r.EventID = fmt.Sprintf("ev-%06d", i/3)
			r.AppID = fmt.Sprintf("app-%d", i%3)
			recs = append(recs, r)
		}
		if err := st.WriteBatch(ctx, recs); err != nil {
			t.Fatal(err)
		}
	}
	readBlockRows = 100
	t.Cleanup(func() { readBlockRows = 0 })
	addr, cut := cuttingProxy(t)
	viaProxy, err := Open(ctx, Config{Addr: addr, Database: st.db})
	if err != nil {
		t.Fatal(err)
	}
	defer viaProxy.Close()
	var resumed []string
	rd, err := viaProxy.ReadEvents(ctx, base, base.Add(time.Hour), ReadOptions{Batch: 50,
		OnResume: func(attempt int, wait time.Duration, err error) {
			resumed = append(resumed, fmt.Sprintf("attempt %d in %s: %v", attempt, wait, err))
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	type key struct {
		ts        int64
		id, appID string
	}
	less := func(a, b key) bool {
		if a.ts != b.ts {
			return a.ts < b.ts
		}
		if a.id != b.id {
			return a.id < b.id
		}
		return a.appID < b.appID
	}
	var prev key
	read := 0
	for {
		ev, ok, err := rd.Next(ctx)
		if err != nil {
			t.Fatalf("after %d rows: %v (resumed: %v)", read, err, resumed)
		}
		if !ok {
			break
		}
		k := key{ev.TS.Unix(), ev.EventID, ev.AppID}
		if read > 0 && !less(prev, k) {
			t.Fatalf("row %d %v after %v: not in replay order, or read twice", read, k, prev)
		}
		prev = k
		if read++; read == 1000 {
			if c := cut(); c == 0 {
				t.Fatal("the read went through no connection of the proxy")
			}
		}
	}
	if read != n {
		t.Errorf("read %d events, want %d", read, n)
	}
	if len(resumed) == 0 {
		t.Fatal("the read was never resumed: the cut came after the whole result had been received, the test proves nothing")
	}
	t.Logf("resumed: %v", resumed)
}

//go:build integration

package chsink

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	chschema "github.com/riskflow/riskflow/deploy/clickhouse"
	"github.com/riskflow/riskflow/schemas"
)

// These tests need the ClickHouse server that deploy/local/clickhouse.sh starts, at
// RISKFLOW_CLICKHOUSE_ADDR (default 127.0.0.1:19000). Each test works in its own database,
// dropped at the end.

func clickhouseAddr() string {
	if a := os.Getenv("RISKFLOW_CLICKHOUSE_ADDR"); a != "" {
		return a
	}
	return "127.0.0.1:19000"
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// newTestStore opens a Store on a fresh, not yet created database, logging everything.
func newTestStore(t *testing.T) *Store {
	t.Helper()
	return newTestStoreAt(t, slog.LevelDebug)
}

// newTestStoreAt is newTestStore logging from level on.
func newTestStoreAt(t *testing.T, level slog.Level) *Store {
	t.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	db := fmt.Sprintf("riskflow_test_%d_%s", time.Now().Unix(), hex.EncodeToString(b[:]))
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: level}))
	st, err := Open(context.Background(), Config{Addr: clickhouseAddr(), Database: db}, WithLogger(log))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Ping(testContext(t)); err != nil {
		st.Close()
		t.Fatalf("ClickHouse at %s (start it with deploy/local/clickhouse.sh start): %v", clickhouseAddr(), err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := st.conn.Exec(ctx, "DROP DATABASE IF EXISTS "+db); err != nil {
			t.Errorf("drop %s: %v", db, err)
		}
		st.Close()
	})
	return st
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func queryUint(t *testing.T, st *Store, q string, args ...any) uint64 {
	t.Helper()
	var n uint64
	if err := st.conn.QueryRow(testContext(t), q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

func migrated(t *testing.T) *Store {
	t.Helper()
	st := newTestStore(t)
	if _, err := st.Migrate(testContext(t)); err != nil {
		t.Fatal(err)
	}
	return st
}

// wantMigrations is what Migrate applies to a new database on the test server: every file on
// ClickHouse 20.3 or newer, all but the version-conditional ones on 18.16 (CI's server). recorded
// is what schema_migrations then lists, as "id:name" separated by spaces.
func wantMigrations(t *testing.T, st *Store) (names []string, recorded string) {
	t.Helper()
	names = []string{"0001_database", "0002_verify_events", "0003_risk_scores", "0004_rule_versions", "0005_schema_migrations",
		"0006_verify_events_hourly", "0007_risk_scores_hourly", "0008_rule_hits_hourly", "0009_backtest_runs"}
	v, err := st.ServerVersion(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	if v.AtLeast(chschema.Version{20, 3}) {
		names = append(names, "0010_low_cardinality", "0011_retention_ttl")
	}
	names = append(names, "0012_risk_decisions", "0013_labels", "0014_console_state", "0015_hourly_events_per_app")
	if v.AtLeast(chschema.Version{20, 3}) {
		names = append(names, "0016_risk_decisions_ttl")
	}
	names = append(names, "0017_rule_loads")
	var rec []string
	for _, n := range names {
		id, _ := migrationID(n)
		rec = append(rec, fmt.Sprintf("%d:%s", id, n))
	}
	return names, strings.Join(rec, " ")
}

func TestMigrateTwice(t *testing.T) {
	st := newTestStore(t)
	ctx := testContext(t)
	got, err := st.Migrate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want, wantRecorded := wantMigrations(t, st)
	if !slices.Equal(got, want) {
		t.Errorf("first Migrate applied %q, want %q", got, want)
	}
	again, err := st.Migrate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(again) != 0 {
		t.Errorf("second Migrate applied %q, want nothing", again)
	}

	rows, err := st.conn.Query(ctx, "SELECT id, name FROM "+st.table("schema_migrations")+" FINAL ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	var recorded []string
	for rows.Next() {
		var id uint32
		var name string
		if err := rows.Scan(&id, &name); err != nil {
			t.Fatal(err)
		}
		recorded = append(recorded, fmt.Sprintf("%d:%s", id, name))
	}
	rows.Close()
	if strings.Join(recorded, " ") != wantRecorded {
		t.Errorf("schema_migrations: %q", recorded)
	}

	// What the server made of the DDL.
	engines := map[string]string{}
	rows, err = st.conn.Query(ctx, "SELECT name, engine FROM system.tables WHERE database = ?", st.db)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var name, engine string
		if err := rows.Scan(&name, &engine); err != nil {
			t.Fatal(err)
		}
		engines[name] = engine
	}
	rows.Close()
	for _, tb := range []string{"verify_events", "risk_scores", "rule_versions", "schema_migrations", "backtest_runs"} {
		if engines[tb] != "ReplacingMergeTree" {
			t.Errorf("table %s: engine %q", tb, engines[tb])
		}
	}
	for _, tb := range []string{"verify_events_hourly", "risk_scores_hourly", "rule_hits_hourly"} {
		if engines[tb] != "AggregatingMergeTree" {
			t.Errorf("table %s: engine %q", tb, engines[tb])
		}
		if engines[tb+"_mv"] != "MaterializedView" {
			t.Errorf("view %s_mv: engine %q", tb, engines[tb+"_mv"])
		}
	}
	if n := queryUint(t, st, "SELECT count() FROM system.columns WHERE database = ? AND (name = 'phone' OR name LIKE '%phone_number%')", st.db); n != 0 {
		t.Errorf("%d columns could hold a plaintext phone", n)
	}

	// The server's "already exists" answers, as future migrations without IF NOT EXISTS
	// (18.16 has no ADD COLUMN IF NOT EXISTS) and racing migrators see them.
	for _, stmt := range []string{
		"CREATE DATABASE " + st.db,
		"CREATE TABLE " + st.table("schema_migrations") + " (id UInt32) ENGINE = ReplacingMergeTree ORDER BY id",
		"ALTER TABLE " + st.table("rule_versions") + " ADD COLUMN name String",
	} {
		if err := st.execDDL(ctx, stmt); err != nil {
			t.Errorf("%s: %v", stmt, err)
		}
	}
	if err := st.execDDL(ctx, "ALTER TABLE "+st.table("rule_versions")+" ADD COLUMN bad UInt8 DEFAULT no_such_function()"); err == nil {
		t.Error("a failing ALTER was taken for success")
	}
}

func TestMigrateConcurrently(t *testing.T) {
	st := newTestStore(t)
	ctx := testContext(t)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = st.Migrate(ctx)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if want, _ := wantMigrations(t, st); queryUint(t, st, "SELECT count() FROM "+st.table("schema_migrations")+" FINAL") != uint64(len(want)) {
		t.Errorf("schema_migrations does not have %d rows after FINAL", len(want))
	}
	if again, err := st.Migrate(ctx); err != nil || len(again) != 0 {
		t.Errorf("Migrate after the race: %q, %v", again, err)
	}
}

func TestWriteBatch(t *testing.T) {
	st := migrated(t)
	ctx := testContext(t)

	const n = 1000
	recs := make([]schemas.ScoreRecord, n)
	for i := range recs {
		recs[i] = testRecord(i)
	}
	recs[5].Hits, recs[5].Tags, recs[5].Detail, recs[5].Score = nil, nil, nil, 0 // a clean event

	// Records 400..599 go out twice in separate batches, the second batch also holds one
	// record twice, and the first batch is retried as a whole.
	first, second := recs[:600], append(slices.Clone(recs[400:]), recs[999])
	for i, b := range [][]schemas.ScoreRecord{first, second, first} {
		if err := st.WriteBatch(ctx, b); err != nil {
			t.Fatalf("batch %d: %v", i, err)
		}
	}
	for _, tb := range []string{"verify_events", "risk_scores"} {
		if got := queryUint(t, st, "SELECT count() FROM "+st.table(tb)+" FINAL"); got != n {
			t.Errorf("%s: %d rows after FINAL, want %d", tb, got, n)
		}
		if got := queryUint(t, st, "SELECT uniqExact(event_id) FROM "+st.table(tb)); got != n {
			t.Errorf("%s: %d distinct event ids, want %d", tb, got, n)
		}
	}
	if got := queryUint(t, st, "SELECT count() FROM "+st.table("verify_events")+" WHERE phone_masked NOT LIKE '%****%'"); got != 0 {
		t.Errorf("%d rows with an unmasked phone_masked", got)
	}
	if got := queryUint(t, st, "SELECT count() FROM "+st.table("verify_events")+" WHERE length(phone_hash) != 64 OR length(phone_segment) != 7"); got != 0 {
		t.Errorf("%d rows with a bad phone_hash or phone_segment", got)
	}
	if got := queryUint(t, st, "SELECT count() FROM "+st.table("verify_events")+" WHERE toUInt32(inserted_at) = 0"); got != 0 {
		t.Errorf("%d rows without inserted_at", got)
	}
	if got := queryUint(t, st, "SELECT uniqExact(_partition_id) FROM "+st.table("risk_scores")); got < 2 {
		t.Errorf("records over several days landed in %d partition(s)", got)
	}

	// Round trip, verify_events.
	for _, i := range []int{0, 5, 450, 999} {
		want := recs[i]
		var (
			ts                                               time.Time
			appID, flow, hash, masked, segment, ip, carrier  string
			platform, device, outcome, errCode, digest, exID string
			country, province, city, ipType                  string
			asn                                              uint32
		)
		err := st.conn.QueryRow(ctx, "SELECT ts, app_id, flow, phone_hash, phone_masked, phone_segment, ip, carrier, platform, device_id, outcome, error_code, token_digest, ex_id, country, province, city, asn, ip_type FROM "+
			st.table("verify_events")+" FINAL WHERE event_id = ?", want.EventID).
			Scan(&ts, &appID, &flow, &hash, &masked, &segment, &ip, &carrier, &platform, &device, &outcome, &errCode, &digest, &exID, &country, &province, &city, &asn, &ipType)
		if err != nil {
			t.Fatalf("read %s: %v", want.EventID, err)
		}
		got := []any{ts.Unix(), appID, flow, hash, masked, segment, ip, carrier, platform, device, outcome, errCode, digest, exID, country, province, city, asn, ipType}
		exp := []any{want.TS.Unix(), want.AppID, want.Flow, want.PhoneHash, want.PhoneMasked, want.PhoneSegment, want.IP, want.Carrier, want.Platform, want.DeviceID,
			want.Outcome, want.ErrorCode, want.TokenDigest, want.ExID, want.Geo.Country, want.Geo.Province, want.Geo.City, want.Geo.ASN, want.Geo.IPType}
		if !slices.Equal(got, exp) {
			t.Errorf("verify_events %s:\n got %v\nwant %v", want.EventID, got, exp)
		}
	}

	// Round trip, risk_scores.
	for _, i := range []int{0, 5, 450, 999} {
		want := recs[i]
		var (
			score                                         uint16
			tags, hitRules, hitTags, hitModes, hitReasons []string
			shadowTags                                    []string
			hitScores                                     []uint16
			detail, version, hash, segment                string
			ts, scoredAt                                  time.Time
		)
		err := st.conn.QueryRow(ctx, "SELECT ts, phone_hash, phone_segment, score, tags, detail, hit_rules, hit_tags, hit_scores, hit_modes, hit_reasons, shadow_tags, rules_version, scored_at FROM "+
			st.table("risk_scores")+" FINAL WHERE event_id = ?", want.EventID).
			Scan(&ts, &hash, &segment, &score, &tags, &detail, &hitRules, &hitTags, &hitScores, &hitModes, &hitReasons, &shadowTags, &version, &scoredAt)
		if err != nil {
			t.Fatalf("read %s: %v", want.EventID, err)
		}
		if ts.Unix() != want.TS.Unix() || scoredAt.Unix() != want.ScoredAt.Unix() || hash != want.PhoneHash || segment != want.PhoneSegment ||
			int(score) != want.Score || version != want.RulesVersion {
			t.Errorf("risk_scores %s: ts %v scored_at %v hash %s segment %s score %d version %s", want.EventID, ts, scoredAt, hash, segment, score, version)
		}
		wantTags := want.Tags
		if wantTags == nil {
			wantTags = []string{}
		}
		if !slices.Equal(tags, wantTags) {
			t.Errorf("%s tags %q, want %q", want.EventID, tags, wantTags)
		}
		var wRules, wTags, wModes, wReasons, wShadow []string
		var wScores []uint16
		for _, h := range want.Hits {
			wRules, wTags, wModes, wReasons = append(wRules, h.Rule), append(wTags, h.Tag), append(wModes, h.Mode), append(wReasons, h.Reason)
			wScores = append(wScores, uint16(h.Score))
			if h.Mode == "shadow" && !slices.Contains(wShadow, h.Tag) {
				wShadow = append(wShadow, h.Tag)
			}
		}
		if !slices.Equal(hitRules, wRules) || !slices.Equal(hitTags, wTags) || !slices.Equal(hitModes, wModes) ||
			!slices.Equal(hitReasons, wReasons) || !slices.Equal(hitScores, wScores) || !slices.Equal(shadowTags, wShadow) {
			t.Errorf("%s hits: rules %q tags %q scores %v modes %q reasons %q shadow %q", want.EventID, hitRules, hitTags, hitScores, hitModes, hitReasons, shadowTags)
		}
		var gotDetail map[string]schemas.TagDetail
		if err := json.Unmarshal([]byte(detail), &gotDetail); err != nil {
			t.Fatalf("%s detail %q: %v", want.EventID, detail, err)
		}
		wantDetail := want.Detail
		if wantDetail == nil {
			wantDetail = map[string]schemas.TagDetail{}
		}
		if fmt.Sprint(gotDetail) != fmt.Sprint(wantDetail) {
			t.Errorf("%s detail %v, want %v", want.EventID, gotDetail, wantDetail)
		}
	}

	// The queries the migration files show analysts.
	if got := queryUint(t, st, "SELECT count() FROM (SELECT event_id, rule FROM "+st.table("risk_scores")+
		" FINAL ARRAY JOIN hit_rules AS rule, hit_tags AS tag, hit_scores AS hit_score, hit_modes AS mode WHERE mode = 'shadow')"); got != 2*(n-1) {
		t.Errorf("ARRAY JOIN found %d shadow hits, want %d", got, 2*(n-1))
	}
	if got := queryUint(t, st, "SELECT sum(visitParamExtractUInt(visitParamExtractRaw(detail, 'ip_many_phones'), 'score')) FROM "+
		st.table("risk_scores")+" FINAL"); got != 600*(n-1) {
		t.Errorf("detail JSON: sum of ip_many_phones scores %d, want %d", got, 600*(n-1))
	}

	// Scoring an event again: the later scoring replaces the earlier one.
	re := recs[10]
	re.Score, re.Tags, re.ScoredAt = 900, []string{"blocked_segment"}, re.ScoredAt.Add(time.Hour)
	if err := st.WriteBatch(ctx, []schemas.ScoreRecord{re}); err != nil {
		t.Fatal(err)
	}
	if got := queryUint(t, st, "SELECT toUInt64(score) FROM "+st.table("risk_scores")+" FINAL WHERE event_id = ?", re.EventID); got != 900 {
		t.Errorf("re-scored event has score %d, want 900", got)
	}
	if got := queryUint(t, st, "SELECT count() FROM "+st.table("risk_scores")+" FINAL"); got != n {
		t.Errorf("after re-scoring: %d rows, want %d", got, n)
	}
}

func TestRecordRuleVersion(t *testing.T) {
	st := migrated(t)
	ctx := testContext(t)
	t0 := time.Date(2024, 5, 1, 9, 0, 0, 0, time.UTC)
	versions := []RuleVersion{
		{Version: "v1hash", Name: "default", LoadedBy: "startup", Source: "rules/default.yaml", LoadedAt: t0, RuleCount: 12, Content: "rules:\n  - name: ip_fanout\n"},
		{Version: "v1hash", Name: "default", LoadedBy: "hot-reload", Source: "rules/default.yaml", LoadedAt: t0.Add(24 * time.Hour), RuleCount: 12, Content: "rules:\n  - name: ip_fanout\n"},
		{Version: "v2hash", Name: "default", LoadedBy: "alice", Source: "api", RuleCount: 13, Content: "rules: []\n"},
	}
	for _, v := range versions {
		if err := st.RecordRuleVersion(ctx, v); err != nil {
			t.Fatal(err)
		}
	}
	if got := queryUint(t, st, "SELECT count() FROM "+st.table("rule_versions")+" FINAL"); got != 2 {
		t.Errorf("rule_versions: %d rows after FINAL, want 2", got)
	}
	var loadedBy, content, source string
	var loadedAt time.Time
	var count uint32
	if err := st.conn.QueryRow(ctx, "SELECT loaded_by, loaded_at, content, source, rule_count FROM "+st.table("rule_versions")+" FINAL WHERE version = 'v1hash'").
		Scan(&loadedBy, &loadedAt, &content, &source, &count); err != nil {
		t.Fatal(err)
	}
	if loadedBy != "hot-reload" || !loadedAt.Equal(t0.Add(24*time.Hour)) || content != versions[0].Content || source != "rules/default.yaml" || count != 12 {
		t.Errorf("v1hash row: %s %v %q %s %d (want the latest load)", loadedBy, loadedAt, content, source, count)
	}

	// Read back: the list, newest first without content, and one version with its exact bytes.
	list, err := st.RuleVersions(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Version != "v2hash" || list[1].Version != "v1hash" || list[1].LoadedBy != "hot-reload" || list[1].RuleCount != 12 || list[0].Content != "" {
		t.Errorf("RuleVersions: %+v", list)
	}
	v, err := st.RuleVersion(ctx, "v1hash")
	if err != nil || v.Content != versions[0].Content || v.Name != "default" || !v.LoadedAt.Equal(t0.Add(24*time.Hour)) {
		t.Errorf("RuleVersion v1hash: %+v, %v", v, err)
	}
	for _, missing := range []string{"nope", "x' OR '1'='1"} {
		if _, err := st.RuleVersion(ctx, missing); !errors.Is(err, ErrNoRuleVersion) {
			t.Errorf("RuleVersion(%q): %v, want ErrNoRuleVersion", missing, err)
		}
	}
}

// A server that is not there, and one that accepts connections but never answers: both
// make WriteBatch fail within the configured timeouts (the test's own deadline is a guard,
// not an assertion).
func TestWriteBatchUnreachable(t *testing.T) {
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := closed.Addr().String()
	closed.Close()

	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	var held []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c) // never read, never answer
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		for _, c := range held {
			c.Close()
		}
		mu.Unlock()
	}()

	for name, addr := range map[string]string{"refused": closedAddr, "silent": silent.Addr().String()} {
		t.Run(name, func(t *testing.T) {
			st, err := Open(context.Background(), Config{Addr: addr, Database: "riskflow_unreachable", DialTimeout: 300 * time.Millisecond, WriteTimeout: 500 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			err = st.WriteBatch(ctx, []schemas.ScoreRecord{testRecord(1), testRecord(2)})
			if err == nil {
				t.Fatal("WriteBatch succeeded without a server")
			}
			if !strings.Contains(err.Error(), "verify_events") {
				t.Errorf("error does not name the table: %v", err)
			}
			if errors.Is(err, ErrInvalidRecord) {
				t.Errorf("a transport error reported as an invalid record: %v", err)
			}
			if ctx.Err() != nil {
				t.Errorf("WriteBatch only gave up at the caller's deadline: %v", err)
			}
			if err := st.Ping(ctx); err == nil {
				t.Error("Ping succeeded without a server")
			}
			if _, err := st.Migrate(ctx); err == nil {
				t.Error("Migrate succeeded without a server")
			}
			t.Logf("WriteBatch: %v", err)
		})
	}
}

// chProxy forwards connections to the test's ClickHouse, and keeps forwarding new ones. cut
// closes every connection it carries (as a server restart does); freeze stops passing the server's
// bytes on them but keeps them open (as a server stopped with SIGSTOP does: its kernel keeps the
// connection and answers TCP keep-alives). Each returns how many connections it took.
type chProxy struct {
	mu     sync.Mutex
	pairs  []*proxyPair
	frozen []*proxyPair // closed when the test ends
}

// proxyPair is a client's connection and the proxy's to the server for it.
type proxyPair struct {
	c, s   net.Conn
	frozen chan struct{}
}

func newCHProxy(t *testing.T) (addr string, p *chProxy) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p = &chProxy{}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", clickhouseAddr())
			if err != nil {
				c.Close()
				continue
			}
			pp := &proxyPair{c: c, s: s, frozen: make(chan struct{})}
			p.mu.Lock()
			p.pairs = append(p.pairs, pp)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(s, c); s.Close() }()
			go func() { // server → client, until frozen (then the bytes wait in the socket)
				buf := make([]byte, 16<<10)
				for {
					n, err := s.Read(buf)
					select {
					case <-pp.frozen:
						return
					default:
					}
					if n > 0 {
						if _, werr := c.Write(buf[:n]); werr != nil {
							return
						}
					}
					if err != nil {
						c.Close()
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		p.cut()
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, pp := range p.frozen {
			pp.c.Close()
			pp.s.Close()
		}
	})
	return l.Addr().String(), p
}

// take returns the connections carried so far and forgets them.
func (p *chProxy) take() []*proxyPair {
	p.mu.Lock()
	defer p.mu.Unlock()
	taken := p.pairs
	p.pairs = nil
	return taken
}

func (p *chProxy) cut() int {
	taken := p.take()
	for _, pp := range taken {
		pp.c.Close()
		pp.s.Close()
	}
	return len(taken)
}

func (p *chProxy) freeze() int {
	taken := p.take()
	for _, pp := range taken {
		close(pp.frozen)
	}
	p.mu.Lock()
	p.frozen = append(p.frozen, taken...)
	p.mu.Unlock()
	return len(taken)
}

// cuttingProxy is a chProxy whose connections the test cuts.
func cuttingProxy(t *testing.T) (addr string, cut func() int) {
	addr, p := newCHProxy(t)
	return addr, p.cut
}

// A server restart closes the pooled connections: the next query opens a new one instead of
// failing on a dead socket (a proxy in front of the server plays the restart by closing every
// connection it carries).
func TestQueryAfterServerClosedPooledConnections(t *testing.T) {
	addr, closeAll := cuttingProxy(t)
	st, err := Open(context.Background(), Config{Addr: addr, Database: "riskflow_restart"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := testContext(t)
	if _, err := st.ServerVersion(ctx); err != nil {
		t.Fatal(err)
	}
	if n := closeAll(); n == 0 {
		t.Fatal("the store's query went through no connection of the proxy")
	}
	for i := range 3 {
		if _, err := st.ServerVersion(ctx); err != nil {
			t.Fatalf("query %d after the server closed the pooled connections: %v", i+1, err)
		}
	}
}

// An INSERT into a database or table that is not there (never migrated, or dropped under a
// running archiver) says so and what creates it, naming the table: it is retried like any failed
// write, and riskflow migrate is what ends it.
func TestWriteBatchWithoutItsTables(t *testing.T) {
	st := newTestStore(t) // database not created
	ctx := testContext(t)
	recs := []schemas.ScoreRecord{testRecord(1), testRecord(2)}
	err := st.WriteBatch(ctx, recs)
	if !errors.Is(err, ErrNoTable) || !strings.Contains(err.Error(), "riskflow migrate") ||
		!strings.Contains(err.Error(), st.table("verify_events")) || !strings.Contains(err.Error(), st.table("risk_scores")) {
		t.Errorf("no database: %v; want ErrNoTable naming both tables and riskflow migrate", err)
	}
	if errors.Is(err, ErrInvalidRecord) {
		t.Errorf("no database reported as an invalid record: %v", err)
	}

	if _, err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := st.conn.Exec(ctx, "DROP TABLE "+st.table("risk_scores")); err != nil {
		t.Fatal(err)
	}
	err = st.WriteBatch(ctx, recs)
	if !errors.Is(err, ErrNoTable) || !strings.Contains(err.Error(), st.table("risk_scores")) || strings.Contains(err.Error(), st.table("verify_events")) {
		t.Errorf("risk_scores dropped: %v; want ErrNoTable naming risk_scores only", err)
	}
	if _, err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := st.WriteBatch(ctx, recs); err != nil {
		t.Errorf("after riskflow migrate: %v", err)
	}
	if n := queryUint(t, st, "SELECT count() FROM "+st.table("risk_scores")+" FINAL"); n != 2 {
		t.Errorf("risk_scores holds %d rows, want 2", n)
	}
	if n := queryUint(t, st, "SELECT toUInt64(uniqMerge(events)) FROM "+st.table("risk_scores_hourly")); n != 2 {
		t.Errorf("risk_scores_hourly counts %d events, want 2 (its view no longer fed?)", n)
	}

	// verify_events was created by 0002 and given decision_id by 0012: both are applied again.
	if err := st.conn.Exec(ctx, "DROP TABLE "+st.table("verify_events")); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	recs = []schemas.ScoreRecord{testRecord(3)}
	recs[0].DecisionID = "d-3"
	if err := st.WriteBatch(ctx, recs); err != nil {
		t.Errorf("after verify_events was dropped and riskflow migrate ran: %v", err)
	}
	if n := queryUint(t, st, "SELECT count() FROM "+st.table("verify_events")+" FINAL WHERE decision_id = 'd-3'"); n != 1 {
		t.Errorf("verify_events holds %d rows of decision d-3, want 1", n)
	}
}

// The history's reads of a database not migrated (or dropped) say what creates it, as the
// labels' read does: a backtest's events and lookup's attempts.
func TestReadsWithoutTheirTables(t *testing.T) {
	st := newTestStore(t) // database not created
	ctx := testContext(t)
	r, err := st.ReadEvents(ctx, time.Now().Add(-time.Hour), time.Now(), ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = r.Next(ctx)
	r.Close()
	if !errors.Is(err, ErrNoTable) || !strings.Contains(err.Error(), "riskflow migrate") || !strings.Contains(err.Error(), st.table("verify_events")) {
		t.Errorf("backtest read: %v; want ErrNoTable naming verify_events and riskflow migrate", err)
	}
	_, _, err = st.Lookup(ctx, LookupKey{IP: "1.2.3.4"}, LookupRange{Since: time.Now().Add(-time.Hour)}, 10)
	if !errors.Is(err, ErrNoTable) || !strings.Contains(err.Error(), "riskflow migrate") {
		t.Errorf("lookup: %v; want ErrNoTable naming riskflow migrate", err)
	}
}

package chsink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	chschema "github.com/riskflow/riskflow/deploy/clickhouse"
	"github.com/riskflow/riskflow/schemas"
)

func TestSplitSQL(t *testing.T) {
	src := `-- header mentions riskflow and has a ; in it
CREATE DATABASE IF NOT EXISTS riskflow;
/* block; riskflow */
CREATE TABLE IF NOT EXISTS riskflow.t
(
    a String COMMENT 'riskflow; it''s \' quoted', -- trailing riskflow;
    riskflow_id UInt32,
    ` + "`riskflow` String" + `
) ENGINE = MergeTree ORDER BY a;
SELECT "riskflow", riskflowx, xriskflow, 1riskflow FROM riskflow.t
`
	got, err := splitSQL(src, "rf_test_1")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"CREATE DATABASE IF NOT EXISTS rf_test_1",
		"CREATE TABLE IF NOT EXISTS rf_test_1.t\n(\n    a String COMMENT 'riskflow; it''s \\' quoted',\n    riskflow_id UInt32,\n    `riskflow` String\n) ENGINE = MergeTree ORDER BY a",
		`SELECT "riskflow", riskflowx, xriskflow, 1riskflow FROM rf_test_1.t`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("splitSQL =\n%q\nwant\n%q", got, want)
	}

	for _, bad := range []string{"SELECT 'open", "SELECT 1 /* open", "SELECT `x"} {
		if _, err := splitSQL(bad, "db"); err == nil {
			t.Errorf("splitSQL(%q): no error", bad)
		}
	}
	if got, _ := splitSQL("-- only a comment\n;\n  ;", "db"); len(got) != 0 {
		t.Errorf("comments and empty statements gave %q", got)
	}
}

func TestLoadMigrations(t *testing.T) {
	fsys := fstest.MapFS{
		"m/0010_later.sql": {Data: []byte("CREATE TABLE IF NOT EXISTS riskflow.b (x UInt8) ENGINE = Memory;")},
		"m/0002_first.sql": {Data: []byte("CREATE TABLE IF NOT EXISTS riskflow.a (x UInt8) ENGINE = Memory;\nSELECT 1;")},
		"m/README.md":      {Data: []byte("not sql")},
	}
	got, err := loadMigrations(fsys, "m", "other")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].id != 2 || got[0].name != "0002_first" || got[1].id != 10 || got[1].name != "0010_later" {
		t.Fatalf("order/ids: %+v", got)
	}
	if len(got[0].statements) != 2 || got[0].statements[0] != "CREATE TABLE IF NOT EXISTS other.a (x UInt8) ENGINE = Memory" {
		t.Errorf("statements: %q", got[0].statements)
	}

	for name, fsys := range map[string]fstest.MapFS{
		"duplicate id": {"m/0001_a.sql": {Data: []byte("SELECT 1;")}, "m/1_b.sql": {Data: []byte("SELECT 1;")}},
		"no number":    {"m/first.sql": {Data: []byte("SELECT 1;")}},
		"zero":         {"m/0000_x.sql": {Data: []byte("SELECT 1;")}},
		"empty file":   {"m/0001_x.sql": {Data: []byte("-- nothing\n")}},
		"no files":     {"m/README.md": {Data: []byte("x")}},
	} {
		if _, err := loadMigrations(fsys, "m", "db"); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// A file whose header requires a newer release is skipped on older servers, never recorded there,
// and applied after an upgrade; files already applied are never applied again.
func TestPendingMigrations(t *testing.T) {
	fsys := fstest.MapFS{
		"m/0001_a.sql": {Data: []byte("-- 0001_a: everywhere\nCREATE TABLE IF NOT EXISTS riskflow.a (x UInt8) ENGINE = Memory;")},
		"m/0002_b.sql": {Data: []byte("-- 0002_b: newer servers\n-- requires: ClickHouse >= 20.3\nALTER TABLE riskflow.a MODIFY TTL x;")},
		"m/0003_c.sql": {Data: []byte("-- 0003_c: everywhere\nCREATE TABLE IF NOT EXISTS riskflow.c (x UInt8) ENGINE = Memory;")},
	}
	migs, err := loadMigrations(fsys, "m", "db")
	if err != nil {
		t.Fatal(err)
	}
	if migs[0].requires != nil || migs[1].requires.String() != "20.3" {
		t.Fatalf("requires: %v %v", migs[0].requires, migs[1].requires)
	}
	names := func(ms []migration) (out []string) {
		for _, m := range ms {
			out = append(out, m.name)
		}
		return out
	}
	v := func(s string) chschema.Version { x, _ := chschema.ParseVersion(s); return x }
	apply, skipped := pendingMigrations(migs, nil, v("18.16.1"))
	if !slices.Equal(names(apply), []string{"0001_a", "0003_c"}) || !slices.Equal(names(skipped), []string{"0002_b"}) {
		t.Errorf("18.16: apply %q skip %q", names(apply), names(skipped))
	}
	// The same database after an upgrade: only the skipped file is left to apply.
	apply, skipped = pendingMigrations(migs, map[uint32]bool{1: true, 3: true}, v("20.3.4"))
	if !slices.Equal(names(apply), []string{"0002_b"}) || len(skipped) != 0 {
		t.Errorf("after the upgrade: apply %q skip %q", names(apply), names(skipped))
	}
	apply, _ = pendingMigrations(migs, map[uint32]bool{1: true, 2: true, 3: true}, v("26.9.2.1"))
	if len(apply) != 0 {
		t.Errorf("all applied: apply %q", names(apply))
	}
	bad := fstest.MapFS{"m/0001_a.sql": {Data: []byte("-- requires: ClickHouse 20.3\nSELECT 1;")}}
	if _, err := loadMigrations(bad, "m", "db"); err == nil {
		t.Error("a malformed requires: line was accepted")
	}
}

func TestStatementsSent(t *testing.T) {
	if got := insertSQL("db", "t", []string{"a", "b"}); got != "INSERT INTO db.t (a, b)" {
		t.Errorf("insertSQL = %q", got)
	}
	if got := migrationsTableExistsSQL("rf"); got != "SELECT count() FROM system.tables WHERE database = 'rf' AND name = 'schema_migrations'" {
		t.Errorf("migrationsTableExistsSQL = %q", got)
	}
	if got := tableNamesSQL("rf"); got != "SELECT name FROM system.tables WHERE database = 'rf'" {
		t.Errorf("tableNamesSQL = %q", got)
	}
	lo, hi := time.Unix(1700000000, 0), time.Unix(1700086400, 0)
	if got := readChunkSQL("rf", lo, hi, rowKey{}); !strings.HasPrefix(got, "SELECT event_id, ts, ") || !strings.HasSuffix(got, "FROM rf.verify_events FINAL WHERE ts >= toDateTime(1700000000) AND ts < toDateTime(1700086400) ORDER BY ts, event_id, app_id") {
		t.Errorf("readChunkSQL = %q", got)
	}
	after := rowKey{ts: 1700000100, eventID: `e'1\`, appID: "app", set: true}
	if got := readChunkSQL("rf", lo, hi, after); !strings.HasSuffix(got, `FROM rf.verify_events FINAL WHERE ts >= toDateTime(1700000000) AND ts < toDateTime(1700086400)`+
		` AND (ts > toDateTime(1700000100) OR (ts = toDateTime(1700000100) AND (event_id > 'e\'1\\' OR (event_id = 'e\'1\\' AND app_id > 'app')))) ORDER BY ts, event_id, app_id`) {
		t.Errorf("readChunkSQL resumed = %q", got)
	}
	end := time.Date(2026, 11, 21, 6, 0, 0, 0, time.UTC)
	totals, hits, err := RulesReportSQL("rf", end.Add(-24*time.Hour), end.Add(-48*time.Hour), end, `it's\x`)
	if err != nil {
		t.Fatal(err)
	}
	if want := `SELECT countIf(ts >= toDateTime(1795154400)), countIf(ts < toDateTime(1795154400)) FROM rf.risk_scores FINAL WHERE ts >= toDateTime(1795068000) AND ts < toDateTime(1795240800) AND app_id = 'it\'s\\x'`; totals != want {
		t.Errorf("totals =\n%s\nwant\n%s", totals, want)
	}
	if !strings.Contains(hits, "ARRAY JOIN hit_rules AS rule, hit_tags AS tag, hit_scores AS level, hit_modes AS mode WHERE ts >= toDateTime(1795068000)") ||
		!strings.Contains(hits, "ts >= toDateTime(1795154400) AS in_window") || !strings.HasSuffix(hits, "GROUP BY rule, mode, hour, in_window") {
		t.Errorf("hits = %s", hits)
	}
	if _, _, err := RulesReportSQL("rf; DROP", end.Add(-time.Hour), end.Add(-2*time.Hour), end, ""); err == nil {
		t.Error("a database that is not an identifier was accepted")
	}
	if _, _, err := RulesReportSQL("rf", end, end.Add(-time.Hour), end, ""); err == nil {
		t.Error("an empty report window was accepted")
	}
}

// The embedded files, as the migrator sends them to a test database.
func TestEmbeddedMigrations(t *testing.T) {
	migs, err := loadMigrations(chschema.Migrations, "migrations", "rf_it")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range migs {
		names = append(names, m.name)
		for _, s := range m.statements {
			if regexp.MustCompile(`\briskflow\b`).MatchString(s) {
				t.Errorf("%s: database name not substituted:\n%s", m.name, s)
			}
			if strings.Contains(s, "--") {
				t.Errorf("%s: comment left in statement:\n%s", m.name, s)
			}
		}
	}
	want := []string{"0001_database", "0002_verify_events", "0003_risk_scores", "0004_rule_versions", "0005_schema_migrations",
		"0006_verify_events_hourly", "0007_risk_scores_hourly", "0008_rule_hits_hourly", "0009_backtest_runs",
		"0010_low_cardinality", "0011_retention_ttl", "0012_risk_decisions", "0013_labels", "0014_console_state", "0015_hourly_events_per_app",
		"0016_risk_decisions_ttl", "0017_rule_loads"}
	if !slices.Equal(names, want) {
		t.Errorf("migrations %q, want %q", names, want)
	}
	// 18.16 skips the version-conditional files; current ClickHouse applies every file.
	old, _ := chschema.ParseVersion("18.16.1")
	cur, _ := chschema.ParseVersion("26.9.2.1")
	apply, skipped := pendingMigrations(migs, nil, old)
	if len(apply) != 14 || len(skipped) != 3 || skipped[0].name != "0010_low_cardinality" || skipped[1].name != "0011_retention_ttl" ||
		skipped[2].name != "0016_risk_decisions_ttl" {
		t.Errorf("on 18.16: apply %d, skip %v", len(apply), skipped)
	}
	if apply, skipped := pendingMigrations(migs, nil, cur); len(apply) != len(migs) || len(skipped) != 0 {
		t.Errorf("on 26.9: apply %d, skip %d", len(apply), len(skipped))
	}
	if migs[0].statements[0] != "CREATE DATABASE IF NOT EXISTS rf_it" {
		t.Errorf("first statement %q", migs[0].statements[0])
	}
}

// ddlColumns returns the columns of the CREATE TABLE for table in the embedded files, with the
// columns later ALTER TABLE ... ADD COLUMN statements add, and which of them have a DEFAULT.
func ddlColumns(t *testing.T, table string) (cols []string, defaulted map[string]bool) {
	t.Helper()
	migs, err := loadMigrations(chschema.Migrations, "migrations", "db")
	if err != nil {
		t.Fatal(err)
	}
	head := "CREATE TABLE IF NOT EXISTS db." + table + "\n("
	colRE := regexp.MustCompile(`^\s+(\w+)\s+\S+(\s+DEFAULT\s)?`)
	addRE := regexp.MustCompile(`^ALTER TABLE db\.` + table + ` ADD COLUMN (\w+) \S+( DEFAULT )?.*?(?: AFTER (\w+))?$`)
	defaulted = map[string]bool{}
	for _, m := range migs {
		for _, s := range m.statements {
			if a := addRE.FindStringSubmatch(s); a != nil && cols != nil {
				at := len(cols)
				if i := slices.Index(cols, a[3]); a[3] != "" && i >= 0 {
					at = i + 1
				}
				cols = slices.Insert(cols, at, a[1])
				defaulted[a[1]] = a[2] != ""
				continue
			}
			body, ok := strings.CutPrefix(s, head)
			if !ok {
				continue
			}
			body, _, _ = strings.Cut(body, "\n)")
			for _, line := range strings.Split(strings.TrimSpace(body), "\n") {
				c := colRE.FindStringSubmatch("    " + strings.TrimSpace(line))
				if c == nil {
					t.Fatalf("%s: cannot read column line %q", table, line)
				}
				cols = append(cols, c[1])
				if c[2] != "" {
					defaulted[c[1]] = true
				}
			}
		}
	}
	if cols == nil {
		t.Fatalf("no CREATE TABLE for %s", table)
	}
	return cols, defaulted
}

// The INSERTs name every column of the table except those filled by a DEFAULT, so a
// schema change cannot silently leave a column empty.
func TestInsertColumnsMatchDDL(t *testing.T) {
	for table, insert := range map[string][]string{
		"verify_events": verifyEventsColumns,
		"risk_scores":   riskScoresColumns,
		"rule_versions": ruleVersionsColumns,
		"rule_loads":    ruleLoadsColumns,
	} {
		cols, defaulted := ddlColumns(t, table)
		var want []string
		for _, c := range cols {
			if !defaulted[c] {
				want = append(want, c)
			}
		}
		if !slices.Equal(insert, want) {
			t.Errorf("%s: INSERT columns\n %q\nwant (DDL without DEFAULT columns)\n %q", table, insert, want)
		}
		for _, c := range insert {
			if c == "phone" {
				t.Errorf("%s: inserts a plaintext phone column", table)
			}
		}
	}
}

func testRecord(i int) schemas.ScoreRecord {
	h := schemas.NewPhoneHasher([]byte("test key"))
	phone := fmt.Sprintf("138%08d", i)
	ts := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC).Add(time.Duration(i) * 7 * time.Minute)
	return schemas.ScoreRecord{
		EventID:      fmt.Sprintf("ev-%06d", i),
		TS:           ts,
		AppID:        fmt.Sprintf("app-%d", i%3),
		Flow:         "one_click_login",
		PhoneHash:    h.Hex(phone),
		PhoneMasked:  schemas.MaskPhone(phone),
		PhoneSegment: schemas.PhoneSegment(phone),
		IP:           fmt.Sprintf("10.0.%d.%d", i/250, i%250),
		Carrier:      "CM",
		Platform:     "android",
		DeviceID:     fmt.Sprintf("dev-%d", i%50),
		Outcome:      "success",
		TokenDigest:  strings.Repeat("ab", 32),
		ExID:         fmt.Sprintf("ex-%d", i),
		Geo:          schemas.Geo{Country: "CN", Province: "Guangdong", City: "Shenzhen", ASN: 9808, IPType: "mobile"},
		Score:        600,
		Tags:         []string{"ip_many_phones"},
		Detail:       map[string]schemas.TagDetail{"ip_many_phones": {Score: 600, Reason: fmt.Sprintf("%d phones from this IP in 1h", 30+i%10)}},
		Hits: []schemas.RuleHit{
			{Rule: "ip_fanout", Tag: "ip_many_phones", Score: 600, Mode: "enforce", Reason: "38 phones"},
			{Rule: "night_owl", Tag: "odd_hours", Score: 300, Mode: "shadow", Reason: "03:00 local"},
			{Rule: "night_owl_v2", Tag: "odd_hours", Score: 300, Mode: "shadow", Reason: "03:00 local"},
		},
		RulesVersion: "rv-abc",
		ScoredAt:     ts.Add(40 * time.Millisecond),
	}
}

func TestRows(t *testing.T) {
	r := testRecord(7)
	v := verifyEventRow(&r)
	if len(v) != len(verifyEventsColumns) {
		t.Fatalf("verify_events row has %d values for %d columns", len(v), len(verifyEventsColumns))
	}
	for i, c := range verifyEventsColumns {
		if s, ok := v[i].(string); ok && c != "phone_hash" && strings.Contains(s, "13800000007") {
			t.Errorf("column %s holds the plaintext number", c)
		}
	}
	row, err := riskScoreRow(&r)
	if err != nil {
		t.Fatal(err)
	}
	if len(row) != len(riskScoresColumns) {
		t.Fatalf("risk_scores row has %d values for %d columns", len(row), len(riskScoresColumns))
	}
	col := func(name string) any { return row[slices.Index(riskScoresColumns, name)] }
	if got := col("hit_rules").([]string); !slices.Equal(got, []string{"ip_fanout", "night_owl", "night_owl_v2"}) {
		t.Errorf("hit_rules %q", got)
	}
	if got := col("hit_scores").([]uint16); !slices.Equal(got, []uint16{600, 300, 300}) {
		t.Errorf("hit_scores %v", got)
	}
	if got := col("hit_modes").([]string); !slices.Equal(got, []string{"enforce", "shadow", "shadow"}) {
		t.Errorf("hit_modes %q", got)
	}
	if got := col("shadow_tags").([]string); !slices.Equal(got, []string{"odd_hours"}) {
		t.Errorf("shadow_tags %q (one entry per tag)", got)
	}
	if got := col("score").(uint16); got != 600 {
		t.Errorf("score %d", got)
	}
	var detail map[string]schemas.TagDetail
	if err := json.Unmarshal([]byte(col("detail").(string)), &detail); err != nil || detail["ip_many_phones"].Score != 600 {
		t.Errorf("detail %q: %v", col("detail"), err)
	}

	// No hits, no tags, no detail: empty arrays and {}.
	r.Hits, r.Tags, r.Detail, r.ScoredAt = nil, nil, nil, time.Time{}
	row, err = riskScoreRow(&r)
	if err != nil {
		t.Fatal(err)
	}
	if col("detail") != "{}" || col("tags") == nil || len(col("hit_tags").([]string)) != 0 || len(col("shadow_tags").([]string)) != 0 {
		t.Errorf("empty record row: %v", row)
	}
	if got := col("scored_at").(time.Time); got.Unix() != 0 {
		t.Errorf("zero scored_at stored as %v", got)
	}
}

func TestCheckRecord(t *testing.T) {
	if reason := checkRecord(ptr(testRecord(1))); reason != "" {
		t.Fatalf("good record rejected: %s", reason)
	}
	// An IPv6 address whose groups read as a number is an address, not a number.
	v6 := testRecord(2)
	v6.IP = "2409:8a4c:138:1234:5678::1"
	if reason := checkRecord(&v6); reason != "" {
		t.Errorf("record from %s rejected: %s", v6.IP, reason)
	}
	for name, mutate := range map[string]func(*schemas.ScoreRecord){
		"no event id":         func(r *schemas.ScoreRecord) { r.EventID = "" },
		"zero ts":             func(r *schemas.ScoreRecord) { r.TS = time.Time{} },
		"ts after 2106":       func(r *schemas.ScoreRecord) { r.TS = time.Date(2107, 1, 1, 0, 0, 0, 0, time.UTC) },
		"bad scored_at":       func(r *schemas.ScoreRecord) { r.ScoredAt = time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC) },
		"short hash":          func(r *schemas.ScoreRecord) { r.PhoneHash = "abc" },
		"plaintext hash":      func(r *schemas.ScoreRecord) { r.PhoneHash = "13800138000" },
		"plaintext masked":    func(r *schemas.ScoreRecord) { r.PhoneMasked = "13800138000" },
		"masked with +86":     func(r *schemas.ScoreRecord) { r.PhoneMasked = "+861381234****" },
		"empty masked":        func(r *schemas.ScoreRecord) { r.PhoneMasked = "" },
		"plaintext segment":   func(r *schemas.ScoreRecord) { r.PhoneSegment = "13800138000" },
		"non-digit segment":   func(r *schemas.ScoreRecord) { r.PhoneSegment = "138abcd" },
		"negative score":      func(r *schemas.ScoreRecord) { r.Score = -1 },
		"hit score too large": func(r *schemas.ScoreRecord) { r.Hits[0].Score = 70000 },
		// A number in a free-text field: another producer of risk.scores wrote the record (the
		// decoders and rule packs refuse one); stored, it would be in ClickHouse in plaintext.
		"phone as ip":          func(r *schemas.ScoreRecord) { r.IP = "+86 138 1234 5678" },
		"phone as ip's zone":   func(r *schemas.ScoreRecord) { r.IP = "fe80::1%13812345678" },
		"phone in device_id":   func(r *schemas.ScoreRecord) { r.DeviceID = "13812345678" },
		"phone in event_id":    func(r *schemas.ScoreRecord) { r.EventID = "ev-138-1234-5678" },
		"phone in app_id":      func(r *schemas.ScoreRecord) { r.AppID = "tel13812345678" },
		"phone in error_code":  func(r *schemas.ScoreRecord) { r.ErrorCode = "138 1234 5678" },
		"phone in ex_id":       func(r *schemas.ScoreRecord) { r.ExID = "13812345678" },
		"phone in decision_id": func(r *schemas.ScoreRecord) { r.DecisionID = "13812345678" },
		"phone in geo city":    func(r *schemas.ScoreRecord) { r.Geo.City = "13812345678" },
		"phone in a tag":       func(r *schemas.ScoreRecord) { r.Tags = []string{"13812345678"} },
		"phone in a hit's tag": func(r *schemas.ScoreRecord) { r.Hits[1].Tag = "13812345678" },
		"phone in a detail's tag": func(r *schemas.ScoreRecord) {
			r.Detail = map[string]schemas.TagDetail{"13812345678": {Score: 600, Reason: "x"}}
		},
	} {
		r := testRecord(1)
		mutate(&r)
		if reason := checkRecord(&r); reason == "" {
			t.Errorf("%s: accepted", name)
		} else if schemas.ContainsPhone(reason) {
			t.Errorf("%s: the reason shows the number: %s", name, reason)
		}
	}
}

// A record refused for a number in its id is named without the number: the error is the dead
// letter's riskflow-error header and the archiver's log line.
func TestInvalidRecordErrorMasksANumberInTheID(t *testing.T) {
	r := testRecord(1)
	r.EventID = "ev-138-1234-5678"
	err := checkRecords([]schemas.ScoreRecord{testRecord(0), r})
	if err == nil {
		t.Fatal("accepted")
	}
	msg := err.Error()
	if schemas.ContainsPhone(msg) || !strings.Contains(msg, `record 1 (event_id "ev-`+schemas.PhoneMask+`")`) {
		t.Errorf("%s", msg)
	}
	d := schemas.Decision{DecisionID: "api-13812345678", TS: time.Now().UTC(), AppID: "a", PhoneHash: strings.Repeat("a", 64),
		PhoneMasked: "1381234****", PhoneSegment: "1381234", IP: "47.92.10.20"}
	err = (&Store{}).WriteDecisions(context.Background(), []schemas.Decision{d})
	if err == nil || schemas.ContainsPhone(err.Error()) || !strings.Contains(err.Error(), `decision_id "api-`+schemas.PhoneMask+`"`) {
		t.Errorf("%v", err)
	}
}

func TestCheckDecision(t *testing.T) {
	good := func() schemas.Decision {
		phone := "13812348000"
		h := schemas.NewPhoneHasher([]byte("test key"))
		return schemas.Decision{
			DecisionID: "node-0001", TS: time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC), AppID: "app-0", Flow: "one_click_login",
			PhoneHash: h.Hex(phone), PhoneMasked: schemas.MaskPhone(phone), PhoneSegment: schemas.PhoneSegment(phone),
			IP: "47.92.10.20", DeviceID: "farm-1", ExID: "ex-1", Score: 900, Tags: []string{"phones_per_ip"},
			Detail:       map[string]schemas.TagDetail{"phones_per_ip": {Score: 900, Reason: "26 phones from this datacenter IP in 10 min"}},
			Hits:         []schemas.RuleHit{{Rule: "phones_per_ip", Tag: "phones_per_ip", Score: 900, Mode: "enforce", Reason: "26 phones"}},
			RulesVersion: "8f35964b1ae4a0c3", Node: "api-1", LatencyUS: 321,
		}
	}
	d := good()
	if reason := checkDecision(&d); reason != "" {
		t.Fatalf("good decision rejected: %s", reason)
	}
	d.IP = "240e:1381:2345:678::1"
	d.Detail = map[string]schemas.TagDetail{"block_listed": {Score: 900, Reason: "on the block list: network 240e:1381:2345:678::/64 of IP 240e:1381:2345:678::1"}}
	if reason := checkDecision(&d); reason != "" {
		t.Errorf("decision for %s rejected: %s", d.IP, reason)
	}
	for name, mutate := range map[string]func(*schemas.Decision){
		"plaintext masked":      func(d *schemas.Decision) { d.PhoneMasked = "13800138000" },
		"phone as ip":           func(d *schemas.Decision) { d.IP = "+86 138 1234 5678" },
		"phone as ip's zone":    func(d *schemas.Decision) { d.IP = "fe80::1%138-1234-5678" },
		"phone in device_id":    func(d *schemas.Decision) { d.DeviceID = "138-1234-5678" },
		"phone in decision_id":  func(d *schemas.Decision) { d.DecisionID = "api1-13812345678" },
		"phone in app_id":       func(d *schemas.Decision) { d.AppID = "13812345678" },
		"phone in ex_id":        func(d *schemas.Decision) { d.ExID = "13812345678" },
		"phone in node":         func(d *schemas.Decision) { d.Node = "13812345678" },
		"phone in a tag":        func(d *schemas.Decision) { d.Tags = []string{"odd", "13812345678"} },
		"phone in a hit's rule": func(d *schemas.Decision) { d.Hits[0].Rule = "138 1234 5678" },
		"phone in a detail's tag": func(d *schemas.Decision) {
			d.Detail["138-1234-5678"] = schemas.TagDetail{Score: 900, Reason: "x"}
		},
	} {
		d := good()
		mutate(&d)
		if reason := checkDecision(&d); reason == "" {
			t.Errorf("%s: accepted", name)
		} else if schemas.ContainsPhone(reason) {
			t.Errorf("%s: the reason shows the number: %s", name, reason)
		}
	}
}

func ptr[T any](v T) *T { return &v }

func TestConfigValidate(t *testing.T) {
	good := []Config{
		{Addr: "127.0.0.1:9000"},
		{Addr: "ch-1:9000, ch-2:9000", Database: "riskflow_test_1", DialTimeout: time.Second, WriteTimeout: time.Minute},
		{Addr: "[::1]:9000", Database: "_x"},
		{Addr: "a:1", Compression: "auto"}, {Addr: "a:1", Compression: "lz4"}, {Addr: "a:1", Compression: "none"},
	}
	for _, c := range good {
		if err := c.Validate(); err != nil {
			t.Errorf("%+v: %v", c, err)
		}
	}
	bad := map[string]Config{
		"addr":          {},
		"no port":       {Addr: "127.0.0.1"},
		"bad port":      {Addr: "127.0.0.1:http"},
		"port 0":        {Addr: "127.0.0.1:0"},
		"no host":       {Addr: ":9000"},
		"empty in list": {Addr: "a:1,,b:2"},
		"database":      {Addr: "a:1", Database: "risk-flow"},
		"database sql":  {Addr: "a:1", Database: "x; DROP DATABASE y"},
		"database 1st":  {Addr: "a:1", Database: "1x"},
		"dial":          {Addr: "a:1", DialTimeout: -1},
		"write":         {Addr: "a:1", WriteTimeout: -1},
		"compression":   {Addr: "a:1", Compression: "zstd"},
	}
	for name, c := range bad {
		if err := c.Validate(); err == nil {
			t.Errorf("%s: %+v accepted", name, c)
		}
	}
	d := Config{Addr: "a:1"}.withDefaults()
	if d.Database != "riskflow" || d.DialTimeout != DefaultDialTimeout || d.WriteTimeout != DefaultWriteTimeout || d.Compression != CompressionAuto {
		t.Errorf("defaults: %+v", d)
	}
}

// auto compresses unless every server is on this machine; lz4 and none are taken as they are.
func TestCompression(t *testing.T) {
	for _, c := range []struct {
		addr, method string
		want         bool
	}{
		{"127.0.0.1:9000", "", false},
		{"127.0.0.1:9000", "auto", false},
		{"localhost:9000, [::1]:9000, 127.0.1.1:9000", "auto", false},
		{"LocalHost:9000", "", false},
		{"ch-1:9000", "", true},
		{"10.0.0.5:9000", "auto", true},
		{"127.0.0.1:9000, ch-2:9000", "", true},
		{"127.0.0.1:9000", "lz4", true},
		{"ch-1:9000", "none", false},
	} {
		if got := (Config{Addr: c.addr, Compression: c.method}).compressed(); got != c.want {
			t.Errorf("%q with compression %q: compressed %v, want %v", c.addr, c.method, got, c.want)
		}
	}
}

func TestAlreadyExists(t *testing.T) {
	yes := []error{
		&clickhouse.Exception{Code: 57, Message: "Table db.t already exists."},
		fmt.Errorf("wrapped: %w", &clickhouse.Exception{Code: 82, Message: "Database db already exists."}),
		&clickhouse.Exception{Code: 44, Message: "Cannot add column x: column with this name already exists"},
		// current releases (26.9) answer a repeated ADD COLUMN with DUPLICATE_COLUMN
		&clickhouse.Exception{Code: 15, Message: "Cannot add column `decision_id`: column with this name already exists"},
	}
	no := []error{
		&clickhouse.Exception{Code: 44, Message: "Illegal column x of argument of function f"},
		&clickhouse.Exception{Code: 62, Message: "Syntax error"},
		&clickhouse.Exception{Code: 15, Message: "Column x specified more than once"},
		errors.New("table already exists"), // not from the server
	}
	for _, err := range yes {
		if !alreadyExists(err) {
			t.Errorf("%v: not treated as already exists", err)
		}
	}
	for _, err := range no {
		if alreadyExists(err) {
			t.Errorf("%v: treated as already exists", err)
		}
	}
}

// Open needs no server; invalid records are refused before anything is sent.
func TestOpenOfflineAndInvalidRecord(t *testing.T) {
	if _, err := Open(context.Background(), Config{Addr: "nohost"}); err == nil {
		t.Fatal("Open accepted a bad config")
	}
	st, err := Open(context.Background(), Config{Addr: "127.0.0.1:1", WriteTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if st.Database() != "riskflow" {
		t.Errorf("database %q", st.Database())
	}
	if err := st.WriteBatch(context.Background(), nil); err != nil {
		t.Errorf("empty batch: %v", err)
	}
	recs := []schemas.ScoreRecord{testRecord(1), testRecord(2)}
	recs[1].PhoneMasked = "13800000002"
	err = st.WriteBatch(context.Background(), recs)
	var ire *InvalidRecordError
	if !errors.Is(err, ErrInvalidRecord) || !errors.As(err, &ire) || ire.Index != 1 || ire.EventID != "ev-000002" {
		t.Errorf("WriteBatch with a plaintext mask: %v", err)
	}
	if strings.Contains(err.Error(), "13800000002") {
		t.Errorf("error message repeats the plaintext number: %v", err)
	}
	if err := st.RecordRuleVersion(context.Background(), RuleVersion{}); err == nil {
		t.Error("RecordRuleVersion without a version: no error")
	}
}

func TestMaskedFormNeverRevealsMoreThanTheSegment(t *testing.T) {
	for m, ok := range map[string]bool{
		"1381234****":   true,
		"1440123******": true,
		"138****8000":   false, // last 4 digits beside the segment = the whole number
		"13812348000":   false,
		"1381234***0":   false,
		"1381234":       false,
		"13812345****":  false,
		"****":          true,
	} {
		if got := maskedBeyondSegment(m); got != ok {
			t.Errorf("maskedBeyondSegment(%q) = %v, want %v", m, got, ok)
		}
	}
}

// A decision refused before anything is sent is named by its decision_id — the dead letter's
// reason and the archiver's log read "decision_id", not "event_id".
func TestUnstorableDecisionNamedByItsID(t *testing.T) {
	d := schemas.Decision{DecisionID: "api1-x-01", TS: time.Now().UTC(), AppID: "a", PhoneHash: strings.Repeat("z", 64),
		PhoneMasked: "1381234****", PhoneSegment: "1381234"}
	err := (&Store{}).WriteDecisions(context.Background(), []schemas.Decision{d})
	var ire *InvalidRecordError
	if !errors.As(err, &ire) || ire.RejectedIndex() != 0 || !strings.Contains(err.Error(), `decision_id "api1-x-01"`) || strings.Contains(err.Error(), "event_id") {
		t.Errorf("%v", err)
	}
}

package clickhouse

import (
	"io/fs"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// The files, in the order the migrator applies them. Adding a file means adding it here.
var wantFiles = []string{
	"migrations/0001_database.sql",
	"migrations/0002_verify_events.sql",
	"migrations/0003_risk_scores.sql",
	"migrations/0004_rule_versions.sql",
	"migrations/0005_schema_migrations.sql",
	"migrations/0006_verify_events_hourly.sql",
	"migrations/0007_risk_scores_hourly.sql",
	"migrations/0008_rule_hits_hourly.sql",
	"migrations/0009_backtest_runs.sql",
	"migrations/0010_low_cardinality.sql",
	"migrations/0011_retention_ttl.sql",
	"migrations/0012_risk_decisions.sql",
	"migrations/0013_labels.sql",
	"migrations/0014_console_state.sql",
	"migrations/0015_hourly_events_per_app.sql",
	"migrations/0016_risk_decisions_ttl.sql",
	"migrations/0017_rule_loads.sql",
}

// The version-conditional files (header "-- requires: ClickHouse >= X.Y") and the release each
// requires. The schema tests check both sides: the schema of 18.16 without them, and current
// ClickHouse with them.
var wantConditional = map[string]string{
	"migrations/0010_low_cardinality.sql":    "20.3",
	"migrations/0011_retention_ttl.sql":      "20.3",
	"migrations/0016_risk_decisions_ttl.sql": "20.3",
}

// What current ClickHouse stores differently: column types (table → column → type) and TTLs.
// Everything else is as in wantTables.
var wantCurrentTypes = map[string]map[string]string{
	"verify_events": {
		"flow": lcString, "carrier": lcString, "platform": lcString, "outcome": lcString, "error_code": lcString,
		"country": lcString, "province": lcString, "city": lcString, "ip_type": lcString,
	},
	"risk_scores": {
		"flow": lcString, "carrier": lcString, "rules_version": lcString,
		"tags": lcArray, "hit_rules": lcArray, "hit_tags": lcArray, "hit_modes": lcArray, "shadow_tags": lcArray,
	},
}

var wantCurrentTTL = map[string]string{
	"verify_events":        "ts + INTERVAL 400 DAY",
	"risk_scores":          "ts + INTERVAL 400 DAY",
	"risk_decisions":       "ts + INTERVAL 400 DAY",
	"verify_events_hourly": "hour + INTERVAL 3 YEAR",
	"risk_scores_hourly":   "hour + INTERVAL 3 YEAR",
	"rule_hits_hourly":     "hour + INTERVAL 3 YEAR",
}

const (
	lcString = "LowCardinality(String)"
	lcArray  = "Array(LowCardinality(String))"
)

type table struct {
	columns   [][2]string // name, type, in order
	engine    string
	partition string // "" if not partitioned
	orderBy   string
}

// The schema, pinned. A change here is a change to what analysts query and to what
// pipeline/chsink inserts; it needs a new migration file, never an edit of a shipped one.
var wantTables = map[string]table{
	"verify_events": {
		columns: [][2]string{
			{"event_id", "String"}, {"ts", "DateTime('UTC')"}, {"app_id", "String"}, {"flow", "String"},
			{"phone_hash", "String"}, {"phone_masked", "String"}, {"phone_segment", "String"},
			{"ip", "String"}, {"carrier", "String"}, {"platform", "String"}, {"device_id", "String"},
			{"outcome", "String"}, {"error_code", "String"}, {"token_digest", "String"}, {"ex_id", "String"},
			{"decision_id", "String"},
			{"country", "String"}, {"province", "String"}, {"city", "String"}, {"asn", "UInt32"}, {"ip_type", "String"},
			{"inserted_at", "DateTime('UTC')"},
		},
		engine:    "ReplacingMergeTree(inserted_at)",
		partition: "toYYYYMMDD(ts)",
		orderBy:   "(app_id, event_id)",
	},
	"risk_scores": {
		columns: [][2]string{
			{"event_id", "String"}, {"ts", "DateTime('UTC')"}, {"app_id", "String"}, {"flow", "String"},
			{"phone_hash", "String"}, {"phone_segment", "String"}, {"ip", "String"}, {"carrier", "String"},
			{"score", "UInt16"}, {"tags", "Array(String)"}, {"detail", "String"},
			{"hit_rules", "Array(String)"}, {"hit_tags", "Array(String)"}, {"hit_scores", "Array(UInt16)"},
			{"hit_modes", "Array(String)"}, {"hit_reasons", "Array(String)"},
			{"shadow_tags", "Array(String)"}, {"rules_version", "String"}, {"scored_at", "DateTime('UTC')"},
		},
		engine:    "ReplacingMergeTree(scored_at)",
		partition: "toYYYYMMDD(ts)",
		orderBy:   "(app_id, event_id)",
	},
	"risk_decisions": {
		columns: [][2]string{
			{"decision_id", "String"}, {"ts", "DateTime('UTC')"}, {"app_id", "String"}, {"flow", "String"},
			{"phone_hash", "String"}, {"phone_masked", "String"}, {"phone_segment", "String"},
			{"ip", "String"}, {"carrier", "String"}, {"platform", "String"}, {"device_id", "String"},
			{"token_digest", "String"}, {"ex_id", "String"},
			{"score", "UInt16"}, {"tags", "Array(String)"}, {"detail", "String"},
			{"hit_rules", "Array(String)"}, {"hit_tags", "Array(String)"}, {"hit_scores", "Array(UInt16)"},
			{"hit_modes", "Array(String)"}, {"hit_reasons", "Array(String)"},
			{"rules_version", "String"}, {"node", "String"}, {"latency_us", "UInt32"}, {"inserted_at", "DateTime('UTC')"},
		},
		engine:    "ReplacingMergeTree(inserted_at)",
		partition: "toYYYYMMDD(ts)",
		orderBy:   "(app_id, decision_id)",
	},
	"labels": {
		columns: [][2]string{
			{"app_id", "String"}, {"target", "String"}, {"target_id", "String"}, {"label", "String"},
			{"note", "String"}, {"labeled_by", "String"}, {"labeled_at", "DateTime('UTC')"},
		},
		engine:    "ReplacingMergeTree(labeled_at)",
		partition: "toYYYYMM(labeled_at)",
		orderBy:   "(app_id, target, target_id)",
	},
	"console_state": {
		columns: [][2]string{
			{"kind", "String"}, {"id", "String"}, {"updated_ns", "UInt64"}, {"node", "String"},
			{"admin", "String"}, {"deleted", "UInt8"}, {"body", "String"},
		},
		engine:  "ReplacingMergeTree(updated_ns)",
		orderBy: "(kind, id)",
	},
	"rule_versions": {
		columns: [][2]string{
			{"version", "String"}, {"name", "String"}, {"loaded_at", "DateTime('UTC')"}, {"loaded_by", "String"},
			{"source", "String"}, {"rule_count", "UInt32"}, {"content", "String"},
		},
		engine:  "ReplacingMergeTree(loaded_at)",
		orderBy: "version",
	},
	"rule_loads": {
		columns: [][2]string{
			{"loaded_at", "DateTime('UTC')"}, {"version", "String"}, {"name", "String"}, {"loaded_by", "String"},
			{"source", "String"}, {"rule_count", "UInt32"},
		},
		engine:  "ReplacingMergeTree",
		orderBy: "(loaded_at, version, loaded_by, source)",
	},
	"schema_migrations": {
		columns: [][2]string{{"id", "UInt32"}, {"name", "String"}, {"applied_at", "DateTime('UTC')"}},
		engine:  "ReplacingMergeTree",
		orderBy: "id",
	},
	"verify_events_hourly": {
		columns: [][2]string{
			{"hour", "DateTime('UTC')"}, {"app_id", "String"}, {"flow", "String"}, {"carrier", "String"},
			{"outcome", "String"}, {"error_code", "String"},
			{"events", uniqT}, {"phones", uniqT}, {"ips", uniqT}, {"devices", uniqIfT},
		},
		engine:    "AggregatingMergeTree",
		partition: "toYYYYMM(hour)",
		orderBy:   "(hour, app_id, flow, carrier, outcome, error_code)",
	},
	"risk_scores_hourly": {
		columns: [][2]string{
			{"hour", "DateTime('UTC')"}, {"app_id", "String"}, {"flow", "String"}, {"carrier", "String"},
			{"rules_version", "String"}, {"events", uniqT}, {"phones", uniqT},
			{"score_0", uniqIfT}, {"score_300", uniqIfT}, {"score_600", uniqIfT}, {"score_900", uniqIfT},
		},
		engine:    "AggregatingMergeTree",
		partition: "toYYYYMM(hour)",
		orderBy:   "(hour, app_id, flow, carrier, rules_version)",
	},
	"rule_hits_hourly": {
		columns: [][2]string{
			{"hour", "DateTime('UTC')"}, {"app_id", "String"}, {"flow", "String"}, {"carrier", "String"},
			{"rule", "String"}, {"tag", "String"}, {"mode", "String"}, {"events", uniqT}, {"phones", uniqT},
		},
		engine:    "AggregatingMergeTree",
		partition: "toYYYYMM(hour)",
		orderBy:   "(hour, app_id, flow, carrier, rule, tag, mode)",
	},
	"backtest_runs": {
		columns: [][2]string{
			{"run_id", "String"}, {"started_at", "DateTime('UTC')"}, {"finished_at", "DateTime('UTC')"},
			{"from_ts", "DateTime('UTC')"}, {"to_ts", "DateTime('UTC')"},
			{"current_name", "String"}, {"current_version", "String"}, {"candidate_name", "String"}, {"candidate_version", "String"},
			{"events", "UInt64"}, {"warmup_events", "UInt64"}, {"skipped_events", "UInt64"}, {"changed_events", "UInt64"},
			{"events_per_sec", "Float64"},
			{"transition_from", "Array(UInt16)"}, {"transition_to", "Array(UInt16)"}, {"transition_count", "Array(UInt64)"},
			{"transitions", "String"},
			{"rule_ids", "Array(String)"}, {"rule_current_hits", "Array(UInt64)"}, {"rule_candidate_hits", "Array(UInt64)"},
			{"rule_gained", "Array(UInt64)"}, {"rule_lost", "Array(UInt64)"}, {"rule_diffs", "String"},
			{"flag_at", "UInt16"}, {"labeled", "UInt64"},
			{"current_precision", "Nullable(Float64)"}, {"current_recall", "Nullable(Float64)"},
			{"candidate_precision", "Nullable(Float64)"}, {"candidate_recall", "Nullable(Float64)"},
			{"report", "String"},
		},
		engine:    "ReplacingMergeTree(finished_at)",
		partition: "toYYYYMM(started_at)",
		orderBy:   "run_id",
	},
}

const (
	uniqT   = "AggregateFunction(uniq, String)"
	uniqIfT = "AggregateFunction(uniqIf, String, UInt8)"
)

// The materialized views, pinned: name → the table they read and the table they write.
var wantViews = map[string][2]string{
	"verify_events_hourly_mv": {"verify_events", "verify_events_hourly"},
	"risk_scores_hourly_mv":   {"risk_scores", "risk_scores_hourly"},
	"rule_hits_hourly_mv":     {"risk_scores", "rule_hits_hourly"},
}

// The only columns whose name mentions the phone. Anything else (phone, phone_number,
// msisdn, mobile, ...) could hold the plaintext number.
var allowedPhoneColumns = []string{"phone_hash", "phone_masked", "phone_segment"}

// Columns of the hourly views that count distinct numbers: uniq states of phone_hash.
var allowedAggregateColumns = []string{"phones"}

func readFiles(t *testing.T) map[string]string {
	t.Helper()
	files, err := fs.Glob(Migrations, "migrations/*.sql")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(files, wantFiles) {
		t.Fatalf("embedded files = %q, want %q", files, wantFiles)
	}
	out := map[string]string{}
	for _, f := range files {
		b, err := fs.ReadFile(Migrations, f)
		if err != nil {
			t.Fatal(err)
		}
		out[f] = string(b)
	}
	return out
}

// stripComments drops "--" comments (the files hold no "--" inside strings).
func stripComments(s string) string {
	var b strings.Builder
	for _, line := range strings.Split(s, "\n") {
		if i := strings.Index(line, "--"); i >= 0 {
			line = line[:i]
		}
		if strings.TrimSpace(line) != "" {
			b.WriteString(strings.TrimRight(line, " \t") + "\n")
		}
	}
	return b.String()
}

func TestDatabaseFile(t *testing.T) {
	got := stripComments(readFiles(t)["migrations/0001_database.sql"])
	if got != "CREATE DATABASE IF NOT EXISTS riskflow;\n" {
		t.Errorf("0001_database.sql = %q", got)
	}
}

func TestTablesPinned(t *testing.T) {
	for _, v := range []Version{oldestServer, currentServer} {
		sd := schemaOn(t, v)
		for name, want := range wantTables {
			got := sd.tables[name]
			if got == nil {
				t.Errorf("on %s no migration creates %s", v, name)
				continue
			}
			wantCols := want.columns
			wantTTL := ""
			if v.AtLeast(currentServer) {
				wantCols = slices.Clone(wantCols)
				for i, c := range wantCols {
					if typ, ok := wantCurrentTypes[name][c[0]]; ok {
						wantCols[i][1] = typ
					}
				}
				wantTTL = wantCurrentTTL[name]
			}
			if !slices.Equal(got.pairs(), wantCols) {
				t.Errorf("on %s, %s columns:\n got %v\nwant %v", v, name, got.pairs(), wantCols)
			}
			if got.engine != want.engine || got.partition != want.partition || got.orderBy != want.orderBy {
				t.Errorf("%s: ENGINE %s PARTITION BY %q ORDER BY %s; want ENGINE %s PARTITION BY %q ORDER BY %s",
					name, got.engine, got.partition, got.orderBy, want.engine, want.partition, want.orderBy)
			}
			if got.ttl != wantTTL {
				t.Errorf("on %s, %s has TTL %q, want %q", v, name, got.ttl, wantTTL)
			}
			for _, c := range got.columns {
				if strings.TrimSpace(c.comment) == "" {
					t.Errorf("%s.%s has no COMMENT", name, c.name)
				}
			}
		}
		for name, tb := range sd.tables {
			if _, ok := wantTables[name]; !ok {
				t.Errorf("%s creates unexpected table %s", tb.file, name)
			}
		}
		if !slices.Equal(sd.databases, []string{"riskflow"}) {
			t.Errorf("databases created: %q", sd.databases)
		}
	}
	// One file per table, named after it; a view lives in its table's file, named <table>_mv.
	// The version-conditional files create nothing: they change how existing tables store. A
	// file that replaces views (drops and creates them again) creates no table either.
	sd := schemaOn(t, currentServer)
	perFile := map[string][]string{}
	for name, tb := range sd.tables {
		perFile[tb.file] = append(perFile[tb.file], name)
	}
	replaces := map[string]bool{}
	for _, v := range sd.views {
		if v.replaced {
			replaces[v.file] = true
		}
	}
	for _, f := range wantFiles[1:] {
		if _, cond := wantConditional[f]; cond || replaces[f] {
			if len(perFile[f]) != 0 {
				t.Errorf("%s is version-conditional or replaces views, and creates tables %q", f, perFile[f])
			}
			continue
		}
		if len(perFile[f]) != 1 || !strings.HasSuffix(strings.TrimSuffix(f, ".sql"), "_"+perFile[f][0]) {
			t.Errorf("%s creates tables %q; want exactly the table the file is named after", f, perFile[f])
		}
	}
}

// A version-conditional file says which release it needs, one that 18.16 is not and current
// ClickHouse is; it only changes storage (MODIFY COLUMN to the LowCardinality form of the same
// type, MODIFY TTL), so queries and inserts behave the same on servers with and without it.
func TestVersionConditionalMigrations(t *testing.T) {
	files := readFiles(t)
	oldSchema := schemaOn(t, oldestServer)
	for _, f := range wantFiles {
		req, err := Requires(files[f])
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		want, cond := wantConditional[f]
		switch {
		case !cond && req != nil:
			t.Errorf("%s requires ClickHouse >= %s; add it to wantConditional", f, req)
			continue
		case !cond:
			continue
		case req == nil || req.String() != want:
			t.Errorf("%s requires %v, want ClickHouse >= %s", f, req, want)
			continue
		}
		if oldestServer.AtLeast(req) || !currentServer.AtLeast(req) {
			t.Errorf("%s requires %s: it must be newer than %s (else it is not conditional) and not newer than %s (else CI never runs it)",
				f, req, oldestServer, currentServer)
		}
		stmts, err := statements(files[f])
		if err != nil {
			t.Fatal(err)
		}
		for _, st := range stmts {
			if m := modifyColumnsRE.FindStringSubmatch(st); m != nil {
				for _, part := range splitTop(m[2]) {
					c := modifyColumnRE.FindStringSubmatch(part)
					if c == nil {
						continue // parseSchema reports it
					}
					var old string
					if tb := oldSchema.tables[m[1]]; tb != nil {
						for _, col := range tb.columns {
							if col.name == c[1] {
								old = col.typ
							}
						}
					}
					if c[2] != "LowCardinality("+old+")" && !(strings.HasPrefix(old, "Array(") && c[2] == "Array(LowCardinality("+strings.TrimPrefix(old, "Array(")+")") {
						t.Errorf("%s: %s.%s %s → %s changes more than the storage (LowCardinality of the same type only)", f, m[1], c[1], old, c[2])
					}
				}
				continue
			}
			if modifyTTLRE.MatchString(st) {
				continue
			}
			t.Errorf("%s: a version-conditional file may only MODIFY COLUMN (to LowCardinality) or MODIFY TTL:\n%s", f, st)
		}
	}
	for f := range wantConditional {
		if !slices.Contains(wantFiles, f) {
			t.Errorf("wantConditional names %s, which is not a migration", f)
		}
	}
	for _, bad := range []string{
		"-- x: y\n-- requires: ClickHouse 20.3\nSELECT 1;",
		"-- x: y\n-- requires: clickhouse >= twenty\nSELECT 1;",
		"-- x: y\nSELECT 1;\n-- requires: ClickHouse >= 20.3\n",
		"-- requires: ClickHouse >= 20.3\n-- requires: ClickHouse >= 21.8\nSELECT 1;",
	} {
		if _, err := Requires(bad); err == nil {
			t.Errorf("Requires(%q): no error", bad)
		}
	}
	if v, err := Requires("-- x\n--   requires: ClickHouse >= 21.8.3\n\nSELECT 1;"); err != nil || v.String() != "21.8.3" {
		t.Errorf("Requires = %v, %v", v, err)
	}
	for _, c := range []struct {
		v, min string
		want   bool
	}{{"18.16.1", "20.3", false}, {"20.3", "20.3", true}, {"20.3.1.2", "20.3", true}, {"20.2.9", "20.3", false}, {"26.9.2.1", "20.3", true}, {"21", "20.3", true}} {
		v, _ := ParseVersion(c.v)
		m, _ := ParseVersion(c.min)
		if v.AtLeast(m) != c.want {
			t.Errorf("%s.AtLeast(%s) = %v", c.v, c.min, !c.want)
		}
	}
	for _, bad := range []string{"", "20.", "x.1", "20.-1"} {
		if _, err := ParseVersion(bad); err == nil {
			t.Errorf("ParseVersion(%q): no error", bad)
		}
	}
}

func TestViewsPinned(t *testing.T) {
	sd := schema(t)
	for name, want := range wantViews {
		v := sd.views[name]
		if v == nil {
			t.Errorf("no migration creates view %s", name)
			continue
		}
		if v.from != want[0] || v.to != want[1] {
			t.Errorf("view %s reads %s and writes %s; want %s and %s", name, v.from, v.to, want[0], want[1])
		}
		target := sd.tables[v.to]
		if target == nil {
			t.Errorf("view %s writes %s, which no migration creates", name, v.to)
			continue
		}
		if (target.file != v.file && !(v.replaced && v.file > target.file)) || name != v.to+"_mv" {
			t.Errorf("view %s (in %s) should be named %s_mv and live in %s with its table (or be replaced by a later file)", name, v.file, v.to, target.file)
		}
		if target.engine != "AggregatingMergeTree" {
			t.Errorf("view %s writes %s, engine %s; want AggregatingMergeTree", name, v.to, target.engine)
		}
		// Every column of the target is an output of the SELECT, by name; counters are states.
		for _, c := range target.columns {
			if !regexp.MustCompile(`\b` + c.name + `\b`).MatchString(v.query) {
				t.Errorf("view %s does not fill %s.%s", name, v.to, c.name)
			}
			if strings.HasPrefix(c.typ, "AggregateFunction(") {
				fn := strings.TrimSuffix(strings.SplitN(strings.TrimPrefix(c.typ, "AggregateFunction("), ",", 2)[0], ")")
				if !strings.Contains(v.query, fn+"State(") || !strings.Contains(v.query, "AS "+c.name) {
					t.Errorf("view %s: %s.%s (%s) is not filled by %sState(...) AS %s", name, v.to, c.name, c.typ, fn, c.name)
				}
			}
		}
		if _, ok := sd.tables[v.from]; !ok {
			t.Errorf("view %s reads %s, which no migration creates", name, v.from)
		}
	}
	for name, v := range sd.views {
		if _, ok := wantViews[name]; !ok {
			t.Errorf("%s creates unexpected view %s", v.file, name)
		}
	}
}

func TestNoPlaintextPhoneColumn(t *testing.T) {
	sd := schema(t)
	for name, tb := range sd.tables {
		for _, c := range tb.columns {
			col := strings.ToLower(c.name)
			suspicious := strings.Contains(col, "phone") || strings.Contains(col, "msisdn") ||
				strings.Contains(col, "mobile") || col == "number" || col == "tel"
			if suspicious && !slices.Contains(allowedPhoneColumns, col) && !slices.Contains(allowedAggregateColumns, col) {
				t.Errorf("%s.%s could hold a plaintext phone number; store only %v", name, c.name, allowedPhoneColumns)
			}
			if slices.Contains(allowedAggregateColumns, col) && !strings.HasPrefix(c.typ, "AggregateFunction(uniq") {
				t.Errorf("%s.%s must be a uniq state of phone_hash, not %s", name, c.name, c.typ)
			}
		}
	}
	// Every event table keeps the hash, so analysts can still group by phone.
	for _, name := range []string{"verify_events", "risk_scores"} {
		if !slices.Contains(wantTables[name].columns, [2]string{"phone_hash", "String"}) {
			t.Errorf("%s has no phone_hash", name)
		}
	}
	// The views count numbers by their hash only.
	for name, v := range sd.views {
		if strings.Contains(v.query, "phone_masked") || strings.Contains(v.query, "phone_segment") {
			t.Errorf("view %s reads a phone column other than phone_hash", name)
		}
	}
}

var stringLiteral = regexp.MustCompile(`'[^'\\]*'`)

// Things that do not run on ClickHouse 18.16 or that break repeatability.
func TestPortableAndRepeatable(t *testing.T) {
	forbidden := []struct{ re, why string }{
		{`(?i)DateTime64`, "DateTime64 is not in 18.16"},
		{`(?i)\bMap\s*\(`, "Map is not in 18.16"},
		{`(?i)LowCardinality`, "LowCardinality is not in 18.16 without a setting"},
		{`(?i)\bJSON\b|\bObject\s*\(`, "the JSON type is not in 18.16"},
		{`(?i)ADD\s+COLUMN\s+IF\s+NOT\s+EXISTS`, "18.16 has no ADD COLUMN IF NOT EXISTS; use a plain ADD COLUMN"},
		{`(?i)\bTTL\b`, "TTL is not in 18.16"},
		{`(?i)\bCODEC\s*\(`, "codecs are not in 18.16"},
		{`(?i)\b(ENGINE|ORDER BY|SETTINGS)\b[^;]*\bCOMMENT\b`, "table comments are not in 18.16"},
		{`(?i)\bphone\b`, "no column or expression named phone"},
		{`(?i)SimpleAggregateFunction`, "SimpleAggregateFunction is not in 18.16; use uniq states (see migrations.go)"},
		{`(?i)\bPOPULATE\b`, "POPULATE misses rows inserted while it runs and is not repeatable; use backfill/"},
		{`(?i)\bJSONExtract`, "JSONExtract functions are not in 18.16"},
	}
	files := readFiles(t)
	for _, f := range wantFiles {
		sql := stripComments(files[f])
		code := stringLiteral.ReplaceAllString(sql, "''") // column comments may say anything
		for _, fb := range forbidden {
			if _, cond := wantConditional[f]; cond && !strings.Contains(fb.why, "phone") {
				continue // runs only where these exist; TestVersionConditionalMigrations limits what it does
			}
			if regexp.MustCompile(fb.re).MatchString(code) {
				t.Errorf("%s matches %s: %s", f, fb.re, fb.why)
			}
		}
		for _, stmt := range regexp.MustCompile(`(?is)\bCREATE\s+(TABLE|DATABASE|MATERIALIZED\s+VIEW|VIEW)\s+(\S+)`).FindAllStringSubmatch(sql, -1) {
			if !strings.EqualFold(stmt[2], "IF") {
				t.Errorf("%s: CREATE %s %s without IF NOT EXISTS", f, stmt[1], stmt[2])
			}
		}
		if !strings.HasSuffix(strings.TrimSpace(sql), ";") {
			t.Errorf("%s: last statement does not end with ;", f)
		}
		// The migrator substitutes the bare word riskflow; it must only ever name the database.
		for _, m := range regexp.MustCompile(`(.{0,30})\briskflow\b(.?)`).FindAllStringSubmatch(sql, -1) {
			if m[2] != "." && !strings.HasSuffix(m[1], "DATABASE IF NOT EXISTS ") {
				t.Errorf("%s: riskflow used as something else than the database: %q", f, m[0])
			}
		}
	}
}

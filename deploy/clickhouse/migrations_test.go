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
}

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
	"rule_versions": {
		columns: [][2]string{
			{"version", "String"}, {"name", "String"}, {"loaded_at", "DateTime('UTC')"}, {"loaded_by", "String"},
			{"source", "String"}, {"rule_count", "UInt32"}, {"content", "String"},
		},
		engine:  "ReplacingMergeTree(loaded_at)",
		orderBy: "version",
	},
	"schema_migrations": {
		columns: [][2]string{{"id", "UInt32"}, {"name", "String"}, {"applied_at", "DateTime('UTC')"}},
		engine:  "ReplacingMergeTree",
		orderBy: "id",
	},
}

// The only columns whose name mentions the phone. Anything else (phone, phone_number,
// msisdn, mobile, ...) could hold the plaintext number.
var allowedPhoneColumns = []string{"phone_hash", "phone_masked", "phone_segment"}

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

var (
	createTableRE = regexp.MustCompile(`(?s)^CREATE TABLE IF NOT EXISTS riskflow\.(\w+)\n\(\n(.*?)\n\)\nENGINE = (\S+)\n(?:PARTITION BY (.+?)\n)?ORDER BY (.+?)\nSETTINGS index_granularity = 8192;\n$`)
	columnRE      = regexp.MustCompile(`^\s+(\w+)\s+(\S+)(?:\s+DEFAULT\s+\S+)?\s+COMMENT\s+'[^'\\]*',?$`)
)

func parseTable(t *testing.T, file, sql string) (string, table) {
	t.Helper()
	m := createTableRE.FindStringSubmatch(sql)
	if m == nil {
		t.Fatalf("%s: not one CREATE TABLE IF NOT EXISTS riskflow.x (...) ENGINE ... ORDER BY ... in the expected layout:\n%s", file, sql)
	}
	tb := table{engine: m[3], partition: m[4], orderBy: m[5]}
	for _, line := range strings.Split(m[2], "\n") {
		c := columnRE.FindStringSubmatch(line)
		if c == nil {
			t.Fatalf("%s: column line %q is not `name Type [DEFAULT x] COMMENT '...'`", file, line)
		}
		tb.columns = append(tb.columns, [2]string{c[1], c[2]})
	}
	return m[1], tb
}

func TestDatabaseFile(t *testing.T) {
	got := stripComments(readFiles(t)["migrations/0001_database.sql"])
	if got != "CREATE DATABASE IF NOT EXISTS riskflow;\n" {
		t.Errorf("0001_database.sql = %q", got)
	}
}

func TestTablesPinned(t *testing.T) {
	files := readFiles(t)
	seen := map[string]bool{}
	for _, f := range wantFiles[1:] {
		name, got := parseTable(t, f, stripComments(files[f]))
		want, ok := wantTables[name]
		if !ok {
			t.Errorf("%s creates unexpected table %s", f, name)
			continue
		}
		if !strings.Contains(f, name) {
			t.Errorf("%s creates %s; name the file after the table", f, name)
		}
		seen[name] = true
		if !slices.Equal(got.columns, want.columns) {
			t.Errorf("%s columns:\n got %v\nwant %v", name, got.columns, want.columns)
		}
		if got.engine != want.engine || got.partition != want.partition || got.orderBy != want.orderBy {
			t.Errorf("%s: ENGINE %s PARTITION BY %q ORDER BY %s; want ENGINE %s PARTITION BY %q ORDER BY %s",
				name, got.engine, got.partition, got.orderBy, want.engine, want.partition, want.orderBy)
		}
	}
	for name := range wantTables {
		if !seen[name] {
			t.Errorf("no migration creates %s", name)
		}
	}
}

func TestNoPlaintextPhoneColumn(t *testing.T) {
	files := readFiles(t)
	for _, f := range wantFiles[1:] {
		name, tb := parseTable(t, f, stripComments(files[f]))
		for _, c := range tb.columns {
			col := strings.ToLower(c[0])
			suspicious := strings.Contains(col, "phone") || strings.Contains(col, "msisdn") ||
				strings.Contains(col, "mobile") || col == "number" || col == "tel"
			if suspicious && !slices.Contains(allowedPhoneColumns, col) {
				t.Errorf("%s.%s could hold a plaintext phone number; store only %v", name, c[0], allowedPhoneColumns)
			}
		}
	}
	// Every event table keeps the hash, so analysts can still group by phone.
	for _, name := range []string{"verify_events", "risk_scores"} {
		if !slices.Contains(wantTables[name].columns, [2]string{"phone_hash", "String"}) {
			t.Errorf("%s has no phone_hash", name)
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
	}
	files := readFiles(t)
	for _, f := range wantFiles {
		sql := stripComments(files[f])
		code := stringLiteral.ReplaceAllString(sql, "''") // column comments may say anything
		for _, fb := range forbidden {
			if regexp.MustCompile(fb.re).MatchString(code) {
				t.Errorf("%s matches %s: %s", f, fb.re, fb.why)
			}
		}
		for _, stmt := range regexp.MustCompile(`(?is)\bCREATE\s+(TABLE|DATABASE)\s+(\S+)`).FindAllStringSubmatch(sql, -1) {
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

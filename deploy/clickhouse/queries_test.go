package clickhouse

import (
	"path"
	"regexp"
	"slices"
	"strings"
	"testing"
)

var (
	headerRE    = regexp.MustCompile(`^-- ([a-z0-9_]+): \S`)
	tableRefRE  = regexp.MustCompile(`\briskflow\.(\w+)`)
	bareWordRE  = regexp.MustCompile(`(.{0,30})\briskflow\b(.?)`)
	insertRE    = regexp.MustCompile(`^INSERT INTO riskflow\.(\w+) \(([^)]*)\) (SELECT .*)$`)
	queryBanned = []struct{ re, why string }{
		{`(?i)\bJSONExtract`, "JSONExtract functions are not in 18.16"},
		{`(?i)\bMap\s*\(|\bmapKeys\b`, "Map is not in 18.16"},
		{`(?i)DateTime64`, "DateTime64 is not in 18.16"},
		{`(?i)\bLowCardinality\b`, "LowCardinality is not in 18.16"},
		{`(?i)\bWINDOW\b|\bOVER\s*\(`, "window functions are not in 18.16"},
		{`(?i)\bgreatest\s*\([^()]*,[^()]*,`, "greatest takes two arguments on 18.16"},
		{`(?i)\bphone\b`, "the plaintext number is not stored"},
		// The server's time zone rounds now() and cuts its days: a server at UTC+5:30 or +5:45 moves
		// every hour window off the UTC hours of the hourly views (TestSQLOnBothClickHouses runs
		// chDB in Asia/Kathmandu to catch it).
		{`(?i)\b(toStartOf\w+|toDate|toHour|toMonday|toYYYYMM\w*)\(\s*now\(\)\s*\)|\btoday\(\)|\byesterday\(\)`, "round the clock in a named zone: toStartOfHour(now(), 'UTC')"},
		// ClickHouse 20.x and newer refuse a joined subquery without an alias (Code 206,
		// joined_subquery_requires_alias); 18.16 takes one either way.
		{`(?i)\) (ANY |ALL |ASOF |SEMI |ANTI )?(LEFT |RIGHT |INNER |FULL |CROSS )?(OUTER )?JOIN\b`, "give the subquery before JOIN an alias: ) AS name JOIN"},
		{`(?i)\bJOIN \([^()]*(\([^()]*\)[^()]*)*\) (USING|ON)\b`, "give the joined subquery an alias: JOIN (...) AS name USING"},
		{`(?i)\) (USING|ON) `, "give the joined subquery an alias: (...) AS name USING"},
	}
)

// Every query file: a header comment naming the file, one SELECT, the database only as the
// bare word riskflow before a dot, and only tables and views the migrations create.
func TestQueryFiles(t *testing.T) {
	sd := schema(t)
	files := readDir(t, Queries, "queries/*.sql")
	if len(files) < 5 {
		t.Fatalf("%d query files", len(files))
	}
	for f, src := range files {
		checkHeader(t, f, src)
		stmts, err := statements(src)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if len(stmts) != 1 || !strings.HasPrefix(stmts[0], "SELECT ") {
			t.Errorf("%s: want exactly one SELECT statement, got %d statements", f, len(stmts))
			continue
		}
		checkCode(t, sd, f, stmts[0])
		if !strings.HasSuffix(strings.TrimSpace(src), ";") {
			t.Errorf("%s: end the statement with ; (clickhouse-client --multiquery needs it)", f)
		}
	}
}

// The backfill holds, for every hourly view, an INSERT into the view's table with the
// view's own SELECT, so the two cannot drift apart.
func TestBackfillMatchesViews(t *testing.T) {
	sd := schema(t)
	files := readDir(t, Backfill, "backfill/*.sql")
	inserts := map[string][2]string{} // table → column list, select
	for f, src := range files {
		checkHeader(t, f, src)
		stmts, err := statements(src)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, st := range stmts {
			m := insertRE.FindStringSubmatch(st)
			if m == nil {
				t.Errorf("%s: not INSERT INTO riskflow.table (columns) SELECT ...:\n%s", f, st)
				continue
			}
			inserts[m[1]] = [2]string{m[2], m[3]}
			checkCode(t, sd, f, st)
		}
	}
	for name, v := range sd.views {
		ins, ok := inserts[v.to]
		if !ok {
			t.Errorf("backfill/ does not fill %s (view %s)", v.to, name)
			continue
		}
		var cols []string
		for _, c := range sd.tables[v.to].columns {
			cols = append(cols, c.name)
		}
		if got := strings.Split(ins[0], ", "); !slices.Equal(got, cols) {
			t.Errorf("backfill of %s names columns %q, want %q", v.to, got, cols)
		}
		if ins[1] != v.query {
			t.Errorf("backfill of %s selects\n %s\nbut view %s selects\n %s", v.to, ins[1], name, v.query)
		}
	}
}

func checkHeader(t *testing.T, f, src string) {
	t.Helper()
	m := headerRE.FindStringSubmatch(src)
	if want := strings.TrimSuffix(path.Base(f), ".sql"); m == nil || m[1] != want {
		t.Errorf("%s: the file must start with `-- %s: what it answers`", f, want)
	}
	if strings.Count(src[:strings.Index(src+"\nSELECT", "\nSELECT")], "\n-- ") < 2 {
		t.Errorf("%s: the header comment should say more than one line", f)
	}
}

func checkCode(t *testing.T, sd *schemaDef, f, st string) {
	t.Helper()
	code := stringLiteral.ReplaceAllString(st, "''")
	for _, b := range queryBanned {
		if regexp.MustCompile(b.re).MatchString(code) {
			t.Errorf("%s matches %s: %s", f, b.re, b.why)
		}
	}
	for _, m := range bareWordRE.FindAllStringSubmatch(code, -1) {
		if m[2] != "." {
			t.Errorf("%s: riskflow used as something else than the database: %q", f, m[0])
		}
	}
	for _, m := range tableRefRE.FindAllStringSubmatch(code, -1) {
		if sd.tables[m[1]] == nil && sd.views[m[1]] == nil {
			t.Errorf("%s reads riskflow.%s, which no migration creates", f, m[1])
		}
	}
}

package clickhouse

import (
	"fmt"
	"io/fs"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// A small reader of the DDL the migrations hold: enough SQL lexing to split files into
// statements and enough parsing to know which tables, columns and views they create. It is
// strict on purpose: a statement it does not recognise fails the tests, so a new kind of
// migration statement has to be taught here (and documented in SCHEMA.md) first.

type column struct {
	name, typ, comment string
	hasDefault         bool
}

type tableDef struct {
	name      string
	file      string
	columns   []column
	engine    string
	partition string // "" if not partitioned
	orderBy   string
	ttl       string // "" without a TTL
}

func (t *tableDef) pairs() [][2]string {
	out := make([][2]string, len(t.columns))
	for i, c := range t.columns {
		out[i] = [2]string{c.name, c.typ}
	}
	return out
}

type viewDef struct {
	name, file, to, from, query string
	// replaced: a later file dropped the view (DROP TABLE IF EXISTS) and created it again with
	// another SELECT; file is then that file.
	replaced bool
}

type schemaDef struct {
	databases []string
	tables    map[string]*tableDef
	views     map[string]*viewDef
	dropped   map[string]string // view → the file that dropped it and has not created it yet
}

// statements splits src at semicolons outside quotes, drops -- and /* */ comments, and folds
// every run of whitespace outside quotes into one space.
func statements(src string) ([]string, error) {
	var (
		out []string
		cur strings.Builder
	)
	space := false
	emit := func(s string) {
		if space && cur.Len() > 0 {
			cur.WriteByte(' ')
		}
		space = false
		cur.WriteString(s)
	}
	flush := func() {
		if s := strings.TrimSpace(cur.String()); s != "" {
			out = append(out, s)
		}
		cur.Reset()
		space = false
	}
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == '-' && strings.HasPrefix(src[i:], "--"):
			end := strings.IndexByte(src[i:], '\n')
			if end < 0 {
				end = len(src) - i
			}
			i += end
			space = true
		case c == '/' && strings.HasPrefix(src[i:], "/*"):
			end := strings.Index(src[i+2:], "*/")
			if end < 0 {
				return nil, fmt.Errorf("unterminated /* at byte %d", i)
			}
			i += end + 4
			space = true
		case c == '\'' || c == '"' || c == '`':
			j := i + 1
			for ; j < len(src); j++ {
				if src[j] == '\\' {
					j++
					continue
				}
				if src[j] == c {
					if j+1 < len(src) && src[j+1] == c {
						j++
						continue
					}
					break
				}
			}
			if j >= len(src) {
				return nil, fmt.Errorf("unterminated %c at byte %d", c, i)
			}
			emit(src[i : j+1])
			i = j + 1
		case c == ';':
			flush()
			i++
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			space = true
			i++
		default:
			emit(string(c))
			i++
		}
	}
	flush()
	return out, nil
}

// splitTop splits s at commas that are not inside parentheses or quotes.
func splitTop(s string) []string {
	var (
		out   []string
		depth int
		quote byte
		start int
	)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == '\\' {
				i++
			} else if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"' || c == '`':
			quote = c
		case c == '(':
			depth++
		case c == ')':
			depth--
		case c == ',' && depth == 0:
			out = append(out, strings.TrimSpace(s[start:i]))
			start = i + 1
		}
	}
	return append(out, strings.TrimSpace(s[start:]))
}

var (
	createDatabaseRE = regexp.MustCompile(`^CREATE DATABASE IF NOT EXISTS (\w+)$`)
	createTableRE    = regexp.MustCompile(`^CREATE TABLE IF NOT EXISTS riskflow\.(\w+) \((.*)\) ENGINE = (.+?)(?: PARTITION BY (.+?))? ORDER BY (.+?) SETTINGS index_granularity = 8192$`)
	createViewRE     = regexp.MustCompile(`^CREATE MATERIALIZED VIEW IF NOT EXISTS riskflow\.(\w+) TO riskflow\.(\w+) AS (SELECT .*)$`)
	viewFromRE       = regexp.MustCompile(`\bFROM riskflow\.(\w+)`)
	addColumnRE      = regexp.MustCompile(`^ALTER TABLE riskflow\.(\w+) ADD COLUMN (.+?)(?: AFTER (\w+))?$`)
	dropColumnRE     = regexp.MustCompile(`^ALTER TABLE riskflow\.(\w+) DROP COLUMN (?:IF EXISTS )?(\w+)$`)
	modifyColumnsRE  = regexp.MustCompile(`^ALTER TABLE riskflow\.(\w+) (MODIFY COLUMN .+)$`)
	modifyColumnRE   = regexp.MustCompile(`^MODIFY COLUMN (\w+) (\S+)$`)
	modifyTTLRE      = regexp.MustCompile(`^ALTER TABLE riskflow\.(\w+) MODIFY TTL (.+)$`)
	dropViewRE       = regexp.MustCompile(`^DROP TABLE IF EXISTS riskflow\.(\w+_mv)$`)
	columnTailRE     = regexp.MustCompile(`^(?:(DEFAULT|MATERIALIZED|ALIAS) (.+?))?\s*(?:COMMENT '((?:[^'\\]|\\.|'')*)')?$`)
)

// parseColumn reads `name Type [DEFAULT expr] [COMMENT '...']`; Type may hold spaces inside
// parentheses (AggregateFunction(uniqIf, String, UInt8)).
func parseColumn(s string) (column, error) {
	name, rest, ok := strings.Cut(s, " ")
	if !ok || !regexp.MustCompile(`^\w+$`).MatchString(name) {
		return column{}, fmt.Errorf("column %q: want `name Type ...`", s)
	}
	depth, end := 0, len(rest)
	for i := 0; i < len(rest); i++ {
		if rest[i] == '(' {
			depth++
		} else if rest[i] == ')' {
			depth--
		} else if rest[i] == ' ' && depth == 0 {
			end = i
			break
		}
	}
	c := column{name: name, typ: rest[:end]}
	m := columnTailRE.FindStringSubmatch(strings.TrimSpace(rest[end:]))
	if m == nil {
		return column{}, fmt.Errorf("column %q: cannot read what follows the type", s)
	}
	c.hasDefault = m[1] != ""
	c.comment = m[3]
	return c, nil
}

// parseSchema reads every statement of files (name → content, applied in name order) that a
// server of release version applies: a version-conditional file (chschema.Requires) counts
// only when version is new enough, as for the migrator.
func parseSchema(files map[string]string, version Version) (*schemaDef, error) {
	sd := &schemaDef{tables: map[string]*tableDef{}, views: map[string]*viewDef{}}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, file := range names {
		req, err := Requires(files[file])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		if req != nil && !version.AtLeast(req) {
			continue
		}
		stmts, err := statements(files[file])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		for _, st := range stmts {
			if err := sd.apply(file, st); err != nil {
				return nil, fmt.Errorf("%s: %w", file, err)
			}
		}
		for v, f := range sd.dropped {
			return nil, fmt.Errorf("%s drops view %s without creating it again", f, v)
		}
	}
	return sd, nil
}

func (sd *schemaDef) apply(file, st string) error {
	if m := createDatabaseRE.FindStringSubmatch(st); m != nil {
		sd.databases = append(sd.databases, m[1])
		return nil
	}
	if m := createTableRE.FindStringSubmatch(st); m != nil {
		if sd.tables[m[1]] != nil || sd.views[m[1]] != nil {
			return fmt.Errorf("%s created twice", m[1])
		}
		t := &tableDef{name: m[1], file: file, engine: m[3], partition: m[4], orderBy: m[5]}
		for _, cs := range splitTop(m[2]) {
			c, err := parseColumn(cs)
			if err != nil {
				return fmt.Errorf("table %s: %w", t.name, err)
			}
			t.columns = append(t.columns, c)
		}
		sd.tables[t.name] = t
		return nil
	}
	if m := createViewRE.FindStringSubmatch(st); m != nil {
		if sd.tables[m[1]] != nil || sd.views[m[1]] != nil {
			return fmt.Errorf("%s created twice", m[1])
		}
		froms := viewFromRE.FindAllStringSubmatch(m[3], -1)
		if len(froms) != 1 {
			return fmt.Errorf("view %s: want exactly one FROM riskflow.table, found %d", m[1], len(froms))
		}
		_, replaced := sd.dropped[m[1]]
		delete(sd.dropped, m[1])
		sd.views[m[1]] = &viewDef{name: m[1], file: file, to: m[2], from: froms[0][1], query: m[3], replaced: replaced}
		return nil
	}
	if m := dropViewRE.FindStringSubmatch(st); m != nil {
		// A view replaced by a later file: dropped, then created again in the same file (checked
		// when the schema is complete: nothing may stay dropped).
		if sd.views[m[1]] == nil {
			return fmt.Errorf("DROP of %s, which no earlier file creates as a view", m[1])
		}
		delete(sd.views, m[1])
		if sd.dropped == nil {
			sd.dropped = map[string]string{}
		}
		sd.dropped[m[1]] = file
		return nil
	}
	if m := addColumnRE.FindStringSubmatch(st); m != nil {
		t := sd.tables[m[1]]
		if t == nil {
			return fmt.Errorf("ADD COLUMN to unknown table %s", m[1])
		}
		c, err := parseColumn(m[2])
		if err != nil {
			return fmt.Errorf("table %s: %w", t.name, err)
		}
		at := len(t.columns)
		if m[3] != "" {
			i := slices.IndexFunc(t.columns, func(x column) bool { return x.name == m[3] })
			if i < 0 {
				return fmt.Errorf("table %s: ADD COLUMN ... AFTER unknown column %s", t.name, m[3])
			}
			at = i + 1
		}
		t.columns = slices.Insert(t.columns, at, c)
		return nil
	}
	if m := dropColumnRE.FindStringSubmatch(st); m != nil {
		t := sd.tables[m[1]]
		if t == nil {
			return fmt.Errorf("DROP COLUMN from unknown table %s", m[1])
		}
		t.columns = slices.DeleteFunc(t.columns, func(x column) bool { return x.name == m[2] })
		return nil
	}
	if m := modifyColumnsRE.FindStringSubmatch(st); m != nil {
		t := sd.tables[m[1]]
		if t == nil {
			return fmt.Errorf("MODIFY COLUMN of unknown table %s", m[1])
		}
		for _, part := range splitTop(m[2]) {
			c := modifyColumnRE.FindStringSubmatch(part)
			if c == nil {
				return fmt.Errorf("table %s: %q: want MODIFY COLUMN name Type (no default, no comment: the column keeps its own)", t.name, part)
			}
			i := slices.IndexFunc(t.columns, func(x column) bool { return x.name == c[1] })
			if i < 0 {
				return fmt.Errorf("table %s: MODIFY COLUMN of unknown column %s", t.name, c[1])
			}
			t.columns[i].typ = c[2]
		}
		return nil
	}
	if m := modifyTTLRE.FindStringSubmatch(st); m != nil {
		t := sd.tables[m[1]]
		if t == nil {
			return fmt.Errorf("MODIFY TTL of unknown table %s", m[1])
		}
		t.ttl = m[2]
		return nil
	}
	return fmt.Errorf("statement not understood by the schema tests (teach ddl_test.go):\n%s", st)
}

func readDir(t *testing.T, fsys fs.FS, pattern string) map[string]string {
	t.Helper()
	files, err := fs.Glob(fsys, pattern)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, f := range files {
		b, err := fs.ReadFile(fsys, f)
		if err != nil {
			t.Fatal(err)
		}
		out[f] = string(b)
	}
	return out
}

// The two releases the schema is tested on: the Debian server of CI and current ClickHouse
// (chDB). Version-conditional migrations make their schemas differ.
var (
	oldestServer  = Version{18, 16, 1}
	currentServer = Version{26, 9, 2, 1}
)

// schema is the schema on ClickHouse 18.16, what every query must work with.
func schema(t *testing.T) *schemaDef {
	t.Helper()
	return schemaOn(t, oldestServer)
}

func schemaOn(t *testing.T, v Version) *schemaDef {
	t.Helper()
	sd, err := parseSchema(readFiles(t), v)
	if err != nil {
		t.Fatal(err)
	}
	return sd
}

func TestStatementsAndColumns(t *testing.T) {
	got, err := statements("-- a; b\nCREATE  TABLE x\n(\n  a String COMMENT 'it''s; -- not a comment', /* c; */ b UInt8\n);\n\n;SELECT 1")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"CREATE TABLE x ( a String COMMENT 'it''s; -- not a comment', b UInt8 )", "SELECT 1"}
	if !slices.Equal(got, want) {
		t.Errorf("statements = %q, want %q", got, want)
	}
	c, err := parseColumn("devices AggregateFunction(uniqIf, String, UInt8) COMMENT 'x, y'")
	if err != nil || c.name != "devices" || c.typ != "AggregateFunction(uniqIf, String, UInt8)" || c.comment != "x, y" || c.hasDefault {
		t.Errorf("parseColumn: %+v %v", c, err)
	}
	c, err = parseColumn("inserted_at DateTime('UTC') DEFAULT now() COMMENT 'z'")
	if err != nil || c.typ != "DateTime('UTC')" || !c.hasDefault || c.comment != "z" {
		t.Errorf("parseColumn with DEFAULT: %+v %v", c, err)
	}
	sd, err := parseSchema(map[string]string{
		"1.sql": "CREATE TABLE IF NOT EXISTS riskflow.t (a String, b UInt8) ENGINE = MergeTree ORDER BY a SETTINGS index_granularity = 8192;",
		"2.sql": "ALTER TABLE riskflow.t ADD COLUMN c String AFTER a; ALTER TABLE riskflow.t ADD COLUMN d UInt8; ALTER TABLE riskflow.t DROP COLUMN b;",
	}, oldestServer)
	if err != nil {
		t.Fatal(err)
	}
	if got := sd.tables["t"].pairs(); !slices.Equal(got, [][2]string{{"a", "String"}, {"c", "String"}, {"d", "UInt8"}}) {
		t.Errorf("after ALTERs: %v", got)
	}
	if _, err := parseSchema(map[string]string{"x.sql": "ALTER TABLE riskflow.t UPDATE a = 1 WHERE 1;"}, oldestServer); err == nil {
		t.Error("an unknown statement kind was accepted")
	}
	// A version-conditional file counts only on servers new enough for it.
	files := map[string]string{
		"1.sql": "CREATE TABLE IF NOT EXISTS riskflow.t (a String, b UInt8) ENGINE = MergeTree ORDER BY a SETTINGS index_granularity = 8192;",
		"2.sql": "-- 2: newer servers\n-- requires: ClickHouse >= 20.3\nALTER TABLE riskflow.t MODIFY COLUMN a LowCardinality(String), MODIFY COLUMN b UInt16;\nALTER TABLE riskflow.t MODIFY TTL x + INTERVAL 1 DAY;",
	}
	for v, want := range map[string][2]string{"18.16.1": {"String", ""}, "20.3": {"LowCardinality(String)", "x + INTERVAL 1 DAY"}, "26.9.2.1": {"LowCardinality(String)", "x + INTERVAL 1 DAY"}} {
		ver, _ := ParseVersion(v)
		sd, err := parseSchema(files, ver)
		if err != nil {
			t.Fatal(err)
		}
		if got := sd.tables["t"]; got.columns[0].typ != want[0] || got.ttl != want[1] {
			t.Errorf("on %s: a is %s, TTL %q; want %s, %q", v, got.columns[0].typ, got.ttl, want[0], want[1])
		}
	}
	if _, err := parseSchema(map[string]string{"1.sql": files["1.sql"], "2.sql": "ALTER TABLE riskflow.t MODIFY COLUMN a String DEFAULT 'x';"}, oldestServer); err == nil {
		t.Error("MODIFY COLUMN with a default was accepted")
	}
}

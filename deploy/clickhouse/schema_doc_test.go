package clickhouse

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// SCHEMA.md describes every table and view the migrations create, one "### `name`" section
// each. A table's section lists its columns in a Markdown table, `name` | `Type` | meaning,
// in the order of the DDL; a view's section names the table it reads and the one it writes
// and lists no columns. Nothing else may have a "###" section.

type docSection struct {
	name    string
	line    int
	text    string
	columns [][2]string
	meaning map[string]string
}

var (
	docHeadingRE = regexp.MustCompile("^### `(\\w+)`\\s*$")
	docColumnRE  = regexp.MustCompile("^\\|\\s*`(\\w+)`\\s*\\|\\s*`([^`]+)`\\s*\\|(.*)\\|\\s*$")
)

func parseSchemaDoc(md string) (map[string]*docSection, error) {
	out := map[string]*docSection{}
	var cur *docSection
	for i, line := range strings.Split(md, "\n") {
		switch {
		case strings.HasPrefix(line, "### "):
			m := docHeadingRE.FindStringSubmatch(line)
			if m == nil {
				return nil, fmt.Errorf("line %d: %q: want ### `name`", i+1, line)
			}
			if out[m[1]] != nil {
				return nil, fmt.Errorf("line %d: %s described twice", i+1, m[1])
			}
			cur = &docSection{name: m[1], line: i + 1, meaning: map[string]string{}}
			out[m[1]] = cur
		case strings.HasPrefix(line, "## ") || strings.HasPrefix(line, "# "):
			cur = nil
		case cur != nil:
			cur.text += line + "\n"
			if m := docColumnRE.FindStringSubmatch(line); m != nil {
				cur.columns = append(cur.columns, [2]string{m[1], m[2]})
				cur.meaning[m[1]] = strings.TrimSpace(m[3])
			}
		}
	}
	return out, nil
}

func TestSchemaDocMatchesMigrations(t *testing.T) {
	b, err := os.ReadFile("SCHEMA.md")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := parseSchemaDoc(string(b))
	if err != nil {
		t.Fatalf("SCHEMA.md: %v", err)
	}
	sd := schema(t)
	for name, tb := range sd.tables {
		sec := doc[name]
		if sec == nil {
			t.Errorf("SCHEMA.md has no ### `%s` section (table created in %s)", name, tb.file)
			continue
		}
		if got, want := sec.columns, tb.pairs(); !slices.Equal(got, want) {
			t.Errorf("SCHEMA.md line %d, table %s:\n doc lists  %v\n migrations %v", sec.line, name, got, want)
		}
		for col, m := range sec.meaning {
			if strings.Trim(m, " |") == "" {
				t.Errorf("SCHEMA.md: %s.%s has no meaning", name, col)
			}
		}
		if !strings.Contains(sec.text, tb.engine) {
			t.Errorf("SCHEMA.md: section %s does not name its engine %s", name, tb.engine)
		}
	}
	for name, v := range sd.views {
		sec := doc[name]
		if sec == nil {
			t.Errorf("SCHEMA.md has no ### `%s` section (view created in %s)", name, v.file)
			continue
		}
		if len(sec.columns) != 0 {
			t.Errorf("SCHEMA.md: view %s lists columns; its columns are those of %s", name, v.to)
		}
		if !strings.Contains(sec.text, "reads") || !strings.Contains(sec.text, "`"+v.from+"`") ||
			!strings.Contains(sec.text, "writes `"+v.to+"`") {
			t.Errorf("SCHEMA.md: section %s must say it reads `%s` and writes `%s`", name, v.from, v.to)
		}
	}
	for name, sec := range doc {
		if sd.tables[name] == nil && sd.views[name] == nil {
			t.Errorf("SCHEMA.md line %d describes %s, which no migration creates", sec.line, name)
		}
	}
}

// What current ClickHouse stores differently (the version-conditional migrations) is on the
// page too: each retyped column names its type there, each TTL is given with its table.
func TestSchemaDocCurrentServer(t *testing.T) {
	b, err := os.ReadFile("SCHEMA.md")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := parseSchemaDoc(string(b))
	if err != nil {
		t.Fatal(err)
	}
	old, cur := schemaOn(t, oldestServer), schemaOn(t, currentServer)
	for name, tb := range cur.tables {
		sec := doc[name]
		if sec == nil {
			continue // TestSchemaDocMatchesMigrations reports it
		}
		for i, c := range tb.columns {
			if was := old.tables[name].columns[i]; was.typ != c.typ && !strings.Contains(sec.meaning[c.name], "`"+c.typ+"`") {
				t.Errorf("SCHEMA.md: %s.%s is %s on current ClickHouse; say so in its meaning (`%s`)", name, c.name, c.typ, c.typ)
			}
		}
		if tb.ttl != "" && !strings.Contains(strings.Join(strings.Fields(sec.text), " "), "TTL `"+tb.ttl+"`") {
			t.Errorf("SCHEMA.md: section %s does not give its TTL `%s`", name, tb.ttl)
		}
	}
}

// Every analyst query is listed under "## Analyst queries" with what it answers and what it
// reads, and nothing else is.
func TestSchemaDocListsQueries(t *testing.T) {
	b, err := os.ReadFile("SCHEMA.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n## Analyst queries\n")
	if !ok {
		t.Fatal("SCHEMA.md has no ## Analyst queries section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	rowRE := regexp.MustCompile("^\\| \\[`(\\w+\\.sql)`\\]\\(queries/(\\w+\\.sql)\\) \\|([^|]+)\\|([^|]+)\\|$")
	listed := map[string]bool{}
	for _, line := range strings.Split(section, "\n") {
		m := rowRE.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		if m[1] != m[2] {
			t.Errorf("SCHEMA.md: %s links to %s", m[1], m[2])
		}
		if len(strings.TrimSpace(m[3])) < 30 || !strings.Contains(m[4], "`") {
			t.Errorf("SCHEMA.md: %s: say what it answers and which tables it reads", m[1])
		}
		listed[m[1]] = true
	}
	files := readDir(t, Queries, "queries/*.sql")
	for f, src := range files {
		name := strings.TrimPrefix(f, "queries/")
		if !listed[name] {
			t.Errorf("SCHEMA.md does not list %s under Analyst queries", name)
		}
		// What the row says it reads is what the file reads.
		for _, m := range tableRefRE.FindAllStringSubmatch(src, -1) {
			if !regexp.MustCompile("\\| [^|]*`" + m[1] + "`[^|]*\\|$").MatchString(rowFor(section, name)) {
				t.Errorf("SCHEMA.md: the row of %s does not name `%s`, which it reads", name, m[1])
			}
		}
		delete(listed, name)
	}
	for name := range listed {
		t.Errorf("SCHEMA.md lists %s, which is not in queries/", name)
	}
}

func rowFor(section, file string) string {
	for _, line := range strings.Split(section, "\n") {
		if strings.HasPrefix(line, "| [`"+file+"`]") {
			return line
		}
	}
	return ""
}

// The check itself: a doc that drifted from the DDL fails.
func TestSchemaDocDriftDetected(t *testing.T) {
	md := "# x\n### `t`\n| column | type | meaning |\n|---|---|---|\n| `a` | `String` | the a |\n| `b` | `UInt8` | |\n### `gone`\n"
	doc, err := parseSchemaDoc(md)
	if err != nil {
		t.Fatal(err)
	}
	if got := doc["t"].columns; !slices.Equal(got, [][2]string{{"a", "String"}, {"b", "UInt8"}}) {
		t.Errorf("columns %v", got)
	}
	if doc["t"].meaning["b"] != "" || doc["gone"] == nil {
		t.Errorf("sections %+v", doc)
	}
	if _, err := parseSchemaDoc("### t\n"); err == nil {
		t.Error("a heading without backticks was accepted")
	}
}

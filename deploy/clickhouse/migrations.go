// Package clickhouse holds riskflow's ClickHouse schema as plain SQL files and embeds them
// into the binary, so `riskflow migrate` needs nothing but its own executable. Next to the
// migrations live the analysts' side of the schema: SCHEMA.md (every column of every table
// and view; a test keeps it equal to what the migrations create), queries/ (documented
// queries, runnable as they are) and backfill/ (filling the hourly views from older history).
//
// # The files
//
// migrations/NNNN_name.sql, applied in the order of NNNN (a positive number, unique). The
// number is the migration id recorded in schema_migrations; NNNN_name (without .sql) is the
// name the migrator reports. A file may hold several statements, each ended by a semicolon;
// "--" line comments and block comments are allowed anywhere and are not sent to the server.
//
// Every statement must be safe to run twice, because a migrator that stops between applying
// a file and recording it runs the file again next time: use CREATE ... IF NOT EXISTS.
// ClickHouse 18.16 has no ADD COLUMN IF NOT EXISTS; write a plain ADD COLUMN instead, the
// migrator treats "already exists" answers from the server as success.
//
// The SQL must run on ClickHouse 18.16 and on current releases: no DateTime64, Map,
// LowCardinality or JSON types, no table-level COMMENT, no TTL; column COMMENTs are fine.
// (Version-conditional files, below, are the exception.) CI runs every file on both: the
// 18.16 server and current ClickHouse embedded by chDB (pipeline/chsink,
// TestSQLOnBothClickHouses; `make chdb`).
//
// # Version-conditional migrations
//
// A file whose header (the comment lines before its first statement) holds the line
//
//	-- requires: ClickHouse >= 20.3
//
// is applied only by a server of that release or newer (see [Requires]); an older server skips
// it and does not record it, so it is applied when the server has been upgraded and the migrator
// runs again. Such a file may use what the release has — today MODIFY COLUMN to LowCardinality
// and MODIFY TTL; the schema tests must be taught anything else first — and must be harmless for
// everything else: it changes how data is stored or kept, never what a column, table or view is
// called or what a query, insert or later migration relies on, because servers without it stay
// on the schema of the files before it. Every other file runs everywhere. migrations/README.md
// has the rules; the tests of this package enforce them.
//
// # Materialized views
//
// A view always writes TO a table created in the same file just before it (never into an
// implicit .inner table, whose naming differs between releases), and that table is an
// AggregatingMergeTree whose counters are uniq states (AggregateFunction(uniq, String) or
// uniqIf): ClickHouse 18.16 has no SimpleAggregateFunction, and uniq states merge as sets, so a
// re-delivered event, a retried INSERT or a backfill run twice counts nothing twice. Read them
// with uniqMerge / uniqIfMerge and GROUP BY. A later file may replace a view (DROP TABLE IF
// EXISTS riskflow.<table>_mv, then CREATE MATERIALIZED VIEW again, as 0015 does); the table stays.
//
// # The database name
//
// The files name the database riskflow, always as a bare word (riskflow.verify_events,
// CREATE DATABASE IF NOT EXISTS riskflow), so an analyst can read them, or pipe them into
// clickhouse-client --multiquery, as they are. The migrator replaces every bare word riskflow
// outside comments, quoted strings and quoted identifiers with the configured database name.
// Never use riskflow as the name of anything else (a column, a table) in these files.
package clickhouse

import (
	"embed"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Migrations holds migrations/*.sql.
//
//go:embed migrations/*.sql
var Migrations embed.FS

// Queries holds queries/*.sql: one documented SELECT per file, with a header comment saying
// what it answers. Like the migrations they name the database as the bare word riskflow, so
// they run as they are against the default database; substitute the name as the migrator
// does for another one.
//
//go:embed queries/*.sql
var Queries embed.FS

// Backfill holds backfill/*.sql: INSERT ... SELECT statements that fill the hourly views'
// tables from rows stored before the views existed. They are safe to run more than once.
//
//go:embed backfill/*.sql
var Backfill embed.FS

// Version is a ClickHouse release as version() prints it (18.16.1, 26.9.2.1), compared by its
// numbers from the left; missing numbers count as 0.
type Version []int

// ParseVersion reads "18.16.1", "26.9.2.1" or "20.3".
func ParseVersion(s string) (Version, error) {
	parts := strings.Split(strings.TrimSpace(s), ".")
	v := make(Version, len(parts))
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || p == "" {
			return nil, fmt.Errorf("ClickHouse version %q: want numbers separated by dots, like 20.3 or 18.16.1", s)
		}
		v[i] = n
	}
	return v, nil
}

// AtLeast reports whether v is the release min or a newer one.
func (v Version) AtLeast(min Version) bool {
	for i := 0; i < max(len(v), len(min)); i++ {
		a, b := 0, 0
		if i < len(v) {
			a = v[i]
		}
		if i < len(min) {
			b = min[i]
		}
		if a != b {
			return a > b
		}
	}
	return true
}

func (v Version) String() string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ".")
}

var requiresRE = regexp.MustCompile(`^--\s*requires:\s*ClickHouse\s*>=\s*(\d+\.\d+(?:\.\d+)*)\s*$`)

// Requires reads the version requirement of a migration file: the oldest ClickHouse release
// that applies it, from a header line "-- requires: ClickHouse >= 20.3". It returns nil when
// the file runs on every release. A "requires:" line that says anything else, or one after the
// first statement has begun, is an error, so a typo cannot make a file run everywhere.
func Requires(src string) (Version, error) {
	var min Version
	header := true
	for i, line := range strings.Split(src, "\n") {
		t := strings.TrimSpace(line)
		isComment := strings.HasPrefix(t, "--")
		if t != "" && !isComment {
			header = false
		}
		if !isComment || !strings.Contains(strings.ToLower(t), "requires:") {
			continue
		}
		m := requiresRE.FindStringSubmatch(t)
		switch {
		case !header:
			return nil, fmt.Errorf("line %d: a requires: line belongs in the header comment, before the first statement", i+1)
		case m == nil:
			return nil, fmt.Errorf("line %d: %q: write -- requires: ClickHouse >= MAJOR.MINOR", i+1, t)
		case min != nil:
			return nil, fmt.Errorf("line %d: a second requires: line", i+1)
		}
		v, err := ParseVersion(m[1])
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", i+1, err)
		}
		min = v
	}
	return min, nil
}

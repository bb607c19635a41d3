package chsink

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"

	chschema "github.com/riskflow/riskflow/deploy/clickhouse"
)

// schemaDatabase is the database name the migration files use; it is replaced by the
// configured one.
const schemaDatabase = "riskflow"

// migration is one file of deploy/clickhouse/migrations, ready to send.
type migration struct {
	id         uint32
	name       string   // file name without .sql, e.g. 0002_verify_events
	statements []string // comments removed, database name substituted
	// requires is the oldest ClickHouse release that applies the file (its header line
	// "-- requires: ClickHouse >= X.Y"); nil: every release.
	requires chschema.Version
}

// runsOn reports whether a server of release v applies m.
func (m migration) runsOn(v chschema.Version) bool {
	return m.requires == nil || v.AtLeast(m.requires)
}

// pendingMigrations splits migs (in order) into those to apply now on a server of release v —
// not yet in applied, and meant for v — and those not applied because v is too old. A skipped
// file is not recorded, so it is applied once the server has been upgraded.
func pendingMigrations(migs []migration, applied map[uint32]bool, v chschema.Version) (apply, skipped []migration) {
	for _, m := range migs {
		switch {
		case applied[m.id]:
		case m.runsOn(v):
			apply = append(apply, m)
		default:
			skipped = append(skipped, m)
		}
	}
	return apply, skipped
}

// loadMigrations reads dir/*.sql from fsys, ordered by id, with the database name replaced
// by database.
func loadMigrations(fsys fs.FS, dir, database string) ([]migration, error) {
	files, err := fs.Glob(fsys, path.Join(dir, "*.sql"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no migrations in %s", dir)
	}
	var out []migration
	seen := map[uint32]string{}
	for _, f := range files {
		name := strings.TrimSuffix(path.Base(f), ".sql")
		id, err := migrationID(name)
		if err != nil {
			return nil, fmt.Errorf("migration %s: %w", f, err)
		}
		if other, ok := seen[id]; ok {
			return nil, fmt.Errorf("migrations %s and %s have the same number %d", other, name, id)
		}
		seen[id] = name
		src, err := fs.ReadFile(fsys, f)
		if err != nil {
			return nil, err
		}
		stmts, err := splitSQL(string(src), database)
		if err != nil {
			return nil, fmt.Errorf("migration %s: %w", name, err)
		}
		if len(stmts) == 0 {
			return nil, fmt.Errorf("migration %s has no statement", name)
		}
		req, err := chschema.Requires(string(src))
		if err != nil {
			return nil, fmt.Errorf("migration %s: %w", name, err)
		}
		out = append(out, migration{id: id, name: name, statements: stmts, requires: req})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out, nil
}

// migrationID parses the number in front of NNNN_name.
func migrationID(name string) (uint32, error) {
	num, rest, ok := strings.Cut(name, "_")
	if !ok || num == "" || rest == "" {
		return 0, errors.New("name must look like NNNN_what.sql")
	}
	n, err := strconv.ParseUint(num, 10, 32)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("name must start with a positive number, not %q", num)
	}
	return uint32(n), nil
}

// splitSQL cuts src into statements at semicolons, drops comments, and replaces every bare
// word "riskflow" (outside comments, quoted strings and quoted identifiers) with database.
// It knows just enough SQL lexing for that: '--' and '/* */' comments, '...' strings,
// `...` and "..." identifiers with backslash or doubled-quote escapes.
func splitSQL(src, database string) ([]string, error) {
	var (
		stmts []string
		cur   strings.Builder
	)
	flush := func() {
		if s := tidy(cur.String()); s != "" {
			stmts = append(stmts, s)
		}
		cur.Reset()
	}
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == '-' && i+1 < len(src) && src[i+1] == '-':
			end := strings.IndexByte(src[i:], '\n')
			if end < 0 {
				i = len(src)
			} else {
				i += end // keep the newline
			}
		case c == '/' && i+1 < len(src) && src[i+1] == '*':
			end := strings.Index(src[i+2:], "*/")
			if end < 0 {
				return nil, fmt.Errorf("unterminated /* comment at byte %d", i)
			}
			i += 2 + end + 2
			cur.WriteByte(' ')
		case c == '\'' || c == '"' || c == '`':
			end, err := quotedEnd(src, i)
			if err != nil {
				return nil, err
			}
			cur.WriteString(src[i:end])
			i = end
		case c == ';':
			flush()
			i++
		case isWordByte(c):
			end := i
			for end < len(src) && isWordByte(src[end]) {
				end++
			}
			if w := src[i:end]; w == schemaDatabase {
				cur.WriteString(database)
			} else {
				cur.WriteString(w)
			}
			i = end
		default:
			cur.WriteByte(c)
			i++
		}
	}
	flush()
	return stmts, nil
}

// quotedEnd returns the index just past the quoted token that starts at src[start].
func quotedEnd(src string, start int) (int, error) {
	q := src[start]
	for j := start + 1; j < len(src); j++ {
		switch src[j] {
		case '\\':
			j++
		case q:
			if j+1 < len(src) && src[j+1] == q {
				j++
				continue
			}
			return j + 1, nil
		}
	}
	return 0, fmt.Errorf("unterminated %c quote at byte %d", q, start)
}

func isWordByte(c byte) bool {
	return c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80
}

// tidy trims a statement and drops the blank lines and trailing blanks left by comments.
func tidy(s string) string {
	lines := strings.Split(s, "\n")
	kept := lines[:0]
	for _, l := range lines {
		l = strings.TrimRight(l, " \t\r")
		if strings.TrimSpace(l) != "" {
			kept = append(kept, l)
		}
	}
	return strings.TrimSpace(strings.Join(kept, "\n"))
}

package clickhouse

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// Event ids (and decision ids) are unique within an app only, so what the docs and the shipped
// SQL tell analysts to count by must be the app and the id together: `uniqExact(event_id)`,
// which SCHEMA.md advised for exact counts, counted two apps' events with one id once (46,406
// instead of 46,456 events in a database where two apps shared 50 ids). The first views kept
// such states (migrations 0006–0008, SQL replaced by 0015 and left as applied); what is read
// today must not.
func TestNoCountOfIDsAlone(t *testing.T) {
	alone := regexp.MustCompile(`(?i)\b(uniq\w*|count)\s*\(\s*(DISTINCT\s+)?(event_id|decision_id)\s*[,)]`)
	files := map[string]string{}
	b, err := os.ReadFile("SCHEMA.md")
	if err != nil {
		t.Fatal(err)
	}
	files["SCHEMA.md"] = string(b)
	for f, src := range readDir(t, Queries, "queries/*.sql") {
		files[f] = src
	}
	for f, src := range readDir(t, Backfill, "backfill/*.sql") {
		files[f] = src
	}
	// Migrations: their comments (advice), and the statements of those after 0015.
	for f, src := range readDir(t, Migrations, "migrations/*.sql") {
		if f > "migrations/0015" {
			files[f] = src
			continue
		}
		lines := strings.Split(src, "\n")
		for i, line := range lines {
			if !strings.HasPrefix(strings.TrimSpace(line), "--") {
				lines[i] = "" // keeps the line numbers
			}
		}
		files[f+" (comments)"] = strings.Join(lines, "\n")
	}
	for f, src := range files {
		for i, line := range strings.Split(src, "\n") {
			if m := alone.FindString(line); m != "" {
				t.Errorf("%s line %d counts ids without their app (%s…): ids are unique per app; count (app_id, id) pairs, e.g. uniqExact(app_id, event_id)", f, i+1, m)
			}
		}
	}
}

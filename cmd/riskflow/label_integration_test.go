//go:build integration

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/riskflow/riskflow/schemas"
)

// A bulk labels file of ids not stored (yet) warns about the first ones by name and about the
// rest by count: 2,000 labels gave 2,000 warning lines. The labels are stored all the same.
func TestLabelBulkUnknownWarnsByCount(t *testing.T) {
	cleanEnv(t)
	addr, db, conn, _ := migratedDatabase(t, "riskflow_label")
	var ls []schemas.Label
	for i := range 2000 {
		ls = append(ls, schemas.Label{AppID: "app1", EventID: fmt.Sprintf("bulk-%d", i), Label: schemas.LabelFraud})
	}
	b, _ := json.Marshal(ls)
	file := filepath.Join(tempDir(t), "labels.json")
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
	r := runCmd(t, context.Background(), "label", "--file", file, "--by", "it", "--set", "clickhouse.addr="+addr, "--set", "clickhouse.database="+db)
	warnings := strings.Split(strings.TrimSpace(r.stderr), "\n")
	if r.code != 0 || len(warnings) != maxUnknownShown+1 || !strings.Contains(r.stderr, "warning: no event bulk-0 of app app1") ||
		!strings.Contains(warnings[len(warnings)-1], fmt.Sprintf("and %d more labels of ids not stored (2000 of the 2000 labels)", 2000-maxUnknownShown)) {
		t.Errorf("exit %d, %d warning lines (want %d):\n%s", r.code, len(warnings), maxUnknownShown+1, strings.Join(warnings[max(0, len(warnings)-3):], "\n"))
	}
	var n uint64
	if err := conn.QueryRow(context.Background(), "SELECT count() FROM "+db+".labels FINAL").Scan(&n); err != nil || n != 2000 {
		t.Errorf("%d labels stored (%v), want 2000", n, err)
	}
}

// A labels file is stored a batch at a time, from a file or from standard input (kept for the
// second reading): every label once, the unknown ids warned about across the batches as for one,
// and a mistake on the last line stores nothing.
func TestLabelFileInBatches(t *testing.T) {
	cleanEnv(t)
	addr, db, conn, st := migratedDatabase(t, "riskflow_label_batches")
	defer func(n int) { labelBatch = n }(labelBatch)
	labelBatch = 300
	// 50 of the events are stored: their labels draw no warning.
	ctx := context.Background()
	var known []schemas.ScoreRecord
	for i := range 50 {
		known = append(known, schemas.ScoreRecord{EventID: fmt.Sprintf("batch-%d", i*7), AppID: "app1", PhoneHash: strings.Repeat("ab", 32), PhoneMasked: "1381234****",
			PhoneSegment: "1381234", TS: time.Now().Add(-time.Hour), Flow: "one_click_login", Outcome: "success", IP: "1.2.3.4", RulesVersion: "v"})
	}
	if err := st.WriteBatch(ctx, known); err != nil {
		t.Fatal(err)
	}
	var lines strings.Builder
	for i := range 1000 {
		fmt.Fprintf(&lines, `{"app_id":"app1","event_id":"batch-%d","label":"fraud"}`+"\n", i)
	}
	file := filepath.Join(tempDir(t), "labels.jsonl")
	os.WriteFile(file, []byte(lines.String()), 0o644)
	stdin := func(doc string) func() {
		f, err := os.CreateTemp(tempDir(t), "stdin")
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString(doc)
		f.Seek(0, 0)
		old := os.Stdin
		os.Stdin = f
		return func() { os.Stdin = old; f.Close() }
	}
	sets := []string{"--by", "it", "--set", "clickhouse.addr=" + addr, "--set", "clickhouse.database=" + db}
	for _, from := range []string{file, "-"} {
		restore := func() {}
		if from == "-" {
			restore = stdin(lines.String())
		}
		r := runCmd(t, ctx, append([]string{"label", "--file", from}, sets...)...)
		restore()
		if r.code != 0 || strings.Count(r.stdout, "labelled event batch-") != 1000 || strings.Count(r.stderr, "warning: no event") != maxUnknownShown ||
			!strings.Contains(r.stderr, fmt.Sprintf("and %d more labels of ids not stored (950 of the 1000 labels)", 950-maxUnknownShown)) ||
			strings.Contains(r.stderr, "no event batch-0 ") {
			t.Errorf("--file %s: exit %d, %d labelled\n%s", from, r.code, strings.Count(r.stdout, "labelled"), r.stderr)
		}
		var n, rows uint64
		if err := conn.QueryRow(ctx, "SELECT count() FROM "+db+".labels FINAL").Scan(&n); err != nil || n != 1000 {
			t.Errorf("--file %s: %d labels stored (%v), want 1000", from, n, err)
		}
		conn.QueryRow(ctx, "SELECT count() FROM "+db+".labels").Scan(&rows)
		t.Logf("--file %s: %d label rows before merges", from, rows)
	}
	// Corrections further down the file, in other batches: each id not stored is named once, and
	// the labels counted over the whole file (their ids were counted again in each batch: "and
	// 20001 more labelled ids not stored" of a file of 10,001 ids labelled twice).
	lines.Reset()
	for _, as := range []string{"fraud", "legit"} {
		for i := range 500 {
			fmt.Fprintf(&lines, `{"app_id":"app1","event_id":"batch-%d","label":%q}`+"\n", i, as)
		}
	}
	os.WriteFile(file, []byte(lines.String()), 0o644)
	r := runCmd(t, ctx, append([]string{"label", "--file", file}, sets...)...)
	// 450 of the 500 ids are not stored (batch-0, -7, … -343 are): 900 labels, 40 of them of the
	// 20 ids named.
	if r.code != 0 || strings.Count(r.stderr, "warning: no event") != maxUnknownShown || strings.Count(r.stderr, "warning: no event batch-1 ") != 1 ||
		!strings.Contains(r.stderr, "warning: and 860 more labels of ids not stored (900 of the 1000 labels)") {
		t.Errorf("corrections in other batches: exit %d\n%s", r.code, r.stderr)
	}

	// A mistake on the last line (after three batches' worth): nothing of the file is stored.
	conn.Exec(ctx, "TRUNCATE TABLE "+db+".labels")
	restore := stdin(lines.String() + `{"app_id":"app1","event_id":"batch-x","label":"frad"}` + "\n")
	r = runCmd(t, ctx, append([]string{"label", "--file", "-"}, sets...)...)
	restore()
	var n uint64
	conn.QueryRow(ctx, "SELECT count() FROM "+db+".labels").Scan(&n)
	if r.code != 2 || !strings.Contains(r.stderr, `--file -: line 1001: label: "frad" is not fraud or legit`) || n != 0 || r.stdout != "" {
		t.Errorf("a bad last line: exit %d, %d labels stored\nstdout %.200s\nstderr %s", r.code, n, r.stdout, r.stderr)
	}
}

// label stores into the configured database and does not create it: a clickhouse.database that
// does not exist (a typo) was created with every table, the label stored there, out of every
// backtest's sight, exit 0. It is refused, naming the database, and left uncreated. A database
// that exists but lacks the labels table (older than its migration) still gets it, and the label.
func TestLabelDoesNotCreateTheDatabase(t *testing.T) {
	ctx := context.Background()
	addr, db, _, conn := throwawayDatabase(t, "riskflow_labeltypo") // never created: the typo
	r := runCmd(t, ctx, "label", "--app", "app1", "--event", "e1", "--as", "fraud", "--set", "clickhouse.addr="+addr, "--set", "clickhouse.database="+db)
	if r.code != 1 || strings.Contains(r.stdout, "labelled") || !strings.Contains(r.stderr, "database "+db) ||
		!strings.Contains(r.stderr, "the database does not exist (riskflow migrate creates it; is clickhouse.database mistyped?)") {
		t.Errorf("label into a database that does not exist: exit %d, want 1 naming it\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	var n uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM system.databases WHERE name = ?", db).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("label created database %s", db)
	}

	addr, db, conn, _ = migratedDatabase(t, "riskflow_labelold")
	if err := conn.Exec(ctx, "DROP TABLE "+db+".labels"); err != nil {
		t.Fatal(err)
	}
	r = runCmd(t, ctx, "label", "--app", "app1", "--event", "e1", "--as", "fraud", "--set", "clickhouse.addr="+addr, "--set", "clickhouse.database="+db)
	if r.code != 0 {
		t.Fatalf("label into a database without the labels table: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	if err := conn.QueryRow(ctx, "SELECT count() FROM "+db+".labels WHERE target_id = 'e1'").Scan(&n); err != nil || n != 1 {
		t.Errorf("labels of e1 stored: %d %v, want 1", n, err)
	}
}
